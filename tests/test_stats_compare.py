"""Funnel limits and observed/expected comparisons.

No reference file covers these, so the funnel limits are checked against
Spiegelhalter's (2005, Stat Med 24:1185, appendix A.1.1) interpolation worked
by hand with exact binomial fractions, and against the normal approximation
where the two must agree (large n). Indirect standardisation is checked on
small tables worked by hand.
"""

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ciboard.stats import compare, intervals


def binomial_cdf(r, n, p):
    return sum(Fraction(math.comb(n, i)) * p**i * (1 - p) ** (n - i) for i in range(r + 1))


def spiegelhalter_by_hand(p, n, quantile):
    """The smallest r with P(R <= r) >= quantile, then interpolate back towards r - 1."""
    p, quantile = Fraction(p), Fraction(quantile)
    r = next(r for r in range(n + 1) if binomial_cdf(r, n, p) >= quantile)
    at, below = binomial_cdf(r, n, p), binomial_cdf(r - 1, n, p) if r else Fraction(0)
    alpha = (at - quantile) / (at - below)
    return float((r - alpha) / n)


@pytest.mark.parametrize("p, n", [(Fraction(1, 2), 10), (Fraction(3, 10), 25), (Fraction(9, 10), 40),
                                  (Fraction(1, 20), 60), (Fraction(17, 20), 20)])
def test_funnel_limits_match_spiegelhalter_by_hand(p, n):
    limits = compare.funnel_limits(float(p), [n], coverage=(0.95, 0.998)).iloc[0]
    for label, level in [("95", Fraction(95, 100)), ("998", Fraction(998, 1000))]:
        tail = (1 - level) / 2
        low = max(0.0, spiegelhalter_by_hand(p, n, tail))
        # The upper limit is interpolated from the top: 1 - the failures' lower limit.
        high = 1 - max(0.0, spiegelhalter_by_hand(1 - p, n, tail))
        assert limits[f"low_{label}"] == pytest.approx(low, rel=1e-9, abs=1e-12)
        assert limits[f"high_{label}"] == pytest.approx(high, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("p", [0.03, 0.3, 0.5, 0.85, 0.97])
def test_funnel_limits_keep_each_tail_within_its_probability(p):
    sizes = np.arange(1, 201)
    limits = compare.funnel_limits(p, sizes)
    for label, level in [("95", 0.95), ("998", 0.998)]:
        tail = (1 - level) / 2
        # Counts strictly beyond each limit, as a chart flags them.
        below = np.ceil(sizes * limits[f"low_{label}"]) - 1
        above = np.floor(sizes * limits[f"high_{label}"]) + 1
        assert np.all(stats.binom.cdf(below, sizes, p) <= tail + 1e-12)
        assert np.all(stats.binom.sf(above - 1, sizes, p) <= tail + 1e-12)


def test_funnel_limits_mirror_when_success_and_failure_swap():
    sizes = np.arange(1, 120)
    funnel, mirror = compare.funnel_limits(0.85, sizes), compare.funnel_limits(0.15, sizes)
    for label in ("95", "998"):
        assert funnel[f"high_{label}"].to_numpy() == pytest.approx(1 - mirror[f"low_{label}"].to_numpy(), abs=1e-12)
        assert funnel[f"low_{label}"].to_numpy() == pytest.approx(1 - mirror[f"high_{label}"].to_numpy(), abs=1e-12)
    # 20 of 20 at a rate of 0.85 happens 3.9% of the time: not beyond the 99.8% limit.
    assert funnel["high_998"].iloc[19] == 1.0


def test_funnel_limits_worked_example():
    # p = 0.5, n = 10: P(R <= 1) = 11/1024, P(R <= 2) = 56/1024, so the 2.5%
    # point lies in r = 2 and alpha = (56/1024 - 0.025) / (45/1024).
    alpha = (56 / 1024 - 0.025) / (45 / 1024)
    assert compare.funnel_limits(0.5, 10)["low_95"].iloc[0] == pytest.approx((2 - alpha) / 10)


def test_funnel_limits_approach_the_normal_limits():
    p, sizes = 0.3, np.array([20_000, 100_000, 1_000_000])
    limits = compare.funnel_limits(p, sizes)
    for label, level in [("95", 0.95), ("998", 0.998)]:
        half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(p * (1 - p) / sizes)
        width = 2 * half
        assert np.all(np.abs(limits[f"low_{label}"] - (p - half)) < 0.01 * width)
        assert np.all(np.abs(limits[f"high_{label}"] - (p + half)) < 0.01 * width)


def test_funnel_limits_shape():
    sizes = np.arange(1, 301)
    limits = compare.funnel_limits(0.85, sizes)
    assert list(limits.columns) == ["n", "low_95", "high_95", "low_998", "high_998"]
    assert limits["n"].tolist() == sizes.tolist()
    assert (limits["low_998"] <= limits["low_95"]).all() and (limits["high_95"] <= limits["high_998"]).all()
    assert (limits["low_95"] <= 0.85).all() and (limits["high_95"] >= 0.85).all()
    assert limits.drop(columns="n").stack().between(0, 1).all()
    # The funnel narrows: the widest limits are at the smallest n.
    assert limits["low_95"].iloc[-1] > limits["low_95"].iloc[9]
    assert limits["high_95"].iloc[-1] < limits["high_95"].iloc[9]


def test_funnel_limits_edges():
    limits = compare.funnel_limits(0.2, [0, 10], coverage=(0.9,))
    assert list(limits.columns) == ["n", "low_90", "high_90"]
    assert math.isnan(limits["low_90"].iloc[0])
    assert (compare.funnel_limits(0.0, [5, 50]).drop(columns="n") == 0).all().all()
    assert (compare.funnel_limits(1.0, [5, 50]).drop(columns="n") == 1).all().all()


# --- observed / expected ------------------------------------------------------

CELLS = pd.DataFrame({
    "vendor_id": ["A", "A", "B", "B"],
    "baseline_band": ["low", "high", "low", "high"],
    "k": [20, 80, 45, 45],
    "n": [100, 100, 150, 50],
})


def test_observed_expected_by_hand():
    out = compare.observed_expected(CELLS).set_index("vendor_id")
    # District rates: low band 65/250 = 0.26, high band 125/150 = 5/6.
    expected_a = (100 * 0.26 + 100 * 5 / 6) / 200
    expected_b = (150 * 0.26 + 50 * 5 / 6) / 200
    assert out.loc["A", "observed"] == pytest.approx(0.5)
    assert out.loc["A", "expected"] == pytest.approx(expected_a)
    assert out.loc["B", "observed"] == pytest.approx(0.45)
    assert out.loc["B", "expected"] == pytest.approx(expected_b)
    assert out.loc["B", "ratio"] == pytest.approx(0.45 / expected_b)
    assert out.loc["B", "difference"] == pytest.approx(0.45 - expected_b)
    low, high = intervals.wilson(90, 200)
    assert (out.loc["B", "ratio_low"], out.loc["B", "ratio_high"]) == pytest.approx((low / expected_b,
                                                                                        high / expected_b))
    assert (out.loc["B", "diff_low"], out.loc["B", "diff_high"]) == pytest.approx((low - expected_b,
                                                                                      high - expected_b))
    assert out["n"].tolist() == [200, 200]
    # Case mix: B's crude rate is below A's, but B serves more low-band
    # students and beats its expected rate while A falls short of its own.
    assert out.loc["B", "ratio"] > 1 > out.loc["A", "ratio"]


def test_same_rates_in_every_stratum_give_a_ratio_of_one():
    cells = pd.DataFrame({
        "vendor_id": ["A", "A", "B", "B"],
        "baseline_band": [1, 2, 1, 2],
        "k": [10, 90, 40, 45],
        "n": [100, 100, 400, 50],
    })
    out = compare.observed_expected(cells)
    assert out["ratio"].to_numpy() == pytest.approx([1.0, 1.0])
    assert out["difference"].to_numpy() == pytest.approx([0.0, 0.0], abs=1e-12)
    # The crude rates differ a lot; only the mix of students does that.
    assert out["observed"].iloc[0] == pytest.approx(0.5) and out["observed"].iloc[1] == pytest.approx(85 / 450)


def test_single_unit_is_its_own_expectation():
    out = compare.observed_expected(CELLS[CELLS["vendor_id"] == "A"])
    assert out["ratio"].iloc[0] == pytest.approx(1.0)
    assert out["ratio_low"].iloc[0] < 1 < out["ratio_high"].iloc[0]


def test_observed_expected_custom_columns_and_empty_cells():
    cells = CELLS.rename(columns={"vendor_id": "school", "baseline_band": "grade"})
    cells = pd.concat([cells, pd.DataFrame({"school": ["C"], "grade": ["low"], "k": [0], "n": [0]})])
    out = compare.observed_expected(cells, by="school", adjust_for="grade")
    assert out["school"].tolist() == ["A", "B"]  # a unit with no students has nothing to compare


def test_observed_expected_means():
    cells = pd.DataFrame({
        "vendor_id": ["A", "A", "B", "B"],
        "baseline_band": ["low", "high", "low", "high"],
        "mean": [10.0, 30.0, 14.0, 34.0],
        "sd": [4.0, 6.0, 5.0, 5.0],
        "n": [30, 10, 10, 30],
    })
    out = compare.observed_expected(cells).set_index("vendor_id")
    # District means: low (300 + 140) / 40 = 11, high (300 + 1020) / 40 = 33.
    assert out.loc["A", "observed"] == pytest.approx(15.0)
    assert out.loc["A", "expected"] == pytest.approx((30 * 11 + 10 * 33) / 40)
    assert out.loc["A", "difference"] == pytest.approx(15.0 - 16.5)
    se = math.sqrt(30 * 16 + 10 * 36) / 40
    half = stats.t.ppf(0.975, 40 - 2) * se
    assert (out.loc["A", "diff_low"], out.loc["A", "diff_high"]) == pytest.approx((-1.5 - half, -1.5 + half))
    assert out.loc["B", "difference"] == pytest.approx(29.0 - 27.5)


def test_observed_expected_needs_its_columns():
    with pytest.raises(ValueError, match="baseline_band"):
        compare.observed_expected(pd.DataFrame({"vendor_id": ["A"], "k": [1], "n": [2]}))
