"""Gaps between student groups, and the IDEA significant-disproportionality
risk ratios of 34 CFR 300.647."""

import math

import numpy as np
import pandas as pd

from ciboard.stats import intervals

COLUMNS = {"proportion": ["group", "k", "n"], "mean": ["group", "mean", "sd", "n"]}


def gaps(frame, *, reference=None, min_cell=10, confidence=0.95, kind="proportion"):
    """One row per group: its rate or mean with an interval, and its gap to the
    reference group. Groups with fewer than min_cell students are suppressed:
    their value, intervals, difference and ratio are NaN, and so are every
    group's difference and ratio when the reference itself is suppressed."""
    if kind not in COLUMNS:
        raise ValueError(f"kind must be one of {', '.join(COLUMNS)}, not {kind!r}")
    missing = [column for column in COLUMNS[kind] if column not in frame.columns]
    if missing:
        raise ValueError(f"a {kind} frame needs columns {', '.join(missing)}")
    groups = frame["group"].tolist()
    duplicated = sorted({str(group) for group in groups if groups.count(group) > 1})
    if duplicated:
        raise ValueError(f"one row per group, but these repeat: {', '.join(duplicated)}")
    if not groups:
        return pd.DataFrame(columns=[
            "group", "value", "n", "low", "high", "difference", "diff_low", "diff_high", "ratio", "is_reference",
            "suppressed",
        ])

    sizes = frame["n"].to_numpy(dtype=float)
    if reference is None:
        # The largest group is the most stable yardstick; ties go to the first.
        reference = groups[int(np.argmax(sizes))]
    elif reference not in groups:
        raise ValueError(f"reference group {reference!r} is not in the data; groups are: "
                         f"{', '.join(map(str, groups))}")

    rows = frame.to_dict("records")
    base = rows[groups.index(reference)]
    base_shown = base["n"] >= min_cell
    out = []
    for row in rows:
        shown = row["n"] >= min_cell
        value = low = high = difference = diff_low = diff_high = ratio = math.nan
        is_reference = row["group"] == reference
        if shown:
            value, (low, high) = _estimate(row, kind, confidence)
        if shown and base_shown:
            if is_reference:
                difference, ratio = 0.0, 1.0
            else:
                difference, diff_low, diff_high = _difference(row, base, kind, confidence)
                base_value = _estimate(base, kind, confidence)[0]
                ratio = value / base_value if base_value != 0 else math.nan
        out.append({
            "group": row["group"], "value": value, "n": row["n"], "low": low, "high": high,
            "difference": difference, "diff_low": diff_low, "diff_high": diff_high, "ratio": ratio,
            "is_reference": is_reference, "suppressed": not shown,
        })
    return pd.DataFrame(out)


def risk_ratio(k, n, k_cmp, n_cmp, *, min_cell=10, min_n=30):
    """The group's risk over the risk of all other children in the LEA, or None
    where 300.647 says not to calculate it: the group or the comparison group
    has fewer than min_cell children in the numerator or min_n in the
    denominator (300.647(b)(1)(iv), (c)(1)). A comparison group that falls short
    calls for alternate_risk_ratio instead (300.647(b)(5))."""
    if not (_meets(k, n, min_cell, min_n) and _meets(k_cmp, n_cmp, min_cell, min_n)):
        return None
    return _ratio(k, n, k_cmp, n_cmp)


def alternate_risk_ratio(k, n, k_state, n_state, *, min_cell=10, min_n=30):
    """The group's LEA risk over the risk of all other children in the State,
    for an LEA whose own comparison group is too small; None where the group
    itself is too small (300.647(c)(1))."""
    if not _meets(k, n, min_cell, min_n):
        return None
    return _ratio(k, n, k_state, n_state)


def _estimate(row, kind, confidence):
    if kind == "proportion":
        return row["k"] / row["n"], intervals.wilson(row["k"], row["n"], confidence)
    return row["mean"], intervals.mean_t(row["mean"], row["sd"], row["n"], confidence)


def _difference(row, base, kind, confidence):
    if kind == "proportion":
        return intervals.newcombe_difference(row["k"], row["n"], base["k"], base["n"], confidence)
    return intervals.welch_difference(
        row["mean"], row["sd"], row["n"], base["mean"], base["sd"], base["n"], confidence
    )


def _meets(k, n, min_cell, min_n):
    return k >= min_cell and n >= min_n


def _ratio(k, n, k_cmp, n_cmp):
    if n == 0 or n_cmp == 0 or k_cmp == 0:
        return None
    return (k / n) / (k_cmp / n_cmp)
