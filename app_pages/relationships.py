"""Relationships: does one metric move with another? Pearson's correlation with its interval,
over students (analysts) or over student groups (everyone)."""

import pandas as pd
import streamlit as st

from ciboard import charts
from ciboard.dashboard import (
    about, chart_footer, metric_picker, query, scope, warehouse,
)
from ciboard.filters import MULTI, YES_NO, group_labels, in_filter_order
from ciboard.stats import intervals


NAMES = {dimension: name for dimension, (_, name) in {**MULTI, **YES_NO}.items()}
# Colours stay readable up to eight groups, so schools colour nothing.
COLOURS = ["vendor_id", "race_ethnicity", "gender", "econ_disadvantaged", "english_learner", "special_education",
           "grade", "baseline_band"]
GROUPS = ["school_id", "vendor_id", "grade", "race_ethnicity", "baseline_band", "gender", "econ_disadvantaged",
          "english_learner", "special_education"]
DRAWN = 3000  # student points drawn; statistics use every student
STRENGTH = ((0.3, "a weak"), (0.5, "a moderate"), (1.01, "a strong"))  # Cohen (1988)

filters = st.session_state["filters"]
analyst = scope().sees_students
min_cell = warehouse().settings.min_cell_size
if scope().role == "vendor":  # a vendor's students have one vendor: nothing to colour or group by
    COLOURS = [d for d in COLOURS if d != "vendor_id"]
    GROUPS = [d for d in GROUPS if d != "vendor_id"]

st.title("Relationships")
st.caption(
    "Does one measure move with another: do students who attend more also report stronger identity and "
    "self-efficacy, and do they grow more? Pearson's correlation, from −1 to +1, with its 95% interval. "
    "**A correlation is not a cause**: students who attend more differ in many other ways, so read it as a "
    "question for the meeting, not an answer."
)

controls = st.columns([3, 3, 2, 2])
with controls[0]:
    x_metric = metric_picker("Across (x)", key="metric", default="tutoring_attendance_rate")
with controls[1]:
    y_metric = metric_picker("Up (y)", key="metric_y", default="sel_efficacy", exclude=(x_metric["metric_id"],))
with controls[2]:
    # Student rows reach analysts only; everyone else sees groups of at least min_cell students.
    units = ["Students", "Groups"] if analyst else ["Groups"]
    unit = st.segmented_control("Each point is", units, default=units[0], key="points", bind="query-params") or units[0]
with controls[3]:
    colour = st.selectbox(
        "Colour by", ["nothing", *COLOURS], format_func=lambda d: NAMES.get(d, d), key="colour", bind="query-params",
    )
colour = None if colour == "nothing" else colour


def lower(name: str) -> str:
    return name.lower().replace("english", "English")


def strength(r: float) -> str:
    return next(words for limit, words in STRENGTH if abs(r) < limit)


params = filters.params()
if unit == "Students":
    points = query("student_values", metric=x_metric["metric_id"], metric_y=y_metric["metric_id"], **params)
    points = points.dropna(subset=["x", "y"])
    who = "students"
else:
    with controls[2]:
        by = st.selectbox("Groups", [g for g in GROUPS if g != colour], format_func=NAMES.get, key="groups",
                          bind="query-params")
    pair = {"by": by, "by2": colour, **params}
    xs = query("breakdown", metric=x_metric["metric_id"], **pair)
    ys = query("breakdown", metric=y_metric["metric_id"], **pair)
    keys = [by, colour] if colour else [by]
    points = xs[[*keys, "value", "n", "small_cell"]].merge(
        ys[[*keys, "value", "n", "small_cell"]], on=keys, suffixes=("_x", "_y"),
    ).rename(columns={"value_x": "x", "value_y": "y"})
    # A group too small to show is left out of the chart and the correlation, and counted.
    small = points["small_cell_x"] | points["small_cell_y"]
    left_out = int(small.sum())
    points = points[~small].assign(n=lambda f: f[["n_x", "n_y"]].min(axis=1)).dropna(subset=["x", "y"])
    points = in_filter_order(points, by, filters.labels).drop(columns=["small_cell_x", "small_cell_y"])
    points = points.assign(label=group_labels(points[by], by, filters.labels))
    who = "groups"

# Nothing pairs up: say which measure has no data at all (a district may not have loaded it yet).
missing = [] if len(points) else [
    m for m in (x_metric, y_metric) if query("breakdown", metric=m["metric_id"], by="vendor_id", **params).empty
]
if missing:
    st.info(f"No data for {' or '.join(charts.in_sentence(m['label']) for m in missing)} with these filters: nothing to relate.")
    st.stop()
if colour:
    points = in_filter_order(points, colour, filters.labels)
    points = points.assign(**{f"{colour}_label": group_labels(points[colour], colour, filters.labels)})
r, low, high, n = intervals.correlation(points["x"], points["y"])
if n < 4 or pd.isna(low):
    st.info(f"Too few {who} with both measures for a correlation ({n}); widen the filters.")
    st.stop()

ci = f"95% CI {low:+.2f} to {high:+.2f}"
kind = "no relationship to speak of"
if abs(r) >= 0.1:
    kind = f"{strength(r)} {'positive' if r > 0 else 'negative'} relationship"
st.markdown(
    f"**r = {r:+.2f}** ({ci}) across **{n:,} {who}**: {kind} between {charts.in_sentence(x_metric['label'])} and "
    f"{charts.in_sentence(y_metric['label'])}, {filters.describe()}."
)
drawn = points
if unit == "Students" and len(points) > DRAWN:
    drawn = points[points.index.isin(points.sample(DRAWN, random_state=0).index)]  # in the legend's order
if unit == "Groups":
    # On the chart a school or vendor is named by its id, in full on hover.
    drawn = drawn.assign(short=drawn[by].astype(str) if by in ("school_id", "vendor_id") else drawn["label"])
st.plotly_chart(
    charts.scatter_figure(
        drawn, x_metric=x_metric, y_metric=y_metric, colour=f"{colour}_label" if colour else None,
        text="short" if unit == "Groups" and len(points) <= 40 else None,
        hover="label" if unit == "Groups" else "student_key",
    ),
    width="stretch", key="scatter",
)
if unit == "Students":
    note = "Each point is a student: their own value of each measure over the dates chosen."
    if len(drawn) < len(points):
        note += (f" {len(drawn):,} of the {len(points):,} students are drawn, at random, to keep the chart "
                 "readable; r uses them all.")
else:
    note = (
        f"Each point is a group of students ({lower(NAMES[by])}{' × ' + lower(NAMES[colour]) if colour else ''}), "
        "sized by its students; each group counts once in r, whatever its size. A relationship between groups "
        "need not hold for the students within them."
    )
    if left_out:
        note += f" {left_out} group{'s' if left_out > 1 else ''} with fewer than {min_cell} students left out."
st.caption(note)

if colour:
    st.subheader(f"Within each {lower(NAMES[colour])}{'' if colour in ('vendor_id', 'grade') else ' group'}")
    within = []
    for name, rows in points.groupby(f"{colour}_label", sort=False):
        r_g, low_g, high_g, n_g = intervals.correlation(rows["x"], rows["y"])
        within.append({NAMES[colour]: name, "r": r_g, "low": low_g, "high": high_g, who.capitalize(): n_g})
    within = pd.DataFrame(within)
    st.dataframe(
        within, hide_index=True, width="stretch", key="within",
        column_config={
            "r": st.column_config.NumberColumn("r", format="%+.2f"),
            "low": st.column_config.NumberColumn("95% CI from", format="%+.2f"),
            "high": st.column_config.NumberColumn("to", format="%+.2f"),
            who.capitalize(): st.column_config.NumberColumn(format="localized"),
        },
    )
    st.caption(
        "A relationship that holds overall but not within groups (or the reverse) is a clue that the groups "
        "differ, not the students."
    )

left, right = st.columns(2)
with left:
    about(x_metric)
with right:
    about(y_metric)
chart_footer(
    points.drop(columns=["n_x", "n_y"], errors="ignore"), None,
    name=f"relationship-{x_metric['metric_id']}-{y_metric['metric_id']}-{unit.lower()}",
    who=f"{x_metric['label']} against {y_metric['label']} · {filters.describe()}",
    students=int(points["n"].sum()) if unit == "Groups" else n,
)
