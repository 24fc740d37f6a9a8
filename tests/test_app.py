"""The dashboard through Streamlit's AppTest: the frame, and pages whose widgets change what they show.

AppTest drops sidebar elements from its tree after the first run of an app that uses
st.navigation, so filters are set here through the URL or session state; the browser
test drives the real sidebar.
"""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import io

import pandas as pd

from conftest import downloads, figures, open_page, plotted, signed_in

APP = str(Path(__file__).resolve().parent.parent / "main.py")


def run_app(**query) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=90)
    app.query_params.update(query)
    for key, value in signed_in("analyst").items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_the_app_opens_with_the_filter_bar(dashboard):
    app = run_app()
    assert [m.key for m in app.sidebar.multiselect] == ["vendor", "school", "grade", "race", "gender", "band"]
    assert [b.key for b in app.sidebar.selectbox] == ["year", "dosage"]


def test_a_url_restores_the_filters(dashboard):
    query = {"vendor": "V3 · Keystone Math Corps", "el": "Yes", "dates": ["2025-10-01", "2026-03-31"]}
    assert run_app(**query).multiselect(key="vendor").value == ["V3"]
    app = open_page("app_pages/trends.py", query=query)
    footer = app.caption[-1].value
    assert "Vendor: V3 · Keystone Math Corps" not in footer  # labels are shown as names
    assert "Vendor: Keystone Math Corps; English learner: yes · Oct 1, 2025 – Mar 31, 2026" in footer


def test_school_attendance_dips_after_winter_break_without_the_year_reading_as_improving(dashboard):
    app = open_page("app_pages/trends.py", query={"metric": "School attendance rate"})
    headline = app.markdown[0].value
    assert headline.startswith("**School attendance rate**") and "Common cause variation" in headline
    assert "The return from a break (Jan 5, Jan 12) fell outside the limits" in " ".join(c.value for c in app.caption)

    # The download says Yes and No, as the page does, never True and False.
    [content] = [data for key, data in downloads(app).items() if key.endswith("download-trend-school_attendance_rate-week")]
    table = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)
    assert set(table["excluded"]) == set(table["returning"]) == set(table["outside_limits"]) == {"Yes", "No"}
    assert not table.isin(["True", "False"]).any().any()
    back = table[table["returning"] == "Yes"]
    assert back["period_start"].tolist() == ["2026-01-05", "2026-01-12"]
    assert set(back["point_type"]) == {"special_cause_concern"}
    # No other week falls outside the limits (at the demo's 6,000 students, tutored and not, seven
    # autumn weeks a fraction of a point under the centre make a run of chance, which the rule flags).
    assert set(table.loc[table["returning"] == "No", "outside_limits"]) == {"No"}
    assert "special_cause_improvement" not in set(table["point_type"])


def test_filters_change_the_numbers(dashboard):
    everyone = open_page("app_pages/trends.py")
    v3 = open_page("app_pages/trends.py", query={"vendor": "V3 · Keystone Math Corps"})
    assert everyone.markdown[0].value != v3.markdown[0].value
    assert plotted(value_trace(everyone)) != plotted(value_trace(v3))

    # V1's program change is marked on the district's chart, never on V3's.
    def notes(app) -> set[str]:
        return {a.get("text", "") for a in figures(app)[0]["layout"]["annotations"]}

    assert "V1 moves sessions into the school day" in notes(everyone)
    assert not any("moves sessions" in note for note in notes(v3))


def test_the_data_map_lists_every_metric_and_searches(dashboard):
    app = open_page("app_pages/data_map.py")
    assert app.title[0].value == "Data map"
    assert len(app.expander) == 12
    app.text_input(key="q").input("exit ticket").run()
    labels = [e.label for e in app.expander]
    assert labels and all("SEL" in label for label in labels), labels


def test_the_data_map_search_comes_from_the_url(dashboard):
    app = open_page("app_pages/data_map.py", query={"q": "SGP"})
    assert app.text_input(key="q").value == "SGP"
    assert [e.label.split("**")[1] for e in app.expander] == ["Met growth target", "Student growth percentile"]


def value_trace(app) -> dict:
    return next(t for t in figures(app)[0]["data"] if t.get("mode") == "lines+markers")


def test_trends_draws_an_spc_chart_with_signals_and_target(dashboard):
    app = open_page("app_pages/trends.py", query={"vendor": "V3 · Keystone Math Corps"})
    figure = figures(app)[0]
    names = [t.get("name") for t in figure["data"]]
    assert {"Process limits", "Centre", "Target 85.0%", "Tutoring attendance rate", "Concern"} <= set(names)
    colours = value_trace(app)["marker"]["color"]
    assert "#F28E2B" in colours, "V3's drop shows as concern points"
    assert any("Winter break" in str(s.get("label", s)) or "Winter break" in str(a.get("text", "")) for s in figure["layout"].get("shapes", []) for a in figure["layout"].get("annotations", []))


def test_trends_grain_split_and_comparisons(dashboard):
    app = open_page("app_pages/trends.py", query={"grain": "month", "compare": "school attendance", "split": "english learner"})
    main, *splits = figures(app)
    assert len(value_trace(app)["x"]) <= 11
    assert any(t.get("yaxis") == "y2" and t["name"] == "School attendance rate" for t in main["data"])
    assert len(splits) == 2


def test_trends_downloads_hold_what_the_chart_shows(dashboard):
    app = open_page("app_pages/trends.py", query={"grain": "month"})
    [csv_bytes] = downloads(app).values()
    table = pd.read_csv(io.BytesIO(csv_bytes))
    trace = value_trace(app)
    assert list(table["period_start"]) == [x[:10] for x in trace["x"]]
    assert table["value"].round(9).tolist() == [round(y, 9) for y in plotted(trace)]
    assert {"center", "upper", "lower", "point_type", "students"} <= set(table.columns)


def test_a_window_metric_is_charted_by_window(dashboard):
    app = open_page("app_pages/trends.py", query={"metric": "Met growth target"})
    assert len(value_trace(app)["x"]) == 3


@pytest.mark.parametrize("query", [
    {"metric": "Met growth target", "split": "english learner"},
    {"metric": "Tutoring attendance rate", "grain": "window"},
])
def test_windows_get_intervals_and_changes_not_control_limits(dashboard, query):
    app = open_page("app_pages/trends.py", query=query)
    for figure in figures(app):
        names = {t.get("name") for t in figure["data"]}
        assert not names & {"Process limits", "Lower limit", "Centre", "Concern", "Improvement"}
        [values] = [t for t in figure["data"] if t.get("mode") == "lines+markers"]
        whiskers = plotted(values["error_y"], "array")
        assert len(whiskers) == len(values["x"]) and all(w > 0 for w in whiskers), "each window with its interval"
        assert len([a for a in figure["layout"]["annotations"] if "95% CI" in a["text"]]) == len(values["x"]) - 1
    text = " ".join(m.value for m in app.markdown)
    assert "Special cause" not in text and "control limits need" not in text
    assert "from the window before" in text and "95% CI" in text
    assert not [d for d in app.date_input if d.key == "rebase"], "no limits to start afresh"
