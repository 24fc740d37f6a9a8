"""Pearson's correlation with its Fisher z interval.

- A published worked example: r = 0.50 with N = 50 gives a 95% interval of
  0.2574879 to 0.6832563 (R, tanh(atanh(r) + qnorm(c(.025, .975)) / sqrt(N - 3)),
  small-s.science, "correlation" posts). Data with exactly that sample r is built here,
  so the function is checked from raw values to the published digits.
- A reference implementation: scipy.stats.pearsonr(x, y).confidence_interval(), whose
  default method is the Fisher transformation (SciPy docs, PearsonRResult.confidence_interval:
  "computed using the Fisher transformation F(r) = arctanh(r)").
"""

import math

import numpy as np
import pytest
from scipy import stats

from ciboard.stats import intervals


def with_sample_r(r, n, seed=0):
    """x and y whose sample correlation is exactly r."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n))
    u = (a - a.mean()) / np.linalg.norm(a - a.mean())
    b = b - b.mean()
    v = b - (b @ u) * u
    v /= np.linalg.norm(v)
    return u, r * u + math.sqrt(1 - r * r) * v


def test_the_published_example():
    x, y = with_sample_r(0.50, 50)
    r, low, high, n = intervals.correlation(x, y)
    assert (n, round(r, 12)) == (50, 0.5)
    assert low == pytest.approx(0.2574879, abs=5e-8)
    assert high == pytest.approx(0.6832563, abs=5e-8)


@pytest.mark.parametrize("n, strength, confidence, seed", [(12, 0.3, 0.95, 1), (200, -0.8, 0.95, 2), (3000, 0.1, 0.9, 3)])
def test_agrees_with_scipy(n, strength, confidence, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = strength * x + rng.normal(size=n)
    expected = stats.pearsonr(x, y)
    interval = expected.confidence_interval(confidence_level=confidence)
    r, low, high, count = intervals.correlation(x, y, confidence)
    assert count == n
    assert r == pytest.approx(expected.statistic, abs=1e-12)
    assert (low, high) == pytest.approx((interval.low, interval.high), abs=1e-12)


def test_missing_values_leave_their_pair_out():
    x = [1.0, 2.0, np.nan, 4.0, 5.0, 6.0]
    y = [2.0, 1.0, 3.0, np.nan, 7.0, 5.0]
    kept = intervals.correlation([1.0, 2.0, 5.0, 6.0], [2.0, 1.0, 7.0, 5.0])
    assert intervals.correlation(x, y) == pytest.approx(kept, nan_ok=True)
    assert intervals.correlation(x, y)[3] == 4


def test_edge_cases_give_nan_not_errors():
    nan = (math.nan, math.nan, math.nan)
    # Too few pairs for r, no spread on one side, too few pairs for an interval.
    assert intervals.correlation([1.0, 2.0], [3.0, 1.0]) == pytest.approx((*nan, 2), nan_ok=True)
    assert intervals.correlation([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]) == pytest.approx((*nan, 4), nan_ok=True)
    assert intervals.correlation([], []) == pytest.approx((*nan, 0), nan_ok=True)
    r, low, high, n = intervals.correlation([1.0, 2.0, 4.0], [2.0, 3.0, 3.0])
    assert n == 3 and r == pytest.approx(stats.pearsonr([1, 2, 4], [2, 3, 3]).statistic) and math.isnan(low) and math.isnan(high)
    # A perfect line has a degenerate interval rather than an infinite z.
    assert intervals.correlation([1, 2, 3, 4, 5], [10, 8, 6, 4, 2]) == pytest.approx((-1.0, -1.0, -1.0, 5))


def test_rejects_unpaired_values_and_bad_confidence():
    with pytest.raises(ValueError, match="paired"):
        intervals.correlation([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="confidence"):
        intervals.correlation([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0], confidence=95)
