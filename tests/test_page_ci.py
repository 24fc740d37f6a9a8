"""The Root causes, PDSA cycles and Workgroups pages through AppTest, on the demo district.

These tests share the demo's app database with other tests, which read the seeded records:
they only add records of their own (about V2's tutor consistency, with names that say they
are tests) and never change a seeded one.
"""

import re
from dataclasses import replace
from datetime import date, timedelta
from urllib.parse import parse_qs

import pytest

from ciboard import charts, ci_records, drafts, meetings, movements
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from ciboard.ci_records import Cause, Idea, RootCause, Slice
from ciboard.queries import data_map
from conftest import VENDOR_LABELS, figures, open_page

ROOT_CAUSES = "app_pages/root_causes.py"
PDSA = "app_pages/pdsa.py"
WORKGROUPS = "app_pages/workgroups.py"
METRIC = "tutor_consistency"  # what the records these tests add are about, with V2's students
V2_NAME = "Lumen Learning Partners"  # a vendor chooser takes the name it shows
SEEDED_GROUPS = [
    "District data review",
    "District–vendor coordination: Keystone Math Corps",
    "District–vendor–school review: Cardinal Tutors schools",
]


@pytest.fixture
def db(dashboard) -> AppDB:
    return AppDB.of(dashboard.settings)


def button(app, label: str):
    return next(b for b in app.button if b.label == label)


def text_input(app, label: str):
    return next(t for t in app.text_input if t.label == label)


def editor(app, suffix: str):
    return next(e for e in app.data_editor if e.key.endswith(suffix))


def add_rows(app, suffix: str, rows: list[dict]) -> None:
    """Types rows into a data editor, as the browser reports them."""
    app.session_state[editor(app, suffix).key] = {"edited_rows": {}, "added_rows": rows, "deleted_rows": []}


def markdown(app) -> str:
    return "\n".join(m.value for m in app.markdown)


def table(app, column: str):
    """The first table with this column."""
    return next(d.value for d in app.dataframe if column in d.value.columns)


def no_exception(app) -> None:
    assert not app.exception, [e.value for e in app.exception]


def page_text(app) -> str:
    """Everything the page sent: every element's text, options and values, tables as CSV."""
    parts = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        if children is not None:
            parts.append(str(getattr(node, "proto", "") or ""))
            for child in children.values():
                walk(child)
        elif node.type == "dataframe":
            parts.append(node.value.to_csv())
        else:
            parts.append(str(node.proto))

    walk(app._tree)
    return "\n".join(parts)


def seeded_analysis(db) -> RootCause:
    return next(r for r in meetings.root_causes(db, ANALYST) if r.slice == Slice("V5", None, "english_learner", "true"))


# --- root causes -----------------------------------------------------------------------


def test_the_seeded_analysis_reads_as_a_chain_of_whys_down_to_a_chosen_idea(dashboard, db):
    seeded = seeded_analysis(db)
    app = open_page(ROOT_CAUSES, user="facilitator")
    app.selectbox(key="analysis").set_value(seeded.id).run()
    no_exception(app)

    listed = table(app, "Problem").set_index("Problem").loc[seeded.problem]
    assert (listed["Whys"], listed["Complete"]) == (5, True)
    assert listed["Became"] == "PDSA cycle: Reminders in the home language (do)"
    chain = "\n".join(f"{i}. {why}" for i, why in enumerate(seeded.whys, 1))
    assert len(seeded.whys) >= 5 and chain in markdown(app)
    assert "- **1** · Reminders only in English, only by e-mail" in markdown(app)
    assert "- Parents' evening shifts make pick-up after late sessions hard" in markdown(app)
    assert f"- *{seeded.hmw[0]}*" in markdown(app)
    assert "Text families a reminder in their home language the day before each session · :green[**chosen**]" in markdown(app)
    for theme in ("Reaching families", "Data sharing", "Scheduling"):
        assert f"**{theme}**" in markdown(app)

    # The chosen idea links to its PDSA cycle, which the link opens.
    [link] = [p for p in app.get("page_link") if p.proto.page == "pdsa"]
    query = {k: v[0] for k, v in parse_qs(link.proto.query_string).items()}
    cycle = open_page(PDSA, user="facilitator", query=query)
    assert cycle.selectbox(key="cycle").value == seeded.pdsa_id


def test_a_new_analysis_gets_its_whys_causes_and_ideas_and_its_chosen_idea_becomes_a_pdsa_cycle(dashboard, db):
    app = open_page(ROOT_CAUSES, user="facilitator")
    app.selectbox(key="new-analysis-metric").set_value(METRIC)
    app.selectbox(key="new-analysis-vendor").set_value(V2_NAME)
    app.text_area(key="new-analysis-problem").set_value("Test analysis: V2's students see a different tutor most weeks")
    button(app, "Start the analysis").click().run()
    no_exception(app)
    [made] = [r for r in meetings.root_causes(db, ANALYST) if r.problem.startswith("Test analysis: V2's")]
    assert (made.metric_id, made.slice, made.whys) == (METRIC, Slice(vendor_id="V2"), [])
    assert app.selectbox(key="analysis").value == made.id
    assert "0 whys so far: keep going to at least 5." in [w.value for w in app.warning]

    whys = ["Tutors leave mid-term", "Pay is per session", "Sessions get cancelled at short notice",
            "Schools reschedule the tutoring block", "Nobody owns the master timetable"]
    for i, why in enumerate(whys, 1):
        text_input(app, f"Why {i}").set_value(why)
    button(app, "Add another why").click().run()
    assert text_input(app, "Why 5").value == whys[-1], "what was typed stays"
    text_input(app, "Why 6").set_value("The contract never named it")
    add_rows(app, "-causes", [
        {"text": "No one owns the timetable", "controllable": True, "priority": 1},
        {"text": "Tutor pay per session", "controllable": True, "priority": 2},
        {"text": "Statewide tutor shortage", "controllable": False},
    ])
    app.text_area(key=next(t.key for t in app.text_area if t.key.endswith("-hmw"))).set_value(
        "How might we keep one tutor with each group so that students build a relationship?")
    add_rows(app, "-ideas", [
        {"text": "Test idea: a shared tutoring timetable", "theme": "Scheduling"},
        {"text": "Pay tutors per term", "theme": "Contracts"},
    ])
    button(app, "Save the analysis").click().run()
    no_exception(app)

    saved = meetings.root_cause(db, ANALYST, made.id)
    assert saved.whys == [*whys, "The contract never named it"] and saved.complete
    assert saved.causes == [Cause("No one owns the timetable", True, 1), Cause("Tutor pay per session", True, 2),
                            Cause("Statewide tutor shortage", False, None)]
    assert saved.hmw == ["How might we keep one tutor with each group so that students build a relationship?"]
    assert saved.ideas == [Idea("Test idea: a shared tutoring timetable", "Scheduling"), Idea("Pay tutors per term", "Contracts")]
    assert "Saved as revision 2." in [s.value for s in app.success]
    assert "\n".join(f"{i}. {why}" for i, why in enumerate(saved.whys, 1)) in markdown(app)

    # Choosing the first idea makes a PDSA cycle, measured on the analysis's metric and students.
    app.selectbox(key=f"choose-{made.id}-idea").set_value(0)
    app.radio(key=f"choose-{made.id}-becomes").set_value("pdsa")
    app.date_input(key=f"choose-{made.id}-start").set_value(date(2026, 3, 2))
    app.text_input(key=f"choose-{made.id}-prediction").set_value("Tutor consistency rises by 10 points")
    button(app, "Choose this idea").click().run()
    no_exception(app)
    chosen = meetings.root_cause(db, ANALYST, made.id)
    cycle = meetings.pdsa_cycle(db, ANALYST, chosen.pdsa_id)
    assert chosen.chosen_idea == 0 and chosen.commitment_id is None
    assert (cycle.title, cycle.change, cycle.metric_id, cycle.slice, cycle.start_on, cycle.prediction) == (
        "Test idea: a shared tutoring timetable", "Test idea: a shared tutoring timetable", METRIC,
        Slice(vendor_id="V2"), date(2026, 3, 2), "Tutor consistency rises by 10 points",
    )
    assert meetings.root_cause_of(db, ANALYST, pdsa_id=cycle.id).id == made.id
    assert [p.value for p in app.get("page_link")] == ["PDSA cycle: Test idea: a shared tutoring timetable"]


def test_two_editors_of_one_analysis_the_second_is_shown_both_versions_and_nothing_is_lost(dashboard, db):
    mine = meetings.save_root_cause(db, Scope("facilitator"), RootCause(
        metric_id=METRIC, slice=Slice(vendor_id="V2"), problem="Test conflict: V2's tutor consistency fell",
        whys=["one", "two", "three", "four", "five"],
    ), by="facilitator")
    first, second = (open_page(ROOT_CAUSES, user=user) for user in ("facilitator", "analyst"))
    for app in (first, second):
        app.selectbox(key="analysis").set_value(mine.id).run()
        assert text_input(app, "Why 1").value == "one"

    text_input(first, "Why 1").set_value("First editor's why")
    button(first, "Save the analysis").click().run()
    no_exception(first)
    text_input(second, "Why 1").set_value("Second editor's why")
    button(second, "Save the analysis").click().run()
    no_exception(second)

    [error] = [e.value for e in second.error]
    assert error.startswith("Not saved: this root cause was saved by facilitator") and "nothing was overwritten" in error
    both = table(second, "yours").set_index("field")
    assert both.loc["whys", "saved by facilitator"].startswith("First editor's why")
    assert both.loc["whys", "yours"].startswith("Second editor's why")
    assert text_input(second, "Why 1").value == "Second editor's why", "the second editor's text stays in the form"
    assert meetings.root_cause(db, ANALYST, mine.id).whys[0] == "First editor's why"
    assert [(v.revision, v.saved_by) for v in meetings.history(db, ANALYST, "root_cause", mine.id)] == [
        (1, "facilitator"), (2, "facilitator")]
    assert table(second, "Saved by")["Revision"].tolist() == [1, 2]

    # Having read both, the second editor saves over; both earlier revisions stay in the history.
    button(second, "Save mine over theirs (I have read both)").click().run()
    no_exception(second)
    assert meetings.root_cause(db, ANALYST, mine.id).whys[0] == "Second editor's why"
    assert [v.revision for v in meetings.history(db, ANALYST, "root_cause", mine.id)] == [1, 2, 3]
    second.selectbox(key=f"rc-history-{mine.id}-3").set_value(2).run()
    assert "1. First editor's why" in markdown(second)


def test_a_chosen_idea_can_become_a_commitment(dashboard, db):
    analysis = meetings.save_root_cause(db, Scope("facilitator"), RootCause(
        metric_id=METRIC, slice=Slice(vendor_id="V2"), problem="Test commitment: V2's tutors change mid-term",
        whys=["one", "two", "three", "four", "five"], ideas=[Idea("Test idea: publish the tutor rota", "Scheduling")],
    ), by="facilitator")
    app = open_page(ROOT_CAUSES, user="facilitator")
    app.selectbox(key="analysis").set_value(analysis.id).run()
    key = f"choose-{analysis.id}"
    app.radio(key=f"{key}-becomes").set_value("commitment").run()
    app.selectbox(key=f"{key}-party").set_value("vendor").run()
    assert app.selectbox(key=f"{key}-vendor").value == "V2", "the analysis's vendor"
    app.text_input(key=f"{key}-owner").set_value("Test Owner")
    due = date.today() + timedelta(days=30)  # a due date must not fall before the day it is made
    app.date_input(key=f"{key}-due").set_value(due)
    button(app, "Choose this idea").click().run()
    no_exception(app)

    chosen = meetings.root_cause(db, ANALYST, analysis.id)
    promise = meetings.commitment(db, ANALYST, chosen.commitment_id)
    assert (chosen.chosen_idea, chosen.pdsa_id) == (0, None)
    assert (promise.party, promise.party_id, promise.owner, promise.action, promise.due_on, promise.metric_id,
            promise.slice) == ("vendor", "V2", "Test Owner", "Test idea: publish the tutor rota", due,
                               METRIC, Slice(vendor_id="V2"))
    assert any(f"A commitment of Lumen Learning Partners (vendor), owned by Test Owner, due {due:%b %-d, %Y}" in s.value for s in app.success)


# --- PDSA cycles -------------------------------------------------------------------------


def test_the_seeded_cycle_shows_the_study_computed_from_the_data(dashboard, db):
    cycles = {c.title: c for c in meetings.pdsa_cycles(db, ANALYST)}
    cycle = cycles["Reminders in the home language"]
    expected = movements.pdsa_study(dashboard, Scope("facilitator"), cycle)
    metric = data_map(dashboard).set_index("metric_id").loc[cycle.metric_id].to_dict() | {"metric_id": cycle.metric_id}
    assert expected.status == "ok"

    app = open_page(PDSA, user="facilitator")
    app.selectbox(key="cycle").set_value(cycle.id).run()
    no_exception(app)
    periods = table(app, "Period").set_index("Period")
    for name, period in (("Before", expected.before), ("After", expected.after)):
        row = periods.loc[name]
        assert (row["From"], row["To"], row["Weeks"], row["Students"]) == (
            period.start, period.end, period.points, period.students)
        assert row["Value"] == pytest.approx(period.value)
    shown = {m.label.split(" · ")[0]: m.value for m in app.get("metric")}
    assert shown == {"Before": charts.format_value(expected.before.value, metric),
                     "After": charts.format_value(expected.after.value, metric),
                     "Change": charts.format_change(expected.difference, metric)}
    assert f"**What the data did.** {expected.sentence(metric)}" in markdown(app)
    assert "no change beyond chance" in expected.sentence(metric)
    assert any(expected.chart_note in c.value for c in app.caption)

    # The control chart marks the day the change started.
    [figure] = figures(app)
    starts = [s for s in figure["layout"]["shapes"] if s["type"] == "line"]
    assert [s["x0"][:10] for s in starts] == [cycle.start_on.isoformat()]
    assert f"PDSA: {cycle.title}" in [a["text"] for a in figure["layout"]["annotations"]]

    # An assessment measure has too few points for a control chart; its windows are compared.
    adopted = cycles["Tutoring inside the school day"]
    app.selectbox(key="cycle").set_value(adopted.id).run()
    no_exception(app)
    windows = table(app, "Period").set_index("Period")
    assert windows["Windows"].tolist() == [1, 1] and not figures(app)
    assert "**Adopt.**" in markdown(app)


def test_a_new_cycle_takes_observations_and_a_decision_and_appends_never_conflict(dashboard, db):
    app = open_page(PDSA, user="facilitator")
    app.text_input(key="new-cycle-title").set_value("Test cycle: one tutor per group at V2")
    app.text_area(key="new-cycle-change").set_value("Each group keeps its tutor for the term")
    app.text_area(key="new-cycle-prediction").set_value("Tutor consistency rises")
    app.selectbox(key="new-cycle-metric").set_value(METRIC)
    app.selectbox(key="new-cycle-vendor").set_value(V2_NAME)
    app.date_input(key="new-cycle-start").set_value(date(2026, 3, 2))
    button(app, "Start planning").click().run()
    no_exception(app)
    [cycle] = [c for c in meetings.pdsa_cycles(db, ANALYST) if c.title == "Test cycle: one tutor per group at V2"]
    assert (cycle.metric_id, cycle.slice, cycle.start_on, cycle.stage) == (METRIC, Slice(vendor_id="V2"), date(2026, 3, 2), "plan")
    assert app.selectbox(key="cycle").value == cycle.id
    assert table(app, "Period")["Period"].tolist() == ["Before", "After"], "the study is computed from the start"

    app.date_input(key=f"observe-{cycle.id}-on").set_value(date(2026, 3, 9))
    app.text_area(key=f"observe-{cycle.id}-text").set_value("Rota board up at two schools")
    button(app, "Add the observation").click().run()
    no_exception(app)
    [noted] = meetings.pdsa_cycle(db, ANALYST, cycle.id).observations
    assert (noted.on, noted.text, noted.by) == (date(2026, 3, 9), "Rota board up at two schools", "facilitator")
    assert table(app, "Observation")["Observation"].tolist() == ["Rota board up at two schools"]

    # Someone else notes something while the form is open: the decision still saves.
    meetings.add_observation(db, Scope("analyst"), cycle.id, "Test note from elsewhere", by="analyst")
    form = next(t.key for t in app.text_area if t.key.endswith("-study")).removesuffix("-study")
    app.text_area(key=f"{form}-study").set_value("Consistency rose at both schools, as predicted.")
    app.radio(key=f"{form}-act").set_value("adopt")
    app.text_area(key=f"{form}-act-note").set_value("Keep it for every group")
    button(app, "Save the cycle").click().run()
    no_exception(app)
    decided = meetings.pdsa_cycle(db, ANALYST, cycle.id)
    assert (decided.act, decided.act_note, decided.stage) == ("adopt", "Keep it for every group", "act")
    assert [o.text for o in decided.observations] == ["Rota board up at two schools", "Test note from elsewhere"]
    assert "**Adopt.** Keep it for every group" in markdown(app)
    assert not app.error


def test_two_editors_of_one_cycle_conflict_over_what_both_changed(dashboard, db):
    cycle = meetings.save_pdsa(db, Scope("facilitator"), ci_records.PdsaCycle(
        title="Test cycle: two editors", metric_id=METRIC, start_on=date(2026, 3, 2), slice=Slice(vendor_id="V2"),
    ), by="facilitator")
    first, second = (open_page(PDSA, user=user) for user in ("facilitator", "analyst"))
    forms = []
    for app in (first, second):
        app.selectbox(key="cycle").set_value(cycle.id).run()
        forms.append(next(t.key for t in app.text_area if t.key.endswith("-study")).removesuffix("-study"))

    first.text_area(key=f"{forms[0]}-study").set_value("It worked at one school")
    button(first, "Save the cycle").click().run()
    second.text_area(key=f"{forms[1]}-study").set_value("It did not work")
    second.radio(key=f"{forms[1]}-act").set_value("abandon")
    button(second, "Save the cycle").click().run()
    no_exception(second)

    assert second.error[0].value.startswith("Not saved: this pdsa was saved by facilitator")
    both = table(second, "yours").set_index("field")
    assert set(both.index) == {"study", "act"}
    assert (both.loc["study", "saved by facilitator"], both.loc["study", "yours"]) == ("It worked at one school", "It did not work")
    stored = meetings.pdsa_cycle(db, ANALYST, cycle.id)
    assert (stored.study, stored.act, stored.revision) == ("It worked at one school", None, 2)
    assert second.text_area(key=f"{forms[1]}-study").value == "It did not work"

    # Taking theirs drops the second editor's text and opens the form on the stored cycle.
    button(second, "Take theirs and drop mine").click().run()
    no_exception(second)
    study = next(t for t in second.text_area if t.key.endswith("-study"))
    assert study.value == "It worked at one school" and not second.error
    assert meetings.pdsa_cycle(db, ANALYST, cycle.id).revision == 2


# --- workgroups --------------------------------------------------------------------------


def test_workgroups_lists_the_seeded_groups_with_their_meetings_and_sets_up_a_new_one(dashboard, db):
    app = open_page(WORKGROUPS, user="facilitator")
    no_exception(app)
    assert set(SEEDED_GROUPS) <= set(table(app, "Workgroup")["Workgroup"])
    coordination = next(g for g in meetings.workgroups(db, ANALYST) if g.name == SEEDED_GROUPS[1])
    app.selectbox(key="group").set_value(coordination.id).run()
    members = table(app, "Role")
    assert members["Name"].tolist() == [p.name for p in coordination.members]
    assert "Vendor" in members["Party"].tolist()
    links = {p.value: parse_qs(p.proto.query_string) for p in app.get("page_link")}
    held = meetings.meetings(db, ANALYST, coordination.id)
    assert {"Feb 5, 2026 · minutes", "Mar 5, 2026 · draft"} <= set(links) and len(links) == len(held)
    from ciboard.ci_ui import meeting_label

    by_label = {meeting_label(m): m for m in held}
    assert all(query["workgroup"] == [str(coordination.id)] and query["meeting"] == [str(by_label[label].id)]
               for label, query in links.items()), "links name the records by id: a label changes when minutes are final"

    form = next(t.key for t in app.text_input if t.key.startswith("new-workgroup")).rsplit("-", 1)[0]
    app.text_input(key=f"{form}-name").set_value("Test workgroup: attendance leads")
    app.text_area(key=f"{form}-purpose").set_value("Look at attendance every fortnight")
    app.text_input(key=f"{form}-cadence").set_value("Every other Monday, 30 minutes")
    app.text_input(key=f"{form}-format").set_value("Video call")
    app.text_area(key=f"{form}-decisions").set_value("Which schools to visit\nWhat to raise with the vendor")
    add_rows(app, f"{form}-members", [
        {"name": "Test Chair", "party": "district", "role": "Chair"},
        {"name": "Test Coordinator", "party": "vendor", "party_id": "V2", "role": "Program coordinator"},
    ])
    button(app, "Set it up").click().run()
    no_exception(app)
    [made] = [g for g in meetings.workgroups(db, ANALYST) if g.name == "Test workgroup: attendance leads"]
    assert made.vendor_ids == ["V2"] and made.decisions == ["Which schools to visit", "What to raise with the vendor"]
    assert [(p.name, p.party, p.party_id, p.organisation) for p in made.members] == [
        ("Test Chair", "district", None, "District"), ("Test Coordinator", "vendor", "V2", V2_NAME)]
    assert app.selectbox(key="group").value == made.id
    assert "It has not met yet." in [c.value for c in app.caption]


def test_two_editors_of_one_workgroup_and_nothing_is_lost(dashboard, db):
    group = meetings.save_workgroup(db, Scope("facilitator"), ci_records.Workgroup(
        name="Test workgroup: two editors", purpose="To start with",
        members=[ci_records.Person("Test Member", "District", "district", role="Chair")],
        vendor_ids=["V2"],  # other tests find the district's own group as the one without vendors
    ), by="facilitator")
    first, second = (open_page(WORKGROUPS, user=user) for user in ("facilitator", "analyst"))
    forms = []
    for app in (first, second):
        app.selectbox(key="group").set_value(group.id).run()
        forms.append(next(t.key for t in app.text_area if t.key.startswith("wg-")).rsplit("-", 1)[0])

    first.text_area(key=f"{forms[0]}-purpose").set_value("First editor's purpose")
    button(first, "Save the workgroup").click().run()
    second.text_area(key=f"{forms[1]}-purpose").set_value("Second editor's purpose")
    add_rows(second, f"{forms[1]}-members", [{"name": "Test Newcomer", "party": "district", "role": "Note taker"}])
    button(second, "Save the workgroup").click().run()
    no_exception(second)

    both = table(second, "yours").set_index("field")
    assert set(both.index) == {"purpose", "members"}
    assert "Test Newcomer" in both.loc["members", "yours"] and "Test Newcomer" not in both.loc["members", "saved by facilitator"]
    assert meetings.workgroup(db, ANALYST, group.id).purpose == "First editor's purpose"

    button(second, "Save mine over theirs (I have read both)").click().run()
    no_exception(second)
    saved = meetings.workgroup(db, ANALYST, group.id)
    assert saved.purpose == "Second editor's purpose" and [p.name for p in saved.members] == ["Test Member", "Test Newcomer"]
    assert [(v.revision, v.record.purpose) for v in meetings.history(db, ANALYST, "workgroup", group.id)] == [
        (1, "To start with"), (2, "First editor's purpose"), (3, "Second editor's purpose")]
    assert table(second, "Saved by")["Revision"].tolist() == [1, 2, 3]


# --- what a vendor sees ------------------------------------------------------------------


@pytest.mark.parametrize("own", ["V3", "V5"])
def test_a_vendor_reads_only_its_own_workgroups_analyses_and_cycles(dashboard, db, own):
    scope = Scope("vendor", own)
    others = [v for v in VENDOR_LABELS if v != own]
    names = [VENDOR_LABELS[v].split(" · ")[1] for v in others]
    seen = {}
    for page in (WORKGROUPS, ROOT_CAUSES, PDSA):
        app = open_page(page, user=f"vendor-{own.lower()}")
        no_exception(app)
        text = page_text(app)
        assert set(re.findall(r"\bV[1-6]\b", text)) <= {own}, page
        assert not [name for name in names if name in text], page
        main = app.main
        assert not (main.text_input or main.text_area or main.data_editor or main.date_input), f"{page} offers no edit form"
        # Its own calendar link is the only thing a vendor makes here: a link to its meetings, no record.
        assert not [b.key for b in main.button if not b.key.startswith("calendar-link-")], page
        seen[page] = app

    groups = meetings.workgroups(db, scope)
    assert (SEEDED_GROUPS[1] if own == "V3" else SEEDED_GROUPS[2]) in [g.name for g in groups]
    assert all(own in g.vendor_ids for g in groups)
    assert table(seen[WORKGROUPS], "Workgroup")["Workgroup"].tolist() == [g.name for g in groups]
    analyses, cycles = meetings.root_causes(db, scope), meetings.pdsa_cycles(db, scope)
    assert all(r.slice.vendor_id == own for r in analyses) and all(c.slice.vendor_id == own for c in cycles)
    assert (seeded_analysis(db).id in [r.id for r in analyses]) == (own == "V5")
    if analyses:
        assert table(seen[ROOT_CAUSES], "Problem")["Problem"].tolist() == [r.problem for r in analyses]
    else:
        assert [i.value for i in seen[ROOT_CAUSES].info] == ["No root-cause analysis yet about your students."]
    if cycles:
        assert table(seen[PDSA], "Cycle")["Cycle"].tolist() == [c.title for c in cycles]
    else:
        assert [i.value for i in seen[PDSA].info] == ["No PDSA cycle yet about your students."]


@pytest.mark.parametrize("page", [WORKGROUPS, ROOT_CAUSES, PDSA])
def test_presenting_with_vendors_as_letters_names_no_vendor_and_offers_no_form(dashboard, page):
    app = open_page(page, query={"present": "true", "alias": "true"}, user="facilitator")
    no_exception(app)
    text = page_text(app)
    assert not re.findall(r"\bV[1-6]\b", text)
    assert not [name for name in VENDOR_LABELS.values() if name.split(" · ")[1] in text]
    assert re.search(r"\bVendor [A-F]\b", text), "the records name vendors by their letters"
    main = app.main
    assert not (main.text_input or main.text_area or main.data_editor or main.date_input or main.button), page
    [said] = [c.value for c in app.caption if c.value.startswith("Editing is off while vendors are shown as letters")]
    assert "screen that is not shared" in said, "and how to take notes"


# --- free text shows no image or HTML; a form's unsaved text is kept as a draft ------------


def hostile_records(db) -> dict[str, tuple[str, int]]:
    """A workgroup, an analysis and a cycle whose every text is hostile: {page: (chooser, record id)}."""
    from test_safe_text import HOSTILE_NOTES as bad

    staff, piece = Scope("facilitator"), Slice(vendor_id="V2")
    group = meetings.save_workgroup(db, staff, ci_records.Workgroup(
        name="Test workgroup: hostile text", purpose=bad, cadence=bad, format=bad, decisions=[bad], vendor_ids=["V2"],
        members=[ci_records.Person("Test Member", "District", "district", role=bad)]), by="facilitator")
    cycle = meetings.save_pdsa(db, staff, ci_records.PdsaCycle(
        title="Test cycle: hostile text " + bad, metric_id=METRIC, start_on=date(2026, 3, 2), slice=piece, change=bad,
        prediction=bad, study=bad, act="adapt", act_note=bad), by="facilitator")
    cycle = meetings.add_observation(db, staff, cycle.id, bad, by="facilitator")
    analysis = meetings.save_root_cause(db, staff, RootCause(
        metric_id=METRIC, problem="Test analysis: hostile text " + bad, slice=piece, whys=[bad] * 5,
        causes=[Cause(bad, True, 1), Cause(bad, False)], hmw=[bad], ideas=[Idea(bad, bad)]), by="facilitator")
    meetings.choose_idea(db, staff, analysis.id, 0, ci_records.draft_pdsa(analysis, 0, date(2026, 3, 2)), by="facilitator",
                         revision=analysis.revision)
    return {WORKGROUPS: ("group", group.id), PDSA: ("cycle", cycle.id), ROOT_CAUSES: ("analysis", analysis.id)}


def test_free_text_on_every_ci_page_shows_no_image_or_html(dashboard, db):
    from test_safe_text import loads_something, markdown_sent

    for page, (chooser, record_id) in hostile_records(db).items():
        app = open_page(page, user="facilitator")
        app.selectbox(key=chooser).set_value(record_id).run()
        no_exception(app)
        sent = markdown_sent(app)
        assert sum("evil/p.png" in text for text in sent) >= 3, page
        assert [text for text in sent if loads_something(text)] == [], page


def offers(app) -> list[str]:
    return [i.value for i in app.info if "unsaved draft" in i.value]


DRAFTS = {  # page: (record kind, chooser, the field typed in, its save button)
    PDSA: ("pdsa", "cycle", "act-note", "Save the cycle"),
    ROOT_CAUSES: ("root_cause", "analysis", "hmw", "Save the analysis"),
    WORKGROUPS: ("workgroup", "group", "purpose", "Save the workgroup"),
}


@pytest.mark.parametrize("page", list(DRAFTS))
def test_a_forms_draft_is_offered_back_restored_into_the_form_and_gone_once_saved(dashboard, db, page):
    kind, chooser, field, save = DRAFTS[page]
    staff, piece = Scope("facilitator"), Slice(vendor_id="V2")
    record = {
        "pdsa": lambda: meetings.save_pdsa(db, staff, ci_records.PdsaCycle(
            title="Test cycle: a draft", metric_id=METRIC, start_on=date(2026, 3, 2), slice=piece), by="facilitator"),
        "root_cause": lambda: meetings.save_root_cause(db, staff, RootCause(
            metric_id=METRIC, problem="Test analysis: a draft", slice=piece), by="facilitator"),
        "workgroup": lambda: meetings.save_workgroup(db, staff, ci_records.Workgroup(
            name="Test workgroup: a draft", vendor_ids=["V2"]), by="facilitator"),
    }[kind]()
    # What the page's script sends every few seconds while someone types in the form's box.
    kept = drafts.keep_draft(db, staff, kind, record.id, {field: "Typed, then the tab was closed"}, by="facilitator",
                               revision=record.revision)

    app = open_page(page, user="facilitator")
    app.selectbox(key=chooser).set_value(record.id).run()
    no_exception(app)
    assert offers(app) == [f"You have an unsaved draft from {kept.saved_at:%b %-d, %H:%M}."]
    box = next(t for t in app.text_area if t.key.endswith(f"-{field}") and not t.key.startswith("new-"))
    assert box.value == ""
    button(app, "Restore the draft").click().run()
    no_exception(app)
    assert not offers(app) and app.text_area(key=box.key).value == "Typed, then the tab was closed"
    button(app, save).click().run()
    no_exception(app)
    saved = {"pdsa": meetings.pdsa_cycle, "root_cause": meetings.root_cause, "workgroup": meetings.workgroup}[kind](
        db, ANALYST, record.id)
    typed = {"act-note": lambda r: r.act_note, "hmw": lambda r: "\n".join(r.hmw), "purpose": lambda r: r.purpose}
    assert typed[field](saved) == "Typed, then the tab was closed"
    assert drafts.draft(db, kind, record.id, by="facilitator") is None


def test_a_cycles_draft_over_an_older_revision_is_saved_only_through_the_conflict_screen(dashboard, db):
    staff = Scope("facilitator")
    cycle = meetings.save_pdsa(db, staff, ci_records.PdsaCycle(
        title="Test cycle: draft over an old revision", metric_id=METRIC, start_on=date(2026, 3, 2),
        slice=Slice(vendor_id="V2")), by="facilitator")
    drafts.keep_draft(db, staff, "pdsa", cycle.id, {"study": "Mine: it worked"}, by="facilitator", revision=1)
    meetings.save_pdsa(db, Scope("analyst"), replace(cycle, study="Theirs: it did not"), by="analyst")

    app = open_page(PDSA, user="facilitator")
    app.selectbox(key="cycle").set_value(cycle.id).run()
    [offer] = offers(app)
    assert "typed over revision 1, and revision 2 has been saved since" in offer
    button(app, "Restore the draft").click().run()
    study = next(t for t in app.text_area if t.key.endswith("-study"))
    assert study.value == "Mine: it worked"
    button(app, "Save the cycle").click().run()
    no_exception(app)
    assert app.error[0].value.startswith("Not saved: this pdsa was saved by analyst")
    assert meetings.pdsa_cycle(db, ANALYST, cycle.id).study == "Theirs: it did not"
