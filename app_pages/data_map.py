"""Data map: the shared definition of every metric, the same text every chart shows; an
administrator edits it here (or with `ciboard metrics`), every save a version kept for good."""

import pandas as pd
import streamlit as st

from ciboard import metric_edits
from ciboard.dashboard import account, audit, data_map, disguised, scope, version, warehouse

st.title("Data map")
st.caption(
    "What each metric means, how it is measured, where the data comes from and when, and how far to trust it. "
    "Every chart links here; district, schools and vendors read the same definitions."
)
notice = st.session_state.pop("data_map_notice", None)
if notice:
    st.success(notice, icon=":material/check_circle:")


@st.cache_data(show_spinner=False)
def metric_targets(key: str, viewer: str, metric_id: str) -> pd.DataFrame:
    return disguised(metric_edits.targets(warehouse(), scope(), metric_id))


@st.cache_data(show_spinner=False)
def metric_history(key: str, metric_id: str) -> pd.DataFrame:
    return metric_edits.history(warehouse(), metric_id)


metrics = data_map()
search = st.text_input("Search", key="q", placeholder="attendance, SGP, exit ticket…", bind="query-params")
kinds = st.pills(
    "Kind", ["payment outcome", "process outcome", "context"], selection_mode="multi", key="kind", bind="query-params"
)
shown = metrics
if search:
    text = metrics.drop(columns=["target"]).astype(str).agg(" ".join, axis=1).str.lower()
    shown = shown[text.str.contains(search.lower(), regex=False)]
if kinds:
    shown = shown[shown["kind"].isin(kinds)]

admin = account().is_admin
st.write(f"{len(shown)} of {len(metrics)} metrics")
for metric in shown.to_dict(orient="records"):
    target = "" if metric["target"] != metric["target"] or metric["target"] is None else f" · target {metric['target']:g}"
    with st.expander(f"**{metric['label']}** · {metric['kind']}{target}", expanded=len(shown) <= 2):
        st.markdown(metric["definition"])
        left, right = st.columns(2)
        left.markdown(
            f"**Measured by** {metric['instrument']}\n\n**Unit** {metric['unit']}  \n"
            f"**Aggregation** {metric['aggregation']}  \n**Better** {metric['better']}  \n`{metric['metric_id']}`"
        )
        right.markdown(
            f"**Data source and access** {metric['source']}\n\n**Timing** {metric['timing']}\n\n"
            f"**Accuracy** {metric['accuracy']}"
        )
        targets = metric_targets(version(), str(scope()), metric["metric_id"])
        if len(targets) > (0 if pd.isna(metric["target"]) else 1):
            st.markdown("**Targets** by school year and vendor (the most specific applies)")
            st.dataframe(targets, hide_index=True, width="stretch", key=f"targets-{metric['metric_id']}",
                         column_config={"school_year": "School year", "vendor_id": "Vendor", "target": "Target",
                                        "set_by": "Set by"})
        gaps = metric_edits.gap_targets(warehouse(), metric["metric_id"])
        for gap in gaps.to_dict("records"):
            st.markdown(f"**Gap target** {metric_edits.gap_words(gap)}: shown on Disparities against the measured gap.")
        if admin:
            history = metric_history(version(), metric["metric_id"])
            st.caption(f"Version {history['version'].max()}, saved by {history['saved_by'].iloc[0]}"
                       + (f" on {history['saved_at'].iloc[0]:%b %-d, %Y %H:%M}" if pd.notna(history["saved_at"].iloc[0]) else ""))

if not admin:
    st.stop()

st.divider()
st.header("Edit the data map")
st.caption(
    "Administrators only. Each save is a new version with your name and the time; earlier versions stay readable "
    "below and with `ciboard metrics history`. A metric a contract pays on keeps how it is computed (aggregation, "
    "frequency, submitted as), and is never retired; a metric is retired only if nothing uses it."
)
ids = list(metrics["metric_id"])
labels = dict(zip(metrics["metric_id"], metrics["label"]))
# The metric searched for comes first: it is the one the administrator came to edit.
first = ids.index(shown["metric_id"].iloc[0]) if len(shown) else 0
chosen = st.selectbox("Metric", ids, index=first, format_func=lambda m: f"{labels[m]} ({m})", key="edit_metric")
current = metrics.set_index("metric_id").loc[chosen].to_dict()


def saved(message: str, detail: dict) -> None:
    audit("metric edit", detail)
    st.session_state["data_map_notice"] = message
    st.rerun()


with st.form("edit-metric"):
    edited = {}
    edited["label"] = st.text_input("Label", current["label"])
    edited["definition"] = st.text_area("Definition", current["definition"])
    cols = st.columns(4)
    edited["kind"] = cols[0].selectbox("Kind", metric_edits.KINDS, index=metric_edits.KINDS.index(current["kind"]))
    edited["unit"] = cols[1].text_input("Unit", current["unit"])
    edited["better"] = cols[2].selectbox("Better", metric_edits.BETTER, index=metric_edits.BETTER.index(current["better"]))
    target_text = cols[3].text_input("District target", "" if pd.isna(current["target"]) else f"{current['target']:g}",
                                     help="Empty: no target. Targets by school year and vendor: upload a file below.")
    edited["instrument"] = st.text_area("Measured by", current["instrument"])
    edited["source"] = st.text_area("Data source and access", current["source"])
    edited["timing"] = st.text_input("Timing", current["timing"])
    edited["accuracy"] = st.text_area("Accuracy", current["accuracy"])
    note = st.text_input("Why this change", key="edit_note")
    if st.form_submit_button("Save a new version", type="primary"):
        changes = {k: v for k, v in edited.items() if v != current[k]}
        try:
            target = None if not target_text.strip() else float(target_text)
        except ValueError:
            target = target_text
        if target != (None if pd.isna(current["target"]) else current["target"]):
            changes["target"] = target
        if not changes:
            st.info("Nothing changed: no version saved.")
        else:
            try:
                made = metric_edits.edit(warehouse(), account(), chosen,
                                         metric_edits.MetricFile("the form", {**changes, "note": note or None}, None, None))
            except metric_edits.MetricError as error:
                st.error("Nothing saved:\n\n" + "\n\n".join(f"- {p}" for p in error.problems))
            else:
                saved(f"Saved {labels[chosen]} version {made}.", {"metric": chosen, "version": made, "fields": sorted(changes)})

st.subheader("From a file")
st.caption("A TOML file as `ciboard metrics add` and `edit` take: [metric] with its fields, and optional [[targets]] "
           "(by school year, vendor or both) and [[gap_targets]]. `ciboard metrics show ID` prints one to start from.")
upload = st.file_uploader("Metric file", type=["toml"], key="metric_file")
action = st.segmented_control("Save as", ["a new version of the metric chosen", "a new metric"],
                              default="a new version of the metric chosen", key="file_action")
if upload is not None and st.button("Save the file", key="save_file"):
    try:
        given = metric_edits.read_toml(upload.getvalue(), upload.name)
        if action == "a new metric":
            made = metric_edits.add(warehouse(), account(), given)
            name = given.fields["id"]
        else:
            made = metric_edits.edit(warehouse(), account(), chosen, given)
            name = chosen
    except metric_edits.MetricError as error:
        st.error("Nothing saved:\n\n" + "\n\n".join(f"- {p}" for p in error.problems))
    else:
        saved(f"Saved {name} version {made} from {upload.name}.", {"metric": name, "version": made, "file": upload.name})

st.subheader("History")
history = metric_history(version(), chosen)
st.dataframe(
    history[["version", "saved_by", "saved_at", "note", "retired", "label", "target", "targets", "gap_targets",
             "definition"]],
    hide_index=True, width="stretch", key="history",
)

uses = metric_edits.uses(warehouse(), chosen)
if uses:
    st.info(f"{labels[chosen]} cannot be retired: {'; '.join(uses)}.", icon=":material/lock:")
else:
    with st.form("retire-metric"):
        why = st.text_input("Why retire it", key="retire_note")
        if st.form_submit_button(f"Retire {labels[chosen]}"):
            try:
                made = metric_edits.retire(warehouse(), account(), chosen, why)
            except metric_edits.MetricError as error:
                st.error(str(error))
            else:
                saved(f"Retired {labels[chosen]} (version {made}); its history stays.", {"metric": chosen, "retired": made})
