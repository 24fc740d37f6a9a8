"""Import profiles: a TOML file says how an export maps to students, windows and metrics. The
sample i-Ready profile and export (data/samples/iready) load through the command line and give
the numbers a hand computation from the file gives; a bad profile or file is refused whole."""

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from conftest import SAMPLES, sample_submissions, view, write_csv
from ciboard import profiles
from ciboard.cli import main
from ciboard.ingest import ingest
from ciboard.warehouse import migrations

IREADY = SAMPLES / "iready"
PROFILE = IREADY / "iready-diagnostic.toml"
RESULTS = IREADY / "diagnostic_results.csv"
FALL, WINTER, SPRING = "2025-08-04", "2025-12-01", "2026-03-02"  # each window's first week


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def district(warehouse):
    """The sample district (four rostered students), as the command line sees it."""
    ingest(warehouse, sample_submissions())
    return warehouse


def data_dir(warehouse) -> str:
    return str(warehouse.settings.data_dir)


def by_window(warehouse, metric: str) -> dict[str, tuple[float, int]]:
    series = view(warehouse, "series", metric=metric, grain="window")
    return {str(row.period_start): (row.value, row.n) for row in series.itertuples()}


def test_the_sample_profile_loads_the_sample_export_with_the_hand_computed_numbers(district):
    added = invoke("profile", "add", str(PROFILE), "--data-dir", data_dir(district))
    assert added.exit_code == 0, added.output
    assert "profile iready-diagnostic: version 1" in added.output
    loaded = invoke("import", "iready-diagnostic", str(RESULTS), "--data-dir", data_dir(district))
    assert loaded.exit_code == 0, loaded.output
    assert "diagnostic_results.csv: accepted" in loaded.output

    # By hand from the file. Math: fall 420, 398, 455, 510; winter 432, 415, 470, 516; spring
    # 447, 420, 478 (the fourth student took no spring diagnostic).
    assert by_window(district, "iready_math_scale_score") == {
        FALL: (pytest.approx(1783 / 4), 4), WINTER: (pytest.approx(1833 / 4), 4), SPRING: (pytest.approx(1345 / 3), 3),
    }
    # Percentiles: fall 45, 30, 62, 71 -> median 53.5; at or above 50: fall 62, 71; winter 50,
    # 70, 74 of four; spring 56, 72 of three.
    assert by_window(district, "iready_math_percentile")[FALL] == (53.5, 4)
    assert by_window(district, "iready_math_at_or_above_50th") == {
        FALL: (0.5, 4), WINTER: (0.75, 4), SPRING: (pytest.approx(2 / 3), 3),
    }
    # Annual typical growth (fall's Annual Typical Growth Measure), spring only: gains 27 of 24,
    # 22 of 26, 23 of 20.
    assert by_window(district, "iready_math_met_typical_growth") == {SPRING: (pytest.approx(2 / 3), 3)}
    # A fixed 15 points: winter gains 12, 17, 15, 6; spring 27, 22, 23.
    assert by_window(district, "iready_math_gained_15") == {WINTER: (0.5, 4), SPRING: (1.0, 3)}
    # Reading, winter gains 10, 19, 6, 20.
    assert by_window(district, "iready_reading_gained_15") == {WINTER: (0.5, 4)}

    # The metrics are in the data map with the profile's definitions, and a vendor sees its own.
    metrics = {m["metric_id"]: m for m in json.loads(invoke("datamap", "--format", "json", "--data-dir", data_dir(district)).stdout)}
    growth = metrics["iready_reading_met_typical_growth"]
    assert growth["label"] == "i-Ready Reading: met annual typical growth"
    assert growth["aggregation"] == "proportion" and growth["kind"] == "payment outcome" and growth["frequency"] == "window"
    assert "Annual Typical Growth Measure" in growth["definition"] and "i-Ready Diagnostic" in growth["instrument"]
    assert metrics["iready_math_percentile"]["aggregation"] == "median"
    with district.cursor() as cur:
        versions = cur.execute("select distinct kind, profile_version from profile_results").fetchall()
    assert versions == [("iready_results", 1)]

    again = invoke("import", "iready-diagnostic", str(RESULTS), "--data-dir", data_dir(district))
    assert again.exit_code == 0 and "every file was loaded before" in again.output


def test_every_version_is_kept_with_who_added_it_and_the_import_uses_the_latest(district, tmp_path):
    home = data_dir(district)
    assert invoke("profile", "add", str(PROFILE), "--data-dir", home).exit_code == 0
    assert invoke("import", "iready-diagnostic", str(RESULTS), "--data-dir", home).exit_code == 0
    assert by_window(district, "iready_math_at_or_above_50th")[WINTER] == (0.75, 4)
    same = invoke("profile", "add", str(PROFILE), "--data-dir", home)
    assert "version 1" in same.output  # the same text again is no new version
    edited = tmp_path / "iready.toml"
    edited.write_text(PROFILE.read_text().replace("threshold = 50", "threshold = 60"))
    assert "version 2" in invoke("profile", "add", str(edited), "--data-dir", home).output

    listed = json.loads(invoke("profile", "list", "--format", "json", "--data-dir", home).stdout)
    rows = [(p["name"], p["version"], p["shipped"]) for p in listed]
    assert rows == [("iready-diagnostic", 1, False), ("iready-diagnostic", 2, False), ("nwea-map", 1, True)]
    assert all(p["added_by"] and p["added_at"] for p in listed)
    assert listed[-1]["added_by"] == "ciboard (shipped)"
    assert "threshold = 60" in invoke("profile", "show", "iready-diagnostic", "--data-dir", home).output
    assert "threshold = 50" in invoke("profile", "show", "iready-diagnostic", "--version", "1", "--data-dir", home).output

    # The facts follow the new version without loading the file again. Winter percentiles 50,
    # 38, 70, 74: two of four reach 60. The rows say which version read them.
    assert by_window(district, "iready_math_at_or_above_50th")[WINTER] == (0.5, 4)
    with district.cursor() as cur:
        assert cur.execute("select distinct profile_version from profile_results").fetchall() == [(1,)]


def test_a_bad_profile_is_refused_with_every_problem_named_by_its_key(district, tmp_path):
    text = PROFILE.read_text()
    broken = (
        text.replace('metric_prefix = "iready"', 'metric_prefix = "nwea"')
        .replace('derive = "median"', 'derive = "middle"')
        .replace('of = "percentile"\nthreshold = 50', 'of = "lexile"')
        .replace('spring = "Annual Typical Growth Measure"', 'fall = "Annual Typical Growth Measure"')
        .replace('subject = "Subject"', 'subject = "Subject"\ngrade = "Student Grade"')
    )
    with pytest.raises(profiles.ProfileInvalid) as invalid:
        profiles.parse(broken, "broken.toml")
    assert invalid.value.problems == [
        "results.columns.grade: is not a key of an import profile (misspelt?)",
        "metrics[2].derive: must be one of mean, median, at_least, growth",
        "metrics[3].of: 'lexile' is not one of results.scores (scale_score, percentile)",
        "metrics[3].threshold: is missing",
        "metrics[4].target_columns.fall: must be a window after from_window (fall)",
    ]
    # The prefix belongs to the shipped NWEA profile: refused when added, and nothing is kept.
    path = tmp_path / "taken.toml"
    path.write_text(text.replace('metric_prefix = "iready"', 'metric_prefix = "nwea"'))
    before = district.version()
    refused = invoke("profile", "add", str(path), "--data-dir", data_dir(district))
    assert refused.exit_code == 1 and "metric_prefix: 'nwea' is the prefix of profile nwea-map" in refused.output
    assert district.version() == before
    # Whatever a profile says reaches SQL only as a checked name or number.
    hostile = (text.replace('student_id = "Student ID"', 'student_id = "x\\" from students; --"')
               .replace("threshold = 50", "threshold = inf").replace('suffix = "gained_15"', 'suffix = "a\' or 1=1"'))
    with pytest.raises(profiles.ProfileInvalid) as invalid:
        profiles.parse(hostile)
    assert [p.split(":")[0] for p in invalid.value.problems] == [
        "results.columns.student_id", "metrics[3].threshold", "metrics[5].suffix"]
    not_toml = tmp_path / "bad.toml"
    not_toml.write_text("name = \n")
    assert "bad.toml is not a usable import profile" in invoke("profile", "add", str(not_toml), "--data-dir", data_dir(district)).output


def test_a_bad_export_is_rejected_with_file_row_and_column_and_nothing_lands(district, tmp_path):
    home = data_dir(district)
    invoke("profile", "add", str(PROFILE), "--data-dir", home)
    header = RESULTS.read_text().splitlines()[0]
    bad = write_csv(
        tmp_path / "results.csv", header,
        "ST0000001,R,A,4,2025-2026,E,Math,09/15/2025,09/16/2025,52,420,L,P,45,24,41",
        "ST0000009,R,A,4,2025-2026,E,Math,09/15/2025,09/16/2025,52,420,L,P,45,24,41",
        "ST0000002,R,A,4,2025-2026,E,Math,09/15/2025,09/16/2025,52,950,L,P,0,24,41",
        "ST0000003,R,A,4,2025-2026,E,Math,09/15/2025,13/45/2025,52,455,L,P,62,20,36",
        "ST0000001,R,A,4,2025-2026,E,Math,09/25/2025,09/26/2025,52,421,L,P,46,24,41",
    )
    errors = tmp_path / "errors.csv"
    before = district.version()
    result = invoke("import", "iready-diagnostic", str(bad), "--errors", str(errors), "--data-dir", home)
    assert result.exit_code == 1
    found = {line for line in result.output.splitlines() if line.startswith("results.csv")}
    assert {
        "results.csv, row 3: Student ID = 'ST0000009': is not a known student: load the district's student records"
        " or the vendor's roster first",
        "results.csv, row 4: Overall Scale Score = '950': must be from 100 to 800",
        "results.csv, row 4: Percentile = '0': must be from 1 to 99",
        "results.csv, row 5: Completion Date = '13/45/2025': is not a date (YYYY-MM-DD or MM/DD/YYYY)",
    } <= found
    assert any(line.startswith("results.csv, row 6: Student ID = 'ST0000001, 2025-26 fall, Math': repeats the key")
               for line in found), found
    assert "row,column" in errors.read_text().splitlines()[0].replace("file,", "")
    assert district.version() == before
    with district.cursor() as cur:
        assert cur.execute("select count(*) from profile_results").fetchall() == [(0,)]
    other = write_csv(tmp_path / "roster.csv", "student_id,vendor_id", "S1,V1")
    refused = invoke("import", "iready-diagnostic", str(other), "--data-dir", home)
    assert refused.exit_code == 1 and "is not a Diagnostic Results file (with a Overall Scale Score column)" in refused.output
    unknown = invoke("import", "star-reading", str(RESULTS), "--data-dir", home)
    assert unknown.exit_code == 1 and "no import profile named 'star-reading'" in unknown.output


def test_imports_made_before_profiles_move_to_the_profile_tables(tmp_path):
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    for number, _, sql in migrations():
        if number == 9:
            con.execute(
                """insert into nwea_results values
                ('S1', 'Fall 2024-2025', '2024-25', 'fall', 'Mathematics', 'mathematics', 'T1', '2024-09-10',
                 200, 35, true, 8, 12, 1),
                ('S1', 'Winter 2024-2025', '2024-25', 'winter', 'Mathematics', 'mathematics', 'T2', '2025-01-10',
                 209, 40, true, null, null, 1)"""
            )
            con.execute("insert into nwea_students values ('S1', 'Fall 2024-2025', '2024-25', 'fall', 'lincoln', 4, 'White', 'Female', 2)")
        con.execute(sql)
    rows = con.execute("select kind, term_name, subject_id, preferred, scores from profile_results order by test_date").fetchall()
    assert rows == [
        ("nwea_results", "Fall 2024-2025", "mathematics", True,
         {"rit": 200.0, "percentile": 35.0, "met_typical_growth:winter": 8.0, "met_typical_growth:spring": 12.0}),
        ("nwea_results", "Winter 2024-2025", "mathematics", True, {"rit": 209.0, "percentile": 40.0}),
    ]
    assert con.execute("select kind, student_key, school_id from profile_students").fetchall() == [("nwea_students", "S1", "lincoln")]
    tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "nwea_results" not in tables and "nwea_students" not in tables


def test_the_shipped_profiles_read_as_valid_profiles():
    nwea = profiles.shipped()["nwea-map"]
    assert nwea.kinds == ("nwea_students", "nwea_results")
    assert [m.suffix for m in nwea.metrics] == ["rit", "percentile", "met_typical_growth"]
    assert nwea.metrics[2].target_columns["spring"] == ("TypicalFallToSpringGrowth", "FallToSpringProjectedGrowth")
    sample = profiles.parse(PROFILE.read_text())
    assert sample.results.kind == "iready_results" and sample.students is None
    # The state-file example of docs/profiles.md is a profile as written.
    guide = (Path(__file__).resolve().parent.parent / "docs" / "profiles.md").read_text()
    state = profiles.parse(guide.split("```toml\n")[1].split("```")[0], "docs/profiles.md")
    assert state.results.window == "Admin" and [m.aggregation for m in state.metrics] == ["proportion", "proportion"]


def test_a_profile_with_a_window_column_reads_the_window_from_it(district, tmp_path):
    guide = (Path(__file__).resolve().parent.parent / "docs" / "profiles.md").read_text()
    profile = tmp_path / "state.toml"
    profile.write_text(guide.split("```toml\n")[1].split("```")[0])
    home = data_dir(district)
    assert invoke("profile", "add", str(profile), "--data-dir", home).exit_code == 0
    header = "SSID,Admin,TestDate,Content Area,Scale Score,Performance Level"
    # The spring administration of 2 March is spring whatever the calendar's week says; ST0000004's
    # fall test is dated in winter and still counts as fall.
    results = write_csv(
        tmp_path / "state.csv", header,
        "ST0000001,Fall,2025-10-06,ELA,2400,2", "ST0000001,Spring,2026-03-02,ELA,2440,3",
        "ST0000002,Fall,2025-10-06,ELA,2500,3", "ST0000002,Spring,2026-03-03,ELA,2520,3",
        "ST0000004,fall,2025-12-08,ELA,2450,2", "ST0000004,SPRING,2026-04-01,ELA,2490,4",
    )
    loaded = invoke("import", "state-test", str(results), "--data-dir", home)
    assert loaded.exit_code == 0, loaded.output
    assert by_window(district, "state_ela_proficient") == {FALL: (pytest.approx(1 / 3), 3), SPRING: (1.0, 3)}
    assert by_window(district, "state_ela_scale_growth_30") == {SPRING: (pytest.approx(2 / 3), 3)}

    bad = write_csv(tmp_path / "bad.csv", header, "ST0000003,Summer,2025-10-06,ELA,2400,5")
    refused = invoke("import", "state-test", str(bad), "--data-dir", home)
    assert "bad.csv, row 2: Admin = 'Summer': must be fall, winter or spring" in refused.output
    assert "bad.csv, row 2: Performance Level = '5': must be from 1 to 4" in refused.output
