"""The Payments page through AppTest, on the demo district: the statement it shows is the query
layer's, number for number, and the one `ciboard payments statement` prints."""

import io

import pandas as pd
import pytest
from click.testing import CliRunner

from ciboard import queries, statements
from ciboard.access import ANALYST, Scope
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.cli import main
from ciboard.ingest import ingest
from conftest import downloads, make_warehouse, open_page, close_statement

PAGE = "app_pages/payments.py"


def shown(app, key: str) -> pd.DataFrame:
    """The statement's table."""
    return next(frame.value for frame in app.dataframe if key in frame.value.columns)


def tiles(app) -> dict[str, str]:
    """Each tile's exact amount, as its help gives it."""
    return {m.label: m.proto.help.split(". ")[0] for m in app.metric}


def test_the_page_shows_the_statement_the_query_layer_and_the_cli_give(dashboard):
    app = open_page(PAGE, query={"month": "2026-06"})
    app.selectbox(key="statement_vendor").set_value("V2").run()
    assert not app.exception, [e.value for e in app.exception]
    expected = queries.run(dashboard, "statement", ANALYST, {"vendor_id": "V2", "period": "2026-06"})
    totals = pd.DataFrame(expected.attrs["totals"])
    page = shown(app, "not_eligible_because").reset_index(drop=True)
    pd.testing.assert_frame_equal(page[["student_id", "outcome", "amount"]], expected[["student_id", "outcome", "amount"]])
    assert tiles(app)["Due this month"] == f"${totals['total'].sum():,.2f}"
    assert tiles(app)["Due to date"] == f"${totals['total_to_date'].sum():,.2f}"
    # The demo's V2 cap binds once the outcomes fall due.
    assert totals["contract_cap_applied"].sum() > 0

    printed = CliRunner().invoke(
        main, ["payments", "statement", "--vendor", "V2", "--period", "2026-06", "--data-dir", str(dashboard.settings.data_dir)],
        catch_exceptions=False,
    ).output
    [csv] = [data for key, data in downloads(app).items() if key.endswith("download-statement-csv")]
    assert csv.decode() == printed
    cli = pd.read_csv(io.StringIO(printed), dtype={"student_id": str})
    assert cli.loc[cli["student_id"] == "TOTAL", "amount"].tolist() == totals["total"].tolist()
    # A statement someone signs reads as the page does: Yes and No, never Python's True and False.
    assert set(cli["served"].dropna()) <= {"Yes", "No"} and cli["served"].notna().any()
    assert "True" not in printed and "False" not in printed


def test_before_the_spring_window_closes_outcomes_are_due_not_earned(dashboard):
    app = open_page(PAGE, query={"month": "2026-01"})
    app.selectbox(key="statement_vendor").set_value("V1").run()
    rows = shown(app, "not_eligible_because")
    served = rows[rows["served"]]
    assert len(served) and set(served["outcome"]) == {"due after the spring window (2026-06)"}
    assert rows["outcome_amount"].sum() == 0


def test_the_page_says_how_many_sessions_the_checks_left_out_and_links_to_data_quality(dashboard):
    from urllib.parse import parse_qs

    # The demo's V4 logged sessions on a snow day and in winter break.
    expected = queries.run(dashboard, "statement", ANALYST, {"vendor_id": "V4", "period": "2026-02"}).attrs["left_out"]
    with dashboard.cursor() as cur:
        calendar_days = cur.execute(
            "select count(*) from sessions as s inner join annotations as a on s.session_date between a.starts_on"
            " and a.ends_on and a.kind in ('break', 'closure') where s.vendor_id = 'V4' and s.attended_minutes > 0"
            " and s.session_date <= '2026-02-28'"
        ).fetchone()[0]
    assert expected["sessions"] >= calendar_days > 0
    app = open_page(PAGE, query={"month": "2026-02"})
    app.selectbox(key="statement_vendor").set_value("V4").run()
    [said] = [m.value for m in app.markdown if "left out of its service" in m.value]
    assert f"**{expected['sessions']:,} attended session(s)**" in said
    assert f"{expected['pending']:,} awaiting the district's decision" in said
    [link] = [p for p in app.get("page_link") if p.proto.page == "data-quality"]
    assert parse_qs(link.proto.query_string) == {"vendor": ["V4 · Northstar Readers"]}

    own = open_page(PAGE, user="vendor-v4", query={"month": "2026-02"})
    assert any(f"**{expected['sessions']:,} attended session(s)**" in m.value for m in own.markdown)


def test_a_vendor_reads_only_its_own_statement(dashboard):
    app = open_page(PAGE, user="vendor-v3", query={"month": "2026-01"})
    assert not app.exception, [e.value for e in app.exception]
    assert not [box for box in app.selectbox if box.key == "statement_vendor"]
    rows = shown(app, "not_eligible_because")
    own = queries.run(dashboard, "statement", Scope("vendor", "V3"), {"period": "2026-01"})
    assert rows["student_id"].tolist() == own["student_id"].tolist()
    with dashboard.cursor() as cur:
        v3 = {s for (s,) in cur.execute("select student_key from students where vendor_id = 'V3'").fetchall()}
    assert set(rows["student_id"]) <= v3 and len(rows)


def test_a_statement_is_not_shown_while_presenting(dashboard):
    app = open_page(PAGE, user="admin", query={"present": "true"})
    assert not app.dataframe
    assert any("not shown while presenting" in info.value for info in app.info)


def test_an_admin_closes_a_month_and_the_district_and_the_vendor_sign_it_off(dashboard):
    app = open_page(PAGE, user="admin", query={"month": "2026-02"})
    app.selectbox(key="statement_vendor").set_value("V6").run()
    before = shown(app, "not_eligible_because")
    app.button(key="close-statement").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("awaiting sign-off" in m.value for m in app.markdown)
    pd.testing.assert_frame_equal(shown(app, "not_eligible_because"), before, check_dtype=False)
    app.text_input(key="sign-note").input("Matches invoice 2026-02-V6")
    app.button(key="sign-statement").click().run()
    assert any("Signed off for the district by admin" in m.value and "Matches invoice" in m.value for m in app.markdown)

    vendor = open_page(PAGE, user="vendor-v6", query={"month": "2026-02"})
    assert any("(closed)" in h.value for h in vendor.subheader)
    vendor.button(key="sign-statement").click().run()
    assert any("**certified**" in m.value for m in vendor.markdown)
    assert not [b for b in vendor.button if b.key == "close-statement"]

    # The Overview says which of the earned figures are certified; another vendor's month is not its own.
    total = statements.read(AppDB.of(dashboard.settings), Scope("admin"), "V6", "2026-02").totals["total"].sum()
    overview = open_page("app_pages/overview.py", user="admin", query={"vendor": "V6 · Summit Peer Tutoring"})
    [said] = [m.value for m in overview.markdown if "earned:" in m.value]
    assert f"**\\${total:,.0f} certified** (1 vendor month signed off by the district and the vendor)" in said
    other = open_page("app_pages/overview.py", user="vendor-v5")
    assert any(m.value.startswith("**Provisional:** no month is closed yet") for m in other.markdown)
    # So does the Vendors page, per vendor: V6's signed-off month is certified, the rest provisional.
    vendors = open_page("app_pages/vendors.py", user="admin")
    assert not vendors.exception, [e.value for e in vendors.exception]
    split = next(d.value for d in vendors.dataframe if "awaiting_signoff" in d.value.columns).set_index("vendor_id")
    assert split["certified"].to_dict() == {f"V{i}": (total if i == 6 else 0.0) for i in range(1, 7)}
    assert split["awaiting_signoff"].eq(0).all()
    assert (split["provisional"] == split["earned"] - split["certified"]).all()
    assert any(f"**\\${total:,.0f} certified**" in m.value for m in vendors.markdown)


@pytest.fixture
def hand_built(tmp_path, monkeypatch):
    """The hand-built district of test_payments, September closed for VA and A2's third session
    sent after, as the dashboard's warehouse."""
    import streamlit as st

    from ciboard.accounts import create_demo_accounts
    from ciboard.settings import get_settings
    from test_statements import ADMIN, TODAY, LATE_SESSION, district_files, resend

    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    ingest(warehouse, district_files(tmp_path / "files"))
    db = AppDB.of(warehouse.settings)
    create_demo_accounts(db, [("VA", "Vendor A"), ("VB", "Vendor B")])
    close_statement(warehouse, db, ADMIN, "VA", "2025-09", today=TODAY)
    resend(warehouse, "VA", LATE_SESSION)
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(warehouse.settings.data_dir))
    get_settings.cache_clear()
    st.cache_resource.clear()
    yield warehouse
    get_settings.cache_clear()
    st.cache_resource.clear()
    warehouse.close()


def test_the_open_month_lists_its_adjustments_in_its_total(hand_built):
    app = open_page(PAGE, query={"month": "2025-10", "statement_vendor": "VA"})
    assert not app.exception, [e.value for e in app.exception]
    lines = shown(app, "corrects")
    assert lines[["student_id", "corrects", "amount"]].to_dict("records") == [
        {"student_id": "A2", "corrects": "2025-09", "amount": 100.0}
    ]
    assert tiles(app)["Adjustments"] == "$100.00" and tiles(app)["Due this month"] == "$300.00"


def test_a_second_admin_s_close_or_sign_off_from_a_page_open_before_cannot_change_a_closed_month(dashboard):
    first = open_page(PAGE, user="admin", query={"month": "2026-01"})
    first.selectbox(key="statement_vendor").set_value("V3").run()
    second = open_page(PAGE, user="admin", query={"month": "2026-01"})
    second.selectbox(key="statement_vendor").set_value("V3").run()
    first.button(key="close-statement").click().run()
    db = AppDB.of(dashboard.settings)
    closed = statements.read(db, Scope("admin"), "V3", "2026-01")
    statements.sign(db, Account("other-admin", "Other admin", "admin"), "V3", "2026-01", note="first")

    second.button(key="close-statement").click().run()  # the page still offered it: it was drawn before the close
    assert not second.exception, [e.value for e in second.exception]
    assert any("(closed)" in h.value for h in second.subheader)
    again = statements.read(db, Scope("admin"), "V3", "2026-01")
    pd.testing.assert_frame_equal(again.rows, closed.rows)
    assert again.closed_by == closed.closed_by and again.warehouse_version == closed.warehouse_version
    # Signing for the district again, from the first page still showing the form, changes nothing either.
    first.text_input(key="sign-note").input("second district sign-off")
    first.button(key="sign-statement").click().run()
    assert not first.exception, [e.value for e in first.exception]
    assert [(s.party, s.signed_by, s.note) for s in statements.read(db, Scope("admin"), "V3", "2026-01").signoffs] == [
        ("district", "other-admin", "first")]
