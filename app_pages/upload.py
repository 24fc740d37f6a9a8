"""Submit data: a vendor (or the district's administrator) sends a file through the same checks
as `ciboard ingest`. It lands whole or not at all; a rejected file's problems are listed row
by row, a file that would remove rows of an earlier one waits for a confirmation, and the
submission log below shows what landed."""

import logging
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ciboard import ingest, safe_text
from ciboard.dashboard import account, audit, query, warehouse

log = logging.getLogger(__name__)

VENDOR_KINDS = {
    "sessions": "Tutoring sessions (one row per student and session)",
    "survey": "Exit tickets and surveys",
    "roster": "Roster (the students you serve)",
}
DISTRICT_KINDS = {
    "students": "Student records (the district's students and their groups, as of a date)",
    "school_attendance": "School attendance",
    "assessment": "Assessment results",
    "contracts": "Contracts and rate cards",
    "annotations": "Events for the charts (breaks, program changes)",
    "schools": "Schools",
    "vendors": "Vendors",
}
LIMIT_MB = st.get_option("server.maxUploadSize")
UPLOADS = Path(warehouse().settings.data_dir) / "uploads"  # beside the warehouse, on its disk


def load(submission: ingest.Submission, folder: str, replace: bool = False) -> None:
    """Ingests the file on disk and keeps what happened for the page to show. The folder goes
    when the file has landed or been turned away, and stays while a replacement awaits a yes."""
    name, kind = submission.name, submission.kind
    try:
        [outcome] = ingest.ingest(warehouse(), [submission], replace=replace)
    except ingest.IngestRejected as rejected:
        problems = pd.DataFrame([vars(p) for p in rejected.problems], columns=["file", "row", "column", "value", "reason"])
        audit("ingest", {"file": name, "kind": kind, "status": "rejected", "problems": len(problems)})
        st.session_state["upload_result"] = ("rejected", name, problems)
    except ingest.ReplaceUnconfirmed as unconfirmed:
        [outcome] = unconfirmed.outcomes
        audit("ingest", {"file": name, "kind": kind, "status": "asked to confirm a replacement",
                         "replaces": outcome.replaced_batch_id, "removes": sum(c.removed for c in outcome.changes)})
        st.session_state["upload_pending"] = (submission, folder, outcome)
        return
    except Exception:  # noqa: BLE001 - the sender gets words, the server log the traceback
        log.exception("loading an upload (%s) failed", kind)
        audit("ingest", {"file": name, "kind": kind, "status": "error"})
        st.session_state["upload_result"] = ("error", name, None)
    else:
        audit("ingest", {"file": name, "kind": kind, "status": outcome.status, "rows": outcome.rows,
                         "replaced": outcome.replaced_batch_id})
        st.session_state["upload_result"] = (outcome.status, name, outcome)
    shutil.rmtree(folder, ignore_errors=True)


def confirm(replace: bool) -> None:
    submission, folder, outcome = st.session_state.pop("upload_pending")
    if replace:
        load(submission, folder, replace=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        audit("ingest", {"file": submission.name, "kind": submission.kind, "status": "replacement declined"})
        st.session_state["upload_result"] = ("kept", submission.name, outcome)


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
    uploaded = st.file_uploader(
        "File", type=["csv", "parquet", "xlsx"], help=f"CSV, Parquet or Excel (first sheet), up to {LIMIT_MB} MB."
    )
    st.caption(
        f"Files up to {LIMIT_MB} MB. For a larger one, send it in parts (a week or a month at a time), "
        "or ask the district to load it with `ciboard ingest`."
    )
    sent = st.form_submit_button("Check and load", type="primary", icon=":material/upload:")

if sent and uploaded is None:
    st.warning("Choose a file first.")
elif sent:
    if "upload_pending" in st.session_state:  # a new file replaces the question about the last one
        shutil.rmtree(st.session_state.pop("upload_pending")[1], ignore_errors=True)
    UPLOADS.mkdir(parents=True, exist_ok=True)
    for stale in UPLOADS.iterdir():  # left by a question never answered
        if stale.stat().st_mtime < time.time() - 86400:
            shutil.rmtree(stale, ignore_errors=True)
    folder = tempfile.mkdtemp(dir=UPLOADS)
    # The file goes to disk a block at a time and is read from there; on disk it has a name of
    # ours, and every message names it as its sender did.
    name = Path(uploaded.name).name
    path = Path(folder) / ("upload" + Path(name).suffix.lower())
    with st.spinner(f"Checking {name}…"):
        uploaded.seek(0)
        with open(path, "wb") as handle:
            shutil.copyfileobj(uploaded, handle, 1 << 20)
        submission = ingest.Submission(
            path, kind, vendor if kind in VENDOR_KINDS else None, by_district=me.role != "vendor", file_name=name
        )
        st.session_state.pop("upload_result", None)
        load(submission, folder)

pending = st.session_state.get("upload_pending")
if pending:
    _, _, outcome = pending
    removed = sum(c.removed for c in outcome.changes)
    before = sum(c.rows_before for c in outcome.changes)
    st.warning(
        f"**{safe_text.markdown(outcome.file)} would replace submission {outcome.replaced_batch_id}** ({kinds.get(outcome.kind, outcome.kind)}, "
        f"{outcome.period[0]:%b %-d} to {outcome.period[1]:%b %-d, %Y}) **and remove {removed:,} of its {before:,} rows.** "
        "Nothing has landed yet. A corrected file replaces the whole period it covers: if this file holds only some "
        "of it, the rest would be gone.",
        icon=":material/warning:",
    )
    st.dataframe(
        pd.DataFrame([vars(c) for c in outcome.changes]),
        hide_index=True,
        column_config={
            "week_start": st.column_config.DateColumn("Week of", format="MMM D, YYYY"),
            "rows_before": st.column_config.NumberColumn("Rows now", format="%d"),
            "rows_after": st.column_config.NumberColumn("Rows in this file", format="%d"),
            "removed": st.column_config.NumberColumn("Removed", format="%d"),
            "added": st.column_config.NumberColumn("Added", format="%d"),
        },
    )
    yes, no = st.columns(2)
    yes.button(f"Replace submission {outcome.replaced_batch_id}", type="primary", icon=":material/sync:",
               on_click=confirm, args=(True,), key="replace-yes")
    no.button("Keep what is there", icon=":material/close:", on_click=confirm, args=(False,), key="replace-no")

result = st.session_state.get("upload_result")
if result and not pending:
    status, file_name, detail = result
    name = safe_text.markdown(file_name)  # the sender chose it: shown as text, never as an image or HTML
    if status == "rejected":
        st.error(f"**{name} was not loaded**: {len(detail)} problem(s). Nothing from it landed; fix them and send it again.")
        st.dataframe(
            detail,
            hide_index=True,
            column_config={"file": "File", "row": st.column_config.NumberColumn("Row", format="%d"),
                           "column": "Column", "value": "Value", "reason": st.column_config.TextColumn("Problem", width="large")},
        )
        st.download_button(
            "Download the problems as CSV", detail.to_csv(index=False).encode(), file_name=f"problems-{file_name}.csv",
            mime="text/csv", icon=":material/download:",
        )
    elif status == "error":
        st.error(f"**{name} could not be loaded** because of an error in CI Board, not in the file. Nothing from it "
                 "landed. The district's administrator can find the details in the server's log.")
    elif status == "unchanged":
        st.info(f"{name} was loaded before; nothing changed.")
    elif status == "kept":
        st.info(f"{name} was not loaded; submission {detail.replaced_batch_id} stays as it was.")
    else:
        removed = sum(c.removed for c in detail.changes)
        replaced = (f", replacing submission {detail.replaced_batch_id}" + (f" ({removed:,} rows removed)" if removed else "")
                    if detail.replaced_batch_id else "")
        st.success(f"**{name}** landed: {detail.rows:,} rows as submission {detail.batch_id}{replaced}.")

st.subheader("Submission log")
log_rows = query("quality", start=filters.start.isoformat(), end=filters.end.isoformat())
log_rows = log_rows[log_rows["received_at"].notna()].sort_values("received_at", ascending=False)
st.dataframe(
    log_rows[["received_at", "vendor_id", "kind", "period_start", "period_end", "status", "rows_accepted", "rows_rejected", "batch_id"]],
    hide_index=True,
    column_config={
        "received_at": st.column_config.DatetimeColumn("Received", format="YYYY-MM-DD HH:mm"),
        "vendor_id": "Vendor", "kind": "Kind", "period_start": "From", "period_end": "To", "status": "Status",
        "rows_accepted": st.column_config.NumberColumn("Rows landed", format="%d"),
        "rows_rejected": st.column_config.NumberColumn("Rows rejected", format="%d"),
        "batch_id": st.column_config.NumberColumn("Submission", format="%d"),
    },
)
