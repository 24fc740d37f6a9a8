"""Service checked against district records, on a hand-built district with one case per check.

Vendor VA pays $100 a student served (one attended session), Sep 1 to May 29. Jan 27 is a snow
day (a closure), Dec 22 to Jan 2 winter break; the district's attendance has C4 present 0 of 5
days in the week of Feb 2 and C8 enrolled 0 days in the week of Feb 9.

    C1 one session, on the snow day: calendar; not served
    C2 a session on Sep 8, before enrolling on Sep 15 (enrollment), and one on Sep 16
    C3 a session on Mar 3, after leaving on Feb 27 (enrollment), and one on Feb 2
    C4 a session on Feb 3, in its week of 0 days present: attendance
    C5 three sessions on Feb 4, with three tutors: plausibility (at most 2 a day), each of them
    C6 a session of 150 minutes: plausibility (at most 120)
    C7 a session on Feb 3 and one in winter break (Dec 23): calendar for the second only
    C8 a session on Feb 10, in a week the district has it enrolled 0 days: enrollment
    C9 a logged absence on the snow day: not checked, it earns nothing either way
"""

from datetime import date

import pandas as pd
import pytest

from conftest import built_once, copy_of, make_warehouse, write_csv
from ciboard import queries, session_checks, session_decisions
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.accounts import Account, audit_log
from ciboard.appdb import AppDB
from ciboard.ingest import IngestRejected, Submission, ingest

ROSTER = {"C1": "2025-09-01", "C2": "2025-09-15", "C3": "2025-09-01", "C4": "2025-09-01", "C5": "2025-09-01",
          "C6": "2025-09-01", "C7": "2025-09-01", "C8": "2025-09-01", "C9": "2025-09-01"}
EXITED = {"C3": "2026-02-27"}
# (student, date, tutor, scheduled, attended)
SESSIONS = [
    ("C1", "2026-01-27", "T1", 45, 45),
    ("C2", "2025-09-08", "T1", 45, 45), ("C2", "2025-09-16", "T1", 45, 45),
    ("C3", "2026-02-02", "T1", 45, 45), ("C3", "2026-03-03", "T1", 45, 45),
    ("C4", "2026-02-03", "T1", 45, 45),
    ("C5", "2026-02-04", "T1", 45, 45), ("C5", "2026-02-04", "T2", 45, 45), ("C5", "2026-02-04", "T3", 45, 45),
    ("C6", "2026-02-05", "T1", 150, 150),
    ("C7", "2026-02-03", "T1", 45, 45), ("C7", "2025-12-23", "T1", 45, 45),
    ("C8", "2026-02-10", "T1", 45, 45),
    ("C9", "2026-01-27", "T1", 45, 0),
]
ATTENDANCE = [("C4", "2026-02-02", 5, 0), ("C7", "2026-02-02", 5, 4), ("C8", "2026-02-09", 0, 0)]
ADMIN = Account("boss", "District administrator", "admin")
ANALYST_ACCOUNT = Account("ana", "Data analyst", "analyst")


def district_files(folder) -> list[Submission]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        Submission(write_csv(folder / "schools.csv", "school_id,name", "S1,First School"), "schools"),
        Submission(write_csv(folder / "vendors.csv", "vendor_id,name", "VA,Vendor A", "VB,Vendor B"), "vendors"),
        Submission(write_csv(
            folder / "contracts.csv",
            "vendor_id,payment_metric,threshold,base_per_student,outcome_per_student,cap,starts_on,ends_on",
            "VA,sgp,50,100,0,,2025-09-01,2026-05-29", "VB,sgp,50,100,0,,2025-09-01,2026-05-29",
        ), "contracts"),
        Submission(write_csv(
            folder / "annotations.csv", "starts_on,ends_on,kind,title,description,vendor_id,school_id,metric_id",
            "2025-12-22,2026-01-02,break,Winter break,,,,", "2026-01-27,2026-01-27,closure,Snow day,,,,",
        ), "annotations"),
        Submission(write_csv(
            folder / "roster.csv",
            "student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,"
            "special_education,baseline_band,enrolled_on,exited_on",
            *[f"{s},VA,S1,4,White,Female,0,0,0,near,{on},{EXITED.get(s, '')}" for s, on in ROSTER.items()],
            "D1,VB,S1,4,White,Female,0,0,0,near,2025-09-01,",
        ), "roster"),
        Submission(write_csv(
            folder / "sessions_va.csv", "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
            *[f"{s},{d},{t},3,{sched},{att}" for s, d, t, sched, att in SESSIONS],
        ), "sessions", "VA"),
        Submission(write_csv(
            folder / "sessions_vb.csv", "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
            "D1,2026-01-27,T9,3,45,45",
        ), "sessions", "VB"),
        Submission(write_csv(
            folder / "attendance.csv", "student_id,week_start,days_enrolled,days_present",
            *[",".join(map(str, row)) for row in ATTENDANCE],
        ), "school_attendance"),
    ]


@pytest.fixture(scope="module")
def built_district(tmp_path_factory, empty_data_dir):
    return built_once(tmp_path_factory.mktemp("district"), empty_data_dir, district_files)


@pytest.fixture
def district(tmp_path, app_db_url, built_district):
    warehouse = copy_of(built_district, tmp_path / "data", app_db_url=app_db_url)
    yield warehouse
    warehouse.close()


def flags(warehouse, scope=ANALYST, **params):
    return queries.run(warehouse, "session_checks", scope, params)


def flagged(frame) -> set:
    return {(r.student_key, f"{r.session_date}", r.tutor_id, r.check_name, r.reason) for r in frame.itertuples()}


def test_each_check_flags_its_sessions_with_the_reason(district):
    assert flagged(flags(district, vendor_id="VA")) == {
        ("C1", "2026-01-27", "T1", "calendar", "on Snow day (closure)"),
        ("C2", "2025-09-08", "T1", "enrollment", "before enrolling with the vendor on 2025-09-15"),
        ("C3", "2026-03-03", "T1", "enrollment", "after leaving the vendor on 2026-02-27"),
        ("C4", "2026-02-03", "T1", "attendance", "absent from school all week (0 of 5 days present)"),
        *[("C5", "2026-02-04", t, "plausibility", "3 sessions that day (at most 2)") for t in ("T1", "T2", "T3")],
        ("C6", "2026-02-05", "T1", "plausibility", "150 minutes attended (at most 120)"),
        ("C7", "2025-12-23", "T1", "calendar", "on Winter break (break)"),
        ("C8", "2026-02-10", "T1", "enrollment", "the district's attendance has the student enrolled 0 days that week"),
    }
    everything = flags(district)
    assert set(everything["decision"]) == {"pending"} and not everything["counts"].any()
    assert set(everything["vendor_id"]) == {"VA", "VB"}


def test_the_limits_are_settings(tmp_path):
    warehouse = make_warehouse(tmp_path / "data", max_sessions_per_day=3, max_session_minutes=150)
    warehouse.init(["2025-26"])
    ingest(warehouse, district_files(tmp_path / "files"))
    assert "plausibility" not in set(flags(warehouse)["check_name"])
    warehouse.close()


def test_a_contract_says_how_many_sessions_a_day_it_allows(district, tmp_path):
    def contract(most: str):
        return Submission(write_csv(
            tmp_path / f"contracts-{most or 'none'}.csv",
            "vendor_id,payment_metric,threshold,base_per_student,outcome_per_student,cap,starts_on,ends_on,max_sessions_per_day",
            f"VA,sgp,50,100,0,,2025-09-01,2026-05-29,{most}",
        ), "contracts")

    ingest(district, [contract("3")])
    crowded = flags(district, vendor_id="VA").query("student_key == 'C5'")
    assert crowded.empty  # three sessions in a day, as VA's contract allows
    terms = pd.DataFrame(statement(district).attrs["terms"])
    assert terms["served"].item() == ("at least 1 attended session(s) within the contract dates; more than 3 session(s)"
                                      " in a day are flagged")
    ingest(district, [contract("1")], replace=True)
    assert set(flags(district, vendor_id="VA").query("student_key == 'C5'")["reason"]) == {"3 sessions that day (at most 1)"}
    with pytest.raises(IngestRejected) as rejected:
        ingest(district, [contract("0")], replace=True)
    assert [(p.row, p.column, p.reason) for p in rejected.value.problems] == [(2, "max_sessions_per_day", "must be at least 1")]


def statement(warehouse, vendor="VA", period="2026-05"):
    return queries.run(warehouse, "statement", ANALYST, {"vendor_id": vendor, "period": period})


def test_a_session_on_a_closure_day_no_longer_serves(district):
    rows = statement(district).set_index("student_id")
    # C1's one session was on the snow day; C6's and C5's flagged sessions were their only ones.
    assert not rows.loc["C1", "served"] and not rows.loc["C5", "served"] and not rows.loc["C6", "served"]
    assert rows.loc["C2", "served"] and rows.loc["C2", "served_on"] == date(2025, 9, 16)
    assert rows.loc["C7", "served"] and rows.loc["C7", "served_on"] == date(2026, 2, 3)
    assert sorted(rows.index[rows["served"]]) == ["C2", "C3", "C7"]
    summary = queries.run(district, "payments", ANALYST, {}).set_index("vendor_id")
    assert summary.loc["VA", "students_served"] == 3 and summary.loc["VB", "students_served"] == 0


def test_accepted_flags_count_and_a_later_rejection_supersedes(district):
    db = AppDB.of(district.settings)
    assert session_decisions.decide(db, district, ADMIN, vendor_id="VA", check="calendar", decision="accepted",
                                 reason="make-up session agreed with the school", start=date(2026, 1, 1)) == 1
    assert sorted(statement(district).query("served").student_id) == ["C1", "C2", "C3", "C7"]
    now = flags(district, vendor_id="VA", check="calendar").set_index("student_key")
    assert now.loc["C1", "decision"] == "accepted" and now.loc["C1", "counts"]
    assert now.loc["C7", "decision"] == "pending" and not now.loc["C7", "counts"]
    # Already decided: a pending-only decision leaves C1 alone; deciding again supersedes.
    assert session_decisions.decide(db, district, ANALYST_ACCOUNT, vendor_id="VA", check="calendar",
                                 decision="rejected", reason="winter break", start=date(2026, 1, 1)) == 0
    assert session_decisions.decide(db, district, ANALYST_ACCOUNT, vendor_id="VA", check="calendar", decision="rejected",
                                 reason="the school was closed", only_pending=False) == 2
    assert sorted(statement(district).query("served").student_id) == ["C2", "C3", "C7"]
    key = flags(district, check="calendar").set_index("student_key").loc["C1", "flag_key"]
    assert [(d["decision"], d["decided_by"]) for d in session_checks.history(db, key)] == [
        ("accepted", "boss"), ("rejected", "ana")]
    logged = audit_log(db, action="session check reject")
    assert len(logged) == 1 and '"flags": 2' in logged[0]["detail"] and "the school was closed" in logged[0]["detail"]
    with db.connect() as con, pytest.raises(Exception, match="only added to"):
        con.execute("delete from session_check_decisions")


def test_one_flagged_session_is_decided_on_its_own_and_audited(district):
    db = AppDB.of(district.settings)
    calendar = flags(district, vendor_id="VA", check="calendar").set_index("student_key")
    c7 = calendar.loc["C7", "flag_key"]
    flag = session_decisions.decide_one(db, district, ANALYST_ACCOUNT, c7, decision="accepted",
                                     reason="make-up session the school hosted")
    assert (flag["student_key"], str(flag["session_date"])) == ("C7", "2025-12-23")
    now = flags(district, vendor_id="VA", check="calendar").set_index("student_key")
    # Only that session: C1, on the snow day under the same check, is still pending.
    assert now.loc["C7", "decision"] == "accepted" and now.loc["C1", "decision"] == "pending"
    [logged] = audit_log(db, action="session check accept")
    assert '"flags": 1' in logged["detail"] and '"student": "C7"' in logged["detail"] and "school hosted" in logged["detail"]
    # A later decision about it supersedes; both stay.
    session_decisions.decide_one(db, district, ADMIN, c7, decision="rejected", reason="no make-up was agreed")
    assert [d["decision"] for d in session_checks.history(db, c7)] == ["accepted", "rejected"]

    revision = session_checks.revision(db)
    for who, key, decision, reason, error in (
        (Account("v", "V", "vendor", "VA"), c7, "accepted", "ours", ScopeError),
        (Account("fac", "F", "facilitator"), c7, "accepted", "ok", ScopeError),
        (ADMIN, c7, "accepted", " ", ValueError),
        (ADMIN, c7, "maybe", "x", ValueError),
        (ADMIN, "VA|C7|2025-12-24|T1|calendar", "accepted", "x", ValueError),  # no such flag
        (ADMIN, "VA|C7|2025-12-23|T1|weather", "accepted", "x", ValueError),
        (ADMIN, "not a key", "accepted", "x", ValueError),
    ):
        with pytest.raises(error):
            session_decisions.decide_one(db, district, who, key, decision=decision, reason=reason)
    assert session_checks.revision(db) == revision, "a refused decision saves nothing"


def test_a_check_the_district_counts_counts_until_rejected(tmp_path):
    warehouse = make_warehouse(tmp_path / "data", session_checks_counted=["attendance", "plausibility"])
    warehouse.init(["2025-26"])
    ingest(warehouse, district_files(tmp_path / "files"))
    assert sorted(statement(warehouse).query("served").student_id) == ["C2", "C3", "C4", "C5", "C6", "C7"]
    session_decisions.decide(AppDB.of(warehouse.settings), warehouse, ADMIN, vendor_id="VA", check="attendance",
                          decision="rejected", reason="no school, no tutoring")
    assert sorted(statement(warehouse).query("served").student_id) == ["C2", "C3", "C5", "C6", "C7"]
    warehouse.close()


def test_only_analysts_and_admins_decide_with_a_reason(district):
    db = AppDB.of(district.settings)
    for who in (Account("fac", "F", "facilitator"), Account("v", "V", "vendor", "VA")):
        with pytest.raises(ScopeError):
            session_decisions.decide(db, district, who, vendor_id="VA", check="calendar", decision="accepted", reason="ok")
    for check, decision, reason, message in (("weather", "accepted", "x", "unknown check"),
                                             ("calendar", "maybe", "x", "accepted or rejected"),
                                             ("calendar", "accepted", "  ", "needs a reason")):
        with pytest.raises(ValueError, match=message):
            session_decisions.decide(db, district, ADMIN, vendor_id="VA", check=check, decision=decision, reason=reason)
    assert session_checks.revision(db) == 0


def test_a_vendor_reads_its_own_flags_and_the_district_counts(district):
    own = flags(district, Scope("vendor", "VB"))
    assert list(own["student_key"]) == ["D1"]
    with pytest.raises(ScopeError):
        flags(district, Scope("vendor", "VB"), vendor_id="VA")
    with pytest.raises(ScopeError):
        flags(district, Scope("facilitator"))
    counts = queries.run(district, "session_check_counts", Scope("facilitator"), {}).set_index(["vendor_id", "check_name"])
    # Every cell is over fewer than 10 students: hidden from the district's staff, shown to analysts.
    assert counts["suppressed"].all() and counts["sessions"].isna().all()
    exact = queries.run(district, "session_check_counts", ANALYST, {}).set_index(["vendor_id", "check_name"])
    assert exact.loc[("VA", "plausibility"), ["sessions", "students", "pending"]].tolist() == [4, 2, 4]
    assert not exact["suppressed"].any()
    with pytest.raises(queries.QueryError, match="unknown check"):
        flags(district, check="weather")


def test_a_tutor_in_two_places_at_once(tmp_path):
    """Tutor T5 on Feb 11: E1 and E3 together at S1 from 15:00 (one group), E2 at S2 from 15:30,
    overlapping both; E4 at S2 from 16:15, after E2 ended; E5 with tutor T6; E6 sent with no time."""
    folder = tmp_path / "files"
    folder.mkdir()
    students = {"E1": "S1", "E2": "S2", "E3": "S1", "E4": "S2", "E5": "S1", "E6": "S2"}
    sessions = [("E1", "T5", "15:00"), ("E2", "T5", "15:30"), ("E3", "T5", "15:00"), ("E4", "T5", "16:15"),
                ("E5", "T6", "15:30"), ("E6", "T5", "")]
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    ingest(warehouse, [
        Submission(write_csv(folder / "schools.csv", "school_id,name", "S1,First School", "S2,Second School"), "schools"),
        Submission(write_csv(folder / "vendors.csv", "vendor_id,name", "VA,Vendor A"), "vendors"),
        Submission(write_csv(
            folder / "roster.csv",
            "student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,"
            "special_education,baseline_band,enrolled_on",
            *[f"{s},VA,{school},4,White,Female,0,0,0,near,2025-09-01" for s, school in students.items()],
        ), "roster"),
        Submission(write_csv(
            folder / "sessions.csv",
            "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes,start_time",
            *[f"{s},2026-02-11,{t},2,45,45,{at}" for s, t, at in sessions],
        ), "sessions", "VA"),
    ])
    found = flags(warehouse)
    assert set(found["check_name"]) == {"plausibility"}
    reasons = dict(zip(found["student_key"], found["reason"]))
    assert reasons == {
        "E1": "tutor T5 in two places at once: also with E2 at S2 from 15:30",
        "E2": "tutor T5 in two places at once: also with E1 at S1 from 15:00, E3 at S1 from 15:00",
        "E3": "tutor T5 in two places at once: also with E2 at S2 from 15:30",
    }
    with warehouse.cursor() as cur:
        assert cur.execute("select starts_at from sessions where student_key = 'E6'").fetchall() == [(None,)]

    bad = write_csv(folder / "late.csv",
                    "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes,start_time",
                    "E1,2026-02-12,T5,2,45,45,25:00")
    with pytest.raises(IngestRejected) as rejected:
        ingest(warehouse, [Submission(bad, "sessions", "VA")])
    [problem] = rejected.value.problems
    assert (problem.file, problem.row, problem.column) == ("late.csv", 2, "start_time")
    assert problem.reason == "is not a time of day (HH:MM, 24-hour)"
    warehouse.close()
