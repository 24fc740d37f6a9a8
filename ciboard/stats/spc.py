"""Statistical process control charts read the way NHS England's "Making Data
Count" reads them (rules as NHSRplotthedots implements them), and Anhøj's runs
analysis as qicharts2 computes it.

Every chart returns one row per input point, in input order, with the same
columns, so a page can draw any of them the same way:

- value, center, lower, upper: the point and its process limits (3 sigma).
- near_lower, near_upper: two thirds of the way from the center to each limit
  (2 sigma), the band the two-in-three rule looks beyond.
- outside_limits, shift, trend, two_in_three: the rules the point is part of.
- point_type: common_cause, special_cause_improvement, special_cause_concern,
  or, for a metric with no better direction, special_cause_neutral_high or
  special_cause_neutral_low (the side it signals on, as NHSRplotthedots names
  them); missing where the value is missing.
- signal_side: "high" or "low" for a special cause point, which way it signals.
- segment: 0 up to the first rebase, 1 after it, and so on.
- excluded: charted, but kept out of the center, the limits and every rule: a week
  that is not comparable (a break, a closure) is neither a signal nor part of one, so
  its point type is common_cause and its rule columns are all False.

A ghosted position (the NHS SPC tool's "ghosting") is the other way of setting a point
apart: it is judged by every rule like any other point, but does not set the center or
the limits, for a special cause whose reason is known and is not the process's own.
- target: the target, where one was given.

xmr adds moving_range; p_chart and u_chart add n, the denominator.

A page draws a chart for every vendor and student group at once (hundreds per
metric), so each chart is computed in numpy arrays and turned into a DataFrame
once, at the end: pandas' per-call overhead, not the arithmetic, is the cost
(bench/bench_stats.py times it). xmr_columns and p_chart_columns stop short of
the frame: the same columns as arrays, for a scan of thousands of charts that
keeps only their special-cause points (ciboard.signals).
"""

import functools
import math

import numpy as np
import pandas as pd
from scipy import stats

DIRECTIONS = {"increase": 1, "decrease": -1, "neutral": 0}

# Making Data Count sets limits at 2.66 x the mean moving range: 3 sigma with
# sigma = mR-bar / 1.128 (d2 for ranges of two points), rounded as the NHS
# tools round it. qicharts2 and PowerBI-SPC use 3 / 1.128 = 2.6596.
XMR_LIMIT = 2.66
D2 = 1.128
# Nelson (1982): a moving range at or above 3.267 x mR-bar (the upper limit of
# the moving-range chart) is itself a special cause and would widen the limits.
MR_CEILING = 3.267
RUN = 7

# Labels by code, so a chart's text columns are one lookup rather than a
# np.select over strings. SIDES is indexed by the signal itself: 1 is "high",
# -1 (the last entry) is "low", 0 none.
POINT_TYPES = np.array(
    [
        "common_cause", "special_cause_improvement", "special_cause_concern",
        "special_cause_neutral_high", "special_cause_neutral_low", None,
    ],
    dtype=object,
)
COMMON, IMPROVEMENT, CONCERN, NEUTRAL_HIGH, NEUTRAL_LOW, MISSING = range(len(POINT_TYPES))
SIDES = np.array([None, "high", "low"], dtype=object)


def xmr(values, *, direction="increase", baseline=None, rebase=None, exclude=None, ghost=None, screen_outliers=False,
        target=None):
    """`xmr_columns` as a frame, indexed as `values` is."""
    return frame(xmr_columns(
        values, direction=direction, baseline=baseline, rebase=rebase, exclude=exclude, ghost=ghost,
        screen_outliers=screen_outliers, target=target,
    ), _index(values))


def xmr_columns(values, *, direction="increase", baseline=None, rebase=None, exclude=None, ghost=None,
                screen_outliers=False, target=None):
    """Individuals chart, limits at center ± 2.66 x mean moving range.

    baseline=k sets each segment's limits from its first k points; rebase
    lists the positions where a new segment, with its own limits and rules,
    starts. exclude lists positions kept on the chart but out of the limits
    and the rules, as a missing value is; ghost, positions out of the limits
    but judged by the rules. screen_outliers drops moving ranges
    of 3.267 x their mean or more before the limits are set, as
    NHSRplotthedots does by default (the NHS Excel tool does not). Missing
    values keep their row and are skipped."""
    y = _floats(values)
    sign = _direction(direction)
    segment = _segments(len(y), rebase)
    segments = _segment_rows(segment)
    excluded = _mask(exclude, len(y))
    usable = ~np.isnan(y) & ~excluded
    setting = usable & ~_mask(ghost, len(y))
    center = np.full(len(y), np.nan)
    spread = np.full(len(y), np.nan)
    moving_range = np.full(len(y), np.nan)
    for rows in segments:
        # A missing value is skipped, not bridged with NaN: the range is taken
        # between the points either side of it, as qicharts2 does.
        points = rows[usable[rows]]
        moving_range[points[1:]] = np.abs(np.diff(y[points]))
        base = _baseline(rows, baseline)
        base = base[setting[base]]
        if base.size == 0:
            continue
        center[rows] = y[base].mean()
        ranges = np.abs(np.diff(y[base]))
        if ranges.size == 0:
            continue
        mean_range = ranges.mean()
        # A flat series has no range to screen (and would lose them all to >= 0).
        if screen_outliers and mean_range > 0:
            mean_range = ranges[ranges < MR_CEILING * mean_range].mean()
        spread[rows] = XMR_LIMIT * mean_range
    lower, upper = center - spread, center + spread
    near_lower, near_upper = center - spread * 2 / 3, center + spread * 2 / 3
    rules = _rules(y, center, lower, upper, near_lower, near_upper, segments, usable, sign)
    return _columns(
        {"value": y, "moving_range": moving_range},
        center, lower, upper, near_lower, near_upper, rules, segment, excluded, _target(target, len(y)),
    )


def p_chart(
    numerators, denominators, *,
    direction="increase", baseline=None, rebase=None, exclude=None, ghost=None, laney=False, target=None,
):
    """`p_chart_columns` as a frame, indexed as `numerators` is."""
    return frame(p_chart_columns(
        numerators, denominators, direction=direction, baseline=baseline, rebase=rebase, exclude=exclude, ghost=ghost,
        laney=laney, target=target,
    ), _index(numerators))


def p_chart_columns(
    numerators, denominators, *,
    direction="increase", baseline=None, rebase=None, exclude=None, ghost=None, laney=False, target=None,
):
    """Proportion chart, limits at p̄ ± 3 sqrt(p̄(1 - p̄) / n_i) clipped to [0, 1],
    with p̄ = Σx / Σn over the baseline.

    exclude lists positions that stay on the chart but are kept out of p̄,
    the limits and every rule (qicharts2 still marks an excluded point beyond
    the limits; a week that is not comparable signals nothing here); ghost
    lists positions kept out of p̄ and the limits only. A zero
    denominator gives a missing value. laney=True widens sigma by the
    spread of the points' z-scores (Laney's p′ chart), for large denominators
    whose variation between periods is more than binomial."""
    x, n = _counts(numerators, denominators)
    if np.any(x > n):
        raise ValueError("a numerator is larger than its denominator")
    return _attribute(
        x, n, lambda rate: rate * (1 - rate), 1.0,
        direction=direction, baseline=baseline, rebase=rebase, exclude=exclude, ghost=ghost, laney=laney, target=target,
    )


def u_chart(counts, exposures=None, *, direction="increase", baseline=None, rebase=None, exclude=None, target=None):
    """Events per unit of exposure; without exposures, a c-chart of the counts."""
    x, n = _counts(counts, np.ones(len(counts)) if exposures is None else exposures)
    return frame(_attribute(
        x, n, lambda rate: rate, math.inf,
        direction=direction, baseline=baseline, rebase=rebase, exclude=exclude, ghost=None, laney=False, target=target,
    ), _index(counts))


def summary(chart, *, direction, target=None):
    """Making Data Count's two icons for the latest point with a value that counts (an
    excluded week says nothing about the process)."""
    sign = _direction(direction)
    counted = pd.notna(chart["value"].to_numpy())
    if "excluded" in chart:
        counted &= ~chart["excluded"].to_numpy(dtype=bool)
    present = np.flatnonzero(counted)
    if present.size == 0:
        return {"variation": None, "assurance": None}
    # Read single cells of the latest row rather than slicing the frame: a row
    # of mixed columns is a new Series, and costs more than the rest together.
    row = present[-1]
    last = {column: chart.iat[row, chart.columns.get_loc(column)] for column in ("signal_side", "lower", "upper")}
    if "target" in chart:
        last["target"] = chart.iat[row, chart.columns.get_loc("target")]

    side = last["signal_side"]
    if pd.isna(side):
        variation = "common_cause"
    elif sign == 0:
        variation = f"neutral_{side}"
    else:
        improving = (side == "high") == (sign > 0)
        variation = f"{'improvement' if improving else 'concern'}_{side}"

    if target is None and "target" in chart and pd.notna(last["target"]):
        target = last["target"]
    assurance = None
    if target is not None and sign != 0 and pd.notna(last["lower"]) and pd.notna(last["upper"]):
        # Limits are where the process will fall; a target beyond them is
        # always missed (or always met) until the process itself changes.
        if target > last["upper"]:
            assurance = "consistent_fail" if sign > 0 else "consistent_pass"
        elif target < last["lower"]:
            assurance = "consistent_pass" if sign > 0 else "consistent_fail"
        else:
            assurance = "hit_or_miss"
    return {"variation": variation, "assurance": assurance}


def runs_analysis(values, center=None):
    """Anhøj's rules: too long a run on one side of the center, or too few
    crossings of it. center defaults to the median (a run chart); it may also
    be one center per point."""
    y = _floats(values)
    y = y[~np.isnan(y)] if center is None or np.ndim(center) == 0 else y
    if center is None:
        center = np.median(y) if y.size else np.nan
    middle = np.broadcast_to(np.asarray(center, dtype=float), y.shape)
    with np.errstate(invalid="ignore"):
        sides = np.sign(y - middle)
    # Points on the center line belong to no run; they are not useful.
    sides = sides[~np.isnan(sides) & (sides != 0)]
    useful = int(sides.size)
    if useful == 0:
        return {"useful": 0, "longest_run": 0, "longest_run_max": None, "crossings": 0, "crossings_min": None,
                "signal": False}
    longest_run = int(_run_lengths(sides).max())
    crossings = int(np.count_nonzero(sides[1:] != sides[:-1]))
    longest_run_max = round(math.log2(useful)) + 3
    crossings_min = _crossings_min(useful)
    return {
        "useful": useful,
        "longest_run": longest_run,
        "longest_run_max": longest_run_max,
        "crossings": crossings,
        "crossings_min": crossings_min,
        "signal": bool(longest_run > longest_run_max or crossings < crossings_min),
    }


@functools.lru_cache(maxsize=None)
def _crossings_min(useful):
    """The 5th percentile of crossings for a random sequence of `useful` points:
    qbinom(0.05, n - 1, 0.5). Cached: scipy's ppf costs more than the rest of
    runs_analysis, and a page asks for the same few lengths over and over."""
    return int(stats.binom.ppf(0.05, useful - 1, 0.5))


def _counts(numerators, denominators):
    x = _floats(numerators)
    n = _floats(denominators)
    if x.shape != n.shape:
        raise ValueError(f"{len(x)} numerators but {len(n)} denominators")
    if np.any(x < 0) or np.any(n < 0):
        raise ValueError("counts and denominators cannot be negative")
    return x, n


def _attribute(x, n, variance, ceiling, *, direction, baseline, rebase, exclude, ghost, laney, target):
    """p, p′, u and c charts: center = Σx / Σn, sigma_i = sqrt(variance(center) / n_i)."""
    sign = _direction(direction)
    segment = _segments(len(x), rebase)
    segments = _segment_rows(segment)
    excluded = _mask(exclude, len(x))
    ghosted = _mask(ghost, len(x))
    with np.errstate(invalid="ignore", divide="ignore"):
        y = x / n
    y[n == 0] = np.nan
    usable = ~np.isnan(y)
    center = np.full(len(y), np.nan)
    sigma = np.full(len(y), np.nan)
    for rows in segments:
        base = _baseline(rows, baseline)
        base = base[usable[base] & ~excluded[base] & ~ghosted[base]]
        if base.size == 0:
            continue
        rate = x[base].sum() / n[base].sum()
        center[rows] = rate
        with np.errstate(divide="ignore"):
            sigma[rows] = np.sqrt(variance(rate) / n[rows])
        sigma[rows[n[rows] == 0]] = np.nan
        if laney and base.size > 1 and variance(rate) > 0:
            # Laney's p′: with very large n the binomial sigma is far too small
            # for the real month-to-month variation; scale it by the spread of
            # the z-scores, estimated from their moving range as an XmR does.
            z = (y[base] - rate) / np.sqrt(variance(rate) / n[base])
            sigma[rows] *= np.abs(np.diff(z)).mean() / D2
    lower, upper = np.clip(center - 3 * sigma, 0, ceiling), np.clip(center + 3 * sigma, 0, ceiling)
    near_lower, near_upper = np.clip(center - 2 * sigma, 0, ceiling), np.clip(center + 2 * sigma, 0, ceiling)
    rules = _rules(y, center, lower, upper, near_lower, near_upper, segments, usable & ~excluded, sign)
    return _columns(
        {"value": y, "n": n},
        center, lower, upper, near_lower, near_upper, rules, segment, excluded, _target(target, len(y)),
    )


def _rules(y, center, lower, upper, near_lower, near_upper, segments, ruled, sign):
    with np.errstate(invalid="ignore"):
        # Strictly beyond a limit; a point on the limit is inside. A point that
        # does not count (missing or excluded) is beyond nothing.
        outside = ruled & ((y > upper) | (y < lower))
        close = ~outside & ((y > near_upper) | (y < near_lower))
        sides = np.sign(y - center)
    sides[np.isnan(sides)] = 0
    sides = sides.astype(int)
    shift = np.zeros(len(y), dtype=bool)
    trend = np.zeros(len(y), dtype=int)
    two_in_three = np.zeros(len(y), dtype=bool)
    for rows in segments:
        # Rules run within a segment over the points that count, so a missing
        # or excluded point neither breaks a run nor extends one.
        points = rows[ruled[rows]]
        shift[points] = _shift(sides[points])
        trend[points] = _trend(y[points])
        two_in_three[points] = _two_in_three(close[points], sides[points])

    # One side per point (+1, -1 or 0), by NHSRplotthedots' precedence:
    # outside the limits, then a trend (whose side is its direction, not the
    # side of the center), then two in three, then a shift. Each line below
    # overrides the ones before it, so the rule that comes first comes last.
    signal = np.where(two_in_three | shift, sides, 0)
    signal = np.where(trend != 0, trend, signal)
    signal = np.where(outside, sides, signal)
    if sign == 0:
        # No side is better, so the point says only which side it is on.
        special = np.where(signal > 0, NEUTRAL_HIGH, NEUTRAL_LOW)
    else:
        special = np.where(signal * sign > 0, IMPROVEMENT, CONCERN)
    kind = np.where(signal == 0, COMMON, special)
    kind[np.isnan(y)] = MISSING
    return {
        "outside_limits": outside,
        "shift": shift,
        "trend": trend != 0,
        "two_in_three": two_in_three,
        "point_type": POINT_TYPES[kind],
        "signal_side": SIDES[signal],
    }


def _shift(sides):
    """Every point of a run of 7 or more on one side of the center; a point on
    the center (side 0) breaks the run."""
    return (sides != 0) & (_run_lengths(sides) >= RUN)


def _trend(y):
    """+1 or -1 for every point of 7 or more strictly rising or falling points
    (6 steps the same way; a tie breaks it), 0 elsewhere."""
    direction = np.zeros(len(y), dtype=int)
    if len(y) < RUN:
        return direction
    steps = np.sign(np.diff(y)).astype(int)
    long_steps = np.where((steps != 0) & (_run_lengths(steps) >= RUN - 1), steps, 0)
    # Step i runs from point i to point i + 1: each point takes the step that
    # ends at it, then the step that starts from it where there is one. A peak
    # or trough ends one trend and starts the next; like NHSRplotthedots it
    # takes the direction of the later one.
    direction[1:] = long_steps
    starting = long_steps != 0
    direction[:-1][starting] = long_steps[starting]
    return direction


def _two_in_three(close, sides):
    """The near-limit points of any 3 consecutive points of which at least 2 are
    beyond two thirds of the way to a limit and all 3 are on one side."""
    flags = np.zeros(len(close), dtype=bool)
    if len(close) < 3:
        return flags
    near = close.astype(int)
    window = (near[:-2] + near[1:-1] + near[2:] >= 2) & (np.abs(sides[:-2] + sides[1:-1] + sides[2:]) == 3)
    flags[:-2] |= window
    flags[1:-1] |= window
    flags[2:] |= window
    return flags & close


def _run_lengths(x):
    """For each element, the length of the run of equal values it sits in."""
    if len(x) == 0:
        return np.zeros(0, dtype=int)
    starts = np.flatnonzero(np.concatenate(([True], x[1:] != x[:-1])))
    lengths = np.diff(starts, append=len(x))
    return np.repeat(lengths, lengths)


def _columns(leading, center, lower, upper, near_lower, near_upper, rules, segment, excluded, target):
    return {
        **leading,
        "center": center,
        "lower": lower,
        "upper": upper,
        "near_lower": near_lower,
        "near_upper": near_upper,
        **rules,
        "segment": segment,
        "excluded": excluded,
        "target": target,
    }


def frame(columns: dict[str, np.ndarray], index=None) -> pd.DataFrame:
    """A chart's columns (`xmr_columns`, `p_chart_columns`) as the frame the pages draw."""
    text = pd.api.types.pandas_dtype("str")  # resolved once for both columns
    # Text columns as pandas' string dtype, so a missing label is NaN whether or
    # not any point signals. Every other array was made by the chart (_floats
    # copies its input), so the frame can take them as they are.
    texts = {name: pd.array(columns[name], dtype=text) for name in ("point_type", "signal_side") if name in columns}
    return pd.DataFrame({**columns, **texts}, index=index, copy=False)


def _floats(values):
    # Always a copy: a chart's columns are these arrays, and must not be the
    # caller's.
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=float, na_value=np.nan, copy=True)
    array = np.array(values, dtype=float)
    if array.ndim != 1:
        raise ValueError("expected a one-dimensional series of values")
    return array


def _index(values):
    return values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(values))


def _direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    return DIRECTIONS[direction]


def _segments(length, rebase):
    starts = sorted({int(position) for position in (rebase or [])})
    for position in starts:
        if not 0 <= position < length:
            raise ValueError(f"rebase position {position} is outside a series of {length} points")
    starts = [position for position in starts if position > 0]
    return np.searchsorted(starts, np.arange(length), side="right")


def _segment_rows(segment):
    return [np.flatnonzero(segment == number) for number in np.unique(segment)]


def _baseline(rows, baseline):
    if baseline is None:
        return rows
    if baseline < 1:
        raise ValueError(f"baseline must be at least 1 point, not {baseline}")
    return rows[:baseline]


def _mask(positions, length):
    mask = np.zeros(length, dtype=bool)
    for position in positions or []:
        if not 0 <= position < length:
            raise ValueError(f"position {position} is outside a series of {length} points")
        mask[position] = True
    return mask


def _target(target, length):
    if target is None:
        return np.full(length, np.nan)
    values = np.asarray(target, dtype=float)
    if values.ndim and values.shape != (length,):
        raise ValueError(f"{len(values)} targets for {length} points")
    return np.broadcast_to(values, (length,)).copy()
