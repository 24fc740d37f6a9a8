"""Submit data: a vendor (or the district's administrator) sends a file through the same checks
as `ciboard ingest`, or the district sends an assessment export's files together through an
import profile, as `ciboard import PROFILE` does. It lands whole or not at all; a rejected
file's problems are listed row by row, a file that would remove rows of an earlier one waits
for a confirmation, and the submission log below shows what landed."""

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from ciboard import exports, ingest, profiles, safe_text
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
STATUS_WORDS = {"accepted": "landed", "rejected": "rejected", "replaced": "replaced"}
PROFILE = "profile:"  # the kind of an assessment export read through the import profile named after it
LIMIT_MB = st.get_option("server.maxUploadSize")
UPLOADS = Path(warehouse().settings.data_dir) / "uploads"  # beside the warehouse, on its disk


@dataclass(frozen=True)
class Upload:
    """What one "Check and load" sent: a file of one kind, or an assessment export's files, which
    go through their import profile together and land together or not at all. On disk a file of
    one kind has a name of ours; an export's files keep the sender's, which its messages name."""

    name: str  # as the sender named it, for the page and the audit log
    kind: str
    paths: tuple[Path, ...]
    vendor: str | None
    by_district: bool

    def load(self, replace: bool) -> list[ingest.Outcome]:
        if self.kind.startswith(PROFILE):
            return exports.import_files(warehouse(), self.kind.removeprefix(PROFILE), list(self.paths), replace=replace)
        [path] = self.paths
        vendor = self.vendor if self.kind in VENDOR_KINDS else None
        submission = ingest.Submission(path, self.kind, vendor, by_district=self.by_district, file_name=self.name)
        return ingest.ingest(warehouse(), [submission], replace=replace)


def load(upload: Upload, folder: str, replace: bool = False) -> None:
    """Ingests the files on disk and keeps what happened for the page to show. The folder goes
    when the files have landed or been turned away, and stays while a replacement awaits a yes."""
    name, kind = upload.name, upload.kind
    try:
        outcomes = upload.load(replace)
    except ingest.IngestRejected as rejected:
        problems = pd.DataFrame([vars(p) for p in rejected.problems], columns=["file", "row", "column", "value", "reason"])
        audit("ingest", {"file": name, "kind": kind, "status": "rejected", "problems": len(problems)})
        st.session_state["upload_result"] = ("rejected", name, problems)
    except exports.NotAnExport as refused:
        problems = pd.DataFrame([{"file": name, "row": None, "column": None, "value": None, "reason": str(refused)}])
        audit("ingest", {"file": name, "kind": kind, "status": "rejected", "problems": 1})
        st.session_state["upload_result"] = ("rejected", name, problems)
    except ingest.ReplaceUnconfirmed as unconfirmed:
        replacing = [o for o in unconfirmed.outcomes if o.removes_rows]
        audit("ingest", {"file": name, "kind": kind, "status": "asked to confirm a replacement",
                         "replaces": ", ".join(str(o.replaced_batch_id) for o in replacing),
                         "removes": sum(c.removed for o in replacing for c in o.changes)})
        st.session_state["upload_pending"] = (upload, folder, replacing)
        return
    except Exception:  # noqa: BLE001 - the sender gets words, the server log the traceback
        log.exception("loading an upload (%s) failed", kind)
        audit("ingest", {"file": name, "kind": kind, "status": "error"})
        st.session_state["upload_result"] = ("error", name, None)
    else:
        landed = [o for o in outcomes if o.status != "unchanged"]
        audit("ingest", {"file": name, "kind": kind, "status": "accepted" if landed else "unchanged",
                         "rows": sum(o.rows for o in landed),
                         "replaced": ", ".join(str(o.replaced_batch_id) for o in landed if o.replaced_batch_id) or None})
        st.session_state["upload_result"] = ("accepted" if landed else "unchanged", name, outcomes)
    shutil.rmtree(folder, ignore_errors=True)


def confirm(replace: bool) -> None:
    upload, folder, replacing = st.session_state.pop("upload_pending")
    if replace:
        load(upload, folder, replace=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        audit("ingest", {"file": upload.name, "kind": upload.kind, "status": "replacement declined"})
        st.session_state["upload_result"] = ("kept", upload.name, replacing)


def export_kinds() -> dict[str, str]:
    """An assessment export per import profile the warehouse has (nwea-map is shipped)."""
    with warehouse().cursor() as cur:
        found = {name: label for name, _, label, *_ in profiles.history(cur)}  # in version order: the latest label
    found = found or {name: profile.label for name, profile in profiles.shipped().items()}
    return {f"{PROFILE}{name}": f"Assessment export: {label} (choose all its files)" for name, label in sorted(found.items())}


def kept_on_disk(uploaded, path: Path) -> None:
    """The upload written to disk a block at a time: it is never read into memory whole."""
    uploaded.seek(0)
    with open(path, "wb") as handle:
        shutil.copyfileobj(uploaded, handle, 1 << 20)


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
        "Load any kind of file, or every file of an assessment export at once. Files land whole or not at all; a "
        "vendor's file sent again for the same period replaces the earlier one, and both stay in the log."
    )
    kinds = {**VENDOR_KINDS, **DISTRICT_KINDS, **export_kinds()}

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
        "File", type=["csv", "parquet", "xlsx"], accept_multiple_files=me.role != "vendor",
        help=f"CSV, Parquet or Excel (first sheet), up to {LIMIT_MB} MB. One file, or every file of an assessment "
             "export (students and results, any terms) at once." if me.role != "vendor"
        else f"CSV, Parquet or Excel (first sheet), up to {LIMIT_MB} MB.",
    )
    uploaded = [] if uploaded is None else uploaded if isinstance(uploaded, list) else [uploaded]
    st.caption(
        f"Files up to {LIMIT_MB} MB. For a larger one, send it in parts (a week or a month at a time), "
        "or ask the district to load it with `ciboard ingest`."
    )
    sent = st.form_submit_button("Check and load", type="primary", icon=":material/upload:")

if sent and not uploaded:
    st.warning("Choose a file first.")
elif sent and len(uploaded) > 1 and not kind.startswith(PROFILE):
    st.warning("Several files at once are for an assessment export: send a file of this kind on its own. Nothing was "
               "loaded.")
elif sent:
    if "upload_pending" in st.session_state:  # new files replace the question about the last ones
        shutil.rmtree(st.session_state.pop("upload_pending")[1], ignore_errors=True)
    UPLOADS.mkdir(parents=True, exist_ok=True)
    for stale in UPLOADS.iterdir():  # left by a question never answered
        if stale.stat().st_mtime < time.time() - 86400:
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(dir=UPLOADS))
    names = [Path(u.name).name for u in uploaded]  # every message names a file as its sender did
    name = ", ".join(names)
    with st.spinner(f"Checking {name}…"):
        if kind.startswith(PROFILE):
            # An export's files are told apart by their headers and named by their own names.
            paths = []
            for number, (file, file_name) in enumerate(zip(uploaded, names)):
                (folder / str(number)).mkdir()
                paths.append(folder / str(number) / (file_name.strip(". ") or f"file{Path(file_name).suffix}"))
                kept_on_disk(file, paths[-1])
        else:
            paths = [folder / ("upload" + Path(name).suffix.lower())]
            kept_on_disk(uploaded[0], paths[0])
        st.session_state.pop("upload_result", None)
        load(Upload(name, kind, tuple(paths), vendor, by_district=me.role != "vendor"), str(folder))

pending = st.session_state.get("upload_pending")
if pending:
    _, _, replacing = pending
    for outcome in replacing:
        removed = sum(c.removed for c in outcome.changes)
        before = sum(c.rows_before for c in outcome.changes)
        st.warning(
            f"**{safe_text.markdown(outcome.file)} would replace submission {outcome.replaced_batch_id}** "
            f"({kinds.get(outcome.kind, outcome.kind)}, {outcome.period[0]:%b %-d} to {outcome.period[1]:%b %-d, %Y}) "
            f"**and remove {removed:,} of its {before:,} rows.** Nothing has landed yet. A corrected file replaces the "
            "whole period it covers: if this file holds only some of it, the rest would be gone.",
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
    replaced = ", ".join(str(o.replaced_batch_id) for o in replacing)
    yes, no = st.columns(2)
    yes.button(f"Replace submission{'s' if len(replacing) > 1 else ''} {replaced}", type="primary", icon=":material/sync:",
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
        kept = ", ".join(str(o.replaced_batch_id) for o in detail)
        st.info(f"{name} was not loaded; " + (f"submissions {kept} stay as they were." if len(detail) > 1
                                              else f"submission {kept} stays as it was."))
    else:
        for outcome in detail:
            file = name if len(detail) == 1 else safe_text.markdown(outcome.file)
            if outcome.status == "unchanged":
                st.info(f"{file} was loaded before; nothing changed.")
                continue
            removed = sum(c.removed for c in outcome.changes)
            replaced = (f", replacing submission {outcome.replaced_batch_id}" + (f" ({removed:,} rows removed)" if removed else "")
                        if outcome.replaced_batch_id else "")
            st.success(f"**{file}** landed: {outcome.rows:,} rows as submission {outcome.batch_id}{replaced}.")

st.subheader("Submission log")
log_rows = query("submission_log", start=filters.start.isoformat(), end=filters.end.isoformat())
outside = log_rows[log_rows["outside_contract"]]
if not outside.empty:
    vendors = sorted(outside["vendor_id"].unique())
    whose = f"of {vendors[0]}" if len(vendors) == 1 else f"of their vendor ({', '.join(vendors)})"
    st.warning(
        f"**{len(outside)} landed file(s) cover dates no contract {whose} reaches** (marked below). Their rows are "
        "kept and shown in the charts, but they count toward no payment and no schedule expects them. If the dates "
        "are wrong, send the file again with the right ones; if the contract runs longer, the district updates it.",
        icon=":material/event_busy:",
    )
log_rows = log_rows.assign(
    status=log_rows["status"].map(STATUS_WORDS).fillna(log_rows["status"]),
    timeliness=log_rows["timeliness"].fillna(""),
    outside_contract=log_rows["outside_contract"].map({True: "none", False: ""}),
)
st.dataframe(
    log_rows[["received_at", "vendor_id", "kind", "period_start", "period_end", "status", "outside_contract", "timeliness",
              "file_name", "rows_accepted", "rows_rejected", "batch_id", "replaced_by"]],
    hide_index=True,
    column_config={
        "received_at": st.column_config.DatetimeColumn("Received", format="YYYY-MM-DD HH:mm"),
        "vendor_id": "Vendor", "kind": "Kind", "file_name": st.column_config.TextColumn("File", width="medium"),
        "period_start": "From", "period_end": "To", "status": "Status", "timeliness": "Timeliness",
        "outside_contract": "Contract",
        "rows_accepted": st.column_config.NumberColumn("Rows landed", format="%d"),
        "rows_rejected": st.column_config.NumberColumn("Rows rejected", format="%d"),
        "batch_id": st.column_config.NumberColumn("Submission", format="%d"),
        "replaced_by": st.column_config.NumberColumn("Replaced by", format="%d"),
    },
)
