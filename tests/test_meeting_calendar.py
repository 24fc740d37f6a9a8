"""The meeting calendar: a schedule's dates, held and missed meetings, the next draft, and the
.ics files, read back with the icalendar library."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from ciboard import meeting_calendar
from ciboard.ci_records import Commitment, Meeting, Schedule, Workgroup, as_json, from_json
from ciboard.meeting_calendar import CANCELLED, DRAFTED, DUE, HELD, MISSED, UPCOMING

ZONE = "America/Chicago"

FORTNIGHTLY = Schedule("weekly", 1, date(2026, 9, 1), at=time(15, 30), minutes=45, every=2, ends_on=date(2026, 11, 30))


def group(schedule: Schedule | None = FORTNIGHTLY, **fields) -> Workgroup:
    return Workgroup(**{"id": 4, "name": "Attendance leads", "schedule": schedule, "revision": 2,
                        "updated_at": datetime(2026, 8, 20, 9, tzinfo=timezone.utc), **fields})


def meeting(on: date, final: bool = True, **fields) -> Meeting:
    return Meeting(workgroup_id=4, held_on=on, status="final" if final else "draft",
                   snapshot={} if final else None, **fields)


def test_every_second_tuesday_from_its_start_to_its_end():
    assert meeting_calendar.dates(FORTNIGHTLY, date(2027, 1, 1)) == [
        date(2026, 9, 1), date(2026, 9, 15), date(2026, 9, 29), date(2026, 10, 13), date(2026, 10, 27),
        date(2026, 11, 10), date(2026, 11, 24)]
    # A start that is not a Tuesday begins on the next one.
    later = Schedule("weekly", 1, date(2026, 9, 3), every=2, ends_on=date(2026, 10, 1))
    assert meeting_calendar.dates(later, date(2027, 1, 1)) == [date(2026, 9, 8), date(2026, 9, 22)]


def test_monthly_on_the_first_thursday_and_on_the_last_friday():
    first = Schedule("monthly", 3, date(2026, 9, 1), week_of_month=1, ends_on=date(2027, 1, 31))
    assert meeting_calendar.dates(first, date(2030, 1, 1)) == [
        date(2026, 9, 3), date(2026, 10, 1), date(2026, 11, 5), date(2026, 12, 3), date(2027, 1, 7)]
    last = Schedule("monthly", 4, date(2026, 9, 1), week_of_month=-1)
    assert meeting_calendar.dates(last, date(2026, 12, 31)) == [
        date(2026, 9, 25), date(2026, 10, 30), date(2026, 11, 27), date(2026, 12, 25)]


def test_weekly_on_mondays_an_open_ended_schedule_stops_where_asked():
    weekly = Schedule("weekly", 0, date(2026, 11, 30))
    assert meeting_calendar.dates(weekly, date(2026, 12, 21)) == [
        date(2026, 11, 30), date(2026, 12, 7), date(2026, 12, 14), date(2026, 12, 21)]
    assert meeting_calendar.dates(weekly, date(2026, 11, 1)) == []


def test_a_schedule_says_itself_in_words_and_survives_json():
    assert str(FORTNIGHTLY) == "Every second Tuesday, 15:30 for 45 minutes, from 2026-09-01 to 2026-11-30"
    monthly = Schedule("monthly", 3, date(2026, 9, 1), week_of_month=1)
    assert str(monthly) == "Monthly on the first Thursday, 16:00 for 60 minutes, from 2026-09-01"
    assert from_json(Workgroup, as_json(group())) == group()


@pytest.mark.parametrize("wrong", [
    dict(frequency="daily"), dict(weekday=7), dict(every=5), dict(week_of_month=1),
    dict(ends_on=date(2026, 8, 1)), dict(minutes=0),
])
def test_a_schedule_that_cannot_be_met_is_refused(wrong):
    fields = dict(frequency="weekly", weekday=1, starts_on=date(2026, 9, 1)) | wrong
    with pytest.raises(ValueError):
        Schedule(**fields)
    with pytest.raises(ValueError):
        Schedule("monthly", 1, date(2026, 9, 1))  # which Tuesday of the month?


def test_a_scheduled_date_with_no_meeting_on_or_near_it_is_missed_once_its_days_have_passed():
    held = [
        meeting(date(2026, 9, 1)),                 # on the day
        meeting(date(2026, 9, 17)),                # two days late: still the 15th's meeting
        meeting(date(2026, 10, 19)),               # six days after the 13th: no scheduled date's
        meeting(date(2026, 10, 26), final=False),  # drafted for the 27th, not finalised
    ]
    today = date(2026, 11, 12)
    found = meeting_calendar.slots(group(), held, today)
    assert [(s.on, s.status) for s in found] == [
        (date(2026, 9, 1), HELD), (date(2026, 9, 15), HELD), (date(2026, 9, 29), MISSED),
        (date(2026, 10, 13), MISSED), (date(2026, 10, 27), DRAFTED),
        (date(2026, 11, 10), DUE),  # two days ago: it may still be recorded
        (date(2026, 11, 24), UPCOMING),
    ]
    assert found[1].meeting is held[1]
    assert [s.on for s in meeting_calendar.missed(found)] == [date(2026, 9, 29), date(2026, 10, 13)]
    assert [s.on for s in meeting_calendar.upcoming(found, today)] == [date(2026, 11, 24)]
    # Four days on, the 10th has passed unrecorded.
    assert meeting_calendar.slots(group(), held, date(2026, 11, 14))[5].status == MISSED
    # Another group's meeting on the day counts for nothing here.
    other = Meeting(workgroup_id=5, held_on=date(2026, 9, 29), status="final", snapshot={})
    assert meeting_calendar.slots(group(), [*held, other], today)[2].status == MISSED


def test_the_next_meeting_is_offered_as_a_draft_a_week_ahead():
    found = meeting_calendar.slots(group(), [], date(2026, 9, 1))
    assert meeting_calendar.next_to_draft(found, date(2026, 9, 7)) is None  # the 1st is past, the 15th 8 days off
    assert meeting_calendar.next_to_draft(found, date(2026, 9, 8)) == date(2026, 9, 15)
    drafted = meeting_calendar.slots(group(), [meeting(date(2026, 9, 15), final=False)], date(2026, 9, 8))
    assert meeting_calendar.next_to_draft(drafted, date(2026, 9, 8)) is None
    assert meeting_calendar.slots(group(schedule=None), [], date(2026, 9, 8)) == []
    # A date just passed and not recorded comes first: the meeting may have been held.
    assert meeting_calendar.next_to_draft(meeting_calendar.slots(group(), [], date(2026, 9, 17)),
                                          date(2026, 9, 17)) == date(2026, 9, 15)
    assert meeting_calendar.next_to_draft(meeting_calendar.slots(group(), [], date(2026, 9, 19)),
                                          date(2026, 9, 19)) is None  # the 15th is missed, the 29th ten days off


def test_a_drafted_agendas_next_steps_come_back_to_the_last_meeting_and_the_commitments_due():
    previous = meeting(date(2026, 9, 1), agenda={"next_steps": "Call the families."})
    due = Commitment(party="district", owner="Priya", action="Send the absence list", made_on=date(2026, 9, 1),
                     due_on=date(2026, 9, 8))
    later = Commitment(party="district", owner="Marcus", action="Add home language", made_on=date(2026, 9, 1),
                       due_on=date(2026, 12, 1))
    agenda = meeting_calendar.next_agenda(previous, [due, later], date(2026, 9, 15))
    assert agenda["next_steps"] == ("From the meeting of September 1: Call the families.\n"
                                    "Commitments due by this meeting:\n"
                                    "- Priya: Send the absence list (due September 8, overdue)")
    assert agenda["operations"] == agenda["outcomes_data"] == agenda["partnerships"] == ""
    assert meeting_calendar.next_agenda(None, [], date(2026, 9, 15))["next_steps"] == ""


def events(data: bytes) -> list:
    return [c for c in Calendar.from_ical(data).walk("VEVENT")]


def test_the_ics_parses_back_and_holds_exactly_the_scheduled_dates():
    data = meeting_calendar.ics([group(), group(schedule=None, id=5, name="No schedule")], "My calendar",
                                date(2026, 9, 1), time_zone=ZONE)
    found = events(data)
    assert [e.decoded("dtstart") for e in found] == [
        datetime.combine(day, time(15, 30), tzinfo=ZoneInfo(ZONE))
        for day in meeting_calendar.dates(FORTNIGHTLY, date(2027, 1, 1))]
    assert all(e.decoded("dtend") - e.decoded("dtstart") == timedelta(minutes=45) for e in found)
    assert {str(e["summary"]) for e in found} == {"Attendance leads"}
    assert Calendar.from_ical(data)["x-wr-calname"] == "My calendar"


def test_the_ics_uids_are_stable_so_a_reimport_updates_rather_than_duplicates():
    before = events(meeting_calendar.ics([group()], "c", date(2026, 9, 1), time_zone=ZONE))
    after = events(meeting_calendar.ics([group(name="Attendance leads (renamed)", revision=3)], "c", date(2026, 10, 1),
                                        time_zone=ZONE))
    assert [str(e["uid"]) for e in before] == [str(e["uid"]) for e in after]
    assert len({str(e["uid"]) for e in before}) == len(before)
    assert [int(e["sequence"]) for e in after] == [3] * len(after)  # newer than the first import's 2


def test_an_open_ended_schedule_is_written_a_year_ahead():
    weekly = group(schedule=Schedule("weekly", 0, date(2026, 1, 5)))
    found = events(meeting_calendar.ics([weekly], "c", date(2026, 6, 1), time_zone=ZONE))
    assert found[0].decoded("dtstart").date() == date(2026, 1, 5)
    assert found[-1].decoded("dtstart").date() <= date(2026, 6, 1) + meeting_calendar.HORIZON
    assert len(found) == len(meeting_calendar.dates(weekly.schedule, date(2026, 6, 1) + meeting_calendar.HORIZON))


def test_times_are_in_the_districts_time_zone_with_its_definition_not_floating():
    """RFC 5545 3.3.5: a DTSTART with a TZID is that zone's local time, and the file carries the
    VTIMEZONE it names; 15:30 in Chicago is 20:30 UTC in daylight time (Sep 1) and 21:30 in
    standard time (Nov 10)."""
    calendar = Calendar.from_ical(meeting_calendar.ics([group()], "c", date(2026, 9, 1), time_zone=ZONE))
    assert [str(tz["tzid"]) for tz in calendar.walk("VTIMEZONE")] == [ZONE]
    found = calendar.walk("VEVENT")
    assert {e["dtstart"].params["TZID"] for e in found} == {ZONE}
    starts = {e.decoded("dtstart").date(): e.decoded("dtstart").astimezone(timezone.utc) for e in found}
    assert starts[date(2026, 9, 1)] == datetime(2026, 9, 1, 20, 30, tzinfo=timezone.utc)
    assert starts[date(2026, 11, 10)] == datetime(2026, 11, 10, 21, 30, tzinfo=timezone.utc)


def test_a_cancelled_date_is_a_cancelled_event_newer_than_the_one_imported_and_neither_missed_nor_drafted():
    off = date(2026, 9, 29)
    imported = events(meeting_calendar.ics([group()], "c", date(2026, 9, 1), time_zone=ZONE))
    found = events(meeting_calendar.ics([group()], "c", date(2026, 9, 1), time_zone=ZONE, cancelled={4: {off}}))
    assert [str(e["uid"]) for e in found] == [str(e["uid"]) for e in imported], "the same events, updated"
    cancelled = [e for e in found if str(e.get("status", "")) == "CANCELLED"]
    assert [e.decoded("dtstart").date() for e in cancelled] == [off]
    assert int(cancelled[0]["sequence"]) == 3 > int(imported[0]["sequence"]) == 2
    assert {int(e["sequence"]) for e in found if e not in cancelled} == {2}
    # On the calendar: cancelled, not missed once its days pass, and never offered as a draft.
    found = meeting_calendar.slots(group(), [], date(2026, 10, 20), cancelled={off})
    assert {s.on: s.status for s in found}[off] == CANCELLED
    assert off not in [s.on for s in meeting_calendar.missed(found)]
    assert meeting_calendar.next_to_draft(meeting_calendar.slots(group(), [], date(2026, 9, 25), cancelled={off}),
                                          date(2026, 9, 25)) is None


@pytest.fixture
def stored(tmp_path):
    """An app database with a scheduled workgroup and a facilitator's account."""
    import sqlite3

    from ciboard import accounts, meetings
    from ciboard.access import Scope
    from ciboard.appdb import AppDB

    db = AppDB(tmp_path / "app.sqlite")
    saved = meetings.save_workgroup(db, Scope("facilitator"), group(id=None, revision=0, updated_at=None),
                                    by="facilitator")
    who = accounts.add_user(db, "fran", role="facilitator", password="a long enough password 1")
    return db, saved, who, sqlite3


def test_district_staff_cancel_a_scheduled_date_once_saying_why_audited_and_kept(stored):
    from ciboard import accounts
    from ciboard.access import Scope, ScopeError

    db, saved, who, sqlite3 = stored
    staff = Scope("facilitator")
    off = date(2026, 10, 13)
    [coming] = meeting_calendar.next_meetings(db, staff, date(2026, 10, 10))
    assert coming.slot.on == off
    made = meeting_calendar.cancel(db, staff, saved, off, "Parent conferences", by=who)
    [coming] = meeting_calendar.next_meetings(db, staff, date(2026, 10, 10))
    assert coming.slot.on == date(2026, 10, 27), "the Overview's next meeting is the next one not cancelled"
    assert (made.on, made.reason, made.by) == (off, "Parent conferences", "fran")
    assert list(meeting_calendar.cancellations(db, staff, saved)) == [off]
    [logged] = accounts.audit_log(db, action="meeting cancel")
    assert logged["username"] == "fran" and "Parent conferences" in logged["detail"]
    for wrong, message in ((off, "cancelled already"), (date(2026, 10, 14), "no meeting scheduled"),
                           (date(2026, 10, 27), "say why")):
        with pytest.raises(ValueError, match=message):
            meeting_calendar.cancel(db, staff, saved, wrong, "" if "why" in message else "x", by=who)
    for party in (Scope("vendor", "V1"), Scope("evaluator", evaluator="eva")):
        with pytest.raises(ScopeError):
            meeting_calendar.cancel(db, party, saved, date(2026, 10, 27), "x", by=who)
    with db.connect() as con:
        for statement in ("update meeting_cancellations set reason = 'x'", "delete from meeting_cancellations"):
            with pytest.raises(sqlite3.IntegrityError, match="stays as it was recorded"):
                con.execute(statement)
    assert meeting_calendar.cancellations(db, staff, saved)[off].reason == "Parent conferences"


def test_the_districts_time_zone_is_a_known_one():
    from pydantic import ValidationError

    from ciboard.settings import Settings

    assert Settings(time_zone="America/Chicago").time_zone == "America/Chicago"
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        Settings(time_zone="Mars/Olympus")
