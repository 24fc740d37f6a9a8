"""Reconciliation on the hand-built district of test_payments: VA earns $200 in 2025-09, $200 in
2025-10, $100 in 2025-11, nothing until 2026-06 and $200 then; VB's quarterly base earns $200 in
2025-12, its second contract $10 in 2026-01, and B1's proficiency $300 in 2026-06. Each test records invoices and payments into an
app database of its own (the ledger is only ever added to)."""

from datetime import date

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import built_once, close_statement, copy_of, write_csv
from ciboard import contract_terms, queries, reconciliation, statements
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB, IntegrityError
from ciboard.cli import main
from ciboard.ingest import Submission, ingest
from ciboard.reconciliation import Entry, LedgerError
from test_payments import district_files

ADMIN = Account("finance", "Finance office", "admin")
VENDOR_A = Account("vendor-a", "Vendor A", "vendor", "VA")
VENDOR_B = Account("vendor-b", "Vendor B", "vendor", "VB")
TODAY = date(2026, 7, 15)


@pytest.fixture(scope="module")
def built_district(tmp_path_factory, empty_data_dir):
    return built_once(tmp_path_factory.mktemp("district"), empty_data_dir, district_files)


@pytest.fixture(scope="module")
def district(tmp_path_factory, built_district):
    warehouse = copy_of(built_district, tmp_path_factory.mktemp("reconciliation") / "data")
    yield warehouse
    warehouse.close()


@pytest.fixture
def db(tmp_path, app_db_url):
    return AppDB(app_db_url or tmp_path / "app.sqlite3")


def invoice(vendor, period, reference, amount, **more) -> Entry:
    return Entry("invoice", vendor, period, reference, round(amount * 100), date(2026, 7, 1), **more)


def payment(vendor, period, reference, amount, **more) -> Entry:
    return Entry("payment", vendor, period, reference, round(amount * 100), date(2026, 7, 10), **more)


def record(district, db, *entries: Entry) -> list[int]:
    return reconciliation.record(district, db, ADMIN, {f"entry {i}": e for i, e in enumerate(entries, 1)}, "test")


def table(district, db, scope=ANALYST, vendor=None) -> dict:
    found = reconciliation.reconciliation(district, db, scope, vendor, today=TODAY)
    return {(r["vendor_id"], r["period"]): (r["earned"], r["status"], None if pd.isna(r["certified"]) else r["certified"],
                                            r["invoiced"], r["paid"], r["differences"])
            for r in found.to_dict("records")}


def certify(district, db, vendor, period, *, sign=True):
    close_statement(district, db, ADMIN, vendor, period, today=TODAY)
    if sign:
        statements.sign(db, ADMIN, vendor, period)
        statements.sign(db, Account("v", "V", "vendor", vendor), vendor, period)


def test_earned_certified_invoiced_and_paid_per_vendor_month_with_every_difference(district, db):
    assert table(district, db)[("VA", "2025-09")] == (200.0, "open", None, 0.0, 0.0, "earned $200.00 so far, not invoiced")
    certify(district, db, "VA", "2025-09")
    certify(district, db, "VA", "2025-11")
    certify(district, db, "VA", "2026-06", sign=False)
    record(district, db,
           invoice("VA", "2025-09", "INV-1", 200), payment("VA", "2025-09", "PAY-1", 200),
           invoice("VA", "2025-10", "INV-2", 250), payment("VA", "2025-10", "PAY-2", 300),
           invoice("VA", "2026-06", "INV-6", 150),
           invoice("VB", "2026-01", "B-1", 10), payment("VB", "2026-01", "B-P1", 4), payment("VB", "2026-01", "B-P2", 6))
    assert table(district, db) == {
        ("VA", "2025-09"): (200.0, "certified", 200.0, 200.0, 200.0, ""),
        ("VA", "2025-10"): (200.0, "open", None, 250.0, 300.0,
                            "invoiced $50.00 more than earned so far; paid $50.00 more than invoiced; "
                            "paid before certification: the month is not closed"),
        ("VA", "2025-11"): (100.0, "certified", 100.0, 0.0, 0.0, "certified $100.00, not invoiced"),
        ("VA", "2026-06"): (200.0, "closed, awaiting sign-off", None, 150.0, 0.0,
                            "invoiced $50.00 less than earned; $150.00 invoiced, not paid"),
        ("VB", "2025-12"): (200.0, "open", None, 0.0, 0.0, "earned $200.00 so far, not invoiced"),
        ("VB", "2026-01"): (10.0, "open", None, 10.0, 10.0, "paid before certification: the month is not closed"),
        ("VB", "2026-06"): (300.0, "open", None, 0.0, 0.0, "earned $300.00 so far, not invoiced"),
    }


@pytest.mark.parametrize("row, said", [
    ({"earned": 200.0, "certified": 200.0, "status": "certified", "invoiced": 200.0, "paid": 200.0}, []),
    ({"earned": 200.0, "certified": 200.0, "status": "certified", "invoiced": 260.0, "paid": 0.0},
     ["invoiced $60.00 more than certified", "$260.00 invoiced, not paid"]),
    ({"earned": 200.0, "certified": 200.0, "status": "certified", "invoiced": 180.0, "paid": 180.0},
     ["invoiced $20.00 less than certified"]),
    ({"earned": 120.0, "certified": None, "status": "open", "invoiced": 100.0, "paid": 0.0},
     ["invoiced $20.00 less than earned so far", "$100.00 invoiced, not paid"]),
    ({"earned": -40.0, "certified": None, "status": "open", "invoiced": 0.0, "paid": 0.0},
     ["earned so far is $-40.00: its adjustments take back more than the month pays"]),
    ({"earned": 0.0, "certified": None, "status": "open", "invoiced": 0.0, "paid": 75.5},
     ["paid $75.50 more than invoiced", "paid before certification: the month is not closed"]),
    ({"earned": 100.0, "certified": None, "status": "closed, awaiting sign-off", "invoiced": 100.0, "paid": 100.0},
     ["paid before certification: closed, awaiting sign-off"]),
    ({"earned": 0.0, "certified": None, "status": "open", "invoiced": 0.0, "paid": 0.0}, []),
])
def test_each_difference_in_words(row, said):
    assert reconciliation.differences(row) == said


def test_a_vendor_reads_its_own_rows_and_records_nothing(district, db):
    record(district, db, invoice("VA", "2025-09", "INV-1", 200), invoice("VB", "2025-12", "B-1", 200))
    own = table(district, db, VENDOR_B.scope)
    assert set(own) == {("VB", "2025-12"), ("VB", "2026-01"), ("VB", "2026-06")}
    assert set(reconciliation.ledger(db, VENDOR_B.scope)["vendor_id"]) == {"VB"}
    for ask in (lambda: reconciliation.ledger(db, VENDOR_B.scope, "VA"),
                lambda: reconciliation.reconciliation(district, db, VENDOR_B.scope, "VA", today=TODAY)):
        with pytest.raises(ScopeError) as refused:
            ask()
        assert "VA" not in str(refused.value)
    with pytest.raises(ScopeError):
        reconciliation.ledger(db, Scope("facilitator"))
    with pytest.raises(ScopeError):
        reconciliation.record(district, db, VENDOR_B, {"form": invoice("VB", "2026-01", "B-2", 10)}, "page")
    with pytest.raises(ScopeError):
        reconciliation.record(district, db, Account("ana", "Analyst", "analyst"), {"form": invoice("VB", "2026-01", "B-2", 10)}, "page")
    assert len(reconciliation.ledger(db, ANALYST)) == 2


def test_a_correction_supersedes_or_voids_and_the_trail_stays_whole(district, db):
    [first] = record(district, db, invoice("VA", "2025-10", "INV-2", 250))
    with pytest.raises(LedgerError, match="INV-2 is recorded already"):
        record(district, db, invoice("VA", "2025-10", "INV-2", 200))
    with pytest.raises(LedgerError, match="a correction says why"):
        reconciliation.entry({"kind": "invoice", "vendor_id": "VA", "period": "2025-10", "reference": "INV-2",
                              "amount": "200", "date": "2026-07-01", "corrects": str(first)}, "the form")
    [second] = record(district, db, invoice("VA", "2025-10", "INV-2", 200, note="typed 250 for 200", corrects=first))
    assert table(district, db)[("VA", "2025-10")][3:] == (200.0, 0.0, "$200.00 invoiced, not paid")
    with pytest.raises(LedgerError, match=f"corrected already, by entry {second}"):
        record(district, db, invoice("VA", "2025-10", "INV-2", 210, note="again", corrects=first))
    with pytest.raises(LedgerError, match="a correction is of the same kind"):
        record(district, db, payment("VA", "2025-10", "INV-2", 210, note="wrong kind", corrects=second))
    voiding = reconciliation.void(district, db, ADMIN, second, "sent to the wrong district")
    assert table(district, db)[("VA", "2025-10")][3:] == (0.0, 0.0, "earned $200.00 so far, not invoiced")
    trail = reconciliation.ledger(db, ANALYST).set_index("entry_id")
    assert trail["standing"].to_dict() == {
        first: f"superseded by entry {second}", second: f"voided by entry {voiding}", voiding: f"voids entry {second}",
    }
    assert trail.loc[voiding, "note"] == "sent to the wrong district" and trail.loc[voiding, "recorded_by"] == "finance"
    assert trail.loc[first, "amount"] == 250.0
    with pytest.raises(LedgerError, match="a void says why"):
        reconciliation.void(district, db, ADMIN, first, " ")


def test_no_path_changes_or_removes_an_entry(district, db):
    record(district, db, invoice("VA", "2025-09", "INV-1", 200))
    with db.connect() as con:
        for sql in ("update ledger set amount_cents = 1", "update ledger set note = 'x'", "delete from ledger",
                    *(["truncate ledger"] if db.url else [])):
            with pytest.raises(IntegrityError, match="never changes"):
                con.execute(sql)
        for sql in ("insert into ledger (kind, vendor_id, period, reference, amount_cents, dated_on, recorded_at,"
                    " recorded_by, source) values ('invoice', 'VA', '2025-09', 'X', -100, '2026-01-01', 'now', 'me', 'sql')",
                    "insert into ledger (kind, vendor_id, period, reference, amount_cents, dated_on, recorded_at,"
                    " recorded_by, source) values ('invoice', 'VA', 'Sept', 'X', 100, '2026-01-01', 'now', 'me', 'sql')"):
            with pytest.raises(IntegrityError, match="(?i)check"):
                con.execute(sql)
    assert reconciliation.ledger(db, ANALYST)["amount"].tolist() == [200.0]


def test_a_csv_lands_whole_or_names_every_bad_row_and_field(district, db):
    good = ("kind,vendor_id,period,reference,amount,date,note\n"
            "invoice,VA,2025-09,INV-1,\"$1,200.50\",2025-10-03,\n"
            "payment,VA,2025-09,PAY-1,1200.5,2025-10-20,by transfer\n")
    found = reconciliation.read_csv(good.encode(), "june.csv")
    assert list(found) == ["june.csv, row 2", "june.csv, row 3"]
    assert [e.cents for e in found.values()] == [120050, 120050]

    bad = ("kind,vendor_id,period,reference,amount,date\n"
           "invoice,VA,Sept 2025,INV-1,200,2025-10-03\n"
           "invoice,VA,2025-10,INV-2,-200,2025-11-03\n"
           "\n"
           "refund,VA,2025-11,INV-3,200,3 Dec\n"
           "payment,VA,2025-11,PAY-3,200\n"
           "payment,VZ,2025-11,PAY-4,200,2025-12-01\n")
    with pytest.raises(LedgerError) as refused:
        reconciliation.read_csv(bad.encode(), "bad.csv", {"VA", "VB"})
    assert refused.value.problems == [
        "bad.csv, row 2, period: a period is a month written YYYY-MM, e.g. 2026-01, not 'Sept 2025'",
        "bad.csv, row 3, amount: must not be negative (-200): to take back an entry, void it",
        "bad.csv, row 5, kind: is invoice or payment, not 'refund'",
        "bad.csv, row 5, date: a date is written YYYY-MM-DD, e.g. 2026-02-03, not '3 Dec'",
        "bad.csv, row 6: 5 values under 6 columns",
        "bad.csv, row 7, vendor_id: no vendor 'VZ' is loaded",
    ]
    with pytest.raises(LedgerError, match=r"headless.csv, row 1: .*missing kind"):
        reconciliation.read_csv(b"type,vendor_id,period,reference,amount,date\n", "headless.csv")

    # Rows that read well but do not fit the ledger: nothing of the file lands.
    unknown = reconciliation.read_csv((good + "invoice,VZ,2025-09,Z-1,10,2025-10-03,\n"
                                       "invoice,VA,2025-10,INV-1,10,2025-11-03,\n").encode(), "more.csv")
    with pytest.raises(LedgerError) as refused:
        reconciliation.record(district, db, ADMIN, unknown, "more.csv")
    assert refused.value.problems == [
        "more.csv, row 4, vendor_id: no vendor 'VZ' is loaded",
        "more.csv, row 5, reference: VA's invoice INV-1 is recorded already (entry 1, 2025-09); to change it, "
        "record a correction of that entry",
    ]
    assert reconciliation.ledger(db, ANALYST).empty
    assert len(reconciliation.record(district, db, ADMIN, found, "june.csv")) == 2


def test_the_command_line_records_voids_and_reconciles(district, tmp_path):
    data = ["--data-dir", str(district.settings.data_dir)]
    file = tmp_path / "ledger.csv"
    file.write_text("kind,vendor_id,period,reference,amount,date\ninvoice,VB,2025-12,B-12,250,2026-01-05\n"
                    "payment,VB,2025-12,BP-12,250,2026-01-20\n")
    done = CliRunner().invoke(main, ["payments", "record", str(file), *data])
    assert done.exit_code == 0, done.output
    assert "recorded 2 entries from ledger.csv" in done.output
    again = CliRunner().invoke(main, ["payments", "record", str(file), *data])
    assert again.exit_code == 1 and "nothing recorded" in again.output and "ledger.csv, row 2, reference" in again.output
    shown = CliRunner().invoke(main, ["payments", "reconcile", "--as", "vendor:VB", *data])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == ",".join(reconciliation.COLUMNS)
    assert [l for l in lines if l.startswith("VB,2025-12")] == [
        "VB,2025-12,200.0,0.0,open,,250.0,250.0,invoiced $50.00 more than earned so far; "
        "paid before certification: the month is not closed"
    ]
    assert not [l for l in lines[1:] if not l.startswith("VB,")]
    entry_id = reconciliation.ledger(AppDB.of(district.settings), ANALYST)["entry_id"].max()
    voided = CliRunner().invoke(main, ["payments", "void", str(entry_id), "--reason", "paid twice by mistake", *data])
    assert voided.exit_code == 0 and f"voids entry {entry_id}" in voided.output
    refused = CliRunner().invoke(main, ["payments", "reconcile", "--as", "facilitator", *data])
    assert refused.exit_code == 1


# A certified month that later data and new terms change: A2's third session, dated Sep 10 and
# sent after September was certified, makes it served in September; then the board raises VA's
# base from $100 to $120, which changes every month that pays a base.
LATE_SESSION = ("student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                "A2,2025-09-10,VA-T1,3,45,40")
VA_CONTRACT = contract_terms.ContractYear("VA", date(2025, 9, 1), None)


@pytest.fixture
def changing(tmp_path, app_db_url, built_district):
    """A district of the test's own, whose data and terms it changes."""
    warehouse = copy_of(built_district, tmp_path / "data", app_db_url=app_db_url)
    yield warehouse
    warehouse.close()


def owed_in_all(warehouse) -> float:
    """What VA's contract earns up to TODAY under the data and terms as they stand, as the
    Overview and Vendors pages count it."""
    contracts = queries.run(warehouse, "payments", ANALYST, {"end": TODAY}).query("vendor_id == 'VA'")
    return round(contracts.drop_duplicates(["vendor_id", "contract_starts_on"])["amount_earned"].sum(), 2)


def test_a_change_to_a_certified_month_is_counted_once_in_the_next_open_month(changing):
    db = AppDB.of(changing.settings)
    certify(changing, db, "VA", "2025-09")

    def books() -> pd.DataFrame:
        return reconciliation.reconciliation(changing, db, ANALYST, "VA", today=TODAY).set_index("period")

    def carried_into_october() -> float:
        lines = queries.run(changing, "statement", ANALYST, {"vendor_id": "VA", "period": "2025-10"}).attrs["adjustments"]
        return round(sum(lines["amount"]), 2)

    assert books().loc[["2025-09", "2025-10"], ["earned", "adjustments", "certified"]].fillna(0).values.tolist() == [
        [200.0, 0.0, 200.0], [200.0, 0.0, 0.0]]
    for change in ("late data", "new terms"):
        if change == "late data":
            ingest(changing, [Submission(write_csv(changing.settings.data_dir.parent / "late.csv", *LATE_SESSION),
                                         "sessions", "VA")])
        else:
            contract_terms.edit(changing, ADMIN, VA_CONTRACT, "sgp", {"base_per_student": "120"}, "the board raised the base")
        found = books()
        september = found.loc["2025-09"]
        # The certified month stands as certified, with nothing to act on.
        assert (september["earned"], september["certified"], september["status"]) == (200.0, 200.0, "certified"), change
        assert september["differences"] == "certified $200.00, not invoiced", change
        # What changed in it is one adjustment, in October, the next open month.
        moved = carried_into_october()
        assert moved > 0, change
        assert found.loc["2025-10", "adjustments"] == moved, change
        assert (found["adjustments"] != 0).sum() == 1, change
        # So the months add up to what the contract earns now, the change counted once.
        assert round(found["earned"].sum(), 2) == owed_in_all(changing), change
    assert found.loc["2025-10", "adjustments"] == 100.0 + 3 * 20.0  # A2's base at $120, A1's and A5's $20 more


def test_the_command_line_prints_the_books_the_module_keeps(changing):
    db = AppDB.of(changing.settings)
    certify(changing, db, "VA", "2025-09")
    ingest(changing, [Submission(write_csv(changing.settings.data_dir.parent / "late.csv", *LATE_SESSION), "sessions", "VA")])
    printed = CliRunner().invoke(main, ["payments", "reconcile", "--vendor", "VA", "--data-dir", str(changing.settings.data_dir)])
    assert printed.exit_code == 0, printed.output
    expected = reconciliation.reconciliation(changing, db, Scope("admin"), "VA")
    assert printed.output == expected.to_csv(index=False)
    assert "VA,2025-09,200.0,0.0,certified,200.0," in printed.output
    assert "VA,2025-10,300.0,100.0,open," in printed.output
    # The closed month's statement is the one frozen, as the page shows it, not September as computed now.
    frozen = CliRunner().invoke(main, ["payments", "statement", "--vendor", "VA", "--period", "2025-09",
                                       "--data-dir", str(changing.settings.data_dir)])
    assert frozen.exit_code == 0, frozen.output
    assert frozen.output.splitlines()[-1].endswith(",200.0")
    # So is the statement view's, by `ciboard query`: its total the frozen one, not September's
    # as computed now, and no October adjustment counted in it.
    queried = CliRunner().invoke(main, ["query", "statement", "--param", "vendor_id=VA", "--param", "period=2025-09",
                                        "--as", "admin", "--data-dir", str(changing.settings.data_dir)])
    assert queried.exit_code == 0, queried.output
    total = next(line for line in queried.output.splitlines() if line.startswith("TOTAL") or ",TOTAL," in line)
    assert ",200.0" in total and ",300.0" not in total
