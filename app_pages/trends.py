"""Trends: is this a real change or noise? Any metric over time as an SPC chart."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from ciboard import charts, meetings, safe_text
from ciboard.dashboard import (
    chart_footer, disguised, metric_picker, metrics, min_cell, query, scope, vendor_ids, with_target_in_force,
)
from ciboard.filters import group_labels
from ciboard.session import app_db, presenting
from ciboard.signals import MIN_POINTS, chart, closures, windows
from ciboard.stats import spc

filters = st.session_state["filters"]
own_only = scope().role == "vendor"  # a vendor's own line, and all other vendors pooled beside it
one_vendor = (filters.chosen.get("vendor_id") or [])
PEERS = "all other vendors"
MATCHED = "students without tutoring, matched"


def charted_summary(metric: dict, grain: str, compare: str, split: str, rebase_on) -> str:
    """What the folded controls chart, in one line."""
    parts = [f"**{safe_text.markdown(metric['label'])}**", f"by {grain}"]
    if compare != "nothing":
        parts.append(f"compared with {compare.split(' (with')[0]}")
    if split != "nothing":
        parts.append(f"split by {split.replace('_id', '').replace('_', ' ')}")
    if rebase_on:
        parts.append(f"new limits from {rebase_on:%b %-d, %Y}")
    return " · ".join(parts)


st.title("Trends")
st.caption(
    "Each point is a period; between the dashed process limits lies the variation to expect when nothing has "
    "changed. Coloured points fired a rule (hover to see which), so the meeting can ask *why* the data moved "
    "rather than *whether* it did. Weeks of a break or closure are greyed and left out of the limits."
)

# On a shared screen the chart's controls fold under one line saying what is charted, so the
# chart itself fits the screen.
shared = presenting()
said = st.empty()
settings = st.expander("Change what is charted", icon=":material/tune:") if shared else st.container()
with settings:
    controls = st.columns([3, 2, 3, 2])
with controls[0]:
    metric = metric_picker()
# The target drawn is the one in force for the school year and the one vendor charted, if one is.
charted_vendor = scope().vendor_id or (vendor_ids(one_vendor)[0] if len(one_vendor) == 1 else None)
metric = with_target_in_force(metric, filters.school_year, charted_vendor)
weekly = metric["frequency"] == "weekly"
with controls[1]:
    grains = ["week", "month", "window"] if weekly else ["window"]
    grain = st.segmented_control("Period", grains, default=grains[0], key="grain", bind="query-params") or grains[0]
with controls[2]:
    comparisons = ["nothing", "last year", PEERS, MATCHED, "another metric"] if own_only else [
        "nothing", "last year", "the district (with a vendor filter)", f"{PEERS} (with one vendor filter)",
        f"{MATCHED} (with one vendor filter)", "another metric",
    ]
    if metric["metric_id"] == "tutoring_attendance_rate":
        comparisons.insert(1, "school attendance")
    if metric["metric_id"] == "sgp":
        comparisons.insert(1, "proficiency")
    # A vendor opens on its own line beside all other vendors pooled: its benchmark.
    compare = st.selectbox("Compare with", comparisons, index=comparisons.index(PEERS) if own_only else 0,
                           key="compare", bind="query-params")
with controls[3]:
    split = st.selectbox(
        "Split by", ["nothing", *(() if own_only else ("vendor_id",)), "school_id", "grade", "race_ethnicity", "gender",
                     "english_learner", "econ_disadvantaged", "special_education", "baseline_band"],
        format_func=lambda d: "nothing" if d == "nothing" else d.replace("_", " ").replace(" id", ""),
        key="split", bind="query-params",
    )



params = {"metric": metric["metric_id"], "grain": grain, **filters.params()}
series = query("series", **params)
if series.empty or series["value"].notna().sum() == 0:
    if not series.empty and series["suppressed"].all():
        st.info(f"Fewer than {min_cell()} students in every period with these filters: their values are hidden.")
    else:
        st.info("No data for this metric and these filters.")
    st.stop()

# Three windows a year cannot set control limits: they are compared, with intervals, instead.
by_window = grain == "window"
if not by_window:
    rebase_on = settings.columns([2, 5])[0].date_input(
        "Known change: new limits from", value=None, min_value=filters.start, max_value=filters.end,
        key="rebase", bind="query-params", format="YYYY-MM-DD",
        help="After a deliberate change (a new schedule, a PDSA cycle), limits from the old process hide the new one's signals.",
    )
events = query("events", start=filters.start.isoformat(), end=filters.end.isoformat(), metric=metric["metric_id"],
               vendor_id=filters.chosen.get("vendor_id"), school_id=filters.chosen.get("school_id"))
held = {"vendors": one_vendor or None, "schools": filters.chosen.get("school_id") or None}
if not by_window:
    charted = chart(series, metric, rebase=[rebase_on] if rebase_on else [], closed=closures(events, metric["metric_id"], **held), grain=grain)
# A PDSA cycle marks its start on every chart that holds some of the students it changed things for.
cycles = meetings.pdsa_marks(app_db(), scope(), metric["metric_id"], filters.chosen)
cycles = cycles[(cycles["starts_on"] >= filters.start) & (cycles["starts_on"] <= filters.end)]
if not cycles.empty:
    events = pd.concat([events, disguised(cycles)[[c for c in cycles.columns if c in events.columns]]], ignore_index=True)

overlays, second_axis = [], None
catalogue = metrics()
if compare == "last year":
    shifted = {**params, "start": (filters.start - timedelta(days=364)).isoformat(), "end": (filters.end - timedelta(days=364)).isoformat()}
    last_year = query("series", **shifted)
    if last_year.empty:
        st.caption("No data for the same weeks last year.")
    else:
        # Weeks a year apart are 52 weeks apart, so the same school week lines up.
        last_year["period_start"] = last_year["period_start"] + timedelta(days=364)
        overlays.append(("Last year", last_year))
elif compare.startswith("the district"):
    if filters.chosen.get("vendor_id"):
        district = query("series", **{**params, "vendor_id": None})
        # Every student of the district's records: tutored by any vendor or not tutored at all.
        overlays.append(("The district", district))
    else:
        st.caption("Choose a vendor in the filters to see it beside the district.")
elif compare.startswith(PEERS):
    if own_only or len(one_vendor) == 1:
        peers = query("peers", **params)
        if peers["value"].notna().any():
            overlays.append(("All other vendors", peers))
        else:
            st.caption("Too few other vendors' students in these filters for a benchmark.")
    else:
        st.caption("Choose one vendor in the filters to see it beside all the others.")
elif compare.startswith(MATCHED):
    # What the vendor's students would have had at the results of students no vendor tutors of the
    # same school, grade and baseline band, period by period (the Vendors page's matched comparison).
    if metric["aggregation"] == "median":
        st.caption("A median has no matched comparison: choose *Met growth target* for growth.")
    elif own_only or len(one_vendor) == 1:
        matched = query("matched", **params)
        matched = matched[matched["vendor_id"] == charted_vendor] if charted_vendor else matched
        if matched["expected"].notna().any():
            overlays.append(("Without tutoring, matched", matched.rename(columns={"expected": "value"})))
            st.caption(
                "The matched line is what these students would have had at the results of students no vendor tutors "
                "of the same schools, grades and baseline bands, in each period. Tutored students were chosen for a "
                "reason, which matching on the baseline band allows for only in part."
            )
        else:
            st.caption("Too few students without tutoring at these schools, grades and bands to match.")
    else:
        st.caption("Choose one vendor in the filters to see it beside students without tutoring.")
elif compare in ("school attendance", "proficiency", "another metric"):
    other_id = {"school attendance": "school_attendance_rate", "proficiency": "proficient"}.get(compare)
    if other_id is None:
        other_id = settings.selectbox(
            "Second metric", [m for m in catalogue if m != metric["metric_id"]], format_func=lambda m: catalogue[m]["label"],
            key="metric2", bind="query-params",
        )
    other = catalogue[other_id]
    other_grain = grain if other["frequency"] == "weekly" or grain == "window" else "window"
    other_series = query("series", **{**params, "metric": other_id, "grain": other_grain})
    if other_series["value"].notna().any():
        second_axis = (other["label"], other_series, other)
    elif other_series.empty:
        st.caption(f"No data for {charts.in_sentence(other['label'])} with these filters.")
    else:
        st.caption(f"{other['label']} is hidden: fewer than {min_cell()} students in every period.")

if shared:
    beside = catalogue[other_id]["label"] if compare == "another metric" else compare
    said.markdown(charted_summary(metric, grain, beside, split, None if by_window else rebase_on))

if by_window:
    table = windows(series, metric)
    latest = table.iloc[-1]
    interval = (f" (95% CI {charts.format_value(latest['low'], metric)} to {charts.format_value(latest['high'], metric)})"
                if pd.notna(latest["low"]) else "")
    change = (f" · {charts.window_change(latest, metric)} from the window before: {latest['verdict']}."
              if len(table) > 1 else "")
    st.markdown(
        f"**{metric['label']}**: {charts.format_value(latest['value'], metric)}{interval} in the latest window "
        f"({latest['period_start']:%b %Y}){change}"
    )
    st.plotly_chart(
        charts.window_figure(table, metric, events=events, overlays=overlays, second_axis=second_axis),
        width="stretch", key="trend",
    )
    st.caption(
        "Three assessment windows a year are too few to set control limits, so no point is called a special cause: "
        "each window's value has its 95% interval, and each step its change from the window before with its "
        "interval, counting students (wider than needed where a student has several observations, never narrower)."
    )
    chart_footer(table, metric, name=f"trend-{metric['metric_id']}-{grain}", who=f"{metric['label']} by window for {filters.describe()}")
else:
    icons = spc.summary(charted, direction="increase" if metric["better"] == "higher" else "decrease", target=metric["target"])
    headline = {
        "common_cause": "Common cause variation: no signal in the latest period.",
        "improvement_high": "Special cause: improving (high).",
        "improvement_low": "Special cause: improving (low).",
        "concern_high": "Special cause: a concern (high).",
        "concern_low": "Special cause: a concern (low).",
        "neutral_high": "Special cause (high).",
        "neutral_low": "Special cause (low).",
    }.get(icons["variation"], "")
    assurance = {
        "consistent_pass": "The target will be met consistently if nothing changes.",
        "consistent_fail": "The target will not be met if nothing changes: the process must change.",
        "hit_or_miss": "The target will be met in some periods and missed in others.",
    }.get(icons["assurance"], "")
    periods = int((charted["value"].notna() & ~charted["excluded"]).sum())
    if periods < MIN_POINTS:
        # As on the Overview: limits from a handful of points are unsettled, and a target read
        # against them says nothing yet.
        headline = (
            f"Only {periods} {grain}{'s' if periods > 1 else ''} with data: control limits need {MIN_POINTS}, "
            "so read them as a guide."
        )
        assurance = ""
    latest = charted.dropna(subset=["value"]).iloc[-1]
    st.markdown(
        f"**{metric['label']}**: {charts.format_value(latest['value'], metric)} in the latest {grain} "
        f"({latest['period_start']:%b %-d, %Y}) · {headline} {assurance}"
    )
    st.plotly_chart(
        charts.spc_figure(charted, metric, events=events, overlays=overlays, second_axis=second_axis, min_cell=min_cell()),
        width="stretch", key="trend",
    )
    if charted["excluded"].any():
        st.caption(
            "Greyed points are weeks a break or closure touched: not comparable with the others, so they are left out "
            "of the centre, the limits and the rules."
        )
    if charted["returning"].any():
        weeks = ", ".join(f"{day:%b %-d}" for day in charted.loc[charted["returning"], "period_start"])
        st.caption(
            f"The return from a break ({weeks}) fell outside the limits: it is still a signal, but its cause is on "
            "record, so it is left out of the centre and the limits, which it would pull off the rest of the year."
        )
    chart_footer(
        # With each period's small-cell flags: a download says which values are hidden, or flagged.
        charted.drop(columns=["target"], errors="ignore").assign(**series[["small_cell", "suppressed"]].reset_index(drop=True)),
        metric, name=f"trend-{metric['metric_id']}-{grain}",
        who=f"{metric['label']} by {grain} for {filters.describe()}",
        students=None if series["n"].isna().all() else int(series["n"].max()),
    )

if overlays and overlays[0][0] == "All other vendors":
    st.caption(
        "All other vendors: every other vendor's students pooled, shown only in periods where at least two other "
        f"vendors and {min_cell()} students stand behind it."
    )

if split != "nothing":
    st.subheader(f"By {split.replace('_', ' ')}")
    panel = query("panel", **{**params, "by": split})
    groups = [g for g, rows in panel.groupby(split) if rows["value"].notna().sum() >= 3]
    if not groups:
        st.info("Every group is too small to chart with these filters.")
    names = dict(zip(groups, group_labels(pd.Series(groups, dtype=object), split, filters.labels)))
    columns = st.columns(2)
    for i, group in enumerate(groups):
        rows = panel[panel[split] == group]
        with columns[i % 2]:
            if by_window:
                figure = charts.window_figure(windows(rows, metric), metric, events=events, title=names[group], height=320)
            else:
                group_held = {**held, **({"vendors": [group]} if split == "vendor_id" else {"schools": [group]} if split == "school_id" else {})}
                closed = closures(events, metric["metric_id"], **group_held)
                figure = charts.spc_figure(chart(rows, metric, closed=closed, grain=grain), metric, events=events, title=names[group], height=320, min_cell=min_cell())
            figure.update_layout(showlegend=False)
            # Keyed by position: a key is sent to the browser, and a group's value may be a vendor id.
            st.plotly_chart(figure, width="stretch", key=f"split-{i}")
    chart_footer(panel, metric, name=f"trend-{metric['metric_id']}-by-{split}", who=f"by {split.replace('_', ' ')} · {filters.describe()}")
