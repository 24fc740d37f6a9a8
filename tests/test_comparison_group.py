"""Issue 12 §5 on the demo district: students no vendor tutors as a vendor value, the matched
comparison in every scope (a vendor gets it pooled, never their rows), and the difference in
differences of a PDSA cycle."""

from datetime import date

import pytest

from ciboard import followup
from ciboard.access import Scope, ScopeError
from ciboard.ci_records import Slice
from ciboard.queries import NOT_TUTORED, run

VENDOR = Scope("vendor", "V1")


def test_untutored_students_are_a_vendor_value_for_the_district(demo_warehouse):
    cells = run(demo_warehouse, "breakdown", Scope("facilitator"), {"metric": "school_attendance_rate", "by": "vendor_id"})
    assert NOT_TUTORED in set(cells["vendor_id"])
    choices = run(demo_warehouse, "choices", Scope("analyst")).query("dimension == 'vendor_id'")
    assert choices.set_index("value").loc[NOT_TUTORED, "label"] == "Not tutored"
    only = run(demo_warehouse, "series", Scope("analyst"), {"metric": "sgp", "grain": "window", "vendor_id": NOT_TUTORED})
    assert only["n"].min() > 0


@pytest.mark.parametrize("view", ["series", "breakdown", "vendors", "panel", "matched", "student_values"])
def test_a_vendor_never_reaches_untutored_students_by_a_filter(demo_warehouse, view):
    params = {"metric": "school_attendance_rate", "metric_y": "sgp", "by": "school_id", "vendor_id": NOT_TUTORED}
    params = {k: v for k, v in params.items() if k in {"metric", "vendor_id", "metric_y", "by"} and (k != "metric_y" or view == "student_values") and (k != "by" or view in ("breakdown", "panel"))}
    with pytest.raises(ScopeError):
        run(demo_warehouse, view, VENDOR, params)


def test_a_vendor_reads_its_own_students_only_and_no_untutored_row(demo_warehouse):
    for view in ("breakdown", "panel"):
        cells = run(demo_warehouse, view, VENDOR, {"metric": "school_attendance_rate", "by": "vendor_id"})
        assert set(cells["vendor_id"]) == {"V1"}
    choices = run(demo_warehouse, "choices", VENDOR).query("dimension == 'vendor_id'")
    assert list(choices["value"]) == ["V1"]


def test_the_matched_comparison_is_one_pooled_row_for_a_vendor_and_hides_small_pools(demo_warehouse):
    mine = run(demo_warehouse, "matched", VENDOR, {"metric": "met_growth_target"})
    assert list(mine["vendor_id"]) == ["V1"]
    assert set(mine.columns) == {"vendor_id", "n", "observed", "expected", "difference", "diff_low", "diff_high",
                                 "unmatched", "reference_n", "suppressed"}
    # One school and grade: too few untutored students of each band stand behind it to show.
    narrow = run(demo_warehouse, "matched", VENDOR, {"metric": "met_growth_target", "school_id": "E01", "grade": "3",
                                                     "baseline_band": "above"})
    assert narrow.empty or narrow["suppressed"].all() and narrow["expected"].isna().all()


def test_tutored_students_beat_their_untutored_schoolmates_on_growth(demo_warehouse):
    # The demo plants tutoring's growth: every vendor's students grow more than untutored ones like them.
    matched = run(demo_warehouse, "matched", Scope("analyst"), {"metric": "met_growth_target", "start": "2026-03-01"})
    assert set(matched["vendor_id"]) == {"V1", "V2", "V3", "V4", "V5", "V6"}
    assert (matched["difference"] > 0).all() and (matched["unmatched"] >= 0).all()
    assert (matched["diff_low"] < matched["difference"]).all() and (matched["difference"] < matched["diff_high"]).all()
    # School attendance is not planted to differ: no vendor is far from its untutored schoolmates.
    attendance = run(demo_warehouse, "matched", Scope("analyst"), {"metric": "school_attendance_rate"})
    assert (attendance["difference"].abs() < 0.02).all()


def test_a_pdsa_cycle_reads_as_a_difference_in_differences(demo_warehouse):
    movement = followup.metric_movement(
        demo_warehouse, Scope("analyst"), "met_growth_target", Slice(vendor_id="V1"), date(2026, 1, 12)
    )
    assert movement.comparison == "students no vendor tutors at the same schools"
    assert movement.did == pytest.approx(movement.difference - movement.comparison_change, abs=1e-9)
    assert movement.did_low < movement.did < movement.did_high
    # Tutoring attendance: untutored students have none, so other vendors' students compare.
    other = followup.metric_movement(
        demo_warehouse, Scope("analyst"), "tutoring_attendance_rate", Slice(vendor_id="V1"), date(2026, 1, 12)
    )
    assert other.comparison == "all other vendors' students"
    assert followup.metric_movement(
        demo_warehouse, VENDOR, "met_growth_target", Slice(vendor_id="V1"), date(2026, 1, 12)
    ).did is None
