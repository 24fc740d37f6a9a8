"""The meeting calendar: the dates a workgroup's schedule sets, which of them were held and
which missed, the next meeting to draft, and the same dates as iCalendar for people's own
calendars. Recurrence is dateutil's rrule and the file format the icalendar library's, so
neither a month's fifth Tuesday nor a line fold is worked out here.

Plain values in, plain values out, except `next_meetings`, `draft_next`, `cancel` and
`cancellations`, which read and write through the app database in the caller's scope: a vendor
reads only the workgroups it takes part in and the commitments it may see.

District staff cancel one occurrence of a schedule, saying why (sql/app/014_meeting_cancellations.sql
keeps it, audited, never changed or removed): the date then reads cancelled, not missed, no draft
is offered for it, and the .ics carries it as a cancelled event, so an imported calendar drops it.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil import rrule
from icalendar import Calendar, Event

from ciboard import accounts, meetings
from ciboard.access import Scope, ScopeError, require_writer
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.ci_records import AGENDA_KEYS, Commitment, Meeting, Schedule, Workgroup, draft_meeting

# A meeting held within three days of a scheduled date is that date's meeting: groups move a
# meeting for a holiday or an illness without changing their schedule.
NEAR = timedelta(days=3)
# The next meeting is offered as a draft from a week before it, time to fill its agenda.
DRAFT_AHEAD = timedelta(days=7)
# How far ahead an open-ended schedule is written into a calendar file.
HORIZON = timedelta(days=366)
HELD, DRAFTED, MISSED, DUE, UPCOMING, CANCELLED = "held", "drafted", "missed", "due", "upcoming", "cancelled"
STATUS_LABELS = {
    HELD: "Held", DRAFTED: "Drafted, not finalised", MISSED: "Missed", DUE: "Due: not recorded yet", UPCOMING: "Upcoming",
    CANCELLED: "Cancelled",
}


@dataclass(frozen=True)
class Slot:
    """One scheduled date and what became of it: held (final minutes on or near it), drafted (a
    meeting near it not finalised yet), missed (no meeting within NEAR of it, and NEAR has
    passed), due (no meeting yet, but it may still be recorded) or upcoming."""

    on: date
    status: str
    meeting: Meeting | None = None


def dates(schedule: Schedule, through: date) -> list[date]:
    """Every date the schedule sets from its start to its end, or to `through` if that comes first."""
    last = min(schedule.ends_on or through, through)
    day = rrule.weekday(schedule.weekday)
    first = schedule.starts_on
    if schedule.frequency == "weekly":
        # rrule counts fortnights from the start's own week, so a fortnightly Tuesday from a
        # Thursday would skip the next Tuesday: people mean the first Tuesday on or after it.
        first += timedelta(days=(schedule.weekday - first.weekday()) % 7)
    rule = rrule.rrule(
        rrule.WEEKLY if schedule.frequency == "weekly" else rrule.MONTHLY,
        interval=schedule.every,
        byweekday=day if schedule.week_of_month is None else day(schedule.week_of_month),
        dtstart=datetime.combine(first, datetime.min.time()),
        until=datetime.combine(last, datetime.min.time()),
    )
    return [moment.date() for moment in rule]


def slots(
    group: Workgroup, held: list[Meeting], today: date, ahead: timedelta = HORIZON, cancelled: Collection[date] = ()
) -> list[Slot]:
    """The workgroup's scheduled dates up to `ahead` past today, each with its meeting if one
    was held on or near it (the nearest; a meeting counts for one date only). A date in
    `cancelled` with no meeting held near it is cancelled, neither missed nor to draft."""
    if group.schedule is None:
        return []
    free = sorted((m for m in held if m.workgroup_id == group.id), key=lambda m: m.held_on)
    found = []
    for day in dates(group.schedule, today + ahead):
        near = [m for m in free if abs(m.held_on - day) <= NEAR]
        meeting = min(near, key=lambda m: (abs(m.held_on - day), m.held_on), default=None)
        if meeting is not None:
            free.remove(meeting)
            found.append(Slot(day, HELD if meeting.is_final else DRAFTED, meeting))
        elif day in cancelled:
            found.append(Slot(day, CANCELLED))
        elif day + NEAR < today:
            found.append(Slot(day, MISSED))
        else:
            found.append(Slot(day, DUE if day < today else UPCOMING))
    return found


def upcoming(found: list[Slot], today: date, count: int = 3) -> list[Slot]:
    """The next `count` scheduled dates from today on, whether drafted yet or not."""
    return [s for s in found if s.on >= today][:count]


def missed(found: list[Slot]) -> list[Slot]:
    return [s for s in found if s.status == MISSED]


def next_to_draft(found: list[Slot], today: date) -> date | None:
    """The scheduled date with no meeting yet to draft now: one just passed and not recorded
    (due), else the next one once it is within DRAFT_AHEAD."""
    waiting = [s for s in found if s.status == DUE or (s.status == UPCOMING and today <= s.on <= today + DRAFT_AHEAD)]
    return waiting[0].on if waiting else None


def next_agenda(previous: Meeting | None, carried: list[Commitment], on: date) -> dict[str, str]:
    """A drafted meeting's agenda, prefilled with what it must come back to: the last meeting's
    next steps, and the open commitments due by its date (overdue ones said so)."""
    steps = []
    if previous is not None and previous.agenda.get("next_steps", "").strip():
        steps.append(f"From the meeting of {previous.held_on:%B %-d}: {previous.agenda['next_steps'].strip()}")
    due = [c for c in carried if c.due_on is not None and c.due_on <= on]
    if due:
        steps.append("Commitments due by this meeting:")
        steps += [f"- {c.owner}: {c.action} (due {c.due_on:%B %-d}{', overdue' if c.due_on < on else ''})" for c in due]
    agenda = {key: "" for key in AGENDA_KEYS}
    agenda["next_steps"] = "\n".join(steps)
    return agenda


@dataclass(frozen=True)
class NextMeeting:
    group: Workgroup
    slot: Slot
    due: list[meetings.OpenCommitment]  # open commitments due before it, overdue ones first

    @property
    def overdue(self) -> list[meetings.OpenCommitment]:
        return [o for o in self.due if o.overdue]


def next_meetings(db: AppDB, scope: Scope, today: date) -> list[NextMeeting]:
    """Each scheduled workgroup's next meeting the scope may see, soonest first, with the open
    commitments (of the workgroup, as the meeting page carries them forward) due before it."""
    found = []
    held = meetings.meetings(db, scope)
    for group in meetings.workgroups(db, scope):
        held_or_coming = [s for s in slots(group, held, today, cancelled=cancellations(db, scope, group))
                          if s.status != CANCELLED]
        coming = upcoming(held_or_coming, today, count=1)
        if not coming:
            continue
        carried = meetings.open_commitments(db, scope, today, workgroup_id=group.id)
        due = [o for o in carried if o.commitment.due_on is not None and o.commitment.due_on < coming[0].on]
        found.append(NextMeeting(group, coming[0], due))
    return sorted(found, key=lambda n: (n.slot.on, n.group.name))


def draft_next(db: AppDB, scope: Scope, group: Workgroup, on: date, *, by: str) -> Meeting:
    """Saves a draft of the workgroup's meeting on `on`, its agenda prefilled (`next_agenda`)."""
    previous = meetings.previous_meeting(db, scope, group.id, on)
    carried = [o.commitment for o in meetings.open_commitments(db, scope, on, workgroup_id=group.id)]
    drafted = replace(draft_meeting(group, on), agenda=next_agenda(previous, carried, on))
    return meetings.save_meeting(db, scope, drafted, by=by)


def ics(
    groups: list[Workgroup], name: str, today: date, *, time_zone: str,
    cancelled: Mapping[int, Collection[date]] | None = None,
) -> bytes:
    """An iCalendar file of every scheduled meeting of these workgroups, open-ended schedules
    through HORIZON. Each event's UID is its workgroup and date, and its SEQUENCE the
    workgroup's revision, so importing a newer file updates the events rather than adding
    them again; a cancelled date (`cancelled`, by workgroup id) is its event with STATUS
    CANCELLED and the next SEQUENCE, which removes it from a calendar that imported it. Times
    are in the district's `time_zone`, its definition in the file, so a member elsewhere sees
    the meeting at their own hour."""
    zone = ZoneInfo(time_zone)
    cancelled = cancelled or {}
    calendar = Calendar()
    calendar.add("prodid", "-//CI Board//Meeting calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    for group in groups:
        if group.schedule is None:
            continue
        schedule = group.schedule
        stamp = group.updated_at or datetime.now(timezone.utc)
        off = cancelled.get(group.id, ())
        for day in dates(schedule, today + HORIZON):
            event = Event()
            event.add("uid", uid(group, day))
            event.add("sequence", group.revision + (day in off))
            event.add("dtstamp", stamp.astimezone(timezone.utc))
            if day in off:
                event.add("status", "CANCELLED")
            start = datetime.combine(day, schedule.at, tzinfo=zone)
            event.add("dtstart", start)
            event.add("dtend", start + timedelta(minutes=schedule.minutes))
            event.add("summary", group.name)
            event.add("description", "\n\n".join(part for part in (group.purpose, group.cadence) if part))
            if group.format:
                event.add("location", group.format)
            calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def uid(group: Workgroup, day: date) -> str:
    return f"workgroup-{group.id}-{day:%Y%m%d}@ciboard"


@dataclass(frozen=True)
class Cancellation:
    workgroup_id: int
    on: date
    reason: str
    by: str
    at: datetime


def cancel(db: AppDB, scope: Scope, group: Workgroup, on: date, reason: str, *, by: Account,
           at: datetime | None = None) -> Cancellation:
    """Cancels the workgroup's scheduled meeting on `on`, saying why: district staff only, a
    date its schedule sets that no meeting was recorded on, once."""
    require_writer(scope, "cancelled meetings")
    if scope.role in ("vendor", "school"):
        raise ScopeError("district staff cancel a scheduled meeting")
    group = meetings.workgroup(db, scope, group.id)  # the scope may see it, and its schedule as stored
    if group.schedule is None or on not in dates(group.schedule, on):
        raise ValueError(f"{group.name} has no meeting scheduled on {on:%a %b %-d, %Y}: only a scheduled date is cancelled")
    if not reason.strip():
        raise ValueError("say why the meeting is cancelled: its members read it")
    held = [m for m in meetings.meetings(db, scope, group.id) if m.held_on == on]
    if held:
        raise ValueError(f"a meeting of {group.name} is recorded on {on:%b %-d, %Y}: it is not cancelled")
    if on in cancellations(db, scope, group):
        raise ValueError(f"the meeting of {on:%b %-d, %Y} is cancelled already")
    at = at or datetime.now(timezone.utc).replace(microsecond=0)
    found = Cancellation(group.id, on, reason.strip(), by.username, at)
    with db.transaction() as con:
        con.execute(
            "insert into meeting_cancellations (workgroup_id, on_date, reason, cancelled_by, cancelled_at)"
            " values (?, ?, ?, ?, ?)", [group.id, on.isoformat(), found.reason, found.by, at.isoformat()],
        )
    accounts.audit(db, by, "meeting cancel", {"workgroup": group.id, "on": on.isoformat(), "reason": found.reason})
    return found


def cancellations(db: AppDB, scope: Scope, group: Workgroup) -> dict[date, Cancellation]:
    """The workgroup's cancelled dates, for a scope that may see the workgroup."""
    meetings.workgroup(db, scope, group.id)
    with db.connect() as con:
        rows = con.execute("select * from meeting_cancellations where workgroup_id = ? order by on_date",
                           [group.id]).fetchall()
    return {date.fromisoformat(r["on_date"]): Cancellation(r["workgroup_id"], date.fromisoformat(r["on_date"]),
                                                           r["reason"], r["cancelled_by"],
                                                           datetime.fromisoformat(r["cancelled_at"])) for r in rows}
