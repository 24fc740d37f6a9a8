"""Certified statements: closed by an admin, frozen with their warehouse version, signed off by
the district and the vendor, and never changed after, by any path."""

from datetime import date

import pandas as pd
import pytest

from conftest import built_once, close_statement, copy_of, write_csv
from ciboard import payments, queries, reconciliation, statements
from ciboard.access import ANALYST, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB, IntegrityError
from ciboard.ingest import Submission, ingest
from test_payments import district_files

ADMIN = Account("finance", "Finance office", "admin")
VENDOR_A = Account("vendor-a", "Vendor A", "vendor", "VA")
VENDOR_B = Account("vendor-b", "Vendor B", "vendor", "VB")
TODAY = date(2026, 7, 15)


@pytest.fixture(scope="module")
def built_district(tmp_path_factory, empty_data_dir):
    return built_once(tmp_path_factory.mktemp("district"), empty_data_dir, district_files)


@pytest.fixture
def district(tmp_path, app_db_url, built_district):
    warehouse = copy_of(built_district, tmp_path / "data", app_db_url=app_db_url)
    yield warehouse
    warehouse.close()


def test_a_closed_statement_is_the_statement_as_it_stood_and_its_version_is_kept(district):
    db = AppDB.of(district.settings)
    live = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2026-06"})
    closed = close_statement(district, db, ADMIN, "VA", "2026-06", today=TODAY)
    pd.testing.assert_frame_equal(closed.rows, live.reset_index(drop=True), check_dtype=False)
    assert closed.totals["total"].tolist() == [200.0] and closed.warehouse_version == live.attrs["version"]
    assert "statement-VA-2026-06" in district.pins()[closed.warehouse_version]
    assert not closed.certified

    # A late result changes the live statement; the closed one stays as it was.
    late = write_csv(district.settings.data_dir.parent / "late.csv", "student_id,window,test_date,scaled_score,sgp,proficient",
                     "A3,spring,2026-04-20,230,75,0")
    ingest(district, [Submission(late, "assessment")])
    now = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2026-06"})
    assert now.set_index("student_id").loc["A3", "outcome"].tolist() == ["successful", "successful"]
    again = statements.read(db, ADMIN.scope, "VA", "2026-06")
    pd.testing.assert_frame_equal(again.rows, closed.rows)
    assert again.totals.equals(closed.totals) and again.warehouse_version == closed.warehouse_version
    # The pinned version still reads as it was.
    pinned = queries.run(district.at(closed.warehouse_version), "statement", ANALYST, {"vendor_id": "VA", "period": "2026-06"})
    assert pinned["amount"].tolist() == live["amount"].tolist()


def test_the_district_and_the_vendor_each_sign_it_off_once(district):
    db = AppDB.of(district.settings)
    with pytest.raises(statements.StatementError, match="not closed yet"):
        statements.sign(db, VENDOR_A, "VA", "2026-06")
    close_statement(district, db, ADMIN, "VA", "2026-06", today=TODAY)
    with pytest.raises(ScopeError):
        statements.sign(db, VENDOR_B, "VA", "2026-06")
    with pytest.raises(ScopeError):
        statements.read(db, VENDOR_B.scope, "VA", "2026-06")
    signed = statements.sign(db, VENDOR_A, "VA", "2026-06", note="  Checked against our invoice 114. ")
    assert not signed.certified
    signed = statements.sign(db, ADMIN, "VA", "2026-06")
    assert signed.certified
    assert [(s.party, s.signed_by, s.note) for s in signed.signoffs] == [
        ("district", "finance", ""), ("vendor", "vendor-a", "Checked against our invoice 114.")
    ]
    with pytest.raises(statements.StatementError, match="signed this statement off already"):
        statements.sign(db, VENDOR_A, "VA", "2026-06", note="changed my mind")

    # What is certified, in totals: a vendor reads its own months only.
    assert statements.standing(db, VENDOR_B.scope).empty
    assert statements.standing(db, VENDOR_A.scope).to_dict("records") == [
        {"vendor_id": "VA", "period": "2026-06", "total": 200.0, "adjustments": 0.0, "certified": True}
    ]


def test_nothing_changes_a_closed_statement(district):
    db = AppDB.of(district.settings)
    with pytest.raises(ScopeError):
        close_statement(district, db, VENDOR_A, "VA", "2026-06", today=TODAY)
    with pytest.raises(ScopeError):
        close_statement(district, db, Account("ana", "Analyst", "analyst"), "VA", "2026-06", today=TODAY)
    with pytest.raises(statements.StatementError, match="has not ended yet"):
        close_statement(district, db, ADMIN, "VA", "2026-07", today=TODAY)
    # What is frozen is what the admin read: rows read in another scope (a vendor's, an
    # evaluator's pseudonymised ones) or made by hand are refused.
    as_the_vendor = queries.run(district, "statement", VENDOR_A.scope, {"vendor_id": "VA", "period": "2026-06"})
    made_up = pd.DataFrame({"student_id": ["S1"]})
    for rows in (as_the_vendor, made_up):
        with pytest.raises(statements.StatementError, match="as its admin read it"):
            statements.close(district, db, ADMIN, rows, today=TODAY)
    closed = close_statement(district, db, ADMIN, "VA", "2026-06", today=TODAY)
    statements.sign(db, ADMIN, "VA", "2026-06")
    with pytest.raises(statements.StatementError, match="closed already"):
        close_statement(district, db, ADMIN, "VA", "2026-06", today=TODAY)
    with db.connect() as con:
        for sql in ("update closed_statements set frozen = '{}'", "delete from closed_statements",
                    "update statement_signoffs set signed_by = 'someone'", "delete from statement_signoffs"):
            with pytest.raises(IntegrityError, match="never changes"):
                con.execute(sql)
        if db.url:  # PostgreSQL's truncate skips row triggers; a statement trigger refuses it
            for table in ("closed_statements", "statement_signoffs"):
                with pytest.raises(IntegrityError, match="never changes"):
                    con.execute(f"truncate {table} cascade")
    again = statements.read(db, ADMIN.scope, "VA", "2026-06")
    pd.testing.assert_frame_equal(again.rows, closed.rows)
    assert [s.party for s in again.signoffs] == ["district"]


def test_the_command_line_closes_a_month_once(district):
    from click.testing import CliRunner

    from ciboard.cli import main

    data = str(district.settings.data_dir)
    result = CliRunner().invoke(main, ["payments", "close", "--vendor", "VA", "--period", "2026-06", "--data-dir", data])
    assert result.exit_code == 0, result.output
    assert "closed the 2026-06 statement of VA: total 200.00" in result.output
    again = CliRunner().invoke(main, ["payments", "close", "--vendor", "VA", "--period", "2026-06", "--data-dir", data])
    assert again.exit_code == 1 and "closed already" in again.output
    bad = CliRunner().invoke(main, ["payments", "close", "--vendor", "VA", "--period", "June", "--data-dir", data])
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output


# Adjustments: A2 had two sessions when September closed (not served); a third, dated
# Sep 10 and sent later, makes it served in September, which owes its $100 base.
LATE_SESSION = "A2,2025-09-10,VA-T1,3,45,40"
SESSIONS_HEADER = "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"


def resend(warehouse, vendor: str, *rows: str) -> None:
    late = write_csv(warehouse.settings.data_dir.parent / f"late-{vendor}.csv", SESSIONS_HEADER, *rows)
    ingest(warehouse, [Submission(late, "sessions", vendor)])


def adjustments_of(warehouse, vendor: str, period: str, scope=ANALYST) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = queries.run(warehouse, "statement", scope, {"vendor_id": vendor, "period": period})
    return pd.DataFrame(rows.attrs["adjustments"]), pd.DataFrame(rows.attrs["totals"])


def test_a_change_to_a_closed_month_is_one_adjustment_in_the_next_open_month_and_is_carried_once(district):
    db = AppDB.of(district.settings)
    september = close_statement(district, db, ADMIN, "VA", "2025-09", today=TODAY)
    _, october_before = adjustments_of(district, "VA", "2025-10")
    assert september.totals["total"].tolist() == [200.0] and october_before["total"].tolist() == [200.0]

    resend(district, "VA", LATE_SESSION)
    lines, totals = adjustments_of(district, "VA", "2025-10")
    assert lines.drop(columns="contract_starts_on").to_dict("records") == [{
        "vendor_id": "VA", "student_id": "A2", "corrects": "2025-09",
        "reason": "data that arrived after 2025-09 closed: served now (on 2025-09-10)",
        "amount_before": 0.0, "amount_after": 100.0, "amount": 100.0,
    }]
    # October's own $200 (A3 and A4 served) and the $100 September owes A2.
    assert totals[["base_amount", "adjustments", "total"]].to_dict("records") == [
        {"base_amount": 200.0, "adjustments": 100.0, "total": 300.0}
    ]
    # September stays as it closed; the reconciliation's earned for October holds the adjustment.
    assert statements.read(db, ADMIN.scope, "VA", "2025-09").totals["total"].tolist() == [200.0]
    assert reconciliation.earned(district, ANALYST, "VA", ["2025-10"])["earned"].tolist() == [300.0]
    # The file says the same.
    rows = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2025-10"})
    csv = payments.as_file(rows, "csv", "VA").decode().splitlines()
    assert "VA,2025-09-01,adjustment,A2,,,,,,data that arrived after 2025-09 closed: served now (on 2025-09-10),,,,100.0" in csv
    assert csv[-1].endswith(",TOTAL,,,,,,contract cap applied: 0.00,200.0,0.0,0.0,300.0")

    # Closing October freezes the line with it; November carries nothing more.
    october = close_statement(district, db, ADMIN, "VA", "2025-10", today=TODAY)
    assert october.adjustments[["student_id", "corrects", "amount"]].to_dict("records") == [
        {"student_id": "A2", "corrects": "2025-09", "amount": 100.0}
    ]
    assert october.totals["total"].tolist() == [300.0]
    november, november_totals = adjustments_of(district, "VA", "2025-11")
    assert november.empty and november_totals["adjustments"].tolist() == [0.0]
    # A closed month's statement shows what it carried, as frozen.
    again, _ = adjustments_of(district, "VA", "2025-10")
    assert again["amount"].tolist() == [100.0]


def test_a_vendor_s_late_re_submission_after_certification_is_an_adjustment_and_the_certified_month_stands(district):
    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2025-09", today=TODAY)
    statements.sign(db, VENDOR_A, "VA", "2025-09", note="agreed")
    certified = statements.sign(db, ADMIN, "VA", "2025-09")
    assert certified.certified

    # VA sends its whole sessions file again, corrected: the same period, so it replaces the first.
    from test_payments import SESSIONS
    sent = [f"{s},{day},VA-T1,3,45,{minutes}" for s, days in SESSIONS["VA"].items() for day, minutes in days]
    late = write_csv(district.settings.data_dir.parent / "sessions_VA_corrected.csv", SESSIONS_HEADER, *sent, LATE_SESSION)
    [outcome] = ingest(district, [Submission(late, "sessions", "VA")], replace=True)
    assert outcome.replaced_batch_id is not None

    again = statements.read(db, VENDOR_A.scope, "VA", "2025-09")
    pd.testing.assert_frame_equal(again.rows, certified.rows)
    assert again.totals.equals(certified.totals) and again.signoffs == certified.signoffs and again.certified
    lines, totals = adjustments_of(district, "VA", "2025-10", scope=VENDOR_A.scope)
    assert lines[["student_id", "corrects", "reason", "amount"]].to_dict("records") == [{
        "student_id": "A2", "corrects": "2025-09", "reason": "data that arrived after 2025-09 closed: served now (on 2025-09-10)",
        "amount": 100.0,
    }]
    assert totals[["adjustments", "total"]].to_dict("records") == [{"adjustments": 100.0, "total": 300.0}]


def test_a_correction_lands_in_the_first_open_month_after_the_one_it_corrects():
    closed = ["2025-09", "2025-10", "2025-12"]
    assert payments.carried_into(closed, date(2025, 11, 1)) == ["2025-10", "2025-09"]
    assert payments.carried_into(closed, date(2026, 1, 1)) == ["2025-12"]
    assert payments.carried_into(closed, date(2025, 9, 1)) == []


def test_a_vendor_s_statement_holds_only_its_own_adjustments(district):
    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2025-09", today=TODAY)
    close_statement(district, db, ADMIN, "VB", "2025-09", today=TODAY)
    resend(district, "VA", LATE_SESSION)
    theirs, _ = adjustments_of(district, "VB", "2025-10")
    assert theirs.empty
    theirs, _ = adjustments_of(district, "VB", "2025-10", scope=VENDOR_B.scope)
    assert theirs.empty
    own, _ = adjustments_of(district, "VA", "2025-10", scope=VENDOR_A.scope)
    assert own["student_id"].tolist() == ["A2"]


def test_a_change_that_nets_to_zero_is_no_adjustment(district):
    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2025-09", today=TODAY)
    # A1 is served on Sep 9 now, not Sep 10: the same month, the same $100.
    resend(district, "VA", "A1,2025-09-05,VA-T1,3,45,40")
    live = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2025-09"})
    assert str(live.set_index("student_id").loc["A1", "served_on"].iloc[0]) == "2025-09-09"
    lines, totals = adjustments_of(district, "VA", "2025-10")
    assert lines.empty and totals["total"].tolist() == [200.0]


def test_a_late_result_is_an_outcome_adjustment_and_the_contract_cap_takes_its_part(district):
    # June closed with VA's contract cap cutting $100; A3's spring test arrives after: both its
    # outcomes succeed ($150 under its student cap), which the $700 contract cap takes back whole.
    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2026-06", today=date(2026, 8, 15))
    late = write_csv(district.settings.data_dir.parent / "late.csv", "student_id,window,test_date,scaled_score,sgp,proficient",
                     "A3,spring,2026-04-20,230,75,0")
    ingest(district, [Submission(late, "assessment")])
    lines, totals = adjustments_of(district, "VA", "2026-07")
    assert lines.drop(columns="contract_starts_on").to_dict("records") == [
        {"vendor_id": "VA", "student_id": "", "corrects": "2026-06",
         "reason": "data that arrived after 2026-06 closed: the contract cap cuts $250.00 now, $100.00 when it closed",
         "amount_before": -100.0, "amount_after": -250.0, "amount": -150.0},
        {"vendor_id": "VA", "student_id": "A3", "corrects": "2026-06",
         "reason": "data that arrived after 2026-06 closed: scaled_score outcome result changed: not eligible, now successful;"
                   " sgp outcome result changed: not eligible, now successful",
         "amount_before": 0.0, "amount_after": 150.0, "amount": 150.0},
    ]
    assert totals[["adjustments", "total", "total_to_date"]].to_dict("records") == [
        {"adjustments": 0.0, "total": 0.0, "total_to_date": 700.0}
    ]


def test_an_evaluator_reads_a_closed_statement_under_its_own_pseudonyms(district):
    from ciboard import privacy
    from ciboard.access import Scope

    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2026-06", today=TODAY)
    raw = statements.read(db, ANALYST, "VA", "2026-06")
    evaluator = Scope("evaluator", evaluator="evaluator")
    seen = statements.read(db, evaluator, "VA", "2026-06")
    key = privacy.pseudonym_key(db)
    assert len(seen.rows) == len(raw.rows) > 0
    assert seen.rows["student_id"].tolist() == [privacy.pseudonym(key, "evaluator", s) for s in raw.rows["student_id"]]
    # The month after reads its carried lines from the frozen one by student, then pseudonymised once.
    live = queries.run(district, "statement", evaluator, {"vendor_id": "VA", "period": "2026-07"})
    lines = pd.DataFrame(live.attrs["adjustments"])
    exact = pd.DataFrame(queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2026-07"}).attrs["adjustments"])
    assert len(lines) == len(exact)
    if "student_id" in exact and len(exact):
        assert lines["student_id"].tolist() == [None if pd.isna(s) else privacy.pseudonym(key, "evaluator", s)
                                                for s in exact["student_id"]]


def test_ciboard_query_statement_prints_the_adjustment_lines_as_the_statement_file_does(district):
    from click.testing import CliRunner

    from ciboard.cli import main

    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2025-09", today=TODAY)
    resend(district, "VA", LATE_SESSION)
    data = str(district.settings.data_dir)

    def invoke(*args):
        result = CliRunner().invoke(main, [*args, "--data-dir", data], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    queried = invoke("query", "statement", "--as", "analyst", "--param", "vendor_id=VA", "--param", "period=2025-10")
    printed = invoke("payments", "statement", "--vendor", "VA", "--period", "2025-10", "--as", "analyst")
    assert queried == printed
    rows = queried.splitlines()
    assert "VA,2025-09-01,adjustment,A2,,,,,,data that arrived after 2025-09 closed: served now (on 2025-09-10),,,,100.0" in rows
    assert rows[-1].endswith(",TOTAL,,,,,,contract cap applied: 0.00,200.0,0.0,0.0,300.0")
    # As JSON too, the adjustment line and the total with the students; a vendor's own the same.
    import json

    records = json.loads(invoke("query", "statement", "--as", "vendor:VA", "--param", "period=2025-10", "--format", "json"))
    assert [(r["payment_metric"], r["student_id"], r["amount"]) for r in records
            if r["student_id"] in ("TOTAL",) or r["payment_metric"] == "adjustment"] == [
        ("adjustment", "A2", 100.0), (None, "TOTAL", 300.0)]


def test_the_reconciliation_s_months_at_once_are_the_statements_month_by_month(district):
    """queries.statement_totals (what the reconciliation reads) against queries.run per open month
    and the frozen statement for the closed one, with an adjustment carried and months after it;
    and the same scope rules."""
    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2025-09", today=TODAY)
    resend(district, "VA", LATE_SESSION)
    months = ["2025-09", "2025-10", "2025-11", "2026-06"]
    for scope in (ANALYST, VENDOR_A.scope):
        at_once = queries.statement_totals(district, scope, "VA", months)
        # September as it closed: the late session is October's adjustment, not September's too.
        pd.testing.assert_frame_equal(at_once["2025-09"],
                                      statements.read(db, scope, "VA", "2025-09").totals)
        assert at_once["2025-09"]["total"].tolist() == [200.0]
        for month in months[1:]:
            one = pd.DataFrame(queries.run(district, "statement", scope, {"vendor_id": "VA", "period": month}).attrs["totals"])
            pd.testing.assert_frame_equal(at_once[month].reset_index(drop=True), one, check_dtype=False)
    assert at_once["2025-10"]["adjustments"].tolist() == [100.0]
    for scope in (VENDOR_B.scope, Account("f", "F", "facilitator").scope):
        with pytest.raises(ScopeError):
            queries.statement_totals(district, scope, "VA", months)
    with pytest.raises(queries.QueryError, match="YYYY-MM"):
        queries.statement_totals(district, ANALYST, "VA", ["2025-13"])


def test_what_later_data_takes_back_from_a_certified_month_is_a_negative_provisional_part_and_the_parts_add_up():
    """As the Overview, Vendors and Reports split what a vendor earned: VA's certified month froze
    $300 that later data makes $250, which the next open month carries as -$50 and nothing else
    earns yet; VB's open months earn $120 on top of its certified $100."""
    closed = pd.DataFrame({"vendor_id": ["VA", "VB"], "period": ["2025-09", "2025-09"], "total": [300.0, 100.0],
                           "adjustments": [0.0, 0.0], "certified": [True, True]})
    split = statements.standing_by_vendor(closed, pd.Series({"VA": 250.0, "VB": 220.0}))
    assert split.to_dict("index") == {
        "VA": {"earned": 250.0, "certified": 300.0, "awaiting_signoff": 0.0, "provisional": -50.0},
        "VB": {"earned": 220.0, "certified": 100.0, "awaiting_signoff": 0.0, "provisional": 120.0},
    }
    assert statements.standing_text(closed[closed["vendor_id"] == "VA"], 250.0) == (
        "Of \\$250 earned: **\\$300 certified** (1 vendor month signed off by the district and the vendor); "
        "less \\$50 provisional: what later data or new terms take back from closed months, carried into the next "
        "open month, which moves when data arrives.")
