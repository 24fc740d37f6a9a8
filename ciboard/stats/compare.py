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


def observed_expected(frame, by="vendor_id", adjust_for="baseline_band", confidence=0.95):
    """Indirect standardisation: each unit's observed rate (or mean) against the
    rate it would have had if each of its students did as well as the
    district's students in the same stratum (e.g. the same baseline band).

    Input rows are cells of [by, adjust_for, k, n] (proportions) or
    [by, adjust_for, mean, sd, n] (means). Output per unit: n, observed,
    expected, difference (observed - expected) with its interval, and ratio
    (observed / expected, the standardised ratio) with its interval.

    The expected value is treated as known. It is estimated from the whole
    district, this unit included, so a unit that is most of a stratum is partly
    compared with itself and its ratio is pulled towards 1."""
    kind = "proportion" if {"k", "n"} <= set(frame.columns) else "mean"
    needed = [by, adjust_for, "n"] + (["k"] if kind == "proportion" else ["mean", "sd"])
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise ValueError(f"observed_expected needs columns {', '.join(missing)}")

    cells = frame.loc[frame["n"] > 0, needed].copy()
    measure = "k" if kind == "proportion" else "total"
    if kind == "mean":
        cells["total"] = cells["mean"] * cells["n"]
        # Within-cell sum of squares around the cell mean, for the unit's variance.
        cells["spread"] = cells["sd"] ** 2 * cells["n"]
    strata = cells.groupby(adjust_for)[[measure, "n"]].sum()
    district = strata[measure] / strata["n"]
    cells["expected_total"] = cells["n"] * cells[adjust_for].map(district)

    sums = ["n", measure, "expected_total"] + (["spread"] if kind == "mean" else [])
    units = cells.groupby(by, sort=False)[sums].sum()
    units["cells"] = cells.groupby(by, sort=False).size()

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
        positive = expected > 0
        out.append({
            by: unit,
            "n": n,
            "observed": observed,
            "expected": expected,
            "difference": observed - expected,
            "diff_low": low - expected,
            "diff_high": high - expected,
            "ratio": observed / expected if positive else math.nan,
            "ratio_low": low / expected if positive else math.nan,
            "ratio_high": high / expected if positive else math.nan,
        })
    return pd.DataFrame(out, columns=[
        by, "n", "observed", "expected", "difference", "diff_low", "diff_high", "ratio", "ratio_low", "ratio_high",
    ])


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
