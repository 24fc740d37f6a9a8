"""Comparing units (vendors, schools) fairly: funnel plot limits, and observed
against expected once the mix of students each unit serves is allowed for."""

import math

import numpy as np
import pandas as pd
from scipy import stats

from ciboard.stats import intervals


def funnel_limits(p_overall, n, coverage=(0.95, 0.998)):
    """Spiegelhalter (2005) funnel limits for a proportion: the range a unit of
    size n falls in, with the given probability, if its true rate is p_overall.

    Limits are exact binomial quantiles, interpolated as Spiegelhalter's
    appendix describes, not p ± z·sqrt(p(1 - p) / n): schools and tutoring
    groups have tens of students and rates near 0 or 1, where the binomial is
    skewed and the normal limits are symmetric, so they would cross 0 or 1 and
    miss the stated coverage in each tail. For large n the two agree.

    Each tail is interpolated from its own end: the upper limit is 1 minus the
    lower limit for the failures. Interpolating the upper tail upwards, as the
    appendix writes it, puts the limit inside the top count's own probability,
    so at p = 0.85 a group of 20 with 20 successes (probability 0.039) would
    sit beyond the 99.8% limit. Counted from both ends, a unit falls beyond
    either limit with at most the nominal probability, and the funnel for
    "not proficient" is the mirror image of the funnel for "proficient"."""
    if not 0 <= p_overall <= 1:
        raise ValueError(f"p_overall must be a proportion, not {p_overall}")
    sizes = np.atleast_1d(np.asarray(n, dtype=float))
    frame = pd.DataFrame({"n": sizes})
    for level in coverage:
        if not 0 < level < 1:
            raise ValueError(f"coverage must be between 0 and 1, not {level}")
        label = f"{level * 100:g}".replace(".", "")
        tail = (1 - level) / 2
        frame[f"low_{label}"] = _lower_limit(p_overall, sizes, tail)
        frame[f"high_{label}"] = 1 - _lower_limit(1 - p_overall, sizes, tail)
    return frame


def observed_expected(frame, by="vendor_id", adjust_for="baseline_band", confidence=0.95, reference=None):
    """Indirect standardisation: each unit's observed rate (or mean) against the
    rate it would have had if each of its students did as well as the
    reference students in the same stratum (e.g. the same baseline band).

    Input rows are cells of [by, *adjust_for, k, n] (proportions) or
    [by, *adjust_for, mean, sd, n] (means); `adjust_for` is one column or several
    (school, grade and baseline band). Output per unit: n, observed, expected,
    difference (observed - expected) with its interval, and ratio (observed /
    expected, the standardised ratio) with its interval.

    Without `reference` the strata's values come from all the units together
    (the district, this unit included) and are treated as known: a unit that is
    most of a stratum is partly compared with itself and its ratio is pulled
    towards 1.

    With `reference` (cells of [*adjust_for, k, n] or [*adjust_for, mean, sd, n]:
    a comparison group, such as the students no vendor tutors) the strata's
    values are the reference's own. A unit's students in a stratum the reference
    does not have cannot be matched and are left out (`unmatched` counts them),
    and the expected value is an estimate from the reference's students, so its
    sampling variance, sum over strata of (n_s / n)^2 * var(reference value_s),
    joins the observed value's in the interval of the difference (MOVER: each
    side's own interval combined in quadrature, Zou and Donner 2008).
    `reference_n` is how many reference students stand behind the expected value."""
    strata_columns = [adjust_for] if isinstance(adjust_for, str) else list(adjust_for)
    kind = "proportion" if {"k", "n"} <= set(frame.columns) else "mean"
    measures = ["k"] if kind == "proportion" else ["mean", "sd"]
    needed = [by, *strata_columns, "n", *measures]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise ValueError(f"observed_expected needs columns {', '.join(missing)}")

    cells = _totals(frame.loc[frame["n"] > 0, needed].copy(), kind)
    if reference is None:
        pool = cells
    else:
        absent = [c for c in [*strata_columns, "n", *measures] if c not in reference.columns]
        if absent:
            raise ValueError(f"the reference needs columns {', '.join(absent)}")
        pool = _totals(reference.loc[reference["n"] > 0, [*strata_columns, "n", *measures]].copy(), kind)
    measure = "k" if kind == "proportion" else "total"
    strata = pool.groupby(strata_columns, as_index=False)[[measure, "n", "spread"]].sum()
    strata["rate"] = strata[measure] / strata["n"]
    if kind == "proportion":
        strata["rate_variance"] = strata["rate"] * (1 - strata["rate"]) / strata["n"]
    else:
        # sd² / n of the stratum's mean, from its within-cell sums of squares.
        strata["rate_variance"] = strata["spread"] / strata["n"] ** 2
    strata = strata.rename(columns={"n": "reference_n"})
    cells = cells.merge(strata[[*strata_columns, "rate", "rate_variance", "reference_n"]], on=strata_columns, how="left")
    matched = cells["rate"].notna()
    unmatched = cells.loc[~matched].groupby(by, sort=False)["n"].sum()
    cells = cells[matched]
    cells["expected_total"] = cells["n"] * cells["rate"]
    cells["variance_part"] = cells["n"] ** 2 * cells["rate_variance"]

    units = cells.groupby(by, sort=False)[["n", measure, "expected_total", "spread", "variance_part"]].sum()
    units["cells"] = cells.groupby(by, sort=False).size()
    # The reference students behind a unit's expected value: those of the strata it was matched in.
    behind = cells.drop_duplicates([by, *strata_columns]).groupby(by, sort=False)["reference_n"].sum()
    z = stats.norm.ppf(0.5 + confidence / 2)

    out = []
    for unit, row in units.iterrows():
        n = row["n"]
        observed = row[measure] / n
        expected = row["expected_total"] / n
        if kind == "proportion":
            # Wilson's interval for the observed rate, not a Poisson interval on
            # the observed count: school outcomes are common (30-70%), where
            # Poisson overstates the variance by 1 / (1 - p). Pooling strata
            # makes it slightly conservative, never anti-conservative.
            low, high = intervals.wilson(row["k"], n, confidence)
        else:
            # Within-stratum variance only: strata are fixed by design.
            se = math.sqrt(row["spread"]) / n
            df = n - row["cells"]
            half = stats.t.ppf(0.5 + confidence / 2, df) * se if df > 0 else math.nan
            low, high = observed - half, observed + half
        if reference is None:
            diff_low, diff_high = low - expected, high - expected
        else:
            expected_half = z * math.sqrt(row["variance_part"]) / n
            difference, diff_low, diff_high = difference_in_differences(
                (observed, low, high), (expected, expected - expected_half, expected + expected_half)
            )
        positive = expected > 0
        out.append({
            by: unit,
            "n": n,
            "observed": observed,
            "expected": expected,
            "difference": observed - expected,
            "diff_low": diff_low,
            "diff_high": diff_high,
            "ratio": observed / expected if positive else math.nan,
            # With a reference the expected value is uncertain too: no ratio interval is claimed.
            "ratio_low": low / expected if positive and reference is None else math.nan,
            "ratio_high": high / expected if positive and reference is None else math.nan,
            "unmatched": float(unmatched.get(unit, 0)),
            "reference_n": float(behind.get(unit, 0)),
        })
    return pd.DataFrame(out, columns=[
        by, "n", "observed", "expected", "difference", "diff_low", "diff_high", "ratio", "ratio_low", "ratio_high",
        "unmatched", "reference_n",
    ])


def difference_in_differences(change, comparison_change):
    """change - comparison_change, from each one's (estimate, low, high), with the
    interval that joins their two intervals in quadrature (MOVER, Zou and Donner
    2008; Newcombe's method 10 joins two Wilson intervals the same way). With
    symmetric intervals it is the estimate ± z·√(se₁² + se₂²) of two independent
    changes, as Card and Krueger (1994, Table 3) compute New Jersey's change in
    employment minus Pennsylvania's. Returns (difference, low, high); NaN where
    either side has no interval."""
    (estimate, low, high), (other, other_low, other_high) = change, comparison_change
    difference = estimate - other
    low_end = difference - math.sqrt((estimate - low) ** 2 + (other_high - other) ** 2)
    high_end = difference + math.sqrt((high - estimate) ** 2 + (other - other_low) ** 2)
    return difference, low_end, high_end


def _totals(cells, kind):
    """Cells with their totals (a mean's sum) and within-cell sums of squares ("spread")."""
    if kind == "mean":
        cells["total"] = cells["mean"] * cells["n"]
        # Within-cell sum of squares around the cell mean, for the unit's variance.
        cells["spread"] = cells["sd"].fillna(0.0) ** 2 * cells["n"]
    else:
        cells["spread"] = 0.0
    return cells


def _lower_limit(p, sizes, tail):
    limits = np.full(sizes.shape, np.nan)
    counted = sizes > 0
    n = sizes[counted]
    if p in (0, 1):
        # A degenerate distribution has nothing to interpolate.
        limits[counted] = p
        return limits
    # r is the smallest count with P(R <= r) >= tail; the limit moves from r
    # down towards r - 1 as far as r's own probability is not needed to reach
    # the tail. (It is continuous in the tail, so an r off by one at a tie
    # gives the same limit.)
    r = stats.binom.ppf(tail, n, p)
    at = stats.binom.cdf(r, n, p)
    below = stats.binom.cdf(r - 1, n, p)
    alpha = (at - tail) / (at - below)
    limits[counted] = np.clip((r - alpha) / n, 0, 1)
    return limits
