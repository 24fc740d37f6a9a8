"""The records of the CI process, and what it asks people: workgroups, meetings and their
four-part agenda, commitments, root-cause analyses ("5 whys" and "How might we") and PDSA
cycles, each measured on a slice of students, and each as JSON values.

Plain values: no database, no scope. ciboard.meetings keeps them, with their revisions,
history and drafts, for the scope that may see them.
"""

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from typing import Any, Union, get_args, get_origin, get_type_hints

from ciboard.queries import DIMENSIONS

# --- what the process asks people -----------------------------------------------------


@dataclass(frozen=True)
class AgendaPart:
    key: str
    title: str
    questions: tuple[str, ...]


AGENDA = (
    AgendaPart(
        "operations",
        "Operations",
        (
            "What has changed in the program since we last met: schedules, staffing, sites, materials?",
            "What is getting in the way of enrolling students and serving them well right now?",
        ),
    ),
    AgendaPart(
        "outcomes_data",
        "Outcomes data",
        (
            "Is any data late, incomplete or in doubt, and what would fix it?",
            "What are the outcome numbers telling us, and which changes are signals rather than noise?",
            "Do the process measures (attendance, dosage, tutor consistency) help explain the payment outcomes?",
            "Who will act on what we learn here (district, vendor, schools), and how?",
            "How will we see, at a later meeting, whether the service got better?",
        ),
    ),
    AgendaPart(
        "partnerships",
        "Partnerships and communication",
        (
            "Where could the district, the vendor and the schools work together better?",
            "Has anything been missed or misunderstood between partners since the last meeting?",
        ),
    ),
    AgendaPart(
        "next_steps",
        "Next steps",
        (
            "What will each party do, who owns it, and by when?",
            "Which number should move if it works, and when will we look at it again?",
        ),
    ),
)
AGENDA_KEYS = tuple(part.key for part in AGENDA)

ROOT_CAUSE_STEPS = (
    "Start from a trend: the metric, the students it concerns, and what the data shows.",
    "Ask why it happens; then ask why of that answer. Keep going for at least five whys.",
    "Mark the causes that the district, the vendor and the schools can change together. Some will be "
    "beyond anyone here, and that is fine: set them aside.",
    "Rank the causes within reach by how much they matter and how realistic they are to tackle.",
    "Ask the people closest to it (students, families, teachers, tutors): they answer why differently.",
)
WHY_PROMPT = "Why does this happen?"
MIN_WHYS = 5

HMW_STEPS = (
    "Turn a root cause into a question that starts \"How might we\" and that the group could design answers to.",
    "Collect as many ideas as you can before judging any: call them out, write them silently, or ask what "
    "would make the problem worse and reverse it.",
    "Sort the ideas into themes and build on each other's.",
    "Choose one to try: test it as a PDSA cycle, or make it a commitment with an owner and a date.",
)
HMW_TEMPLATE = "How might we … so that …?"

PDSA_STEPS = {
    "plan": "What will you change, what do you predict will happen, which number will show it, and from when?",
    "do": "What happened as you tried it? Note the date, what surprised you and what got in the way.",
    "study": "Set the prediction beside what happened. What did you learn?",
    "act": "Adopt the change, adapt it and test again, or abandon it?",
}
COMMITMENT_PROMPT = (
    "What will each party do, who owns it, by when, and which number should move if it works? "
    "The funder commits too: data, flexibility or connections, not only asks."
)

PARTIES = ("district", "vendor", "school")
STATUSES = ("open", "in_progress", "done", "dropped")
STATUS_LABELS = {"open": "Open", "in_progress": "In progress", "done": "Done", "dropped": "Dropped"}
CLOSED = ("done", "dropped")
ACTS = ("adopt", "adapt", "abandon")
ACT_LABELS = {"adopt": "Adopt", "adapt": "Adapt and test again", "abandon": "Abandon"}
# Dimensions a slice can name besides vendor and school.
SLICE_DIMENSIONS = tuple(d for d in DIMENSIONS if d not in ("vendor_id", "school_id"))


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Saved:
    """What every stored record carries: its id, and which revision it is, saved when and by whom."""

    id: int | None = None
    revision: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class Slice:
    """Which students a metric is read for: a vendor, a school, a student group, or any
    combination; all empty is the whole district (or, for a vendor, all its students)."""

    vendor_id: str | None = None
    school_id: str | None = None
    dimension: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if self.dimension is not None and self.dimension not in SLICE_DIMENSIONS:
            raise ValueError(f"unknown dimension {self.dimension!r}; the dimensions are {', '.join(SLICE_DIMENSIONS)}")
        if (self.dimension is None) != (self.value is None):
            raise ValueError("a slice names a dimension and its value together, or neither")

    def filters(self) -> dict[str, list[str]]:
        """As the query layer's filters."""
        found = {"vendor_id": self.vendor_id, "school_id": self.school_id}
        if self.dimension:
            found[self.dimension] = self.value
        return {name: [str(value)] for name, value in found.items() if value is not None}

    def meets(self, chart: "Slice | Mapping[str, Any] | None") -> bool:
        """Whether a chart of `chart` (a slice, or filters as the filter bar holds them) holds
        some of this slice's students: nothing the chart fixes contradicts what the slice fixes.
        A cycle for V5's English learners meets the district chart, V5's, the English
        learners', and V5's grade 4; not V4's or the chart of students who are not learning
        English. A district-wide slice meets every chart."""
        wanted = chart.filters() if isinstance(chart, Slice) else dict(chart or {})
        mine = {name: _same(values[0]) for name, values in self.filters().items()}
        for name, values in wanted.items():
            if name not in DIMENSIONS or name not in mine or values is None or values == [] or values == "":
                continue
            allowed = {_same(v) for v in (values if isinstance(values, (list, tuple, set)) else [values])}
            if mine[name] not in allowed:
                return False
        return True

    def __str__(self) -> str:
        parts = [p for p in (self.vendor_id, self.school_id) if p]
        if self.dimension:
            parts.append(f"{self.dimension.replace('_', ' ')}: {self.value}")
        return ", ".join(parts) or "all students"


def _same(value: Any) -> str:
    return str(value).strip().lower()


@dataclass(frozen=True)
class Person:
    """A workgroup member or a meeting attendee. party_id is the vendor's or school's id."""

    name: str
    organisation: str
    party: str
    party_id: str | None = None
    role: str = ""


FREQUENCIES = ("weekly", "monthly")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Which weekday of the month a monthly meeting falls on; -1 is the last.
WEEKS_OF_MONTH = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
EVERY = {1: "", 2: "second ", 3: "third ", 4: "fourth "}


@dataclass(frozen=True)
class Schedule:
    """When a workgroup meets: every `every` weeks on a weekday, or every `every` months on
    the first (second, …, last) such weekday; from `starts_on`, to `ends_on` if it ends, at a
    local time of day for `minutes`. ciboard.meeting_calendar reads its dates."""

    frequency: str
    weekday: int  # 0 is Monday, as Python's date.weekday()
    starts_on: date
    at: time = time(16, 0)
    minutes: int = 60
    every: int = 1
    week_of_month: int | None = None
    ends_on: date | None = None

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"unknown frequency {self.frequency!r}; a schedule is {' or '.join(FREQUENCIES)}")
        if not 0 <= self.weekday <= 6:
            raise ValueError("the weekday is 0 (Monday) to 6 (Sunday)")
        if self.every not in EVERY:
            raise ValueError("a schedule repeats every 1 to 4 weeks or months")
        if (self.frequency == "monthly") != (self.week_of_month is not None):
            raise ValueError("a monthly schedule names which weekday of the month (first to fourth, or last); "
                             "a weekly one does not")
        if self.week_of_month is not None and self.week_of_month not in WEEKS_OF_MONTH:
            raise ValueError("the weekday of the month is the first to fourth, or the last")
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("a schedule ends on or after the day it starts")
        if not 5 <= self.minutes <= 8 * 60:
            raise ValueError("a meeting lasts 5 minutes to 8 hours")

    def __str__(self) -> str:
        day = WEEKDAYS[self.weekday]
        if self.frequency == "weekly":
            when = f"Every {EVERY[self.every]}{day}" if self.every > 1 else f"Weekly on {day}s"
        else:
            months = "Monthly" if self.every == 1 else f"Every {EVERY[self.every]}month"
            when = f"{months} on the {WEEKS_OF_MONTH[self.week_of_month]} {day}"
        until = f" to {self.ends_on.isoformat()}" if self.ends_on else ""
        return f"{when}, {self.at:%H:%M} for {self.minutes} minutes, from {self.starts_on.isoformat()}{until}"


@dataclass(frozen=True)
class Workgroup(Saved):
    name: str
    purpose: str = ""
    members: list[Person] = field(default_factory=list)
    cadence: str = ""  # as people put it; the schedule is what the calendar reads
    schedule: Schedule | None = None
    format: str = ""
    decisions: list[str] = field(default_factory=list)
    vendor_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Meeting(Saved):
    workgroup_id: int
    held_on: date
    attendees: list[Person] = field(default_factory=list)
    agenda: dict[str, str] = field(default_factory=dict)
    status: str = "draft"
    snapshot: dict | None = None
    warehouse_version: str | None = None
    finalised_at: datetime | None = None
    finalised_by: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status == "final"


@dataclass(frozen=True)
class LogEntry:
    on: date
    status: str
    by: str
    note: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class Commitment(Saved):
    party: str
    owner: str
    action: str
    made_on: date
    party_id: str | None = None
    due_on: date | None = None
    status: str = "open"
    log: list[LogEntry] = field(default_factory=list)
    metric_id: str | None = None
    slice: Slice = field(default_factory=Slice)
    meeting_id: int | None = None

    def status_on(self, day: date) -> str | None:
        """The status as it stood at the end of `day`; None before the commitment was made."""
        if day < self.made_on:
            return None
        dated = [entry for entry in sorted(self.log, key=lambda e: e.on) if entry.on <= day]
        return dated[-1].status if dated else "open"

    def is_open_on(self, day: date) -> bool:
        return self.status_on(day) not in (None, *CLOSED)

    def is_overdue_on(self, day: date) -> bool:
        return self.is_open_on(day) and self.due_on is not None and self.due_on < day


@dataclass(frozen=True)
class Cause:
    text: str
    controllable: bool = False
    priority: int | None = None  # 1 is the first to tackle


@dataclass(frozen=True)
class Idea:
    text: str
    theme: str = ""


@dataclass(frozen=True)
class RootCause(Saved):
    metric_id: str
    problem: str
    slice: Slice = field(default_factory=Slice)
    whys: list[str] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)
    hmw: list[str] = field(default_factory=list)
    ideas: list[Idea] = field(default_factory=list)
    chosen_idea: int | None = None  # index into ideas
    pdsa_id: int | None = None
    commitment_id: int | None = None
    meeting_id: int | None = None

    @property
    def complete(self) -> bool:
        """Five whys or more: an analysis that stops earlier rarely reaches a root."""
        return sum(1 for why in self.whys if why.strip()) >= MIN_WHYS

    @property
    def within_reach(self) -> list[Cause]:
        """The causes the group controls, in priority order (unranked last)."""
        mine = [c for c in self.causes if c.controllable]
        return sorted(mine, key=lambda c: (c.priority is None, c.priority or 0))

    @property
    def themes(self) -> dict[str, list[Idea]]:
        grouped: dict[str, list[Idea]] = {}
        for idea in self.ideas:
            grouped.setdefault(idea.theme or "Other", []).append(idea)
        return grouped


@dataclass(frozen=True)
class Observation:
    on: date
    text: str
    by: str = ""


@dataclass(frozen=True)
class PdsaCycle(Saved):
    title: str
    metric_id: str
    start_on: date
    slice: Slice = field(default_factory=Slice)
    change: str = ""
    prediction: str = ""
    ends_on: date | None = None
    observations: list[Observation] = field(default_factory=list)
    study: str = ""
    act: str | None = None
    act_note: str = ""
    meeting_id: int | None = None

    @property
    def stage(self) -> str:
        """Where the cycle stands: plan, do, study or act (decided)."""
        if self.act:
            return "act"
        if self.study.strip():
            return "study"
        return "do" if self.observations else "plan"


# --- new records, drafted from others -------------------------------------------------


def draft_meeting(workgroup: Workgroup, held_on: date) -> Meeting:
    """A new meeting of a workgroup: its members as the expected attendees, an empty agenda."""
    return Meeting(workgroup_id=workgroup.id, held_on=held_on, attendees=list(workgroup.members),
                   agenda={key: "" for key in AGENDA_KEYS})


def draft_pdsa(analysis: RootCause, idea: int, start_on: date) -> PdsaCycle:
    """A PDSA cycle to test an analysis's idea, measured on the analysis's metric and slice."""
    chosen = analysis.ideas[idea]
    return PdsaCycle(title=chosen.text, metric_id=analysis.metric_id, slice=analysis.slice, change=chosen.text,
                     start_on=start_on, meeting_id=analysis.meeting_id)


def draft_commitment(
    analysis: RootCause, idea: int, *, party: str, party_id: str | None, owner: str, made_on: date,
    due_on: date | None = None,
) -> Commitment:
    """A commitment to carry out an analysis's idea, linked to the analysis's metric and slice."""
    return Commitment(party=party, party_id=party_id, owner=owner, action=analysis.ideas[idea].text, made_on=made_on,
                      due_on=due_on, metric_id=analysis.metric_id, slice=analysis.slice, meeting_id=analysis.meeting_id)


# --- as JSON values -------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """A record as JSON values: nested records as objects, dates as ISO text."""
    if dataclasses.is_dataclass(value):
        return {f.name: as_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    return value


def from_json(kind, data: Any) -> Any:
    """The inverse of as_json, guided by a type hint: from_json(Commitment, data)."""
    if data is None:
        return None
    if get_origin(kind) in (Union, types.UnionType):
        return from_json(next(a for a in get_args(kind) if a is not type(None)), data)
    if get_origin(kind) is list:
        return [from_json(get_args(kind)[0], v) for v in data]
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is date:
        return date.fromisoformat(data)
    if kind is time:
        return time.fromisoformat(data)
    if kind is bool:
        return bool(data)
    if dataclasses.is_dataclass(kind):
        hints = get_type_hints(kind)
        return kind(**{name: from_json(hints[name], value) for name, value in data.items() if name in hints})
    return data
