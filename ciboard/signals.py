"""SPC on the warehouse: a series charted the way its metric aggregates, and the signals
across metrics x vendors x student groups that a meeting should talk about.

Rates and proportions are charted as p-charts of their numerators and denominators. A
week's denominator is thousands of sessions clustered within students, so the plain
p-chart's binomial limits would be far too narrow and flag nearly every week; Laney's p'
chart scales them by the variation actually seen between periods (and reduces to the
p-chart where there is no extra variation). Means and medians are charted as XmR.

A period that a break or a closure (an annotation) touches is not comparable with the
others: it stays on the chart but out of the limits and the rules. The periods just after
one that fall outside the limits (school attendance dips on the return from winter break)
still signal, but do not set the centre and limits: their cause is on record, and left in,
they would pull the centre off the rest of the year and make every other week a shift.
A group's signal that only repeats its parent's folds under the parent, so a meeting
reads one line, not twenty.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ciboard import comparisons
from ciboard.access import Scope
from ciboard.queries import DIMENSIONS, data_map, panels, run
from ciboard.stats import intervals, spc
from ciboard.warehouse import Warehouse

# Limits from fewer points than this are too unsettled to call anything a signal.
MIN_POINTS = 12
# Laney's adjustment needs enough moving ranges of z-scores to estimate the extra variation.
LANEY_MIN_POINTS = 10
GROUP_DIMENSIONS = tuple(d for d in DIMENSIONS if d != "vendor_id")
RULES = {
    "outside_limits": "outside the limits",
    "shift": "7 on one side",
    "trend": "7 rising or falling",
    "two_in_three": "2 of 3 near a limit",
}
DIRECTION = {"higher": "increase", "lower": "decrease"}
# Annotations of these kinds close schools: the periods they touch are not comparable.
CLOSED_KINDS = ("break", "closure")
# A period is left out when a break or closure shuts at least this share of its weekdays:
# any weekday of a week (a snow day empties a week's high-dosage count), a week of a month.
CLOSED_SHARE = 0.2
# Attendance dips for a week or two on the return from a long break (the demo plants two
# weeks after winter break): a return that far outside the limits has its cause on record.
BREAK_DAYS = 5
RETURN_DAYS = 14


def chart(
    series: pd.DataFrame,
    metric: Mapping[str, Any],
    *,
    rebase: Iterable[date] = (),
    closed: Iterable[tuple[date, date]] = (),
    grain: str = "week",
) -> pd.DataFrame:
    """An SPC chart of a `series` (or one group of a panel): one row per period, with the
    students behind each point (a p-chart's own `n` is its denominator).

    `metric` is the metric's data-map row. `rebase` lists dates from which the limits start
    afresh (a known change), placed at the first period on or after each. `closed` lists the
    (first, last day) of the breaks and closures that touch this chart's students
    (`closures`): the periods of `grain` they shut are charted but excluded.
    """
    series = series.reset_index(drop=True)
    periods = list(series["period_start"])
    positions = sorted({next((i for i, p in enumerate(periods) if p >= day), None) for day in rebase} - {None, 0})
    columns = _charted(_arrays(series), _days(periods), metric, positions, list(closed), grain)
    # A copy: the frame takes its arrays as they are, and must not share the caller's.
    return spc.frame({"period_start": periods, "students": series["n"].to_numpy(copy=True), **columns})


def _arrays(series: pd.DataFrame) -> dict[str, np.ndarray]:
    """What `_charted` reads of a series (or of a panel, to be split into its groups)."""
    arrays = {name: series[name].to_numpy(dtype=float, na_value=np.nan)
              for name in ("value", "numerator", "denominator") if name in series}
    return {**arrays, "n": series["n"].to_numpy()}


def _charted(series: Mapping[str, np.ndarray], starts: np.ndarray, metric: Mapping[str, Any], rebase: list[int],
             closed: list[tuple[date, date]], grain: str) -> dict[str, np.ndarray]:
    """`chart`'s columns but the period and its students, as arrays: `special_points` charts
    thousands of series and keeps a few points of each, which a frame per chart would cost
    more than the charts themselves."""
    direction = DIRECTION[metric["better"]]
    target = metric.get("target")
    target = None if target is None or pd.isna(target) else float(target)
    excluded = list(np.flatnonzero(_shut(starts, closed, grain)))
    values = np.count_nonzero(~np.isnan(series["value"]))

    def charted(ghost: list[int]) -> dict[str, np.ndarray]:
        if metric["aggregation"] in ("rate", "proportion"):
            return spc.p_chart_columns(
                series["numerator"], series["denominator"], direction=direction, rebase=rebase or None,
                exclude=excluded, ghost=ghost, laney=values - len(excluded) - len(ghost) >= LANEY_MIN_POINTS,
                target=target,
            )
        return spc.xmr_columns(
            series["value"], direction=direction, rebase=rebase or None, exclude=excluded, ghost=ghost, target=target,
        )

    result = charted([])
    ghost = _returns(starts, closed, grain, result["outside_limits"], excluded)
    if ghost:
        result = charted(ghost)
    result["returning"] = np.isin(np.arange(len(starts)), ghost)
    return result


def _returns(starts: np.ndarray, closed: list[tuple[date, date]], grain: str, outside: np.ndarray,
             excluded: list[int]) -> list[int]:
    """The positions of the periods starting on `starts` outside the limits in a row from the first
    period after a break (a closure of BREAK_DAYS weekdays or more), starting within RETURN_DAYS of
    its end. Excluded periods, which no rule judges, are stepped over."""
    found = []
    ends = _ends(starts, grain)
    for first, last in closed:
        end = np.datetime64(last, "D")
        if np.busday_count(np.datetime64(first, "D"), end + 1) < BREAK_DAYS:
            continue
        for i in np.flatnonzero((ends > end) & (starts <= end + RETURN_DAYS)):
            if i in excluded:
                continue
            if not outside[i]:
                break
            found.append(int(i))
    return sorted(set(found))


def _ends(starts: np.ndarray, grain: str) -> np.ndarray:
    """The day after each period starting on `starts`."""
    if grain == "month":
        return (starts.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return starts + np.timedelta64(7 if grain == "week" else 1, "D")


def windows(series: pd.DataFrame, metric: Mapping[str, Any]) -> pd.DataFrame:
    """Assessment windows (or any three-a-year periods) as values with 95% intervals and each
    window's change from the one before with its interval: too few points for control limits,
    so no special cause is called. Students are the unit (ciboard.comparisons); without
    student rows a share's interval allows the widest spread a student's value can have, so
    it is wider than needed, never narrower. Medians have no interval."""
    shown = series[series["value"].notna()].reset_index(drop=True)
    kind, inputs = comparisons.stats_inputs(shown, metric, ["period_start"])
    rows = []
    for i, row in enumerate(inputs.to_dict("records")):
        low = high = change = change_low = change_high = float("nan")
        if metric["aggregation"] != "median":
            low, high = (intervals.wilson(row["k"], row["n"]) if kind == "proportion"
                         else intervals.mean_t(row["mean"], row["sd"], row["n"]))
        if i:
            before = rows[-1]["_inputs"]
            if metric["aggregation"] == "median":
                change = row["value"] - before["value"]
            elif kind == "proportion":
                change, change_low, change_high = intervals.newcombe_difference(row["k"], row["n"], before["k"], before["n"])
            else:
                change, change_low, change_high = intervals.welch_difference(
                    row["mean"], row["sd"], row["n"], before["mean"], before["sd"], before["n"])
        rows.append({
            "period_start": row["period_start"], "value": row["value"], "n": row["n"], "low": low, "high": high,
            "change": change, "change_low": change_low, "change_high": change_high,
            "verdict": _verdict(metric, change, change_low, change_high) if i else "", "_inputs": row,
        })
    return pd.DataFrame(rows, columns=[*WINDOW_COLUMNS, "_inputs"]).drop(columns="_inputs")


WINDOW_COLUMNS = ["period_start", "value", "n", "low", "high", "change", "change_low", "change_high", "verdict"]


def _verdict(metric: Mapping[str, Any], change: float, low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return "no interval"
    if low <= 0 <= high:
        return "no change beyond chance"
    return "better, beyond chance" if (change > 0) == (metric["better"] == "higher") else "worse, beyond chance"


def rules_fired(row: pd.Series) -> str:
    return ", ".join(label for column, label in RULES.items() if bool(row.get(column)))


def closures(
    events: pd.DataFrame,
    metric_id: str,
    *,
    vendors: Iterable[str] | None = None,
    schools: Iterable[str] | None = None,
) -> list[tuple[date, date]]:
    """The (first, last day) of each break or closure in `events` (the events view) that
    touches a chart of `metric_id` over `vendors` and `schools` (None: all of them). An
    annotation naming a vendor, a school or a metric touches only the charts holding them."""
    return _closures(events.to_dict(orient="records"), metric_id, vendors, schools)


def _closures(events: list[dict], metric_id: str, vendors: Iterable[str] | None, schools: Iterable[str] | None):
    """`closures` of the events' rows as dicts: a scan asks hundreds of times of the same few."""
    vendors = None if vendors is None else set(vendors)
    schools = None if schools is None else set(schools)
    found = []
    for event in events:
        if event["kind"] not in CLOSED_KINDS:
            continue
        if pd.notna(event["metric_id"]) and event["metric_id"] != metric_id:
            continue
        if pd.notna(event["vendor_id"]) and vendors is not None and event["vendor_id"] not in vendors:
            continue
        if pd.notna(event["school_id"]) and schools is not None and event["school_id"] not in schools:
            continue
        found.append((pd.Timestamp(event["starts_on"]).date(), pd.Timestamp(event["ends_on"]).date()))
    return found


def shut(periods: list, closed: list[tuple[date, date]], grain: str = "week") -> np.ndarray:
    """For each period starting on `periods`, whether the `closed` spans shut at least
    CLOSED_SHARE of its weekdays."""
    return _shut(_days(periods), closed, grain)


def _days(periods: Iterable) -> np.ndarray:
    """Period starts (dates, timestamps) as datetime64[D]."""
    return pd.to_datetime(pd.Index(list(periods))).to_numpy().astype("datetime64[D]")


def _shut(starts: np.ndarray, closed: list[tuple[date, date]], grain: str) -> np.ndarray:
    if not closed or not len(starts):
        return np.zeros(len(starts), dtype=bool)
    ends = _ends(starts, grain)
    weekdays = np.busday_count(starts, ends)
    closed_days = np.zeros(len(starts), dtype=int)
    for first, last in closed:
        lo = np.maximum(starts, np.datetime64(first, "D"))
        hi = np.minimum(ends, np.datetime64(last + timedelta(days=1), "D"))
        closed_days += np.where(hi > lo, np.busday_count(lo, np.maximum(hi, lo)), 0)
    return (weekdays > 0) & (closed_days >= CLOSED_SHARE * weekdays)


def signals(
    warehouse: Warehouse,
    scope: Scope,
    *,
    start: date | None = None,
    end: date | None = None,
    since: date | None = None,
    metrics: Iterable[str] | None = None,
    dimensions: Iterable[str] = GROUP_DIMENSIONS,
    filters: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Every special-cause signal in [since, end] on charts drawn over [start, end], folded
    and ranked (`fold`, `rank`).

    Charts are drawn for the district, each vendor, each student group, and each group
    within each vendor, all within `scope`. Without `since`, only each chart's latest
    period counts. Weeks shut by a break or closure touching a chart's students never
    signal, nor count towards its limits. Cells hidden by small-cell suppression never
    signal.
    """
    points = special_points(warehouse, scope, start=start, end=end, metrics=metrics, dimensions=dimensions,
                            filters=filters)
    return pick(points, since)


def special_points(
    warehouse: Warehouse,
    scope: Scope,
    *,
    start: date | None = None,
    end: date | None = None,
    metrics: Iterable[str] | None = None,
    dimensions: Iterable[str] = GROUP_DIMENSIONS,
    filters: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The special-cause points of every chart `signals` draws, one row each (POINT_COLUMNS),
    whatever `since` a reader will ask for: `pick` turns them into signals. This is the slow
    part (every chart's query and limits), so it is what ciboard.signal_store keeps.

    `chart` numbers the charts in the order they were drawn and `chart_end` is each one's
    latest period; attrs["last_week"] is the latest week of any chart drawn, signalling or not.
    """
    catalogue = data_map(warehouse).set_index("metric_id")
    chosen = list(metrics) if metrics is not None else list(catalogue.index)
    # Weekly metrics have enough points in a year to chart; window metrics (three a year) do not.
    chosen = [m for m in chosen if catalogue.loc[m, "frequency"] == "weekly"]
    base = {"start": start, "end": end, **(filters or {})}
    events = run(warehouse, "events", scope, {"start": start, "end": end})
    # Only breaks and closures leave weeks out; read them once, not once per chart.
    events = events[events["kind"].isin(CLOSED_KINDS)].to_dict(orient="records")
    found, charts, last_week = [], 0, None
    shut_by: dict[tuple, list] = {}  # many charts hold the same vendors and schools
    for metric_id in chosen:
        metric = {"metric_id": metric_id, **catalogue.loc[metric_id].to_dict()}
        for labels, key_names, groups in _slices(warehouse, scope, metric_id, base, list(dimensions)):
            for keys, group in groups:
                latest = group.periods[int(np.argmax(group.starts))]
                last_week = latest if last_week is None else max(last_week, latest)
                where = {**labels, **dict(zip(key_names, keys))}
                held = _held(where, scope, filters or {})
                key = (metric_id, *(None if v is None else tuple(v) for v in held.values()))
                if key not in shut_by:
                    shut_by[key] = _closures(events, metric_id, held["vendors"], held["schools"])
                closed = shut_by[key]
                rows = _special(group, metric, closed)
                found += [{"chart": charts, **where, **row} for row in rows]
                charts += 1
    points = pd.DataFrame(found, columns=POINT_COLUMNS)
    points.attrs["last_week"] = last_week
    return points


POINT_COLUMNS = [
    "chart", "metric_id", "label", "vendor_id", "dimension", "group", "chart_end", "period_start", "point_type",
    "value", "center", "lower", "upper", "n", "strength", "target", "side", *RULES,
]


def pick(points: pd.DataFrame, since: date | None) -> pd.DataFrame:
    """The signals in `points` (`special_points`) from `since` on: each chart's latest special
    cause in the weeks from `since` (without it, in the chart's latest week), with the weeks
    and rules of all of them, deduplicated, folded and ranked."""
    window = points[points["period_start"] >= since] if since else points[points["period_start"] == points["chart_end"]]
    if window.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    window = window.sort_values(["chart", "period_start"], kind="stable")
    charts = window.groupby("chart", sort=True)
    found = charts.tail(1).set_index("chart")
    found["weeks"] = charts["period_start"].agg(lambda days: [pd.Timestamp(day).date().isoformat() for day in days])
    fired = charts[list(RULES)].any()
    found["rule_set"] = [[label for column, label in RULES.items() if row[column]] for row in fired.to_dict("records")]
    found["rules"] = [rules_fired(row) for _, row in found.iterrows()]
    found = found.reset_index()[[c for c in SIGNAL_COLUMNS if c != "folded"]]
    # A vendor alone in a school or group draws the district's chart of it again: keep the
    # one naming the vendor, so it folds under that vendor.
    same = ["metric_id", "dimension", "group", "period_start", "value", "n"]
    found = found.sort_values("vendor_id", key=lambda v: v.isna(), kind="stable").drop_duplicates(same)
    return rank(fold(found))


def fold(found: pd.DataFrame) -> pd.DataFrame:
    """Signals of one group that only repeat their parent's fold under it: the parent keeps
    them in `folded` (their slices) and the groups go from the list.

    A group's parent is its vendor's whole chart, else the district's; a vendor's is the
    district's (a vendor's students are a group of the district's). A signal repeats its
    parent when it is the same metric and kind of signal on the same side, its special-cause
    weeks are among the parent's, and it fired no rule the parent did not: the meeting learns
    nothing from it that the parent's line does not say.
    """
    found = found.reset_index(drop=True)
    folded: dict[int, list[dict]] = {i: [] for i in found.index}
    wholes = {
        (row["metric_id"], row["vendor_id"] if pd.notna(row["vendor_id"]) else None): i
        for i, row in found[found["dimension"].isna()].iterrows()
    }
    gone = []
    for i, row in found[found["dimension"].notna()].iterrows():
        vendor = row["vendor_id"] if pd.notna(row["vendor_id"]) else None
        for parent_key in dict.fromkeys([(row["metric_id"], vendor), (row["metric_id"], None)]):
            parent = wholes.get(parent_key)
            if parent is not None and _repeats(row, found.loc[parent]):
                folded[parent].append({"vendor_id": vendor, "dimension": row["dimension"], "group": row["group"]})
                gone.append(i)
                break
    # Then a vendor whose whole chart only repeats the district's (school attendance after a
    # break, at every vendor), with the groups folded under it.
    for (metric_id, vendor), i in wholes.items():
        district = wholes.get((metric_id, None))
        if vendor is not None and district is not None and _repeats(found.loc[i], found.loc[district]):
            folded[district] += [{"vendor_id": vendor, "dimension": None, "group": None}, *folded[i]]
            gone.append(i)
    return found.assign(folded=[folded[i] for i in found.index]).drop(index=gone).reset_index(drop=True)


def _repeats(child: pd.Series, parent: pd.Series) -> bool:
    return (
        child["point_type"] == parent["point_type"]
        and child["side"] == parent["side"]
        and set(child["weeks"]) <= set(parent["weeks"])
        and set(child["rule_set"]) <= set(parent["rule_set"])
    )


def rank(found: pd.DataFrame) -> pd.DataFrame:
    """Concerns first, then improvements, then changes where no direction is better; within
    each, the whole district's and vendors' signals before one group's (they concern every
    student behind them), then by how far past the centre the point lies."""
    order = {"special_cause_concern": 0, "special_cause_improvement": 1, "special_cause_neutral_high": 2,
             "special_cause_neutral_low": 2}
    ranked = found.assign(_order=found["point_type"].map(order), _group=found["dimension"].notna())
    return (
        ranked.sort_values(["_order", "_group", "strength", "n"], ascending=[True, True, False, False], kind="stable")
        .drop(columns=["_order", "_group"])
        .reset_index(drop=True)
    )


def _held(where: dict, scope: Scope, filters: Mapping[str, Any]) -> dict:
    """The vendors and schools a chart's students come from, for `closures` (None: any)."""
    def chosen(name):
        value = filters.get(name)
        return None if value in (None, "", []) else [value] if isinstance(value, str) else list(value)

    vendors = [where["vendor_id"]] if pd.notna(where.get("vendor_id")) else (
        [scope.vendor_id] if scope.role == "vendor" else chosen("vendor_id"))
    schools = [where["group"]] if where.get("dimension") == "school_id" else chosen("school_id")
    return {"vendors": vendors, "schools": schools}


# weeks, side and rule_set are what folding compares: the window's special-cause weeks, the
# latest one's side, every rule fired in the window; folded lists the groups a signal holds.
SIGNAL_COLUMNS = [
    "metric_id", "label", "vendor_id", "dimension", "group", "period_start", "point_type", "rules",
    "value", "center", "lower", "upper", "n", "strength", "target", "weeks", "side", "rule_set", "folded",
]


def _slices(warehouse: Warehouse, scope: Scope, metric_id: str, base: dict, dimensions: list[str]):
    """For each kind of slice: its fixed labels, the labels its group keys fill, and its panel's
    series, one per group."""
    # A vendor's whole is its own students, so its slices carry its id and are not repeated per vendor.
    own = {"vendor_id": scope.vendor_id} if scope.role == "vendor" else {"vendor_id": None}
    slices = [({**own, "dimension": None, "group": None}, (), ())]
    slices += [({**own, "dimension": dimension}, ("group",), (dimension,)) for dimension in dimensions]
    if scope.role != "vendor":
        slices.append(({"dimension": None, "group": None}, ("vendor_id",), ("vendor_id",)))
        slices += [({"dimension": dimension}, ("vendor_id", "group"), ("vendor_id", dimension)) for dimension in dimensions]
    found = panels(warehouse, scope, {"metric": metric_id, "grain": "week", **base}, [s[2] for s in slices])
    for (labels, key_names, grouping), panel in zip(slices, found):
        yield labels, key_names, _groups(panel, list(grouping))


@dataclass(frozen=True)
class _Series:
    """One group of a panel, in arrays: its periods as read, their starts, and what `_charted` reads."""

    periods: list
    starts: np.ndarray
    arrays: dict[str, np.ndarray]


def _groups(panel: pd.DataFrame, keys: list[str]):
    """Each group's key values and its series, in key order, as a groupby on `keys` gives them
    (without `keys`, the panel is one series): a frame per group would cost more than its chart."""
    if panel.empty:
        return
    periods = panel["period_start"].tolist()
    starts = _days(periods)
    arrays = _arrays(panel)
    if not keys:
        yield (), _Series(periods, starts, arrays)
        return
    rows_of = panel.groupby(keys).indices
    for key in sorted(rows_of):
        rows = rows_of[key]
        yield (key if isinstance(key, tuple) else (key,)), _Series(
            [periods[i] for i in rows], starts[rows], {name: column[rows] for name, column in arrays.items()}
        )


def _special(group: _Series, metric: dict, closed: list) -> list[dict]:
    """The special-cause points of one chart, oldest first: none where too few points set limits."""
    if np.count_nonzero(~np.isnan(group.arrays["value"])) < MIN_POINTS:
        return []
    charted = _charted(group.arrays, group.starts, metric, [], closed, "week")
    if np.count_nonzero(~np.isnan(charted["value"])) - np.count_nonzero(charted["excluded"]) < MIN_POINTS:
        return []
    kinds = charted["point_type"]
    special = np.flatnonzero(pd.notna(kinds) & (kinds != "common_cause"))
    rows = []
    for i in special:
        sigma = (charted["upper"][i] - charted["center"][i]) / 3
        rows.append({
            "metric_id": metric["metric_id"],
            "label": metric["label"],
            "chart_end": group.periods[-1],
            "period_start": group.periods[i],
            "point_type": kinds[i],
            "value": float(charted["value"][i]),
            "center": float(charted["center"][i]),
            "lower": float(charted["lower"][i]),
            "upper": float(charted["upper"][i]),
            "n": int(group.arrays["n"][i]),
            "strength": abs(charted["value"][i] - charted["center"][i]) / sigma if sigma > 0 else float("inf"),
            "target": metric.get("target"),
            "side": charted["signal_side"][i],
            **{column: bool(charted[column][i]) for column in RULES},
        })
    return rows
