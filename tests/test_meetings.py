"""The CI records: saving and reading every kind, history, edit conflicts, finalised minutes,
commitments carried forward, what a vendor sees and may change, and the demo's records."""

import json
import re
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ciboard import ci_records as rec, demo_meetings, meetings as m
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.appdb import AppDB, IntegrityError
from ciboard.demo import VENDORS
from ciboard.ingest import Submission, ingest

from conftest import write_csv

STAFF = Scope("facilitator")
V3 = Scope("vendor", "V3")
OTHERS_OF_V3 = re.compile(r"\b(V[1-24-9])\b|" + "|".join(re.escape(n) for v, n in VENDORS.items() if v != "V3"))
DAY = date(2026, 2, 5)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


@pytest.fixture
def db(tmp_path: Path, app_db_url) -> AppDB:
    return AppDB(app_db_url or tmp_path / "app.sqlite3")


def district_person(name="Priya Raman"):
    return rec.Person(name, "District", "district", role="Academics coordinator")


def add_group(db, name="Coordination", vendors=("V3",), members=None) -> rec.Workgroup:
    people = members if members is not None else [
        district_person(), *[rec.Person(f"Coordinator {v}", f"Vendor {v}", "vendor", v) for v in vendors]
    ]
    return m.save_workgroup(db, STAFF, rec.Workgroup(name=name, members=people, vendor_ids=list(vendors)), by="facilitator")


def add_meeting(db, group, held_on=DAY) -> rec.Meeting:
    return m.save_meeting(db, STAFF, rec.draft_meeting(group, held_on), by="facilitator")


def add_commitment(db, meeting=None, *, party="district", party_id=None, made_on=DAY, due_on=None, **slice_parts):
    return m.save_commitment(db, STAFF, rec.Commitment(
        party=party, party_id=party_id, owner="Owner", action=f"Do something ({party} {party_id or ''})",
        made_on=made_on, due_on=due_on, meeting_id=meeting.id if meeting else None,
        metric_id="tutoring_attendance_rate", slice=rec.Slice(**slice_parts),
    ), by="facilitator", at=at(made_on))


# --- saving and reading -----------------------------------------------------------------


def test_every_kind_of_record_reads_back_as_saved(db):
    group = add_group(db, vendors=("V3", "V5"))
    assert m.workgroup(db, ANALYST, group.id) == group
    meeting = m.save_meeting(db, STAFF, replace(
        rec.draft_meeting(group, DAY),
        agenda={"operations": "Two tutors left.", "outcomes_data": "", "partnerships": "", "next_steps": "Hire."},
    ), by="facilitator")
    assert m.meeting(db, ANALYST, meeting.id) == meeting
    assert meeting.attendees == group.members and meeting.revision == 1 and meeting.updated_by == "facilitator"

    promise = add_commitment(db, meeting, party="vendor", party_id="V3", due_on=DAY + timedelta(days=14),
                             vendor_id="V3", dimension="english_learner", value="true")
    assert m.commitment(db, ANALYST, promise.id) == promise
    assert promise.log == [rec.LogEntry(DAY, "open", "facilitator", "", at(DAY))]

    analysis = m.save_root_cause(db, STAFF, rec.RootCause(
        metric_id="tutoring_attendance_rate", problem="Fewer sessions attended", slice=rec.Slice(vendor_id="V5"),
        whys=["a", "b", "c", "d", "e"], causes=[rec.Cause("Reminders", True, 1), rec.Cause("Weather", False)],
        hmw=["How might we …?"], ideas=[rec.Idea("Texts", "Families"), rec.Idea("Calls", "Families")],
        meeting_id=meeting.id,
    ), by="facilitator")
    assert m.root_cause(db, ANALYST, analysis.id) == analysis

    cycle = m.save_pdsa(db, STAFF, rec.PdsaCycle(
        title="Texts", metric_id="tutoring_attendance_rate", start_on=DAY, slice=rec.Slice(vendor_id="V5"),
        observations=[rec.Observation(DAY, "Sent", "analyst")], act="adapt", ends_on=DAY + timedelta(days=30),
    ), by="analyst")
    assert m.pdsa_cycle(db, ANALYST, cycle.id) == cycle
    assert [c.id for c in m.commitments(db, ANALYST, meeting_id=meeting.id)] == [promise.id]


def test_records_are_checked_before_they_are_saved(db):
    group = add_group(db)
    with pytest.raises(ValueError, match="party"):
        add_commitment(db, party="funder")
    with pytest.raises(ValueError, match="names the vendor or school"):
        add_commitment(db, party="vendor")
    with pytest.raises(ValueError, match="own students"):
        add_commitment(db, party="vendor", party_id="V3", vendor_id="V5")
    with pytest.raises(ValueError, match="agenda part"):
        m.save_meeting(db, STAFF, replace(rec.draft_meeting(group, DAY), agenda={"gossip": "…"}), by="facilitator")
    with pytest.raises(ValueError, match="dimension"):
        rec.Slice(dimension="shoe_size", value="9")
    with pytest.raises(ValueError, match="does not list"):
        add_group(db, vendors=(), members=[rec.Person("Sam", "Keystone", "vendor", "V3")])
    with pytest.raises(ValueError, match="who made it"):
        m.save_workgroup(db, STAFF, rec.Workgroup(name="Nameless saver"), by="")


def test_history_keeps_every_saved_revision_whole(db):
    group = add_group(db)
    first = add_meeting(db, group)
    second = m.save_meeting(db, STAFF, replace(first, agenda={**first.agenda, "operations": "Buses late."}),
                            by="analyst", at=at(DAY, 13))
    third = m.save_meeting(db, STAFF, replace(second, agenda={**second.agenda, "operations": "Buses fixed."}),
                           by="facilitator", at=at(DAY, 14))
    versions = m.history(db, ANALYST, "meeting", first.id)
    assert [(v.revision, v.saved_by) for v in versions] == [(1, "facilitator"), (2, "analyst"), (3, "facilitator")]
    assert [v.record for v in versions] == [first, second, third]
    assert versions[1].saved_at == at(DAY, 13)
    with pytest.raises(m.NotFound):
        m.history(db, ANALYST, "meeting", 999)


def test_a_second_save_from_the_same_revision_is_told_and_shown_both_versions(db):
    group = add_group(db)
    opened = add_meeting(db, group)
    alice = replace(opened, agenda={**opened.agenda, "operations": "Alice's notes"})
    bob = replace(opened, agenda={**opened.agenda, "operations": "Bob's notes"}, held_on=DAY + timedelta(days=1))
    saved = m.save_meeting(db, STAFF, alice, by="alice")
    with pytest.raises(m.EditConflict) as conflict:
        m.save_meeting(db, STAFF, bob, by="bob")
    assert conflict.value.theirs == saved
    assert conflict.value.mine == bob
    assert conflict.value.changed == ["held_on", "agenda"]
    assert "alice" in str(conflict.value) and "nothing was overwritten" in str(conflict.value)
    # Bob's save changed nothing; merging onto the newest revision then lands.
    assert m.meeting(db, ANALYST, opened.id) == saved
    merged = m.save_meeting(db, STAFF, replace(bob, revision=saved.revision), by="bob")
    assert merged.revision == 3 and len(m.history(db, ANALYST, "meeting", opened.id)) == 3


def test_a_finalised_meeting_is_read_only_and_keeps_its_snapshot(db):
    group = add_group(db)
    meeting = add_meeting(db, group)
    promise = add_commitment(db, meeting, due_on=DAY + timedelta(days=7))
    snapshot = {"prefill": {"signals": [{"metric_id": "tutoring_attendance_rate", "value": 0.75}]}, "filters": {}}
    final = m.finalise(db, STAFF, meeting.id, snapshot, warehouse_version="wh-000007", by="facilitator",
                       revision=meeting.revision, at=at(DAY, 17))
    assert final.is_final and final.snapshot == snapshot and final.warehouse_version == "wh-000007"
    assert final.finalised_by == "facilitator" and final.finalised_at == at(DAY, 17)

    with pytest.raises(m.MeetingFinal, match="read-only"):
        m.save_meeting(db, STAFF, replace(final, agenda={"operations": "rewritten"}), by="analyst")
    with pytest.raises(m.MeetingFinal):
        m.finalise(db, STAFF, meeting.id, {}, warehouse_version="wh-000008", by="facilitator")
    with pytest.raises(m.MeetingFinal):
        add_commitment(db, final)
    # Even a writer that skips this module cannot change or delete the minutes.
    with db.connect() as con:
        with pytest.raises(IntegrityError, match="read-only"):
            con.execute("update meetings set snapshot = '{}' where meeting_id = ?", [meeting.id])
        with pytest.raises(IntegrityError, match="kept"):
            con.execute("delete from meetings where meeting_id = ?", [meeting.id])
    assert m.meeting(db, ANALYST, meeting.id).snapshot == snapshot
    # What was committed there still moves on.
    done = m.update_status(db, STAFF, promise.id, "done", by="analyst", revision=promise.revision,
                           on=DAY + timedelta(days=3), at=at(DAY + timedelta(days=3)))
    assert done.status == "done"


def test_finalising_names_the_revision_seen_and_refuses_what_is_not_json(db):
    meeting = add_meeting(db, add_group(db))
    edited = m.save_meeting(db, STAFF, replace(meeting, agenda={"operations": "late edit"}), by="analyst")
    with pytest.raises(m.EditConflict):
        m.finalise(db, STAFF, meeting.id, {}, warehouse_version="v", by="facilitator", revision=meeting.revision)
    with pytest.raises(ValueError):
        m.finalise(db, STAFF, meeting.id, {"value": float("nan")}, warehouse_version="v", by="facilitator")
    with pytest.raises(ValueError, match="finalise"):
        m.save_meeting(db, STAFF, replace(edited, status="final"), by="analyst")
    assert not m.meeting(db, ANALYST, meeting.id).is_final


# --- commitments over time ------------------------------------------------------------


def test_open_commitments_carry_forward_until_closed(db):
    group = add_group(db)
    january, february, march = (add_meeting(db, group, d) for d in (date(2026, 1, 8), date(2026, 2, 5), date(2026, 3, 5)))
    closed_early = add_commitment(db, january, made_on=january.held_on, due_on=date(2026, 1, 20))
    open_long = add_commitment(db, january, made_on=january.held_on, due_on=date(2026, 4, 1))
    dropped_later = add_commitment(db, january, made_on=january.held_on, due_on=date(2026, 1, 30))
    made_in_february = add_commitment(db, february, made_on=february.held_on, due_on=date(2026, 2, 26))
    m.update_status(db, STAFF, closed_early.id, "done", by="analyst", revision=1, on=date(2026, 1, 19),
                    at=at(date(2026, 1, 19)))
    m.update_status(db, STAFF, dropped_later.id, "dropped", by="analyst", revision=1, note="superseded",
                    on=date(2026, 2, 20), at=at(date(2026, 2, 20)))

    def carried(meeting):
        return [o.commitment.id for o in m.carried_forward(db, ANALYST, meeting.id)]

    assert carried(january) == []
    # Status is read from the dated log: on 5 February the dropped one was still open (and overdue).
    assert carried(february) == [dropped_later.id, open_long.id]
    assert carried(march) == [made_in_february.id, open_long.id]
    assert [c.id for c in m.commitments(db, ANALYST, meeting_id=february.id)] == [made_in_february.id]


@pytest.mark.parametrize(("due", "refused"), [
    (DAY - timedelta(days=1), "is before the commitment was made"),
    (DAY.replace(year=DAY.year + 36), "more than two years after"),
])
def test_a_due_date_before_the_commitment_or_years_out_saves_nothing(db, due, refused):
    meeting = add_meeting(db, add_group(db))
    with pytest.raises(ValueError, match=refused):
        add_commitment(db, meeting, due_on=due)
    assert m.commitments(db, ANALYST) == []
    kept = add_commitment(db, meeting, due_on=DAY)  # due the day it is made: fine
    with pytest.raises(ValueError, match=refused):
        m.save_commitment(db, STAFF, replace(kept, due_on=due), by="analyst")
    assert m.commitment(db, ANALYST, kept.id).due_on == DAY


def test_overdue_commitments_stand_out(db):
    meeting = add_meeting(db, add_group(db))
    late = add_commitment(db, meeting, due_on=DAY + timedelta(days=5))
    on_time = add_commitment(db, meeting, due_on=DAY + timedelta(days=30))
    no_date = add_commitment(db, meeting)
    finished = add_commitment(db, meeting, due_on=DAY + timedelta(days=1))
    m.update_status(db, STAFF, finished.id, "done", by="analyst", revision=1, on=DAY + timedelta(days=1),
                    at=at(DAY + timedelta(days=1)))
    found = m.open_commitments(db, ANALYST, DAY + timedelta(days=12))
    assert [(o.commitment.id, o.overdue, o.days_overdue) for o in found] == [
        (late.id, True, 7), (on_time.id, False, 0), (no_date.id, False, 0),
    ]
    assert m.open_commitments(db, ANALYST, DAY - timedelta(days=1)) == []


def test_a_status_log_is_dated_appended_and_never_rewritten(db):
    promise = add_commitment(db, due_on=DAY + timedelta(days=10))
    noted = m.update_status(db, STAFF, promise.id, "in_progress", by="analyst", revision=1,
                            note="Called 12 families", on=DAY + timedelta(days=2), at=at(DAY + timedelta(days=3)))
    assert noted.log[-1] == rec.LogEntry(DAY + timedelta(days=2), "in_progress", "analyst", "Called 12 families",
                                         at(DAY + timedelta(days=3)))
    # A save cannot rewrite the log; a status change through a save is logged.
    edited = m.save_commitment(db, STAFF, replace(noted, owner="Someone else", log=[], status="done"),
                               by="facilitator", at=at(DAY + timedelta(days=4)))
    assert [e.status for e in edited.log] == ["open", "in_progress", "done"] and edited.status == "done"
    with pytest.raises(m.EditConflict):
        m.update_status(db, STAFF, promise.id, "open", by="analyst", revision=noted.revision)
    with pytest.raises(ValueError, match="before"):
        m.update_status(db, STAFF, promise.id, "open", by="analyst", revision=edited.revision, on=DAY - timedelta(days=1))
    with pytest.raises(ValueError, match="after today"):
        m.update_status(db, STAFF, promise.id, "open", by="analyst", revision=edited.revision,
                        on=date.today() + timedelta(days=2))


# --- what a vendor sees and may do --------------------------------------------------


def vendor_world(db):
    """Workgroups and commitments of, and about, V3 and V5."""
    mine = add_group(db, "Keystone coordination", ("V3",))
    both = add_group(db, "Joint coordination", ("V3", "V5"))
    theirs = add_group(db, "Cardinal school review", ("V5",))
    district = add_group(db, "District data review", (), members=[district_person()])
    meetings_ = {name: add_meeting(db, group) for name, group in
                 (("mine", mine), ("both", both), ("theirs", theirs), ("district", district))}
    for meeting in meetings_.values():
        m.finalise(db, STAFF, meeting.id, {"prefill": {"vendor_ids": ["V3", "V5"]}}, warehouse_version="v", by="facilitator")
    commitments = {
        "own": add_commitment(db, party="vendor", party_id="V3", vendor_id="V3"),
        "own_whole": add_commitment(db, party="vendor", party_id="V3"),
        "district_about_me": add_commitment(db, party="district", vendor_id="V3"),
        "school_about_me": add_commitment(db, party="school", party_id="E08", vendor_id="V3", school_id="E08"),
        "other_vendor": add_commitment(db, party="vendor", party_id="V5", vendor_id="V5"),
        "district_about_other": add_commitment(db, party="district", vendor_id="V5"),
        "district_wide": add_commitment(db, party="district"),
    }
    return {"mine": mine, "both": both, "theirs": theirs, "district": district}, meetings_, commitments


def test_a_vendor_sees_its_workgroups_meetings_and_the_commitments_that_name_it(db):
    groups, meetings_, commitments = vendor_world(db)
    assert [g.name for g in m.workgroups(db, V3)] == ["Joint coordination", "Keystone coordination"]
    joint = m.workgroup(db, V3, groups["both"].id)
    assert joint.vendor_ids == ["V3"] and [p.party_id for p in joint.members] == [None, "V3"]
    assert {x.id for x in m.meetings(db, V3)} == {meetings_["mine"].id, meetings_["both"].id}
    # A meeting of several vendors holds all their numbers: its snapshot is for district staff.
    assert m.meeting(db, V3, meetings_["mine"].id).snapshot is not None
    assert m.meeting(db, V3, meetings_["both"].id).snapshot is None
    assert [p.party_id for p in m.meeting(db, V3, meetings_["both"].id).attendees] == [None, "V3"]
    seen = {c.id for c in m.commitments(db, V3)}
    assert seen == {commitments[k].id for k in ("own", "own_whole", "district_about_me", "school_about_me")}
    assert len(m.commitments(db, ANALYST)) == len(commitments)

    refusals = []
    for call in (
        lambda: m.workgroup(db, V3, groups["theirs"].id),
        lambda: m.workgroup(db, V3, groups["district"].id),
        lambda: m.meeting(db, V3, meetings_["theirs"].id),
        lambda: m.commitment(db, V3, commitments["other_vendor"].id),
        lambda: m.commitment(db, V3, commitments["district_wide"].id),
        lambda: m.history(db, V3, "commitment", commitments["district_about_other"].id),
        lambda: m.history(db, V3, "meeting", meetings_["theirs"].id),
    ):
        with pytest.raises(ScopeError) as refused:
            call()
        refusals.append(str(refused.value))
    assert all(not OTHERS_OF_V3.search(message) for message in refusals), refusals


def test_a_vendor_updates_the_status_of_its_own_commitments_only(db):
    groups, meetings_, commitments = vendor_world(db)
    own = commitments["own"]
    updated = m.update_status(db, V3, own.id, "in_progress", by="vendor-v3", revision=own.revision, note="Started")
    assert updated.status == "in_progress" and updated.log[-1].by == "vendor-v3"
    closed = m.save_commitment(db, V3, replace(updated, status="done"), by="vendor-v3")
    assert closed.status == "done"

    refusals = []
    for call in (
        lambda: m.update_status(db, V3, commitments["district_about_me"].id, "done", by="vendor-v3", revision=1),
        lambda: m.update_status(db, V3, commitments["other_vendor"].id, "done", by="vendor-v3", revision=1),
        lambda: m.save_commitment(db, V3, replace(closed, action="Something easier"), by="vendor-v3"),
        lambda: m.save_commitment(db, V3, replace(closed, id=None, revision=0), by="vendor-v3"),
        lambda: m.save_meeting(db, V3, rec.draft_meeting(groups["mine"], DAY), by="vendor-v3"),
        lambda: m.save_workgroup(db, V3, replace(groups["mine"], name="Ours"), by="vendor-v3"),
        lambda: m.finalise(db, V3, meetings_["mine"].id, {}, warehouse_version="v", by="vendor-v3"),
        lambda: m.add_observation(db, V3, 1, "note", by="vendor-v3"),
    ):
        with pytest.raises(ScopeError) as refused:
            call()
        refusals.append(str(refused.value))
    assert all(not OTHERS_OF_V3.search(message) for message in refusals), refusals
    assert m.commitment(db, ANALYST, commitments["other_vendor"].id).status == "open"


def test_a_vendor_sees_analyses_cycles_and_history_of_its_own_students_only(db):
    for vendor in ("V3", "V5", None):
        m.save_root_cause(db, STAFF, rec.RootCause(metric_id="dosage_met", problem=f"about {vendor}",
                                                   slice=rec.Slice(vendor_id=vendor)), by="analyst")
        m.save_pdsa(db, STAFF, rec.PdsaCycle(title=f"about {vendor}", metric_id="dosage_met", start_on=DAY,
                                             slice=rec.Slice(vendor_id=vendor)), by="analyst")
    assert [r.problem for r in m.root_causes(db, V3)] == ["about V3"]
    assert [p.title for p in m.pdsa_cycles(db, V3)] == ["about V3"]
    # A commitment moved from V5 to V3: V3 sees its own revisions, not V5's.
    moved = add_commitment(db, party="vendor", party_id="V5", vendor_id="V5")
    moved = m.save_commitment(db, STAFF, replace(moved, party_id="V3", slice=rec.Slice(vendor_id="V3")), by="analyst")
    assert [v.revision for v in m.history(db, V3, "commitment", moved.id)] == [2]
    assert [v.revision for v in m.history(db, ANALYST, "commitment", moved.id)] == [1, 2]


# --- analyses and cycles ----------------------------------------------------------------


def test_five_whys_an_hmw_and_a_chosen_idea_that_becomes_a_pdsa_cycle(db):
    analysis = m.save_root_cause(db, STAFF, rec.RootCause(
        metric_id="tutoring_attendance_rate", problem="ELs attend less", slice=rec.Slice(vendor_id="V5"),
        whys=["one", "two", "three", "four"],
        causes=[rec.Cause("Weather", False), rec.Cause("Roster", True, 2), rec.Cause("Reminders", True, 1), rec.Cause("Maybe", True)],
        ideas=[rec.Idea("Texts", "Families"), rec.Idea("Roster field", "Data"), rec.Idea("Calls", "Families")],
    ), by="facilitator")
    assert not analysis.complete
    analysis = m.save_root_cause(db, STAFF, replace(analysis, whys=[*analysis.whys, "five"],
                                                    hmw=["How might we reach every family?"]), by="facilitator")
    assert analysis.complete
    assert [c.text for c in analysis.within_reach] == ["Reminders", "Roster", "Maybe"]
    assert {theme: [i.text for i in ideas] for theme, ideas in analysis.themes.items()} == {
        "Families": ["Texts", "Calls"], "Data": ["Roster field"],
    }
    with pytest.raises(m.EditConflict):
        m.choose_idea(db, STAFF, analysis.id, 0, rec.draft_pdsa(analysis, 0, DAY), by="facilitator", revision=1)
    assert m.pdsa_cycles(db, ANALYST) == []  # the failed choice created nothing

    chosen, cycle = m.choose_idea(db, STAFF, analysis.id, 0, rec.draft_pdsa(analysis, 0, DAY), by="facilitator",
                                  revision=analysis.revision)
    assert (chosen.chosen_idea, chosen.pdsa_id, chosen.commitment_id) == (0, cycle.id, None)
    assert (cycle.title, cycle.metric_id, cycle.slice, cycle.stage) == ("Texts", analysis.metric_id, analysis.slice, "plan")
    assert m.root_cause_of(db, ANALYST, pdsa_id=cycle.id) == chosen

    promise = rec.draft_commitment(chosen, 1, party="district", party_id=None, owner="Data team", made_on=DAY)
    chosen, made = m.choose_idea(db, STAFF, analysis.id, 1, promise, by="facilitator", revision=chosen.revision)
    assert (chosen.chosen_idea, chosen.commitment_id, made.action) == (1, made.id, "Roster field")
    assert made.log[0].status == "open"


def test_a_pdsa_cycle_moves_from_plan_to_act(db):
    cycle = m.save_pdsa(db, STAFF, rec.PdsaCycle(title="Texts", metric_id="dosage_met", start_on=DAY), by="analyst")
    assert cycle.stage == "plan"
    cycle = m.add_observation(db, STAFF, cycle.id, "Sent to 118 families", by="analyst", on=DAY + timedelta(days=7))
    assert cycle.stage == "do" and cycle.observations[0].on == DAY + timedelta(days=7)
    cycle = m.save_pdsa(db, STAFF, replace(cycle, study="Rose 3 points; predicted 5."), by="analyst")
    assert cycle.stage == "study"
    cycle = m.save_pdsa(db, STAFF, replace(cycle, act="adapt", act_note="Add calls."), by="analyst")
    assert cycle.stage == "act"
    with pytest.raises(ValueError, match="adopt"):
        m.save_pdsa(db, STAFF, replace(cycle, act="shrug"), by="analyst")
    with pytest.raises(ValueError, match="before it starts"):
        m.save_pdsa(db, STAFF, replace(cycle, ends_on=DAY - timedelta(days=1)), by="analyst")


def test_pdsa_start_dates_mark_the_charts_that_hold_their_students(db):
    def cycle(title, **parts):
        return m.save_pdsa(db, STAFF, rec.PdsaCycle(title=title, metric_id="tutoring_attendance_rate", start_on=DAY,
                                                    slice=rec.Slice(**parts)), by="analyst")

    cycle("V5 English learners", vendor_id="V5", dimension="english_learner", value="true")
    cycle("V3", vendor_id="V3")
    cycle("District-wide")
    m.save_pdsa(db, STAFF, rec.PdsaCycle(title="Other metric", metric_id="dosage_met", start_on=DAY), by="analyst")

    def marked(chart, metric="tutoring_attendance_rate", scope=ANALYST):
        return sorted(m.pdsa_marks(db, scope, metric, chart)["title"].str.removeprefix("PDSA: "))

    assert marked(None) == ["District-wide", "V3", "V5 English learners"]
    assert marked({"vendor_id": ["V5"]}) == ["District-wide", "V5 English learners"]
    assert marked(rec.Slice(vendor_id="V5", dimension="english_learner", value="true")) == ["District-wide", "V5 English learners"]
    assert marked({"english_learner": "true", "start": "2025-08-01"}) == ["District-wide", "V3", "V5 English learners"]
    assert marked({"english_learner": ["false"]}) == ["District-wide", "V3"]
    assert marked({"vendor_id": ["V4"]}) == ["District-wide"]
    assert marked({"vendor_id": ["V3", "V4"]}) == ["District-wide", "V3"]
    assert marked(None, metric=None) == ["District-wide", "Other metric", "V3", "V5 English learners"]
    assert marked(None, scope=V3) == ["V3"]
    marks = m.pdsa_marks(db, ANALYST, "tutoring_attendance_rate", {"vendor_id": "V3"})
    assert list(marks.columns) == m.MARK_COLUMNS and set(marks["kind"]) == {"PDSA"}
    assert set(marks["starts_on"]) == {DAY}


# --- nothing lost -------------------------------------------------------------------------


def test_records_survive_an_ingest_while_serving_and_a_restart(loaded, tmp_path):
    db = AppDB.of(loaded.settings)
    meeting = add_meeting(db, add_group(db))
    promise = add_commitment(db, meeting, due_on=DAY + timedelta(days=9))
    before = (m.meetings(db, ANALYST), m.commitments(db, ANALYST), m.history(db, ANALYST, "meeting", meeting.id))
    version = loaded.version()
    week = write_csv(tmp_path / "sessions.csv", "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                     "ST0000001,2025-09-29,V1-T001,3,40,40")
    ingest(loaded, [Submission(week, "sessions", "V1")])
    assert loaded.version() != version
    m.update_status(db, STAFF, promise.id, "in_progress", by="analyst", revision=promise.revision)
    reopened = AppDB(loaded.settings.app_db_path)
    assert m.meetings(reopened, ANALYST) == before[0]
    assert m.history(reopened, ANALYST, "meeting", meeting.id) == before[2]
    assert m.commitment(reopened, ANALYST, promise.id).status == "in_progress"


WRITER = """
import sys
from ciboard import meetings as m
from ciboard.access import Scope
from ciboard.appdb import AppDB
db = AppDB(sys.argv[1])
for i in range(int(sys.argv[3])):
    m.add_observation(db, Scope("facilitator"), int(sys.argv[2]), f"process {sys.argv[4]} note {i}", by="p")
"""


def test_concurrent_writers_in_threads_and_processes_lose_nothing(db):
    promise = add_commitment(db, due_on=DAY)
    cycle = m.save_pdsa(db, STAFF, rec.PdsaCycle(title="Texts", metric_id="dosage_met", start_on=DAY), by="analyst")
    notes_per_writer, writers = 6, 4
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, db.url or str(db.path), str(cycle.id), str(notes_per_writer), str(p)],
                         cwd=Path(__file__).resolve().parent.parent)
        for p in range(2)
    ]
    errors, conflicts = [], []

    def log_statuses(writer):
        try:
            for i in range(notes_per_writer):
                while True:  # what a page does after a conflict: reload, reapply, save
                    current = m.commitment(db, ANALYST, promise.id)
                    try:
                        m.update_status(db, STAFF, promise.id, "in_progress", by=f"t{writer}",
                                        revision=current.revision, note=f"thread {writer} note {i}")
                        break
                    except m.EditConflict:
                        conflicts.append(writer)
                m.add_observation(db, STAFF, cycle.id, f"thread {writer} note {i}", by=f"t{writer}")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=log_statuses, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    assert errors == []

    final = m.commitment(db, ANALYST, promise.id)
    expected = {f"thread {w} note {i}" for w in range(writers) for i in range(notes_per_writer)}
    assert {e.note for e in final.log[1:]} == expected and len(final.log) == 1 + len(expected)
    notes = [o.text for o in m.pdsa_cycle(db, ANALYST, cycle.id).observations]
    assert set(notes) == expected | {f"process {p} note {i}" for p in range(2) for i in range(notes_per_writer)}
    assert len(notes) == len(set(notes))
    # Every save is in the history, one revision after another.
    assert [v.revision for v in m.history(db, ANALYST, "commitment", promise.id)] == list(range(1, final.revision + 1))
    assert final.revision == 1 + len(expected)


# --- the demo -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(demo_warehouse, tmp_path_factory):
    db = AppDB(tmp_path_factory.mktemp("seeded") / "app.sqlite3")
    assert demo_meetings.seed(db, demo_warehouse)
    return db


def test_the_demo_seeds_the_three_workgroups_of_the_ci_structure(seeded):
    groups = m.workgroups(seeded, ANALYST)
    assert [g.name for g in groups] == [
        "District data review",
        "District–vendor coordination: Keystone Math Corps",
        "District–vendor–school review: Cardinal Tutors schools",
    ]
    assert [g.vendor_ids for g in groups] == [[], ["V3"], ["V5"]]
    assert all(g.purpose and g.cadence and g.format and g.decisions and g.members for g in groups)
    assert {p.party for p in groups[2].members} == {"district", "vendor", "school"}


def test_the_demo_has_final_and_draft_meetings_with_commitments_carried_forward(seeded, demo_warehouse):
    found = m.meetings(seeded, ANALYST)
    assert [(x.held_on.isoformat(), x.status) for x in found] == [
        ("2026-02-05", "final"), ("2026-02-12", "final"), ("2026-03-03", "draft"), ("2026-03-05", "draft"),
    ]
    for final in found[:2]:
        assert final.warehouse_version == demo_warehouse.version()
        assert set(final.snapshot) == {"prefill", "filters"} and final.snapshot["prefill"]["signals"]
        assert all(final.agenda[key] for key in rec.AGENDA_KEYS)
    promises = m.commitments(seeded, ANALYST)
    assert {(c.party, c.party_id) for c in promises} >= {("vendor", "V3"), ("vendor", "V5"), ("district", None), ("school", "E08")}
    assert all(c.metric_id == "tutoring_attendance_rate" and c.slice.vendor_id in ("V3", "V5") for c in promises)

    coordination = found[3]
    carried = m.carried_forward(seeded, ANALYST, coordination.id)
    assert [(o.commitment.party, o.overdue) for o in carried] == [("vendor", True), ("school", False)]
    assert carried[0].status == "in_progress" and carried[0].commitment.log[-1].by == "vendor-v3"
    assert [c.party for c in m.commitments(seeded, Scope("vendor", "V3"))] == ["vendor", "district", "school"]


def test_the_demo_analysis_becomes_a_pdsa_cycle_and_v1s_change_is_adopted(seeded):
    [analysis] = m.root_causes(seeded, ANALYST)
    assert analysis.complete and analysis.hmw and analysis.within_reach and len(analysis.themes) >= 2
    assert analysis.slice == rec.Slice(vendor_id="V5", dimension="english_learner", value="true")
    cycles = {c.slice.vendor_id: c for c in m.pdsa_cycles(seeded, ANALYST)}
    assert analysis.pdsa_id == cycles["V5"].id and cycles["V5"].stage == "do"
    assert date(2025, 8, 1) < cycles["V5"].start_on < date(2026, 6, 1)
    assert cycles["V1"].act == "adopt" and "The prediction held" in cycles["V1"].study
    assert [c.title for c in m.pdsa_cycles(seeded, Scope("vendor", "V5"))] == ["Reminders in the home language"]


def test_the_demo_seeds_once_and_the_same_way_every_time(seeded, demo_warehouse, tmp_path):
    def everything(db):
        records = [rec.as_json(r) for r in (*m.workgroups(db, ANALYST), *m.meetings(db, ANALYST),
                                            *m.commitments(db, ANALYST), *m.root_causes(db, ANALYST),
                                            *m.pdsa_cycles(db, ANALYST))]
        with db.connect() as con:
            saved = [tuple(row) for row in con.execute("select * from history order by entity, entity_id, revision")]
        return json.dumps(records, sort_keys=True), saved

    seeded_once = everything(seeded)
    assert not demo_meetings.seed(seeded, demo_warehouse)
    assert everything(seeded) == seeded_once
    again = AppDB(tmp_path / "again.sqlite3")
    assert demo_meetings.seed(again, demo_warehouse)
    assert everything(again) == seeded_once
