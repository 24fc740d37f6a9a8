"""Disparities: a metric by student group, each group's gap to a reference group with its
interval, two dimensions crossed, the gap over time, and the students to follow up."""

import math

import pandas as pd
import streamlit as st

from ciboard import charts, comparisons, metric_edits
from ciboard.dashboard import (
    chart_footer, fewer_than, metric_picker, metrics, query, scope, warehouse,
)
from ciboard.filters import MULTI, YES_NO, group_labels, in_filter_order
from ciboard.queries import DIMENSIONS
from ciboard.stats import disparity, spc


NAMES = {dimension: name for dimension, (_, name) in {**MULTI, **YES_NO}.items()}
BY = ["race_ethnicity", "gender", "econ_disadvantaged", "english_learner", "special_education", "grade",
      "baseline_band", "school_id", "vendor_id"]

filters = st.session_state["filters"]
analyst = scope().sees_students
min_cell = warehouse().settings.min_cell_size
if scope().role == "vendor":
    BY = [d for d in BY if d != "vendor_id"]  # a vendor's students have one vendor

st.title("Disparities")
st.caption(
    "Is every group of students getting the same tutoring and the same results? Each group's value with its "
    "95% confidence interval, and its gap to a reference group: a gap whose interval leaves out zero is larger "
    "than chance alone would give."
)

controls = st.columns([3, 2, 3])
with controls[0]:
    metric = metric_picker()
with controls[1]:
    by = st.selectbox("Groups", BY, format_func=NAMES.get, key="by", bind="query-params")


def lower(name: str) -> str:
    return name.lower().replace("english", "English")


params = {"metric": metric["metric_id"], **filters.params()}
breakdown = query("breakdown", **params, by=by)
if breakdown.empty:
    st.info("No data for this metric and these filters.")
    st.stop()
breakdown = in_filter_order(breakdown, by, filters.labels).reset_index(drop=True)
breakdown["group"] = group_labels(breakdown[by], by, filters.labels)
if len(breakdown) < 2:
    st.info(f"Only one {lower(NAMES[by])} group has data with these filters: there is no gap to show.")
    st.stop()
if breakdown["n"].isna().all():
    st.info(f"Every {lower(NAMES[by])} group has fewer than {min_cell} students with these filters: hidden.")
    st.stop()

# The student is the unit of every interval, by the rules in ciboard.comparisons.
repeated = comparisons.is_repeated(metric, breakdown)
students = None
if analyst and comparisons.needs_students(metric, breakdown):
    students = query("student_values", **params, metric_y=comparisons.partner_metric(metric["metric_id"]))
kind, inputs = comparisons.stats_inputs(breakdown, metric, [by], students)
method = comparisons.method_note(metric, repeated, students is not None)

options = list(breakdown["group"])
# A yes/no group is measured from "no", the students not at risk, so a gap reads as the
# at-risk group's shortfall; any other dimension from its largest group, the steadiest yardstick.
not_at_risk = breakdown.loc[~breakdown[by].astype(bool), "group"] if by in YES_NO else pd.Series(dtype=object)
default = not_at_risk.iloc[0] if len(not_at_risk) else breakdown.loc[breakdown["n"].idxmax(), "group"]
with controls[2]:
    reference = st.selectbox(
        "Gap to", options, index=options.index(default), key="reference", bind="query-params",
        help="The reference group each gap is measured from: for a yes/no group the students not in it, otherwise "
        "the largest group, unless you choose another.",
    )
gaps = disparity.gaps(inputs, reference=reference, min_cell=min_cell, kind=kind)
gaps.insert(1, by, breakdown[by].to_numpy())
base = gaps[gaps["is_reference"]].iloc[0]
others = gaps[~gaps["is_reference"] & gaps["difference"].notna()]
widest = others.loc[others["difference"].abs().idxmax()] if not others.empty else None

if base["suppressed"]:
    st.warning(f"The reference group, {reference}, has fewer than {min_cell} students: choose another to see gaps.")
elif others.empty:
    st.info(f"Every other group has fewer than {min_cell} students with these filters.")
else:
    beyond = not math.isnan(widest["diff_low"]) and (widest["diff_low"] > 0 or widest["diff_high"] < 0)
    low, high = (charts.format_change(widest[end], metric) for end in ("diff_low", "diff_high"))
    interval = f" (95% CI {low} to {high})" if not math.isnan(widest["diff_low"]) else ""
    verdict = (
        "larger than chance alone would give" if beyond else "within what chance alone could give" if interval else ""
    )
    st.markdown(
        f"**{metric['label']}, {filters.describe()}.** The widest gap: **{widest['group']}** "
        f"{charts.format_value(widest['value'], metric)} against {charts.format_value(base['value'], metric)} for "
        f"**{reference}**, a gap of **{charts.format_change(widest['difference'], metric)}**{interval}"
        + (f", {verdict}." if verdict else ".")
    )



def raw(value) -> str:
    """A group's value as a gap target names it: yes/no groups as yes and no."""
    if isinstance(value, bool) or str(value) in ("True", "False"):
        return "yes" if str(value) == "True" else "no"
    return str(value)


# The metric's gap targets on these groups (set in the data map), each against the measured gap
# and its interval: met only if the whole interval is within the target.
drawn_gap_target = None
for target in metric_edits.gap_targets(warehouse(), metric["metric_id"], filters.school_year).to_dict("records"):
    if target["dimension"] != by:
        continue
    rows = gaps[[raw(v) == target["group_value"] for v in gaps[by]]]
    size = charts.format_change(target["gap"], metric).lstrip("+")
    words = metric_edits.gap_words(target)
    if rows.empty:
        st.info(f"Gap target ({words}): no {target['group_value']} group with these filters.", icon=":material/flag:")
        continue
    if raw(base[by]) != target["reference"]:
        st.info(f"Gap target ({words}): measured from {target['reference']}; choose it under 'Gap to' to read the gap "
                "against its target.", icon=":material/flag:")
        continue
    row = rows.iloc[0]
    drawn_gap_target = target["gap"] if drawn_gap_target is None else drawn_gap_target
    if pd.isna(row["difference"]):
        st.info(f"Gap target ({words}): {row['group']} has fewer than {min_cell} students with these filters.",
                icon=":material/flag:")
        continue
    measured = charts.format_change(row["difference"], metric)
    if pd.isna(row["diff_low"]):
        interval, verdict = "", "met" if abs(row["difference"]) <= target["gap"] else "not met"
    else:
        interval = (f" (95% CI {charts.format_change(row['diff_low'], metric)} to "
                    f"{charts.format_change(row['diff_high'], metric)})")
        if -target["gap"] <= row["diff_low"] and row["diff_high"] <= target["gap"]:
            verdict = "met: the whole interval is within the target"
        elif row["diff_high"] < -target["gap"] or row["diff_low"] > target["gap"]:
            verdict = "not met: the whole interval is beyond the target"
        else:
            verdict = "not yet sure: the interval reaches both sides of the target"
    year = f" for {target['school_year']}" if target["school_year"] else ""
    st.markdown(
        f":material/flag: **Gap target{year}: {row['group']} within {size} of {reference}.** "
        f"Measured gap {measured}{interval}: {verdict}."
    )

height = max(260, 46 * len(gaps) + 120)
left, right = st.columns(2)
with left:
    st.plotly_chart(
        charts.interval_figure(gaps, category="group", metric=metric, reference=base["value"],
                               reference_label=reference, title=f"{metric['label']} by {lower(NAMES[by])}",
                               height=height),
        width="stretch", key="groups",
    )
with right:
    st.plotly_chart(
        charts.gap_figure(gaps, metric=metric, reference_label=reference, title=f"Gap to {reference}",
                          height=height, gap_target=drawn_gap_target),
        width="stretch", key="gaps",
    )
colours = "" if metric["aggregation"] == "median" else (
    f" Orange: worse off than {reference} by more than chance would give; blue: better off; grey: within chance."
)
st.caption(method + colours)
chart_footer(
    gaps, metric, name=f"gaps-{metric['metric_id']}-by-{by}",
    who=f"{metric['label']} by {lower(NAMES[by])} · {filters.describe()}", students=int(breakdown["n"].sum()),
)

st.dataframe(
    pd.DataFrame({
        "Group": gaps["group"],
        "Students": [fewer_than() if pd.isna(n) else f"{n:,.0f}" for n in gaps["n"]],
        metric["label"]: [
            f"fewer than {min_cell} students" if hidden else charts.format_value(value, metric)
            for value, hidden in zip(gaps["value"], gaps["suppressed"])
        ],
        "95% CI": [
            "" if pd.isna(lo) else f"{charts.format_value(lo, metric)} – {charts.format_value(hi, metric)}"
            for lo, hi in zip(gaps["low"], gaps["high"])
        ],
        f"Gap to {reference}": [
            "reference" if is_reference else charts.format_change(difference, metric)
            for difference, is_reference in zip(gaps["difference"], gaps["is_reference"])
        ],
        "Gap 95% CI": [
            "" if pd.isna(lo) else f"{charts.format_change(lo, metric)} to {charts.format_change(hi, metric)}"
            for lo, hi in zip(gaps["diff_low"], gaps["diff_high"])
        ],
        "Ratio": gaps["ratio"],
    }),
    hide_index=True, width="stretch", key="gap-table",
    column_config={
        "Ratio": st.column_config.NumberColumn(format="%.2f", help="The group's value over the reference group's."),
    },
)

st.subheader("Crossed with a second dimension")
# Rows of vendors by default; of schools when there is one vendor to see (a vendor's own view,
# or the filters chose one), since a single row compares nothing.
one_vendor = scope().role == "vendor" or len(filters.chosen.get("vendor_id") or []) == 1
first = ("school_id",) if one_vendor else ("vendor_id", "school_id")
crossing = [d for d in dict.fromkeys((*first, *BY)) if d != by and not (one_vendor and d == "vendor_id")]
rows_by = st.selectbox(
    "Rows", crossing, format_func=NAMES.get, key="rows", bind="query-params",
    help="Each row's gaps are measured from the same reference group, within that row.",
)
crossed = in_filter_order(query("breakdown", **params, by=rows_by, by2=by), by, filters.labels)
crossed = in_filter_order(crossed, rows_by, filters.labels)
crossed = crossed.assign(row=group_labels(crossed[rows_by], rows_by, filters.labels),
                         group=group_labels(crossed[by], by, filters.labels))
# Each cell's gap gets its interval by the same rules as the groups above, with both
# dimensions as the cell's keys.
crossed_students = None
if students is not None:
    crossed_students = query("student_values", **params, metric_y=comparisons.partner_metric(metric["metric_id"]))
_, crossed_inputs = comparisons.stats_inputs(crossed, metric, [rows_by, by], crossed_students)
cells = []
for row, rows in crossed_inputs.groupby("row", sort=False):
    if reference in set(rows["group"]):
        rows = disparity.gaps(rows, reference=reference, min_cell=min_cell, kind=kind)
    else:
        rows = rows.assign(difference=math.nan, diff_low=math.nan, diff_high=math.nan, is_reference=False,
                           suppressed=rows["n"] < min_cell)
    cells.append(rows[["group", "value", "n", "difference", "diff_low", "diff_high", "is_reference", "suppressed"]]
                 .assign(row=row))
# No cells where no student has a value of the rows' dimension (district students have no vendor).
cells = pd.concat(cells, ignore_index=True) if cells else pd.DataFrame(
    columns=["group", "value", "n", "difference", "diff_low", "diff_high", "is_reference", "suppressed", "row"])
columns = [g for g in gaps["group"] if g != reference]
shown_cells = cells[cells["group"] != reference].assign(group=lambda f: pd.Categorical(f["group"], columns))
st.plotly_chart(
    charts.heatmap_figure(shown_cells.sort_values("group", kind="stable").assign(group=lambda f: f["group"].astype(str)),
                          metric=metric, min_cell=min_cell,
                          title=f"Gap to {reference}, within each {lower(NAMES[rows_by])}", zlabel="Gap"),
    width="stretch", key="heatmap",
)
chance = "" if metric["aggregation"] == "median" else (
    " A faded cell marked ≈ is a gap within what chance alone could give (its 95% interval holds zero); hover "
    "a cell for its interval."
)
st.caption(
    f"Red: the group is below {reference} in that row; blue: above.{chance} A blank cell means the group, or "
    f"{reference} in that row, has fewer than {min_cell} students."
)
chart_footer(
    cells.rename(columns={"row": rows_by + "_group"}), metric, name=f"gaps-{metric['metric_id']}-by-{rows_by}-and-{by}",
    who=f"{metric['label']} by {lower(NAMES[rows_by])} and {lower(NAMES[by])} · {filters.describe()}",
)

st.subheader("Is the gap changing?")
weekly = metric["frequency"] == "weekly"
trend_controls = st.columns([3, 2, 3])
with trend_controls[0]:
    candidates = [g for g in gaps["group"] if g != reference]
    default = candidates.index(widest["group"]) if widest is not None else 0
    focus = st.selectbox("Group", candidates, index=default, key="group", bind="query-params")
with trend_controls[1]:
    grains = ["month", "week"] if weekly else ["window"]
    grain = st.segmented_control("Period", grains, default=grains[0], key="gap_grain", bind="query-params") or grains[0]
panel = query("panel", **params, grain=grain, by=by).assign(group=lambda f: group_labels(f[by], by, filters.labels))
periods = []
for period_start, rows in panel.groupby("period_start"):
    pair = rows[rows["group"].isin([focus, reference])]
    gap, students = math.nan, int(pair.loc[pair["group"] == focus, "n"].sum())
    if set(pair["group"]) == {focus, reference}:
        period_gaps = disparity.gaps(pair.assign(mean=pair["value"], sd=math.nan), reference=reference,
                                     min_cell=min_cell, kind="mean")
        gap = period_gaps.loc[period_gaps["group"] == focus, "difference"].iloc[0]
    periods.append({"period_start": period_start, "students": students, "gap": gap})
periods = pd.DataFrame(periods, columns=["period_start", "students", "gap"])
if periods["gap"].notna().sum() < 2:
    st.info(f"{focus} or {reference} has fewer than {min_cell} students in most periods: no trend to chart.")
else:
    charted = spc.xmr(periods["gap"], direction="neutral").reset_index(drop=True)
    charted.insert(0, "period_start", periods["period_start"])
    charted.insert(1, "students", periods["students"])
    events = query("events", start=filters.start.isoformat(), end=filters.end.isoformat(), metric=metric["metric_id"],
                   vendor_id=filters.chosen.get("vendor_id"), school_id=filters.chosen.get("school_id"))
    latest = charted.dropna(subset=["value"]).iloc[-1]
    high, low = ((charted["point_type"] == f"special_cause_neutral_{side}").sum() for side in ("high", "low"))
    signals = high + low
    st.markdown(
        f"**{focus} − {reference}**, by {grain}: {charts.format_change(latest['value'], metric)} in the latest "
        f"{grain} ({latest['period_start']:%b %Y}), against a centre of {charts.format_change(latest['center'], metric)}. "
        + (f"{signals} {grain}{'s' if signals > 1 else ''} fired a rule (purple): the gap changed, "
           f"{high} high and {low} low; hover to see how."
           if signals else "No signal: the gap moved only as much as it usually does.")
    )
    st.plotly_chart(
        charts.gap_trend_figure(charted, metric, label=f"{focus} − {reference}", events=events),
        width="stretch", key="gap-trend",
    )
    st.caption(
        "Each point is the gap in one period; the dashed process limits show how much it moves when nothing has "
        "changed, so a point outside them, or a run on one side of the centre, is a real change in the gap."
        + ("" if charted["value"].notna().sum() >= 12
           else " With fewer than 12 periods the limits are unsettled: read them as a guide.")
    )
    chart_footer(
        charted.drop(columns=["target"], errors="ignore"), metric,
        name=f"gap-trend-{metric['metric_id']}-{by}-{grain}",
        who=f"{focus} − {reference}, {charts.in_sentence(metric['label'])} by {grain} · {filters.describe()}",
    )

if analyst:
    st.subheader("Students persistently absent from tutoring")
    st.caption(
        "For follow-up: the students who attended less than the chosen share of their scheduled tutoring sessions "
        "in the last weeks up to the end of the dates chosen. Only analysts see student rows."
    )
    absent_controls = st.columns([3, 2, 3])
    with absent_controls[0]:
        below = st.slider("Attended less than", 5, 95, 50, step=5, format="%d%%", key="below", bind="query-params")
    with absent_controls[1]:
        weeks = st.number_input("Over the last … weeks", 1, 12, 4, key="weeks", bind="query-params")
    dimensions = {d: v for d, v in filters.params().items() if d in DIMENSIONS}
    absent = query("absent_students", max_rate=below / 100, weeks=int(weeks), end=filters.end.isoformat(),
                   **dimensions)
    attendance = metrics()["tutoring_attendance_rate"]
    if absent.empty:
        st.success(f"No student attended less than {below}% of their sessions in the last {weeks} weeks.")
    else:
        st.markdown(
            f"**{len(absent):,} students** attended less than {below}% of their scheduled sessions in the "
            f"{weeks} weeks to {filters.end:%b %-d, %Y}; {(absent['sessions_attended'] == 0).sum():,} attended none."
        )
        shown = absent.assign(
            vendor=group_labels(absent["vendor_id"], "vendor_id", filters.labels),
            school=group_labels(absent["school_id"], "school_id", filters.labels),
            attended=absent["attendance_rate"] * 100,
            last=[f"{d:%b %-d, %Y}" if pd.notna(d) else "not in these weeks" for d in absent["last_week_attended"]],
        )
        st.dataframe(
            shown[["student_key", "vendor", "school", "grade", "attended", "sessions_attended", "sessions_scheduled",
                   "last"]],
            hide_index=True, width="stretch", key="absent", height=min(420, 38 + 35 * len(absent)),
            # Sized so every column, "Last attended" too, reads whole at 1440 px beside the sidebar.
            column_config={
                "student_key": st.column_config.TextColumn("Student", width="small"),
                "vendor": st.column_config.TextColumn("Vendor", width="medium"),
                "school": st.column_config.TextColumn("School", width="medium"),
                "grade": st.column_config.NumberColumn("Grade", width="small"),
                "attended": st.column_config.ProgressColumn("Attended", format="%.0f%%", min_value=0, max_value=100,
                                                            width="small"),
                "sessions_attended": st.column_config.NumberColumn("Sessions", width="small", help="Sessions attended"),
                "sessions_scheduled": st.column_config.NumberColumn("Scheduled", width="small"),
                "last": st.column_config.TextColumn("Last attended", width="medium", help="The week of the last session attended"),
            },
        )
    chart_footer(
        absent, attendance, name="absent-students",
        who=f"Students below {below}% tutoring attendance over {weeks} weeks to {filters.end:%b %-d, %Y} · "
        f"{filters.describe().split(' · ')[0]}",
        students=len(absent),
    )
