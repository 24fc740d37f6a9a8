"""The Follow-up page through AppTest, on the demo district: the lists and statuses an analyst
and a vendor see are the query layer's and the log's, a status logged on the page lands in the
log, and a facilitator sees counts and no student."""

import re
from datetime import date

from ciboard import student_lists
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from conftest import VENDOR_LABELS, default_dates, downloads, open_page

PAGE = "app_pages/follow_up.py"


def listed(app) -> dict:
    """The three lists' tables, in the tabs' order (AppTest does not see a dataframe's key)."""
    return {key: app.dataframe[i].value for i, key in enumerate(student_lists.LISTS)}


def everything_shown(app) -> str:
    elements = [*app.markdown, *app.caption, *app.metric, *app.info, *app.selectbox, *app.dataframe]
    return " ".join(str(getattr(e, "value", "")) + str(getattr(e, "options", "")) for e in elements)


def test_an_analyst_sees_every_list_with_statuses_and_logs_a_change(dashboard):
    db = AppDB.of(dashboard.settings)
    end = date.fromisoformat(default_dates(dashboard)["end"])
    app = open_page(PAGE)
    expected = student_lists.lists(dashboard, ANALYST, end)
    assert [t.label for t in app.tabs] == [f"{student_lists.LISTS[k]} ({len(expected[k]):,})" for k in expected]
    known = student_lists.latest(db, ANALYST)
    for key, frame in expected.items():
        shown = listed(app)[key]
        assert shown["student_key"].tolist() == frame["student_key"].tolist()
        statuses = student_lists.with_status(frame, known)["status"].map(student_lists.STATUS_LABELS)
        assert shown["status"].tolist() == statuses.tolist()
    # The demo's log shows on the list: contacted and re-engaged students among the absent.
    assert {"Contacted", "Re-engaged"} <= set(listed(app)["absent"]["status"])

    student = expected["not_growing"]["student_key"].iloc[-1]
    app.selectbox(key="student").set_value(student).run()
    before = student_lists.history(db, ANALYST, student)
    [status] = [s for s in app.selectbox if s.label == "Status"]
    status.set_value("contacted")
    [note] = [t for t in app.text_input if t.label == "Note"]
    note.input("Spoke with the math teacher")
    next(b for b in app.button if b.label == "Log").click().run()
    assert not app.exception, [e.value for e in app.exception]
    after = student_lists.history(db, ANALYST, student)
    assert after[:len(before)] == before and len(after) == len(before) + 1
    assert (after[-1].status, after[-1].list, after[-1].by, after[-1].note) == (
        "contacted", "not_growing", "analyst", "Spoke with the math teacher")
    assert app.dataframe[3].value["Note"].tolist()[-1] == "Spoke with the math teacher"


def test_a_vendor_sees_and_logs_only_its_own_students(dashboard):
    end = date.fromisoformat(default_dates(dashboard)["end"])
    app = open_page(PAGE, user="vendor-v2")
    own = student_lists.lists(dashboard, Scope("vendor", "V2"), end)
    for key, frame in own.items():
        shown = listed(app)[key]
        assert shown["student_key"].tolist() == frame["student_key"].tolist()
        assert "vendor" not in shown.columns  # every one is its own
    others = {v for v in VENDOR_LABELS if v != "V2"}
    assert not [v for v in others if re.search(rf"\b{v}\b", everything_shown(app))]
    # The chooser offers its own students only.
    # Its downloads too: every student in them is its own.
    mine = {s for frame in own.values() for s in frame["student_key"]}
    for name, content in downloads(app).items():
        assert set(re.findall(r"ST\d{7}", content.decode())) <= mine, name
    offered = {option.split(" · ")[0] for option in app.selectbox(key="student").options}
    assert offered == {s for frame in own.values() for s in frame["student_key"]} != set()


def test_a_facilitator_sees_counts_and_no_student(dashboard):
    end = date.fromisoformat(default_dates(dashboard)["end"])
    app = open_page(PAGE, user="facilitator")
    counted = student_lists.counts(dashboard, Scope("facilitator"), end)
    assert {m.label: m.value for m in app.metric} == {
        student_lists.LISTS[k]: "too few to show" if n is None else f"{n:,}" for k, n in counted.items()
    }
    assert not app.dataframe and not re.search(r"ST\d{7}", everything_shown(app))


def test_an_analyst_presenting_sees_counts_only(dashboard):
    app = open_page(PAGE, query={"present": "true"})
    assert not app.dataframe and app.metric


def test_a_meeting_opens_with_the_lists_counts_and_their_movement(dashboard):
    from ciboard import followup, meetings

    db = AppDB.of(dashboard.settings)
    [group] = [g for g in meetings.workgroups(db, ANALYST) if g.vendor_ids == ["V3"]]
    draft = next(m for m in meetings.meetings(db, ANALYST, group.id) if not m.is_final)
    app = open_page("app_pages/meetings.py", state={"workgroup": group.id, "meeting": draft.id}, user="facilitator")
    prefill = followup.outcomes_prefill(dashboard, db, Scope("facilitator"), group.id, draft.held_on,
                                        {"vendor_id": ["V3"]})
    moved = prefill.follow_up["absent"]
    assert moved["now"] is not None and moved["then"] is not None
    line = f"persistently absent {moved['now']:,} (was {moved['then']:,} on {prefill.since})"
    assert any(line in m.value for m in app.markdown), [m.value for m in app.markdown][:8]


def test_a_facilitator_presenting_sees_counts_and_no_vendor(dashboard):
    app = open_page(PAGE, query={"present": "true", "alias": "true"}, user="facilitator")
    text = everything_shown(app)
    assert app.metric and not app.dataframe and not downloads(app)
    assert not [v for v in VENDOR_LABELS if re.search(rf"\b{v}\b", text)]


def test_a_student_who_attended_nothing_in_the_weeks_is_said_so_not_none(dashboard):
    # Jan 10 is the week after winter break: some persistently absent students attended no session
    # in the four weeks, and a date column drew their "last attended" as the word None.
    first = default_dates(dashboard)["start"]
    app = open_page(PAGE, query={"dates": [first, "2026-01-10"]})
    assert not app.exception, [e.value for e in app.exception]
    absent = student_lists.lists(dashboard, ANALYST, date(2026, 1, 10))["absent"]
    shown = listed(app)["absent"]
    assert shown["student_key"].tolist() == absent["student_key"].tolist()
    never = absent["last_week_attended"].isna().tolist()
    assert any(never) and not all(never)
    last = shown["last_attended"]
    assert set(last[never]) == {"none in these weeks"}
    assert last[[not n for n in never]].str.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}").all()


def test_an_evaluator_reads_every_list_and_status_under_its_pseudonyms_and_logs_nothing(dashboard):
    from ciboard import privacy

    db = AppDB.of(dashboard.settings)
    end = date.fromisoformat(default_dates(dashboard)["end"])
    key = privacy.pseudonym_key(db)
    app = open_page(PAGE, user="evaluator")
    expected = student_lists.lists(dashboard, ANALYST, end)
    known = student_lists.latest(db, ANALYST)
    assert [t.label for t in app.tabs] == [f"{student_lists.LISTS[k]} ({len(expected[k]):,})" for k in expected]
    for list_key, frame in expected.items():
        shown = listed(app)[list_key]
        assert shown["student_key"].tolist() == [privacy.pseudonym(key, "evaluator", s) for s in frame["student_key"]]
        statuses = student_lists.with_status(frame, known)["status"].map(student_lists.STATUS_LABELS)
        assert shown["status"].tolist() == statuses.tolist()
        assert "note" not in shown.columns, "the log's notes name students and staff as typed"
    assert {"Contacted", "Re-engaged"} <= set(listed(app)["absent"]["status"])
    # No real student id anywhere: screen, options and every download.
    real = {s for frame in expected.values() for s in frame["student_key"]}
    assert not set(re.findall(r"ST\d{7}", everything_shown(app))) & real
    for name, content in downloads(app).items():
        assert not set(re.findall(r"ST\d{7}", content.decode())) & real, name

    # A student's log: its statuses and dates, not who wrote them or what; and no form to log.
    logged = next(s for s in expected["absent"]["student_key"] if s in known)
    pseudonym = privacy.pseudonym(key, "evaluator", logged)
    app.selectbox(key="student").set_value(pseudonym).run()
    assert not app.exception, [e.value for e in app.exception]
    log = app.dataframe[3].value
    history = student_lists.history(db, ANALYST, logged)
    assert list(log.columns) == ["On", "Status", "List"]
    assert log["Status"].tolist() == [student_lists.STATUS_LABELS[e.status] for e in history]
    assert not [b for b in app.button if b.label == "Log"] and not app.text_input
