"""How a metric moved: movement against the series it comes from, the planted effects it
finds, what too little data says, and a PDSA cycle's study."""

import json
from datetime import date

import pandas as pd
import pytest

from ciboard import ci_records as rec, movements
from ciboard.access import ANALYST, Scope
from ciboard.queries import run

STAFF = Scope("facilitator")
ATTENDANCE = "tutoring_attendance_rate"
V3_DROP = date(2025, 12, 15)  # week 20 of the demo's school year, when V3's attendance falls


def pooled(rows: pd.DataFrame) -> float:
    return rows["numerator"].sum() / rows["denominator"].sum()


def test_movement_is_the_series_pooled_before_and_after(demo_warehouse):
    since, until = date(2026, 2, 5), date(2026, 3, 5)
    moved = movements.metric_movement(demo_warehouse, ANALYST, ATTENDANCE, rec.Slice(vendor_id="V3"), since, until)
    series = run(demo_warehouse, "series", ANALYST, {"metric": ATTENDANCE, "vendor_id": ["V3"], "end": until})
    before = series[series["period_start"] < since].tail(movements.BEFORE_WEEKS)
    after = series[series["period_start"] >= since]
    assert moved.status == "ok"
    assert (moved.before.points, moved.after.points) == (len(before), len(after)) == (8, 4)
    assert moved.before.value == pytest.approx(pooled(before))
    assert moved.after.value == pytest.approx(pooled(after))
    assert moved.difference == pytest.approx(pooled(after) - pooled(before))
    assert moved.before.start == before["period_start"].min().isoformat() and moved.after.end == "2026-03-08"
    students = run(demo_warehouse, "breakdown", ANALYST, {
        "metric": ATTENDANCE, "by": "vendor_id", "vendor_id": ["V3"], "start": since, "end": date(2026, 3, 8)})
    assert moved.after.students == int(students["n"].iloc[0])
    assert moved.low < moved.difference < moved.high
    assert "students" in moved.method


def test_a_window_metric_moves_from_window_to_window(demo_warehouse):
    # V1 moved tutoring into the school day in January; its growth rises at the winter window.
    v1 = rec.Slice(vendor_id="V1")
    moved = movements.metric_movement(demo_warehouse, ANALYST, "met_growth_target", v1, date(2026, 1, 12), date(2026, 3, 1))
    windows = run(demo_warehouse, "series", ANALYST, {"metric": "met_growth_target", "grain": "window", "vendor_id": ["V1"]})
    assert (moved.before.value, moved.after.value) == tuple(windows["value"].iloc[:2])
    assert (moved.before.students, moved.after.students) == tuple(windows["n"].iloc[:2])
    assert moved.verdict == "better" and moved.low > 0
    assert moved.signal is None and "too few" in moved.chart_note


def test_the_planted_drop_in_v3s_attendance_is_a_signal_and_a_change_for_the_worse(demo_warehouse):
    moved = movements.metric_movement(demo_warehouse, STAFF, ATTENDANCE, rec.Slice(vendor_id="V3"), V3_DROP, date(2026, 2, 28))
    assert moved.verdict == "worse" and moved.high < 0 and moved.difference < -0.05
    # Four of the eleven weeks since hold a holiday or a snow day: not comparable, so they never
    # signal. Of the rest, the exact numbers signal on five (the first week back from winter
    # break, far below the limits, sets none of its own: ciboard.signals); a facilitator's carry
    # the privacy noise of each build, which can move one week back inside the limits.
    exact = movements.metric_movement(demo_warehouse, ANALYST, ATTENDANCE, rec.Slice(vendor_id="V3"), V3_DROP, date(2026, 2, 28))
    assert exact.signal["point_type"] == "special_cause_concern" and exact.signals_after == 5
    assert moved.signal["point_type"] == "special_cause_concern" and moved.signals_after >= 3
    # Elsewhere nothing was planted: V2's weeks after winter break are within chance.
    steady = movements.metric_movement(demo_warehouse, STAFF, ATTENDANCE, rec.Slice(vendor_id="V2"), date(2026, 2, 2), date(2026, 3, 30))
    assert steady.verdict == "no clear change"


def test_intervals_without_student_rows_are_wider_never_narrower(demo_warehouse):
    slice_ = rec.Slice(vendor_id="V5", dimension="english_learner", value="true")
    analyst = movements.metric_movement(demo_warehouse, ANALYST, ATTENDANCE, slice_, V3_DROP, date(2026, 2, 28))
    staff = movements.metric_movement(demo_warehouse, STAFF, ATTENDANCE, slice_, V3_DROP, date(2026, 2, 28))
    # Staff read noisy counts and sums (ciboard.privacy), so their change is close, not equal.
    assert staff.difference == pytest.approx(analyst.difference, abs=0.03)
    assert staff.high - staff.low >= analyst.high - analyst.low


def test_not_enough_data_is_said_plainly(demo_warehouse):
    early = movements.metric_movement(demo_warehouse, ANALYST, ATTENDANCE, None, date(2025, 8, 4), date(2025, 10, 1))
    late = movements.metric_movement(demo_warehouse, ANALYST, ATTENDANCE, None, date(2026, 7, 1))
    assert (early.status, early.before, early.difference) == ("not enough data", None, None)
    assert "no week with data before 2025-08-04" in early.note
    assert late.status == "not enough data" and late.after is None and "since" in late.note
    assert json.loads(json.dumps(early.to_dict())) == early.to_dict()


def test_a_pdsa_study_reads_the_cycle_around_its_start(demo_warehouse):
    cycle = rec.PdsaCycle(title="School-day tutoring", metric_id="met_growth_target", start_on=date(2026, 1, 12),
                          slice=rec.Slice(vendor_id="V1"), ends_on=date(2026, 2, 28))
    study = movements.pdsa_study(demo_warehouse, ANALYST, cycle)
    assert study.since == "2026-01-12" and study.until == "2026-02-28" and study.verdict == "better"
