"""The Payments page's reconciliation through AppTest, on the demo district: an admin records an
invoice and a payment and reads the same reconciliation the module gives; a vendor reads its own,
the one `ciboard payments reconcile` prints, and records nothing."""

import json

import pandas as pd
from click.testing import CliRunner

from ciboard import contract_terms, queries, reconciliation, statements
from ciboard.access import ANALYST, Scope
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.cli import main
from conftest import downloads, open_page, close_statement
from test_metric_edits import editable  # noqa: F401 - a copy of the demo district a test may edit

PAGE = "app_pages/payments.py"
ADMIN = Account("finance", "Finance office", "admin")


def reconciled(app) -> pd.DataFrame:
    return next(e.value for e in app.dataframe if "differences" in e.value.columns).reset_index(drop=True)


def record(app, kind: str, reference: str, amount: str, note: str = "") -> None:
    app.radio(key="entry-kind").set_value(kind)
    app.text_input(key="entry-reference").input(reference)
    app.text_input(key="entry-amount").input(amount)
    app.text_input(key="entry-note").input(note)
    app.button(key="record-entry").click().run()


def test_an_admin_records_an_invoice_and_a_payment_and_reads_the_reconciliation(dashboard):
    db = AppDB.of(dashboard.settings)
    app = open_page(PAGE, user="admin", query={"month": "2025-10"})
    app.selectbox(key="statement_vendor").set_value("V4").run()
    record(app, "invoice", "V4-INV-10", "-5")
    assert not app.exception, [e.value for e in app.exception]
    assert [e.value for e in app.error] == [
        "Nothing recorded: the form, amount: must not be negative (-5): to take back an entry, void it"
    ]
    assert reconciliation.ledger(db, Scope("vendor", "V4")).empty

    record(app, "invoice", "V4-INV-10", "1,000.00")
    record(app, "payment", "V4-PAY-10", "1500")
    assert not app.error, [e.value for e in app.error]
    assert not app.exception, [e.value for e in app.exception]
    expected = reconciliation.reconciliation(dashboard, db, Scope("admin"), "V4")
    shown = reconciled(app)
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)
    october = shown.set_index("period").loc["2025-10"]
    assert (october["invoiced"], october["paid"]) == (1000.0, 1500.0)
    # Shown on opening, no toggle, its money as $1,234,567.00 (Streamlit's dollar format).
    table = next(e for e in app.dataframe if "differences" in e.value.columns)
    columns = json.loads(table.proto.columns)
    assert all(columns[name]["type_config"]["format"] == "dollar" for name in ("earned", "certified", "invoiced", "paid"))
    assert "paid $500.00 more than invoiced" in october["differences"]
    assert "paid before certification: the month is not closed" in october["differences"]
    ledger = next(e.value for e in app.dataframe if "standing" in e.value.columns)
    assert ledger[["reference", "amount", "standing"]].values.tolist() == [
        ["V4-PAY-10", 1500.0, "current"], ["V4-INV-10", 1000.0, "current"]
    ]

    # The payment was typed wrong: its correction supersedes it, and the reconciliation follows.
    paid = int(ledger.loc[ledger["reference"] == "V4-PAY-10", "entry_id"].iloc[0])
    app.selectbox(key="entry-corrects").set_value(paid)
    record(app, "payment", "V4-PAY-10", "1000", note="typed 1500 for 1000")
    assert not app.error, [e.value for e in app.error]
    october = reconciled(app).set_index("period").loc["2025-10"]
    assert october["paid"] == 1000.0 and "more than invoiced" not in october["differences"]


def test_a_vendor_reads_its_own_reconciliation_and_records_nothing(dashboard):
    db = AppDB.of(dashboard.settings)
    reconciliation.record(dashboard, db, ADMIN, {
        "test": reconciliation.Entry("invoice", "V2", "2025-11", "V2-INV-11", 250000, pd.Timestamp("2025-12-02").date()),
    }, "test")
    app = open_page(PAGE, user="vendor-v2")
    shown = reconciled(app)
    assert set(shown["vendor_id"]) == {"V2"}
    pd.testing.assert_frame_equal(shown, reconciliation.reconciliation(dashboard, db, Scope("vendor", "V2")), check_dtype=False)
    assert shown.set_index("period").loc["2025-11", "invoiced"] == 2500.0
    printed = CliRunner().invoke(main, ["payments", "reconcile", "--as", "vendor:V2", "--data-dir",
                                        str(dashboard.settings.data_dir)], catch_exceptions=False).output
    [csv] = [data for key, data in downloads(app).items() if key.endswith("download-reconciliation")]
    assert csv.decode() == printed
    assert not [b for b in app.button if b.key in ("record-entry", "record-file", "void-entry")]
    assert not app.expander

    other = open_page(PAGE, user="vendor-v5")
    assert not [e for e in other.dataframe if "standing" in e.value.columns]
    assert any("None recorded for this vendor yet" in c.value for c in other.caption)


def test_an_admin_records_a_csv_file_whole_or_not_at_all_and_voids_an_entry(dashboard):
    db = AppDB.of(dashboard.settings)
    app = open_page(PAGE, user="admin", query={"month": "2025-12"})
    app.selectbox(key="statement_vendor").set_value("V1").run()
    header = "kind,vendor_id,period,reference,amount,date"
    bad = "\n".join([header, "invoice,V1,2025-12,BP-12,4000,2026-01-05", "payment,V1,2025-12,ACH-12,-4000,2026-01-20"])
    app.file_uploader(key="ledger-file").set_value(("december.csv", bad.encode(), "text/csv")).run()
    app.button(key="record-file").click().run()
    assert not app.exception, [e.value for e in app.exception]
    [said] = [e.value for e in app.error]
    assert said.startswith("Nothing recorded from december.csv") and "december.csv, row 3, amount: must not be negative" in said
    assert reconciliation.ledger(db, Scope("vendor", "V1")).empty

    good = "\n".join([header, "invoice,V1,2025-12,BP-12,4000,2026-01-05", "payment,V1,2025-12,ACH-12,4000,2026-01-20"])
    app.file_uploader(key="ledger-file").set_value(("december.csv", good.encode(), "text/csv")).run()
    app.button(key="record-file").click().run()
    assert not app.error, [e.value for e in app.error]
    ledger = reconciliation.ledger(db, Scope("vendor", "V1"))
    assert ledger[["reference", "amount", "source"]].values.tolist() == [
        ["ACH-12", 4000.0, "december.csv"], ["BP-12", 4000.0, "december.csv"]
    ]

    paid = int(ledger.loc[ledger["reference"] == "ACH-12", "entry_id"].iloc[0])
    app.selectbox(key="void-entry-id").set_value(paid)
    app.text_input(key="void-reason").input("paid from the wrong account")
    app.button(key="void-entry").click().run()
    assert not app.error, [e.value for e in app.error]
    after = reconciliation.ledger(db, Scope("vendor", "V1"))
    voiding, invoiced = after["entry_id"].max(), int(ledger.loc[ledger["reference"] == "BP-12", "entry_id"].iloc[0])
    assert after.set_index("entry_id")["standing"].to_dict() == {
        voiding: f"voids entry {paid}", paid: f"voided by entry {voiding}", invoiced: "current",
    }
    assert after.set_index("entry_id").loc[voiding, "note"] == "paid from the wrong account"


def test_a_certified_month_changed_by_new_terms_reads_the_same_on_the_page_and_the_command_line(editable):
    db = AppDB.of(editable.settings)
    close_statement(editable, db, ADMIN, "V4", "2025-09")
    statements.sign(db, ADMIN, "V4", "2025-09")
    statements.sign(db, Account("vendor-v4", "V4", "vendor", "V4"), "V4", "2025-09")
    line = contract_terms.lines(editable, ANALYST).query("vendor_id == 'V4'").iloc[0]
    contract_terms.edit(editable, ADMIN, contract_terms.ContractYear("V4", line["starts_on"], None), line["payment_metric"],
                        {"base_per_student": str(line["base_per_student"] + 10)}, "the board raised the base")

    app = open_page(PAGE, user="admin", query={"month": "2025-10"})
    app.selectbox(key="statement_vendor").set_value("V4").run()
    assert not app.exception, [e.value for e in app.exception]
    shown = reconciled(app)
    expected = reconciliation.reconciliation(editable, db, Scope("admin"), "V4")
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)
    printed = CliRunner().invoke(main, ["payments", "reconcile", "--vendor", "V4", "--data-dir",
                                        str(editable.settings.data_dir)], catch_exceptions=False).output
    assert printed == expected.to_csv(index=False)

    # V4's quarterly base falls due in September, which stands as certified; October carries what
    # the new base changes in it, once, and the months add up to what the contract earns now.
    books = shown.set_index("period")
    september = statements.read(db, ANALYST, "V4", "2025-09")
    assert books.loc["2025-09", "earned"] == books.loc["2025-09", "certified"] == round(september.totals["total"].sum(), 2)
    assert books.loc["2025-10", "adjustments"] > 0 and (books["adjustments"] != 0).sum() == 1
    contracts = queries.run(editable, "payments", ANALYST, {}).query("vendor_id == 'V4'")
    owed = contracts.drop_duplicates(["vendor_id", "contract_starts_on"])["amount_earned"].sum()
    assert round(books["earned"].sum(), 2) == round(owed, 2)
