"""Audit log (administrators): sign-ins, failed sign-ins, downloads, exports, ingests and
account changes: who, what, when."""

import pandas as pd
import streamlit as st

from ciboard import accounts
from ciboard.dashboard import audit
from ciboard.session import app_db

st.title("Audit log")
st.caption("Every sign-in (and failed one), download, export, ingest and account change, newest first.")

log = pd.DataFrame(accounts.audit_log(app_db(), limit=5000))
if log.empty:
    st.info("Nothing has been recorded yet.")
    st.stop()
left, middle, right = st.columns(3)
actions = left.multiselect("What", sorted(log["action"].unique()), placeholder="Everything")
people = middle.multiselect("Who", sorted(log["username"].dropna().unique()), placeholder="Everyone")
failed_only = right.toggle("Failures only")
shown = log
if actions:
    shown = shown[shown["action"].isin(actions)]
if people:
    shown = shown[shown["username"].isin(people)]
if failed_only:
    shown = shown[shown["outcome"] != "ok"]
st.write(f"{len(shown):,} of {len(log):,} records")
columns = ["at", "username", "role", "vendor_id", "action", "detail", "outcome"]
st.dataframe(
    shown[columns],
    hide_index=True,
    column_config={"at": "When", "username": "Who", "role": "Role", "vendor_id": "Vendor", "action": "What",
                   "detail": "Detail", "outcome": "Outcome"},
)
st.download_button(
    "Download CSV", shown[columns].to_csv(index=False).encode(), file_name="audit-log.csv", mime="text/csv",
    icon=":material/download:", on_click=audit, args=("export", {"file": "audit-log.csv", "rows": len(shown)}),
)
