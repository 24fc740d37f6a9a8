"""Choosers' labels never repeat: Streamlit sends a choice back as its label (ci_ui.distinct)."""

from ciboard.ci_ui import distinct


def test_labels_that_repeat_take_the_record_id():
    names = {7: "Math", 8: "Math", 9: "Reading"}
    label = distinct(names, names.get)
    assert [label(i) for i in names] == ["Math · #7", "Math · #8", "Reading"]


def test_options_that_are_not_ids_take_their_place_among_their_twins():
    sessions = {"S-1": "Mar 3 · Ana", "S-2": "Mar 3 · Ben", "S-3": "Mar 3 · Ana"}
    label = distinct(sessions, sessions.get)
    assert [label(s) for s in sessions] == ["Mar 3 · Ana · 1", "Mar 3 · Ben", "Mar 3 · Ana · 2"]


def test_a_missing_option_and_a_flag_are_not_taken_for_ids():
    label = distinct([None, True, 3], lambda v: "No meeting" if v is None else "x")
    assert [label(v) for v in (None, True, 3)] == ["No meeting", "x · 1", "x · #3"]
