"""Payments: a vendor's statement for a month under its contract's rate card: each student's
standing, what falls due that month, the caps applied and the total."""

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from ciboard import charts, payments, reconciliation, session, statements
from ciboard.access import Scope
from ciboard.dashboard import account, audit, choices, query, scope, version, warehouse
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
# Corrections to the contracts' last month land in the month after it, once that one is closed.
if payments.label(months[-1]) in statements.closed_months(session.app_db(), vendor):
    months.append(payments.period_of(payments.period_end(months[-1]) + timedelta(days=1)))
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
# One column per rate-card line: the terms read down, as a contract does. A month where two years
# of a multi-year contract are in force (the last year's outcomes fall due in the next's first
# month) names each line's year. Statements closed before contract years existed have none.
years = terms.get("contract_year", pd.Series(dtype=object))
lines = terms["payment_metric"]
if years.nunique() > 1:
    lines = lines + ", " + years.astype(str)
st.dataframe(terms.drop(columns=["vendor_id", "contract_starts_on", "payment_metric", "contract_year"], errors="ignore").set_axis(lines).T,
             width="stretch", key="terms")
st.page_link("app_pages/rate_cards.py", label="Every version of these terms, and who changed them: Rate cards",
             icon=":material/request_quote:")

st.subheader(f"Statement for {period}" + (" (closed)" if closed else ""))
tiles = st.columns(6)
for tile, (name, amount, meaning) in zip(tiles, [
    ("Due this month", totals["total"].sum(), "Base and outcome payments due this month, after the caps, and the adjustments."),
    ("Base", totals["base_amount"].sum(), "Per student served, before the caps."),
    ("Outcome", totals["outcome_amount"].sum(), "Per successful student, before the caps."),
    ("Caps applied", (totals["student_cap_applied"] + totals["contract_cap_applied"]).sum(),
     "Cut by the per-student caps and the contract caps, which take the latest payments first."),
    # Statements closed before adjustments existed have no such total: they carried none.
    ("Adjustments", totals.get("adjustments", pd.Series([0.0])).sum(),
     "What data that arrived after earlier months closed changes in them, carried into this month."),
    ("Due to date", totals["total_to_date"].sum(), "Every month up to this one, after the caps, as computed now."),
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
        "base_amount": st.column_config.NumberColumn("Base", format="dollar"),
        "outcome_amount": st.column_config.NumberColumn("Outcome payment", format="dollar"),
        "student_cap_applied": st.column_config.NumberColumn("Student cap", format="dollar"),
        "amount": st.column_config.NumberColumn("Amount", format="dollar"),
    },
)
st.caption(
    f"{len(rows.drop_duplicates('student_id')):,} students on the roster · computed from "
    f"{data_version(rows.attrs['version'])} · cut by the contract cap, per contract: "
    + "; ".join(f"the one from {t['contract_starts_on']}: ${t['contract_cap_applied']:,.2f}" for t in totals.to_dict("records"))
)
# What the checks against the district's records leave out, as the data stands now (a closed
# month keeps the service it was closed with; a decision now lands as an adjustment).
left_out = live.attrs["left_out"]
if left_out["sessions"]:
    st.markdown(
        f":orange[:material/rule:] **{left_out['sessions']:,} attended session(s)** of this vendor from "
        f"{left_out['start']:%b %-d, %Y} to {left_out['end']:%b %-d, %Y} are left out of its service by the checks "
        f"against the district's records: {left_out['pending']:,} awaiting the district's decision, "
        f"{left_out['sessions'] - left_out['pending']:,} rejected."
    )
    st.page_link("app_pages/data_quality.py", label="Which sessions and why: Data quality", icon=":material/fact_check:",
                 query_params=None if own else {"vendor": filters.label("vendor_id", vendor)})
else:
    st.caption(f"Every attended session of this vendor up to {left_out['end']:%b %-d, %Y} passes the checks against "
               "the district's records, or was accepted.")
adjustments = pd.DataFrame(rows.attrs["adjustments"])
st.markdown("**Adjustments**")
if adjustments.empty:
    st.caption("None: no closed month before this one has changed since it closed.")
else:
    st.dataframe(
        adjustments, hide_index=True, width="stretch", key="adjustments",
        column_order=["student_id", "corrects", "amount", "amount_before", "amount_after", "reason"],
        column_config={
            "student_id": st.column_config.TextColumn("Student"),
            "corrects": st.column_config.TextColumn("Corrects", help="The closed month whose figure changed"),
            "amount": st.column_config.NumberColumn("Adjustment", format="dollar"),
            "amount_before": st.column_config.NumberColumn("Paid then", format="dollar",
                                                           help="As frozen, with any adjustment already made"),
            "amount_after": st.column_config.NumberColumn("Owed now", format="dollar"),
            "reason": st.column_config.TextColumn("Why", width="large"),
        },
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
                statements.close(warehouse(), session.app_db(), me, live)
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
        st.warning(f"Data that arrived after closing would change this month by ${moved:,.2f}; the closed statement stays "
                   "as it is, and the change is carried per student as adjustments into the vendor's next open month.")
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


@st.cache_data(show_spinner="Computing each month's statement…")
def earned(version: str, scope_text: str, vendor: str, months: tuple[str, ...]) -> pd.DataFrame:
    return reconciliation.earned(warehouse(), Scope.parse(scope_text), vendor, list(months))


st.subheader("Reconciliation")
st.caption("Each month's figures side by side: earned (a closed month's statement as it was frozen; an open month's "
           "as computed now, provisional, with the adjustments it carries for closed months before it), certified "
           "(the closed statement, once the district and the vendor have signed it off), invoiced and paid (as the "
           "district recorded them), and every difference between them. Summed over the months, earned is what the "
           "vendor is owed in all: a change to a closed month is counted once, in the open month it is carried into.")
entries = reconciliation.ledger(session.app_db(), scope(), vendor)
closed_statements = statements.standing(session.app_db(), scope())
# Each open month's statement computed again, once per data version and set of closed months
# (bench/bench_reconciliation.py measures it: about 0.35 s a month on the 3,000-student demo, on a busy machine).
open_months = reconciliation.periods(contracts, entries, closed_statements.loc[closed_statements["vendor_id"] == vendor, "period"].tolist())
months_earned = earned(version(), str(scope()), vendor, tuple(open_months))
table = reconciliation.reconcile(months_earned, closed_statements, entries)
st.dataframe(
    table, hide_index=True, width="stretch", key="reconciliation",
    column_config={
        "vendor_id": None,
        "period": st.column_config.TextColumn("Month", width="small"),
        "earned": st.column_config.NumberColumn(
            "Earned", format="dollar",
            help="A closed month's statement as frozen; an open month's as computed now (provisional), adjustments included"),
        "adjustments": st.column_config.NumberColumn(
            "Of it adjustments", format="dollar", help="What later data or new terms change in closed months before it"),
        "status": st.column_config.TextColumn("Statement"),
        "certified": st.column_config.NumberColumn("Certified", format="dollar", help="The closed statement's total, once both signed it off"),
        "invoiced": st.column_config.NumberColumn("Invoiced", format="dollar"),
        "paid": st.column_config.NumberColumn("Paid", format="dollar"),
        "differences": st.column_config.TextColumn("Differences", width="large"),
    },
)
# The table cuts long text; the differences are what the meeting reads, so in full too.
flagged = table[table["differences"] != ""]
st.markdown("\n".join(f"- **{r.period}**: {r.differences}".replace("$", "\\$") for r in flagged.itertuples())
            if len(flagged) else "Every month's figures agree.")
name = f"reconciliation-{vendor}.csv"
st.download_button("Download CSV", table.to_csv(index=False).encode(), file_name=name, icon=":material/download:",
                   key="download-reconciliation", on_click=audit,
                   args=("export", {"file": name, "rows": len(table), "page": "Payments"}))

st.subheader("Invoices and payments")
if entries.empty:
    st.caption("None recorded for this vendor yet." + ("" if me.role == "admin" else " The district's admins record them."))
else:
    st.dataframe(
        entries, hide_index=True, width="stretch", key="ledger",
        column_order=["entry_id", "kind", "period", "reference", "amount", "dated_on", "standing", "note",
                      "recorded_by", "recorded_at", "source"],
        column_config={
            "entry_id": st.column_config.NumberColumn("Entry", format="%d"),
            "kind": st.column_config.TextColumn("Kind"),
            "period": st.column_config.TextColumn("Month"),
            "reference": st.column_config.TextColumn("Reference"),
            "amount": st.column_config.NumberColumn("Amount", format="dollar"),
            "dated_on": st.column_config.TextColumn("Dated", help="The day the invoice came in, or the payment was made"),
            "standing": st.column_config.TextColumn("Standing", help="Entries are never changed: a later entry supersedes or voids one"),
            "note": st.column_config.TextColumn("Note", width="medium"),
            "recorded_by": st.column_config.TextColumn("Recorded by"),
            "recorded_at": st.column_config.TextColumn("Recorded at"),
            "source": st.column_config.TextColumn("From"),
        },
    )
if me.role == "admin":
    current = entries[entries["standing"].str.startswith("current")]
    with st.expander("Record an invoice or a payment", icon=":material/receipt_long:"):
        with st.form("record-entry", clear_on_submit=True):
            kind = st.radio("Kind", list(reconciliation.KINDS), format_func=reconciliation.KINDS.get, horizontal=True, key="entry-kind")
            labels = [payments.label(m) for m in months]
            entry_month = st.selectbox("Month", labels, index=labels.index(period), key="entry-month")
            reference = st.text_input("Reference", key="entry-reference", help="The invoice's number, or the payment's")
            amount = st.text_input("Amount in dollars", key="entry-amount", placeholder="1200.00")
            dated = st.date_input("Dated", key="entry-date", help="The day the invoice came in, or the payment was made")
            corrects = st.selectbox("Corrects entry", [None, *current["entry_id"]], key="entry-corrects",
                                    format_func=lambda e: "none: a new entry" if e is None else f"entry {e}",
                                    help="The new entry supersedes the one chosen; the note says why")
            note = st.text_input("Note", key="entry-note")
            if st.form_submit_button("Record", icon=":material/add:", key="record-entry"):
                fields = {"kind": kind, "vendor_id": vendor, "period": entry_month, "reference": reference,
                          "amount": amount, "date": dated.isoformat(), "note": note, "corrects": corrects}
                try:
                    reconciliation.record(warehouse(), session.app_db(), me,
                                          {"the form": reconciliation.entry(fields, "the form")}, "the Payments page")
                except reconciliation.LedgerError as error:
                    st.error("Nothing recorded: " + "; ".join(error.problems))
                else:
                    st.rerun()
    with st.expander("Record from a CSV file", icon=":material/upload_file:"):
        st.caption(f"Columns {', '.join(reconciliation.CSV_COLUMNS)}, and optionally note and corrects; any vendor. "
                   "The file lands whole or not at all.")
        upload = st.file_uploader("CSV file", type=["csv"], key="ledger-file")
        if upload is not None and st.button(f"Record {upload.name}", key="record-file", icon=":material/publish:"):
            try:
                reconciliation.record(warehouse(), session.app_db(), me,
                                      reconciliation.read_csv(upload.getvalue(), upload.name,
                                                              reconciliation.known_vendors(warehouse())), upload.name)
            except reconciliation.LedgerError as error:
                st.error(f"Nothing recorded from {upload.name}:\n\n" + "\n".join(f"- {p}" for p in error.problems))
            else:
                st.rerun()
    if len(current):
        with st.expander("Void an entry", icon=":material/block:"):
            with st.form("void-entry", clear_on_submit=True):
                voided = st.selectbox("Entry", list(current["entry_id"]), key="void-entry-id", format_func=lambda e: f"entry {e}")
                reason = st.text_input("Why", key="void-reason")
                if st.form_submit_button("Void", key="void-entry"):
                    try:
                        reconciliation.void(warehouse(), session.app_db(), me, int(voided), reason)
                    except reconciliation.LedgerError as error:
                        st.error("; ".join(error.problems))
                    else:
                        st.rerun()
