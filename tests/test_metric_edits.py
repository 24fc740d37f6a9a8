"""Metrics without code (issue 12 §4): an administrator adds and edits the data map from a TOML
file or the Data map page; every save is a version with who and when; a metric in use is never
retired; targets by school year and vendor, and gap targets read on Disparities."""

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import figures, make_warehouse, open_page, snapshot, write_csv
from ciboard import metric_edits
from ciboard.access import Scope
from ciboard.accounts import Account
from ciboard.cli import main
from ciboard.ingest import IngestRejected, Submission, ingest
from ciboard.queries import data_map, run

ADMIN = Account("ada", "Ada Admin", "admin")
ANALYST = Account("ann", "Ann Analyst", "analyst")

NEW_METRIC = """
[metric]
id = "reading_sgp_v1"
label = "Reading growth percentile"
kind = "payment outcome"
unit = "percentile (1-99)"
aggregation = "median"
better = "higher"
frequency = "window"
definition = \"\"\"A student's growth in reading against academic peers, as a percentile.
Groups are summarised by their median.\"\"\"
instrument = "District interim assessment, reading."
source = "Assessment vendor portal."
timing = "Three times a year."
accuracy = "Needs a score in the previous window."
target = 50
submitted_as = "assessment"
derived_by = "profile nwea-map: median of FallToWinterConditionalGrowthPercentile"
note = "the new reading contract"

[[targets]]
school_year = "2025-26"
target = 45

[[targets]]
vendor_id = "V1"
target = 55

[[targets]]
school_year = "2025-26"
vendor_id = "V2"
target = 60

[[gap_targets]]
dimension = "english_learner"
gap = 3
"""


def metric_file(text: str, name: str = "metric.toml") -> metric_edits.MetricFile:
    return metric_edits.read_toml(text, name)


def versions(warehouse, metric_id: str) -> list[int]:
    return list(metric_edits.history(warehouse, metric_id)["version"])


def test_an_added_metric_is_in_the_data_map_with_its_targets_and_history(loaded):
    before = loaded.version()
    assert metric_edits.add(loaded, ADMIN, metric_file(NEW_METRIC)) == 1
    assert loaded.version() != before  # published: pages see a new data version
    row = data_map(loaded).set_index("metric_id").loc["reading_sgp_v1"]
    assert (row["label"], row["aggregation"], row["target"]) == ("Reading growth percentile", "median", 50)
    assert row["definition"].endswith("Groups are summarised by their median.")
    history = metric_edits.history(loaded, "reading_sgp_v1")
    assert list(history["version"]) == [1]
    assert history["saved_by"].iloc[0] == "ada (Ada Admin)" and history["note"].iloc[0] == "the new reading contract"
    assert history["derived_by"].iloc[0].startswith("profile nwea-map")
    # The most specific target applies: the vendor's in that year, the vendor's, the year's, the district's.
    assert metric_edits.target_for(loaded, "reading_sgp_v1", "2025-26", "V2") == 60
    assert metric_edits.target_for(loaded, "reading_sgp_v1", "2025-26", "V1") == 55
    assert metric_edits.target_for(loaded, "reading_sgp_v1", "2025-26", None) == 45
    assert metric_edits.target_for(loaded, "reading_sgp_v1", "2026-27", None) == 50
    # The query layer knows it at once: a view asked for it answers (no values loaded yet).
    assert run(loaded, "breakdown", Scope("analyst"), {"metric": "reading_sgp_v1", "by": "vendor_id"}).empty


BELONGING = """
[metric]
id = "sel_belonging"
label = "Belonging (SEL)"
kind = "process outcome"
unit = "score 1-5"
aggregation = "mean"
better = "higher"
frequency = "weekly"
definition = "Mean response to the exit-ticket item on whether students feel they belong in tutoring (1 to 5)."
instrument = "Weekly exit ticket."
source = "Vendor collects the exit tickets and submits them weekly."
timing = "Weekly; due three days after the week ends."
accuracy = "New item; answered only by students who attended."
target = 4
submitted_as = "survey"
derived_by = "kind survey: the item's mean score per student-week"
"""


def test_a_survey_item_added_without_code_takes_vendors_answers(loaded, tmp_path):
    answers = write_csv(tmp_path / "survey.csv", "student_id,response_date,item,score",
                        "ST0000001,2025-09-25,sel_belonging,4", "ST0000002,2025-09-25,sel_belonging,2")
    with pytest.raises(IngestRejected) as refused:
        ingest(loaded, [Submission(answers, "survey", "V1")])
    assert [(p.row, p.column) for p in refused.value.problems if "not a survey metric of the data map" in p.reason] \
        == [(2, "item"), (3, "item")]
    metric_edits.add(loaded, ADMIN, metric_file(BELONGING))
    ingest(loaded, [Submission(answers, "survey", "V1")])
    with loaded.cursor() as cur:
        values = cur.execute("select student_key, value from facts where metric_id = 'sel_belonging' order by 1").fetchall()
    assert values == [("ST0000001", 4.0), ("ST0000002", 2.0)]
    with pytest.raises(metric_edits.MetricInUse, match="2 values of it are loaded"):
        metric_edits.retire(loaded, ADMIN, "sel_belonging", "no longer asked")


def test_an_edit_is_a_new_version_and_the_one_before_stays(loaded):
    assert metric_edits.edit(loaded, ADMIN, "sgp", metric_file('[metric]\nlabel = "Growth percentile"\nnote = "shorter"')) == 2
    assert metric_edits.edit(loaded, ADMIN, "sgp", metric_file("[metric]\ntarget = 55")) == 3
    history = metric_edits.history(loaded, "sgp")
    assert list(history["version"]) == [3, 2, 1]
    assert list(history["label"]) == ["Growth percentile", "Growth percentile", "Student growth percentile"]
    assert list(history["target"]) == [55, 50, 50]
    assert history["saved_by"].iloc[-1] == metric_edits.SEEDED_BY  # the seeded definition, before the first edit
    assert list(history["saved_by"].iloc[:2]) == ["ada (Ada Admin)"] * 2
    current = data_map(loaded).set_index("metric_id").loc["sgp"]
    assert (current["label"], current["target"]) == ("Growth percentile", 55)  # the latest version is the current one
    assert current["definition"].startswith("A student's growth since the previous window")  # fields not given are kept


def test_targets_are_kept_unless_the_file_replaces_them(loaded):
    metric_edits.add(loaded, ADMIN, metric_file(NEW_METRIC))
    metric_edits.edit(loaded, ADMIN, "reading_sgp_v1", metric_file('[metric]\nlabel = "Reading SGP"'))
    assert metric_edits.target_for(loaded, "reading_sgp_v1", "2025-26", "V2") == 60
    metric_edits.edit(loaded, ADMIN, "reading_sgp_v1", metric_file("[metric]\n[[targets]]\nvendor_id = 'V2'\ntarget = 40"))
    assert metric_edits.target_for(loaded, "reading_sgp_v1", "2025-26", "V2") == 40
    assert metric_edits.target_for(loaded, "reading_sgp_v1", "2025-26", "V1") == 50  # V1's was replaced away
    assert metric_edits.history(loaded, "reading_sgp_v1")["targets"].iloc[-1].count(";") == 2  # version 1 kept its three


def test_a_vendor_sees_the_districts_targets_and_its_own_only(loaded):
    metric_edits.add(loaded, ADMIN, metric_file(NEW_METRIC))
    as_v1 = metric_edits.targets(loaded, Scope("vendor", "V1"), "reading_sgp_v1")
    assert set(as_v1["vendor_id"]) == {"every vendor", "V1"}
    everyone = metric_edits.targets(loaded, Scope("analyst"), "reading_sgp_v1")
    assert set(everyone["vendor_id"]) == {"every vendor", "V1", "V2"}
    # A contract's own threshold is listed beside the data map's targets, in the same scope.
    paid = metric_edits.targets(loaded, Scope("vendor", "V1"), "sgp")
    assert set(paid.loc[paid["set_by"].str.startswith("contract"), "vendor_id"]) == {"V1"}


def test_a_metric_in_use_cannot_be_retired_and_an_unused_one_can(loaded):
    with pytest.raises(metric_edits.MetricInUse, match=r"sgp cannot be retired: it is in use: contracts pay on it \(V1"):
        metric_edits.retire(loaded, ADMIN, "sgp", "replaced")
    assert "sgp" in set(data_map(loaded)["metric_id"])
    metric_edits.add(loaded, ADMIN, metric_file(NEW_METRIC))
    assert metric_edits.retire(loaded, ADMIN, "reading_sgp_v1", "the contract fell through") == 2
    assert "reading_sgp_v1" not in set(data_map(loaded)["metric_id"])
    history = metric_edits.history(loaded, "reading_sgp_v1")
    assert list(history["retired"]) == [True, False] and history["note"].iloc[0] == "the contract fell through"


def test_how_a_paid_metric_is_computed_cannot_change(loaded):
    with pytest.raises(metric_edits.MetricError, match="field aggregation: cannot change how sgp is computed while contracts pay on it"):
        metric_edits.edit(loaded, ADMIN, "sgp", metric_file('[metric]\naggregation = "mean"', "sgp.toml"))


def test_every_problem_names_file_key_and_field_and_nothing_is_saved(loaded):
    before, version = snapshot(loaded), loaded.version()
    bad = """
[metric]
id = "reading_sgp_v1"
label = "Reading"
kind = "outcome"
aggregation = "average"
target = "high"
submitted_as = "nwea"
derived_by = "profile iready: mean scale score"

[[targets]]
school_year = "1999-00"
vendor_id = "V9"
target = 1

[[gap_targets]]
dimension = "english_learner"
gap = -1

[[gap_targets]]
dimension = "race_ethnicity"
gap = 2
"""
    with pytest.raises(metric_edits.MetricError) as raised:
        metric_edits.add(loaded, ADMIN, metric_file(bad, "reading.toml"))
    problems = raised.value.problems
    for expected in (
        "reading.toml: [metric] field unit: missing",
        "reading.toml: [metric] field kind: 'outcome' is not one of payment outcome, process outcome, context",
        "reading.toml: [metric] field aggregation: 'average' is not one of mean, median, rate, proportion",
        "reading.toml: [metric] field target: 'high' is not a number",
        "reading.toml: [metric] field submitted_as: 'nwea' is not a kind of submission",
        "reading.toml: [metric] field derived_by: 'iready' is not an import profile; the profiles are nwea-map",
        "reading.toml: [[targets]] 1 field school_year: '1999-00' is not a school year of the warehouse",
        "reading.toml: [[targets]] 1 field vendor_id: 'V9' is not a vendor",
        "reading.toml: [[gap_targets]] 1 field gap: -1 is not a number of 0 or more",
        "reading.toml: [[gap_targets]] 2 field group: missing",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert loaded.version() == version and snapshot(loaded) == before
    assert "reading_sgp_v1" not in set(data_map(loaded)["metric_id"])
    with pytest.raises(metric_edits.MetricError, match=r"broken.toml: not a TOML file: .*line 1"):
        metric_file("[metric\nlabel = 1", "broken.toml")
    with pytest.raises(metric_edits.MetricError, match=r"x.toml: \[metric\] field colour: unknown"):
        metric_file('[metric]\ncolour = "red"', "x.toml")
    with pytest.raises(metric_edits.MetricError, match="a gap on a rate is a fraction, 3 points is 0.03"):
        metric_edits.edit(loaded, ADMIN, "tutoring_attendance_rate",
                          metric_file("[metric]\n[[gap_targets]]\ndimension = 'english_learner'\ngap = 3"))


def test_only_an_administrator_saves(loaded):
    version = loaded.version()
    for attempt in (
        lambda: metric_edits.add(loaded, ANALYST, metric_file(NEW_METRIC)),
        lambda: metric_edits.edit(loaded, ANALYST, "sgp", metric_file('[metric]\nlabel = "x"')),
        lambda: metric_edits.retire(loaded, Account("v", "V1 staff", "vendor", "V1"), "sgp", "x"),
    ):
        with pytest.raises(PermissionError, match="only an administrator may"):
            attempt()
    assert loaded.version() == version


def test_a_shown_definition_saves_back_unchanged(loaded):
    metric_edits.add(loaded, ADMIN, metric_file(NEW_METRIC))
    text = metric_edits.as_toml(loaded, "reading_sgp_v1")
    metric_edits.edit(loaded, ADMIN, "reading_sgp_v1", metric_file(text))
    old, new = metric_edits.history(loaded, "reading_sgp_v1").iloc[[1, 0]].to_dict("records")
    for field in (*metric_edits.COLUMNS[1:], "derived_by", "targets", "gap_targets"):
        assert old[field] == new[field], field


# --- the command line -----------------------------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_metrics_commands(loaded, tmp_path):
    data = str(loaded.settings.data_dir)
    new = tmp_path / "reading.toml"
    new.write_text(NEW_METRIC)
    added = invoke("metrics", "add", "--from", str(new), "--data-dir", data)
    assert added.exit_code == 0 and "saved reading_sgp_v1 version 1 from reading.toml" in added.output
    change = tmp_path / "change.toml"
    change.write_text('[metric]\nlabel = "Reading SGP"\nnote = "shorter label"\n')
    edited = invoke("metrics", "edit", "reading_sgp_v1", "--from", str(change), "--data-dir", data)
    assert edited.exit_code == 0 and "version 2" in edited.output
    listed = invoke("metrics", "list", "--data-dir", data)
    assert "reading_sgp_v1,Reading SGP,payment outcome" in listed.output
    history = invoke("metrics", "history", "reading_sgp_v1", "--format", "json", "--data-dir", data)
    rows = json.loads(history.output)
    assert [r["version"] for r in rows] == [2, 1] and rows[0]["note"] == "shorter label"
    assert rows[0]["saved_by"].endswith("(the command line)")
    shown = invoke("metrics", "show", "reading_sgp_v1", "--data-dir", data)
    assert 'label = "Reading SGP"' in shown.output and "[[targets]]" in shown.output
    refused = invoke("metrics", "retire", "sgp", "--note", "old", "--data-dir", data)
    assert refused.exit_code == 1 and "sgp cannot be retired: it is in use: contracts pay on it" in refused.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[metric]\nbetter = "more"\n')
    rejected = invoke("metrics", "edit", "sgp", "--from", str(bad), "--data-dir", data)
    assert rejected.exit_code == 1
    assert "nothing saved:\nbad.toml: [metric] field better: 'more' is not one of higher, lower" in rejected.output
    retired = invoke("metrics", "retire", "reading_sgp_v1", "--note", "no contract", "--data-dir", data)
    assert retired.exit_code == 0 and "retired reading_sgp_v1 (version 3)" in retired.output


# --- the pages ------------------------------------------------------------------------------


@pytest.fixture
def editable(demo_warehouse, tmp_path, monkeypatch):
    """A copy of the demo district the test may edit (the shared one stays as built)."""
    import streamlit as st

    from ciboard.settings import get_settings

    shutil.copytree(demo_warehouse.settings.data_dir, tmp_path / "data")
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    st.cache_resource.clear()
    warehouse = make_warehouse(tmp_path / "data")
    yield warehouse
    warehouse.close()
    get_settings.cache_clear()
    st.cache_resource.clear()


def test_the_data_map_page_edits_for_an_administrator_only(editable):
    metric_edits.edit(editable, ADMIN, "dosage_met", metric_file(
        "[metric]\n[[targets]]\nschool_year = '2025-26'\ntarget = 0.7\n[[targets]]\nvendor_id = 'V2'\ntarget = 0.8\n"
        "[[gap_targets]]\ndimension = 'special_education'\ngap = 0.05\nschool_year = '2025-26'"))
    admin = open_page("app_pages/data_map.py", query={"q": "high-dosage"}, user="admin")
    assert any("Gap target** special education (yes against no): gap at most 0.05 in 2025-26" in m.value
               for m in admin.markdown), [m.value for m in admin.markdown]
    assert admin.selectbox(key="edit_metric").value == "dosage_met"  # the metric searched for
    tables = [t.value for t in admin.dataframe if "set_by" in t.value.columns]
    assert tables and {("2025-26", "every vendor", 0.7), ("every year", "V2", 0.8)} <= set(
        map(tuple, tables[0][["school_year", "vendor_id", "target"]].to_numpy().tolist()))
    admin.selectbox(key="edit_metric").select("dosage_met").run()
    form = admin.get("form")[0]
    next(t for t in admin.text_input if t.label == "Label").input("High-dosage weeks")
    admin.text_input(key="edit_note").input("plainer")
    next(b for b in admin.button if b.label == "Save a new version").click().run()
    assert not admin.exception, [e.value for e in admin.exception]
    assert any("Saved High-dosage weeks version 3" in s.value or "version 3" in s.value for s in admin.success), \
        [s.value for s in admin.success]
    history = metric_edits.history(editable, "dosage_met")
    assert list(history["version"]) == [3, 2, 1] and history["label"].iloc[0] == "High-dosage weeks"
    assert history["saved_by"].iloc[0].startswith("admin ") and history["note"].iloc[0] == "plainer"
    assert form is not None
    # A bad value is refused with the field named, and nothing is saved.
    next(t for t in admin.text_input if t.label == "District target").input("most")
    next(b for b in admin.button if b.label == "Save a new version").click().run()
    assert any("the form: [metric] field target: 'most' is not a number" in e.value for e in admin.error), \
        [e.value for e in admin.error]
    assert list(metric_edits.history(editable, "dosage_met")["version"]) == [3, 2, 1]
    # The lock on a metric in use, said in words.
    admin.selectbox(key="edit_metric").select("sgp").run()
    assert any("cannot be retired" in i.value for i in admin.info)

    for user in ("analyst", "facilitator", "vendor-v1"):
        page = open_page("app_pages/data_map.py", query={"q": "high-dosage"}, user=user)
        assert not [h for h in page.header if h.value == "Edit the data map"], user
        assert not [b for b in page.button if b.label == "Save a new version"], user
    as_v1 = open_page("app_pages/data_map.py", query={"q": "high-dosage"}, user="vendor-v1")
    shown = [t.value for t in as_v1.dataframe if "set_by" in t.value.columns][0]
    assert "V2" not in set(shown["vendor_id"])  # another vendor's target is its own business

    # Trends draws the target in force: V2's own for V2, the school year's for the district.
    def target_lines(user: str) -> list[str]:
        trends = open_page("app_pages/trends.py", query={"metric": "High-dosage weeks"}, user=user)
        return [t["name"] for f in figures(trends) for t in f["data"] if str(t.get("name", "")).startswith("Target")]

    assert target_lines("vendor-v2") == ["Target 80.0%"]
    assert target_lines("facilitator") == ["Target 70.0%"]


def test_disparities_shows_the_gap_target_against_the_measured_gap(editable):
    metric_edits.edit(editable, ADMIN, "tutoring_attendance_rate", metric_file(
        "[metric]\n[[gap_targets]]\ndimension = 'english_learner'\ngap = 0.03\nschool_year = '2025-26'"))
    page = open_page("app_pages/disparities.py",
                     query={"metric": "Tutoring attendance rate", "by": "English learner"}, user="facilitator")
    said = [m.value for m in page.markdown if "Gap target" in m.value]
    assert len(said) == 1, [m.value for m in page.markdown]
    text = said[0]
    assert "Gap target for 2025-26: English learner: yes within 3.0 pts of English learner: no." in text, text
    assert "Measured gap" in text and "95% CI" in text
    assert any(v in text for v in ("met: the whole interval", "not met: the whole interval", "not yet sure"))
    gap_chart = [f for f in figures(page) if "Gap to" in str(f["layout"].get("title"))][0]
    assert sorted(s["x0"] for s in gap_chart["layout"]["shapes"] if s["line"].get("dash") == "dot") == [-3.0, 3.0]
    # Another dimension: no target to show.
    other = open_page("app_pages/disparities.py",
                      query={"metric": "Tutoring attendance rate", "by": "Gender"}, user="facilitator")
    assert not [m.value for m in other.markdown if "Gap target" in m.value]


def test_an_imported_metric_is_edited_like_any_other(tmp_path):
    from conftest import SAMPLES
    from ciboard import nwea

    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init([])
    files = sorted((SAMPLES / "nwea_map_current").glob("*.csv"))
    nwea.import_files(warehouse, files)
    metric = "nwea_mathematics_met_typical_growth"
    metric_edits.edit(warehouse, ADMIN, metric, metric_file(
        "[metric]\nlabel = 'Met typical growth in math'\ntarget = 0.6\n"
        "[[targets]]\nschool_year = '2024-25'\ntarget = 0.65\n"
        "[[gap_targets]]\ndimension = 'english_learner'\ngap = 0.05"))
    row = data_map(warehouse).set_index("metric_id").loc[metric]
    assert (row["label"], row["target"]) == ("Met typical growth in math", 0.6)
    assert metric_edits.target_for(warehouse, metric, "2024-25", None) == 0.65
    with pytest.raises(metric_edits.MetricInUse, match="values of it are loaded"):
        metric_edits.retire(warehouse, ADMIN, metric, "x")
    warehouse.close()
