"""NWEA MAP Growth exports: `ciboard import nwea-map` on NWEA's own training files (pre-2015
layout) and on a current-layout sample, checked against a hand computation from the raw files."""

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import SAMPLES, make_warehouse, sample_submissions, view, write_csv
from ciboard import exports, nwea, profiles
from ciboard.access import Scope
from ciboard.cli import main
from ciboard.ingest import IngestRejected, Submission, ingest
from ciboard.queries import NOT_TUTORED, run

REAL = Path("/work/shared/realdata/nwea_map_cdf")
REAL_FILES = sorted(REAL.glob("*.csv"))
CURRENT = SAMPLES / "nwea_map_current"
needs_real = pytest.mark.skipif(len(REAL_FILES) != 4, reason="NWEA's training files are not on this machine")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def query(data: str, metric: str, *params: str) -> pd.DataFrame:
    args = ["query", "series", "--as", "analyst", "--param", f"metric={metric}", "--param", "grain=window"]
    result = invoke(*args, *[a for p in params for a in ("--param", p)], "--format", "json", "--data-dir", data)
    assert result.exit_code == 0, result.output
    return pd.DataFrame(json.loads(result.stdout))


@pytest.fixture
def empty(tmp_path):
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init([])
    yield warehouse
    warehouse.close()


@needs_real
def test_real_files_give_the_hand_computed_growth_rate_mean_and_median(tmp_path):
    data = str(tmp_path / "data")
    assert invoke("init", "--data-dir", data).exit_code == 0
    result = invoke("import", "nwea-map", *map(str, REAL_FILES), "--data-dir", data)
    assert result.exit_code == 0, result.output
    assert "school year(s) 2013-14 added" in result.output

    # By hand from the raw files: each student's growth-measure test per term.
    fall = pd.read_csv(REAL / "Fall2013AssessmentResults.csv", dtype=str)
    winter = pd.read_csv(REAL / "Winter2013AssessmentResults.csv", dtype=str)

    def growth_tests(frame):
        math = frame[(frame["MeasurementScale"] == "Mathematics") & (frame["GrowthMeasureYN"] == "TRUE")]
        return math.assign(rit=math["TestRITScore"].astype(float), typical=pd.to_numeric(math["TypicalFallToWinterGrowth"]))

    both = growth_tests(winter).merge(growth_tests(fall), on="StudentID", suffixes=("_winter", "_fall"))
    judged = both[both["typical_fall"].notna()]
    met = ((judged["rit_winter"] - judged["rit_fall"]) >= judged["typical_fall"]).mean()
    winter_math = growth_tests(winter)

    growth = query(data, "nwea_mathematics_met_typical_growth")
    assert list(growth["period_start"]) == ["2013-12-02"]  # the winter window only: fall has no growth
    assert growth["n"].iloc[0] == len(judged) == 626
    assert growth["value"].iloc[0] == pytest.approx(met) == pytest.approx(404 / 626)
    rit = query(data, "nwea_mathematics_rit").set_index("period_start")
    assert rit.loc["2013-12-02", "value"] == pytest.approx(winter_math["rit"].mean())
    assert rit.loc["2013-12-02", "n"] == winter_math["StudentID"].nunique() == 681
    percentile = query(data, "nwea_mathematics_percentile").set_index("period_start")
    assert percentile.loc["2013-12-02", "value"] == winter_math["TestPercentile"].astype(float).median()

    # Every scale has its three metrics in the data map, with its definitions.
    metrics = json.loads(invoke("datamap", "--format", "json", "--data-dir", data).stdout)
    ids = {m["metric_id"] for m in metrics}
    for scale in ("mathematics", "reading", "language_usage", "science_general_science"):
        assert {f"nwea_{scale}_rit", f"nwea_{scale}_percentile", f"nwea_{scale}_met_typical_growth"} <= ids
    science = next(m for m in metrics if m["metric_id"] == "nwea_science_general_science_met_typical_growth")
    assert science["label"] == "Science - General Science: met typical growth"
    assert science["aggregation"] == "proportion" and science["better"] == "higher" and science["frequency"] == "window"
    assert "TypicalFallToWinterGrowth" in science["definition"] and "NWEA MAP Growth" in science["instrument"]

    again = invoke("import", "nwea-map", *map(str, REAL_FILES), "--data-dir", data)
    assert again.exit_code == 0 and again.output.count(": unchanged") == 4


@needs_real
def test_real_students_become_district_students_that_no_vendor_sees(empty):
    nwea.import_files(empty, REAL_FILES)
    students = pd.read_csv(REAL / "Fall2013StudentsBySchool.csv", dtype=str)
    with empty.cursor() as cur:
        rows = cur.execute(
            "select vendor_id, english_learner, baseline_band, count(*) from students group by all"
        ).fetchall()
        schools = dict(cur.execute("select school_id, name from schools").fetchall())
        kindergarten = cur.execute("select count(*) from students where grade = 0").fetchall()[0][0]
    assert rows == [(None, None, None, len(students))]
    assert schools == {
        "mt-bachelor-middle-school": "Mt. Bachelor Middle School",
        "mt-hood-high-school": "Mt. Hood High School",
        "st-helens-elementary-school": "St. Helens Elementary School",
        "three-sisters-elementary-school": "Three Sisters Elementary School",
    }
    assert kindergarten == (students["Grade"] == "13").sum() == 20  # client-based MAP's code for K

    # Groups from StudentsBySchool, in the dashboard's spelling; unknown groups are in no group.
    by_race = view(empty, "breakdown", metric="nwea_reading_rit", by="race_ethnicity")
    counts = students["StudentEthnicGroup"].map(nwea.NWEA_MAP.students.race_ethnicity).value_counts()
    assert dict(zip(by_race["race_ethnicity"], by_race["n"])) == counts.to_dict()
    assert view(empty, "breakdown", metric="nwea_reading_rit", by="english_learner").empty
    facilitator = run(empty, "series", Scope.parse("facilitator"), {"metric": "nwea_reading_rit", "grain": "window"})
    assert len(facilitator) == 2 and not facilitator["suppressed"].any()
    mine = run(empty, "series", Scope.parse("vendor:V1"), {"metric": "nwea_reading_rit", "grain": "window"})
    assert mine.empty


def test_current_layout_measures_growth_against_the_fall_tests_projected_growth(empty):
    nwea.import_files(empty, sorted(CURRENT.glob("*.csv")))
    growth = view(empty, "series", metric="nwea_mathematics_met_typical_growth", grain="window")
    # Winter: S1 gained 9 of 8 projected, S2 5 of 7, S3 6 of 6; S4's fall test projects none.
    # Spring: 13 of 12, 12 of 11, 11 of 10.
    assert [str(d) for d in growth["period_start"]] == ["2024-12-02", "2025-03-03"]
    assert list(growth["value"]) == pytest.approx([2 / 3, 1.0])
    assert list(growth["n"]) == [3, 3]
    # Reading: the retest that is not a growth measure (RIT 230) is neither the mean nor growth.
    reading = view(empty, "series", metric="nwea_reading_rit", grain="window")
    assert list(reading["value"]) == pytest.approx([197.5, 202.5])
    reading_growth = view(empty, "series", metric="nwea_reading_met_typical_growth", grain="window")
    assert list(reading_growth["value"]) == pytest.approx([0.5])
    with empty.cursor() as cur:
        assert cur.execute("select school_year from school_years").fetchall() == [("2024-25",)]


def test_bad_files_are_rejected_with_every_problem_and_nothing_lands(empty, tmp_path):
    header = open(CURRENT / "StudentsBySchool.csv").readline().strip()
    students = write_csv(
        tmp_path / "StudentsBySchool.csv", header,
        '"Fall 2024-2025","D","Lincoln Elementary School","A","B","","S1","01/01/2015","Hispanic or Latino","F","4"',
        '"Fall 2024-2025","D","Lincoln Elementary School","A","B","","S2","01/01/2015","Martian","F","4"',
        '"Autumn 2024","D","Lincoln Elementary School","A","B","","S3","01/01/2015","White","X","14"',
    )
    header = open(CURRENT / "AssessmentResults.csv").readline().strip()
    results = write_csv(
        tmp_path / "AssessmentResults.csv", header,
        '"Fall 2024-2025","S1","Lincoln","Mathematics","Mathematics","TRUE","S","T","T1","09/10/2024","45","200","3","40","8","","","12","",""',
        '"Fall 2024-2025","S9","Lincoln","Mathematics","Mathematics","TRUE","S","T","T2","09/10/2024","45","999","3","0","","","","","",""',
        '"Fall 2024-2025","S1","Lincoln","Mathematics","Mathematics","TRUE","S","T","T3","09/10/2023","45","201","3","40","","","","","",""',
    )
    before = empty.version()
    with pytest.raises(IngestRejected) as rejected:
        nwea.import_files(empty, [results, students])
    found = {(p.file, p.row, p.column, p.value, p.reason) for p in rejected.value.problems}
    assert ("StudentsBySchool.csv", 3, "StudentEthnicGroup", "Martian",
            "is not an ethnic group this import knows (" + ", ".join(nwea.NWEA_MAP.students.race_ethnicity) + ")") in found
    problems = {(p.file, p.row, p.column, p.value) for p in rejected.value.problems}
    assert {
        ("StudentsBySchool.csv", 4, "TermName", "Autumn 2024"),
        ("StudentsBySchool.csv", 4, "StudentGender", "X"),
        ("StudentsBySchool.csv", 4, "Grade", "14"),
        ("AssessmentResults.csv", 3, "StudentID", "S9"),
        ("AssessmentResults.csv", 3, "TestRITScore", "999"),
        ("AssessmentResults.csv", 3, "TestPercentile", "0"),
        ("AssessmentResults.csv", 4, "TestStartDate", "09/10/2023"),
        ("AssessmentResults.csv", 4, "GrowthMeasureYN", "TRUE"),
        ("AssessmentResults.csv", 2, "GrowthMeasureYN", "TRUE"),
    } <= problems
    # Nothing landed: no version, no school year, no student, no metric.
    assert empty.version() == before
    with empty.cursor() as cur:
        assert cur.execute("select count(*) from school_years").fetchall()[0][0] == 0
        assert cur.execute("select count(*) from students").fetchall()[0][0] == 0
        assert cur.execute("select count(*) from metrics where metric_id like 'nwea%'").fetchall()[0][0] == 0


def test_cli_prints_every_problem_and_writes_them_as_csv(tmp_path):
    data = str(tmp_path / "data")
    invoke("init", "--data-dir", data)
    header = open(CURRENT / "StudentsBySchool.csv").readline().strip()
    bad = write_csv(tmp_path / "StudentsBySchool.csv", header,
                    '"Fall 2024-2025","D","Lincoln","A","B","","S1","01/01/2015","White","F","Fourth"')
    errors = tmp_path / "errors.csv"
    result = invoke("import", "nwea-map", str(bad), "--errors", str(errors), "--data-dir", data)
    assert result.exit_code == 1
    assert "StudentsBySchool.csv, row 2: Grade = 'Fourth': must be a grade" in result.output
    rows = list(csv.DictReader(io.StringIO(errors.read_text())))
    assert [(r["row"], r["column"], r["value"]) for r in rows] == [("2", "Grade", "Fourth")]
    other = write_csv(tmp_path / "roster.csv", "student_id,vendor_id", "S1,V1")
    refused = invoke("import", "nwea-map", str(other), "--data-dir", data)
    assert refused.exit_code == 1 and "neither an AssessmentResults file" in refused.output


def test_a_vendor_rostering_a_district_student_takes_their_results_and_may_not_send_for_others(tmp_path):
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    ingest(warehouse, sample_submissions())
    nwea.import_files(warehouse, sorted(CURRENT.glob("*.csv")))
    # A vendor's session for a district student nobody has rostered is refused.
    sessions = write_csv(tmp_path / "sessions.csv", "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                         "S1,2025-09-16,T1,3,45,45")
    with pytest.raises(IngestRejected) as rejected:
        ingest(warehouse, [Submission(sessions, "sessions", "V1")])
    assert [p.reason for p in rejected.value.problems] == ["is not on your roster"]
    # Once the vendor rosters the student, their NWEA facts are the vendor's.
    with warehouse.cursor() as cur:
        school = cur.execute("select school_id from schools order by 1 limit 1").fetchall()[0][0]
    roster = write_csv(
        tmp_path / "roster.csv",
        "student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,special_education,baseline_band,enrolled_on",
        f"S1,V1,{school},4,Hispanic,Female,true,false,false,below,2025-09-08",
    )
    ingest(warehouse, [Submission(roster, "roster", "V1")])
    mine = run(warehouse, "breakdown", Scope.parse("analyst"), {"metric": "nwea_mathematics_rit", "by": "vendor_id"})
    # The export's other students are in no vendor's program: not tutored.
    assert list(mine["vendor_id"]) == ["V1", NOT_TUTORED] and mine["n"].iloc[0] == 1


def test_term_names_and_scales_become_years_windows_and_metric_ids():
    assert profiles.school_year_of_term("Fall 2013-2014") == "2013-14"
    assert profiles.school_year_of_term("Spring 2024-2025") == "2024-25"
    assert profiles.school_year_of_term("Fall 2013-2015") is None
    assert profiles.school_year_of_term("Summer 2013") is None
    import duckdb

    con = duckdb.connect()
    window, year = profiles.term_sql("'Winter 2013-2014'")
    assert con.execute(f"select {window}, {year}").fetchall() == [("winter", "2013-14")]
    scales = ["Mathematics", "Reading", "Language Usage", "Science - General Science"]
    ids = [con.execute(f"select {profiles.slug_sql(repr(s))}").fetchall()[0][0] for s in scales]
    assert ids == ["mathematics", "reading", "language_usage", "science_general_science"]


@pytest.fixture
def nwea_dashboard(tmp_path_factory, monkeypatch):
    """The dashboard over a warehouse holding only NWEA's training files, with an analyst."""
    import streamlit as st

    from ciboard import accounts
    from ciboard.appdb import AppDB
    from ciboard.settings import get_settings

    warehouse = make_warehouse(tmp_path_factory.mktemp("nwea") / "data")
    warehouse.init([])
    nwea.import_files(warehouse, REAL_FILES)
    accounts.add_user(AppDB.of(warehouse.settings), "analyst", role="analyst", password="a-long-test-password")
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(warehouse.settings.data_dir))
    get_settings.cache_clear()
    st.cache_resource.clear()
    yield warehouse
    get_settings.cache_clear()
    warehouse.close()


@needs_real
def test_pages_show_the_imported_metrics(nwea_dashboard):
    from conftest import figures, open_page, plotted

    trends = open_page("app_pages/trends.py", query={"metric": "Mathematics: mean RIT"})
    chart = next(t for t in figures(trends)[0]["data"] if t.get("mode") == "lines+markers")
    winter = pd.read_csv(REAL / "Winter2013AssessmentResults.csv", dtype=str)
    winter = winter[(winter["MeasurementScale"] == "Mathematics") & (winter["GrowthMeasureYN"] == "TRUE")]
    assert plotted(chart)[-1] == pytest.approx(winter["TestRITScore"].astype(float).mean())

    growth = open_page("app_pages/trends.py", query={"metric": "Mathematics: met typical growth"})
    assert any("64.5%" in m.value for m in growth.markdown), [m.value for m in growth.markdown]

    disparities = open_page("app_pages/disparities.py", query={"metric": "Reading: mean RIT", "by": "Race/ethnicity"})
    assert any("The widest gap" in m.value for m in disparities.markdown)

    data_map = open_page("app_pages/data_map.py", query={"q": "NWEA"})
    labels = [e.label.split("**")[1] for e in data_map.expander]
    assert len(labels) == 12 and "Science - General Science: met typical growth" in labels, labels


def test_a_corrected_results_file_replaces_the_earlier_one_only_when_confirmed(tmp_path):
    data = str(tmp_path / "data")
    invoke("init", "--data-dir", data)
    assert invoke("import", "nwea-map", *map(str, sorted(CURRENT.glob("*.csv"))), "--data-dir", data).exit_code == 0
    lines = (CURRENT / "AssessmentResults.csv").read_text().splitlines()
    corrected = tmp_path / "AssessmentResults.csv"
    corrected.write_text("\n".join(line for line in lines if '"T302"' not in line) + "\n")  # S2's spring test

    refused = invoke("import", "nwea-map", str(corrected), "--data-dir", data)
    assert refused.exit_code == 1 and "run the same command again with --replace" in refused.output
    assert "1 removed" in refused.output
    assert list(query(data, "nwea_mathematics_met_typical_growth")["n"]) == [3, 3]

    replaced = invoke("import", "nwea-map", str(corrected), "--replace", "--data-dir", data)
    assert replaced.exit_code == 0 and "AssessmentResults.csv: accepted" in replaced.output
    assert list(query(data, "nwea_mathematics_met_typical_growth")["n"]) == [3, 2]


@pytest.mark.parametrize("suffix", [".xlsx", ".parquet"])
def test_an_export_saved_as_excel_or_parquet_loads_as_its_csv_does(empty, tmp_path, suffix):
    """A district that opened the export in Excel, or keeps it as Parquet, sends it as it is:
    the columns keep the types Excel or the Parquet writer gave them (numbers, not text)."""
    files = []
    for csv_file in sorted(CURRENT.glob("*.csv")):
        frame = pd.read_csv(csv_file)
        saved = tmp_path / (csv_file.stem + suffix)
        frame.to_excel(saved, index=False) if suffix == ".xlsx" else frame.to_parquet(saved, index=False)
        files.append(saved)
    nwea.import_files(empty, files)
    growth = view(empty, "series", metric="nwea_mathematics_met_typical_growth", grain="window")
    assert list(growth["value"]) == pytest.approx([2 / 3, 1.0]) and list(growth["n"]) == [3, 3]
    reading = view(empty, "series", metric="nwea_reading_rit", grain="window")
    assert list(reading["value"]) == pytest.approx([197.5, 202.5])


def test_an_export_file_that_cannot_be_read_is_named_with_why(empty, tmp_path):
    broken = tmp_path / "AssessmentResults.xlsx"
    broken.write_bytes(b"not a workbook")
    with pytest.raises(exports.NotAnExport, match=r"AssessmentResults.xlsx cannot be read: is not an Excel workbook"):
        nwea.import_files(empty, [broken])
