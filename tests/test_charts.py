"""The formatting layer every page, table and packet writes numbers and labels through."""

import pytest

from ciboard import charts

RATE = {"aggregation": "rate", "unit": "share of sessions"}
MINUTES = {"aggregation": "mean", "unit": "minutes"}
SCORE = {"aggregation": "mean", "unit": "score 1-5"}


@pytest.mark.parametrize(("change", "metric", "written"), [
    (0.0123, RATE, "+1.2 pts"),
    (-0.0456, RATE, "-4.6 pts"),
    (-0.0004, RATE, "0.0 pts"),  # never "-0.0"
    (0.0, RATE, "0.0 pts"),
    (-0.004, SCORE, "0.00"),  # never "-0.00"
    (0.25, SCORE, "+0.25"),
    (-12.34, MINUTES, "-12.3"),
    (1234.0, MINUTES, "+1,234.0"),
    (None, RATE, "–"),
])
def test_a_change_is_written_in_its_unit_with_no_signed_zero(change, metric, written):
    assert charts.format_change(change, metric) == written


@pytest.mark.parametrize(("value", "metric", "written"), [
    (0.8567, RATE, "85.7%"),
    (-0.00001, RATE, "0.0%"),
    (-0.001, SCORE, "0.00"),
    (3.456, SCORE, "3.46"),
    (1234.4, MINUTES, "1,234"),
])
def test_a_value_is_written_in_its_unit(value, metric, written):
    assert charts.format_value(value, metric) == written


def test_labels_inside_a_sentence_keep_their_names_and_acronyms():
    assert charts.in_sentence("Tutoring attendance rate") == "tutoring attendance rate"
    assert charts.in_sentence("Student self-efficacy (SEL)") == "student self-efficacy (SEL)"
    assert charts.in_sentence("SGP") == "SGP"
    assert charts.in_sentence("English learner: yes") == "English learner: yes"


def test_yes_no_columns_read_yes_and_no_and_nothing_else_changes():
    import pandas as pd

    frame = pd.DataFrame({
        "suppressed": [True, False, False],
        "english_learner": pd.array([True, None, False], dtype="boolean"),
        "is_reference": [False, None, True],  # object: the rows a merge left without one
        "n": [12, 0, 1],
        "value": ["hidden: fewer than 10 students", 0.5, 1.0],
    })
    shown = charts.yes_no(frame)
    assert shown["suppressed"].tolist() == ["Yes", "No", "No"]
    assert shown["english_learner"].tolist()[::2] == ["Yes", "No"] and pd.isna(shown["english_learner"][1])
    assert shown["is_reference"].tolist()[::2] == ["No", "Yes"] and pd.isna(shown["is_reference"][1])
    assert shown[["n", "value"]].equals(frame[["n", "value"]])  # 0 and 1 are numbers, not no and yes
    assert frame["suppressed"].dtype == bool  # the caller's frame is left as it was
    assert "True" not in shown.to_csv(index=False) and "False" not in shown.to_csv(index=False)


def test_axis_ticks_carry_one_more_digit_trimmed_so_none_repeat():
    # d3's "~" drops a trailing zero: ticks every half point read 80%, 80.5%, 81%, not 80%, 81%, 81%.
    assert charts.tick_format(RATE) == ".1~%"
    assert charts.tick_format(MINUTES) == ",.1~f"
    assert charts.tick_format(SCORE) == ",.2~f"


def test_event_labels_close_in_time_drop_a_row_and_the_legend_names_bands_and_lines():
    import pandas as pd
    import plotly.graph_objects as go

    events = pd.DataFrame([
        ("2025-12-22", "2026-01-02", "break", "Winter break"),
        ("2026-01-12", "2026-01-12", "program change", "V1 moves sessions into the school day"),
        ("2026-01-27", "2026-01-27", "closure", "Snow day"),
        ("2026-02-23", "2026-02-23", "external", "PDSA: reminders"),
        ("2026-03-30", "2026-04-03", "break", "Spring break"),
    ], columns=["starts_on", "ends_on", "kind", "title"])
    figure = go.Figure()
    charts.add_events(figure, events)
    rows = {a.text: round((1 - a.y) / 0.075) for a in figure.layout.annotations}
    # The snow day has no label; a label within 50 days of another drops to the next free row.
    assert rows == {"Winter break": 0, "V1 moves sessions into the school day": 1, "PDSA: reminders": 0, "Spring break": 1}
    assert [t.name for t in figure.data] == ["Break or closure (shaded)", "Event or program change"]
    assert len([s for s in figure.layout.shapes if s.type == "rect"]) == 3
