"""The meeting calendar: the dates a workgroup's schedule sets, which of them were held and
which missed, the next meeting to draft, and the same dates as iCalendar for people's own
calendars. Recurrence is dateutil's rrule and the file format the icalendar library's, so
neither a month's fifth Tuesday nor a line fold is worked out here.

Plain values in, plain values out, except `next_meetings` and `draft_next`, which read and
write through the meeting store (ciboard.meetings) in the caller's scope: a vendor reads only
the workgroups it takes part in and the commitments it may see.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from dateutil import rrule
from icalendar import Calendar, Event

from ciboard import meetings
from ciboard.access import Scope
from ciboard.appdb import AppDB
from ciboard.ci_records import AGENDA_KEYS, Commitment, Meeting, Schedule, Workgroup, draft_meeting

# A meeting held within three days of a scheduled date is that date's meeting: groups move a
# meeting for a holiday or an illness without changing their schedule.
NEAR = timedelta(days=3)
# The next meeting is offered as a draft from a week before it, time to fill its agenda.
DRAFT_AHEAD = timedelta(days=7)
# How far ahead an open-ended schedule is written into a calendar file.
HORIZON = timedelta(days=366)
HELD, DRAFTED, MISSED, DUE, UPCOMING = "held", "drafted", "missed", "due", "upcoming"
STATUS_LABELS = {
    HELD: "Held", DRAFTED: "Drafted, not finalised", MISSED: "Missed", DUE: "Due: not recorded yet", UPCOMING: "Upcoming",
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


def slots(group: Workgroup, held: list[Meeting], today: date, ahead: timedelta = HORIZON) -> list[Slot]:
    """The workgroup's scheduled dates up to `ahead` past today, each with its meeting if one
    was held on or near it (the nearest; a meeting counts for one date only)."""
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
        coming = upcoming(slots(group, held, today), today, count=1)
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


def ics(groups: list[Workgroup], name: str, today: date) -> bytes:
    """An iCalendar file of every scheduled meeting of these workgroups, open-ended schedules
    through HORIZON. Each event's UID is its workgroup and date, and its SEQUENCE the
    workgroup's revision, so importing a newer file updates the events rather than adding
    them again. Times are floating (no time zone): a calendar shows them at the same hour in
    its own zone, which is the district's."""
    calendar = Calendar()
    calendar.add("prodid", "-//CI Board//Meeting calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    for group in groups:
        if group.schedule is None:
            continue
        schedule = group.schedule
        stamp = group.updated_at or datetime.now(timezone.utc)
        for day in dates(schedule, today + HORIZON):
            event = Event()
            event.add("uid", uid(group, day))
            event.add("sequence", group.revision)
            event.add("dtstamp", stamp.astimezone(timezone.utc))
            start = datetime.combine(day, schedule.at)
            event.add("dtstart", start)
            event.add("dtend", start + timedelta(minutes=schedule.minutes))
            event.add("summary", group.name)
            event.add("description", "\n\n".join(part for part in (group.purpose, group.cadence) if part))
            if group.format:
                event.add("location", group.format)
            calendar.add_component(event)
    return calendar.to_ical()


def uid(group: Workgroup, day: date) -> str:
    return f"workgroup-{group.id}-{day:%Y%m%d}@ciboard"
