"""SPC on the warehouse: a series charted the way its metric aggregates, and the signals
across metrics x vendors x student groups that a meeting should talk about.

Rates and proportions are charted as p-charts of their numerators and denominators. A
week's denominator is thousands of sessions clustered within students, so the plain
p-chart's binomial limits would be far too narrow and flag nearly every week; Laney's p'
chart scales them by the variation actually seen between periods (and reduces to the
p-chart where there is no extra variation). Means and medians are charted as XmR.
"""

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pandas as pd

from ciboard.access import Scope
from ciboard.queries import DIMENSIONS, data_map, run
from ciboard.stats import spc
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


def chart(series: pd.DataFrame, metric: Mapping[str, Any], *, rebase: Iterable[date] = ()) -> pd.DataFrame:
    """An SPC chart of a `series` (or one group of a panel): one row per period, with the
    students behind each point (a p-chart's own `n` is its denominator).

    `metric` is the metric's data-map row. `rebase` lists dates from which the limits start
    afresh (a known change), placed at the first period on or after each.
    """
    series = series.reset_index(drop=True)
    periods = list(series["period_start"])
    positions = sorted({next((i for i, p in enumerate(periods) if p >= day), None) for day in rebase} - {None, 0})
    direction = DIRECTION[metric["better"]]
    target = metric.get("target")
    target = None if target is None or pd.isna(target) else float(target)
    if metric["aggregation"] in ("rate", "proportion"):
        result = spc.p_chart(
            series["numerator"].to_numpy(dtype=float),
            series["denominator"].to_numpy(dtype=float),
            direction=direction,
            rebase=positions or None,
            laney=series["value"].notna().sum() >= LANEY_MIN_POINTS,
            target=target,
        )
    else:
        result = spc.xmr(series["value"].to_numpy(dtype=float), direction=direction, rebase=positions or None, target=target)
    result = result.reset_index(drop=True)
    result.insert(0, "period_start", periods)
    result.insert(1, "students", series["n"].to_numpy())
    return result


def rules_fired(row: pd.Series) -> str:
    return ", ".join(label for column, label in RULES.items() if bool(row.get(column)))


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
    """Every special-cause signal in [since, end] on charts drawn over [start, end], ranked.

    Charts are drawn for the district, each vendor, each student group, and each group
    within each vendor, all within `scope`. Without `since`, only each chart's latest
    period counts. Concerns rank first, then improvements; within each, whole-district and
    whole-vendor signals before those of one group, then by how far past the centre the
    point lies. Cells hidden by small-cell suppression never signal.
    """
    catalogue = data_map(warehouse).set_index("metric_id")
    chosen = list(metrics) if metrics is not None else list(catalogue.index)
    # Weekly metrics have enough points in a year to chart; window metrics (three a year) do not.
    chosen = [m for m in chosen if catalogue.loc[m, "frequency"] == "weekly"]
    base = {"start": start, "end": end, **(filters or {})}
    found = []
    for metric_id in chosen:
        metric = {"metric_id": metric_id, **catalogue.loc[metric_id].to_dict()}
        for labels, key_names, groups in _slices(warehouse, scope, metric_id, base, list(dimensions)):
            for keys, group in groups:
                row = _latest_signal(group, metric, since)
                if row is not None:
                    found.append({**labels, **dict(zip(key_names, keys)), **row})
    if not found:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    result = pd.DataFrame(found)[SIGNAL_COLUMNS]
    order = {"special_cause_concern": 0, "special_cause_improvement": 1, "special_cause_neutral_high": 2,
             "special_cause_neutral_low": 2}
    # A whole district's or vendor's signal concerns every student behind it: it comes before
    # the same kind of signal in one group.
    ranked = result.assign(_order=result["point_type"].map(order), _group=result["dimension"].notna())
    return (
        ranked.sort_values(["_order", "_group", "strength", "n"], ascending=[True, True, False, False])
        .drop(columns=["_order", "_group"])
        .reset_index(drop=True)
    )


SIGNAL_COLUMNS = [
    "metric_id", "label", "vendor_id", "dimension", "group", "period_start", "point_type", "rules",
    "value", "center", "lower", "upper", "n", "strength", "target",
]


def _slices(warehouse: Warehouse, scope: Scope, metric_id: str, base: dict, dimensions: list[str]):
    """For each kind of slice: its fixed labels, the labels its group keys fill, and its panel
    grouped into one series per group."""
    common = {"metric": metric_id, "grain": "week", **base}
    # A vendor's whole is its own students, so its slices carry its id and are not repeated per vendor.
    own = {"vendor_id": scope.vendor_id} if scope.role == "vendor" else {"vendor_id": None}
    district = run(warehouse, "series", scope, common)
    yield {**own, "dimension": None, "group": None}, (), district.groupby(lambda _: ())
    for dimension in dimensions:
        panel = run(warehouse, "panel", scope, {**common, "by": dimension})
        yield {**own, "dimension": dimension}, ("group",), panel.groupby([dimension])
    if scope.role == "vendor":
        return
    by_vendor = run(warehouse, "panel", scope, {**common, "by": "vendor_id"})
    yield {"dimension": None, "group": None}, ("vendor_id",), by_vendor.groupby(["vendor_id"])
    for dimension in dimensions:
        both = run(warehouse, "panel", scope, {**common, "by": "vendor_id", "by2": dimension})
        yield {"dimension": dimension}, ("vendor_id", "group"), both.groupby(["vendor_id", dimension])


def _latest_signal(group: pd.DataFrame, metric: dict, since: date | None) -> dict | None:
    if group["value"].notna().sum() < MIN_POINTS:
        return None
    charted = chart(group, metric)
    window = charted[charted["period_start"] >= since] if since else charted.tail(1)
    special = window[window["point_type"].fillna("common_cause") != "common_cause"]
    if special.empty:
        return None
    point = special.iloc[-1]
    sigma = (point["upper"] - point["center"]) / 3
    return {
        "metric_id": metric["metric_id"],
        "label": metric["label"],
        "period_start": point["period_start"],
        "point_type": point["point_type"],
        "rules": rules_fired(point),
        "value": point["value"],
        "center": point["center"],
        "lower": point["lower"],
        "upper": point["upper"],
        "n": int(point["students"]),
        "strength": abs(point["value"] - point["center"]) / sigma if sigma > 0 else float("inf"),
        "target": metric.get("target"),
    }
