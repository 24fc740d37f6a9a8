"""Properties of the statistics that must hold for any data.

- XmR signals do not depend on the units: shifting and positively scaling a
  series keeps every flag; a negative scale keeps the flags and swaps
  improvement and concern.
- A stable normal process signals at the rate the rules themselves imply,
  computed below from first principles, not from our own output.
- Intervals contain their point estimate and stay inside their range.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from ciboard.stats import intervals, spc

FLAGS = ["outside_limits", "shift", "trend", "two_in_three"]
SWAP = {
    "special_cause_improvement": "special_cause_concern",
    "special_cause_concern": "special_cause_improvement",
    "special_cause_neutral_high": "special_cause_neutral_low",
    "special_cause_neutral_low": "special_cause_neutral_high",
}
SIDE_SWAP = {"high": "low", "low": "high"}

# Integer data and integer transforms keep the arithmetic that decides a
# point's side of the center and a tie in a trend exact. Whether a point lies
# beyond a limit is a floating-point comparison with 2.66 x mR-bar and can tip
# either way for a point exactly on the boundary, so those series are skipped.
noise = st.lists(st.integers(-10_000, 10_000), max_size=40)
# Series with ties, long runs and a strict ramp, so every rule gets exercised.
structured = st.tuples(
    st.lists(st.integers(-20, 20), max_size=15),
    st.lists(st.integers(-20, 20), min_size=7, max_size=12, unique=True).map(sorted),
    st.lists(st.integers(0, 3), max_size=15),
).map(lambda parts: parts[0] + parts[1] + parts[2])


def on_a_boundary(chart, baseline, screen):
    scale = max(1.0, float(np.nanmax(np.abs(chart["value"])))) if len(chart) else 1.0
    for band in ["lower", "upper", "near_lower", "near_upper"]:
        gap = np.abs(chart["value"] - chart[band]).min()
        if not math.isnan(gap) and gap < 1e-9 * scale:
            return True
    if screen and len(chart) > 1:
        ranges = chart["moving_range"].to_numpy()[1:baseline]
        ceiling = spc.MR_CEILING * ranges.mean()
        if np.any(np.abs(ranges - ceiling) < 1e-9 * scale):
            return True
    return False


@settings(max_examples=150, derandomize=True, deadline=None, database=None)
@given(
    values=st.one_of(noise, structured),
    scale=st.integers(-50, 50).filter(bool),
    offset=st.integers(-10_000, 10_000),
    direction=st.sampled_from(["increase", "decrease", "neutral"]),
    baseline=st.one_of(st.none(), st.integers(2, 30)),
    screen=st.booleans(),
)
def test_xmr_signals_are_invariant_to_units(values, scale, offset, direction, baseline, screen):
    options = {"direction": direction, "baseline": baseline, "screen_outliers": screen}
    chart = spc.xmr(values, **options)
    moved = spc.xmr([scale * value + offset for value in values], **options)
    assume(not on_a_boundary(chart, baseline, screen) and not on_a_boundary(moved, baseline, screen))

    assert moved[FLAGS].equals(chart[FLAGS])
    expected_types = chart["point_type"].tolist()
    expected_sides = chart["signal_side"].tolist()
    if scale < 0:
        expected_types = [SWAP.get(kind, kind) for kind in expected_types]
        expected_sides = [SIDE_SWAP.get(side, side) for side in expected_sides]
    assert moved["point_type"].tolist() == expected_types
    assert [side if isinstance(side, str) else None for side in moved["signal_side"]] == \
        [side if isinstance(side, str) else None for side in expected_sides]


# --- false alarms from a stable process --------------------------------------------
# For independent normal points with the limits at 3 sigma, each rule flags a
# point with a probability we can write down:
# - outside the limits: P(|Z| > 3) = 0.0027.
# - shift: the point sits in a run of 7 or more on one side of the mean. Each
#   side has probability 1/2; with a points of the same side to its left and b
#   to its right (geometric, cut short at the ends of the series), the point is
#   flagged when a + b + 1 >= 7. In an endless series this is 1/16 = 0.0625 (the
#   well-known price of a 7-point rule); shift_rate works it out exactly for a
#   series of N points.
# - trend: the point sits in 7 or more strictly rising points. Taking the
#   first such window of 7 that contains it, P = 1/7! + 6 (1/7! - 1/8!), and
#   twice that for rising or falling: 0.0025.
# - two in three: the point is between 2 and 3 sigma (0.0214 per side) and a
#   window of 3 around it has another such point with all 3 on its side;
#   two_in_three_rate enumerates the 4 neighbours: 0.0022.
# A flagged point is flagged by at least the shift rule's share and at most
# by the sum of the four, so the rate lies between shift_rate(N) and the sum.
# Estimating the mean and sigma from the same series lowers the shift rate a
# little (the sample mean follows the data); with 500 points the effect is
# under 0.001, well inside the sampling tolerance.

N_POINTS, N_SERIES = 500, 600


def shift_rate(n, run=7):
    total = 0.0
    for i in range(n):
        room_left, room_right = i, n - 1 - i

        def extent(a, room):
            # Probability that exactly a neighbours on one side share the point's side.
            return 0.5 ** (a + 1) if a < room else 0.5**room

        short = sum(
            extent(a, room_left) * extent(b, room_right)
            for a in range(min(run - 2, room_left) + 1)
            for b in range(min(run - 2 - a, room_right) + 1)
        )
        total += 1 - short
    return total / n


def two_in_three_rate():
    near = stats.norm.cdf(3) - stats.norm.cdf(2)
    weights = {"near": near, "same": 0.5 - near, "other": 0.5}
    qualifying = 0.0
    for before2, before1, after1, after2 in itertools.product(weights, repeat=4):
        pairs = [(before2, before1), (before1, after1), (after1, after2)]
        if any("other" not in pair and "near" in pair for pair in pairs):
            qualifying += math.prod(weights[label] for label in (before2, before1, after1, after2))
    return 2 * near * qualifying


def test_known_rates_of_the_rules():
    assert shift_rate(10_000) == pytest.approx(1 / 16, rel=1e-3)
    assert shift_rate(7) == pytest.approx(2 / 2**7)  # all 7 points on one side
    assert two_in_three_rate() == pytest.approx(0.0022, abs=1e-4)


def test_stable_process_false_alarm_rate():
    rng = np.random.default_rng(20240501)
    rates = {flag: np.empty(N_SERIES) for flag in FLAGS + ["any"]}
    for i in range(N_SERIES):
        chart = spc.xmr(rng.normal(10, 2, size=N_POINTS))
        for flag in FLAGS:
            rates[flag][i] = chart[flag].mean()
        rates["any"][i] = (chart["point_type"] != "common_cause").mean()

    expected = {
        "outside_limits": 2 * stats.norm.sf(3),
        "shift": shift_rate(N_POINTS),
        "trend": 2 * (1 / math.factorial(7) + 6 * (1 / math.factorial(7) - 1 / math.factorial(8))),
        "two_in_three": two_in_three_rate(),
    }
    low, high = expected["shift"], sum(expected.values())
    assert 0.061 < low < high < 0.070

    def within(flag, lower, upper):
        # Flags come in runs, so take the standard error across series.
        rate = rates[flag].mean()
        tolerance = 3 * rates[flag].std(ddof=1) / math.sqrt(N_SERIES)
        assert lower - tolerance <= rate <= upper + tolerance, (flag, rate, lower, upper, tolerance)

    within("any", low, high)
    for flag, rate in expected.items():
        within(flag, rate, rate)


# --- intervals -------------------------------------------------------------------


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(n=st.integers(1, 5000), share=st.floats(0, 1), confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_contains_the_rate(n, share, confidence):
    k = round(share * n)
    low, high = intervals.wilson(k, n, confidence)
    assert 0 <= low <= k / n <= high <= 1
    wider = intervals.wilson(k, n, 0.999)
    assert wider[0] <= low and high <= wider[1]


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(n1=st.integers(1, 500), n2=st.integers(1, 500), a=st.floats(0, 1), b=st.floats(0, 1))
def test_newcombe_contains_the_difference_and_is_antisymmetric(n1, n2, a, b):
    k1, k2 = round(a * n1), round(b * n2)
    difference, low, high = intervals.newcombe_difference(k1, n1, k2, n2)
    assert -1 <= low <= difference <= high <= 1
    swapped = intervals.newcombe_difference(k2, n2, k1, n1)
    assert swapped == pytest.approx((-difference, -high, -low), abs=1e-12)
