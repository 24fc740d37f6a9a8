"""The Disparities page through AppTest, on the demo district (3000 students, seed 11).

It should find what the demo planted: English learners at V5 attend tutoring about 10
points less than other V5 students. Expected values come from the query layer and the
statistics package, not from the page.
"""


import pandas as pd
import pytest

from ciboard import dashboard as dashboard_module
from ciboard import queries
from ciboard.access import ANALYST, Scope
from ciboard.stats import intervals
from conftest import VENDOR_LABELS, download, downloads, figures, open_page, plotted

PAGE = "app_pages/disparities.py"
ATTENDANCE = "tutoring_attendance_rate"


def figure(app, title: str) -> dict:
    return next(f for f in figures(app) if (f["layout"].get("title") or {}).get("text", "").startswith(title))


def matrix(trace: dict) -> list[list[float]]:
    """A heatmap's z, which plotly may send as a flat typed array with its shape."""
    z = trace["z"]
    if isinstance(z, dict):
        flat, (rows, columns) = plotted(trace, "z"), map(int, z["shape"].split(","))
        return [flat[r * columns:(r + 1) * columns] for r in range(rows)]
    return [[float("nan") if v is None else v for v in row] for row in z]


def view(warehouse, name: str, scope=ANALYST, **params) -> pd.DataFrame:
    return queries.run(warehouse, name, scope, params)


def test_the_v5_english_learner_attendance_gap_and_its_trend(dashboard):
    app = open_page(PAGE, query={"vendor": VENDOR_LABELS["V5"], "by": "English learner"})
    table = download(app, f"gaps-{ATTENDANCE}-by-english_learner").set_index("english_learner")
    groups = view(dashboard, "breakdown", metric=ATTENDANCE, by="english_learner", vendor_id=["V5"]).set_index("english_learner")
    yes, no = table.loc["Yes"], table.loc["No"]

    # A yes/no group's gap is measured from "no"; the gap is the planted one, and real.
    assert (no["is_reference"], yes["is_reference"]) == ("Yes", "No")
    assert yes["value"] == pytest.approx(groups.loc[True, "value"])
    assert yes["difference"] == pytest.approx(groups.loc[True, "value"] - groups.loc[False, "value"])
    assert -0.14 < yes["difference"] < -0.07
    assert yes["diff_high"] < 0
    assert "larger than chance alone would give" in app.markdown[0].value

    # Students are the unit: Welch's interval on the spread of students' own rates, which is
    # several times wider than counting every session as independent would make it.
    students = view(dashboard, "student_values", metric=ATTENDANCE, metric_y="school_attendance_rate", vendor_id=["V5"])
    sd = students.groupby("english_learner")["x"].std()
    expected = intervals.welch_difference(
        groups.loc[True, "value"], sd[True], groups.loc[True, "n"], groups.loc[False, "value"], sd[False], groups.loc[False, "n"]
    )
    assert (yes["diff_low"], yes["diff_high"]) == pytest.approx(expected[1:])
    sessions = intervals.newcombe_difference(*groups.loc[True, ["numerator", "denominator"]], *groups.loc[False, ["numerator", "denominator"]])
    assert yes["diff_high"] - yes["diff_low"] > 2 * (sessions[2] - sessions[1])
    assert "Intervals count students, not sessions" in " ".join(c.value for c in app.caption)

    # The charts show what the download holds: values with intervals, and gaps in points.
    values = figure(app, "Tutoring attendance rate by English learner")["data"][0]
    assert values["y"] == ["English learner: no", "English learner: yes"]
    assert plotted(values, "x") == pytest.approx([no["value"], yes["value"]])
    gaps = figure(app, "Gap to English learner: no")["data"][0]
    assert plotted(gaps, "x") == pytest.approx([0, yes["difference"] * 100])
    assert gaps["marker"]["color"][1] == "#F28E2B"  # a concern: behind by more than chance

    # The gap by month, charted with XmR: each point is that month's gap.
    trend = download(app, f"gap-trend-{ATTENDANCE}-english_learner-month")
    months = view(dashboard, "panel", metric=ATTENDANCE, grain="month", by="english_learner", vendor_id=["V5"])
    by_month = months.pivot(index="period_start", columns="english_learner", values="value")
    assert trend["value"].tolist() == pytest.approx((by_month[True] - by_month[False]).tolist())
    assert {"center", "lower", "upper", "point_type"} <= set(trend.columns)
    line = next(t for f in figures(app) for t in f["data"] if t.get("name") == "English learner: yes − English learner: no")
    assert plotted(line) == pytest.approx((trend["value"] * 100).tolist())
    assert all(-15 < gap < -5 for gap in plotted(line))


def test_small_groups_are_marked_not_shown(dashboard):
    app = open_page(PAGE, query={"vendor": VENDOR_LABELS["V5"], "by": "Race/ethnicity"})
    groups = view(dashboard, "breakdown", metric=ATTENDANCE, by="race_ethnicity", vendor_id=["V5"])
    small = set(groups.loc[groups["n"] < 10, "race_ethnicity"])
    assert small == {"Multiracial", "Pacific Islander"}  # 9 and 3 students at V5

    table = download(app, f"gaps-{ATTENDANCE}-by-race_ethnicity")
    assert set(table["suppressed"]) == {"Yes", "No"}  # as the pages say it, never True and False
    hidden = table[table["suppressed"] == "Yes"]
    assert set(hidden["group"]) == small
    assert hidden[["value", "low", "high", "difference", "ratio"]].isna().all().all()
    assert table.loc[table["suppressed"] == "No", "value"].notna().all()

    chart = figure(app, "Tutoring attendance rate by race/ethnicity")
    notes = {a["text"] for a in chart["layout"]["annotations"]}
    assert {"Multiracial: fewer than 10 students", "Pacific Islander: fewer than 10 students"} <= notes
    assert small.isdisjoint(chart["data"][0]["y"])
    shown = app.dataframe[0].value.set_index("Group")
    assert shown.loc["Pacific Islander", "Tutoring attendance rate"] == "fewer than 10 students"
    assert "2 value(s) over fewer than 10 students hidden" in " ".join(c.value for c in app.caption)

    # With one vendor chosen, the crossed view has a row per school of that vendor.
    heatmap = figure(app, "Gap to Hispanic, within each school")["data"][0]
    schools = view(dashboard, "breakdown", metric=ATTENDANCE, by="school_id", vendor_id=["V5"])
    assert len(heatmap["y"]) == len(schools) > 1


def test_two_dimensions_crossed_and_the_absent_students(dashboard):
    app = open_page(PAGE, query={"by": "Race/ethnicity"})
    heatmap = figure(app, "Gap to Hispanic, within each vendor")["data"][0]
    assert sorted(heatmap["y"]) == sorted(VENDOR_LABELS.values())
    assert heatmap["x"] == ["American Indian", "Asian", "Black", "Multiracial", "Pacific Islander", "White"]
    z = pd.DataFrame(matrix(heatmap), index=heatmap["y"], columns=heatmap["x"])

    crossed = view(dashboard, "breakdown", metric=ATTENDANCE, by="vendor_id", by2="race_ethnicity").set_index(["vendor_id", "race_ethnicity"])
    v5 = VENDOR_LABELS["V5"]
    # Cells and colour bar are in points, as the cells' text is.
    gap = crossed.loc[("V5", "Black"), "value"] - crossed.loc[("V5", "Hispanic"), "value"]
    assert z.loc[v5, "Black"] == pytest.approx(gap * 100)
    assert heatmap["colorbar"]["ticksuffix"] == " pts"

    # Each cell's interval counts students, as the groups' above do: the download holds it,
    # and a gap whose interval holds zero is faded and marked as within chance.
    cells = download(app, f"gaps-{ATTENDANCE}-by-vendor_id-and-race_ethnicity")
    cell = cells[(cells["vendor_id_group"] == v5) & (cells["group"] == "Black")].iloc[0]
    assert cell["difference"] == pytest.approx(gap)
    students = view(dashboard, "student_values", metric=ATTENDANCE, metric_y="school_attendance_rate")
    sd = students.groupby(["vendor_id", "race_ethnicity"])["x"].std()
    expected = intervals.welch_difference(
        crossed.loc[("V5", "Black"), "value"], sd[("V5", "Black")], crossed.loc[("V5", "Black"), "n"],
        crossed.loc[("V5", "Hispanic"), "value"], sd[("V5", "Hispanic")], crossed.loc[("V5", "Hispanic"), "n"],
    )
    assert (cell["diff_low"], cell["diff_high"]) == pytest.approx(expected[1:])
    within = cells[(cells["diff_low"] <= 0) & (cells["diff_high"] >= 0)]
    assert 0 < len(within) < cells["difference"].notna().sum()
    faded = figure(app, "Gap to Hispanic, within each vendor")["data"][1]
    assert faded["name"] == "within chance"
    marked = {(y, x) for y, row in zip(faded["y"], faded["text"]) for x, text in zip(faded["x"], row) if text}
    assert marked == set(zip(within["vendor_id_group"], within["group"]))
    assert all(text.startswith("≈ ") for row in faded["text"] for text in row if text)
    # A cell over fewer than 10 students is blank and says so.
    v1_ai = crossed.loc[("V1", "American Indian"), "n"]
    assert v1_ai < 10 and pd.isna(z.loc[VENDOR_LABELS["V1"], "American Indian"])
    row = heatmap["y"].index(VENDOR_LABELS["V1"])
    assert heatmap["text"][row][0] == "fewer than 10"

    # Analysts get the follow-up list: below the chosen rate over the chosen weeks.
    app.slider(key="below").set_value(40)
    app.number_input(key="weeks").set_value(6)
    app.run()
    assert not app.exception
    listed = app.dataframe[-1].value
    years = view(dashboard, "choices").query("dimension == 'school_year'")
    expected = view(dashboard, "absent_students", max_rate=0.4, weeks=6, end=years["ends_on"].max())
    assert len(listed) == len(expected) > 0
    assert (listed["attended"] < 40).all()
    exported = download(app, "absent-students")
    assert exported["student_key"].tolist() == expected["student_key"].tolist()
    assert (exported["attendance_rate"] < 0.4).all()
    assert f"**{len(expected):,} students** attended less than 40%" in " ".join(m.value for m in app.markdown)


def test_a_facilitator_sees_no_students_and_no_small_cells(dashboard, monkeypatch):
    monkeypatch.setattr(dashboard_module, "scope", lambda: Scope("facilitator"))
    app = open_page(PAGE, query={"vendor": VENDOR_LABELS["V5"], "by": "English learner"})
    assert "Students persistently absent from tutoring" not in [s.value for s in app.subheader]
    assert all("student_key" not in frame.value.columns for frame in app.dataframe)
    assert not any(key.endswith("download-absent-students") for key in downloads(app))

    # Without student rows the interval allows the widest spread a rate can have: wider than
    # the analyst's, and the planted gap still stands out.
    table = download(app, f"gaps-{ATTENDANCE}-by-english_learner").set_index("english_learner")
    groups = view(dashboard, "breakdown", Scope("facilitator"), metric=ATTENDANCE, by="english_learner", vendor_id=["V5"]).set_index("english_learner")
    yes, no = groups.loc[True], groups.loc[False]
    expected = intervals.newcombe_difference(yes["value"] * yes["n"], yes["n"], no["value"] * no["n"], no["n"])
    assert (table.loc["Yes", "diff_low"], table.loc["Yes", "diff_high"]) == pytest.approx(expected[1:])
    assert table.loc["Yes", "diff_high"] < 0
    assert "widest spread" in " ".join(c.value for c in app.caption)

    # Small cells reach a facilitator without their values, and stay hidden in the export.
    app.selectbox(key="by").set_value("race_ethnicity").run()
    table = download(app, f"gaps-{ATTENDANCE}-by-race_ethnicity")
    hidden = table[table["group"].isin(["Multiracial", "Pacific Islander"])]
    assert (hidden["suppressed"] == "Yes").all()
    assert hidden["value"].str.startswith("hidden: fewer than 10 students").all()
    assert hidden["n"].str.startswith("hidden: fewer than 10 students").all()


def test_a_gap_that_changes_is_purple_and_says_which_way_it_went():
    # A gap has no better direction: its special causes are NHSRplotthedots' neutral
    # high and low, both purple, and the hover and legend say which side.
    from ciboard import charts
    from ciboard.stats import spc

    gaps = pd.Series([0.05] * 8 + [0.09] * 7 + [0.01] * 7)
    charted = spc.xmr(gaps, direction="neutral")
    charted.insert(0, "period_start", pd.date_range("2025-09-01", periods=len(gaps), freq="W-MON"))
    charted.insert(1, "students", 40)
    metric = {"metric_id": ATTENDANCE, "label": "Tutoring attendance rate", "aggregation": "rate", "unit": "share",
              "better": "higher", "target": None}
    figure = charts.gap_trend_figure(charted, metric, label="EL − not EL").to_plotly_json()
    line = next(t for t in figure["data"] if t.get("name") == "EL − not EL")
    colours = list(line["marker"]["color"])
    assert colours[:8] == [charts.POINT_COLOURS["common_cause"]] * 8
    assert set(colours[8:]) == {"#8E44AD"}
    hovers = [text for _, _, text in line["customdata"]]
    assert hovers[8].startswith("Special cause (high): ") and hovers[-1].startswith("Special cause (low): ")
    legend = {t.get("name") for t in figure["data"]}
    assert {"Special cause (high)", "Special cause (low)"} <= legend


def test_a_yes_no_group_is_measured_from_no_even_when_yes_is_larger(dashboard):
    groups = view(dashboard, "breakdown", metric=ATTENDANCE, by="econ_disadvantaged").set_index("econ_disadvantaged")
    assert groups.loc[True, "n"] > groups.loc[False, "n"]  # most demo students are economically disadvantaged

    app = open_page(PAGE, query={"by": "Economically disadvantaged"})
    table = download(app, f"gaps-{ATTENDANCE}-by-econ_disadvantaged").set_index("econ_disadvantaged")
    assert (table.loc["No", "is_reference"], table.loc["Yes", "is_reference"]) == ("Yes", "No")
    assert table.loc["Yes", "difference"] == pytest.approx(groups.loc[True, "value"] - groups.loc[False, "value"])
    assert app.selectbox(key="reference").value == "Economically disadvantaged: no"
