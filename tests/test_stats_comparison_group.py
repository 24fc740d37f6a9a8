"""The comparison group's statistics: the matched comparison (indirect standardisation against a
reference group) and the difference in differences, against published and hand-computed numbers."""

import math

import pandas as pd
import pytest
from scipy import stats

from ciboard.stats import compare

Z = stats.norm.ppf(0.975)


def test_difference_in_differences_reproduces_card_and_krueger_table_3():
    # Card, D. and Krueger, A. B. (1994), "Minimum Wages and Employment: A Case Study of the
    # Fast-Food Industry in New Jersey and Pennsylvania", American Economic Review 84(4),
    # Table 3, rows 3 and 4: the change in mean FTE employment per store (standard error).
    # Row 3 (all stores): NJ 0.59 (0.54), PA -2.16 (1.25); NJ - PA 2.76 (1.36).
    # Row 4 (balanced sample): NJ 0.47 (0.48), PA -2.28 (1.25); NJ - PA 2.75 (1.34).
    for (nj, nj_se), (pa, pa_se), (published, published_se) in (
        ((0.59, 0.54), (-2.16, 1.25), (2.76, 1.36)),
        ((0.47, 0.48), (-2.28, 1.25), (2.75, 1.34)),
    ):
        difference, low, high = compare.difference_in_differences(
            (nj, nj - Z * nj_se, nj + Z * nj_se), (pa, pa - Z * pa_se, pa + Z * pa_se)
        )
        # The table's changes are rounded to 0.01, so their difference may be 0.01 off its own.
        assert difference == pytest.approx(published, abs=0.011)
        assert (high - difference) / Z == pytest.approx(published_se, abs=0.005)
        assert (difference - low) / Z == pytest.approx(published_se, abs=0.005)


def test_difference_in_differences_joins_asymmetric_intervals_side_by_side():
    # MOVER: the low end takes the slice's lower half and the comparison's upper half.
    difference, low, high = compare.difference_in_differences((0.10, 0.04, 0.18), (0.02, -0.01, 0.03))
    assert difference == pytest.approx(0.08)
    assert low == pytest.approx(0.08 - math.hypot(0.06, 0.01))
    assert high == pytest.approx(0.08 + math.hypot(0.08, 0.03))


def test_matched_comparison_weights_the_reference_to_the_units_mix_by_hand():
    units = pd.DataFrame({
        "vendor_id": ["V1", "V1", "V1"],
        "school_id": ["A", "B", "C"],
        "k": [20, 45, 9],
        "n": [40, 60, 10],
    })
    # School C has no reference students: V1's 10 students there cannot be matched.
    reference = pd.DataFrame({"school_id": ["A", "B", "D"], "k": [40, 30, 5], "n": [100, 50, 10]})
    row = compare.observed_expected(units, by="vendor_id", adjust_for="school_id", reference=reference).iloc[0]
    assert row["n"] == 100 and row["unmatched"] == 10 and row["reference_n"] == 150
    assert row["observed"] == pytest.approx(0.65)
    # (40 x 0.4 + 60 x 0.6) / 100
    assert row["expected"] == pytest.approx(0.52)
    # Wilson for 65 of 100, by its formula.
    centre, half = (0.65 + Z**2 / 200) / (1 + Z**2 / 100), Z * math.sqrt(0.65 * 0.35 / 100 + Z**2 / 40000) / (1 + Z**2 / 100)
    # var(expected) = (0.4^2 x 0.4 x 0.6 / 100) + (0.6^2 x 0.6 x 0.4 / 50) = 0.002112
    expected_half = Z * math.sqrt(0.002112)
    assert row["diff_low"] == pytest.approx(0.13 - math.hypot(0.65 - (centre - half), expected_half))
    assert row["diff_high"] == pytest.approx(0.13 + math.hypot(centre + half - 0.65, expected_half))
    assert math.isnan(row["ratio_low"])


def test_matched_comparison_of_means_counts_the_reference_students_variance():
    units = pd.DataFrame({"vendor_id": ["V1", "V1"], "band": ["low", "high"], "mean": [50.0, 70.0],
                          "sd": [10.0, 10.0], "n": [30, 10]})
    reference = pd.DataFrame({"band": ["low", "high"], "mean": [45.0, 66.0], "sd": [12.0, 8.0], "n": [90, 40]})
    row = compare.observed_expected(units, by="vendor_id", adjust_for=["band"], reference=reference).iloc[0]
    assert row["expected"] == pytest.approx((30 * 45 + 10 * 66) / 40)
    # Observed: t on n - strata degrees of freedom, as without a reference.
    observed_half = stats.t.ppf(0.975, 38) * math.sqrt(30 * 100 + 10 * 100) / 40
    expected_half = Z * math.sqrt((30 / 40) ** 2 * 144 / 90 + (10 / 40) ** 2 * 64 / 40)
    assert row["diff_high"] - row["difference"] == pytest.approx(math.hypot(observed_half, expected_half))


def test_without_a_reference_the_district_is_the_standard_as_before():
    cells = pd.DataFrame({"vendor_id": ["V1", "V1", "V2", "V2"], "band": ["a", "b", "a", "b"],
                          "k": [10, 30, 20, 10], "n": [20, 40, 40, 20]})
    out = compare.observed_expected(cells, by="vendor_id", adjust_for="band").set_index("vendor_id")
    # District: band a 30/60 = 0.5, band b 40/60 = 2/3.
    assert out.loc["V1", "expected"] == pytest.approx((20 * 0.5 + 40 * 2 / 3) / 60)
    assert out.loc["V1", "unmatched"] == 0
