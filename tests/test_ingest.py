"""Ingest: every kind of bad input is reported precisely and changes nothing; good input lands whole."""

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from conftest import SAMPLES, sample_submissions, snapshot, write_csv
from ciboard.access import ANALYST
from ciboard.ingest import IngestRejected, Submission, ingest
from ciboard.kinds import KINDS
from ciboard.queries import run

SESSIONS_HEADER = "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"
GOOD_SESSION = "ST0000001,2025-09-22,V1-T001,3,40,40"


def test_samples_load_into_tidy_facts(loaded):
    with loaded.cursor() as cur:
        facts = dict(
            cur.execute(
                "select metric_id, count(*) from facts group by metric_id"
            ).fetchall()
        )
        student_one = cur.execute(
            """select metric_id, value, denominator from facts
            where student_key = 'ST0000001' and period_start = date '2025-09-15' order by metric_id"""
        ).fetchall()
    assert facts == {
        "tutoring_attendance_rate": 3, "dosage_minutes": 3, "dosage_met": 3, "tutor_consistency": 3,
        "school_attendance_rate": 4, "scaled_score": 3, "sgp": 2, "met_growth_target": 2, "proficient": 3,
        "sel_identity": 2, "sel_efficacy": 1, "satisfaction": 1,
    }
    # ST0000001 attended all 3 sessions (40+38+40 minutes, all >= 30); 2 of 3 with V1-T001.
    assert student_one == [
        ("dosage_met", 1.0, None),
        ("dosage_minutes", 118.0, None),
        ("school_attendance_rate", 5.0, 5.0),
        ("sel_efficacy", 3.0, None),
        ("sel_identity", 4.0, None),
        ("tutor_consistency", 2.0, 3.0),
        ("tutoring_attendance_rate", 3.0, 3.0),
    ]


def test_a_students_dosage_is_one_row_rebuilt_from_its_weeks_at_every_load(loaded, tmp_path):
    # A later week for ST0000001: its dosage row is deleted and derived again, not added to.
    later = write_csv(tmp_path / "sessions_later.csv", SESSIONS_HEADER, "ST0000001,2025-09-22,V1-T001,3,40,20")
    ingest(loaded, [Submission(later, "sessions", "V1")])
    with loaded.cursor() as cur:
        dosage = cur.execute("select student_key, weeks, weeks_met, share_met from student_dosage order by 1").fetchall()
        weeks = cur.execute(
            """select student_key, count(*), sum(value)::integer, avg(value) from facts
            where metric_id = 'dosage_met' group by 1 order by 1"""
        ).fetchall()
    assert dosage == weeks
    assert ("ST0000001", 2, 1, 0.5) in dosage, "one week met (three sessions of 30+ minutes), one not (20 minutes)"


def test_growth_target_uses_the_vendors_threshold(loaded):
    # ST0000001 (SGP 44) and ST0000002 (SGP 61) are both V1 students; V1's threshold is 50.
    with loaded.cursor() as cur:
        met = dict(cur.execute("select student_key, value from facts where metric_id = 'met_growth_target'").fetchall())
    assert met == {"ST0000001": 0.0, "ST0000002": 1.0}


def test_a_new_threshold_recomputes_met_growth_target(loaded, tmp_path):
    contracts = (SAMPLES / "contracts.csv").read_text().replace("V1,sgp,50,", "V1,sgp,40,")
    path = tmp_path / "contracts_amended.csv"
    path.write_text(contracts)
    ingest(loaded, [Submission(path, "contracts")])
    with loaded.cursor() as cur:
        met = dict(cur.execute("select student_key, value from facts where metric_id = 'met_growth_target'").fetchall())
    assert met == {"ST0000001": 1.0, "ST0000002": 1.0}


def sample_shaped(tmp_path: Path, kind: str, *rows: str, name: str | None = None) -> Path:
    """A file of `kind` with the sample file's header and these rows."""
    header = (SAMPLES / f"{kind}.csv").read_text().splitlines()[0]
    return write_csv(tmp_path / (name or f"{kind}.csv"), header, *rows)


def rejected(warehouse, path: Path, kind: str, vendor: str | None = None, *, by_district: bool = False) -> list[tuple]:
    before = snapshot(warehouse)
    with pytest.raises(IngestRejected) as caught:
        ingest(warehouse, [Submission(path, kind, vendor, by_district=by_district)])
    assert snapshot(warehouse) == before, "a rejected file changed the data"
    return [(p.row, p.column, p.reason) for p in caught.value.problems]


def has(problems: list[tuple], row, column, reason_part: str) -> bool:
    return any(r == row and c == column and reason_part in reason for r, c, reason in problems)


BAD_SESSIONS = [
    ("ST0000001,2025-09-22,V1-T001,3,40,41", "attended_minutes", "between 0 (absent) and scheduled_minutes"),
    ("ST0000001,2025-09-22,V1-T001,3,40,-5", "attended_minutes", "between 0"),
    ("ST0000001,2025-09-22,V1-T001,0,40,40", "group_size", "between 1 and 50"),
    ("ST0000001,2025-09-22,V1-T001,three,40,40", "group_size", "not a whole number"),
    ("ST0000001,2025-09-22,V1-T001,3,40.5,40", "scheduled_minutes", "not a whole number"),
    ("ST0000001,22.09.2025,V1-T001,3,40,40", "session_date", "not a date"),
    ("ST0000001,2025-02-30,V1-T001,3,40,40", "session_date", "not a date"),
    ("ST0000001,2024-09-23,V1-T001,3,40,40", "session_date", "outside every school year"),
    ("ST0000001,2099-09-22,V1-T001,3,40,40", "session_date", "in the future"),
    ("ST9999999,2025-09-22,V1-T001,3,40,40", "student_id", "is not on your roster"),
    (",2025-09-22,V1-T001,3,40,40", "student_id", "is required"),
    ("ST0000001,2025-09-22,,3,40,40", "tutor_id", "is required"),
]


@pytest.mark.parametrize(("row", "column", "reason"), BAD_SESSIONS)
def test_a_bad_session_row_is_named_by_row_and_column(loaded, tmp_path, row, column, reason):
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, GOOD_SESSION, row)
    problems = rejected(loaded, path, "sessions", "V1")
    assert has(problems, 3, column, reason), problems
    assert not any(r == 2 for r, _, _ in problems), "the good row was blamed"


def test_every_problem_of_a_file_is_reported_at_once(loaded, tmp_path):
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, *(row for row, _, _ in BAD_SESSIONS))
    problems = rejected(loaded, path, "sessions", "V1")
    for line, (_, column, reason) in enumerate(BAD_SESSIONS, start=2):
        assert has(problems, line, column, reason), (line, column, problems)


def test_the_rejection_is_logged_with_its_problems(loaded, tmp_path):
    path = write_csv(tmp_path / "late_sessions.csv", SESSIONS_HEADER, BAD_SESSIONS[0][0], BAD_SESSIONS[9][0])
    rejected(loaded, path, "sessions", "V1")
    with loaded.cursor() as cur:
        log = cur.execute(
            "select batch_id, status, rows_received, rows_accepted, rows_rejected from submissions where file_name = 'late_sessions.csv'"
        ).fetchall()
        errors = cur.execute(
            "select row_number, column_name, value from submission_errors where batch_id = ? order by row_number",
            [log[0][0]],
        ).fetchall()
    assert [row[1:] for row in log] == [("rejected", 2, 0, 2)]
    assert errors == [(2, "attended_minutes", "41"), (3, "student_id", "ST9999999")]


def test_duplicates_within_a_file_name_the_first_row(loaded, tmp_path):
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, GOOD_SESSION, GOOD_SESSION, GOOD_SESSION)
    problems = rejected(loaded, path, "sessions", "V1")
    assert has(problems, 3, "student_id", "repeats the key (student_id, session_date, tutor_id) of row 2")
    assert has(problems, 4, "student_id", "of row 2")


def test_rows_already_loaded_by_another_file_are_duplicates(loaded, tmp_path):
    already = (SAMPLES / "sessions.csv").read_text().splitlines()[1]
    path = write_csv(tmp_path / "more_sessions.csv", SESSIONS_HEADER, GOOD_SESSION, already)
    problems = rejected(loaded, path, "sessions", "V1")
    assert has(problems, 3, "student_id", "already loaded in batch")
    assert has(problems, 3, "student_id", "(sessions.csv)")


def test_missing_columns_are_named_with_what_the_kind_needs(loaded, tmp_path):
    path = write_csv(tmp_path / "sessions.csv", "student_id,session_date,tutor", "ST0000001,2025-09-22,T1")
    [(row, column, reason)] = rejected(loaded, path, "sessions", "V1")
    assert row == 1 and column is None
    assert "missing required column(s) tutor_id, group_size, scheduled_minutes, attended_minutes" in reason
    assert "this file has student_id, session_date, tutor" in reason


def test_headers_are_case_insensitive_and_extra_columns_ignored(loaded, tmp_path):
    path = write_csv(
        tmp_path / "sessions.csv",
        "Student_ID, Session_Date ,TUTOR_ID,Group_Size,Scheduled_Minutes,Attended_Minutes,notes",
        GOOD_SESSION + ",arrived late",
    )
    [outcome] = ingest(loaded, [Submission(path, "sessions", "V1")])
    assert outcome.status == "accepted" and outcome.rows == 1


def test_a_malformed_csv_line_is_reported_with_its_line_number(loaded, tmp_path):
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, GOOD_SESSION, "ST0000002,2025-09-22,V1-T001", "ST0000002,2025-09-23,V1-T001,3,40,4x")
    problems = rejected(loaded, path, "sessions", "V1")
    assert has(problems, 3, None, "row cannot be read")
    assert has(problems, 4, "attended_minutes", "not a whole number"), problems


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.csv", "", "empty"),
        ("header_only.csv", SESSIONS_HEADER + "\n", "no data rows"),
        ("sessions.json", "{}", "unsupported file type .json"),
    ],
)
def test_unusable_files_are_rejected_whole(loaded, tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_text(content)
    problems = rejected(loaded, path, "sessions", "V1")
    assert any(reason in r for _, _, r in problems), problems


def test_a_student_of_another_vendor_cannot_be_submitted(loaded, tmp_path):
    roster = write_csv(
        tmp_path / "roster_v2.csv",
        (SAMPLES / "roster.csv").read_text().splitlines()[0],
        "ST0000009,V2,E02,3,White,Male,0,0,0,near,2025-09-15",
    )
    ingest(loaded, [Submission(roster, "roster", "V2")])
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, "ST0000009,2025-09-22,V2-T001,1,45,45")
    # The district is told whose student it is; the vendor only that it is not its own.
    problems = rejected(loaded, path, "sessions", "V1", by_district=True)
    assert has(problems, 2, "student_id", "on another vendor's roster")
    assert rejected(loaded, path, "sessions", "V1") == [(2, "student_id", "is not on your roster")]


def test_a_roster_cannot_move_a_student_to_another_vendor(loaded, tmp_path):
    path = sample_shaped(tmp_path, "roster", "ST0000001,V2,E01,4,Hispanic,Female,1,1,0,below,2025-09-15")
    problems = rejected(loaded, path, "roster")
    assert has(problems, 2, "student_id", "already on another vendor's roster")


def test_a_vendor_cannot_submit_another_vendors_roster(loaded, tmp_path):
    path = sample_shaped(tmp_path, "roster", "ST0000050,V2,E01,4,Hispanic,Female,1,1,0,below,2025-09-15")
    problems = rejected(loaded, path, "roster", "V1")
    assert has(problems, 2, "vendor_id", "not the submitting vendor")


@pytest.mark.parametrize(
    ("kind", "row", "column", "reason"),
    [
        ("roster", "ST0000050,V9,E01,4,Hispanic,Female,1,1,0,below,2025-09-15", "vendor_id", "unknown vendor_id"),
        ("roster", "ST0000050,V1,X99,4,Hispanic,Female,1,1,0,below,2025-09-15", "school_id", "unknown school_id"),
        ("roster", "ST0000050,V1,E01,14,Hispanic,Female,1,1,0,below,2025-09-15", "grade", "from 0 (K) to 12"),
        ("roster", "ST0000050,V1,E01,4,Hispanic,Female,maybe,1,0,below,2025-09-15", "econ_disadvantaged", "yes/no"),
        ("roster", "ST0000050,V1,E01,4,Hispanic,Female,1,1,0,behind,2025-09-15", "baseline_band", "one of well below"),
        ("school_attendance", "ST0000001,2025-09-16,5,5", "week_start", "must be a Monday"),
        ("school_attendance", "ST0000001,2025-09-22,5,6", "days_present", "between 0 and days_enrolled"),
        ("assessment", "ST0000001,autumn,2025-09-23,500,50,0", "window", "fall, winter or spring"),
        ("assessment", "ST0000004,winter,2025-09-23,500,50,0", "test_date", "not in the stated window"),
        ("assessment", "ST0000004,fall,2025-09-23,500,0,0", "sgp", "percentile from 1 to 99"),
        ("assessment", "ST0000004,fall,2025-09-23,500,50,2", "proficient", "yes/no"),
        ("survey", "ST0000001,2025-09-25,sel_belonging,4", "item", "not a survey metric of the data map"),
        ("survey", "ST0000001,2025-09-25,sel_identity,6", "score", "from 1 to 5"),
        ("contracts", "V1,sgp,50,-1,750,,2025-09-15,2026-05-22", "base_per_student", "not be negative"),
        ("contracts", "V1,attendance,50,700,750,,2025-09-15,2026-05-22", "payment_metric", "unknown metric"),
        ("contracts", "V1,sgp,50,700,750,,2026-05-22,2025-09-15", "ends_on", "ends before starts_on"),
        ("annotations", "2025-10-01,,holiday,Fall break,,,,", "kind", "one of break"),
        ("annotations", "2025-10-01,,closure,Fall break,,,,enrollment", "metric_id", "unknown metric"),
    ],
)
def test_checks_of_every_kind(loaded, tmp_path, kind, row, column, reason):
    path = sample_shaped(tmp_path, kind, row)
    problems = rejected(loaded, path, kind)
    assert has(problems, 2, column, reason), problems


def test_a_contract_keeps_one_base_amount_and_cap(loaded, tmp_path):
    path = sample_shaped(tmp_path, "contracts", "V1,proficient,1,650,300,20000,2025-09-15,2026-05-22")
    problems = rejected(loaded, path, "contracts")
    assert has(problems, 2, "base_per_student", "same base_per_student and cap")


def test_sessions_of_several_vendors_need_one_file_each(loaded, tmp_path):
    roster = sample_shaped(tmp_path, "roster", "ST0000009,V2,E02,3,White,Male,0,0,0,near,2025-09-15", name="roster_v2.csv")
    ingest(loaded, [Submission(roster, "roster")])
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, GOOD_SESSION, "ST0000009,2025-09-22,V2-T001,1,45,45")
    problems = rejected(loaded, path, "sessions")
    assert any("several vendors" in reason for _, _, reason in problems)


def test_one_bad_file_keeps_the_whole_command_out(loaded, tmp_path):
    good = write_csv(tmp_path / "good.csv", SESSIONS_HEADER, GOOD_SESSION)
    bad = write_csv(tmp_path / "bad.csv", SESSIONS_HEADER, BAD_SESSIONS[0][0])
    before = snapshot(loaded)
    with pytest.raises(IngestRejected) as caught:
        ingest(loaded, [Submission(good, "sessions", "V1"), Submission(bad, "sessions", "V1")])
    assert [o.status for o in caught.value.outcomes] == ["not loaded", "rejected"]
    assert snapshot(loaded) == before


def test_the_same_file_twice_is_a_no_op(loaded):
    version = loaded.version()
    outcomes = ingest(loaded, sample_submissions())
    assert {o.status for o in outcomes} == {"unchanged"}
    assert loaded.version() == version, "an unchanged command published a new version"


def test_a_corrected_resubmission_replaces_the_earlier_one(loaded, tmp_path):
    first = write_csv(tmp_path / "week2.csv", SESSIONS_HEADER, GOOD_SESSION, "ST0000001,2025-09-23,V1-T001,3,40,40")
    second = write_csv(tmp_path / "week2_fixed.csv", SESSIONS_HEADER, GOOD_SESSION, "ST0000001,2025-09-23,V1-T001,3,40,0")
    [one] = ingest(loaded, [Submission(first, "sessions", "V1")])
    [two] = ingest(loaded, [Submission(second, "sessions", "V1")])
    assert two.replaced_batch_id == one.batch_id
    with loaded.cursor() as cur:
        log = cur.execute(
            "select file_name, status, replaces_batch_id from submissions where batch_id in (?, ?) order by batch_id",
            [one.batch_id, two.batch_id],
        ).fetchall()
        rate = cur.execute(
            """select value, denominator from facts where student_key = 'ST0000001'
            and metric_id = 'tutoring_attendance_rate' and period_start = date '2025-09-22'"""
        ).fetchall()
        sessions = cur.execute("select count(*) from sessions where session_date >= date '2025-09-22'").fetchone()[0]
    assert log == [("week2.csv", "replaced", None), ("week2_fixed.csv", "accepted", one.batch_id)]
    assert rate == [(1.0, 2.0)] and sessions == 2


def test_a_roster_correction_moves_the_students_facts(loaded, tmp_path):
    path = sample_shaped(tmp_path, "roster", "ST0000001,V1,E02,5,Hispanic,Female,1,0,0,near,2025-09-15", name="roster_fix.csv")
    ingest(loaded, [Submission(path, "roster", "V1")])
    with loaded.cursor() as cur:
        rows = cur.execute(
            "select distinct school_id, grade, english_learner, baseline_band from facts where student_key = 'ST0000001'"
        ).fetchall()
    assert rows == [("E02", 5, False, "near")]


def test_parquet_and_excel_files_load_like_csv(loaded, tmp_path):
    frame = pd.DataFrame(
        {
            "student_id": ["ST0000003", "ST0000004"],
            "session_date": [date(2025, 9, 22), date(2025, 9, 23)],
            "tutor_id": ["V1-T003", "V1-T004"],
            "group_size": [2, 1],
            "scheduled_minutes": [40, 40],
            "attended_minutes": [40, 0],
        }
    )
    frame.to_parquet(tmp_path / "sessions.parquet")
    later = frame.assign(session_date=[datetime(2025, 9, 29), datetime(2025, 9, 30)])
    later.to_excel(tmp_path / "sessions.xlsx", index=False)
    outcomes = ingest(
        loaded,
        [Submission(tmp_path / "sessions.parquet", "sessions", "V1"), Submission(tmp_path / "sessions.xlsx", "sessions", "V1")],
    )
    assert [(o.status, o.rows) for o in outcomes] == [("accepted", 2), ("accepted", 2)]
    with loaded.cursor() as cur:
        dates = [d for (d,) in cur.execute("select session_date from sessions where student_key = 'ST0000004' order by 1").fetchall()]
    assert dates == [date(2025, 9, 23), date(2025, 9, 30)]


def test_excel_problems_are_numbered_as_the_sheet_shows_them(loaded, tmp_path):
    frame = pd.DataFrame({c: ["x"] for c in SESSIONS_HEADER.split(",")})
    frame.to_excel(tmp_path / "sessions.xlsx", index=False)
    problems = rejected(loaded, tmp_path / "sessions.xlsx", "sessions", "V1")
    assert has(problems, 2, "session_date", "not a date")


def test_us_dates_are_read_as_month_day_year(loaded, tmp_path):
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, "ST0000001,9/22/2025,V1-T001,3,40,40")
    ingest(loaded, [Submission(path, "sessions", "V1")])
    with loaded.cursor() as cur:
        assert cur.execute("select max(session_date) from sessions").fetchone()[0] == date(2025, 9, 22)


def test_a_submission_records_its_period_and_due_date(loaded):
    with loaded.cursor() as cur:
        row = cur.execute(
            "select vendor_id, period_start, period_end, due_on, rows_accepted from submissions where kind = 'sessions'"
        ).fetchone()
    # Sessions are weekly, due three days after the week ends.
    assert row == ("V1", date(2025, 9, 15), date(2025, 9, 21), date(2025, 9, 24), 8)


def test_unknown_kind_is_refused_with_the_list(loaded):
    with pytest.raises(ValueError, match="the kinds are " + ", ".join(KINDS)):
        ingest(loaded, [Submission(SAMPLES / "sessions.csv", "tutoring")])


def test_dates_outside_the_warehouse_school_years_wait_for_the_year(loaded, tmp_path):
    path = write_csv(tmp_path / "sessions.csv", SESSIONS_HEADER, "ST0000001,2026-08-03,V1-T001,3,40,40")
    problems = rejected(loaded, path, "sessions", "V1")
    assert has(problems, 2, "session_date", "add one with 'ciboard init --school-year'")
    loaded.init(["2026-27"])
    [outcome] = ingest(loaded, [Submission(path, "sessions", "V1")], today=date(2026, 8, 10))
    assert outcome.status == "accepted"


def test_ingest_updates_what_the_query_layer_returns(loaded, tmp_path):
    before = run(loaded, "series", ANALYST, {"metric": "tutoring_attendance_rate"})
    path = write_csv(tmp_path / "week2.csv", SESSIONS_HEADER, GOOD_SESSION)
    ingest(loaded, [Submission(path, "sessions", "V1")])
    after = run(loaded, "series", ANALYST, {"metric": "tutoring_attendance_rate"})
    assert len(after) == len(before) + 1
    assert after.attrs["version"] != before.attrs["version"]
    assert after.iloc[-1]["period_start"] == date(2025, 9, 15) + timedelta(days=7)
