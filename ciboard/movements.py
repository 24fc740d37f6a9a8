"""How a metric moved since a commitment was made or a PDSA cycle started: did the action
move the data?

Every number comes through the query layer in the caller's scope, and results are plain JSON
values (ISO dates, None for a missing number), so a meeting's snapshot keeps a movement
exactly as the meeting saw it.

How a metric moved, `metric_movement`:
- weekly metrics: the last eight weeks with data before `since` against the weeks from
  `since` to `until`, each pooled the way the metric aggregates (sum over sum for rates;
  the mean of all student-weeks for means and shares), exactly as the weekly series pools;
- assessment metrics (three windows a year): the last window tested wholly before `since`
  against the latest window tested from `since` on;
- the difference has a 95% interval with students as the unit, by the rules of
  ciboard.comparisons; the two periods hold mostly the same students, which these
  intervals treat as independent, so they are wider than needed, never narrower;
- the SPC chart is the trends page's chart of the slice over the school year; a signal is
  a special-cause point on or after `since`. Assessment windows are too few to chart;
- beside it, a difference in differences: the slice's change minus the change of its
  comparison over the same periods, the students no vendor tutors of the slice's schools where
  they have data for the metric, else all other vendors' students; its interval joins the two
  changes' intervals (ciboard.stats.compare.difference_in_differences). A rise every group saw
  is not the slice's doing. A vendor's comparison is all other vendors' students pooled, read
  as a facilitator reads them (small cells hidden, the rest noised) and shown only where at
  least two other vendors of enough students stand behind both periods, as the `peers`
  benchmark: the untutored students it sees only as the pooled matched comparison.
"""

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ciboard import comparisons, signals
from ciboard.access import Scope
from ciboard.charts import format_change, format_value, in_sentence
from ciboard.ci_records import PdsaCycle, Slice
from ciboard.queries import NOT_TUTORED, data_map, run
from ciboard.stats import compare, intervals
from ciboard.warehouse import Warehouse

BEFORE_WEEKS = 8


@dataclass(frozen=True)
class Period:
    start: str
    end: str
    points: int  # weeks (or windows) with data
    value: float | None
    students: int
    suppressed_points: int = 0


@dataclass(frozen=True)
class Movement:
    metric_id: str
    label: str
    slice: dict
    since: str
    until: str | None
    status: str  # "ok" or "not enough data"
    before: Period | None = None
    after: Period | None = None
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    verdict: str = ""  # "better", "worse", "no clear change", "no interval"
    signal: dict | None = None  # the latest special-cause point on or after `since`
    signals_after: int = 0
    chart_note: str = ""
    method: str = ""
    note: str = ""
    # The difference in differences: the comparison group, its values before and after, its
    # change, and the slice's change minus it, each with a 95% interval.
    comparison: str = ""
    comparison_before: float | None = None
    comparison_after: float | None = None
    comparison_change: float | None = None
    comparison_low: float | None = None
    comparison_high: float | None = None
    did: float | None = None
    did_low: float | None = None
    did_high: float | None = None
    did_verdict: str = ""
    comparison_note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def did_sentence(self, metric: Mapping[str, Any]) -> str:
        """One line: the change beyond its comparison's, and whether that is more than chance."""
        if self.did is None:
            return self.comparison_note
        return (
            f"{format_change(self.difference, metric)} against {format_change(self.comparison_change, metric)} for "
            f"{self.comparison}: {format_change(self.did, metric)} beyond the comparison (95% CI "
            f"{format_change(self.did_low, metric)} to {format_change(self.did_high, metric)}), "
            f"{VERDICTS[self.did_verdict]}."
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Movement":
        data = dict(data)
        for name in ("before", "after"):
            data[name] = Period(**data[name]) if data.get(name) else None
        return cls(**data)

    def sentence(self, metric: Mapping[str, Any]) -> str:
        """One line for a meeting: what the number did, and whether that is more than chance."""
        if self.status != "ok":
            return self.note
        change = format_change(self.difference, metric)
        interval = (
            f", 95% CI {format_change(self.low, metric)} to {format_change(self.high, metric)}"
            if self.low is not None else ""
        )
        line = (
            f"{format_value(self.before.value, metric)} → {format_value(self.after.value, metric)} "
            f"({change}{interval}): {VERDICTS[self.verdict]}"
        )
        if self.signal:
            line += f"; the control chart signals ({self.signal['rules']}) in the week of {self.signal['period_start']}"
        return line + "."


VERDICTS = {
    "better": "better, beyond chance",
    "worse": "worse, beyond chance",
    "no clear change": "no change beyond chance",
    "no interval": "no interval for medians",
}


def metric_movement(
    warehouse: Warehouse,
    scope: Scope,
    metric_id: str,
    slice: Slice | None,
    since: date,
    until: date | None = None,
) -> Movement:
    """The metric for the slice before `since` against from `since` to `until` (the latest
    data when None), with the difference's interval and the control chart's verdict."""
    slice = slice or Slice()
    metric = metric_of(warehouse, metric_id)
    filters = slice.filters()
    base = {
        "metric_id": metric_id, "label": metric["label"], "slice": json_value(asdict(slice)),
        "since": since.isoformat(), "until": until.isoformat() if until else None,
    }
    if metric["frequency"] == "weekly":
        before, after, cells = _weekly_periods(warehouse, scope, metric, filters, since, until)
        chart = _chart_after(warehouse, scope, metric, filters, since, until)
    else:
        before, after, cells = _window_periods(warehouse, scope, metric, filters, since, until)
        chart = {"chart_note": "Assessment windows come three times a year: too few points for a control chart."}
    if before is None and after is None:
        # Most often a kind of data the district has not loaded yet (exit tickets, assessments).
        note = f"No data for {in_sentence(metric['label'])}, before or since {since.isoformat()}, that this account may see."
        return Movement(**base, status="not enough data", note=note, **chart)
    if before is None or after is None:
        unit = "week" if metric["frequency"] == "weekly" else "assessment window"
        note = (
            f"Not enough data to compare: no {unit} with data {'before' if before is None else 'since'} "
            f"{since.isoformat()} that this account may see."
        )
        return Movement(**base, status="not enough data", before=before, after=after, note=note, **chart)
    difference, low, high, method = _difference(warehouse, scope, metric, filters, cells, before, after)
    compared = _compared(warehouse, scope, metric, filters, since, until, before, after, (difference, low, high))
    return Movement(
        **base, status="ok", before=before, after=after, difference=difference, low=low, high=high,
        verdict=_verdict(metric, difference, low, high), method=method, **chart, **compared,
    )


def _compared(warehouse, scope, metric, filters, since, until, before, after, change) -> dict:
    """The difference in differences of Movement: the slice's change against its comparison's."""
    vendors = filters.get("vendor_id") or ([scope.vendor_id] if scope.role == "vendor" else [])
    if not vendors or NOT_TUTORED in vendors:
        return {"comparison_note": "The slice is not one vendor's students: there is no comparison group to set beside it."}
    if None in change[1:]:
        return {"comparison_note": "The change has no interval (a median): no difference in differences."}
    if scope.role == "vendor":
        return _compared_with_peers(warehouse, scope, metric, filters, since, until, change)
    schools = filters.get("school_id")
    if not schools:
        cells = run(warehouse, "breakdown", scope, {
            "metric": metric["metric_id"], "by": "school_id", "start": date.fromisoformat(before.start),
            "end": date.fromisoformat(after.end), **filters,
        })
        schools = sorted(str(s) for s in cells["school_id"].dropna())
    choices = run(warehouse, "choices", scope).query("dimension == 'vendor_id'")
    others = [v for v in choices["value"] if v not in vendors and v != NOT_TUTORED]
    candidates = [
        ("students no vendor tutors at the same schools", {**filters, "vendor_id": [NOT_TUTORED], "school_id": schools}),
        ("all other vendors' students", {**{k: v for k, v in filters.items() if k != "school_id"}, "vendor_id": others}),
    ]
    for label, comparison in candidates:
        if not comparison["vendor_id"] or not comparison.get("school_id", True):
            continue
        periods = _periods(warehouse, scope, metric, comparison, since, until)
        if periods[0] is None or periods[1] is None or periods[2] is None:
            continue
        moved = _difference(warehouse, scope, metric, comparison, periods[2], periods[0], periods[1])[:3]
        if None in moved:
            continue
        return _did(metric, label, periods[0], periods[1], change, moved)
    return {"comparison_note": "Neither students no vendor tutors at these schools nor other vendors' students have"
                               " data before and after: no difference in differences."}


PEERS = "all other vendors' students, pooled"
# The scope a vendor's pooled comparison is read in: every vendor's cells, small ones hidden and
# the rest noised, as a facilitator reads them. Only the pool's values and change leave it.
POOL_SCOPE = Scope("facilitator")


def _compared_with_peers(warehouse, scope, metric, filters, since, until, change) -> dict:
    """A vendor's difference in differences: its change against all other vendors' students
    pooled (never the untutored, never one vendor), in the same schools and groups. As the
    `peers` benchmark, the pool must hold at least two other vendors of `min_cell_size`
    students in both periods, or one vendor's numbers would show through it."""
    choices = run(warehouse, "choices", POOL_SCOPE).query("dimension == 'vendor_id'")
    others = [v for v in choices["value"] if v != scope.vendor_id and v != NOT_TUTORED]
    pool = {**{k: v for k, v in filters.items() if k != "vendor_id"}, "vendor_id": others}
    too_few = {"comparison_note": "Fewer than two other vendors with enough students before and after: no pooled"
                                  " comparison to set beside the change."}
    if len(others) < 2:
        return too_few
    before, after, cells = _periods(warehouse, POOL_SCOPE, metric, pool, since, until)
    if before is None or after is None:
        return too_few
    for period in (before, after):
        sizes = run(warehouse, "breakdown", POOL_SCOPE, {
            "metric": metric["metric_id"], "by": "vendor_id", "start": date.fromisoformat(period.start),
            "end": date.fromisoformat(period.end), **pool,
        })
        if (~sizes["suppressed"] & (sizes["n"] >= warehouse.settings.min_cell_size)).sum() < 2:
            return too_few
    moved = _difference(warehouse, POOL_SCOPE, metric, pool, cells, before, after)[:3]
    if None in moved:
        return too_few
    return _did(metric, PEERS, before, after, change, moved)


def _did(metric, comparison: str, before: Period, after: Period, change, moved) -> dict:
    """Movement's comparison fields: the comparison's periods and change, and the slice's
    change beyond it with the interval joining the two."""
    did, low, high = compare.difference_in_differences(change, moved)
    return {
        "comparison": comparison, "comparison_before": before.value, "comparison_after": after.value,
        "comparison_change": moved[0], "comparison_low": moved[1], "comparison_high": moved[2],
        "did": number(did), "did_low": number(low), "did_high": number(high),
        "did_verdict": _verdict(metric, did, low, high),
    }


def _periods(warehouse, scope, metric, filters, since, until):
    if metric["frequency"] == "weekly":
        return _weekly_periods(warehouse, scope, metric, filters, since, until)
    return _window_periods(warehouse, scope, metric, filters, since, until)


def pdsa_study(warehouse: Warehouse, scope: Scope, cycle: PdsaCycle, until: date | None = None) -> Movement:
    """The cycle's measure before and after its start, to set beside its prediction: up to
    `until`, else the cycle's planned end, else the latest data."""
    return metric_movement(warehouse, scope, cycle.metric_id, cycle.slice, cycle.start_on, until or cycle.ends_on)


def _weekly_periods(warehouse, scope, metric, filters, since, until):
    series = run(warehouse, "series", scope, {"metric": metric["metric_id"], "grain": "week", "end": until, **filters})
    if series.empty:
        return None, None, None
    earlier = series[series["period_start"] < since].tail(BEFORE_WEEKS)
    later = series[series["period_start"] >= since]
    periods, cells = [], []
    for name, weeks in (("before", earlier), ("after", later)):
        shown = weeks[~weeks["suppressed"] & weeks["value"].notna()]
        if shown.empty:
            periods.append(None)
            continue
        start, end = weeks["period_start"].min(), weeks["period_start"].max() + timedelta(days=6)
        if name == "before":
            end = min(end, since - timedelta(days=1))
        students = _students(warehouse, scope, metric["metric_id"], filters, start, end)
        value, sd = _pooled(shown, metric)
        periods.append(Period(start.isoformat(), end.isoformat(), len(shown), value, students, len(weeks) - len(shown)))
        cells.append({"period": name, "value": value, "n": students, "numerator": shown["numerator"].sum(),
                      "denominator": shown["denominator"].sum(), "sd": sd, "start": start, "end": end})
    return periods[0], periods[1], pd.DataFrame(cells) if len(cells) == 2 else None


def _students(warehouse, scope, metric_id, filters, start, end) -> int:
    """How many students stand behind a period: a breakdown by a dimension the slice fixes is
    one row, counted distinctly. The whole district is counted per vendor and added up (a
    student who changed vendor counts twice; a hidden vendor not at all), so a district
    interval can come out wider than needed, never narrower."""
    by = next((name for name in filters), "vendor_id")
    cells = run(warehouse, "breakdown", scope, {"metric": metric_id, "by": by, "start": start, "end": end, **filters})
    return int(cells["n"].sum(skipna=True))


def _pooled(weeks: pd.DataFrame, metric) -> tuple[float, float]:
    """A period's value from its weekly rows, pooled as the metric aggregates, and the spread
    of single observations across the weeks (within and between weeks)."""
    if metric["aggregation"] == "median":
        return float(weeks["value"].median()), math.nan
    value = float(weeks["numerator"].sum() / weeks["denominator"].sum())
    counts, means, sds = (weeks[c].to_numpy(dtype=float) for c in ("denominator", "value", "sd"))
    total = counts.sum()
    if metric["aggregation"] == "rate" or total < 2:
        return value, math.nan
    squares = np.nansum((counts - 1) * sds**2) + np.sum(counts * (means - value) ** 2)
    return value, float(math.sqrt(squares / (total - 1)))


def tested_windows(warehouse, scope, metric, filters, until) -> list[dict]:
    """The assessment windows of the slice that this scope may see, each with the weeks it was
    actually tested (tested_from to tested_to): windows are dated by the calendar's window
    start, but tested weeks later, and which side of a date a window falls is judged on those."""
    params = {"metric": metric["metric_id"], "end": until, **filters}
    windows = run(warehouse, "series", scope, {**params, "grain": "window"})
    weeks = run(warehouse, "series", scope, {**params, "grain": "week"})
    starts = list(windows["period_start"]) + [date.max]
    found = []
    for i, row in enumerate(windows.to_dict("records")):
        tested = weeks[(weeks["period_start"] >= starts[i]) & (weeks["period_start"] < starts[i + 1])]["period_start"]
        if tested.empty or row["suppressed"] or pd.isna(row["value"]):
            continue
        found.append({**row, "tested_from": tested.min(), "tested_to": tested.max() + timedelta(days=6)})
    return found


def _window_periods(warehouse, scope, metric, filters, since, until):
    rows = tested_windows(warehouse, scope, metric, filters, until)
    earlier = [r for r in rows if r["tested_to"] < since]
    later = [r for r in rows if r["tested_from"] >= since]
    periods, cells = [], []
    for name, chosen in (("before", earlier[-1:]), ("after", later[-1:])):
        if not chosen:
            periods.append(None)
            continue
        r = chosen[0]
        periods.append(
            Period(r["tested_from"].isoformat(), r["tested_to"].isoformat(), 1, float(r["value"]), int(r["n"]))
        )
        cells.append({"period": name, "value": r["value"], "n": int(r["n"]), "numerator": r["numerator"],
                      "denominator": r["denominator"], "sd": r["sd"], "start": r["tested_from"], "end": r["tested_to"]})
    return periods[0], periods[1], pd.DataFrame(cells) if len(cells) == 2 else None


def _difference(warehouse, scope, metric, filters, cells, before, after):
    """after - before, with its interval: students as the unit (ciboard.comparisons)."""
    repeated = comparisons.is_repeated(metric, cells)
    students = None
    if scope.sees_students and comparisons.needs_students(metric, cells):
        students = pd.concat([
            run(warehouse, "student_values", scope, {
                "metric": metric["metric_id"], "metric_y": comparisons.partner_metric(metric["metric_id"]),
                "start": row["start"], "end": row["end"], **filters,
            }).assign(period=row["period"])
            for row in cells.to_dict("records")
        ])
    kind, inputs = comparisons.stats_inputs(cells, metric, ["period"], students)
    b, a = (inputs.set_index("period").loc[name] for name in ("before", "after"))
    if kind == "proportion":
        difference, low, high = intervals.newcombe_difference(a["k"], a["n"], b["k"], b["n"])
    else:
        difference, low, high = intervals.welch_difference(a["mean"], a["sd"], a["n"], b["mean"], b["sd"], b["n"])
    method = comparisons.method_note(metric, repeated, students is not None)
    return number(difference), number(low), number(high), method


def _listed(value) -> list | None:
    return None if value in (None, "", []) else [value] if isinstance(value, str) else list(value)


def _verdict(metric, difference, low, high) -> str:
    if low is None or high is None:
        return "no interval"
    if low <= 0 <= high:
        return "no clear change"
    up = difference > 0
    return "better" if up == (metric["better"] == "higher") else "worse"


def _chart_after(warehouse, scope, metric, filters, since, until) -> dict:
    start = school_year_start(warehouse, scope, since)
    series = run(warehouse, "series", scope, {
        "metric": metric["metric_id"], "grain": "week", "start": start, "end": until, **filters,
    })
    if series["value"].notna().sum() < signals.MIN_POINTS:
        return {"chart_note": f"Fewer than {signals.MIN_POINTS} weeks with data: too few to set control limits."}
    events = run(warehouse, "events", scope, {"start": start, "end": until})
    vendors = filters.get("vendor_id") or ([scope.vendor_id] if scope.role == "vendor" else None)
    closed = signals.closures(events, metric["metric_id"], vendors=_listed(vendors), schools=_listed(filters.get("school_id")))
    charted = signals.chart(series, metric, closed=closed)
    after = charted[charted["period_start"] >= since]
    special = after[after["point_type"].fillna("common_cause") != "common_cause"]
    if special.empty:
        return {"chart_note": "No special-cause point since then: the weeks vary within the control limits."}
    point = special.iloc[-1]
    return {
        "signal": {
            "period_start": point["period_start"].isoformat(),
            "point_type": point["point_type"],
            "rules": signals.rules_fired(point),
            "value": number(point["value"]),
            "center": number(point["center"]),
            "lower": number(point["lower"]),
            "upper": number(point["upper"]),
        },
        "signals_after": int(len(special)),
        "chart_note": f"{len(special)} of {len(after)} weeks since then are special-cause points.",
    }


# --- plumbing -------------------------------------------------------------------------


def metric_of(warehouse: Warehouse, metric_id: str) -> dict:
    catalogue = data_map(warehouse).set_index("metric_id")
    if metric_id not in catalogue.index:
        raise ValueError(f"unknown metric {metric_id!r}; the metrics are {', '.join(sorted(catalogue.index))}")
    return {"metric_id": metric_id, **catalogue.loc[metric_id].to_dict()}


def school_year_start(warehouse: Warehouse, scope: Scope, day: date) -> date | None:
    years = run(warehouse, "choices", scope).query("dimension == 'school_year'")
    holding = years[(years["starts_on"] <= day) & (years["ends_on"] >= day)]
    return holding["starts_on"].iloc[0] if not holding.empty else None


def number(value: Any) -> float | None:
    """A number as a snapshot keeps it: to 12 significant digits, so the last bits a parallel
    sum leaves to chance (DuckDB adds in whatever order its threads finish) do not make the
    same meeting's numbers differ from one computation to the next."""
    if value is None or pd.isna(value) or (isinstance(value, float) and math.isinf(value)):
        return None
    return float(f"{float(value):.12g}")


def json_value(value: Any) -> Any:
    """Plain JSON values: dates as ISO text, numpy numbers as Python's, NaN as None."""
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series)):
        return [json_value(v) for v in value]
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return number(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return value
