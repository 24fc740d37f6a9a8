"""Contract reports: the district's report per school year and period for the board, vendors,
schools and the public, drafted and written by analysts and admins, reviewed by someone other
than the author, approved and released by an admin. Facilitators read what is released to the
board, schools and evaluators what is released to them, vendors what is released to vendors."""

import pandas as pd
import streamlit as st

from ciboard import ci_ui, reports, session
from ciboard.dashboard import account, audit, choices, disguised_text, version, warehouse

me = account()
staff = me.role in ("analyst", "admin")
db = session.app_db()

st.title("Contract reports")
st.caption(
    "Per school year and period: outcomes against the contracts' targets, payments (certified and provisional), "
    "gaps between student groups with their intervals, data timeliness, and what the CI meetings committed and "
    "whether it moved the numbers, beside the district's own text. Its numbers are frozen when it is reviewed; "
    "once released it never changes, and a correction is a new version."
    if staff else
    "The district's contract reports released to you: outcomes against the contracts' targets, payments, gaps "
    "between student groups, data timeliness and the CI meetings' commitments. A released report never changes."
)

notice = st.session_state.pop("report_notice", None)
if notice:
    st.success(notice, icon=":material/check_circle:")


@st.cache_data(show_spinner=False, ttl=120, max_entries=32)
def live_numbers(data_version: str, school_year: str, period: str) -> dict:
    """A draft's numbers as they stand: recomputed for each warehouse version (and every two minutes,
    for the statements and commitments written in the app meanwhile)."""
    found = reports.period_of(warehouse(), school_year, period)
    return reports.compute(warehouse(), db, found, public=False)


def step(action, *args, done: str) -> None:
    """Runs one workflow step; its message, or why it cannot be taken."""
    try:
        report = action(*args)
    except (reports.ReportError, PermissionError) as error:
        st.error(str(error), icon=":material/block:")
        return
    st.session_state["report_notice"] = done
    st.session_state["report_next"] = report.report_id  # chosen in the next run, before the chooser is drawn
    st.rerun()


if staff:
    with st.expander("Draft a new report", icon=":material/note_add:"):
        years = choices().query("dimension == 'school_year' and students > 0")["value"].astype(str).tolist()
        with st.form("new_report"):
            left, middle, right = st.columns(3)
            year = left.selectbox("School year", years, index=len(years) - 1 if years else None, key="new-year")
            kind = middle.selectbox("Period", ["Year", "Quarter", "Month"], key="new-kind")
            which = right.text_input("Quarter or month", placeholder="Q2, or 2025-10", key="new-which",
                                     help="For a quarter Q1 to Q4 (three months each from the school year's start); "
                                     "for a month YYYY-MM. Not needed for the year.")
            if st.form_submit_button("Draft", type="primary", icon=":material/note_add:", key="draft-report"):
                wanted = "year" if kind == "Year" else which.strip()
                if kind != "Year" and not wanted:
                    st.error(f"Say which {kind.lower()}: " + ("Q1 to Q4." if kind == "Quarter" else "YYYY-MM."))
                else:
                    step(reports.create, db, warehouse(), me, year, wanted, done="Drafted.")

found = reports.listing(db, me.scope)
if not found:
    st.info("No report yet." if staff else "No report has been released to you yet.")
    st.stop()
by_id = {r.report_id: r for r in found}
ids = list(by_id)
wanted = st.session_state.pop("report_next", None)
if wanted in by_id:
    st.session_state["report"] = wanted
if st.session_state.get("report") not in by_id:
    st.session_state["report"] = ids[0]


def label(report_id: int) -> str:
    r = by_id[report_id]
    return f"{r.title} · {r.state}" + (f" to {', '.join(r.audiences)}" if r.audiences else "")


chosen = st.selectbox("Report", ids, format_func=ci_ui.distinct(ids, label), key="report")
report = by_id[chosen]

facts = [("State", report.state + (f" to {', '.join(report.audiences)}" if report.audiences else "")),
         ("Author", report.created_by), ("Reviewer", report.reviewer or "not reviewed yet")]
if report.snapshot:
    facts.append(("Numbers from", f"{report.snapshot['warehouse_version']}, frozen at review"))
if report.corrects:
    facts.append(("Corrects", f"version {report.version - 1}: {report.what_changed}"))
st.markdown("  \n".join(f"**{k}:** {v}" for k, v in facts))
later = [r for r in found if r.corrects == report.report_id]
if later:
    st.info(f"Corrected by version {later[0].version} ({later[0].state}).", icon=":material/update:")

# --- the workflow ---------------------------------------------------------------------------

if staff and report.state == "draft":
    with st.form("narrative"):
        st.subheader("The district's text")
        texts = {key: st.text_area(title, report.texts.get(key, ""), height=140, key=f"text-{report.report_id}-{key}")
                 for key, title in reports.SECTIONS.items()}
        if st.form_submit_button("Save text", icon=":material/save:", key="save-text"):
            step(reports.write, db, me, report.report_id, texts, done="Text saved.")
    own_draft = me.username == report.created_by
    with st.form("review"):
        note = st.text_input("Review note", key="review_note")
        if st.form_submit_button("Mark reviewed: freeze the numbers", type="primary", disabled=own_draft, key="review-report",
                                 help="Someone other than the author reviews." if own_draft else None):
            step(reports.review, db, warehouse(), me, report.report_id, note, done="Reviewed: the numbers are frozen.")
    if own_draft:
        st.caption("You drafted this report: someone else reviews it.")

if staff and report.state in ("reviewed", "approved"):
    if report.state == "reviewed" and me.role == "admin":
        with st.form("approve"):
            note = st.text_input("Approval note", key="approve_note")
            if st.form_submit_button("Approve", type="primary", icon=":material/verified:", key="approve-report"):
                step(reports.approve, db, me, report.report_id, note, done="Approved.")
    if report.state == "approved" and me.role == "admin":
        with st.form("release"):
            audiences = st.multiselect("Release to", list(reports.AUDIENCES), default=["board"], key="release-audiences",
                                       help="Vendors and the public get the copy with the strictest protection.")
            note = st.text_input("Release note", key="release_note")
            if st.form_submit_button("Release", type="primary", icon=":material/campaign:", key="release-report"):
                step(reports.release, db, warehouse(), me, report.report_id, audiences, note,
                     done="Released: the report is final.")
    if me.role != "admin":
        st.caption("An admin approves and releases a report.")
    with st.form("reopen"):
        why = st.text_input("Why it goes back to draft", key="reopen_note")
        if st.form_submit_button("Return to draft", icon=":material/undo:", key="reopen-report"):
            step(reports.reopen, db, warehouse(), me, report.report_id, why, done="Back to draft.")

if staff and report.state == "released" and not later:
    with st.form("correct"):
        what = st.text_area("What the correction changes", key="correct_note", height=80)
        if st.form_submit_button("Make a corrected version", icon=":material/edit_note:", key="correct-report"):
            step(reports.correct, db, me, report.report_id, what, done="A corrected version is drafted.")

# --- the report -----------------------------------------------------------------------------

if report.snapshot is None:
    st.subheader("Numbers as they stand (draft)")
    st.caption("A draft shows the current data; the numbers are frozen when the report is reviewed.")
    content = live_numbers(version(), report.school_year, reports.period_text(report))
else:
    copies = {"district": "Board and schools", "public": "Vendors and the public"}
    if me.role == "vendor":
        copy = "public"
    elif me.role in ("facilitator", "school", "evaluator"):
        copy = "district"
    else:
        copy = st.radio("Copy", list(copies), format_func=copies.get, horizontal=True, key="copy",
                        help="Vendors and the public get values over fewer students hidden, and no commitment's "
                        "wording or owner.")
    content = reports.copy_for(report, me.scope, "public" if copy == "public" else "board")
if report.snapshot is not None and session.aliasing():
    # The files name vendors as the report does; a shared screen shows them as letters only.
    st.caption("Downloads are offered when presentation mode's \"Vendor A, B, C\" is off.")
elif report.snapshot is not None:
    name = {"html": "HTML", "md": "Markdown", "xlsx": "Excel"}
    files = {
        "html": (reports.to_html(report, content).encode(), "text/html"),
        "md": (reports.to_markdown(report, content).encode(), "text/markdown"),
        "xlsx": (reports.to_xlsx(report, content),
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    }
    for column, (fmt, (data, mime)) in zip(st.columns(3), files.items()):
        file_name = reports.filename(report, content, fmt)
        column.download_button(
            f"Download {name[fmt]}", data, file_name=file_name, mime=mime, icon=":material/download:",
            key=f"download-report-{fmt}", width="stretch", on_click=audit,
            args=("download", {"file": file_name, "report": report.report_id, "copy": copy}),
        )

if not (staff and report.state == "draft"):
    for key, title in reports.SECTIONS.items():
        body = report.texts.get(key, "").strip()
        if body:
            st.subheader(title)
            st.text(disguised_text(body))  # as written: the district's words, no markup of their own

for sheet, title, table in reports.tables(content):
    headers, rows = reports.shown_table(content, sheet, table)
    rows = [[disguised_text(cell) for cell in row] for row in rows]  # vendors as letters while presenting with them
    st.subheader(title)
    if rows:
        st.dataframe(pd.DataFrame(rows, columns=headers), hide_index=True, key=f"table-{sheet}")
    else:
        st.caption("None in this period.")

with st.expander("History", icon=":material/history:"):
    st.dataframe(
        pd.DataFrame([(e.at, e.state, e.by, e.note, ", ".join(e.audiences)) for e in report.events],
                     columns=["When", "State", "By", "Note", "Audiences"]),
        hide_index=True,
    )
