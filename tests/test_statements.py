"""Certified statements: closed by an admin, frozen with their warehouse version, signed off by
the district and the vendor, and never changed after, by any path."""

import sqlite3
from datetime import date

import pandas as pd
import pytest

from conftest import make_warehouse, write_csv
from ciboard import queries, statements
from ciboard.access import ANALYST, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.ingest import Submission, ingest
from test_payments import district_files

ADMIN = Account("finance", "Finance office", "admin")
VENDOR_A = Account("vendor-a", "Vendor A", "vendor", "VA")
VENDOR_B = Account("vendor-b", "Vendor B", "vendor", "VB")
TODAY = date(2026, 7, 15)


@pytest.fixture
def district(tmp_path):
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    ingest(warehouse, district_files(tmp_path / "files"))
    yield warehouse
    warehouse.close()


def test_a_closed_statement_is_the_statement_as_it_stood_and_its_version_is_kept(district):
    db = AppDB.of(district.settings)
    live = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2026-06"})
    closed = statements.close(district, db, ADMIN, "VA", "2026-06", today=TODAY)
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
    statements.close(district, db, ADMIN, "VA", "2026-06", today=TODAY)
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
        {"vendor_id": "VA", "period": "2026-06", "total": 200.0, "certified": True}
    ]


def test_nothing_changes_a_closed_statement(district):
    db = AppDB.of(district.settings)
    with pytest.raises(ScopeError):
        statements.close(district, db, VENDOR_A, "VA", "2026-06", today=TODAY)
    with pytest.raises(ScopeError):
        statements.close(district, db, Account("ana", "Analyst", "analyst"), "VA", "2026-06", today=TODAY)
    with pytest.raises(statements.StatementError, match="has not ended yet"):
        statements.close(district, db, ADMIN, "VA", "2026-07", today=TODAY)
    closed = statements.close(district, db, ADMIN, "VA", "2026-06", today=TODAY)
    statements.sign(db, ADMIN, "VA", "2026-06")
    with pytest.raises(statements.StatementError, match="closed already"):
        statements.close(district, db, ADMIN, "VA", "2026-06", today=TODAY)
    with sqlite3.connect(db.path) as con:
        for sql in ("update closed_statements set frozen = '{}'", "delete from closed_statements",
                    "update statement_signoffs set signed_by = 'someone'", "delete from statement_signoffs"):
            with pytest.raises(sqlite3.IntegrityError, match="never changes"):
                con.execute(sql)
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
