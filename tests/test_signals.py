"""SPC wired to the warehouse: each metric charted as its aggregation asks, and ranked signals."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ciboard.access import ANALYST, Scope
from ciboard.queries import data_map, run
from ciboard.signals import chart, closures, fold, rank, shut, signals, special_points
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


@pytest.mark.parametrize("metric_id", ["tutoring_attendance_rate", "dosage_minutes"])
def test_the_scan_keeps_the_special_points_the_pages_draw(demo_warehouse, metrics, metric_id):
    """special_points charts thousands of series in arrays; a page draws one through `chart`.
    Both must find the same special-cause points, with the same limits, break weeks and all."""
    with demo_warehouse.cursor() as cur:
        events = cur.execute("select * from annotations").df()
    points = special_points(demo_warehouse, ANALYST, metrics=[metric_id], dimensions=("school_id",))
    panels = {
        (None, None): run(demo_warehouse, "series", ANALYST, {"metric": metric_id, "grain": "week"}).assign(key=""),
        ("school_id", None): run(demo_warehouse, "panel", ANALYST, {"metric": metric_id, "grain": "week", "by": "school_id"})
        .assign(key=lambda f: f["school_id"]),
        (None, "vendor_id"): run(demo_warehouse, "panel", ANALYST, {"metric": metric_id, "grain": "week", "by": "vendor_id"})
        .assign(key=lambda f: f["vendor_id"]),
    }
    compared = 0
    for (dimension, vendor), panel in panels.items():
        for key, series in panel.groupby("key"):
            if len(series) < 12:
                continue  # too few weeks to chart
            held = {"vendors": [key] if vendor else None, "schools": [key] if dimension else None}
            drawn = chart(series, metrics[metric_id], closed=closures(events, metric_id, **held))
            drawn = drawn[drawn["point_type"].fillna("common_cause") != "common_cause"]
            mine = points[
                (points["dimension"].isna() if dimension is None else points["dimension"] == dimension)
                & (points["group"].isna() if dimension is None else points["group"] == key)
                & (points["vendor_id"].isna() if vendor is None else points["vendor_id"] == key)
            ]
            assert list(mine["period_start"]) == list(drawn["period_start"]), (dimension, key)
            assert list(mine["point_type"]) == list(drawn["point_type"])
            for column in ("value", "center", "lower", "upper"):
                np.testing.assert_allclose(mine[column].astype(float), drawn[column].astype(float))
            compared += len(mine)
    assert compared > 20, "the demo's charts hold special-cause points to compare"


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


def signal(**fields) -> dict:
    base = {
        "metric_id": "m", "label": "M", "vendor_id": None, "dimension": None, "group": None,
        "period_start": date(2026, 1, 12), "point_type": "special_cause_concern", "rules": "outside the limits",
        "value": 0.5, "center": 0.8, "lower": 0.7, "upper": 0.9, "n": 100, "strength": 9.0, "target": None,
        "weeks": ["2026-01-12"], "side": "low", "rule_set": ["outside the limits"],
    }
    return {**base, **fields}


def test_a_group_that_only_repeats_its_parent_folds_under_it():
    found = pd.DataFrame([
        signal(weeks=["2026-01-05", "2026-01-12"]),
        signal(dimension="grade", group="3", n=10),  # same rule, side, weeks among the parent's: folds
        signal(dimension="grade", group="4", n=10, side="high", point_type="special_cause_improvement"),
        signal(dimension="grade", group="5", n=10, weeks=["2026-01-19"]),  # a week the parent did not signal
        signal(dimension="grade", group="6", n=10, rule_set=["outside the limits", "7 on one side"]),  # a rule more
        signal(vendor_id="V3", strength=4.0, weeks=["2026-01-19"]),  # a week of its own: stays
        signal(vendor_id="V3", dimension="grade", group="5", n=5, weeks=["2026-01-19"]),  # folds under V3
        signal(vendor_id="V4", dimension="grade", group="3", n=5),  # V4 has no signal: folds under the district
        signal(vendor_id="V5", n=50),  # repeats the district: folds, with its own folded group
        signal(vendor_id="V5", dimension="gender", group="Female", n=20),
        signal(metric_id="other", dimension="grade", group="3", n=10),  # another metric has no parent
    ])
    folded = fold(found)
    kept = {(r.metric_id, r.vendor_id if isinstance(r.vendor_id, str) else None, r.group if isinstance(r.group, str) else None)
            for r in folded.itertuples()}
    assert kept == {("m", None, None), ("m", None, "4"), ("m", None, "5"), ("m", None, "6"), ("m", "V3", None),
                    ("other", None, "3")}
    district = folded[(folded.metric_id == "m") & folded.vendor_id.isna() & folded.dimension.isna()].iloc[0]
    assert district.folded == [{"vendor_id": None, "dimension": "grade", "group": "3"},
                               {"vendor_id": "V4", "dimension": "grade", "group": "3"},
                               {"vendor_id": "V5", "dimension": None, "group": None},
                               {"vendor_id": "V5", "dimension": "gender", "group": "Female"}]
    assert folded[folded.vendor_id == "V3"].iloc[0].folded == [{"vendor_id": "V3", "dimension": "grade", "group": "5"}]


def test_concerns_rank_first_then_wholes_before_groups_then_by_strength():
    found = pd.DataFrame([
        signal(point_type="special_cause_improvement", side="high", strength=50.0),
        signal(dimension="grade", group="3", strength=30.0),
        signal(vendor_id="V1", strength=3.0),
        signal(strength=5.0),
        signal(point_type="special_cause_neutral_high", strength=99.0),
        signal(vendor_id="V2", dimension="gender", group="Female", strength=40.0),
    ]).assign(folded=[[]] * 6)
    ranked = rank(found)
    assert list(zip(ranked.point_type.str.removeprefix("special_cause_"), ranked.vendor_id.fillna("-"),
                    ranked.dimension.fillna("-"), ranked.strength)) == [
        ("concern", "-", "-", 5.0), ("concern", "V1", "-", 3.0),
        ("concern", "V2", "gender", 40.0), ("concern", "-", "grade", 30.0),
        ("improvement", "-", "-", 50.0), ("neutral_high", "-", "-", 99.0),
    ]


def test_a_closure_shuts_the_weeks_and_months_it_touches():
    weeks = [date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19), date(2026, 1, 26)]
    snow = [(date(2026, 1, 14), date(2026, 1, 14))]
    assert list(shut(weeks, snow)) == [False, True, False, False]
    # A break over a weekend only shuts no school day.
    assert not shut(weeks, [(date(2026, 1, 17), date(2026, 1, 18))]).any()
    months = [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    assert list(shut(months, snow, "month")) == [False, False, False], "one day of a month is not a fifth of it"
    assert list(shut(months, [(date(2025, 12, 19), date(2026, 1, 4))], "month")) == [True, False, False]


def test_closures_touch_the_charts_holding_their_students():
    events = pd.DataFrame([
        {"starts_on": date(2026, 1, 14), "ends_on": date(2026, 1, 14), "kind": "closure", "vendor_id": None, "school_id": None, "metric_id": None},
        {"starts_on": date(2026, 2, 2), "ends_on": date(2026, 2, 2), "kind": "closure", "vendor_id": None, "school_id": "E08", "metric_id": None},
        {"starts_on": date(2026, 3, 2), "ends_on": date(2026, 3, 6), "kind": "break", "vendor_id": "V1", "school_id": None, "metric_id": "sgp"},
        {"starts_on": date(2026, 1, 20), "ends_on": date(2026, 1, 20), "kind": "program change", "vendor_id": None, "school_id": None, "metric_id": None},
    ])
    assert len(closures(events, "sgp")) == 3
    assert len(closures(events, "sgp", vendors=["V2"], schools=["E09"])) == 1
    assert len(closures(events, "sgp", vendors=["V1"], schools=["E08"])) == 3
    assert len(closures(events, "dosage_minutes", vendors=["V1"])) == 2


def test_no_break_or_closure_week_fires_a_rule_and_the_demo_lists_far_fewer_signals(demo_warehouse, monkeypatch):
    since = date(2025, 9, 1)
    with demo_warehouse.cursor() as cur:
        events = cur.execute("select * from annotations").df()
    district_wide = closures(events, "")
    assert district_wide, "the demo annotates its breaks and closures"
    after = signals(demo_warehouse, ANALYST, since=since)
    weeks = sorted({w for ws in after["weeks"] for w in ws})
    shut_weeks = {w for w, closed in zip(weeks, shut([date.fromisoformat(w) for w in weeks], district_wide)) if closed}
    assert not shut_weeks, f"break or closure weeks fired a rule: {sorted(shut_weeks)}"
    # The same charts with every week compared and every group listed: what the meeting read before.
    monkeypatch.setattr("ciboard.signals.CLOSED_KINDS", ())  # no annotation closes anything
    monkeypatch.setattr("ciboard.signals.fold", lambda found: found.assign(folded=[[]] * len(found)))
    before = signals(demo_warehouse, ANALYST, since=since)
    before_weeks = {date.fromisoformat(w) for ws in before["weeks"] for w in ws}
    assert shut(sorted(before_weeks), district_wide).any(), "without the annotations, break weeks signal"
    print(f"demo signals since {since}: {len(before)} before, {len(after)} after")
    assert len(after) < len(before) / 2
    assert len(after) + sum(map(len, after["folded"])) <= len(before)


def test_the_return_from_winter_break_is_a_dip_not_a_year_of_improvement(demo_warehouse, metrics):
    # The demo's school attendance dips in the two weeks after winter break. Those weeks set
    # no limits: left in, they pulled the centre below every other week, and the Trends page
    # called the whole year a shift, "improving".
    metric = metrics["school_attendance_rate"]
    series = run(demo_warehouse, "series", ANALYST, {"metric": "school_attendance_rate"})
    events = run(demo_warehouse, "events", ANALYST, {"metric": "school_attendance_rate"})
    charted = chart(series, metric, closed=closures(events, "school_attendance_rate"))
    back = charted[charted["period_start"] >= date(2026, 1, 5)].head(2)
    assert list(back["period_start"]) == [date(2026, 1, 5), date(2026, 1, 12)]
    assert back["returning"].all() and (back["point_type"] == "special_cause_concern").all()
    assert charted["returning"].sum() == 2
    counted = charted[~charted["excluded"] & ~charted["returning"]]
    assert charted["center"].iloc[0] == pytest.approx((counted["value"] * counted["n"]).sum() / counted["n"].sum())
    assert not (charted["point_type"] == "special_cause_improvement").any()
    # No other week falls outside the limits. (With the demo's untutored students the district
    # is 6,000 students, whose limits are narrow enough that seven autumn weeks a fraction of a
    # point under the centre make a run: chance, but a run, and the rule says so.)
    assert not charted.drop(index=back.index)["outside_limits"].any()
    assert spc.summary(charted, direction="increase")["variation"] == "common_cause"

    # Without the break set apart, the dip drags the centre down and the rest reads as improving.
    kept = spc.p_chart(series["numerator"], series["denominator"], direction="increase", laney=True,
                       exclude=list(np.flatnonzero(charted["excluded"])))
    assert (kept["point_type"] == "special_cause_improvement").sum() > len(kept) / 2
