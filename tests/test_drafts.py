"""Drafts: what someone typed into a record's form and has not saved, kept per person and
record so a reload or a restart loses nothing. The store (kept, read back only by its writer,
replaced, removed by a save or a discard, never a revision), and in a real browser the part
AppTest cannot reach: text typed without leaving the box is kept within seconds, and offered
back after a reload. The pages' flows through AppTest are in test_page_meetings.py and
test_page_ci.py."""

import json
import time
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from ciboard import ci_records as rec, drafts, meetings as m
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.appdb import AppDB

try:  # the browser test reuses test_browser's server and sign-in; the rest runs without playwright
    import test_browser as live
except pytest.skip.Exception:
    live = None
else:
    server, browser, passwords = live.server, live.browser, live.passwords

STAFF = Scope("facilitator")
DAY = date(2026, 2, 5)
AT = datetime(2026, 2, 5, 14, 5, tzinfo=timezone.utc)


@pytest.fixture
def db(tmp_path: Path, app_db_url) -> AppDB:
    return AppDB(app_db_url or tmp_path / "app.sqlite3")


@pytest.fixture
def meeting(db) -> rec.Meeting:
    group = m.save_workgroup(db, STAFF, rec.Workgroup(name="Coordination", vendor_ids=["V3"]), by="facilitator")
    return m.save_meeting(db, STAFF, rec.draft_meeting(group, DAY), by="facilitator")


def test_a_draft_is_kept_per_person_and_record_and_read_back_only_by_its_writer(db, meeting):
    other = m.save_meeting(db, STAFF, rec.draft_meeting(m.workgroup(db, STAFF, meeting.workgroup_id), date(2026, 3, 5)),
                           by="facilitator")
    kept = drafts.keep_draft(db, STAFF, "meeting", meeting.id, {"operations": "Two tutors left"}, by="facilitator",
                        revision=meeting.revision, at=AT)
    assert drafts.draft(db, "meeting", meeting.id, by="facilitator") == kept == drafts.Draft(
        "meeting", meeting.id, "facilitator", 1, {"operations": "Two tutors left"}, AT)
    assert drafts.draft(db, "meeting", meeting.id, by="analyst") is None
    assert drafts.draft(db, "meeting", other.id, by="facilitator") is None
    assert drafts.draft(db, "workgroup", meeting.workgroup_id, by="facilitator") is None

    # A later keep replaces the earlier one; someone else's is their own.
    drafts.keep_draft(db, STAFF, "meeting", meeting.id, {"operations": "Two tutors left in January"}, by="facilitator",
                 revision=1)
    drafts.keep_draft(db, Scope("analyst"), "meeting", meeting.id, {"operations": "Mine"}, by="analyst", revision=1)
    assert drafts.draft(db, "meeting", meeting.id, by="facilitator").texts == {"operations": "Two tutors left in January"}
    assert drafts.draft(db, "meeting", meeting.id, by="analyst").texts == {"operations": "Mine"}


def test_a_draft_is_not_a_revision(db, meeting):
    drafts.keep_draft(db, STAFF, "meeting", meeting.id, {"operations": "typed, not saved"}, by="facilitator", revision=1)
    stored = m.meeting(db, ANALYST, meeting.id)
    assert (stored.revision, stored.agenda["operations"], stored.updated_at) == (1, "", meeting.updated_at)
    assert [v.revision for v in m.history(db, ANALYST, "meeting", meeting.id)] == [1]


def test_saving_the_record_removes_the_savers_draft_only(db, meeting):
    for user in ("facilitator", "analyst"):
        drafts.keep_draft(db, Scope(user), "meeting", meeting.id, {"operations": f"{user}'s notes"}, by=user, revision=1)
    saved = m.save_meeting(db, STAFF, replace(meeting, agenda={**meeting.agenda, "operations": "facilitator's notes"}),
                           by="facilitator")
    assert drafts.draft(db, "meeting", meeting.id, by="facilitator") is None
    # The analyst's draft waits for them, typed over revision 1: restoring and saving it will conflict.
    assert drafts.draft(db, "meeting", meeting.id, by="analyst").revision == 1 and saved.revision == 2


def test_a_discarded_draft_is_gone(db, meeting):
    drafts.keep_draft(db, STAFF, "meeting", meeting.id, {"operations": "never mind"}, by="facilitator", revision=1)
    drafts.discard_draft(db, "meeting", meeting.id, by="facilitator")
    assert drafts.draft(db, "meeting", meeting.id, by="facilitator") is None
    drafts.discard_draft(db, "meeting", meeting.id, by="facilitator")  # discarding nothing is fine


def test_every_form_record_drops_its_savers_draft_on_save(db, meeting):
    piece = rec.Slice(vendor_id="V3")
    cycle = m.save_pdsa(db, STAFF, rec.PdsaCycle(title="Reminders", metric_id="tutoring_attendance_rate", start_on=DAY,
                                                 slice=piece), by="facilitator")
    analysis = m.save_root_cause(db, STAFF, rec.RootCause(metric_id="tutoring_attendance_rate", problem="Attendance fell",
                                                          slice=piece), by="facilitator")
    group = m.workgroup(db, STAFF, meeting.workgroup_id)
    for kind, record, save in (("pdsa", cycle, m.save_pdsa), ("root_cause", analysis, m.save_root_cause),
                               ("workgroup", group, m.save_workgroup)):
        drafts.keep_draft(db, STAFF, kind, record.id, {"text": "typed"}, by="facilitator", revision=record.revision)
        save(db, STAFF, record, by="facilitator")
        assert drafts.draft(db, kind, record.id, by="facilitator") is None, kind
    # An observation or a chosen idea saves none of the form's text: the draft stays.
    drafts.keep_draft(db, STAFF, "pdsa", cycle.id, {"study": "typed"}, by="facilitator", revision=2)
    m.add_observation(db, STAFF, cycle.id, "Rota board up", by="facilitator")
    assert drafts.draft(db, "pdsa", cycle.id, by="facilitator").texts == {"study": "typed"}


def test_finalised_minutes_take_no_draft(db, meeting):
    drafts.keep_draft(db, STAFF, "meeting", meeting.id, {"operations": "the finaliser's"}, by="facilitator", revision=1)
    drafts.keep_draft(db, Scope("analyst"), "meeting", meeting.id, {"operations": "left behind"}, by="analyst", revision=1)
    m.finalise(db, STAFF, meeting.id, {"prefill": {}}, warehouse_version="v1", by="facilitator")
    assert drafts.draft(db, "meeting", meeting.id, by="facilitator") is None
    # Someone else's is not thrown away: the page shows it beside the minutes, to copy from.
    assert drafts.draft(db, "meeting", meeting.id, by="analyst").texts == {"operations": "left behind"}
    with pytest.raises(m.MeetingFinal):
        drafts.keep_draft(db, STAFF, "meeting", meeting.id, {"operations": "too late"}, by="facilitator", revision=2)


def test_only_those_who_edit_the_records_keep_drafts(db, meeting):
    with pytest.raises(ScopeError):
        drafts.keep_draft(db, Scope("vendor", "V3"), "meeting", meeting.id, {"operations": "x"}, by="vendor-v3", revision=1)
    with pytest.raises(ValueError, match="unknown record kind"):
        drafts.keep_draft(db, STAFF, "minutes", meeting.id, {}, by="facilitator", revision=1)
    with pytest.raises(m.NotFound):
        drafts.keep_draft(db, STAFF, "meeting", meeting.id + 99, {}, by="facilitator", revision=1)


def test_a_draft_outlives_the_process(db, meeting):
    """A restart is a new process opening the same file (or database)."""
    drafts.keep_draft(db, STAFF, "meeting", meeting.id, {"next_steps": "Call the families"}, by="facilitator", revision=1)
    assert drafts.draft(AppDB(db.url or db.path), "meeting", meeting.id, by="facilitator").texts == {
        "next_steps": "Call the families"}
    with AppDB(db.url or db.path).connect() as con:
        row = con.execute("select texts from drafts").fetchone()
    assert json.loads(row["texts"]) == {"next_steps": "Call the families"}


# --- in a real browser: typing is kept without leaving the box, and offered after a reload ------


@pytest.mark.browser
@pytest.mark.skipif(live is None or not Path(live.CHROMIUM).exists(), reason="playwright or Chromium is missing")
def test_notes_typed_without_leaving_the_box_survive_a_reload(server, browser, passwords, demo_warehouse):
    from ciboard import ci_ui

    store = AppDB.of(demo_warehouse.settings)
    group = m.save_workgroup(store, STAFF, rec.Workgroup(name="Test workgroup: drafts in a browser", vendor_ids=["V2"]),
                             by="facilitator")
    held = m.save_meeting(store, STAFF, rec.draft_meeting(group, date(2026, 2, 27)), by="facilitator")
    address = f"meetings?workgroup={group.id}&meeting={held.id}"  # the meeting's address names it by id
    typed = "Bus times changed on Feb 2; two sites start 15 minutes later."

    page = live.open_as(browser, server, passwords, "facilitator", address, height=3200)
    box = page.locator(f".st-key-agenda-{held.id}-operations textarea")
    box.click()
    box.press_sequentially(typed, delay=40)  # typing, never leaving the box: Streamlit has not been sent it
    # Kept within a draft interval and 3 s of slack; asked every 0.2 s rather than after all of it.
    deadline = time.monotonic() + ci_ui.DRAFT_EVERY_SECONDS + 3
    while (kept := drafts.draft(store, "meeting", held.id, by="facilitator")) is None or kept.texts.get("operations") != typed:
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    live.settle(page)  # the run the kept draft set off has finished, had it disturbed the box
    assert kept is not None and kept.texts["operations"] == typed
    assert box.input_value() == typed and box.evaluate("area => area === document.activeElement"), "typing undisturbed"
    assert m.meeting(store, STAFF, held.id).revision == 1
    live.shoot(page, "draft-typed")

    page.reload()  # a new session, which signs in again
    live.settle(page)
    live.sign_in(page, "facilitator", passwords["facilitator"])
    main = page.locator("[data-testid='stMain']")
    assert "You have an unsaved draft from" in main.inner_text()
    assert page.locator(f".st-key-agenda-{held.id}-operations textarea").input_value() == ""
    live.shoot(page, "draft-offered")
    page.get_by_role("button", name="Restore the draft").click()
    live.settle(page)
    assert page.locator(f".st-key-agenda-{held.id}-operations textarea").input_value() == typed
    assert live.errors_on(page) == []
    page.get_by_role("button", name="Save notes").click()
    # On a busy machine the save's run can start after settle has looked: ask the store until it has it.
    deadline = time.monotonic() + 60
    while m.meeting(store, STAFF, held.id).agenda.get("operations") != typed and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    live.settle(page)
    assert m.meeting(store, STAFF, held.id).agenda["operations"] == typed
    assert drafts.draft(store, "meeting", held.id, by="facilitator") is None
    page.close()
