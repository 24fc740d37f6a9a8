"""Data map: the shared definition of every metric, the same text every chart shows."""

import streamlit as st

from ciboard.dashboard import data_map

st.title("Data map")
st.caption(
    "What each metric means, how it is measured, where the data comes from and when, and how far to trust it. "
    "Every chart links here; district, schools and vendors read the same definitions."
)

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
