"""The query layer: scope on every view, closed lists, bound values, small cells hidden."""

import itertools
import math

import pandas as pd
import pytest

from conftest import DEMO_STUDENTS, SAMPLES
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.ingest import Submission, ingest
from ciboard.queries import DIMENSIONS, NOT_TUTORED, OWN_STUDENTS, VIEWS, QueryError, breakdowns, panels, run

VENDOR_IDS = ["V1", "V2", "V3", "V4", "V5", "V6"]
FACILITATOR = Scope("facilitator")

INJECTIONS = [
    "'; drop table facts; --",
    "V1' or '1'='1",
    "V2\" or 1=1 --",
    "1) union all select * from students --",
    "x'); delete from facts where ('1'='1",
    "$scope_vendor",
    "?",
    "%' or vendor_id like '%",
]


def params_for(view: str) -> dict:
    needed = {"metric": "tutoring_attendance_rate", "by": "school_id", "metric_y": "sgp", "max_rate": 0.5, "period": "2026-01",
              "student_id": "ST0000001"}
    return {name: value for name, value in needed.items() if name in VIEWS[view].required}


def vendors_in(frame: pd.DataFrame) -> set:
    return set(frame["vendor_id"].dropna()) if "vendor_id" in frame else set()


@pytest.mark.parametrize("vendor", VENDOR_IDS)
def test_a_vendor_sees_only_its_own_rows_in_every_view(demo_warehouse, vendor):
    scope = Scope("vendor", vendor)
    for view, spec in VIEWS.items():
        params = params_for(view)
        if spec.students and view not in OWN_STUDENTS:
            with pytest.raises(ScopeError):
                run(demo_warehouse, view, scope, params)
            continue
        frame = run(demo_warehouse, view, scope, params)
        assert vendors_in(frame) <= {vendor}, view
    by_vendor = run(demo_warehouse, "breakdown", scope, {"metric": "dosage_met", "by": "vendor_id"})
    assert list(by_vendor["vendor_id"]) == [vendor]
    assert list(run(demo_warehouse, "vendors", scope, {"metric": "sgp"})["vendor_id"]) == [vendor]
    # A series of the vendor's scope is the facilitator's series filtered to that vendor, noise
    # and all (the same students get the same noise), and within noise of the analyst's.
    mine = run(demo_warehouse, "series", scope, {"metric": "tutoring_attendance_rate"})
    theirs = run(demo_warehouse, "series", FACILITATOR, {"metric": "tutoring_attendance_rate", "vendor_id": vendor})
    pd.testing.assert_frame_equal(mine, theirs)
    exact = run(demo_warehouse, "series", ANALYST, {"metric": "tutoring_attendance_rate", "vendor_id": vendor})
    assert list(mine["period_start"]) == list(exact["period_start"])
    assert (mine["value"] - exact["value"]).abs().max() < 0.05 and ((mine["n"] - exact["n"]).abs() <= 2).all()


@pytest.mark.parametrize("vendor", ["V1", "V4"])
def test_asking_for_another_vendor_is_refused_without_naming_it(demo_warehouse, vendor):
    scope = Scope("vendor", vendor)
    others = [v for v in VENDOR_IDS if v != vendor]
    for asked in [others[0], ",".join(others), [vendor, others[1]], f"{vendor},{others[2]}"]:
        for view in ("series", "breakdown", "vendors"):
            with pytest.raises(ScopeError) as caught:
                run(demo_warehouse, view, scope, {**params_for(view), "vendor_id": asked})
            assert not any(other in str(caught.value) for other in others)
    own = run(demo_warehouse, "vendors", scope, {"metric": "dosage_met", "vendor_id": vendor})
    assert list(own["vendor_id"]) == [vendor]


@pytest.mark.parametrize("vendor", ["V2", "V5"])
def test_injection_strings_through_every_parameter_of_every_view(demo_warehouse, vendor):
    scope = Scope("vendor", vendor)
    with demo_warehouse.cursor() as cur:
        facts_before = cur.execute("select count(*) from facts").fetchall()[0][0]
    for view, spec in VIEWS.items():
        for name, text in itertools.product(spec.params, INJECTIONS):
            params = {**params_for(view), name: text}
            try:
                frame = run(demo_warehouse, view, scope, params)
            except (QueryError, ScopeError):
                continue
            # Whatever got through was a bound value: it matched nothing it should not have.
            assert vendors_in(frame) <= {vendor}, (view, name, text)
            if name in DIMENSIONS and name != "vendor_id":
                # Events of the whole district belong on every school's chart; no other row may match.
                matched = {"events": lambda: frame[name].isna().all(), "follow_up_counts": lambda: (frame["students"] == 0).all()}
                assert matched.get(view, lambda: frame.empty)(), (view, name, text)
    with demo_warehouse.cursor() as cur:
        assert cur.execute("select count(*) from facts").fetchall()[0][0] == facts_before


@pytest.mark.parametrize(
    ("view", "params", "message"),
    [
        ("trends", {}, "the views are series, breakdown, vendors, panel, choices, events, rejections, coverage"),
        ("series", {}, "view series needs metric"),
        ("series", {"metric": "attendance"}, "the metrics are dosage_met, dosage_minutes"),
        ("series", {"metric": "sgp", "grain": "year"}, "the grains are week, month, window"),
        ("series", {"metric": "sgp", "colour": "red"}, "unknown parameter(s) colour for view series; it takes metric, grain"),
        ("breakdown", {"metric": "sgp", "by": "ethnicity"}, "the dimensions are vendor_id, school_id, grade"),
        ("breakdown", {"metric": "sgp", "by": "grade", "by2": "grade"}, "different dimensions"),
        ("series", {"metric": "sgp", "start": "yesterday"}, "start must be an ISO date"),
        ("series", {"metric": "sgp", "start": "2026-01-01", "end": "2025-01-01"}, "is after end"),
        ("series", {"metric": "sgp", "english_learner": "sometimes"}, "english_learner must be true or false"),
        ("series", {"metric": "sgp", "grade": "third"}, "grade must be whole numbers"),
        ("series", {"metric": "sgp", "min_dosage_share": "1.5"}, "from 0 to 1"),
        ("payments", {"metric": "sgp"}, "it takes end"),
    ],
)
def test_bad_requests_say_what_is_valid(demo_warehouse, view, params, message):
    with pytest.raises(QueryError) as caught:
        run(demo_warehouse, view, ANALYST, params)
    assert message in str(caught.value)


def test_breakdown_columns_are_named_after_their_dimensions(demo_warehouse):
    one = run(demo_warehouse, "breakdown", ANALYST, {"metric": "proficient", "by": "grade"})
    two = run(demo_warehouse, "breakdown", ANALYST, {"metric": "proficient", "by": "english_learner", "by2": "vendor_id"})
    assert list(one.columns[:3]) == ["grade", "value", "n"]
    assert list(one["grade"]) == [3, 4, 5, 6, 7, 8]
    assert list(two.columns[:4]) == ["english_learner", "vendor_id", "value", "n"]
    assert set(two["english_learner"]) == {True, False}


def test_breakdown_values_add_up_to_the_whole(demo_warehouse):
    whole = run(demo_warehouse, "vendors", ANALYST, {"metric": "tutoring_attendance_rate"})
    parts = run(demo_warehouse, "breakdown", ANALYST, {"metric": "tutoring_attendance_rate", "by": "vendor_id", "by2": "gender"})
    sums = parts.groupby("vendor_id")[["numerator", "denominator", "n"]].sum()
    for row in whole.itertuples():
        assert sums.loc[row.vendor_id, "numerator"] == row.numerator
        assert sums.loc[row.vendor_id, "n"] == row.n  # each student has one gender
        assert math.isclose(row.value, row.numerator / row.denominator)


def test_filters_combine(demo_warehouse):
    everyone = run(demo_warehouse, "vendors", ANALYST, {"metric": "dosage_met"})
    some = run(
        demo_warehouse,
        "vendors",
        ANALYST,
        {"metric": "dosage_met", "grade": "3,4", "english_learner": "false", "start": "2025-10-01", "end": "2025-12-31"},
    )
    assert (some.set_index("vendor_id")["n"] < everyone.set_index("vendor_id")["n"]).all()
    # Native values and the text of a URL or the CLI mean the same thing.
    pd.testing.assert_frame_equal(
        run(demo_warehouse, "vendors", ANALYST, {"metric": "dosage_met", "grade": [3, 4], "english_learner": False}),
        run(demo_warehouse, "vendors", ANALYST, {"metric": "dosage_met", "grade": "3,4", "english_learner": "no"}),
    )


def test_the_dosage_filter_keeps_students_who_got_the_tutoring(demo_warehouse):
    everyone = run(demo_warehouse, "series", ANALYST, {"metric": "tutoring_attendance_rate", "grain": "month"})
    dosed = run(
        demo_warehouse, "series", ANALYST, {"metric": "tutoring_attendance_rate", "grain": "month", "min_dosage_share": 0.6}
    )
    assert (dosed["n"] < everyone["n"]).all()
    assert (dosed["value"] > everyone["value"]).all()


def test_small_cells_are_hidden_for_everyone_but_analysts(demo_warehouse):
    params = {"metric": "proficient", "by": "school_id", "by2": "race_ethnicity"}
    analyst = run(demo_warehouse, "breakdown", ANALYST, params)
    facilitator = run(demo_warehouse, "breakdown", FACILITATOR, params)
    small = analyst["n"] < demo_warehouse.settings.min_cell_size
    assert small.any() and (~small).any()
    assert analyst["value"].notna().all() and not analyst["suppressed"].any()
    assert (analyst["small_cell"] == small).all()
    hidden = facilitator["suppressed"]
    assert (hidden >= small).all() and (hidden > small).any()  # complements too
    assert facilitator.loc[hidden, ["value", "numerator", "denominator", "sd", "n"]].isna().all().all()
    # Shown cells carry cell-key noise: a count moves by two students at most, a share a little.
    assert ((facilitator.loc[~hidden, "n"] - analyst.loc[~hidden, "n"]).abs() <= 2).all()
    assert ((facilitator.loc[~hidden, "value"] - analyst.loc[~hidden, "value"]).abs() < 0.25).all()
    assert (facilitator.loc[~hidden, "n"] >= demo_warehouse.settings.min_cell_size).all()
    # No school or group is left with a lone hidden cell to subtract back from its total.
    for dimension in ("school_id", "race_ethnicity"):
        counts = facilitator.groupby(dimension)["suppressed"].agg(["sum", "count"])
        assert not ((counts["sum"] == 1) & (counts["count"] > 1)).any(), dimension


def test_a_vendor_breakdown_hides_a_second_group_beside_a_small_one(demo_warehouse):
    params = {"metric": "proficient", "by": "gender", "school_id": "M05"}
    analyst = run(demo_warehouse, "breakdown", ANALYST, params)
    vendor = run(demo_warehouse, "breakdown", Scope("vendor", "V4"), params)
    assert (analyst["n"] < 10).sum() == 1
    assert vendor["suppressed"].sum() == 2 and vendor["n"].isna().sum() == 2


def test_series_grains(demo_warehouse):
    weeks = run(demo_warehouse, "series", ANALYST, {"metric": "school_attendance_rate", "grain": "week"})
    months = run(demo_warehouse, "series", ANALYST, {"metric": "school_attendance_rate", "grain": "month"})
    windows = run(demo_warehouse, "series", ANALYST, {"metric": "sgp", "grain": "window"})
    assert len(weeks) > 35 and 9 <= len(months) <= 11 and len(windows) == 3
    assert all(d.day == 1 for d in months["period_start"])
    assert weeks["numerator"].sum() == months["numerator"].sum()
    # The demo's district holds as many untutored students again as tutored ones.
    assert (weeks["n"] <= 2 * DEMO_STUDENTS).all() and (weeks["n"] > DEMO_STUDENTS).any()


def test_a_panel_is_the_series_of_each_group(demo_warehouse):
    panel = run(demo_warehouse, "panel", ANALYST, {"metric": "dosage_met", "grain": "month", "by": "vendor_id"})
    for vendor, rows in panel.groupby("vendor_id"):
        alone = run(demo_warehouse, "series", ANALYST, {"metric": "dosage_met", "grain": "month", "vendor_id": vendor})
        assert list(rows["period_start"]) == list(alone["period_start"])
        assert list(rows["numerator"]) == list(alone["numerator"])
        assert list(rows["n"]) == list(alone["n"])


def test_choices_offer_only_what_the_scope_holds(demo_warehouse):
    everyone = run(demo_warehouse, "choices", ANALYST)
    mine = run(demo_warehouse, "choices", Scope("vendor", "V2"))
    assert set(everyone[everyone.dimension == "vendor_id"].value) == {*VENDOR_IDS, NOT_TUTORED}
    assert list(mine[mine.dimension == "vendor_id"].value) == ["V2"]
    assert list(mine[mine.dimension == "vendor_id"].label) == ["Lumen Learning Partners"]
    schools = set(mine[mine.dimension == "school_id"].value)
    assert schools and schools < set(everyone[everyone.dimension == "school_id"].value)
    bands = list(everyone[everyone.dimension == "baseline_band"].value)
    assert bands == ["well below", "below", "near", "above"]
    grades = list(everyone[everyone.dimension == "grade"].value)
    assert len(grades) > 1 and grades == sorted(grades, key=int)
    assert list(everyone.dimension) == sorted(everyone.dimension), "one block per dimension"
    [year] = everyone[everyone.dimension == "school_year"].to_dict(orient="records")
    assert year["value"] == "2025-26" and year["students"] == 2 * DEMO_STUDENTS  # tutored and untutored


def test_a_vendor_sees_district_events_and_its_own_only(demo_warehouse):
    everyone = run(demo_warehouse, "events", ANALYST)
    v2 = run(demo_warehouse, "events", Scope("vendor", "V2"))
    assert "V1" in set(everyone.vendor_id.dropna())
    assert v2.vendor_id.isna().all() and len(v2) == len(everyone) - 1


def test_a_chart_marks_only_the_events_of_its_slice_and_metric(warehouse, tmp_path):
    events = tmp_path / "annotations.csv"
    events.write_text(
        "starts_on,ends_on,kind,title,description,vendor_id,school_id,metric_id\n"
        "2025-10-06,2025-10-06,program change,V1 moves sessions,,V1,,\n"
        "2025-10-13,2025-10-13,external,E01 assembly,,,E01,\n"
        "2025-10-20,2025-10-20,data,New proficiency cut,,,,proficient\n"
        "2025-12-22,2026-01-02,break,Winter break,,,,\n"
    )
    ingest(warehouse, [Submission(SAMPLES / "schools.csv", "schools"), Submission(SAMPLES / "vendors.csv", "vendors"),
                       Submission(events, "annotations")])

    def titles(**params) -> list[str]:
        return run(warehouse, "events", ANALYST, params).title.tolist()

    everything = ["V1 moves sessions", "E01 assembly", "New proficiency cut", "Winter break"]
    assert titles() == titles(vendor_id=(), school_id=[]) == everything
    assert titles(vendor_id=["V3"]) == ["E01 assembly", "New proficiency cut", "Winter break"]
    assert titles(vendor_id=["V1", "V3"], school_id=["E02"]) == ["V1 moves sessions", "New proficiency cut", "Winter break"]
    assert titles(metric="tutoring_attendance_rate") == ["V1 moves sessions", "E01 assembly", "Winter break"]
    assert titles(metric="proficient", vendor_id=["V2"], school_id=["E01"]) == [
        "E01 assembly", "New proficiency cut", "Winter break"]
    # The vendor's scope still comes first: a vendor naming another vendor is refused.
    with pytest.raises(ScopeError):
        run(warehouse, "events", Scope("vendor", "V3"), {"vendor_id": ["V1"]})
    with pytest.raises(QueryError, match="unknown metric"):
        run(warehouse, "events", ANALYST, {"metric": "nope"})


def test_rejections_name_file_row_column_and_reason(demo_warehouse):
    problems = run(demo_warehouse, "rejections", ANALYST)
    assert set(problems.vendor_id) == {"V2"} and problems.file_name.str.endswith("_first_try.csv").all()
    assert {"session_date", "attended_minutes", "student_id"} <= set(problems.column_name)
    assert run(demo_warehouse, "rejections", Scope("vendor", "V4")).empty


def test_coverage_is_a_share_of_enrolled_students(demo_warehouse):
    coverage = run(demo_warehouse, "coverage", ANALYST, {"start": "2025-10-01", "end": "2025-12-31"})
    assert coverage.coverage.between(0, 1).all()
    assert (coverage.with_data <= coverage.enrolled).all()
    sessions = coverage[coverage.metric_id == "tutoring_attendance_rate"]
    assert sessions.coverage.median() > 0.9


def test_student_rows_are_for_analysts_only(demo_warehouse):
    absent = run(demo_warehouse, "absent_students", ANALYST, {"max_rate": 0.5, "weeks": 4})
    assert not absent.empty and (absent.attendance_rate < 0.5).all()
    values = run(demo_warehouse, "student_values", ANALYST, {"metric": "sel_identity", "metric_y": "sgp"})
    assert len(values) > DEMO_STUDENTS / 2 and values.student_key.is_unique
    for scope in (FACILITATOR, Scope("vendor", "V1")):
        with pytest.raises(ScopeError, match="only analysts"):
            run(demo_warehouse, "student_values", scope, {"metric": "sgp", "metric_y": "sel_identity"})
    with pytest.raises(ScopeError, match="only analysts"):
        run(demo_warehouse, "absent_students", FACILITATOR, {"max_rate": 0.5})
    # The persistently absent are shared for follow-up: a vendor reads its own (tests/test_student_lists.py).
    own = run(demo_warehouse, "absent_students", Scope("vendor", "V1"), {"max_rate": 0.5, "weeks": 4})
    assert set(own.vendor_id) == {"V1"} and set(own.student_key) == set(absent.query("vendor_id == 'V1'").student_key)


def no_vendor_named(frame: pd.DataFrame) -> bool:
    text = " ".join(map(str, frame.columns)) + " " + frame.astype(str).to_csv()
    return not any(vendor in text for vendor in VENDOR_IDS)


@pytest.mark.parametrize("vendor", VENDOR_IDS)
def test_peers_pool_every_other_vendor_without_naming_one(demo_warehouse, vendor):
    asked = {"metric": "tutoring_attendance_rate", "grain": "month"}
    mine = run(demo_warehouse, "peers", Scope("vendor", vendor), asked)
    assert list(mine.columns) == ["period_start", "value", "suppressed"]
    assert no_vendor_named(mine) and not mine["suppressed"].any()
    others = [v for v in VENDOR_IDS if v != vendor]
    # The pool is the other vendors' students, with the same noise a facilitator's series of
    # them carries; an analyst's pool is exact.
    pooled = run(demo_warehouse, "series", FACILITATOR, {**asked, "vendor_id": others})
    assert list(mine["period_start"]) == list(pooled["period_start"])
    assert mine["value"].to_numpy() == pytest.approx(pooled["value"].to_numpy())
    exact = run(demo_warehouse, "series", ANALYST, {**asked, "vendor_id": others})
    analyst = run(demo_warehouse, "peers", ANALYST, {**asked, "vendor_id": vendor})
    assert list(analyst["n"]) == list(exact["n"]) and list(analyst["numerator"]) == list(exact["numerator"])
    # Anyone else names the vendor benchmarked, and sees the pool's counts too.
    full = run(demo_warehouse, "peers", FACILITATOR, {**asked, "vendor_id": vendor})
    assert list(full["n"]) == list(pooled["n"]) and list(full["numerator"]) == list(pooled["numerator"])
    assert (full["vendors"] == 5).all() and "vendor_id" not in full
    assert run(demo_warehouse, "peers", Scope("vendor", vendor), {**asked, "vendor_id": vendor}).equals(mine)
    with pytest.raises(ScopeError) as caught:
        run(demo_warehouse, "peers", Scope("vendor", vendor), {**asked, "vendor_id": others[0]})
    assert not any(other in str(caught.value) for other in others)


def test_peers_are_hidden_where_fewer_than_two_other_vendors_stand_behind(demo_warehouse):
    # Each demo school has one vendor: E01 is V1's, E05 V2's.
    asked = {"metric": "dosage_met", "grain": "month"}
    one = run(demo_warehouse, "peers", Scope("vendor", "V3"), {**asked, "school_id": "E01"})
    assert not one.empty and one["suppressed"].all() and one["value"].isna().all()
    two = run(demo_warehouse, "peers", Scope("vendor", "V3"), {**asked, "school_id": "E01,E05"})
    assert not two["suppressed"].any() and two["value"].notna().all()
    # Hidden for analysts too: the pool would be V1's own numbers.
    analyst = run(demo_warehouse, "peers", ANALYST, {**asked, "school_id": "E01", "vendor_id": "V3"})
    assert analyst["suppressed"].all() and analyst["n"].isna().all() and (analyst["vendors"] == 1).all()
    # Leaving out one of the two leaves one.
    v1 = run(demo_warehouse, "peers", Scope("vendor", "V1"), {**asked, "school_id": "E01,E05"})
    assert v1["suppressed"].all()


def test_peers_need_exactly_one_vendor_to_benchmark(demo_warehouse):
    for asked in ({}, {"vendor_id": "V1,V2"}, {"vendor_id": ["V1", "V2"]}):
        with pytest.raises(QueryError, match="exactly one vendor_id"):
            run(demo_warehouse, "peers", FACILITATOR, {"metric": "dosage_met", **asked})


@pytest.mark.parametrize("scope", [FACILITATOR, Scope("vendor", "V4")])
def test_injection_strings_through_every_parameter_of_peers(demo_warehouse, scope):
    base = {"metric": "dosage_met", "grain": "month"} | ({"vendor_id": "V4"} if scope.role != "vendor" else {})
    for name, text in itertools.product(VIEWS["peers"].params, INJECTIONS):
        try:
            frame = run(demo_warehouse, "peers", scope, {**base, name: text})
        except (QueryError, ScopeError) as error:
            # An error may echo what was asked, never name another vendor.
            named = {v for v in VENDOR_IDS if v in str(error)} - {v for v in VENDOR_IDS if v in text}
            assert named <= {"V4"}, (name, text)
            continue
        assert "vendor_id" not in frame and no_vendor_named(frame), (name, text)
        if name in DIMENSIONS and name != "vendor_id":
            assert frame.empty, (name, text)


@pytest.mark.parametrize("metric", ["sel_efficacy", "tutoring_attendance_rate", "proficient"])
def test_a_months_panel_counts_each_student_once_whatever_the_metric_aggregates(demo_warehouse, metric):
    # The panel sums a longer period's facts per student before it sums them per group; here
    # the same numbers come straight from the facts, counting distinct students in one step.
    with demo_warehouse.cursor() as cur:
        aggregation = cur.execute("select aggregation from metrics where metric_id = ?", [metric]).fetchone()[0]
        expected = cur.execute(
            """select coalesce(f.vendor_id, 'not tutored') as vendor_id, w.month_start as period_start,
                   case ? when 'rate' then sum(f.value) / sum(f.denominator) else avg(f.value) end as value,
                   count(distinct f.student_key) as n, sum(f.value) as numerator,
                   case ? when 'rate' then sum(f.denominator) else count(*) end as denominator,
                   stddev_samp(f.value) as sd, bit_xor(distinct hash(f.student_key, k.secret)) as cell_key
            from facts as f
            inner join calendar_weeks as w on w.week_start = f.period_start
            cross join privacy_key as k
            where f.metric_id = ?
            group by all order by all""",
            [aggregation, aggregation, metric],
        ).df()
        panel = cur.execute(
            "select group_1 as vendor_id, period_start, value, n, numerator, denominator, sd, cell_key"
            " from panel(?, grain := 'month', by_dimension := 'vendor_id') order by all",
            [metric],
        ).df()
    assert len(panel) == len(expected) > 20
    assert list(panel["n"]) == list(expected["n"])
    assert list(panel["cell_key"]) == list(expected["cell_key"])
    for column in ("value", "numerator", "denominator"):
        assert panel[column].to_numpy(dtype=float) == pytest.approx(expected[column].to_numpy(dtype=float), rel=1e-12)
    # The spread of single values is what an interval of a mean needs; of a rate or a
    # proportion, whose intervals come from their counts, there is none.
    if aggregation == "mean":
        assert panel["sd"].to_numpy(dtype=float) == pytest.approx(expected["sd"].to_numpy(dtype=float), rel=1e-9)
    else:
        assert panel["sd"].isna().all()


# One scope of each kind, each reading a metric of another aggregation, one with filters and dates.
PANELS_CASES = [
    (ANALYST, "tutoring_attendance_rate", {}),
    (FACILITATOR, "dosage_met", {"grade": [3, 4, 5], "start": "2025-10-01", "end": "2026-03-31"}),
    (Scope("vendor", "V3"), "sel_efficacy", {}),
    (Scope("school", school_ids=("E01", "E02")), "dosage_minutes", {"econ_disadvantaged": "true"}),
    (Scope("evaluator", evaluator="eva"), "sgp", {"vendor_id": ["V1", "V2"]}),
]


@pytest.mark.parametrize(("scope", "metric", "filters"), PANELS_CASES, ids=lambda v: str(v) if isinstance(v, Scope) else None)
def test_panels_in_one_pass_are_the_views_run_one_at_a_time(demo_warehouse, scope, metric, filters):
    """queries.panels reads the signals' 18 groupings from one pass over the facts: each frame must
    be the series or panel `run` gives, small cells, complements and noise included."""
    dimensions = [d for d in DIMENSIONS if d != "vendor_id"]
    groupings = [(), *[(d,) for d in dimensions], ("vendor_id",), *[("vendor_id", d) for d in dimensions]]
    params = {"metric": metric, "grain": "week", **filters}
    found = panels(demo_warehouse, scope, params, groupings)
    assert len(found) == len(groupings)
    hidden = 0
    for grouping, frame in zip(groupings, found):
        asked = {**params, **dict(zip(("by", "by2"), grouping))}
        expected = run(demo_warehouse, "panel" if grouping else "series", scope, asked)
        # Means are sums of doubles, whose last digits depend on the order DuckDB adds them in.
        pd.testing.assert_frame_equal(frame, expected, check_exact=False, rtol=1e-12, obj=f"{grouping}")
        assert frame.attrs["version"] == expected.attrs["version"]
        hidden += int(frame["suppressed"].sum())
    assert sum(len(frame) for frame in found) > 100
    if scope.suppresses_small_cells:
        assert hidden > 0, "the case should reach small cells, or it tests no suppression"


@pytest.mark.parametrize(("scope", "metric", "filters"), PANELS_CASES, ids=lambda v: str(v) if isinstance(v, Scope) else None)
@pytest.mark.parametrize("dates", [{}, {"start": "2026-01-05", "end": "2026-03-01"}], ids=["whole year", "weeks"])
def test_breakdowns_in_one_pass_are_the_views_run_one_at_a_time(demo_warehouse, scope, metric, filters, dates):
    """queries.breakdowns reads a meeting's gaps' six breakdowns of a metric in one pass; over a
    whole school year the view reads the students' yearly sums, the one pass their facts."""
    groupings = [(d,) for d in ("race_ethnicity", "gender", "econ_disadvantaged", "baseline_band")]
    groupings += [("vendor_id", "english_learner"), ("school_id", "grade")]
    params = {"metric": metric, **filters, **dates}
    found = breakdowns(demo_warehouse, scope, params, groupings)  # a median's, as run gives them
    for grouping, frame in zip(groupings, found, strict=True):
        expected = run(demo_warehouse, "breakdown", scope, {**params, **dict(zip(("by", "by2"), grouping))})
        pd.testing.assert_frame_equal(frame, expected, check_exact=False, rtol=1e-12, obj=f"{grouping}")
        assert not frame.empty


def test_panels_refuse_what_run_refuses(demo_warehouse):
    weekly = {"metric": "dosage_met", "grain": "week"}
    with pytest.raises(QueryError, match="weekly"):
        panels(demo_warehouse, ANALYST, {**weekly, "grain": "month"}, [("school_id",)])
    for bad in [*INJECTIONS, "student_key", "value"]:
        with pytest.raises(QueryError, match="unknown dimension"):
            panels(demo_warehouse, ANALYST, weekly, [("school_id",), ("vendor_id", bad)])
        with pytest.raises(QueryError):
            panels(demo_warehouse, ANALYST, {**weekly, "metric": bad}, [()])
    with pytest.raises(QueryError, match="different dimensions"):
        panels(demo_warehouse, ANALYST, weekly, [("grade", "grade")])
    with pytest.raises(ScopeError, match="only its own vendor"):
        panels(demo_warehouse, Scope("vendor", "V1"), {**weekly, "vendor_id": "V2"}, [(), ("school_id",)])
    with pytest.raises(ScopeError, match="only its own schools"):
        panels(demo_warehouse, Scope("school", school_ids=("E01",)), {**weekly, "school_id": "E02"}, [()])
    with pytest.raises(QueryError, match="unknown parameter"):
        panels(demo_warehouse, ANALYST, {**weekly, "scope_vendor": "V1"}, [()])
    with pytest.raises(QueryError, match="needs by"):
        breakdowns(demo_warehouse, ANALYST, {"metric": "dosage_met"}, [("grade",), ()])
    with pytest.raises(QueryError, match="unknown parameter"):
        breakdowns(demo_warehouse, ANALYST, {"metric": "dosage_met", "grain": "week"}, [("grade",)])
    with pytest.raises(ScopeError, match="only its own vendor"):
        breakdowns(demo_warehouse, Scope("vendor", "V1"), {"metric": "dosage_met", "vendor_id": "V2"}, [("grade",)])


def test_a_vendors_panels_hold_only_its_own_students(demo_warehouse):
    vendor = Scope("vendor", "V4")
    own, *rest = panels(demo_warehouse, vendor, {"metric": "dosage_met"}, [(), ("vendor_id",), ("vendor_id", "grade")])
    assert own["n"].sum() > 0
    assert all(set(frame["vendor_id"].dropna()) == {"V4"} for frame in rest)


def test_panels_leave_a_student_whose_group_is_unknown_out_of_that_dimension_only(loaded):
    # As a district's records leave a student's poverty and baseline unknown.
    with loaded.publish() as con:
        for table in ("facts", "student_year_sums"):  # the yearly sums are the facts', kept at ingest
            con.execute(f"update {table} set econ_disadvantaged = null, baseline_band = null where hash(student_key) % 3 = 0")
    groupings = [(), ("econ_disadvantaged",), ("baseline_band",), ("vendor_id", "econ_disadvantaged"), ("school_id",)]
    for metric in ("tutoring_attendance_rate", "school_attendance_rate"):
        for grouping, frame in zip(groupings[1:], breakdowns(loaded, ANALYST, {"metric": metric}, groupings[1:])):
            expected = run(loaded, "breakdown", ANALYST, {"metric": metric, **dict(zip(("by", "by2"), grouping))})
            pd.testing.assert_frame_equal(frame, expected, check_exact=False, rtol=1e-12, obj=f"{metric} {grouping}")
        found = panels(loaded, ANALYST, {"metric": metric}, groupings)
        for grouping, frame in zip(groupings, found):
            asked = {"metric": metric, **dict(zip(("by", "by2"), grouping))}
            expected = run(loaded, "panel" if grouping else "series", ANALYST, asked)
            pd.testing.assert_frame_equal(frame, expected, check_exact=False, rtol=1e-12, obj=f"{metric} {grouping}")
        whole, by_poverty, _, _, by_school = found
        assert by_poverty["econ_disadvantaged"].notna().all()
        weeks = whole.set_index("period_start")["n"]
        assert (by_poverty.groupby("period_start")["n"].sum() < weeks).all()
        assert (by_school.groupby("period_start")["n"].sum() == weeks).all()
