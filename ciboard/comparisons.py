"""How groups of students are compared fairly: the student is the unit of every interval.

A rate's sessions or days, and a proportion's student-weeks or windows, cluster within
students: a binomial over them is several times too narrow (in the demo about three times
for attendance, enough to call a 2-point gap real when it is not). The value of a group is
always the one every page shows; only its spread follows these rules:
- one observation per student: Wilson for shares, t for means, exactly;
- several per student, analysts: the spread of students' own values (the student_values
  view), with students as n, as for a mean: the linearised variance of a pooled rate when
  students have similar numbers of sessions;
- several per student, other viewers (no student rows reach them): a share with students as
  n, the widest spread a student's share can have; a mean with the spread of single
  observations. Both bound the truth from above: wider than needed, never narrower;
- medians (growth percentiles): no interval.
"""

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd


def is_repeated(metric: Mapping[str, Any], cells: pd.DataFrame) -> bool:
    """Whether a student contributes several observations to a cell of this metric."""
    return metric["aggregation"] == "rate" or bool((cells["denominator"] > cells["n"]).any())


def needs_students(metric: Mapping[str, Any], cells: pd.DataFrame) -> bool:
    return is_repeated(metric, cells) and metric["aggregation"] != "median"


def partner_metric(metric_id: str) -> str:
    """The metric student_values pairs with: school attendance is recorded for every enrolled
    student, so pairing with it leaves no one out."""
    return "tutoring_attendance_rate" if metric_id == "school_attendance_rate" else "school_attendance_rate"


def stats_inputs(
    cells: pd.DataFrame, metric: Mapping[str, Any], keys: list[str], students: pd.DataFrame | None = None
) -> tuple[str, pd.DataFrame]:
    """Rows of a view (value, n, sd) as the inputs of ciboard.stats: (kind, frame with k and n,
    or mean, sd and n). `students` is the student_values view, for analysts only."""
    if metric["aggregation"] == "median":
        return "mean", cells.assign(mean=cells["value"], sd=math.nan)
    if students is not None:
        spread = students.groupby(keys)["x"].std().rename("spread").reset_index()
        cells = cells.merge(spread, on=keys, how="left")
        # A cell of one student has no spread of its own; it adds nothing to the variance.
        return "mean", cells.assign(mean=cells["value"], sd=cells["spread"].where(cells["n"] > 1, 0.0))
    if metric["aggregation"] in ("rate", "proportion"):
        return "proportion", cells.assign(k=(cells["value"] * cells["n"]).clip(lower=0, upper=cells["n"]))
    return "mean", cells.assign(mean=cells["value"], sd=cells["sd"].fillna(0.0))


def method_note(metric: Mapping[str, Any], repeated: bool, with_students: bool) -> str:
    """One sentence under a chart saying how its intervals were made."""
    if metric["aggregation"] == "median":
        return "Growth percentiles are compared as medians, which have no interval here: read small gaps with care."
    if with_students:
        return (
            "Intervals count students, not sessions or weeks: a student's observations go together, so each "
            "interval comes from how much students' own values vary around their group's."
        )
    if repeated:
        return (
            "Intervals count students, not sessions or weeks, and without student rows they allow the widest "
            "spread a student's value can have: wider than needed, so a difference they show is real, and one "
            "they hide may still be."
        )
    return "Wilson intervals for shares and t intervals for means, one observation per student."
