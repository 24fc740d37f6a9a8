"""The ciboard command, as an analyst or a district data team runs it."""

import csv
import io
import json

from click.testing import CliRunner

from conftest import SAMPLES, write_csv
from ciboard.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_init_then_ingest_the_samples_in_order(tmp_path):
    data = str(tmp_path / "data")
    result = invoke("init", "--school-year", "2025-26", "--data-dir", data)
    assert result.exit_code == 0 and "added school year(s) 2025-26" in result.output
    for kind, vendor in (
        ("schools", None), ("vendors", None), ("contracts", None), ("annotations", None), ("roster", None),
        ("sessions", "V1"), ("school_attendance", None), ("assessment", None), ("survey", "V1"),
    ):
        args = ["ingest", str(SAMPLES / f"{kind}.csv"), "--kind", kind, "--data-dir", data]
        result = invoke(*args, *(["--vendor", vendor] if vendor else []))
        assert result.exit_code == 0, result.output
        assert f"{kind}.csv: accepted as batch" in result.output
    again = invoke("ingest", str(SAMPLES / "sessions.csv"), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    assert "sessions.csv: unchanged" in again.output


def test_a_rejected_file_exits_non_zero_and_writes_every_problem(tmp_path):
    data = str(tmp_path / "data")
    invoke("init", "--school-year", "2025-26", "--data-dir", data)
    bad = write_csv(tmp_path / "schools.csv", "school_id,name", "E01,", ",Nameless", "E01,Adams")
    errors = tmp_path / "errors.csv"
    result = invoke("ingest", str(bad), "--kind", "schools", "--errors", str(errors), "--data-dir", data)
    assert result.exit_code == 1
    assert "schools.csv, row 2: name: is required" in result.output
    assert "1 file(s) rejected with 3 problem(s); nothing was loaded" in result.output
    rows = list(csv.DictReader(errors.open()))
    assert [(r["row"], r["column"], r["reason"]) for r in rows] == [
        ("2", "name", "is required"),
        ("3", "school_id", "is required"),
        ("4", "school_id", "repeats the key (school_id) of row 2"),
    ]


def test_query_prints_csv_and_json_for_a_scope(demo_warehouse):
    data = str(demo_warehouse.settings.data_dir)
    as_csv = invoke("query", "vendors", "--as", "vendor:V3", "--param", "metric=dosage_met", "--data-dir", data)
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["vendor_id"] for r in rows] == ["V3"]
    as_json = invoke(
        "query", "breakdown", "--as", "analyst", "--param", "metric=proficient", "--param", "by=grade",
        "--param", "english_learner=true", "--format", "json", "--data-dir", data,
    )
    records = json.loads(as_json.output)
    assert [r["grade"] for r in records] == [3, 4, 5, 6, 7, 8]
    assert set(records[0]) >= {"grade", "value", "n", "suppressed"}
    assert {r["suppressed"] for r in records} <= {True, False}  # JSON has booleans of its own


def test_query_csv_says_yes_and_no_as_the_dashboard_does(demo_warehouse):
    data = str(demo_warehouse.settings.data_dir)
    result = invoke("query", "breakdown", "--as", "analyst", "--param", "metric=tutoring_attendance_rate",
                    "--param", "by=english_learner", "--data-dir", data)
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["english_learner"] for r in rows] == ["No", "Yes"]
    assert {r["suppressed"] for r in rows} == {"No"} and {r["small_cell"] for r in rows} == {"No"}
    assert "True" not in result.output and "False" not in result.output


def test_query_errors_list_what_is_valid(demo_warehouse):
    data = str(demo_warehouse.settings.data_dir)
    result = invoke("query", "series", "--as", "analyst", "--param", "metric=growth", "--data-dir", data)
    assert result.exit_code == 1 and "the metrics are dosage_met" in result.output
    result = invoke("query", "series", "--as", "vendor", "--param", "metric=sgp", "--data-dir", data)
    assert result.exit_code == 2 and "vendor:ID" in result.output
    result = invoke("query", "series", "--as", "vendor:V1", "--param", "metric=sgp", "--param", "vendor_id=V2", "--data-dir", data)
    assert result.exit_code == 1 and "V2" not in result.output


def test_datamap_prints_every_definition(demo_warehouse):
    result = invoke("datamap", "--format", "json", "--data-dir", str(demo_warehouse.settings.data_dir))
    metrics = {m["metric_id"]: m for m in json.loads(result.output)}
    assert len(metrics) == 12
    assert metrics["dosage_met"]["definition"].startswith("Share of student-weeks with at least 3 attended sessions")
    assert metrics["sgp"]["aggregation"] == "median"


# --- a replacement that removes rows asks for --replace -----------------------------------

HEADER = "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"
WEEK = [f"ST000000{s},2025-09-2{d},V1-T001,3,40,40" for s in (1, 2, 3) for d in (2, 3, 4)]


def test_ingest_asks_for_replace_showing_each_weeks_rows(loaded, tmp_path):
    data = str(loaded.settings.data_dir)
    week = write_csv(tmp_path / "week.csv", HEADER, *WEEK)
    assert invoke("ingest", str(week), "--kind", "sessions", "--vendor", "V1", "--data-dir", data).exit_code == 0
    version = loaded.version()
    oops = write_csv(tmp_path / "oops.csv", HEADER, WEEK[0])
    refused = invoke("ingest", str(oops), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    assert refused.exit_code == 1 and loaded.version() == version
    assert "oops.csv would replace submission" in refused.output
    assert "week of 2025-09-22: 9 rows now, 1 in oops.csv (8 removed, 0 added)" in refused.output
    assert "nothing was loaded" in refused.output and "--replace" in refused.output
    landed = invoke("ingest", str(oops), "--kind", "sessions", "--vendor", "V1", "--replace", "--data-dir", data)
    assert landed.exit_code == 0, landed.output
    assert "oops.csv: accepted as batch" in landed.output and "(8 rows removed)" in landed.output


def test_a_file_for_dates_no_contract_reaches_lands_with_a_note(loaded, tmp_path):
    """V1's contract ends 2026-05-22 (data/samples/contracts.csv); the week after it is in the school year."""
    data = str(loaded.settings.data_dir)
    inside = write_csv(tmp_path / "inside.csv", HEADER, *WEEK)
    result = invoke("ingest", str(inside), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    assert result.exit_code == 0 and "note:" not in result.output
    after = write_csv(tmp_path / "after.csv", HEADER, "ST0000001,2026-05-26,V1-T001,3,40,40")
    result = invoke("ingest", str(after), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    assert result.exit_code == 0, result.output
    assert ("after.csv: note: no contract of V1 reaches 2026-05-25 to 2026-05-31; its rows are kept but count toward"
            " no payment") in result.output
    # A roster's dates are when its students enrolled, which may come before the contract starts (Sep 15).
    roster = write_csv(tmp_path / "early.csv", (SAMPLES / "roster.csv").read_text().splitlines()[0],
                       "ST0000009,V1,E01,4,Hispanic,Female,1,1,0,below,2025-09-02")
    result = invoke("ingest", str(roster), "--kind", "roster", "--data-dir", data)
    assert result.exit_code == 0 and "early.csv: accepted" in result.output and "note:" not in result.output


def test_the_district_at_the_command_line_is_told_whose_student_it_is(loaded, tmp_path):
    roster = (SAMPLES / "roster.csv").read_text().splitlines()[0]
    data = str(loaded.settings.data_dir)
    v2 = write_csv(tmp_path / "roster_v2.csv", roster, "ST0000009,V2,E02,3,White,Male,0,0,0,near,2025-09-15")
    invoke("ingest", str(v2), "--kind", "roster", "--data-dir", data)
    wrong = write_csv(tmp_path / "sessions.csv", HEADER, "ST0000009,2025-09-22,V1-T001,1,45,45")
    result = invoke("ingest", str(wrong), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    assert result.exit_code == 1 and "student_id = 'ST0000009': is on another vendor's roster" in result.output


# --- who ran what, in the audit log ------------------------------------------------------


def audited(settings, action: str) -> list[dict]:
    from ciboard import accounts
    from ciboard.appdb import AppDB

    return [{**r, "detail": json.loads(r["detail"])} for r in accounts.audit_log(AppDB.of(settings), action=action)]


def test_query_and_ingest_from_the_command_line_are_audited_with_the_os_user(loaded, tmp_path, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "jlee")
    data = str(loaded.settings.data_dir)
    invoke("query", "series", "--as", "vendor:V1", "--param", "metric=dosage_met", "--data-dir", data)
    invoke("query", "series", "--as", "vendor:V1", "--param", "metric=dosage_met", "--param", "vendor_id=V2", "--data-dir", data)
    [refused, ran] = audited(loaded.settings, "query")
    assert (ran["outcome"], ran["username"]) == ("ok", None)
    assert ran["detail"] == {
        "view": "series", "params": {"metric": "dosage_met"}, "scope": "vendor:V1", "rows": ran["detail"]["rows"],
        "by": "the command line", "os_user": "jlee",
    }
    assert refused["outcome"] == "refused" and refused["detail"]["os_user"] == "jlee"

    good = write_csv(tmp_path / "week.csv", HEADER, *WEEK)
    bad = write_csv(tmp_path / "bad.csv", HEADER, "ST0000001,2025-09-29,V1-T001,3,40,41")
    invoke("ingest", str(good), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    invoke("ingest", str(bad), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    [rejected, accepted] = audited(loaded.settings, "ingest")
    assert accepted["outcome"] == "ok" and accepted["detail"]["rows"] == 9
    assert {k: accepted["detail"][k] for k in ("files", "kind", "scope", "os_user")} == {
        "files": ["week.csv"], "kind": "sessions", "scope": "vendor:V1", "os_user": "jlee",
    }
    assert rejected["outcome"] == "rejected" and rejected["detail"]["problems"] == 1
    assert rejected["detail"]["os_user"] == "jlee"


def test_a_packet_from_the_command_line_is_audited_with_the_os_user(demo_warehouse, tmp_path, monkeypatch):
    import getpass

    from ciboard import meetings
    from ciboard.access import ANALYST
    from ciboard.appdb import AppDB

    monkeypatch.setattr(getpass, "getuser", lambda: "jlee")
    [meeting, *_] = meetings.meetings(AppDB.of(demo_warehouse.settings), ANALYST)
    output = tmp_path / "packet.md"
    result = invoke("packet", str(meeting.id), "--as", "facilitator", "--format", "md", "--output", str(output),
                    "--data-dir", str(demo_warehouse.settings.data_dir))
    assert result.exit_code == 0, result.output
    latest = audited(demo_warehouse.settings, "export")[0]
    assert latest["detail"] == {"file": str(output), "meeting": meeting.id, "scope": "facilitator", "lettered": False,
                                "by": "the command line", "os_user": "jlee"}


# --- users unlock ------------------------------------------------------------------------


def test_users_unlock_lifts_the_wait_and_keeps_the_password(tmp_path, app_db_url):
    import pytest

    from ciboard import accounts
    from ciboard.appdb import AppDB
    from ciboard.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    db = AppDB.of(settings)
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    for _ in range(settings.sign_in_free_failures):
        with pytest.raises(accounts.SignInError):
            accounts.authenticate(db, settings, "ana", "a guess")
    with pytest.raises(accounts.SignInError, match="Try again in"):
        accounts.authenticate(db, settings, "ana", "a long password")
    result = invoke("users", "unlock", "ana", "--data-dir", str(settings.data_dir))
    assert result.exit_code == 0 and "ana: unlocked" in result.output
    assert accounts.authenticate(db, settings, "ana", "a long password").username == "ana"
    assert [r["detail"] for r in accounts.audit_log(db, action="sign-in lock lifted")] == ["ana"]
    unknown = CliRunner().invoke(main, ["users", "unlock", "nobody", "--data-dir", str(settings.data_dir)])
    assert unknown.exit_code == 1 and "no account named nobody" in unknown.output


def test_users_are_added_listed_and_disabled_in_the_app_database_the_settings_name(tmp_path, app_db_url):
    """With CIBOARD_APP_DB_URL set, the accounts live in PostgreSQL and no SQLite file is made."""
    from ciboard import accounts
    from ciboard.appdb import AppDB
    from ciboard.settings import Settings

    data = ["--data-dir", str(tmp_path / "data")]
    added = CliRunner().invoke(main, ["users", "add", "ana", "--role", "analyst", "--password-stdin", *data],
                               input="a long password\n")
    assert added.exit_code == 0 and "added ana (analyst)" in added.output
    again = CliRunner().invoke(main, ["users", "add", "ana", "--role", "analyst", "--password-stdin", *data],
                               input="another long password\n")
    assert again.exit_code == 1 and "there is already an account named ana" in again.output
    assert invoke("users", "disable", "ana", *data).exit_code == 0
    listed = list(csv.DictReader(io.StringIO(invoke("users", "list", *data).output)))
    assert [(r["username"], r["role"], bool(r["disabled_at"])) for r in listed] == [("ana", "analyst", True)]
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.app_db_url == app_db_url
    assert [u["username"] for u in accounts.users(AppDB.of(settings))] == ["ana"]
    assert settings.app_db_path.exists() == (app_db_url is None)
