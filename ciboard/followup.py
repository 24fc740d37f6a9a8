"""Did the action move the data? The numbers a CI meeting reads against its records: how a
metric moved since a commitment was made or a PDSA cycle started, and the outcomes-data
part of the agenda, prefilled.

Every number comes through the query layer in the caller's scope, so a vendor's prefill
holds its own students only, and small cells stay hidden from everyone but analysts.
Results are plain JSON values (ISO dates, None for a missing number), so the snapshot a
finalised meeting keeps is exactly what the meeting saw.

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

import copy
import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ciboard import ci_records, comparisons, meetings, signal_store, signals, student_lists
from ciboard.access import Scope
from ciboard.appdb import AppDB
from ciboard.charts import format_change, format_value, group_value, in_sentence
from ciboard.ci_records import Commitment, PdsaCycle, Slice
from ciboard.queries import BOOLEAN_DIMENSIONS, DIMENSIONS, NOT_TUTORED, data_map, run
from ciboard.stats import compare, disparity, intervals
from ciboard.warehouse import VersionGone, Warehouse

BEFORE_WEEKS = 8
# The groups whose gaps a meeting checks every time: the disaggregations the CI guide asks for.
KEY_GROUPS = ("race_ethnicity", "gender", "econ_disadvantaged", "english_learner", "special_education", "baseline_band")
GAP_KINDS = ("payment outcome", "process outcome")
# A meeting reads the strongest signals first; the rest are a "show all" away.
TOP_SIGNALS = 10
LATE_STATUSES = ("late", "missing", "rejected")


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


@dataclass(frozen=True)
class Prefill:
    """The outcomes-data part of a meeting's agenda, as JSON values."""

    workgroup_id: int
    held_on: str
    since: str
    previous_meeting_id: int | None
    filters: dict
    warehouse_version: str
    signals: list[dict] = field(default_factory=list)
    signal_counts: dict = field(default_factory=dict)
    gaps: list[dict] = field(default_factory=list)
    late_or_missing: list[dict] = field(default_factory=list)
    commitments: list[dict] = field(default_factory=list)
    pdsa: list[dict] = field(default_factory=list)
    # Per follow-up list (ciboard.student_lists), its students now and at the previous meeting:
    # counts only, never student ids, so a packet can carry them to anyone at the table.
    follow_up: dict = field(default_factory=dict)
    # The server was still preparing this version's signals (ciboard.signal_store): a screen
    # shows the rest meanwhile, and nothing freezes a prefill without its signals.
    signals_pending: bool = False
    # The same for the other parts it prepares: "gaps", "movements" (of commitments and cycles).
    preparing: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """Whether a part is still being prepared: such a prefill is shown, never frozen."""
        return self.signals_pending or bool(self.preparing)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Prefill":
        return cls(**data)


# --- how a metric moved ---------------------------------------------------------------


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
    metric = _metric(warehouse, metric_id)
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
        "did": _number(did), "did_low": _number(low), "did_high": _number(high),
        "did_verdict": _verdict(metric, did, low, high),
    }


def _periods(warehouse, scope, metric, filters, since, until):
    if metric["frequency"] == "weekly":
        return _weekly_periods(warehouse, scope, metric, filters, since, until)
    return _window_periods(warehouse, scope, metric, filters, since, until)


def movement_stored(warehouse: Warehouse, scope: Scope, metric_id: str, slice: Slice | None, since: date,
                    until: date | None, *, wait: bool = True) -> dict | None:
    """`metric_movement(...).to_dict()`, from the one the server stored for this version where
    it has. While the server prepares it: with `wait`, waiting is sooner than computing it again
    beside it; without, None."""
    slice = slice or Slice()
    return signal_store.movement_of(warehouse, scope, metric_id, asdict(slice), since, until,
                                    lambda: metric_movement(warehouse, scope, metric_id, slice, since, until).to_dict(),
                                    wait=wait)


def movement(warehouse: Warehouse, scope: Scope, metric_id: str, slice: Mapping[str, Any], since: date,
             until: date | None) -> dict:
    """`metric_movement` as a dict, for `signal_store.prepare` (the slice as a dict)."""
    return metric_movement(warehouse, scope, metric_id, Slice(**slice), since, until).to_dict()


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
    return _number(difference), _number(low), _number(high), method


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
    start = _school_year_start(warehouse, scope, since)
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
            "value": _number(point["value"]),
            "center": _number(point["center"]),
            "lower": _number(point["lower"]),
            "upper": _number(point["upper"]),
        },
        "signals_after": int(len(special)),
        "chart_note": f"{len(special)} of {len(after)} weeks since then are special-cause points.",
    }


# --- the outcomes-data part of the agenda ----------------------------------------------


def outcomes_prefill(
    warehouse: Warehouse,
    db: AppDB,
    scope: Scope,
    workgroup_id: int,
    held_on: date,
    filters: Mapping[str, Any] | None = None,
    *,
    wait: bool = True,
) -> Prefill:
    """What the outcomes-data part of a meeting opens with: the control-chart signals since
    the workgroup's previous meeting (or the last eight weeks), the gaps between student
    groups that widened or narrowed since then, late, missing and rejected submissions, every
    open commitment with how its metric moved since it was made, and the PDSA cycles under way.

    `filters` are the filter bar's dimension filters (dates are the meeting's). A workgroup
    of vendors reads only those vendors' students. Without `wait`, what the server is still
    preparing for this version (signals, gaps, movements) is left out and the prefill says so
    (`signals_pending`, `preparing`).
    """
    group = meetings.workgroup(db, scope, workgroup_id)
    since, previous = meetings.look_back_from(db, scope, workgroup_id, held_on)
    narrowed = {k: v for k, v in (filters or {}).items() if k in DIMENSIONS and v not in (None, "", [])}
    if group.vendor_ids and "vendor_id" not in narrowed and scope.role != "vendor":
        narrowed["vendor_id"] = list(group.vendor_ids)
    start = _school_year_start(warehouse, scope, held_on)
    found = _signals(warehouse, scope, start, held_on, since, narrowed, wait)
    pending = found is None
    # What the server is preparing for this version is shown once it is ready, not computed here
    # beside it: on two cores that would double the wait for both.
    gaps = signal_store.gaps_of(warehouse, scope, since, held_on, narrowed, remembered_gap_changes, wait=wait)
    reviewed, cycles = meetings.under_review(db, scope, workgroup_id, held_on, narrowed.get("vendor_id") or ())
    movements_pending = []

    def moved(metric_id: str | None, slice: Slice, start: date) -> dict | None:
        if not metric_id:
            return None
        found = movement_stored(warehouse, scope, metric_id, slice, start, held_on, wait=wait)
        if found is not None:
            return found
        movements_pending.append(metric_id)
        return Movement(
            metric_id=metric_id, label=_metric(warehouse, metric_id)["label"], slice=json_value(asdict(slice)),
            since=start.isoformat(), until=held_on.isoformat(), status="being prepared",
            note="Being prepared for this version of the data: shown here in a moment.",
        ).to_dict()

    found = pd.DataFrame(columns=signals.SIGNAL_COLUMNS) if pending else found
    counts = found["point_type"].value_counts().to_dict() if not found.empty else {}
    return Prefill(
        workgroup_id=workgroup_id,
        held_on=held_on.isoformat(),
        since=since.isoformat(),
        previous_meeting_id=previous.id if previous else None,
        filters=json_value(narrowed),
        warehouse_version=warehouse.version(),
        signals=json_records(found),
        signal_counts={str(k): int(v) for k, v in counts.items()},
        gaps=gaps if gaps is not None else [],
        late_or_missing=_late_or_missing(warehouse, scope, since, held_on, narrowed),
        commitments=[_commitment_item(item, moved(item.commitment.metric_id, item.commitment.slice, item.commitment.made_on))
                     for item in reviewed],
        pdsa=[{"cycle": ci_records.as_json(cycle), "stage": cycle.stage, "study": moved(cycle.metric_id, cycle.slice, cycle.start_on)}
              for cycle in cycles],
        follow_up=follow_up_counts(warehouse, scope, since, held_on, narrowed),
        signals_pending=pending,
        preparing=[part for part, waiting in (("gaps", gaps is None), ("movements", bool(movements_pending))) if waiting],
    )


def follow_up_counts(
    warehouse: Warehouse, scope: Scope, since: date, until: date, filters: Mapping[str, Any] | None = None
) -> dict:
    """Each follow-up list's students on `until` and on `since` (the previous meeting), in the
    scope: None where the scope may not see so small a count."""
    now = student_lists.counts(warehouse, scope, until, filters)
    then = student_lists.counts(warehouse, scope, since, filters)
    return {key: {"now": now.get(key), "then": then.get(key)} for key in student_lists.LISTS}


def frozen_prefill(warehouse: Warehouse, db: AppDB, scope: Scope, meeting: ci_records.Meeting) -> Prefill | None:
    """A finalised meeting's snapshot, as the scope may see it, on its screen and in its packet.
    The meeting store gives a vendor the numbers of its own workgroups only; within them, a
    vendor keeps its own records and rows. A snapshot an analyst froze can hold small cells:
    others read them hidden. Its follow-up counts are exact then, and a count carries its noise
    from the students behind it, which the snapshot does not keep: a reader who may not see the
    students reads them counted again in its own scope from `warehouse`, the version the meeting
    pinned; where that is gone, with the small ones hidden."""
    if not meeting.snapshot:
        return None
    min_cell = warehouse.settings.min_cell_size
    data = copy.deepcopy(meeting.snapshot["prefill"])
    if scope.role == "vendor":
        own = (None, scope.vendor_id)
        seen_commitments = {c.id for c in meetings.commitments(db, scope)}
        seen_cycles = {p.id for p in meetings.pdsa_cycles(db, scope)}
        data["signals"] = [s for s in data["signals"] if s.get("vendor_id") in own]
        data["late_or_missing"] = [r for r in data["late_or_missing"] if r.get("vendor_id") in own]
        data["commitments"] = [c for c in data["commitments"] if c["commitment"]["id"] in seen_commitments]
        data["pdsa"] = [p for p in data["pdsa"] if p["cycle"]["id"] in seen_cycles]
        # Follow-up counts pool the workgroup's vendors: a vendor keeps them only when they are its own.
        if data["filters"].get("vendor_id") not in ([scope.vendor_id], scope.vendor_id):
            data["follow_up"] = {}
        data["filters"] = {k: v for k, v in data["filters"].items() if k != "vendor_id"}
    if data.get("follow_up") and scope.protects_follow_up_counts:
        if warehouse.version() == meeting.warehouse_version:
            data["follow_up"] = follow_up_counts(warehouse, scope, date.fromisoformat(data["since"]),
                                                 date.fromisoformat(data["held_on"]), data["filters"])
        else:
            # The students behind the counts are gone with their version: the small ones hidden.
            data["follow_up"] = {key: {when: n if n is None or n >= min_cell else None for when, n in moved.items()}
                                 for key, moved in data["follow_up"].items()}
    if scope.suppresses_small_cells:
        data["signals"] = [_hide_small(s, s.get("n"), min_cell, ("value", "center", "lower", "upper", "strength", "n"))
                           for s in data["signals"]]
        data["gaps"] = [_hide_small(g, g.get("n_now"), min_cell, ("gap_then", "gap_now", "value_now", "n_now",
                                                                    "change", "change_low", "change_high"))
                        for g in data["gaps"]]
        for item in data["commitments"]:
            item["movement"] = _hide_small_movement(item["movement"], min_cell)
        for item in data["pdsa"]:
            item["study"] = _hide_small_movement(item["study"], min_cell)
    return Prefill.from_dict(data)


def _hide_small(row: dict, n: Any, min_cell: int, measures: tuple[str, ...]) -> dict:
    if n is None or n >= min_cell:
        return row
    return {**row, **{m: None for m in measures}, "hidden": True}


def _hide_small_movement(movement: dict | None, min_cell: int) -> dict | None:
    if not movement or movement.get("status") != "ok":
        return movement
    if all(movement[p]["students"] >= min_cell for p in ("before", "after")):
        return movement
    return {**movement, "status": "hidden", "before": None, "after": None, "difference": None, "low": None,
            "high": None, "verdict": "", "signal": None,
            "note": f"Hidden: fewer than {min_cell} students stand behind one of the two periods."}


def _signals(warehouse, scope, start, end, since, filters, wait) -> pd.DataFrame | None:
    read_as, narrowed = signal_store.meeting_reading(scope, filters)
    found = signal_store.signals_of(warehouse, read_as, start=start, end=end, since=since, filters=narrowed, wait=wait)
    vendors = filters.get("vendor_id") or []
    if found is None or len(vendors) != 1 or read_as.role == "vendor":
        return found
    # Filtered to one vendor, the district's charts are that vendor's: each chart once.
    found["vendor_id"] = found["vendor_id"].fillna(vendors[0])
    return found.drop_duplicates(["metric_id", "vendor_id", "dimension", "group"]).reset_index(drop=True)


def snapshot(prefill: Prefill, filters: Mapping[str, Any] | None = None) -> dict:
    """What `meetings.finalise` freezes: the prefill and the filters on screen."""
    return {"prefill": prefill.to_dict(), "filters": json_value(dict(filters if filters is not None else prefill.filters))}


def finalise(
    warehouse: Warehouse,
    db: AppDB,
    scope: Scope,
    meeting_id: int,
    frozen: Mapping[str, Any] | None,
    *,
    by: str,
    revision: int | None = None,
    at: datetime | None = None,
) -> ci_records.Meeting:
    """Freezes a meeting's minutes with the numbers on screen (`frozen`, from `snapshot`) and
    pins the warehouse version those numbers were read from, so its packet is drawn from that
    version whatever is loaded later. A version deleted meanwhile cannot be pinned: the packet
    is then drawn afresh and says so."""
    version = ((frozen or {}).get("prefill") or {}).get("warehouse_version") or warehouse.version()
    record = f"meeting-{meeting_id}"
    try:
        warehouse.pin(version, record)
        pinned = True
    except VersionGone:
        pinned = False
    try:
        return meetings.finalise(db, scope, meeting_id, frozen, warehouse_version=version, by=by,
                                 revision=revision, at=at)
    except BaseException:
        if pinned:
            warehouse.release(version, record)
        raise


def remembered_gap_changes(
    warehouse: Warehouse, scope: Scope, since: date, until: date, filters: Mapping[str, Any] | None = None
) -> list[dict]:
    """`gap_changes`, computed once per data version and reading in this process: a meeting's
    prefill is drawn again whenever a commitment changes (its cache keys on them), and the
    hundred breakdowns behind the gaps do not move without new data."""
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in (filters or {}).items()))
    return copy.deepcopy(_gap_changes_of(warehouse, warehouse.version(), scope, since, until, frozen))


@functools.lru_cache(maxsize=64)
def _gap_changes_of(warehouse: Warehouse, version: str, scope: Scope, since: date, until: date, filters: tuple) -> list[dict]:
    return gap_changes(warehouse, scope, since, until, {k: list(v) if isinstance(v, tuple) else v for k, v in filters})


def gap_changes(
    warehouse: Warehouse, scope: Scope, since: date, until: date, filters: Mapping[str, Any] | None = None
) -> list[dict]:
    """Gaps between student groups that widened or narrowed beyond chance since `since`.

    For each payment and process metric and each key group dimension, a group's gap to the
    reference group (the largest one) is measured over the eight weeks with data before
    `since` (for assessments, the last window before) and over the weeks since (the latest
    window since). A gap moved when the interval of its change leaves out zero; that
    interval joins the two gaps' own intervals (each with students as the unit) as
    Newcombe joins two proportions', so it is wider than needed, never narrower.
    """
    filters = dict(filters or {})
    catalogue = data_map(warehouse)
    chosen = catalogue[catalogue["kind"].isin(GAP_KINDS) & (catalogue["aggregation"] != "median")]
    changes = []
    for metric in chosen.to_dict("records"):
        ranges = _gap_ranges(warehouse, scope, metric, since, until, filters)
        if ranges is None:
            continue
        spreads = [_student_rows(warehouse, scope, metric, dates, filters) for dates in ranges]
        for dimension in KEY_GROUPS:
            now = group_gaps(warehouse, scope, metric, dimension, ranges[1], filters, spreads[1])
            if now is None:
                continue
            reference = now.loc[now["is_reference"], "group"].iloc[0]
            then = group_gaps(warehouse, scope, metric, dimension, ranges[0], filters, spreads[0], reference=reference)
            if then is None:
                continue
            merged = now.merge(then, on="group", suffixes=("", "_then"))
            for row in merged[~merged["is_reference"]].to_dict("records"):
                moved = gap_change(
                    (row["difference"], row["diff_low"], row["diff_high"]),
                    (row["difference_then"], row["diff_low_then"], row["diff_high_then"]),
                )
                if moved is not None:
                    changes.append({
                        "metric_id": metric["metric_id"], "label": metric["label"], "dimension": dimension,
                        "group": str(row["group"]), "reference": str(reference),
                        "then_start": ranges[0][0].isoformat(), "then_end": ranges[0][1].isoformat(),
                        "now_start": ranges[1][0].isoformat(), "now_end": ranges[1][1].isoformat(),
                        "gap_then": _number(row["difference_then"]), "gap_now": _number(row["difference"]),
                        "value_now": _number(row["value"]), "n_now": int(row["n"]),
                        **moved,
                        "worse_off_now": bool((row["difference"] < 0) == (metric["better"] == "higher")),
                    })
    return sorted(changes, key=lambda c: -abs(c["change"]))


def _gap_ranges(warehouse, scope, metric, since, until, filters):
    """The two date ranges gaps are compared over, before and since `since`, as
    metric_movement chooses them; None when either has no data."""
    if metric["frequency"] == "weekly":
        series = run(warehouse, "series", scope, {"metric": metric["metric_id"], "end": until, **filters})
        earlier = series[series["period_start"] < since].tail(BEFORE_WEEKS)
        later = series[series["period_start"] >= since]
        if earlier.empty or later.empty:
            return None
        return (earlier["period_start"].min(), since - timedelta(days=1)), (since, until)
    windows = tested_windows(warehouse, scope, metric, filters, until)
    earlier = [(w["tested_from"], w["tested_to"]) for w in windows if w["tested_to"] < since]
    later = [(w["tested_from"], w["tested_to"]) for w in windows if w["tested_from"] >= since]
    return (earlier[-1], later[-1]) if earlier and later else None


def _student_rows(warehouse, scope, metric, dates, filters) -> pd.DataFrame | None:
    """Students' own values over the dates, for the spread of a repeated metric (analysts)."""
    if not scope.sees_students or (metric["aggregation"] not in ("rate", "proportion", "mean")):
        return None
    return run(warehouse, "student_values", scope, {
        "metric": metric["metric_id"], "metric_y": comparisons.partner_metric(metric["metric_id"]),
        "start": dates[0], "end": dates[1], **filters,
    })


def group_gaps(warehouse, scope, metric, dimension, dates, filters, students, reference=None):
    """Each group of `dimension` against `reference` (by default the largest) over the dates,
    with 95% intervals (ciboard.stats.disparity), from the cells the scope may see; None where
    the dimension is filtered to one value or fewer than two groups are shown."""
    if dimension in filters:
        return None
    params = {"metric": metric["metric_id"], "start": dates[0], "end": dates[1], **filters}
    cells = run(warehouse, "breakdown", scope, {**params, "by": dimension})
    # Hidden cells (small, or hidden to protect one) take no part in a gap.
    cells = cells[cells[dimension].notna() & ~cells["suppressed"]].reset_index(drop=True)
    cells["n"] = cells["n"].astype(int)
    if len(cells) < 2:
        return None
    if not comparisons.needs_students(metric, cells):
        students = None
    elif students is not None:
        students = students.assign(**{dimension: students[dimension].astype(str)})
        cells = cells.assign(**{dimension: cells[dimension].astype(str)})
    kind, inputs = comparisons.stats_inputs(cells, metric, [dimension], students)
    inputs = inputs.assign(group=inputs[dimension].astype(str))
    if reference is not None and reference not in set(inputs["group"]):
        return None
    return disparity.gaps(inputs, reference=reference, min_cell=warehouse.settings.min_cell_size, kind=kind)


def gap_change(now: tuple[float, float, float], then: tuple[float, float, float]) -> dict | None:
    """How a gap moved, from (gap, low, high) now and then: the change with an interval that
    joins the two gaps' intervals (MOVER, as Newcombe's joins two proportions'). None when
    either gap is hidden or the interval holds zero: the gap is where it was, as far as
    chance can tell."""
    if any(pd.isna(v) for v in (*now, *then)):
        return None
    gap, old = now[0], then[0]
    change, low, high = compare.difference_in_differences(now, then)
    if low <= 0 <= high:
        return None
    return {
        "change": _number(change), "change_low": _number(low), "change_high": _number(high),
        "direction": "widened" if abs(gap) > abs(old) else "narrowed",
        "reversed": bool(gap * old < 0),
    }


def _late_or_missing(warehouse, scope, since, held_on, filters) -> list[dict]:
    rows = run(warehouse, "quality", scope, {"start": since, "end": held_on}, today=held_on)
    rows = rows[rows["status"].isin(LATE_STATUSES)]
    vendors = (filters or {}).get("vendor_id")
    if vendors:
        rows = rows[rows["vendor_id"].isin(vendors if isinstance(vendors, (list, tuple)) else [vendors])]
    columns = ["vendor_id", "kind", "period_start", "period_end", "due_on", "received_at", "status", "rows_rejected"]
    return json_records(rows[columns])


def _commitment_item(item: meetings.OpenCommitment, movement: dict | None) -> dict:
    c: Commitment = item.commitment
    return {
        "commitment": ci_records.as_json(c), "status": item.status, "overdue": item.overdue,
        "days_overdue": item.days_overdue, "movement": movement,
    }


def summary(prefill: Prefill, warehouse: Warehouse) -> list[str]:
    """The prefill as short sentences, for the agenda text and the meeting packet."""
    catalogue = data_map(warehouse).set_index("metric_id")

    def metric(metric_id):
        return {"metric_id": metric_id, **catalogue.loc[metric_id].to_dict()}

    lines = []
    counts = prefill.signal_counts
    # A metric with no better direction signals high or low, neither concern nor improvement.
    neutral = {side: counts.get(f"special_cause_neutral_{side}", 0) for side in ("high", "low")}
    if prefill.signals_pending:
        lines.append(f"Since {prefill.since}: the control-chart signals are being prepared for this version of the data.")
    else:
        lines.append(
            f"Since {prefill.since}: {counts.get('special_cause_concern', 0)} control-chart signals of concern and "
            f"{counts.get('special_cause_improvement', 0)} of improvement"
            + (f"; {neutral['high']} high and {neutral['low']} low where no direction is better." if any(neutral.values()) else ".")
        )
    # Among the first lines: a meeting screen shows only a few.
    if prefill.follow_up:
        lines.append("Students to follow up: " + "; ".join(
            f"{in_sentence(student_lists.LISTS[key])} {_count(moved['now'])} (was {_count(moved['then'])} on {prefill.since})"
            for key, moved in prefill.follow_up.items()
        ) + ".")
    for s in prefill.signals[:5]:
        slice_parts = [s["vendor_id"]] if s.get("vendor_id") else []
        if s.get("dimension"):
            slice_parts.append(f"{s['dimension'].replace('_', ' ')}: {group_value(s['group'])}")
        who = ", ".join(slice_parts)
        folded = len(s.get("folded") or [])  # vendors and groups alike
        lines.append(
            f"{s['label']}{f' ({who})' if who else ''}: {format_value(s['value'], metric(s['metric_id']))} "
            f"in the week of {s['period_start']}, {s['rules']}"
            + (f"; the same in {folded} more vendor or group chart{'s' if folded > 1 else ''} within it." if folded else ".")
        )
    if "gaps" in prefill.preparing:
        lines.append("The gaps between student groups are being prepared for this version of the data.")
    for g in prefill.gaps[:5]:
        m = metric(g["metric_id"])
        dimension = g["dimension"].replace("_", " ")
        # "yes and no (english learner)" would not say who is behind.
        pair = (f"{dimension}: {group_value(g['group'])} and {dimension}: {group_value(g['reference'])}"
                if g["dimension"] in BOOLEAN_DIMENSIONS else f"{g['group']} and {g['reference']} ({dimension})")
        lines.append(
            f"{g['label']}: the gap between {pair} "
            f"{g['direction']}, from {format_change(g['gap_then'], m)} to {format_change(g['gap_now'], m)}."
        )
    late = pd.Series([r["status"] for r in prefill.late_or_missing], dtype=object).value_counts().to_dict()
    if late:
        lines.append("Submissions: " + ", ".join(f"{n} {status}" for status, n in sorted(late.items())) + ".")
    overdue = sum(1 for c in prefill.commitments if c["overdue"])
    lines.append(f"{len(prefill.commitments)} open commitments carried forward, {overdue} overdue.")
    for item in prefill.commitments:
        c, movement = item["commitment"], item["movement"]
        if movement:
            moved = Movement.from_dict(movement)
            beyond = f" Beyond its comparison: {moved.did_sentence(metric(c['metric_id']))}" if moved.did is not None else ""
            lines.append(f"{c['action']} ({c['owner']}): {moved.sentence(metric(c['metric_id']))}{beyond}")
    return lines


# --- plumbing -------------------------------------------------------------------------


def _count(students: int | None) -> str:
    return "too few to show" if students is None else f"{students:,}"


def _metric(warehouse: Warehouse, metric_id: str) -> dict:
    catalogue = data_map(warehouse).set_index("metric_id")
    if metric_id not in catalogue.index:
        raise ValueError(f"unknown metric {metric_id!r}; the metrics are {', '.join(sorted(catalogue.index))}")
    return {"metric_id": metric_id, **catalogue.loc[metric_id].to_dict()}


def _school_year_start(warehouse: Warehouse, scope: Scope, day: date) -> date | None:
    years = run(warehouse, "choices", scope).query("dimension == 'school_year'")
    holding = years[(years["starts_on"] <= day) & (years["ends_on"] >= day)]
    return holding["starts_on"].iloc[0] if not holding.empty else None


def _number(value: Any) -> float | None:
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
        return _number(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return value


def json_records(frame: pd.DataFrame) -> list[dict]:
    """A frame's rows as dicts of plain JSON values (`json_value`), as snapshots store them."""
    return [json_value(row) for row in frame.to_dict("records")]
