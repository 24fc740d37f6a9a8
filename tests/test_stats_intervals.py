"""Confidence intervals against published values (tests/reference/README.md).

- wilson_ci_vectors.csv: R binom::binom.confint values kept in statsmodels'
  test results, DescTools' BinomCI via statsmodels' tests, and Newcombe (1998a)
  Table I; the `source` column says which, and a few rows are computed.
- newcombe_diff_ci_vectors.csv: Newcombe (1998b) Table II as kept in DescTools'
  tests (via WUSS 2016 paper 127), Fagerland, Lydersen & Laake (2015) via
  statsmodels; rows marked "computed only" are statsmodels' output.

Each value is checked to half a unit in the last decimal it is printed to (the
statsmodels rows printed to 16 digits were asserted there at 1e-8).
The t and Welch intervals are checked against scipy run on raw samples.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ciboard.stats import intervals

REFERENCE = Path(__file__).parent / "reference" / "disparity"


def printed_tolerance(text):
    decimals = len(text.split(".")[1]) if "." in text else 0
    return max(0.5 * 10.0**-decimals, 1e-8)


WILSON = pd.read_csv(REFERENCE / "wilson_ci_vectors.csv", dtype={"lower": str, "upper": str}).to_dict("records")
NEWCOMBE = [
    row for row in pd.read_csv(
        REFERENCE / "newcombe_diff_ci_vectors.csv", dtype={"lower": str, "upper": str, "diff": str}
    ).to_dict("records")
    if row["method"].startswith("newcombe_hybrid_score (")  # method 10, no continuity correction
]


@pytest.mark.parametrize("row", WILSON, ids=lambda row: f"{row['x']}/{row['n']}@{row['conf']}")
def test_wilson_reference(row):
    low, high = intervals.wilson(row["x"], row["n"], row["conf"])
    assert low == pytest.approx(float(row["lower"]), abs=printed_tolerance(row["lower"]))
    assert high == pytest.approx(float(row["upper"]), abs=printed_tolerance(row["upper"]))


@pytest.mark.parametrize("row", NEWCOMBE, ids=lambda row: f"{row['x1']}/{row['n1']}-{row['x2']}/{row['n2']}")
def test_newcombe_reference(row):
    difference, low, high = intervals.newcombe_difference(row["x1"], row["n1"], row["x2"], row["n2"], row["conf"])
    assert difference == pytest.approx(float(row["diff"]), abs=printed_tolerance(row["diff"]))
    assert low == pytest.approx(float(row["lower"]), abs=printed_tolerance(row["lower"]))
    assert high == pytest.approx(float(row["upper"]), abs=printed_tolerance(row["upper"]))


def test_wilson_edges():
    low, high = intervals.wilson(0, 17)
    assert low == 0.0 and 0 < high < 1
    assert intervals.wilson(17, 17)[1] == 1.0
    low, high = intervals.wilson(17, 17)
    assert 0 < low < 1
    assert all(math.isnan(bound) for bound in intervals.wilson(0, 0))
    # k = 0 and k = n mirror each other.
    assert intervals.wilson(0, 40)[1] == pytest.approx(1 - intervals.wilson(40, 40)[0])
    with pytest.raises(ValueError):
        intervals.wilson(5, 4)


def test_wilson_one_sided_equivalence():
    # A 90% two-sided interval is the pair of one-sided 95% bounds.
    assert intervals.wilson(100, 200, 0.90)[0] == pytest.approx(0.442235, abs=5e-7)


def test_newcombe_edges():
    assert all(math.isnan(value) for value in intervals.newcombe_difference(0, 0, 4, 10))
    difference, low, high = intervals.newcombe_difference(0, 10, 0, 10)
    assert difference == 0.0 and low < 0 < high and low == pytest.approx(-high)
    assert intervals.newcombe_difference(10, 10, 0, 20)[2] == 1.0


def test_mean_t_matches_scipy():
    sample = np.random.default_rng(1).normal(50, 10, size=23)
    low, high = intervals.mean_t(sample.mean(), sample.std(ddof=1), len(sample), 0.9)
    expected = stats.t.interval(0.9, len(sample) - 1, loc=sample.mean(), scale=stats.sem(sample))
    assert (low, high) == pytest.approx(expected, rel=1e-12)


def test_welch_difference_matches_scipy():
    rng = np.random.default_rng(2)
    first, second = rng.normal(50, 10, size=31), rng.normal(45, 4, size=12)
    difference, low, high = intervals.welch_difference(
        first.mean(), first.std(ddof=1), len(first), second.mean(), second.std(ddof=1), len(second)
    )
    expected = stats.ttest_ind(first, second, equal_var=False).confidence_interval(0.95)
    assert difference == pytest.approx(first.mean() - second.mean())
    assert (low, high) == pytest.approx((expected.low, expected.high), rel=1e-10)


def test_mean_edges():
    assert all(math.isnan(bound) for bound in intervals.mean_t(3.0, 1.0, 0))
    assert all(math.isnan(bound) for bound in intervals.mean_t(3.0, math.nan, 1))
    assert intervals.mean_t(3.0, 0.0, 5) == (3.0, 3.0)
    assert all(math.isnan(value) for value in intervals.welch_difference(1, 1, 0, 2, 1, 10))
    difference, low, high = intervals.welch_difference(5, 1, 1, 2, 1, 10)
    assert difference == 3 and math.isnan(low) and math.isnan(high)
    assert intervals.welch_difference(5, 0, 8, 2, 0, 10) == (3, 3, 3)
