"""The district's student records: the source of a student's groups, effective-dated, with the
district's own spellings (Ed-Fi descriptor URIs, SIS codes) mapped and nothing guessed."""

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from conftest import SAMPLES, built_once, copy_of, make_warehouse, snapshot, write_csv
from ciboard.access import ANALYST, Scope
from ciboard.groups import BadSpellings
from ciboard.ingest import IngestRejected, Submission, ingest
from ciboard.queries import run
from ciboard.settings import Settings

HEADER = (
    "student_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,special_education,"
    "baseline_band,as_of"
)
SESSIONS_HEADER = "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"
ROSTER_HEADER = (SAMPLES / "roster.csv").read_text().splitlines()[0]


def samples(*kinds: tuple[str, str | None]) -> list[Submission]:
    return [Submission(SAMPLES / f"{kind}.csv", kind, vendor) for kind, vendor in kinds]


# The README's order: the district's records come before the rosters that name their students.
README_ORDER = (
    ("schools", None), ("vendors", None), ("contracts", None), ("annotations", None), ("students", None),
    ("roster", None), ("sessions", "V1"), ("school_attendance", None), ("assessment", None), ("survey", "V1"),
)


@pytest.fixture(scope="module")
def built_district(tmp_path_factory, empty_data_dir):
    return built_once(tmp_path_factory.mktemp("district"), empty_data_dir, lambda files: samples(*README_ORDER))


@pytest.fixture
def district(tmp_path, built_district):
    """The samples loaded as the README says, the district's student records among them."""
    warehouse = copy_of(built_district, tmp_path / "data")
    yield warehouse
    warehouse.close()


def rows(warehouse, sql: str) -> list[tuple]:
    with warehouse.cursor() as cur:
        return cur.execute(sql).fetchall()


def problems_of(warehouse, *submissions: Submission) -> list[tuple]:
    before = snapshot(warehouse)
    with pytest.raises(IngestRejected) as caught:
        ingest(warehouse, list(submissions))
    assert snapshot(warehouse) == before, "a rejected file changed the data"
    return [(p.file, p.row, p.column, p.value, p.reason) for p in caught.value.problems]


def test_descriptor_uris_and_sis_spellings_become_the_dashboards_groups(district):
    # The sample spells groups four ways: SIS words (Hispanic/Latino, F, Y), Ed-Fi descriptor
    # URIs (race, sex, grade level), Yes/No and 1/0, TRUE/FALSE.
    assert sorted(rows(district, "select * exclude (batch_id) from district_students")) == [
        ("ST0000001", date(2025, 9, 1), "E01", 4, "Hispanic", "Female", True, True, False, "below"),
        ("ST0000002", date(2025, 9, 1), "E01", 4, "Black", "Male", True, False, False, "well below"),
        ("ST0000003", date(2025, 9, 1), "E02", 5, "White", "Female", False, False, True, "near"),
        ("ST0000004", date(2025, 9, 1), "M01", 7, "Asian", "Male", False, True, False, "below"),
    ]
    by_race = run(district, "breakdown", ANALYST, {"metric": "school_attendance_rate", "by": "race_ethnicity"})
    assert set(by_race["race_ethnicity"]) == {"Hispanic", "Black", "White", "Asian"}


def test_parquet_and_excel_records_load_like_csv(tmp_path):
    frame = pd.read_csv(SAMPLES / "students.csv", dtype=str)
    for suffix in ("parquet", "xlsx"):
        warehouse = make_warehouse(tmp_path / suffix)
        warehouse.init(["2025-26"])
        path = tmp_path / f"students.{suffix}"
        frame.to_parquet(path) if suffix == "parquet" else frame.to_excel(path, index=False)
        ingest(warehouse, [*samples(("schools", None)), Submission(path, "students")])
        assert rows(warehouse, "select student_key, race_ethnicity, grade from district_students order by 1") == [
            ("ST0000001", "Hispanic", 4), ("ST0000002", "Black", 4), ("ST0000003", "White", 5), ("ST0000004", "Asian", 7),
        ]
        warehouse.close()


def test_an_unmapped_value_is_a_row_problem_naming_file_row_and_field(tmp_path):
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    ingest(warehouse, samples(("schools", None)))
    path = write_csv(
        tmp_path / "sis_export.csv", HEADER,
        "ST0000001,E01,4,Hispanic,F,Y,Y,N,below,2025-09-01",
        "ST0000002,E01,4,uri://ed-fi.org/RaceDescriptor#Other,M,Y,N,N,below,2025-09-01",
        "ST0000003,E02,Pre-K,White,F,N,maybe,N,,2025-09-01",
        "ST0000004,E02,5,White,F,N,N,Section 504,middling,2025-09-01",
    )
    found = problems_of(warehouse, Submission(path, "students"))
    assert [(file, row, column, value) for file, row, column, value, _ in found] == [
        ("sis_export.csv", 3, "race_ethnicity", "uri://ed-fi.org/RaceDescriptor#Other"),
        ("sis_export.csv", 4, "english_learner", "maybe"),
        ("sis_export.csv", 4, "grade", "Pre-K"),
        ("sis_export.csv", 5, "baseline_band", "middling"),
        ("sis_export.csv", 5, "special_education", "Section 504"),
    ]
    assert all("is not a" in reason and "CIBOARD_STUDENT_GROUP_SPELLINGS" in reason for *_, reason in found)
    assert rows(warehouse, "select count(*) from district_students") == [(0,)]
    # The records are the district's: no vendor sends them.
    [(*_, reason)] = problems_of(warehouse, Submission(SAMPLES / "students.csv", "students", "V1"))
    assert reason == "--vendor does not apply to students files"
    warehouse.close()


def test_a_district_adds_its_own_spellings_in_settings(tmp_path):
    spellings = {
        "race_ethnicity": {"uri://grandbend.edu/RaceDescriptor#Latinx": "Hispanic", "MENA": "Middle Eastern or North African"},
        "english_learner": {"Active": "Yes", "Monitored": "No"},
    }
    warehouse = make_warehouse(tmp_path / "data", student_group_spellings=spellings)
    warehouse.init(["2025-26"])
    path = write_csv(
        tmp_path / "students.csv", HEADER,
        "ST0000001,E01,4,uri://grandbend.edu/RaceDescriptor#Latinx,F,Y,Active,N,below,2025-09-01",
        "ST0000002,E01,4,MENA,M,Y,Monitored,N,,2025-09-01",
    )
    ingest(warehouse, [*samples(("schools", None)), Submission(path, "students")])
    assert rows(warehouse, "select student_key, race_ethnicity, english_learner, baseline_band from district_students order by 1") == [
        ("ST0000001", "Hispanic", True, "below"), ("ST0000002", "Middle Eastern or North African", False, None),
    ]
    warehouse.close()
    # A yes/no or a band the dashboard does not have is refused before anything is read.
    with pytest.raises(BadSpellings, match="english_learner 'Exited' -> 'Former'"):
        ingest(make_warehouse(tmp_path / "data", student_group_spellings={"english_learner": {"Exited": "Former"}}), [])
    with pytest.raises(BadSpellings, match="unknown field 'homeless'"):
        ingest(make_warehouse(tmp_path / "data", student_group_spellings={"homeless": {"Y": "Yes"}}), [])


def sessions_in(tmp_path: Path, name: str, *days: str) -> Submission:
    path = write_csv(tmp_path / name, SESSIONS_HEADER, *(f"ST0000001,{day},V1-T001,3,40,40" for day in days))
    return Submission(path, "sessions", "V1")


def english_learner_by_week(warehouse) -> dict[date, bool]:
    return dict(rows(
        warehouse,
        "select period_start, english_learner from facts where student_key = 'ST0000001'"
        " and metric_id = 'tutoring_attendance_rate' order by 1",
    ))


def test_a_january_reclassification_adds_a_version_and_rewrites_no_earlier_fact(district, tmp_path):
    ingest(district, [sessions_in(tmp_path, "january.csv", "2026-01-12", "2026-01-13")])
    before = english_learner_by_week(district)
    assert before == {date(2025, 9, 15): True, date(2026, 1, 12): True}

    # ST0000001 is reclassified fluent in English on January 5th: a new record, not a correction.
    reclassified = write_csv(tmp_path / "january_records.csv", HEADER, "ST0000001,E01,4,Hispanic,F,Y,N,N,below,2026-01-05")
    ingest(district, [Submission(reclassified, "students")])
    assert rows(district, "select as_of, english_learner from district_students where student_key = 'ST0000001' order by 1") == [
        (date(2025, 9, 1), True), (date(2026, 1, 5), False),
    ]
    assert english_learner_by_week(district) == {date(2025, 9, 15): True, date(2026, 1, 12): False}

    # A later week's facts take the version in force on their date too.
    ingest(district, [sessions_in(tmp_path, "february.csv", "2026-02-02")])
    assert english_learner_by_week(district)[date(2026, 2, 2)] is False
    # The autumn's breakdown still counts ST0000001 as an English learner; the winter's does not.
    autumn = run(district, "breakdown", ANALYST, {"metric": "tutoring_attendance_rate", "by": "english_learner", "end": "2025-12-31"})
    winter = run(district, "breakdown", ANALYST, {"metric": "tutoring_attendance_rate", "by": "english_learner", "start": "2026-01-01"})
    assert dict(zip(autumn["english_learner"], autumn["n"])) == {True: 1, False: 2}
    assert dict(zip(winter["english_learner"], winter["n"])) == {False: 1}


def test_a_count_date_fixes_every_facts_groups(tmp_path):
    warehouse = make_warehouse(tmp_path / "data", group_count_date="10-01")
    warehouse.init(["2025-26"])
    ingest(warehouse, samples(*README_ORDER))
    ingest(warehouse, [sessions_in(tmp_path, "january.csv", "2026-01-12")])
    # Reclassified in January, after the October count date: every fact of the year keeps the count.
    reclassified = write_csv(tmp_path / "january_records.csv", HEADER, "ST0000001,E01,4,Hispanic,F,Y,N,N,below,2026-01-05")
    ingest(warehouse, [Submission(reclassified, "students")])
    assert english_learner_by_week(warehouse) == {date(2025, 9, 15): True, date(2026, 1, 12): True}
    warehouse.close()
    # Without the setting, the next ingest regroups every fact by its own date.
    warehouse = make_warehouse(tmp_path / "data")
    ingest(warehouse, [sessions_in(tmp_path, "february.csv", "2026-02-02")])
    assert english_learner_by_week(warehouse) == {date(2025, 9, 15): True, date(2026, 1, 12): False, date(2026, 2, 2): False}
    warehouse.close()
    with pytest.raises(ValueError, match="day is out of range"):
        Settings(group_count_date="02-29")


def test_a_vendor_roster_no_longer_changes_a_students_groups(district, tmp_path):
    """Issue 12's failing example: a roster that reclassifies its students as "well below" and
    special education changed their groups and the vendor's expected values. Once the district has
    sent its records, it is accepted as an assignment and changes no group."""
    by_band = {"metric": "tutoring_attendance_rate", "by": "baseline_band"}
    before = run(district, "breakdown", ANALYST, by_band)
    facts_before = rows(district, "select * exclude (batch_id) from facts order by all")
    roster = (SAMPLES / "roster.csv").read_text().splitlines()
    reclassified = [",".join(line.split(",")[:8] + ["1", "well below", line.split(",")[-1]]) for line in roster[1:]]
    path = write_csv(tmp_path / "roster_v1.csv", ROSTER_HEADER, *reclassified)
    ingest(district, [Submission(path, "roster")])

    after = run(district, "breakdown", ANALYST, by_band)
    pd.testing.assert_frame_equal(before, after)
    assert rows(district, "select * exclude (batch_id) from facts order by all") == facts_before
    assert rows(district, "select baseline_band, count(*) from students group by 1 order by 1") == [
        ("below", 2), ("near", 1), ("well below", 1),
    ]
    # What the roster said differently is listed, against the district's record.
    listed = run(district, "roster_disagreements", ANALYST)
    assert sorted(zip(listed["student_key"], listed["field"], listed["roster_value"], listed["district_value"])) == [
        ("ST0000001", "baseline_band", "well below", "below"),
        ("ST0000001", "special_education", "1", "No"),
        ("ST0000002", "special_education", "1", "No"),
        ("ST0000003", "baseline_band", "well below", "near"),
        ("ST0000004", "baseline_band", "well below", "below"),
        ("ST0000004", "special_education", "1", "No"),
    ]
    assert set(listed["vendor_id"]) == {"V1"} and set(listed["file_name"]) == {"roster_v1.csv"}
    records = run(district, "student_records", Scope("vendor", "V1")).iloc[0]
    assert (records["students"], records["students_disagreeing"], records["rostered_without_record"]) == (4, 4, 0)
    assert run(district, "student_records", Scope("vendor", "V2")).iloc[0]["students_disagreeing"] == 0


def test_an_assignment_roster_needs_no_group_columns_and_may_say_when_a_student_left(district, tmp_path):
    path = write_csv(
        tmp_path / "roster_v1.csv", "student_id,vendor_id,enrolled_on,exited_on",
        "ST0000001,V1,2025-09-15,", "ST0000002,V1,2025-09-15,2026-01-30",
        "ST0000003,V1,2025-09-16,", "ST0000004,V1,2025-09-22,2025-09-01",
    )
    found = problems_of(district, Submission(path, "roster"))
    assert [(row, column, reason) for _, row, column, _, reason in found] == [(5, "exited_on", "is before enrolled_on")]
    path.write_text(path.read_text().replace("2025-09-22,2025-09-01", "2025-09-22,"))
    ingest(district, [Submission(path, "roster")])
    assert rows(district, "select student_key, vendor_id, exited_on, grade from students order by 1") == [
        ("ST0000001", "V1", None, 4), ("ST0000002", "V1", date(2026, 1, 30), 4),
        ("ST0000003", "V1", None, 5), ("ST0000004", "V1", None, 7),
    ]
    assert run(district, "roster_disagreements", ANALYST).empty


def test_a_roster_naming_a_student_the_district_does_not_have_is_a_row_problem(district, tmp_path):
    path = write_csv(
        tmp_path / "roster_v2.csv", "student_id,vendor_id,enrolled_on", "ST0000001,V1,2025-09-15", "ST0000099,V1,2025-09-15",
    )
    assert problems_of(district, Submission(path, "roster")) == [
        ("roster_v2.csv", 3, "student_id", "ST0000099", "is not a student in the district's student records"),
    ]


def test_a_district_without_student_records_keeps_the_vendors_groups(loaded, tmp_path):
    records = run(loaded, "student_records", ANALYST).iloc[0]
    assert (records["students"], records["rostered_without_record"]) == (0, 4)
    # The vendor's roster still decides: a correction moves the student's facts to the new group.
    roster = (SAMPLES / "roster.csv").read_text().replace("ST0000002,V1,E01,4,Black,Male,1,0,0,well below", "ST0000002,V1,E01,4,Black,Male,1,0,1,below")
    path = tmp_path / "roster_corrected.csv"
    path.write_text(roster)
    ingest(loaded, [Submission(path, "roster")])
    assert set(rows(loaded, "select special_education, baseline_band from facts where student_key = 'ST0000002'")) == {(True, "below")}
    # A roster without group columns is still refused: nothing else gives the groups.
    bare = write_csv(tmp_path / "bare.csv", "student_id,vendor_id,enrolled_on", "ST0000001,V1,2025-09-15")
    [(_, row, _, _, reason)] = problems_of(loaded, Submission(bare, "roster"))
    assert row == 1 and "missing required column(s) school_id, grade" in reason


def test_a_corrected_records_file_replaces_the_one_of_the_same_date(district, tmp_path):
    corrected = (SAMPLES / "students.csv").read_text().replace("M01,uri://ed-fi.org/GradeLevelDescriptor#Seventh grade", "M01,8")
    path = tmp_path / "students_corrected.csv"
    path.write_text(corrected)
    ingest(district, [Submission(path, "students")])
    assert rows(district, "select as_of, grade from district_students where student_key = 'ST0000004'") == [(date(2025, 9, 1), 8)]
    assert set(rows(district, "select grade from facts where student_key = 'ST0000004'")) == {(8,)}
    # The same date again, from another file, would be a second record of one day: it is refused.
    again = write_csv(tmp_path / "again.csv", HEADER, "ST0000004,M01,8,Asian,M,N,Y,N,below,2025-09-01", "ST0000005,M01,8,Asian,M,N,Y,N,below,2025-09-02")
    [(_, row, column, _, reason)] = problems_of(district, Submission(again, "students"))
    assert (row, column) == (2, "student_id") and "was already loaded in batch" in reason


# --- the Data quality page --------------------------------------------------------------


def serve(warehouse, monkeypatch):
    """The dashboard over `warehouse`, with an analyst, a facilitator and V1's account."""
    import streamlit as st

    from ciboard import accounts
    from ciboard.appdb import AppDB
    from ciboard.settings import get_settings

    monkeypatch.setenv("CIBOARD_DATA_DIR", str(warehouse.settings.data_dir))
    get_settings.cache_clear()
    st.cache_resource.clear()
    db = AppDB.of(warehouse.settings)
    for name, role, vendor in (("analyst", "analyst", None), ("facilitator", "facilitator", None), ("vendor-v1", "vendor", "V1")):
        accounts.add_user(db, name, role=role, vendor_id=vendor, password="a long password")


@pytest.fixture
def reset_settings():
    yield
    import streamlit as st

    from ciboard.settings import get_settings

    get_settings.cache_clear()
    st.cache_resource.clear()


def test_data_quality_says_groups_come_from_vendors_without_district_records(loaded, monkeypatch, reset_settings):
    from conftest import open_page

    serve(loaded, monkeypatch)
    app = open_page("app_pages/data_quality.py")
    [warning] = [w.value for w in app.warning]
    assert warning.startswith("**Student groups come from the vendors' rosters.**") and "--kind students" in warning


def test_data_quality_lists_where_a_roster_disagrees_with_the_district(district, tmp_path, monkeypatch, reset_settings):
    from conftest import open_page

    path = write_csv(
        tmp_path / "roster_v1.csv", ROSTER_HEADER,
        *(line.replace(",0,1,near,", ",0,0,well below,") for line in (SAMPLES / "roster.csv").read_text().splitlines()[1:]),
    )
    ingest(district, [Submission(path, "roster")])
    serve(district, monkeypatch)

    app = open_page("app_pages/data_quality.py")
    assert not app.warning
    lines = [m.value for m in app.markdown]
    assert any("**the district's student records**: 4 students, as of Sep 1, 2025." in line for line in lines)
    assert any(line.startswith("**Vendors' rosters state other groups than the district's records for 1 student(s)** (V1 · BrightPath Tutoring: 1).") for line in lines)
    listing = next(frame.value for frame in app.dataframe if "roster_value" in frame.value.columns)
    assert list(zip(listing["student_key"], listing["group"], listing["roster_value"], listing["district_value"])) == [
        ("ST0000003", "Baseline band", "well below", "near"), ("ST0000003", "Special education", "0", "Yes"),
    ]

    # Everyone else hears how many, not who.
    for user, words in (("facilitator", "Vendors' rosters state"), ("vendor-v1", "Your roster states")):
        app = open_page("app_pages/data_quality.py", user=user)
        assert any(m.value.startswith(f"{words} other groups than the district's records for 1 student(s)") for m in app.markdown), user
        assert not any("roster_value" in frame.value.columns for frame in app.dataframe)


def test_a_student_who_left_is_not_enrolled_after_the_week_they_left(district, tmp_path):
    ingest(district, [sessions_in(tmp_path, "october.csv", "2025-10-06")])
    enrolled = lambda: dict(  # noqa: E731
        run(district, "coverage", ANALYST, {"start": "2025-09-15"}).groupby("period_start")["enrolled"].first()
    )
    assert enrolled() == {date(2025, 9, 15): 3, date(2025, 9, 22): 4, date(2025, 10, 6): 4}
    path = write_csv(
        tmp_path / "roster_v1.csv", "student_id,vendor_id,enrolled_on,exited_on",
        "ST0000001,V1,2025-09-15,", "ST0000002,V1,2025-09-15,2025-09-24", "ST0000003,V1,2025-09-16,", "ST0000004,V1,2025-09-22,",
    )
    ingest(district, [Submission(path, "roster")])
    assert enrolled() == {date(2025, 9, 15): 3, date(2025, 9, 22): 4, date(2025, 10, 6): 3}


def test_records_loaded_after_the_rosters_decide_the_groups_of_the_students_they_have(loaded, tmp_path):
    # The district sends records of three of V1's four students, and says ST0000003 is not in
    # special education (V1's roster said she was).
    lines = (SAMPLES / "students.csv").read_text().splitlines()
    path = write_csv(tmp_path / "records.csv", lines[0], *(line.replace("White,Female,0,0,1", "White,Female,0,0,0") for line in lines[1:4]))
    ingest(loaded, [Submission(path, "students")])
    assert set(rows(loaded, "select student_key, special_education from facts where student_key in ('ST0000003', 'ST0000004')")) == {
        ("ST0000003", False), ("ST0000004", False),
    }
    assert rows(loaded, "select special_education, vendor_id from students where student_key = 'ST0000003'") == [(False, "V1")]
    records = run(loaded, "student_records", ANALYST).iloc[0]
    assert (records["students"], records["rostered_without_record"]) == (3, 1)
    # ST0000004 is V1's alone: its groups stay the roster's (English learner, per V1).
    assert rows(loaded, "select english_learner from students where student_key = 'ST0000004'") == [(True,)]


def test_a_records_file_that_would_drop_students_asks_to_replace(district, tmp_path):
    from ciboard.ingest import ReplaceUnconfirmed

    lines = (SAMPLES / "students.csv").read_text().splitlines()
    path = write_csv(tmp_path / "records.csv", *lines[:4])
    with pytest.raises(ReplaceUnconfirmed, match="1 of its 4 rows would be removed"):
        ingest(district, [Submission(path, "students")])
    ingest(district, [Submission(path, "students")], replace=True)
    assert rows(district, "select count(*) from district_students") == [(3,)]
