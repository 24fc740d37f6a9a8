"""The Meetings and Commitments pages through AppTest, on the demo district.

The flow a facilitator follows: start a meeting of a workgroup, take notes, add a commitment
linked to a metric and a slice, finalise; then open the next meeting and find the commitment
carried forward with how its number moved. Two people saving the same notes: the second is
told and shown both versions, and nothing is overwritten. Each test makes its own workgroup,
so the demo's seeded meetings stay as they are for other tests.
"""

import re
from datetime import date

import pytest

from ciboard import accounts, ci_records, drafts, followup, meetings, movements
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from conftest import open_page

FACILITATOR = Scope("facilitator")


@pytest.fixture
def store(dashboard) -> AppDB:
    return AppDB.of(dashboard.settings)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_on_each(request, dashboard, monkeypatch) -> AppDB:
    """The pages' app database on each backend: on PostgreSQL, the demo's copied into a fresh
    database that CIBOARD_APP_DB_URL then names, as a district moving to several servers does."""
    import streamlit as st

    from ciboard.appdb import copy_sqlite_to_postgres
    from ciboard.settings import get_settings

    demo = AppDB.of(dashboard.settings)
    if request.param == "sqlite":
        return demo
    url = request.getfixturevalue("postgres_url")
    copy_sqlite_to_postgres(demo, AppDB(url))
    monkeypatch.setenv("CIBOARD_APP_DB_URL", url)
    get_settings.cache_clear()
    st.cache_resource.clear()
    return AppDB(url)


def make_group(store: AppDB, name: str) -> ci_records.Workgroup:
    return meetings.save_workgroup(store, FACILITATOR, ci_records.Workgroup(
        name=name, purpose="Review Lumen's attendance with its schools.", cadence="every two weeks", format="video call",
        vendor_ids=["V2"], members=[ci_records.Person("Ana Ruiz", "District", "district", role="facilitator"),
                                   ci_records.Person("Lee Park", "Lumen Learning Partners", "vendor", "V2", "site lead")],
    ), by="facilitator")


def open_meeting(group: ci_records.Workgroup, meeting_id: int | None = None, user: str = "facilitator"):
    state = {"workgroup": group.id, **({"meeting": meeting_id} if meeting_id is not None else {})}
    return open_page("app_pages/meetings.py", state=state, user=user)


def text_of(app) -> str:
    kinds = ("title", "subheader", "markdown", "caption", "info", "error", "warning")
    cells = " ".join(str(v) for frame in [*app.dataframe, *app.table] for v in frame.value.astype(str).to_numpy().ravel())
    return " ".join(str(e.value) for kind in kinds for e in app.get(kind)) + " " + cells


def test_a_meeting_from_start_to_minutes_and_on_to_the_next(store, dashboard):
    group = make_group(store, "Flow: Lumen review")
    app = open_meeting(group, meeting_id=0)  # "New meeting…"
    app.date_input[0].set_value(date(2026, 2, 2))
    app.button(key="FormSubmitter:new_meeting-Start the meeting").click().run()
    [first] = meetings.meetings(store, FACILITATOR, group.id)
    assert (first.held_on, [p.name for p in first.attendees]) == (date(2026, 2, 2), ["Ana Ruiz", "Lee Park"])

    app = open_meeting(group, first.id)
    assert "Outcomes data" in text_of(app) and "Since 2025-12-08" in text_of(app), "eight weeks back for a first meeting"
    app.text_area(key=f"agenda-{first.id}-operations").input("Two tutors left in January.")
    app.text_area(key=f"agenda-{first.id}-next_steps").input("Lumen calls absent families.")
    app.button[[b.label for b in app.button].index("Save notes")].click().run()
    assert meetings.meeting(store, FACILITATOR, first.id).agenda["operations"] == "Two tutors left in January."

    made = meetings.save_commitment(store, FACILITATOR, ci_records.Commitment(
        party="vendor", party_id="V2", owner="Lee Park", action="Call every family of a student absent three times",
        made_on=first.held_on, due_on=date(2026, 2, 20), metric_id="tutoring_attendance_rate",
        slice=ci_records.Slice(vendor_id="V2"), meeting_id=first.id,
    ), by="facilitator")

    app = open_meeting(group, first.id)
    app.button(key="finalise").click().run()
    final = meetings.meeting(store, FACILITATOR, first.id)
    assert final.is_final and final.agenda["next_steps"] == "Lumen calls absent families."
    assert final.snapshot["filters"] == {"vendor_id": ["V2"]}
    with pytest.raises(meetings.MeetingFinal):
        meetings.save_meeting(store, FACILITATOR, final, by="facilitator")
    app = open_meeting(group, first.id)
    assert not app.text_area, "minutes are read-only"
    assert "Minutes finalised by facilitator" in text_of(app)

    # The next meeting carries the commitment forward, overdue, with its number's movement.
    second = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 2)), by="facilitator")
    app = open_meeting(group, second.id)
    shown = text_of(app)
    assert "Call every family of a student absent three times" in shown and "10 days overdue" in shown
    movement = movements.metric_movement(
        dashboard, FACILITATOR, "tutoring_attendance_rate", ci_records.Slice(vendor_id="V2"), made.made_on, second.held_on
    )
    from ciboard.dashboard import metrics as _  # noqa: F401  (the page's labels come from the data map)
    from ciboard.queries import data_map

    metric = data_map(dashboard).set_index("metric_id").loc["tutoring_attendance_rate"].to_dict()
    assert movement.sentence(metric) in shown


def test_finalised_minutes_keep_their_numbers_after_new_data(store, dashboard):
    group = make_group(store, "Flow: frozen numbers")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 1, 26)), by="facilitator")
    app = open_meeting(group, draft.id)
    app.button(key="finalise").click().run()
    final = meetings.meeting(store, FACILITATOR, draft.id)
    frozen = final.snapshot
    # Whatever the warehouse says later, the minutes read the snapshot, not the data, and the
    # version the numbers came from is pinned for the packet's charts.
    assert frozen["prefill"]["held_on"] == "2026-01-26"
    assert final.warehouse_version == frozen["prefill"]["warehouse_version"] == dashboard.version()
    assert f"meeting-{draft.id}" in dashboard.pins()[final.warehouse_version]
    app = open_meeting(group, draft.id)
    summary = followup.summary(followup.Prefill.from_dict(frozen["prefill"]), dashboard)
    assert summary[0] in text_of(app)


def test_a_save_pressed_while_the_signals_are_prepared_is_kept(store, monkeypatch):
    """The page waits for the server's signals and reruns by itself once they are stored; a Save
    pressed in the run that finds them stored must still save (it once reran first and dropped it)."""
    from ciboard import ci_ui

    group = make_group(store, "Flow: saved while preparing")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 2, 16)), by="facilitator")
    # The page reads the prefill, then its waiting box reads it again: the signals are stored in between.
    pending, prefill = [True, True, True], ci_ui.prefill

    def prefill_while_preparing(*args):
        snapshot = prefill(*args)
        return {**snapshot, "prefill": {**snapshot["prefill"], "signals_pending": pending.pop(0) if pending else False}}

    monkeypatch.setattr(ci_ui, "prefill", prefill_while_preparing)
    app = open_meeting(group, draft.id)
    assert "being prepared" in text_of(app)
    app.text_area(key=f"agenda-{draft.id}-operations").input("Typed while the signals were prepared")
    pending[:] = [True]
    app.button[[b.label for b in app.button].index("Save notes")].click().run()
    assert meetings.meeting(store, FACILITATOR, draft.id).agenda["operations"] == "Typed while the signals were prepared"


def test_notes_land_in_the_meeting_on_screen_when_two_workgroups_are_named_alike(store):
    """The chooser sends a choice back by its label: of two workgroups named alike the second
    once opened the first on the next click, and its notes were saved into the other group's
    meeting (seen when a database copied from another held a workgroup of the same name)."""
    first, second = make_group(store, "Flow: named alike"), make_group(store, "Flow: named alike")
    meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(first, date(2026, 2, 23)), by="facilitator")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(second, date(2026, 2, 23)), by="facilitator")
    app = open_meeting(second, draft.id)
    chooser = app.selectbox(key="workgroup")
    assert len(set(chooser.options)) == len(chooser.options), "every workgroup can be told apart"
    app.text_area(key=f"agenda-{draft.id}-operations").input("Notes of the second group")
    app.button[[b.label for b in app.button].index("Save notes")].click().run()
    assert meetings.meeting(store, FACILITATOR, draft.id).agenda["operations"] == "Notes of the second group"
    assert app.selectbox(key="workgroup").value == second.id


def test_two_people_saving_the_same_notes_are_told(store_on_each):
    store = store_on_each
    group = make_group(store, "Flow: conflict")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 2, 9)), by="facilitator")
    key = f"agenda-{draft.id}-operations"
    if accounts.account(store, "facilitator-2") is None:
        accounts.add_user(store, "facilitator-2", role="facilitator")
    # Two facilitators: the same scope, so the page's numbers are computed once.
    mine, theirs = open_meeting(group, draft.id), open_meeting(group, draft.id, user="facilitator-2")
    theirs.text_area(key=key).input("Their notes")
    theirs.button[[b.label for b in theirs.button].index("Save notes")].click().run()
    mine.text_area(key=key).input("My notes")
    mine.button[[b.label for b in mine.button].index("Save notes")].click().run()
    assert "Not saved" in mine.error[0].value and "facilitator-2" in mine.error[0].value
    [both] = [frame.value for frame in mine.dataframe if "yours" in frame.value.columns]
    assert both.iloc[0].tolist() == ["agenda", "operations: Their notes", "operations: My notes"]
    assert meetings.meeting(store, FACILITATOR, draft.id).agenda["operations"] == "Their notes", "nothing overwritten"
    assert mine.text_area(key=key).value == "My notes", "what I typed is still there"

    mine.button[[b.label for b in mine.button].index("Keep my notes (I have read theirs)")].click().run()
    assert meetings.meeting(store, FACILITATOR, draft.id).agenda["operations"] == "My notes"
    revisions = [(v.revision, v.saved_by, v.record.agenda.get("operations")) for v in meetings.history(store, FACILITATOR, "meeting", draft.id)]
    assert revisions == [(1, "facilitator", ""), (2, "facilitator-2", "Their notes"), (3, "facilitator", "My notes")]


def test_a_vendor_reads_its_meetings_and_updates_only_its_own_commitments(store):
    group = make_group(store, "Flow: vendor view")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 2, 16)), by="facilitator")
    own = meetings.save_commitment(store, FACILITATOR, ci_records.Commitment(
        party="vendor", party_id="V2", owner="Lee Park", action="Text reminders the evening before", made_on=draft.held_on,
        meeting_id=draft.id, metric_id="tutoring_attendance_rate", slice=ci_records.Slice(vendor_id="V2")), by="facilitator")
    app = open_meeting(group, draft.id, user="vendor-v2")
    assert not app.text_area and "Save notes" not in [b.label for b in app.button]
    assert "Ana Ruiz" in text_of(app)
    outsider = open_page("app_pages/meetings.py", user="vendor-v4")
    assert "Flow: vendor view" not in [o for s in outsider.selectbox for o in s.options]

    app = open_page("app_pages/commitments.py", user="vendor-v2", state={"commitment": own.id})
    app.selectbox(key="commitment").set_value(own.id).run()
    app.button(key=f"FormSubmitter:status-{own.id}-Save").click().run()
    assert not app.exception
    with pytest.raises(Exception, match="own vendor|only"):
        meetings.update_status(store, Scope("vendor", "V4"), own.id, "done", by="vendor-v4", revision=own.revision)


def test_commitments_page_adds_and_logs(store):
    app = open_page("app_pages/commitments.py", user="facilitator")
    app.text_input[[t.label for t in app.text_input].index("Owner")].input("Jo Kim")
    app.text_area[[t.label for t in app.text_area].index("Action")].input("Share the absence list with each school office weekly")
    app.date_input(key="new-commitment-0-due").set_value(date.today())
    app.button[[b.label for b in app.button].index("Add the commitment")].click().run()
    assert not app.exception
    [made] = [c for c in meetings.commitments(store, ANALYST) if c.owner == "Jo Kim"]
    assert made.party == "district" and made.status == "open" and made.log[0].by == "facilitator"
    app = open_page("app_pages/commitments.py", user="facilitator")
    app.selectbox(key="commitment").set_value(made.id).run()
    form = f"status-{made.id}"
    app.selectbox[[s.label for s in app.selectbox].index("Status")].set_value("in_progress")
    app.text_input[[t.label for t in app.text_input].index("Note")].input("First list sent")
    app.button(key=f"FormSubmitter:{form}-Save").click().run()
    again = meetings.commitment(store, ANALYST, made.id)
    assert [(e.status, e.note) for e in again.log] == [("open", ""), ("in_progress", "First list sent")]


def test_presenting_with_letters_the_commitments_page_offers_no_form_and_says_why(store):
    [first] = meetings.commitments(store, ANALYST)[:1]
    app = open_page("app_pages/commitments.py", user="facilitator", query={"present": "true", "alias": "true"})
    app.selectbox(key="commitment").set_value(first.id).run()
    assert not app.exception
    assert not (app.main.text_input or app.main.text_area or app.main.date_input or app.main.button)
    said = [c.value for c in app.caption if c.value.startswith("Editing is off while vendors are shown as letters")]
    assert len(said) == 2, "once for the chosen commitment's log, once for a new commitment"
    plain = open_page("app_pages/commitments.py", user="facilitator", query={"present": "true"})
    assert "Add the commitment" in [b.label for b in plain.button], "presenting without letters still edits"


def test_a_pdsa_cycle_marks_the_trend_charts_of_its_slice(store):
    """The seeded V5 cycle for English learners marks V5's chart and the district's, not V4's."""
    [cycle] = [p for p in meetings.pdsa_cycles(store, ANALYST) if p.slice.vendor_id == "V5"]
    metric = {"tutoring_attendance_rate": "Tutoring attendance rate"}[cycle.metric_id]
    title = f"PDSA: {cycle.title}"

    def marked(**query) -> bool:
        from conftest import figures

        app = open_page("app_pages/trends.py", query={"metric": metric, **query})
        return any(title in str(a.get("text", "")) for a in figures(app)[0]["layout"].get("annotations", []))

    assert marked() and marked(vendor="V5 · Cardinal Tutors")
    assert not marked(vendor="V4 · Northstar Readers")


@pytest.mark.parametrize("page", ["meetings", "commitments"])
def test_presenting_with_letters_names_no_vendor(store, page):
    """The seeded V3 coordination meeting, named after Keystone, read while presenting as letters."""
    import re

    from conftest import VENDOR_LABELS

    [group] = [g for g in meetings.workgroups(store, ANALYST) if g.vendor_ids == ["V3"]]
    state = {"workgroup": group.id} if page == "meetings" else {}
    app = open_page(f"app_pages/{page}.py", user="facilitator", state=state, query={"present": "true", "alias": "true"})
    shown = text_of(app) + " ".join(str(o) for s in app.selectbox for o in s.options)
    assert re.search(r"\bVendor [A-F]\b", shown)  # the meeting's own letters, drawn per meeting
    for vendor_id, label in VENDOR_LABELS.items():
        assert not re.search(rf"\b{vendor_id}\b", shown) and label.split(" · ")[1] not in shown, vendor_id


# --- free text shows no image or HTML; unsaved notes are kept as a draft --------------------


def test_notes_and_the_workgroups_text_show_no_image_or_html(store):
    from dataclasses import replace

    from test_safe_text import HOSTILE_NOTES, loads_something, markdown_sent

    group = make_group(store, "Flow: hostile notes")
    group = meetings.save_workgroup(store, FACILITATOR, replace(group, purpose=HOSTILE_NOTES, decisions=[HOSTILE_NOTES]),
                                    by="facilitator")
    draft = meetings.save_meeting(store, FACILITATOR, replace(
        ci_records.draft_meeting(group, date(2026, 2, 23)), agenda={key: HOSTILE_NOTES for key in ci_records.AGENDA_KEYS},
    ), by="facilitator")
    # The vendor reads the notes; the facilitator edits them and reads them in their history.
    for user in ("vendor-v2", "facilitator"):
        sent = markdown_sent(open_meeting(group, draft.id, user=user))
        assert sum("evil/p.png" in text for text in sent) >= 2, "the purpose and the notes are shown"
        assert [text for text in sent if loads_something(text)] == [], user


def offers(app) -> list[str]:
    return [i.value for i in app.info if "unsaved draft" in i.value]


def press(app, label: str):
    return app.button[[b.label for b in app.button].index(label)].click().run()


def test_unsaved_notes_are_kept_as_a_draft_and_offered_back_after_a_reload(store):
    group = make_group(store, "Flow: drafts")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 2, 24)), by="facilitator")
    box, other = f"agenda-{draft.id}-operations", f"agenda-{draft.id}-next_steps"
    app = open_meeting(group, draft.id)
    app.text_area(key=box).input("Bus times changed on Feb 2").run()
    kept = drafts.draft(store, "meeting", draft.id, by="facilitator")
    assert (kept.texts["operations"], kept.revision) == ("Bus times changed on Feb 2", 1)
    assert meetings.meeting(store, ANALYST, draft.id).revision == 1, "a draft is not a revision"
    assert not offers(app), "no offer of what is on screen"

    # A reload is a new session: the notes as saved, and the draft offered.
    app = open_meeting(group, draft.id)
    assert app.text_area(key=box).value == ""
    assert offers(app) == [f"You have an unsaved draft from {kept.saved_at:%b %-d, %H:%M}."]
    # Typing before answering does not replace the draft.
    app.text_area(key=other).input("Something else").run()
    assert drafts.draft(store, "meeting", draft.id, by="facilitator").texts == kept.texts
    press(app, "Restore the draft")
    assert not app.exception and not offers(app)
    assert app.text_area(key=box).value == "Bus times changed on Feb 2"
    press(app, "Save notes")
    assert meetings.meeting(store, ANALYST, draft.id).agenda["operations"] == "Bus times changed on Feb 2"
    assert drafts.draft(store, "meeting", draft.id, by="facilitator") is None, "saving removes the draft"

    app = open_meeting(group, draft.id)
    assert not offers(app) and app.text_area(key=box).value == "Bus times changed on Feb 2"
    app.text_area(key=box).input("Bus times changed on Feb 2; never mind").run()
    app = open_meeting(group, draft.id)
    press(app, "Discard the draft")
    assert not offers(app) and drafts.draft(store, "meeting", draft.id, by="facilitator") is None
    assert app.text_area(key=box).value == "Bus times changed on Feb 2"


def test_a_draft_typed_over_an_older_revision_is_restored_into_the_conflict_screen(store):
    from dataclasses import replace

    group = make_group(store, "Flow: draft and conflict")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 2, 25)), by="facilitator")
    box = f"agenda-{draft.id}-operations"
    open_meeting(group, draft.id).text_area(key=box).input("My notes").run()
    theirs = meetings.save_meeting(store, ANALYST, replace(draft, agenda={**draft.agenda, "operations": "Their notes"}),
                                   by="analyst")

    app = open_meeting(group, draft.id)
    [offer] = offers(app)
    assert "typed over revision 1, and revision 2 has been saved since" in offer
    press(app, "Restore the draft")
    assert app.text_area(key=box).value == "My notes"
    press(app, "Save notes")
    assert "Not saved" in app.error[0].value, "not saved over their notes unseen"
    assert meetings.meeting(store, ANALYST, draft.id).agenda["operations"] == "Their notes"
    press(app, "Keep my notes (I have read theirs)")
    saved = meetings.meeting(store, ANALYST, draft.id)
    assert (saved.agenda["operations"], saved.revision) == ("My notes", theirs.revision + 1)
    assert drafts.draft(store, "meeting", draft.id, by="facilitator") is None


def test_a_draft_left_when_the_minutes_were_finalised_is_shown_to_copy(store):
    group = make_group(store, "Flow: draft left behind")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 2, 26)), by="facilitator")
    open_meeting(group, draft.id).text_area(key=f"agenda-{draft.id}-partnerships").input("Ask Lumen about the rota").run()
    meetings.finalise(store, ANALYST, draft.id, {}, warehouse_version="v", by="analyst")
    app = open_meeting(group, draft.id)
    assert "is not in these minutes" in app.warning[0].value
    assert "Ask Lumen about the rota" in [t.value for t in app.text]
    press(app, "Discard the draft")
    assert drafts.draft(store, "meeting", draft.id, by="facilitator") is None and not app.warning


# --- the meeting flow: commitments made in Next steps, the choice kept, bad dates, the right minutes ---


def commitment_fields(app, form: str, owner: str, action: str, due: date | None):
    app.text_input(key=f"{form}-owner").input(owner)
    app.text_area(key=f"{form}-action").input(action)
    app.date_input(key=f"{form}-due").set_value(due)
    return app.button(key=f"{form}-submit").click().run()


def made_at_this_meeting(app) -> list[str]:
    [frame] = [f.value for f in app.dataframe if "Owner" in f.value.columns and "Since it was made" not in f.value.columns]
    return frame["Action"].tolist()


def test_a_commitment_is_added_in_next_steps_confirmed_and_listed_as_made_at_this_meeting(store):
    group = make_group(store, "Flow: commitments in next steps")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 9)), by="facilitator")
    app = open_meeting(group, draft.id)
    form = f"new-commitment-{draft.id}-0"
    app = commitment_fields(app, form, "Lee Park", "Call every family after a second absence", date(2026, 3, 27))
    assert not app.exception
    [made] = meetings.commitments(store, FACILITATOR, meeting_id=draft.id)
    assert (made.owner, made.made_on, made.due_on) == ("Lee Park", date(2026, 3, 9), date(2026, 3, 27))
    assert any(f"Added commitment #{made.id}" in s.value for s in app.success), "the save is confirmed"
    assert made_at_this_meeting(app) == ["Call every family after a second absence"]
    fresh = f"new-commitment-{draft.id}-1"
    assert (app.text_input(key=f"{fresh}-owner").value, app.text_area(key=f"{fresh}-action").value) == ("", ""), \
        "the form is empty for the next one"

    # Corrected in place: the same commitment, a new revision.
    app.selectbox(key=f"edit-made-{draft.id}").set_value(made.id).run()
    edit = f"edit-commitment-{made.id}-0"
    assert app.text_input(key=f"{edit}-owner").value == "Lee Park"
    app.text_input(key=f"{edit}-owner").input("Lee Park and Ana Ruiz")
    app.button(key=f"{edit}-submit").click().run()
    again = meetings.commitment(store, FACILITATOR, made.id)
    assert (again.owner, again.revision, again.meeting_id) == ("Lee Park and Ana Ruiz", made.revision + 1, draft.id)


def test_a_commitment_made_at_a_meeting_shows_on_its_page(store):
    group = make_group(store, "Flow: made here, shown here")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 10)), by="facilitator")
    meetings.save_commitment(store, FACILITATOR, ci_records.Commitment(
        party="vendor", party_id="V2", owner="Lee Park", action="Send Lumen the absence list every Friday",
        made_on=draft.held_on, due_on=date(2026, 3, 20), meeting_id=draft.id), by="facilitator")
    for user in ("facilitator", "vendor-v2"):
        assert made_at_this_meeting(open_meeting(group, draft.id, user=user)) == ["Send Lumen the absence list every Friday"]


@pytest.mark.parametrize("due", [date(2026, 3, 2), None, date(2062, 3, 20)], ids=["before the meeting", "none", "a typo"])
def test_a_bad_due_date_saves_nothing_and_keeps_what_was_typed(store, due):
    group = make_group(store, "Flow: bad due date")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 11)), by="facilitator")
    app = open_meeting(group, draft.id)
    form = f"new-commitment-{draft.id}-0"
    app = commitment_fields(app, form, "Lee Park", "Share the tutor rota with schools", due)
    assert meetings.commitments(store, ANALYST, meeting_id=draft.id) == [], "nothing saved"
    assert [e.value for e in app.error if e.value.startswith("Not saved")], "and it says why"
    assert app.text_area(key=f"{form}-action").value == "Share the tutor rota with schools", "what was typed stays"


def test_the_chosen_meeting_survives_another_page_and_a_reload(store):
    group = make_group(store, "Flow: back and reload")
    older = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 2)), by="facilitator")
    meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 16)), by="facilitator")
    app = open_page("app_pages/meetings.py", user="facilitator")
    assert app.selectbox(key="workgroup").value != group.id, "not the first workgroup, so a reset shows"
    app.selectbox(key="workgroup").set_value(group.id).run()
    app.selectbox(key="meeting").set_value(older.id).run()
    assert app.subheader[0].value.endswith("Monday, March 2, 2026")
    assert (app.query_params["workgroup"], app.query_params["meeting"]) == (str(group.id), str(older.id))

    app.switch_page("app_pages/commitments.py").run()
    app.switch_page("app_pages/meetings.py").run()  # as Back does: the page without its query
    assert (app.selectbox(key="workgroup").value, app.selectbox(key="meeting").value) == (group.id, older.id)

    reloaded = open_page("app_pages/meetings.py", user="facilitator",
                         query={"workgroup": str(group.id), "meeting": str(older.id)})
    assert (reloaded.selectbox(key="workgroup").value, reloaded.selectbox(key="meeting").value) == (group.id, older.id)


def test_finalise_names_the_meeting_and_its_date_and_finalises_that_one(store):
    group = make_group(store, "Flow: finalise the right one")
    older = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 3)), by="facilitator")
    newer = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 17)), by="facilitator")
    app = open_meeting(group, older.id)
    asked = " ".join(m.value for m in app.markdown if "Finalise the minutes of" in m.value)
    assert "Flow: finalise the right one" in asked and "Tuesday, March 3, 2026" in asked
    button = app.button(key="finalise")
    assert button.label == "Finalise the meeting of Mar 3, 2026"
    button.click().run()
    assert meetings.meeting(store, FACILITATOR, older.id).is_final
    assert not meetings.meeting(store, FACILITATOR, newer.id).is_final
    shown = text_of(app)
    assert re.search(r"data version \d+\b", shown) and "wh-" not in shown, "a version label, not a file name"


def test_a_vendor_is_not_invited_to_run_or_finalise_a_meeting(store):
    group = make_group(store, "Flow: vendor reads")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 12)), by="facilitator")
    app = open_meeting(group, draft.id, user="vendor-v2")
    labels = [b.label for b in app.button]
    assert not [label for label in labels if "Finalise" in label or "Save" in label or "Add" in label], labels
    assert "New meeting…" not in [labels for s in app.selectbox for labels in s.options]
    shown = text_of(app)
    assert "Run the meeting" not in shown and "Finalise the minutes" not in shown and "District staff run them" in shown


def test_presenting_with_letters_says_why_the_notes_are_read_only_and_how_to_take_them(store):
    group = make_group(store, "Flow: presenting")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 13)), by="facilitator")
    app = open_page("app_pages/meetings.py", user="facilitator", state={"workgroup": group.id, "meeting": draft.id},
                    query={"present": "true", "alias": "true"})
    assert not app.text_area and not app.text_input
    [said] = [i.value for i in app.info if i.value.startswith("Editing is off")]
    assert "screen that is not shared" in said and "Vendors as Vendor A, B, C" in said


def test_a_draft_left_behind_reads_in_letters_while_presenting(store):
    group = make_group(store, "Flow: draft left, presenting")
    draft = meetings.save_meeting(store, FACILITATOR, ci_records.draft_meeting(group, date(2026, 3, 14)), by="facilitator")
    box = f"agenda-{draft.id}-partnerships"
    open_meeting(group, draft.id).text_area(key=box).input("Ask Lumen Learning Partners (V2) about the rota").run()
    meetings.finalise(store, ANALYST, draft.id, {}, warehouse_version="wh-000001", by="analyst")
    app = open_page("app_pages/meetings.py", user="facilitator", state={"workgroup": group.id, "meeting": draft.id},
                    query={"present": "true", "alias": "true"})
    [kept] = [t.value for t in app.text if "about the rota" in t.value]
    assert "Lumen" not in kept and "V2" not in kept and re.fullmatch(r"Ask Vendor [A-F] about the rota", kept)


def test_follow_up_counts_an_analyst_froze_reach_a_facilitator_protected_on_screen_and_in_the_packet(store, dashboard):
    """An analyst's snapshot holds exact follow-up counts, small ones too. A facilitator reads
    them as its own scope counts them (small ones hidden, the rest with the cell-key noise), on
    the meeting's screen and in its packet, never the analyst's."""
    from ciboard import packet, packet_files

    group = make_group(store, "Frozen follow-up counts")
    held_on = date(2026, 3, 12)
    draft = meetings.save_meeting(store, ANALYST, ci_records.draft_meeting(group, held_on), by="analyst")
    frozen = followup.snapshot(followup.outcomes_prefill(dashboard, store, ANALYST, group.id, held_on))
    frozen["prefill"]["follow_up"] = {key: {"now": 3, "then": 4} for key in frozen["prefill"]["follow_up"]}
    followup.finalise(dashboard, store, ANALYST, draft.id, frozen, by="analyst", revision=draft.revision)
    since = date.fromisoformat(frozen["prefill"]["since"])
    seen = followup.follow_up_counts(dashboard, FACILITATOR, since, held_on, {"vendor_id": ["V2"]})
    said = {when: "too few to show" if n is None else f"{n:,}" for when, n in seen["absent"].items()}
    expected = f"persistently absent {said['now']} (was {said['then']} on {since})"
    exact = "persistently absent 3 (was 4"

    app = open_meeting(group, draft.id)
    shown = " ".join(m.value for m in app.markdown)
    assert expected in shown and exact not in shown

    text = packet_files.to_markdown(packet.build(dashboard, store, FACILITATOR, draft.id))
    assert expected in text and exact not in text
    # The analyst who froze them reads them as frozen.
    assert exact in packet_files.to_markdown(packet.build(dashboard, store, ANALYST, draft.id))
