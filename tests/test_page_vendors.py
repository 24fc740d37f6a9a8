"""The Vendors page through AppTest, on the demo district (3000 students, seed 11).

Expected values come from the query layer and the statistics package, not from the page.
What the demo planted: V2 leads on attendance and its contract cap binds; V4 is habitually
late with its files; V6 missed a week.
"""

import json

import pandas as pd
import pytest

from ciboard import charts as charts_module
from ciboard import queries
from ciboard.access import Scope
from ciboard.queries import NOT_TUTORED
from ciboard.stats import compare, intervals
from conftest import VENDOR_LABELS, default_dates, download, open_page, plotted, view

PAGE = "app_pages/vendors.py"
ATTENDANCE = "tutoring_attendance_rate"
PARTNER = "school_attendance_rate"


def charts(app) -> dict[str, dict]:
    """The page's plotly figures by their element key."""
    return {chart.proto.id.split("-", 2)[-1]: json.loads(chart.proto.spec) for chart in app.get("plotly_chart")}


def chart(app, key: str) -> dict:
    return charts(app)[key]


def trace(figure: dict, name: str) -> dict:
    return next(t for t in figure["data"] if t.get("name") == name)


def test_vendor_values_intervals_and_funnel_match_the_vendors_view(dashboard):
    app = open_page(PAGE)
    span = default_dates(dashboard)
    expected = view(dashboard, "vendors", metric=ATTENDANCE, **span).set_index("vendor_id")
    students = view(dashboard, "student_values", metric=ATTENDANCE, metric_y=PARTNER, **span)
    spread = students.groupby("vendor_id")["x"].std()

    # Side by side: every vendor's value, with an interval whose unit is the student.
    table = download(app, f"vendors-{ATTENDANCE}").set_index("vendor_id")
    assert list(table.index) == ["V1", "V2", "V3", "V4", "V5", "V6"]
    assert table["value"].tolist() == pytest.approx(expected["value"].tolist())
    assert table["n"].tolist() == expected["n"].tolist()
    for vendor, row in table.iterrows():
        low, high = intervals.mean_t(expected.loc[vendor, "value"], spread[vendor], expected.loc[vendor, "n"])
        assert (row["low"], row["high"]) == pytest.approx((low, high))
        sessions = intervals.wilson(expected.loc[vendor, "numerator"], expected.loc[vendor, "denominator"])
        assert row["high"] - row["low"] > 2 * (sessions[1] - sessions[0]), "sessions are not independent"
    dots = chart(app, "side-by-side")["data"][0]
    assert dots["y"] == [VENDOR_LABELS[v] for v in table.index]
    assert plotted(dots, "x") == pytest.approx(table["value"].tolist())
    assert plotted(dots["error_x"], "array") == pytest.approx((table["high"] - table["value"]).tolist())
    shown = app.dataframe[0].value.set_index("vendor_id")
    assert shown["value"].tolist() == pytest.approx((table["value"] * 100).tolist())

    # Funnel: each vendor at its number of students, limits around the pooled value that
    # widen as the number of students falls.
    overall = expected["numerator"].sum() / expected["denominator"].sum()
    funnel = chart(app, "funnel")
    points = trace(funnel, "Tutoring attendance rate")
    assert points["text"] == list(table.index)
    assert plotted(points, "x") == expected["n"].tolist()
    assert plotted(points) == pytest.approx(expected["value"].tolist())
    upper, lower = (t for t in funnel["data"] if t.get("name") == "99.8% limits" or (t.get("showlegend") is False and t["line"]["dash"] == "dash"))
    sizes, high, low = plotted(upper, "x"), plotted(upper), plotted(lower)
    widths = [h - lo for h, lo in zip(high, low)]
    assert sizes == sorted(sizes) and sizes[0] < expected["n"].min() and sizes[-1] > expected["n"].max()
    assert all(a > b for a, b in zip(widths, widths[1:])), "limits widen as n falls"
    assert all(lo < overall < h for lo, h in zip(low, high))
    limits = download(app, f"funnel-{ATTENDANCE}").set_index("vendor_id")
    sigma = ((spread[expected.index] ** 2 * expected["n"]).sum() / expected["n"].sum()) ** 0.5
    v1_low, v1_high = intervals.mean_t(overall, sigma, expected.loc["V1", "n"], 0.998)
    assert (limits.loc["V1", "low_998"], limits.loc["V1", "high_998"]) == pytest.approx((v1_low, v1_high))
    assert limits.loc["V2", "position"] == "above 99.8% limit"
    assert limits.loc["V6", "position"] == "below 99.8% limit"
    above = limits.index[limits["position"] == "above 99.8% limit"]
    assert any(f"**Above 99.8% limit**: {', '.join(above)}" in m.value for m in app.markdown)


def test_adjusted_comparison_payments_and_timeliness(dashboard):
    app = open_page(PAGE, query={"metric": "Met high-dosage standard"})
    span = default_dates(dashboard)

    # Observed against expected: one row per vendor, from the baseline-band strata.
    cells = view(dashboard, "breakdown", metric="dosage_met", by="vendor_id", by2="baseline_band", **span)
    students = view(dashboard, "student_values", metric="dosage_met", metric_y=PARTNER, **span)
    spread = students.groupby(["vendor_id", "baseline_band"])["x"].std().rename("spread").reset_index()
    strata = cells.merge(spread, on=["vendor_id", "baseline_band"])
    strata = strata.assign(mean=strata["value"], sd=strata["spread"].where(strata["n"] > 1, 0.0))
    want = compare.observed_expected(strata[["vendor_id", "baseline_band", "mean", "sd", "n"]]).set_index("vendor_id")
    adjusted = download(app, "adjusted-dosage_met").set_index("vendor_id")
    assert list(adjusted.index) == ["V1", "V2", "V3", "V4", "V5", "V6"]
    for column in ("n", "observed", "expected", "difference", "diff_low", "diff_high", "ratio"):
        assert adjusted[column].tolist() == pytest.approx(want[column].tolist()), column
    assert adjusted.loc["V2", "diff_low"] > 0, "V2's students meet the dosage standard more than similar students"
    figure = chart(app, "adjusted")
    assert plotted(trace(figure, "Expected for its students"), "x") == pytest.approx(adjusted["expected"].tolist())
    assert plotted(trace(figure, "Observed (95% CI)"), "x") == pytest.approx(adjusted["observed"].tolist())
    assert "indirect standardisation" in " ".join(m.value for m in app.markdown)
    # The table holds each interval in one column, in the page's units, so none is cut off.
    table = next(d.value for d in app.dataframe if "Ratio (95% CI)" in d.value.columns).set_index("Vendor")
    assert list(table.columns) == ["Students", "Observed", "Expected", "Observed − expected", "95% CI", "Ratio (95% CI)"]
    v2 = table.loc[VENDOR_LABELS["V2"]]
    low, high = (f"{adjusted.loc['V2', end] * 100:+.1f} pts" for end in ("diff_low", "diff_high"))
    assert v2["95% CI"] == f"{low} to {high}"
    assert v2["Observed"] == f"{adjusted.loc['V2', 'observed']:.1%}"

    # Payments: what the rate card has earned, and V2's cap binds.
    payments = view(dashboard, "payments", end=span["end"]).set_index("vendor_id")
    earned = download(app, "payments").set_index("vendor_id")
    for column in ("students_served", "students_eligible", "students_successful", "amount_uncapped", "cap", "amount_earned"):
        assert earned[column].tolist() == pytest.approx(payments[column].tolist()), column
    assert earned["cap_applied"].to_dict() == {v: "Yes" if v == "V2" else "No" for v in earned.index}
    assert earned.loc["V2", "amount_earned"] == earned.loc["V2", "cap"] < earned.loc["V2", "amount_uncapped"]
    bars = trace(chart(app, "payments"), "Earned")
    assert plotted(bars, "x") == pytest.approx(payments["amount_earned"].tolist())
    assert "the cap binds for **V2 · Lumen Learning Partners**" in " ".join(m.value for m in app.markdown)

    # Timeliness: shares of each vendor's expected submissions by status.
    quality = view(dashboard, "quality", **span).dropna(subset=["vendor_id"])
    counts = pd.crosstab(quality["vendor_id"], quality["status"])
    shares = download(app, "timeliness").set_index("vendor_id")
    assert shares["late_count"].to_dict() == counts["late"].to_dict()
    assert shares.loc["V4", "late"] == pytest.approx(counts.loc["V4", "late"] / counts.loc["V4"].sum())
    assert shares.loc["V4", "late"] > 0.5 and shares.drop(index="V4")["late"].eq(0).all()
    assert shares.loc["V6", "missing_count"] == 2  # the week it missed: session log and exit tickets
    late = trace(chart(app, "timeliness"), "late")
    assert plotted(late, "x") == pytest.approx(shares["late"].tolist())


def test_a_vendor_profile_with_its_metrics_trend_and_gaps(dashboard):
    app = open_page(PAGE, query={"profile": VENDOR_LABELS["V4"]})
    span = default_dates(dashboard)
    assert app.selectbox(key="profile").value == "V4"
    assert VENDOR_LABELS["V4"] in [s.value for s in app.subheader]

    key_metrics = download(app, "profile-V4-metrics").set_index("metric_id")
    for metric_id in ("dosage_met", "tutoring_attendance_rate", "met_growth_target"):
        # "All vendors" is every vendor's students: the district's untutored students are no vendor's.
        every = view(dashboard, "vendors", metric=metric_id, **span).set_index("vendor_id").drop(index=NOT_TUTORED, errors="ignore")
        assert key_metrics.loc[metric_id, "value"] == pytest.approx(every.loc["V4", "value"])
        assert key_metrics.loc[metric_id, "all_vendors"] == pytest.approx(every["numerator"].sum() / every["denominator"].sum())
    tiles = {m.label: m for m in app.metric}
    assert tiles["Tutoring attendance rate"].value == f"{key_metrics.loc[ATTENDANCE, 'value']:.1%}"

    trend = download(app, "profile-V4-trend")
    series = view(dashboard, "series", metric=ATTENDANCE, grain="week", vendor_id=["V4"], **span)
    assert trend["value"].tolist() == pytest.approx(series["value"].tolist())
    figure = chart(app, "profile-trend")
    assert {"Process limits", "Centre", "All vendors", "Tutoring attendance rate"} <= {t.get("name") for t in figure["data"]}
    assert trace(figure, "All vendors")["line"] == charts_module.BENCHMARK_LINE  # one benchmark style everywhere

    gaps = download(app, "profile-V4-gaps")
    assert set(gaps["dimension"]) <= {"baseline_band", "grade", "school_id", "race_ethnicity", "gender",
                                      "econ_disadvantaged", "english_learner", "special_education"}
    assert len(gaps) >= 5
    assert ((gaps["low"] <= gaps["value"]) & (gaps["value"] <= gaps["high"])).all()
    bands = view(dashboard, "breakdown", metric=ATTENDANCE, by="baseline_band", vendor_id=["V4"], **span).set_index("baseline_band")
    band = gaps[gaps["dimension"] == "baseline_band"].iloc[0]
    assert band["value"] == pytest.approx(bands.loc[band["group"], "value"] - bands.loc[band["reference"], "value"])
    assert band["reference"] == bands["n"].idxmax()

    # The trend opens on Trends with the vendor as the filter. (AppTest keeps no sidebar widgets
    # after the first run, so Trends cannot read the filter back here; the browser does.)
    app.button(key="to-trends").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Trends"
    assert app.session_state["vendor"] == ["V4"]


def test_the_page_works_with_one_vendor(dashboard):
    app = open_page(PAGE, query={"vendor": VENDOR_LABELS["V3"]})
    assert [dots["y"] for dots in [chart(app, "side-by-side")["data"][0]]] == [[VENDOR_LABELS["V3"]]]
    notes = " ".join(i.value for i in app.info)
    assert "needs at least two vendors" in notes
    assert app.selectbox(key="profile").value == "V3", "the only vendor's profile opens by itself"
    assert "profile-trend" in " ".join(charts(app))


def test_means_and_medians(dashboard):
    span = default_dates(dashboard)
    app = open_page(PAGE, query={"metric": "Tutoring minutes per week"})
    expected = view(dashboard, "vendors", metric="dosage_minutes", **span).set_index("vendor_id").drop(index=NOT_TUTORED, errors="ignore")
    points = trace(chart(app, "funnel"), "Tutoring minutes per week")
    assert plotted(points) == pytest.approx(expected["value"].tolist())
    assert "V2" in download(app, "funnel-dosage_minutes").query("position == 'above 99.8% limit'")["vendor_id"].tolist()

    app = open_page(PAGE, query={"metric": "Student growth percentile"})
    table = download(app, "vendors-sgp")
    # Students no vendor tutors are compared below, matched, not set beside the vendors.
    shown = view(dashboard, "vendors", metric="sgp", **span).query("vendor_id != @NOT_TUTORED")
    assert table["value"].tolist() == shown["value"].tolist()
    assert table[["low", "high"]].isna().all().all(), "a median has no interval here"
    assert "funnel" not in " ".join(charts(app))
    assert "SGP is a median" in " ".join(c.value for c in app.caption)


def test_a_vendor_sees_itself_beside_all_other_vendors(dashboard):
    app = open_page(PAGE, user="vendor-v2")
    span = default_dates(dashboard)
    v2 = Scope("vendor", "V2")
    assert set(charts(app)) == {"payments", "timeliness", "profile-trend", "profile-gaps"}, "no lone dot, funnel or adjustment"
    mine = queries.run(dashboard, "vendors", v2, {"metric": ATTENDANCE, **span}).iloc[0]
    headline = " ".join(m.value for m in app.markdown)
    assert f"for your **{int(mine['n']):,} students**: **{mine['value']:.1%}**" in headline
    assert download(app, "payments")["vendor_id"].tolist() == ["V2"]
    assert download(app, "timeliness")["vendor_id"].tolist() == ["V2"]
    assert "Intervals count students" in " ".join(c.value for c in app.caption), "no student rows: the safe bound"
    assert not [s for s in app.selectbox if s.key == "profile"], "nothing to choose"
    assert "Your profile" in [h.value for h in app.header]

    # Each tile: its latest month against all other vendors pooled in that month.
    key_metrics = download(app, "profile-V2-metrics").set_index("metric_id")
    own = queries.run(dashboard, "series", v2, {"metric": ATTENDANCE, "grain": "month", **span}).dropna(subset=["value"])
    peers = queries.run(dashboard, "peers", v2, {"metric": ATTENDANCE, "grain": "month", **span}).dropna(subset=["value"])
    latest = own.merge(peers, on="period_start", suffixes=("", "_peers")).iloc[-1]
    assert key_metrics.loc[ATTENDANCE, "value"] == pytest.approx(latest["value"])
    assert key_metrics.loc[ATTENDANCE, "all_other_vendors"] == pytest.approx(latest["value_peers"])
    tile = next(m for m in app.metric if m.label == "Tutoring attendance rate")
    assert tile.value == f"{latest['value']:.1%}"
    assert f"vs all other vendors in {latest['period_start']:%b %Y}" in str(tile.proto)

    # The trend: its own line and the pooled benchmark, which the peers view gives.
    weekly = queries.run(dashboard, "peers", v2, {"metric": ATTENDANCE, "grain": "week", **span})
    benchmark = trace(chart(app, "profile-trend"), "All other vendors")
    assert plotted(benchmark) == pytest.approx(weekly["value"].tolist(), nan_ok=True)
    assert benchmark["line"] == charts_module.BENCHMARK_LINE
