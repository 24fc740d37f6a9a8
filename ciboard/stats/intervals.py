"""Confidence intervals for a proportion, a mean, the difference of two, and a correlation.

Every function but `correlation` (which needs the paired values) takes counts or summary
statistics. An interval
that cannot be computed (no observations, or too few for a standard deviation)
comes back as NaN rather than raising, so a table of groups can carry on.
"""

import math

from scipy import stats

NAN = math.nan


def wilson(k, n, confidence=0.95):
    """Wilson's score interval: unlike the Wald interval it stays inside [0, 1]
    and keeps its coverage for the small groups and extreme rates schools have."""
    _check_count(k, n)
    if n == 0:
        return (NAN, NAN)
    z = _z(confidence)
    p = k / n
    shrink = 1 + z * z / n
    middle = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At k = 0 and k = n the bound is exactly 0 or 1; pin it against rounding.
    low = 0.0 if k == 0 else max(0.0, middle - half)
    high = 1.0 if k == n else min(1.0, middle + half)
    return (low, high)


def newcombe_difference(k1, n1, k2, n2, confidence=0.95):
    """p1 - p2 with Newcombe's (1998) hybrid score interval, method 10: each
    proportion's Wilson interval, combined in quadrature, no continuity correction."""
    _check_count(k1, n1)
    _check_count(k2, n2)
    if n1 == 0 or n2 == 0:
        return (NAN, NAN, NAN)
    p1, p2 = k1 / n1, k2 / n2
    low1, high1 = wilson(k1, n1, confidence)
    low2, high2 = wilson(k2, n2, confidence)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2)
    high = difference + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2)
    return (difference, low, high)


def mean_t(mean, sd, n, confidence=0.95):
    """Student's t interval for a mean from its summary statistics."""
    if n < 2 or math.isnan(sd):
        return (NAN, NAN)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def welch_difference(mean1, sd1, n1, mean2, sd2, n2, confidence=0.95):
    """mean1 - mean2 with Welch's interval, which does not assume the two groups
    share a variance (student groups rarely do)."""
    if n1 == 0 or n2 == 0:
        return (NAN, NAN, NAN)
    difference = mean1 - mean2
    if n1 < 2 or n2 < 2 or math.isnan(sd1) or math.isnan(sd2):
        return (difference, NAN, NAN)
    v1, v2 = sd1 * sd1 / n1, sd2 * sd2 / n2
    if v1 + v2 == 0:
        return (difference, difference, difference)
    # Welch-Satterthwaite degrees of freedom.
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(v1 + v2)
    return (difference, difference - half, difference + half)


def _z(confidence):
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    return stats.norm.ppf(0.5 + confidence / 2)


def _check_count(k, n):
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def correlation(x, y, confidence=0.95):
    """Pearson's r of paired values with its Fisher z interval: (r, low, high, n).

    Pairs with a missing value on either side are left out; n counts the pairs
    used. r needs three pairs and a spread on both sides, the interval four
    (its standard error is 1 / sqrt(n - 3)); short of that they are NaN."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be paired one-dimensional values, got shapes {x.shape} and {y.shape}")
    z = _z(confidence)
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    n = int(both.sum())
    if n < 3:
        return (NAN, NAN, NAN, n)
    dx, dy = x - x.mean(), y - y.mean()
    spread = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if spread == 0:
        return (NAN, NAN, NAN, n)
    r = max(-1.0, min(1.0, float(dx @ dy) / spread))
    if n < 4:
        return (r, NAN, NAN, n)
    if abs(r) == 1:
        return (r, r, r, n)
    middle, half = math.atanh(r), z / math.sqrt(n - 3)
    return (r, math.tanh(middle - half), math.tanh(middle + half), n)
