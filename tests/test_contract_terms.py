"""Rate-card terms edited by an administrator (issue 13): on the hand-built district of
test_payments, every save a version with who, when and why, checked as a contract file is, and a
closed statement keeping the terms it was closed with.

VA's contract has two lines, scaled_score growth ($50) and a spring SGP of 50 or more ($200), a
$250 student cap and a $700 contract cap. Raising the SGP threshold to 65 takes June's SGP outcome
from A1 (spring SGP 60) and leaves A6's (70): June pays A1 $50 and A6 $150 (its $200 cut by the
student cap after its $100 base), $200 in all, which the contract cap ($700 less $500 of base) no
longer cuts.
"""

import csv
import io
import re
import shutil
from datetime import date, datetime

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import make_warehouse, open_page, snapshot, write_csv, close_statement
from ciboard import contract_terms, queries, statements
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.cli import main
from ciboard.ingest import Submission, ingest
from test_metric_edits import editable  # noqa: F401 - a copy of the demo district a test may edit
from test_payments import district_files

SESSIONS_HEADER = "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"

ADMIN = Account("finance", "Finance office", "admin")
VA = contract_terms.ContractYear("VA", date(2025, 9, 1), None)
AFTER_JUNE = date(2026, 7, 15)


@pytest.fixture(scope="module")
def district_made(tmp_path_factory, empty_data_dir):
    """The data folder of the small district's warehouse, loaded once for every test to copy."""
    folder = tmp_path_factory.mktemp("district")
    shutil.copytree(empty_data_dir, folder / "data")
    warehouse = make_warehouse(folder / "data")
    ingest(warehouse, district_files(folder / "files"))
    warehouse.close()
    return folder / "data"


@pytest.fixture
def district(tmp_path, district_made):
    shutil.copytree(district_made, tmp_path / "data")
    warehouse = make_warehouse(tmp_path / "data")
    yield warehouse
    warehouse.close()


def june(warehouse, vendor: str = "VA"):
    rows = queries.run(warehouse, "statement", ANALYST, {"vendor_id": vendor, "period": "2026-06"})
    return rows, pd.DataFrame(rows.attrs["totals"]), pd.DataFrame(rows.attrs["terms"])


def test_an_edit_is_a_new_version_with_who_when_and_why_and_the_statement_applies_it(district):
    before = datetime.now()
    batch = contract_terms.edit(district, ADMIN, VA, "sgp", {"threshold": "65"}, "  amendment 1: a higher bar ")
    history = contract_terms.history(district, ANALYST, VA)
    newest = history[history["batch_id"] == batch]
    assert newest[["version", "payment_metric", "threshold", "saved_by", "note", "edited_line"]].to_dict("records") == [
        {"version": 2, "payment_metric": "scaled_score", "threshold": 10.0, "saved_by": "finance",
         "note": "amendment 1: a higher bar", "edited_line": "sgp"},
        {"version": 2, "payment_metric": "sgp", "threshold": 65.0, "saved_by": "finance",
         "note": "amendment 1: a higher bar", "edited_line": "sgp"},
    ]
    assert newest["saved_at"].iloc[0] >= before
    # The file's version stays, named by its file.
    first = history[history["version"] == 1]
    assert set(first["saved_by"]) == {"file contracts.csv"} and set(first["threshold"]) == {10.0, 50.0}

    rows, totals, terms = june(district)
    paid = rows[rows["amount"] > 0]
    assert [tuple(r) for r in paid[["student_id", "payment_metric", "outcome", "amount"]].itertuples(index=False)] == [
        ("A1", "scaled_score", "successful", 50.0),
        ("A6", "sgp", "successful", 150.0),
    ]
    assert rows.set_index(["student_id", "payment_metric"]).loc[("A1", "sgp"), "outcome"] == "not successful"
    assert totals[["outcome_amount", "student_cap_applied", "contract_cap_applied", "total"]].to_dict("records") == [
        {"outcome_amount": 250.0, "student_cap_applied": 50.0, "contract_cap_applied": 0.0, "total": 200.0}
    ]
    assert all(f"(terms of batch {batch})" in text for text in terms["contract"])
    assert "sgp ≥ 65 in the spring window" in set(terms["outcome"])


def test_the_contract_s_own_terms_apply_to_each_of_its_lines(district):
    contract_terms.edit(district, ADMIN, VA, "sgp", {"base_per_student": "120", "student_cap": ""}, "new base, no cap")
    lines = contract_terms.lines(district, ANALYST).query("vendor_id == 'VA'")
    assert set(lines["base_per_student"]) == {120.0} and lines["student_cap"].isna().all()
    september = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2025-09"})
    assert pd.DataFrame(september.attrs["totals"])["base_amount"].tolist() == [240.0]  # A1 and A5


def test_a_changed_payment_metric_replaces_the_line_and_the_history_says_so(district):
    batch = contract_terms.edit(district, ADMIN, VA, "sgp", {"payment_metric": "proficient", "success": "threshold",
                                                             "threshold": "1"}, "pay on proficiency")
    assert set(contract_terms.lines(district, ANALYST).query("vendor_id == 'VA'")["payment_metric"]) == {
        "scaled_score", "proficient"}
    history = contract_terms.history(district, ANALYST, VA)
    assert history.loc[history["batch_id"] == batch, "replaced_metric"].tolist() == ["sgp", "sgp"]
    with pytest.raises(contract_terms.TermsError, match="has a line on scaled_score already"):
        contract_terms.edit(district, ADMIN, VA, "proficient", {"payment_metric": "scaled_score"}, "two on one")


@pytest.mark.parametrize(("changes", "said"), [
    ({"outcome_per_student": "-200"}, "field outcome_per_student (-200): must not be negative"),
    ({"cap": "-1"}, "field cap (-1): must not be negative"),
    ({"outcome_window": "summer"}, "field outcome_window (summer): is not an assessment window of the calendar"),
    ({"enrolled_by": "2026-07-01"}, "field enrolled_by (2026-07-01): is after ends_on"),
    ({"enrolled_by": "July"}, "field enrolled_by (July): "),
    ({"threshold": "most"}, "field threshold (most): is not a number"),
    ({"success": "growth", "from_window": ""}, "field success (growth): growth is measured between two windows"),
    ({"served_by": "hours"}, "field served_by (hours): must be sessions, minutes or dosage_weeks"),
    ({"min_dosage_share": "1.5"}, "field min_dosage_share (1.5): must be a share from 0 to 1"),
    ({"payment_metric": "charm"}, "field payment_metric (charm): unknown metric id"),
    ({"cost": "5"}, "field cost: not a rate-card term"),
    ({}, "nothing changed"),
])
def test_bad_terms_are_refused_naming_the_field_and_nothing_is_saved(district, changes, said):
    before = snapshot(district), district.version()
    with pytest.raises(contract_terms.TermsError) as refused:
        contract_terms.edit(district, ADMIN, VA, "sgp", changes, "trying")
    assert any(p.startswith(said) for p in refused.value.problems), refused.value.problems
    assert (snapshot(district), district.version()) == before
    assert len(contract_terms.history(district, ANALYST, VA)) == 2


def test_an_edit_needs_a_reason_an_existing_line_and_an_admin(district):
    with pytest.raises(contract_terms.TermsError, match="note: say why"):
        contract_terms.edit(district, ADMIN, VA, "sgp", {"threshold": "60"}, " ")
    with pytest.raises(contract_terms.TermsError, match="has no line on proficient"):
        contract_terms.edit(district, ADMIN, VA, "proficient", {"threshold": "60"}, "why")
    for role, vendor in (("analyst", None), ("vendor", "VA"), ("facilitator", None), ("evaluator", None)):
        with pytest.raises(PermissionError):
            contract_terms.edit(district, Account("someone", "Someone", role, vendor), VA, "sgp", {"threshold": "1"}, "why")
    assert len(contract_terms.history(district, ANALYST, VA)) == 2


def test_a_vendor_reads_its_own_terms_and_history_only(district):
    assert set(contract_terms.lines(district, Scope("vendor", "VB"))["vendor_id"]) == {"VB"}
    assert set(contract_terms.lines(district, ANALYST)["vendor_id"]) == {"VA", "VB"}
    assert len(contract_terms.history(district, Scope("vendor", "VA"), VA)) == 2
    with pytest.raises(ScopeError) as refused:
        contract_terms.history(district, Scope("vendor", "VB"), VA)
    assert "VA" not in str(refused.value)
    for scope in (Scope("facilitator"), Scope("school", school_ids=("S1",))):
        with pytest.raises(ScopeError):
            contract_terms.lines(district, scope)


def test_a_closed_statement_keeps_the_terms_it_was_closed_on_and_the_change_is_an_adjustment(district):
    db = AppDB.of(district.settings)
    closed = close_statement(district, db, ADMIN, "VA", "2026-06", today=AFTER_JUNE)
    statements.sign(db, ADMIN, "VA", "2026-06")
    statements.sign(db, Account("vendor-a", "Vendor A", "vendor", "VA"), "VA", "2026-06")
    frozen = statements.read(db, ANALYST, "VA", "2026-06")
    assert frozen.certified

    batch = contract_terms.edit(district, ADMIN, VA, "sgp", {"threshold": "65"}, "amendment after June closed")
    again = statements.read(db, ANALYST, "VA", "2026-06")
    pd.testing.assert_frame_equal(again.rows, frozen.rows)
    pd.testing.assert_frame_equal(again.totals, frozen.totals)
    pd.testing.assert_frame_equal(again.terms, closed.terms)
    assert all("(terms of batch 3)" in text for text in again.terms["contract"])
    assert "sgp ≥ 50 in the spring window" in set(again.terms["outcome"])
    # The month as computed now applies the new terms; July carries what they change in June.
    _, _, live_terms = june(district)
    assert all(f"(terms of batch {batch})" in text for text in live_terms["contract"])
    july = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2026-07"})
    lines = pd.DataFrame(july.attrs["adjustments"])
    assert lines[["student_id", "amount"]].to_dict("records") == [
        {"student_id": "", "amount": 100.0},  # the contract cap no longer cuts $100
        {"student_id": "A1", "amount": -100.0},
    ]
    version = f"rate-card terms changed after 2026-06 closed (version 2 by finance on {date.today()})"
    assert lines["reason"].tolist() == [
        f"{version}: the contract cap cuts $0.00 now, $100.00 when it closed",
        f"{version}: sgp outcome result changed: successful, now not successful",
    ]
    # Printed as the page shows it: the CLI's statement carries the same reason.
    printed = CliRunner().invoke(main, ["query", "statement", "--as", "analyst", "--param", "vendor_id=VA", "--param", "period=2026-07",
                                        "--data-dir", str(district.settings.data_dir)])
    assert printed.exit_code == 0, printed.output
    assert f"{version}: sgp outcome result changed" in printed.output


def test_a_new_base_in_a_closed_month_is_an_adjustment_naming_the_version(district):
    close_statement(district, AppDB.of(district.settings), ADMIN, "VA", "2025-09", today=AFTER_JUNE)
    contract_terms.edit(district, ADMIN, VA, "sgp", {"base_per_student": "120"}, "the board raised the base")
    october = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2025-10"})
    lines = pd.DataFrame(october.attrs["adjustments"])
    # A1 and A5 were served in September: $100 then, $120 under the new terms.
    assert lines[["student_id", "amount_before", "amount_after", "amount", "reason"]].to_dict("records") == [
        {"student_id": s, "amount_before": 100.0, "amount_after": 120.0, "amount": 20.0,
         "reason": f"rate-card terms changed after 2025-09 closed (version 2 by finance on {date.today()}): the same "
                   "standing, paid under the new terms"} for s in ("A1", "A5")]


def test_data_arriving_after_a_month_closed_is_not_said_to_be_a_terms_change(district, tmp_path):
    db = AppDB.of(district.settings)
    close_statement(district, db, ADMIN, "VA", "2026-06", today=AFTER_JUNE)
    # A2's third session arrives late: served since September, its June outcomes are paid now, under the same terms.
    ingest(district, [Submission(write_csv(tmp_path / "late.csv", SESSIONS_HEADER, "A2,2025-09-10,VA-T1,3,45,40"),
                                 "sessions", "VA")])
    lines = pd.DataFrame(queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2026-07"}).attrs["adjustments"])
    assert set(lines["student_id"]) >= {"A2"}
    assert all(reason.startswith("data that arrived after 2026-06 closed: ") for reason in lines["reason"])


def test_contract_dates_are_edited_checked_and_the_history_follows_a_move(district):
    before = contract_terms.lines(district, ANALYST)
    for changes, said in (
        ({"ends_on": "2025-08-01"}, "field ends_on (2025-08-01): ends before starts_on"),
        ({"starts_on": "2025-09-31"}, "field starts_on (2025-09-31)"),
        ({"ends_on": ""}, "field ends_on"),
    ):
        with pytest.raises(contract_terms.TermsError) as refused:
            contract_terms.edit(district, ADMIN, VA, "sgp", changes, "trying dates")
        assert any(said in problem for problem in refused.value.problems), refused.value.problems
    second = contract_terms.ContractYear("VB", date(2026, 1, 5), None)
    with pytest.raises(contract_terms.TermsError, match="VB has a contract from that day already"):
        contract_terms.edit(district, ADMIN, second, "proficient", {"starts_on": "2025-09-01"}, "merge them")
    pd.testing.assert_frame_equal(contract_terms.lines(district, ANALYST), before)

    contract_terms.edit(district, ADMIN, VA, "sgp", {"ends_on": "2026-04-30"}, "the board shortened it")
    moved = contract_terms.edit(district, ADMIN, VA, "sgp", {"starts_on": "2025-09-08"}, "started a week late")
    lines = contract_terms.lines(district, ANALYST).query("vendor_id == 'VA'")
    assert set(zip(lines["starts_on"], lines["ends_on"])) == {(date(2025, 9, 8), date(2026, 4, 30))}
    assert len(lines) == 2  # both lines moved; none is left on the old dates
    history = contract_terms.history(district, ANALYST, contract_terms.ContractYear("VA", date(2025, 9, 8), None))
    assert history.drop_duplicates("version")[["version", "starts_on", "ends_on", "moved_from"]].to_dict("records") == [
        {"version": 3, "starts_on": date(2025, 9, 8), "ends_on": date(2026, 4, 30), "moved_from": date(2025, 9, 1)},
        {"version": 2, "starts_on": date(2025, 9, 1), "ends_on": date(2026, 4, 30), "moved_from": None},
        {"version": 1, "starts_on": date(2025, 9, 1), "ends_on": date(2026, 5, 29), "moved_from": None},
    ]
    assert contract_terms.version_text(district, moved) == f"version 3 by finance on {date.today()}"
    # A1's sessions on Sep 8-10 still count; A5's too, and the statement applies the new dates.
    rows = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2025-09"})
    assert set(rows["contract_starts_on"]) == {date(2025, 9, 8)}
    assert dict(zip(rows["student_id"], rows["served"])) == {"A1": True, "A2": False, "A3": False, "A4": False,
                                                             "A5": True, "A6": False}


def test_the_history_asked_for_by_the_contract_s_old_first_day_is_the_whole_history(district):
    contract_terms.edit(district, ADMIN, VA, "sgp", {"threshold": "65"}, "amendment 1")
    contract_terms.edit(district, ADMIN, VA, "sgp", {"starts_on": "2025-09-08"}, "started a week late")
    moved = contract_terms.ContractYear("VA", date(2025, 9, 8), None)
    contract_terms.edit(district, ADMIN, moved, "sgp", {"threshold": "70"}, "amendment 2, after the move")
    whole = contract_terms.history(district, ANALYST, moved)
    assert whole.drop_duplicates("version")[["version", "starts_on", "moved_from"]].to_dict("records") == [
        {"version": 4, "starts_on": date(2025, 9, 8), "moved_from": None},
        {"version": 3, "starts_on": date(2025, 9, 8), "moved_from": date(2025, 9, 1)},
        {"version": 2, "starts_on": date(2025, 9, 1), "moved_from": None},
        {"version": 1, "starts_on": date(2025, 9, 1), "moved_from": None},
    ]
    pd.testing.assert_frame_equal(contract_terms.history(district, ANALYST, VA), whole)
    # Moved back to its first day: the same history again, by either day, and the query stops.
    contract_terms.edit(district, ADMIN, moved, "sgp", {"starts_on": "2025-09-01"}, "the week was made up")
    assert contract_terms.history(district, ANALYST, VA)["version"].max() == 5
    pd.testing.assert_frame_equal(contract_terms.history(district, ANALYST, moved), contract_terms.history(district, ANALYST, VA))


EVERY_YEAR = ("VM,sgp,50,100,200,1000,2024-09-03,2026-05-29,sessions,2,percentile,spring,",)
SECOND_YEAR = {"threshold": "60", "outcome_per_student": "300", "served_min": "3", "base_per_student": "120"}


def test_one_school_year_of_an_every_year_contract_is_given_terms_of_its_own(tmp_path):
    from test_payments_multiyear import two_year_district

    warehouse = two_year_district(tmp_path, contract_lines=EVERY_YEAR)
    every = contract_terms.ContractYear("VM", date(2024, 9, 3), None)
    try:
        for own_year, said in (("2023-24", "field school_year (2023-24): not a school year the contract's dates"
                                           " (2024-09-03 to 2026-05-29) reach; they reach 2024-25, 2025-26"),
                               ("2025-26", "nothing changed: no version saved")):
            with pytest.raises(contract_terms.TermsError, match=re.escape(said)):
                contract_terms.edit(warehouse, ADMIN, every, "sgp", {} if own_year == "2025-26" else SECOND_YEAR,
                                    "second year", own_year=own_year)
        assert contract_terms.lines(warehouse, ANALYST)["school_year"].isna().all()

        contract_terms.edit(warehouse, ADMIN, every, "sgp", SECOND_YEAR, "second-year amendment", own_year="2025-26")
        lines = contract_terms.lines(warehouse, ANALYST).set_index("school_year")
        assert lines[["threshold", "base_per_student", "served_min"]].to_dict("index") == {
            "2024-25": {"threshold": 50.0, "base_per_student": 100.0, "served_min": 2.0},
            "2025-26": {"threshold": 60.0, "base_per_student": 120.0, "served_min": 3.0},
        }
        # Exactly what a contract file with these terms per year pays (test_payments_multiyear).
        summary = queries.run(warehouse, "payments", ANALYST, {}).set_index("contract_starts_on")
        assert summary["amount_earned"].to_dict() == {date(2024, 9, 3): 900.0, date(2025, 8, 1): 540.0}
        # Each year's history holds the every-year version it had before, and its own since.
        later = contract_terms.history(warehouse, ANALYST, contract_terms.ContractYear("VM", date(2024, 9, 3), "2025-26"))
        assert later[["version", "school_year", "threshold", "note"]].fillna("").to_dict("records") == [
            {"version": 2, "school_year": "2025-26", "threshold": 60.0, "note": "second-year amendment"},
            {"version": 1, "school_year": "", "threshold": 50.0, "note": ""},
        ]
        with pytest.raises(contract_terms.TermsError, match="has terms of its own already"):
            contract_terms.edit(warehouse, ADMIN, contract_terms.ContractYear("VM", date(2024, 9, 3), "2025-26"), "sgp",
                                {"threshold": "65"}, "again", own_year="2025-26")
    finally:
        warehouse.close()


def test_a_multi_year_contract_s_terms_are_edited_for_one_school_year(tmp_path):
    from test_payments_multiyear import two_year_district

    warehouse = two_year_district(tmp_path)
    try:
        later = contract_terms.ContractYear("VM", date(2024, 9, 3), "2025-26")
        contract_terms.edit(warehouse, ADMIN, later, "sgp", {"threshold": "55"}, "second-year amendment")
        lines = contract_terms.lines(warehouse, ANALYST).set_index("school_year")
        assert lines["threshold"].to_dict() == {"2024-25": 50.0, "2025-26": 55.0}
        assert len(contract_terms.history(warehouse, ANALYST, later)) == 2
        assert len(contract_terms.history(warehouse, ANALYST, contract_terms.ContractYear("VM", date(2024, 9, 3), "2024-25"))) == 1
        # M2's spring SGP of 58 now succeeds in 2025-26 too.
        rows = queries.run(warehouse, "statement", ANALYST, {"vendor_id": "VM", "period": "2026-06"})
        assert rows.set_index("student_id").loc["M2", "outcome"] == "successful"
    finally:
        warehouse.close()


def test_the_command_line_shows_edits_and_lists_the_history(district):
    data = str(district.settings.data_dir)

    def invoke(*args):
        return CliRunner().invoke(main, ["contracts", "terms", *args, "--data-dir", data])

    shown = invoke("show", "--as", "vendor:VB")
    assert shown.exit_code == 0 and shown.output.splitlines()[0].startswith("vendor_id,payment_metric,threshold")
    assert {line.split(",")[0] for line in shown.output.splitlines()[1:]} == {"VB"}
    refused = invoke("edit", "--vendor", "VA", "--starts-on", "2025-09-01", "--metric", "sgp", "--set", "cap=-5",
                     "--set", "outcome_window=summer", "--note", "typo")
    assert refused.exit_code == 1
    assert "nothing saved:\nfield cap (-5): must not be negative\nfield outcome_window (summer)" in refused.output
    saved = invoke("edit", "--vendor", "VA", "--starts-on", "2025-09-01", "--metric", "sgp", "--set", "threshold=65",
                   "--note", "amendment 1")
    assert saved.exit_code == 0 and "saved the terms of VA's contract from 2025-09-01, every school year" in saved.output
    listed = invoke("history", "--vendor", "VA", "--starts-on", "2025-09-01", "--as", "vendor:VA")
    newest = listed.output.splitlines()[1].split(",")
    assert newest[0] == "2" and "amendment 1" in newest and "(command line)" in newest[2]
    assert invoke("history", "--vendor", "VA", "--starts-on", "2025-09-01", "--as", "vendor:VB").exit_code == 1


# --- the page ----------------------------------------------------------------------------------


PAGE = "app_pages/rate_cards.py"


def line_id(warehouse, vendor: str) -> str:
    starts = contract_terms.lines(warehouse, ANALYST).query("vendor_id == @vendor")["starts_on"].iloc[0]
    return f"{vendor}|{starts}||sgp"


def test_an_admin_edits_a_line_s_terms_on_the_page_and_reads_its_history(editable):
    app = open_page(PAGE, user="admin")
    app.selectbox(key="rate-card-line").select(line_id(editable, "V3")).run()
    field = next(t for t in app.text_input if t.label.startswith("Contract cap"))
    field.input("-1")
    next(t for t in app.text_input if t.label == "Why this change").input("cap cut by the board")
    app.button(key="save-terms").click().run()
    assert any("field cap (-1): must not be negative" in e.value and "Nothing saved" in e.value for e in app.error)
    assert len(contract_terms.history(editable, ANALYST, contract_terms.ContractYear(
        "V3", contract_terms.lines(editable, ANALYST).query("vendor_id == 'V3'")["starts_on"].iloc[0], None))) == 1

    next(t for t in app.text_input if t.label.startswith("Contract cap")).input("400000")
    app.button(key="save-terms").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("Saved the terms of V3's contract" in s.value for s in app.success)
    history = next(d.value for d in app.dataframe if "saved_by" in d.value.columns)
    assert history[["version", "saved_by", "note", "cap"]].head(1).to_dict("records") == [
        {"version": 2, "saved_by": "admin", "note": "cap cut by the board", "cap": 400000.0}]
    assert contract_terms.lines(editable, ANALYST).query("vendor_id == 'V3'")["cap"].tolist() == [400000.0]


def test_other_accounts_read_the_terms_without_a_form_and_a_vendor_only_its_own(editable):
    for user in ("analyst", "evaluator", "vendor-v3"):
        app = open_page(PAGE, user=user)
        assert not app.exception, [e.value for e in app.exception]
        assert not app.get("form") and not [b for b in app.button if b.label == "Save a new version"], user
        current = next(d.value for d in app.dataframe if "cap" in d.value.columns and "saved_by" not in d.value.columns)
        assert set(current["vendor_id"]) == ({"V3"} if user == "vendor-v3" else {f"V{i}" for i in range(1, 7)})
        box = app.selectbox(key="rate-card-line")
        assert len(box.options) == (1 if user == "vendor-v3" else 6) and box.value.startswith("V3|" if user == "vendor-v3" else "V1|")


def test_an_admin_edits_the_contract_s_dates_and_gives_a_school_year_terms_of_its_own_on_the_page(editable):
    editable.init(["2026-27"])
    app = open_page(PAGE, user="admin")
    app.selectbox(key="rate-card-line").select(line_id(editable, "V3")).run()
    own = next(s for s in app.selectbox if s.label == "Apply these terms to")
    assert own.disabled  # the contract reaches one school year only

    def save(**typed):
        for label, value in typed.items():
            next(t for t in app.text_input if t.label.startswith(label)).input(value)
        app.button(key="save-terms").click().run()
        assert not app.exception, [e.value for e in app.exception]

    save(**{"To": "2026-02-30", "Why this change": "extended"})
    assert any("Nothing saved" in e.value and "field ends_on (2026-02-30)" in e.value for e in app.error)
    assert contract_terms.lines(editable, ANALYST).query("vendor_id == 'V3'")["ends_on"].tolist() == [date(2026, 5, 22)]
    save(**{"To": "2026-09-30", "Why this change": "extended into the next school year"})
    assert any("Saved the terms of V3's contract" in s.value for s in app.success)

    app.selectbox(key="rate-card-line").select(line_id(editable, "V3")).run()
    own = next(s for s in app.selectbox if s.label == "Apply these terms to")
    assert own.options == ["every school year", "school year 2025-26 only (it gets terms of its own)",
                           "school year 2026-27 only (it gets terms of its own)"]
    own.select("2026-27")
    save(**{"Threshold": "55", "Why this change": "a higher bar next year"})
    assert any("Saved the terms of school year 2026-27 of V3's contract" in s.value for s in app.success)
    lines = contract_terms.lines(editable, ANALYST).query("vendor_id == 'V3'").set_index("school_year")
    assert lines[["threshold", "ends_on"]].to_dict("index") == {
        "2025-26": {"threshold": 50.0, "ends_on": date(2026, 9, 30)},
        "2026-27": {"threshold": 55.0, "ends_on": date(2026, 9, 30)},
    }


def test_the_command_line_gives_a_school_year_terms_of_its_own_and_moves_dates(tmp_path):
    from test_payments_multiyear import two_year_district

    warehouse = two_year_district(tmp_path, contract_lines=EVERY_YEAR)
    data = str(warehouse.settings.data_dir)
    warehouse.close()

    def edit(*args):
        return CliRunner().invoke(main, ["contracts", "terms", "edit", "--vendor", "VM", "--starts-on", "2024-09-03",
                                         "--metric", "sgp", *args, "--data-dir", data])

    refused = edit("--set", "ends_on=2024-09-01", "--note", "typo")
    assert refused.exit_code == 1 and "nothing saved:\nfield ends_on (2024-09-01): ends before starts_on" in refused.output
    saved = edit(*[f"--set={k}={v}" for k, v in SECOND_YEAR.items()], "--own-year", "2025-26", "--note", "amendment")
    assert saved.exit_code == 0, saved.output
    assert "saved the terms of school year 2025-26 of VM's contract" in saved.output
    shown = CliRunner().invoke(main, ["contracts", "terms", "show", "--data-dir", data])
    assert [(row["school_year"], row["threshold"]) for row in csv.DictReader(io.StringIO(shown.output))] == [
        ("2024-25", "50.0"), ("2025-26", "60.0")]


def test_an_adjustment_names_the_version_of_its_own_school_year(tmp_path):
    from test_payments_multiyear import two_year_district

    warehouse = two_year_district(tmp_path)
    try:
        close_statement(warehouse, AppDB.of(warehouse.settings), ADMIN, "VM", "2025-09", today=AFTER_JUNE)
        later = contract_terms.ContractYear("VM", date(2024, 9, 3), "2025-26")
        contract_terms.edit(warehouse, ADMIN, later, "sgp", {"base_per_student": "130"}, "second-year base")
        # A batch writing every year's lines: version 3 of 2025-26, version 2 of 2024-25.
        contract_terms.edit(warehouse, ADMIN, later, "sgp", {"ends_on": "2026-05-28"}, "a day shorter")
        october = queries.run(warehouse, "statement", ANALYST, {"vendor_id": "VM", "period": "2025-10"})
        lines = pd.DataFrame(october.attrs["adjustments"])
        # M1 was served in September 2025 under the second year's terms: $120 then, $130 now.
        assert lines[["student_id", "amount", "reason"]].to_dict("records") == [{
            "student_id": "M1", "amount": 10.0,
            "reason": f"rate-card terms changed after 2025-09 closed (version 3 by finance on {date.today()}): the same "
                      "standing, paid under the new terms"}]
    finally:
        warehouse.close()
