"""SPC wired to the warehouse: each metric charted as its aggregation asks, and ranked signals."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ciboard.access import ANALYST, Scope
from ciboard.queries import data_map, run
from ciboard.signals import chart, signals
from ciboard.stats import spc


@pytest.fixture(scope="module")
def metrics(demo_warehouse) -> dict:
    return {row["metric_id"]: row for row in data_map(demo_warehouse).to_dict(orient="records")}


def test_a_rate_is_a_laney_p_chart_of_its_numerators_and_denominators(demo_warehouse, metrics):
    series = run(demo_warehouse, "series", ANALYST, {"metric": "tutoring_attendance_rate", "vendor_id": "V1"})
    charted = chart(series, metrics["tutoring_attendance_rate"])
    expected = spc.p_chart(series.numerator, series.denominator, direction="increase", laney=True, target=0.85)
    assert list(charted.period_start) == list(series.period_start)
    assert list(charted.students) == list(series.n)
    np.testing.assert_allclose(charted.upper, expected.upper)
    assert charted.target.eq(0.85).all()


def test_a_mean_is_an_xmr_chart_in_the_better_direction(demo_warehouse, metrics):
    series = run(demo_warehouse, "series", ANALYST, {"metric": "dosage_minutes"})
    charted = chart(series, metrics["dosage_minutes"])
    expected = spc.xmr(series.value, direction="increase", target=90)
    np.testing.assert_allclose(charted.center, expected.center)
    assert list(charted.point_type) == list(expected.point_type)


def test_a_known_change_rebases_the_limits(demo_warehouse, metrics):
    series = run(demo_warehouse, "series", ANALYST, {"metric": "tutoring_attendance_rate", "vendor_id": "V3"})
    with demo_warehouse.cursor() as cur:
        [(week_20,)] = cur.execute("select week_start from calendar_weeks where week_of_year = 20").fetchall()
    whole = chart(series, metrics["tutoring_attendance_rate"])
    split = chart(series, metrics["tutoring_attendance_rate"], rebase=[week_20])
    before, after = split[split.period_start < week_20], split[split.period_start >= week_20]
    assert before.segment.eq(0).all() and after.segment.eq(1).all()
    assert after.center.iloc[0] < before.center.iloc[0] - 0.05
    # On its own limits the drop is no longer a signal; on the year's limits it is.
    assert (whole.point_type == "special_cause_concern").sum() > (split.point_type == "special_cause_concern").sum()


def test_the_v3_drop_is_a_concern_in_the_signals(demo_warehouse):
    found = signals(demo_warehouse, ANALYST, metrics=["tutoring_attendance_rate"], since=date(2026, 1, 5))
    v3 = found[(found.vendor_id == "V3") & found.dimension.isna()]
    assert len(v3) == 1
    assert v3.iloc[0].point_type == "special_cause_concern"
    assert "7 on one side" in v3.iloc[0].rules
    assert list(found.point_type.drop_duplicates()) == sorted(
        found.point_type.unique(), key=["special_cause_concern", "special_cause_improvement"].index
    )


def test_a_vendor_gets_only_its_own_signals(demo_warehouse):
    found = signals(demo_warehouse, Scope("vendor", "V3"), metrics=["tutoring_attendance_rate"], since=date(2026, 1, 5))
    assert not found.empty
    assert set(found.vendor_id) == {"V3"}


def test_hidden_small_cells_never_signal(demo_warehouse):
    min_cell = demo_warehouse.settings.min_cell_size
    asked = {"metrics": ["sel_identity"], "dimensions": ["race_ethnicity"], "since": date(2025, 9, 1)}
    analyst = signals(demo_warehouse, ANALYST, **asked)
    facilitator = signals(demo_warehouse, Scope("facilitator"), **asked)
    assert (analyst.n < min_cell).any(), "the data has small groups that signal"
    assert not facilitator.empty
    assert (facilitator.n >= min_cell).all()


def test_window_metrics_are_too_short_to_chart_and_are_left_out(demo_warehouse):
    assert signals(demo_warehouse, ANALYST, metrics=["sgp", "proficient"], since=date(2025, 9, 1)).empty
