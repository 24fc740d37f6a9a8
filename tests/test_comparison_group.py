"""Issue 12 §5 on the demo district: students no vendor tutors as a vendor value, the matched
comparison in every scope (a vendor gets it pooled, never their rows), and the difference in
differences of a PDSA cycle."""

from datetime import date

import pytest

from ciboard import charts, meetings, movements
from ciboard.appdb import AppDB
from ciboard.access import Scope, ScopeError
from ciboard.ci_records import Slice
from ciboard.queries import NOT_TUTORED, VIEWS, data_map, run
from conftest import VENDOR_LABELS, default_dates, download, figures, open_page, plotted, view

VENDOR = Scope("vendor", "V1")


def test_untutored_students_are_a_vendor_value_for_the_district(demo_warehouse):
    cells = run(demo_warehouse, "breakdown", Scope("facilitator"), {"metric": "school_attendance_rate", "by": "vendor_id"})
    assert NOT_TUTORED in set(cells["vendor_id"])
    choices = run(demo_warehouse, "choices", Scope("analyst")).query("dimension == 'vendor_id'")
    assert choices.set_index("value").loc[NOT_TUTORED, "label"] == "Not tutored"
    only = run(demo_warehouse, "series", Scope("analyst"), {"metric": "sgp", "grain": "window", "vendor_id": NOT_TUTORED})
    assert only["n"].min() > 0


@pytest.mark.parametrize("view, extra", [
    ("series", {}), ("breakdown", {"by": "school_id"}), ("vendors", {}), ("panel", {"by": "grade"}), ("matched", {}),
    ("peers", {}), ("coverage", {}), ("absent_students", {"max_rate": 1}), ("follow_up_counts", {"max_rate": 1}),
])
def test_a_vendor_never_reaches_untutored_students_by_a_filter(demo_warehouse, view, extra):
    metric = {"metric": "school_attendance_rate"} if "metric" in VIEWS[view].params else {}
    for asked in (NOT_TUTORED, [NOT_TUTORED, "V1"], "V1,not tutored"):
        with pytest.raises(ScopeError):
            run(demo_warehouse, view, VENDOR, {**metric, **extra, "vendor_id": asked})


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
    movement = movements.metric_movement(
        demo_warehouse, Scope("analyst"), "met_growth_target", Slice(vendor_id="V1"), date(2026, 1, 12)
    )
    assert movement.comparison == "students no vendor tutors at the same schools"
    assert movement.did == pytest.approx(movement.difference - movement.comparison_change, abs=1e-9)
    assert movement.did_low < movement.did < movement.did_high
    # Tutoring attendance: untutored students have none, so other vendors' students compare.
    other = movements.metric_movement(
        demo_warehouse, Scope("analyst"), "tutoring_attendance_rate", Slice(vendor_id="V1"), date(2026, 1, 12)
    )
    assert other.comparison == "all other vendors' students"


def test_a_vendor_reads_its_change_beyond_all_other_vendors_pooled(demo_warehouse):
    since = date(2026, 1, 12)
    attendance = movements.metric_movement(demo_warehouse, VENDOR, "tutoring_attendance_rate", Slice(), since)
    assert attendance.comparison == movements.PEERS
    assert attendance.did == pytest.approx(attendance.difference - attendance.comparison_change, abs=1e-9)
    assert attendance.did_low < attendance.did < attendance.did_high
    # The pool is V1's other vendors as the district reads them (with a facilitator's noise).
    district = movements.metric_movement(
        demo_warehouse, Scope("facilitator"), "tutoring_attendance_rate", Slice(vendor_id="V1"), since
    )
    assert district.comparison == "all other vendors' students"
    assert (attendance.comparison_before, attendance.comparison_after, attendance.comparison_change) == pytest.approx(
        (district.comparison_before, district.comparison_after, district.comparison_change)
    )
    # Growth: the district compares with untutored schoolmates; a vendor with the other vendors' windows.
    growth = movements.metric_movement(demo_warehouse, VENDOR, "met_growth_target", Slice(), since)
    windows = run(demo_warehouse, "series", Scope("facilitator"), {
        "metric": "met_growth_target", "grain": "window", "vendor_id": ["V2", "V3", "V4", "V5", "V6"],
    })
    assert growth.comparison == movements.PEERS and growth.did_low < growth.did < growth.did_high
    assert {growth.comparison_before, growth.comparison_after} <= set(windows["value"])


def test_a_vendors_pool_of_one_other_vendor_is_not_shown(demo_warehouse):
    # In the demo each school has one vendor: V1's school has no other vendor's students at all.
    school = run(demo_warehouse, "breakdown", VENDOR, {"metric": "tutoring_attendance_rate", "by": "school_id"})["school_id"][0]
    alone = movements.metric_movement(
        demo_warehouse, VENDOR, "tutoring_attendance_rate", Slice(school_id=school), date(2026, 1, 12)
    )
    assert alone.status == "ok" and alone.did is None and alone.comparison == ""
    assert alone.comparison_before is None and "Fewer than two other vendors" in alone.comparison_note


# --- pages ---------------------------------------------------------------------------------


def test_vendors_sets_each_vendor_beside_untutored_students_matched(dashboard):
    span = default_dates(dashboard)
    app = open_page("app_pages/vendors.py", query={"metric": "Met growth target"})
    shown = download(app, "matched-met_growth_target").set_index("vendor_id")
    expected = view(dashboard, "matched", metric="met_growth_target", **span).set_index("vendor_id")
    assert list(shown.index) == ["V1", "V2", "V3", "V4", "V5", "V6"]
    assert shown["expected"].tolist() == pytest.approx(expected["expected"].tolist())
    assert shown["diff_low"].tolist() == pytest.approx(expected["diff_low"].tolist())
    # The vendors side by side are vendors: untutored students are not one of them.
    assert NOT_TUTORED not in set(download(app, "vendors-met_growth_target")["vendor_id"])
    assert any("were chosen for a reason" in c.value for c in app.caption)


def test_a_vendor_reads_its_matched_comparison_pooled(dashboard):
    span = default_dates(dashboard)
    app = open_page("app_pages/vendors.py", query={"metric": "Met growth target"}, user="vendor-v1")
    shown = download(app, "matched-met_growth_target")
    assert shown["vendor_id"].tolist() == ["V1"]
    mine = run(dashboard, "matched", VENDOR, {"metric": "met_growth_target", **span})
    assert shown["expected"].tolist() == pytest.approx(mine["expected"].tolist())
    # A vendor's figure is noised and pooled: not the analyst's exact one.
    exact = run(dashboard, "matched", Scope("analyst"), {"metric": "met_growth_target", "vendor_id": "V1", **span})
    assert shown["expected"].iloc[0] != pytest.approx(exact["expected"].iloc[0], abs=1e-12)


def test_trends_draws_untutored_students_matched_beside_one_vendor(dashboard):
    app = open_page("app_pages/trends.py", query={
        "metric": "Met growth target", "vendor": VENDOR_LABELS["V1"],
        "compare": "students without tutoring, matched (with one vendor filter)",
    })
    span = default_dates(dashboard)
    expected = view(dashboard, "matched", metric="met_growth_target", grain="window", vendor_id="V1", **span)
    [line] = [t for f in figures(app) for t in f["data"] if t.get("name") == "Without tutoring, matched"]
    assert [v for v in plotted(line) if v == v] == pytest.approx(expected["expected"].dropna().tolist())


def test_a_pdsa_cycle_shows_its_difference_in_differences_beside_the_plain_change(dashboard):
    db = AppDB.of(dashboard.settings)
    [cycle] = [c for c in meetings.pdsa_cycles(db, Scope("analyst")) if c.title == "Tutoring inside the school day"]
    expected = movements.pdsa_study(dashboard, Scope("facilitator"), cycle)
    metric = data_map(dashboard).set_index("metric_id").loc[cycle.metric_id].to_dict() | {"metric_id": cycle.metric_id}
    assert expected.did is not None and expected.comparison == "students no vendor tutors at the same schools"
    app = open_page("app_pages/pdsa.py", user="facilitator")
    app.selectbox(key="cycle").set_value(cycle.id).run()
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert f"**What the data did.** {expected.sentence(metric)}" in text
    assert expected.did_sentence(metric) in text
    assert charts.format_change(expected.did, metric) in expected.did_sentence(metric)


def test_a_vendor_with_few_matched_students_is_hidden_not_floored(demo_warehouse):
    # One school, grade and band: the analyst sees a handful of V1's students matched; every
    # other scope sees the row hidden, though noisy counts never read below the cell size.
    asked = {"metric": "school_attendance_rate", "school_id": "M01", "grade": "6", "baseline_band": "above"}
    exact = run(demo_warehouse, "matched", Scope("analyst"), asked)
    assert exact["n"].iloc[0] < 10 <= exact["reference_n"].iloc[0]
    [hidden] = run(demo_warehouse, "matched", Scope("facilitator"), asked).to_dict("records")
    assert hidden["suppressed"] and hidden["expected"] != hidden["expected"]  # NaN


def test_a_vendors_pdsa_cycle_reads_beyond_all_other_vendors_pooled(dashboard):
    db = AppDB.of(dashboard.settings)
    [cycle] = [c for c in meetings.pdsa_cycles(db, VENDOR) if c.title == "Tutoring inside the school day"]
    expected = movements.pdsa_study(dashboard, VENDOR, cycle)
    metric = data_map(dashboard).set_index("metric_id").loc[cycle.metric_id].to_dict() | {"metric_id": cycle.metric_id}
    assert expected.comparison == movements.PEERS and expected.did is not None
    app = open_page("app_pages/pdsa.py", user="vendor-v1")
    app.selectbox(key="cycle").set_value(cycle.id).run()
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert expected.did_sentence(metric) in text and "all other vendors' students, pooled" in text
    caption = " ".join(c.value for c in app.caption)
    assert "never with one other vendor" in caption and "Students without tutoring are the comparison" not in caption
