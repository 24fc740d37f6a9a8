"""Payments: a vendor's statement for a month under its contract's rate card: each student's
standing, what falls due that month, the caps applied and the total."""

from datetime import date

import pandas as pd
import streamlit as st

from ciboard import charts, payments, session, statements
from ciboard.dashboard import account, audit, choices, query, scope, warehouse
from ciboard.warehouse import data_version

filters = st.session_state["filters"]
own = scope().vendor_id

st.title("Payments")
st.caption(
    "Your statement for a month under your contract's rate card: each of your students, served or not, eligible for "
    "the outcome payment or why not, successful or not, and what falls due that month."
    if own else
    "A vendor's statement for a month under its contract's rate card: each student, served or not, eligible for the "
    "outcome payment or why not, successful or not, and what falls due that month, after the caps."
)
if session.presenting():
    # A statement lists students by id; a shared screen shows none.
    st.info("A statement lists students, so it is not shown while presenting. Turn presentation mode off to read it.")
    st.stop()

if own:
    vendor = own
else:
    offered = choices().query("dimension == 'vendor_id'")
    names = dict(zip(offered["value"].astype(str), offered["label"].astype(str)))
    vendor = st.selectbox("Vendor", list(names), format_func=lambda v: names[v], key="statement_vendor", bind="query-params")

contracts = query("payments").query("vendor_id == @vendor")
if contracts.empty:
    st.info("No contract of this vendor is loaded.")
    st.stop()
months = payments.months(contracts)
last_chosen = payments.period_of(filters.end)
period = st.selectbox(
    "Month", [payments.label(m) for m in months], index=payments.closest(months, last_chosen), key="month", bind="query-params",
    help="Base payments fall due in the month a student is served (or at the end of the quarter); outcome payments "
    "in the month after the last window they need.",
)
live = query("statement", vendor_id=vendor, period=period)
# A closed month shows what was frozen when it closed, whatever has arrived since.
closed = statements.read(session.app_db(), scope(), vendor, period)
rows = closed.rows if closed else live
totals, terms = pd.DataFrame(rows.attrs["totals"]), pd.DataFrame(rows.attrs["terms"])

st.subheader("Rate-card terms")
# One column per rate-card line: the terms read down, as a contract does.
st.dataframe(terms.drop(columns=["vendor_id"]).set_index("payment_metric").T, width="stretch", key="terms")

st.subheader(f"Statement for {period}" + (" (closed)" if closed else ""))
tiles = st.columns(5)
for tile, (name, amount, meaning) in zip(tiles, [
    ("Due this month", totals["total"].sum(), "Base and outcome payments due this month, after the caps."),
    ("Base", totals["base_amount"].sum(), "Per student served, before the caps."),
    ("Outcome", totals["outcome_amount"].sum(), "Per successful student, before the caps."),
    ("Caps applied", (totals["student_cap_applied"] + totals["contract_cap_applied"]).sum(),
     "Cut by the per-student caps and the contract caps, which take the latest payments first."),
    ("Due to date", totals["total_to_date"].sum(), "Every month up to this one, after the caps."),
]):
    tile.metric(name, charts.format_money(amount), help=f"${amount:,.2f}. {meaning}")
table = rows.copy()
table.attrs = {}  # the totals and terms travel in attrs, which the table need not send
st.dataframe(
    table, hide_index=True, width="stretch", key="statement",
    # What each student is paid first; the long reasons after.
    column_order=["student_id", "payment_metric", "served", "served_on", "eligible", "outcome", "base_amount",
                  "outcome_amount", "student_cap_applied", "amount", "not_eligible_because", "also_served_under",
                  "contract_starts_on"],
    column_config={
        "vendor_id": None,
        "contract_starts_on": st.column_config.DateColumn("Contract from"),
        "payment_metric": st.column_config.TextColumn("Line"),
        "student_id": st.column_config.TextColumn("Student"),
        "served": st.column_config.CheckboxColumn("Served"),
        "served_on": st.column_config.DateColumn("Served on", help="The day the student met the contract's served rule"),
        "also_served_under": st.column_config.TextColumn("Also served under", help="Another contract whose dates overlap this one's"),
        "eligible": st.column_config.CheckboxColumn("Eligible"),
        "not_eligible_because": st.column_config.TextColumn("Not eligible because", width="large"),
        "outcome": st.column_config.TextColumn("Outcome", width="medium"),
        "base_amount": st.column_config.NumberColumn("Base", format="$%.2f"),
        "outcome_amount": st.column_config.NumberColumn("Outcome payment", format="$%.2f"),
        "student_cap_applied": st.column_config.NumberColumn("Student cap", format="$%.2f"),
        "amount": st.column_config.NumberColumn("Amount", format="$%.2f"),
    },
)
st.caption(
    f"{len(rows.drop_duplicates('student_id')):,} students on the roster · computed from "
    f"{data_version(rows.attrs['version'])} · cut by the contract cap, per contract: "
    + "; ".join(f"the one from {t['contract_starts_on']}: ${t['contract_cap_applied']:,.2f}" for t in totals.to_dict("records"))
)
downloads = st.columns(3)
for column, output_format in zip(downloads, payments.FORMATS):
    name = payments.file_name(vendor, period, output_format)
    column.download_button(
        f"Download {output_format.upper()}", payments.as_file(rows, output_format, vendor), file_name=name,
        icon=":material/download:", key=f"download-statement-{output_format}", width="stretch",
        on_click=audit, args=("export", {"file": name, "rows": len(rows), "page": "Payments"}),
    )

st.subheader("Certification")
me = account()
if closed is None:
    st.caption("Open: these figures are computed from the data as it stands, and move when data arrives. An admin closes "
               "a month once it has ended; the statement is then frozen with the data version it came from.")
    if me.role == "admin" and payments.period_end(payments.period_of(period)) < date.today():
        if st.button(f"Close {period} for this vendor", key="close-statement", icon=":material/lock:"):
            try:
                statements.close(warehouse(), session.app_db(), me, vendor, period)
            except statements.StatementError as error:
                st.error(str(error))
            else:
                st.rerun()
else:
    st.markdown(
        f"Closed {closed.closed_at.replace('T', ' at ')} by {closed.closed_by}, from {data_version(closed.warehouse_version)}: "
        + ("**certified** (signed off by the district and the vendor); it never changes." if closed.certified
           else "awaiting sign-off; the figures never change.")
    )
    moved = round(pd.DataFrame(live.attrs["totals"])["total"].sum() - totals["total"].sum(), 2)
    if moved:
        st.warning(f"Data that arrived after closing would change this month by ${moved:,.2f}; the closed statement stays as it is.")
    for signoff in closed.signoffs:
        st.markdown(f"- Signed off for the {signoff.party} by {signoff.signed_by}, {signoff.signed_at.replace('T', ' at ')}"
                    + (f": {signoff.note}" if signoff.note else ""))
    party = {"admin": "district", "vendor": "vendor"}.get(me.role)
    if party and party not in {s.party for s in closed.signoffs}:
        with st.form("sign-statement"):
            note = st.text_input("Note (optional)", key="sign-note")
            if st.form_submit_button(f"Sign off for the {party}", icon=":material/verified:", key="sign-statement"):
                try:
                    statements.sign(session.app_db(), me, vendor, period, note)
                except statements.StatementError as error:
                    st.error(str(error))
                else:
                    st.rerun()
