"""Submit data: a vendor (or the district's administrator) sends a file through the same checks
as `ciboard ingest`. It lands whole or not at all; a rejected file's problems are listed row
by row, and the submission log below shows what landed."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from ciboard import ingest
from ciboard.dashboard import account, audit, query, warehouse

VENDOR_KINDS = {
    "sessions": "Tutoring sessions (one row per student and session)",
    "survey": "Exit tickets and surveys",
    "roster": "Roster (the students you serve)",
}
DISTRICT_KINDS = {
    "school_attendance": "School attendance",
    "assessment": "Assessment results",
    "contracts": "Contracts and rate cards",
    "annotations": "Events for the charts (breaks, program changes)",
    "schools": "Schools",
    "vendors": "Vendors",
}

me = account()
filters = st.session_state["filters"]
st.title("Submit data")
if me.role == "vendor":
    st.caption(
        f"Files you send are checked and loaded as {me.vendor_id}'s: a row for any other vendor is rejected. "
        "A file lands whole or not at all, and sending the same week again replaces what you sent before."
    )
    kinds = VENDOR_KINDS
else:
    st.caption(
        "Load any kind of file. A file lands whole or not at all; a vendor's file sent again for the same period "
        "replaces the earlier one, and both stay in the log."
    )
    kinds = {**VENDOR_KINDS, **DISTRICT_KINDS}

with st.form("upload", clear_on_submit=True):
    kind = st.selectbox("What the file holds", list(kinds), format_func=kinds.get)
    vendor = me.vendor_id
    if me.role != "vendor":
        vendor_names = filters.labels.get("vendor_id", {})
        vendor = st.selectbox(
            "Submitted by (vendor files only)",
            [None, *vendor_names],
            format_func=lambda v: "The district" if v is None else f"{v} · {vendor_names[v]}",
        )
    uploaded = st.file_uploader("File", type=["csv", "parquet", "xlsx"], help="CSV, Parquet or Excel (first sheet).")
    sent = st.form_submit_button("Check and load", type="primary", icon=":material/upload:")

if sent and uploaded is None:
    st.warning("Choose a file first.")
elif sent:
    with tempfile.TemporaryDirectory() as folder, st.spinner(f"Checking {uploaded.name}…"):
        # Keep the sender's file name: every problem names the file it was found in.
        path = Path(folder) / Path(uploaded.name).name
        path.write_bytes(uploaded.getvalue())
        submission = ingest.Submission(path, kind, vendor if kind in VENDOR_KINDS else None)
        try:
            outcomes = ingest.ingest(warehouse(), [submission])
        except ingest.IngestRejected as rejected:
            problems = pd.DataFrame([vars(p) for p in rejected.problems])
            audit("ingest", {"file": path.name, "kind": kind, "status": "rejected", "problems": len(problems)})
            st.session_state["upload_result"] = ("rejected", path.name, problems)
        except (ingest.FileUnreadable, ValueError) as error:
            audit("ingest", {"file": path.name, "kind": kind, "status": "unreadable"})
            st.session_state["upload_result"] = ("unreadable", path.name, str(error))
        else:
            [outcome] = outcomes
            audit("ingest", {"file": path.name, "kind": kind, "status": outcome.status, "rows": outcome.rows})
            st.session_state["upload_result"] = (outcome.status, path.name, outcome)

result = st.session_state.get("upload_result")
if result:
    status, name, detail = result
    if status == "rejected":
        st.error(f"**{name} was not loaded**: {len(detail)} problem(s). Nothing from it landed; fix them and send it again.")
        st.dataframe(
            detail,
            hide_index=True,
            column_config={"file": "File", "row": st.column_config.NumberColumn("Row", format="%d"),
                           "column": "Column", "value": "Value", "reason": "Problem"},
        )
        st.download_button(
            "Download the problems as CSV", detail.to_csv(index=False).encode(), file_name=f"problems-{name}.csv",
            mime="text/csv", icon=":material/download:",
        )
    elif status == "unreadable":
        st.error(f"**{name} could not be read**: {detail}")
    elif status == "unchanged":
        st.info(f"{name} was loaded before; nothing changed.")
    else:
        replaced = f", replacing submission {detail.replaced_batch_id}" if detail.replaced_batch_id else ""
        st.success(f"**{name}** landed: {detail.rows:,} rows as submission {detail.batch_id}{replaced}.")

st.subheader("Submission log")
log = query("quality", start=filters.start.isoformat(), end=filters.end.isoformat())
log = log[log["received_at"].notna()].sort_values("received_at", ascending=False)
st.dataframe(
    log[["received_at", "vendor_id", "kind", "period_start", "period_end", "status", "rows_accepted", "rows_rejected", "batch_id"]],
    hide_index=True,
    column_config={
        "received_at": st.column_config.DatetimeColumn("Received", format="YYYY-MM-DD HH:mm"),
        "vendor_id": "Vendor", "kind": "Kind", "period_start": "From", "period_end": "To", "status": "Status",
        "rows_accepted": st.column_config.NumberColumn("Rows landed", format="%d"),
        "rows_rejected": st.column_config.NumberColumn("Rows rejected", format="%d"),
        "batch_id": st.column_config.NumberColumn("Submission", format="%d"),
    },
)
