"""The meeting store: the CI process's records (workgroups, meetings, commitments, root-cause
analyses and PDSA cycles, ciboard.ci_records) in the app database. It keeps what it is
given: the numbers a finalised meeting saw come from its caller (ciboard.followup).

Reads take a scope, like every query of the warehouse: who sees and may change which record
is ruled in ciboard.ci_access.

Nothing is lost. Every record has a revision; a save names the revision it started from
and fails with `EditConflict`, carrying both versions, if someone saved in between. Every
saved revision is kept whole in `history`. A finalised meeting is read-only (`MeetingFinal`)
and keeps the snapshot of what was on screen. Records live in SQLite beside the warehouse,
which an ingest never touches, so they survive ingests and restarts.

What someone types and has not saved is kept too, as their draft of the record
(ciboard.drafts); saving the record removes the saver's draft.
"""

import dataclasses
import json
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Union, get_args, get_origin, get_type_hints

import pandas as pd

from ciboard.access import Scope, ScopeError
from ciboard.appdb import AppDB
from ciboard.ci_access import (
    district_only,
    is_party,
    may_update_commitment,
    meeting_as_seen,
    sees_commitment,
    sees_slice,
    sees_workgroup,
    visible_versions,
    workgroup_as_seen,
)
from ciboard.ci_records import (
    ACTS,
    AGENDA_KEYS,
    PARTIES,
    STATUSES,
    Commitment,
    LogEntry,
    Meeting,
    Observation,
    PdsaCycle,
    Person,
    RootCause,
    Slice,
    Workgroup,
    as_json,
    from_json,
)

# A meeting with no earlier meeting of its workgroup looks back this far.
FIRST_LOOK_BACK = timedelta(weeks=8)
# A due date further out than this is far more often a mistyped year than a plan.
LONGEST_COMMITMENT = timedelta(days=731)


# --- errors ---------------------------------------------------------------------------


class NotFound(LookupError):
    pass


class MeetingFinal(PermissionError):
    """An edit of a finalised meeting, whose minutes are read-only."""


class EditConflict(RuntimeError):
    """Someone saved the record after the editor opened it. `theirs` is the record as stored
    now, `mine` what the editor submitted; a page shows both and lets the editor merge."""

    def __init__(self, entity: str, theirs: Any, mine: Any):
        self.entity, self.theirs, self.mine = entity, theirs, mine
        super().__init__(
            f"this {entity.replace('_', ' ')} was saved by {theirs.updated_by} at {theirs.updated_at:%Y-%m-%d %H:%M} "
            f"(revision {theirs.revision}) after you opened revision {mine.revision}; "
            "nothing was overwritten: compare both versions and save again"
        )

    @property
    def changed(self) -> list[str]:
        """The fields in which the two versions differ."""
        skip = {"revision", "updated_at", "updated_by"}
        return [
            f.name for f in fields(self.theirs)
            if f.name not in skip and getattr(self.theirs, f.name) != getattr(self.mine, f.name)
        ]


# --- what the store gives back -----------------------------------------------------


@dataclass(frozen=True)
class OpenCommitment:
    """A commitment still open on a date, as a meeting of that date carries it forward."""

    commitment: Commitment
    status: str
    overdue: bool
    days_overdue: int


@dataclass(frozen=True)
class Version:
    """One saved revision of a record."""

    entity: str
    id: int
    revision: int
    saved_by: str
    saved_at: datetime
    record: Any


TABLES = {
    "workgroup": ("workgroups", "workgroup_id", Workgroup),
    "meeting": ("meetings", "meeting_id", Meeting),
    "commitment": ("commitments", "commitment_id", Commitment),
    "pdsa": ("pdsa_cycles", "pdsa_id", PdsaCycle),
    "root_cause": ("root_causes", "root_cause_id", RootCause),
}
ENTITY_OF = {cls: entity for entity, (_, _, cls) in TABLES.items()}
PLURALS = {
    "workgroup": "workgroups", "meeting": "meetings", "commitment": "commitments", "pdsa": "PDSA cycles",
    "root_cause": "root-cause analyses",
}


# --- reading --------------------------------------------------------------------------


def workgroups(db: AppDB, scope: Scope) -> list[Workgroup]:
    return [workgroup_as_seen(scope, w) for w in _all(db, "workgroup", "order by name") if sees_workgroup(scope, w)]


def workgroup(db: AppDB, scope: Scope, workgroup_id: int) -> Workgroup:
    found = _one(db, "workgroup", workgroup_id)
    if not sees_workgroup(scope, found):
        raise ScopeError("this account sees only the workgroups its own vendor takes part in")
    return workgroup_as_seen(scope, found)


def meetings(db: AppDB, scope: Scope, workgroup_id: int | None = None) -> list[Meeting]:
    """Meetings in date order, oldest first."""
    groups = {w.id: w for w in _all(db, "workgroup")}
    found = _all(db, "meeting", "order by held_on, meeting_id")
    return [
        meeting_as_seen(scope, m, groups[m.workgroup_id])
        for m in found
        if (workgroup_id is None or m.workgroup_id == workgroup_id) and sees_workgroup(scope, groups[m.workgroup_id])
    ]


def meeting(db: AppDB, scope: Scope, meeting_id: int) -> Meeting:
    found = _one(db, "meeting", meeting_id)
    group = _one(db, "workgroup", found.workgroup_id)
    if not sees_workgroup(scope, group):
        raise ScopeError("this account sees only the meetings of workgroups its own vendor takes part in")
    return meeting_as_seen(scope, found, group)


def previous_meeting(db: AppDB, scope: Scope, workgroup_id: int, before: date) -> Meeting | None:
    """The workgroup's latest meeting held before `before`, draft or final."""
    earlier = [m for m in meetings(db, scope, workgroup_id) if m.held_on < before]
    return earlier[-1] if earlier else None


def look_back_from(db: AppDB, scope: Scope, workgroup_id: int, held_on: date) -> tuple[date, Meeting | None]:
    """Since when a meeting on `held_on` reviews the data: its workgroup's previous meeting,
    or eight weeks back for a first meeting."""
    previous = previous_meeting(db, scope, workgroup_id, held_on)
    return (previous.held_on if previous else held_on - FIRST_LOOK_BACK), previous


def commitments(
    db: AppDB, scope: Scope, *, meeting_id: int | None = None, workgroup_id: int | None = None
) -> list[Commitment]:
    """Commitments the scope sees, oldest first; of one meeting, or relevant to one workgroup
    (see `open_commitments`)."""
    found = [c for c in _all(db, "commitment", "order by made_on, commitment_id") if sees_commitment(scope, c)]
    if meeting_id is not None:
        found = [c for c in found if c.meeting_id == meeting_id]
    if workgroup_id is not None:
        found = _for_workgroup(db, found, workgroup_id)
    return found


def commitment(db: AppDB, scope: Scope, commitment_id: int) -> Commitment:
    found = _one(db, "commitment", commitment_id)
    if not sees_commitment(scope, found):
        raise ScopeError("this account sees only the commitments that name its own vendor")
    return found


def open_commitments(
    db: AppDB, scope: Scope, as_of: date, *, workgroup_id: int | None = None
) -> list[OpenCommitment]:
    """Every commitment made on or before `as_of` and not done or dropped by then, overdue
    ones first. Status is read from the dated log, so an earlier meeting's list is what it
    was on its day. With a workgroup: the commitments made at its meetings, and, for a
    workgroup of vendors, every commitment of or about those vendors."""
    found = []
    for c in commitments(db, scope, workgroup_id=workgroup_id):
        if c.is_open_on(as_of):
            overdue = c.is_overdue_on(as_of)
            found.append(OpenCommitment(c, c.status_on(as_of), overdue, (as_of - c.due_on).days if overdue else 0))
    return sorted(found, key=lambda o: (not o.overdue, o.commitment.due_on or date.max, o.commitment.id))


def carried_forward(db: AppDB, scope: Scope, meeting_id: int) -> list[OpenCommitment]:
    """The open commitments a meeting inherits from earlier meetings."""
    this = meeting(db, scope, meeting_id)
    return [
        o for o in open_commitments(db, scope, this.held_on, workgroup_id=this.workgroup_id)
        if o.commitment.meeting_id != meeting_id
    ]


def root_causes(
    db: AppDB, scope: Scope, *, metric_id: str | None = None, meeting_id: int | None = None
) -> list[RootCause]:
    found = [r for r in _all(db, "root_cause", "order by root_cause_id") if sees_slice(scope, r.slice)]
    return [
        r for r in found
        if (metric_id is None or r.metric_id == metric_id) and (meeting_id is None or r.meeting_id == meeting_id)
    ]


def root_cause(db: AppDB, scope: Scope, root_cause_id: int) -> RootCause:
    found = _one(db, "root_cause", root_cause_id)
    if not sees_slice(scope, found.slice):
        raise ScopeError("this account sees only analyses of its own vendor's students")
    return found


def pdsa_cycles(
    db: AppDB, scope: Scope, *, metric_id: str | None = None, active_on: date | None = None
) -> list[PdsaCycle]:
    """Cycles oldest first; `active_on` keeps those started by then and not yet decided."""
    found = [p for p in _all(db, "pdsa", "order by start_on, pdsa_id") if sees_slice(scope, p.slice)]
    if metric_id is not None:
        found = [p for p in found if p.metric_id == metric_id]
    if active_on is not None:
        found = [p for p in found if p.start_on <= active_on and not p.act]
    return found


def under_review(
    db: AppDB, scope: Scope, workgroup_id: int, held_on: date, vendors: Iterable[str] = ()
) -> tuple[list[OpenCommitment], list[PdsaCycle]]:
    """What a meeting on `held_on` reviews: its workgroup's commitments open that day and made
    before it, and the PDSA cycles under way that day on `vendors` (on any when none given)."""
    vendors = {vendors} if isinstance(vendors, str) else set(vendors)
    commitments_open = [
        item for item in open_commitments(db, scope, held_on, workgroup_id=workgroup_id) if item.commitment.made_on < held_on
    ]
    cycles = [c for c in pdsa_cycles(db, scope, active_on=held_on) if not vendors or c.slice.vendor_id in vendors]
    return commitments_open, cycles


def pdsa_cycle(db: AppDB, scope: Scope, pdsa_id: int) -> PdsaCycle:
    found = _one(db, "pdsa", pdsa_id)
    if not sees_slice(scope, found.slice):
        raise ScopeError("this account sees only PDSA cycles about its own vendor's students")
    return found


MARK_COLUMNS = [
    "starts_on", "ends_on", "kind", "title", "description", "vendor_id", "school_id", "metric_id", "pdsa_id",
]


def pdsa_marks(
    db: AppDB, scope: Scope, metric_id: str | None = None, slice: "Slice | Mapping[str, Any] | None" = None
) -> pd.DataFrame:
    """The PDSA cycles a trend chart should mark at their start dates, in the columns of the
    `events` view (kind 'PDSA'), so a page can add them to the chart's events.

    A cycle marks a chart that holds some of the students it changed things for
    (`Slice.meets`): a cycle for V5's English learners marks the district chart, V5's chart
    and the English learners' chart, but not V4's; a district-wide cycle marks every chart.
    With a metric, only the cycles measured on it; without, every cycle the chart meets.
    """
    rows = [
        {
            "starts_on": p.start_on,
            "ends_on": p.start_on,
            "kind": "PDSA",
            "title": f"PDSA: {p.title}",
            "description": p.change,
            "vendor_id": p.slice.vendor_id,
            "school_id": p.slice.school_id,
            "metric_id": p.metric_id,
            "pdsa_id": p.id,
        }
        for p in pdsa_cycles(db, scope, metric_id=metric_id)
        if p.slice.meets(slice)
    ]
    return pd.DataFrame(rows, columns=MARK_COLUMNS)


def root_cause_of(
    db: AppDB, scope: Scope, *, pdsa_id: int | None = None, commitment_id: int | None = None
) -> RootCause | None:
    """The analysis whose chosen idea became this cycle or commitment, if any."""
    for r in root_causes(db, scope):
        if (pdsa_id is not None and r.pdsa_id == pdsa_id) or (
            commitment_id is not None and r.commitment_id == commitment_id
        ):
            return r
    return None


def history(db: AppDB, scope: Scope, entity: str, entity_id: int) -> list[Version]:
    """Every saved revision of a record, oldest first; the last is the record as it is now.
    A vendor sees only the revisions it could see at the time."""
    if entity not in TABLES:
        raise ValueError(f"unknown record kind {entity!r}; the kinds are {', '.join(TABLES)}")
    _, _, cls = TABLES[entity]
    with db.connect() as con:
        rows = con.execute(
            "select * from history where entity = ? and entity_id = ? order by revision", [entity, entity_id]
        ).fetchall()
    if not rows:
        raise NotFound(f"no {entity.replace('_', ' ')} {entity_id}")
    versions = [
        Version(entity, entity_id, r["revision"], r["saved_by"], datetime.fromisoformat(r["saved_at"]),
                from_json(cls, json.loads(r["record"])))
        for r in rows
    ]
    if not is_party(scope):
        return versions
    group = _one(db, "workgroup", versions[-1].record.workgroup_id) if entity == "meeting" else None
    seen = visible_versions(scope, entity, versions, group)
    if not seen:
        raise ScopeError(f"this account sees only the {PLURALS[entity]} that concern its own {scope.role}")
    return seen


# --- writing --------------------------------------------------------------------------


def save_workgroup(db: AppDB, scope: Scope, record: Workgroup, *, by: str, at: datetime | None = None) -> Workgroup:
    district_only(scope, "workgroups")
    _check_workgroup(record)
    with db.transaction() as con:
        return _drop_draft(con, _store(con, record, by=by, at=at), by)


def save_meeting(db: AppDB, scope: Scope, record: Meeting, *, by: str, at: datetime | None = None) -> Meeting:
    """Saves a draft meeting. Finalise with `finalise`, never by setting the status."""
    district_only(scope, "meetings")
    _check_meeting(record)
    with db.transaction() as con:
        one_in(con, "workgroup", record.workgroup_id)
        if record.id is not None:
            stored = one_in(con, "meeting", record.id)
            if stored.is_final:
                raise MeetingFinal(final_message(stored))
        if record.is_final or record.snapshot is not None:
            raise ValueError("a meeting becomes final only through finalise(), which freezes its snapshot")
        return _drop_draft(con, _store(con, record, by=by, at=at), by)


def finalise(
    db: AppDB,
    scope: Scope,
    meeting_id: int,
    snapshot: Mapping[str, Any],
    *,
    warehouse_version: str,
    by: str,
    revision: int | None = None,
    at: datetime | None = None,
) -> Meeting:
    """Freezes a meeting: its agenda, and the snapshot of the numbers and filters discussed
    with the warehouse version they came from. `revision`, when given, is the revision the
    finaliser saw; a later save by someone else is then an EditConflict, not frozen unseen."""
    district_only(scope, "meetings")
    text = json.dumps(snapshot, allow_nan=False, sort_keys=True)
    at = at or _now()
    with db.transaction() as con:
        stored = one_in(con, "meeting", meeting_id)
        if stored.is_final:
            raise MeetingFinal(final_message(stored))
        if revision is not None and revision != stored.revision:
            raise EditConflict("meeting", stored, replace(stored, revision=revision))
        final = replace(
            stored, status="final", snapshot=json.loads(text), warehouse_version=warehouse_version,
            finalised_at=at, finalised_by=by,
        )
        return _drop_draft(con, _store(con, final, by=by, at=at), by)


def save_commitment(db: AppDB, scope: Scope, record: Commitment, *, by: str, at: datetime | None = None) -> Commitment:
    """Saves a commitment. A change of status is logged (use `update_status` to add a note).
    The log itself is never rewritten. A vendor may change only the status of its own."""
    _check_commitment(record)
    at = at or _now()
    with db.transaction() as con:
        if record.id is None:
            district_only(scope, "new commitments")
            made_at = one_in(con, "meeting", record.meeting_id) if record.meeting_id is not None else None
            if made_at is not None and made_at.is_final:
                raise MeetingFinal(final_message(made_at) + "; record the commitment at a later meeting")
            first = LogEntry(record.made_on, record.status, by, "", at)
            return _store(con, replace(record, log=[first]), by=by, at=at)
        stored = one_in(con, "commitment", record.id)
        may_update_commitment(scope, stored)
        if is_party(scope) and _without_status(record) != _without_status(stored):
            raise ScopeError(f"a {scope.role} account can change only the status of its own commitments")
        log = list(stored.log)
        if record.status != stored.status:
            log.append(LogEntry(at.date(), record.status, by, "", at))
        return _store(con, replace(record, log=log, status=_latest_status(log)), by=by, at=at, stored=stored)


def update_status(
    db: AppDB,
    scope: Scope,
    commitment_id: int,
    status: str,
    *,
    by: str,
    revision: int,
    note: str = "",
    on: date | None = None,
    at: datetime | None = None,
) -> Commitment:
    """Logs a status change (or, with the same status, a dated progress note) on the date it
    happened (`on`, today by default). Vendors may do this for their own commitments."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; the statuses are {', '.join(STATUSES)}")
    at = at or _now()
    on = on or at.date()
    if on > at.date():
        raise ValueError(f"a status change cannot be dated after today ({on} > {at.date()})")
    with db.transaction() as con:
        stored = one_in(con, "commitment", commitment_id)
        may_update_commitment(scope, stored)
        if on < stored.made_on:
            raise ValueError(f"the commitment was made on {stored.made_on}; a change cannot come before it")
        if revision != stored.revision:
            raise EditConflict("commitment", stored, replace(stored, status=status, revision=revision))
        log = [*stored.log, LogEntry(on, status, by, note.strip(), at)]
        return _store(con, replace(stored, log=log, status=_latest_status(log)), by=by, at=at)


def save_root_cause(db: AppDB, scope: Scope, record: RootCause, *, by: str, at: datetime | None = None) -> RootCause:
    district_only(scope, "root-cause analyses")
    _check_root_cause(record)
    with db.transaction() as con:
        return _drop_draft(con, _store(con, record, by=by, at=at), by)


def save_pdsa(db: AppDB, scope: Scope, record: PdsaCycle, *, by: str, at: datetime | None = None) -> PdsaCycle:
    district_only(scope, "PDSA cycles")
    _check_pdsa(record)
    with db.transaction() as con:
        return _drop_draft(con, _store(con, record, by=by, at=at), by)


def add_observation(
    db: AppDB, scope: Scope, pdsa_id: int, text: str, *, by: str, on: date | None = None, at: datetime | None = None
) -> PdsaCycle:
    """Appends a dated observation to a cycle's Do. Appends never conflict: each lands on the
    newest revision, so two people noting at once both keep theirs."""
    district_only(scope, "PDSA cycles")
    if not text.strip():
        raise ValueError("an observation needs some text")
    at = at or _now()
    with db.transaction() as con:
        stored = one_in(con, "pdsa", pdsa_id)
        note = Observation(on or at.date(), text.strip(), by)
        return _store(con, replace(stored, observations=[*stored.observations, note]), by=by, at=at)


def choose_idea(
    db: AppDB,
    scope: Scope,
    root_cause_id: int,
    idea: int,
    becomes: PdsaCycle | Commitment,
    *,
    by: str,
    revision: int,
    at: datetime | None = None,
) -> tuple[RootCause, PdsaCycle | Commitment]:
    """Chooses one of an analysis's ideas and saves what it becomes, a new PDSA cycle or a
    new commitment, linked to the analysis: both land, or neither."""
    district_only(scope, "root-cause analyses")
    at = at or _now()
    with db.transaction() as con:
        stored = one_in(con, "root_cause", root_cause_id)
        if revision != stored.revision:
            raise EditConflict("root_cause", stored, replace(stored, chosen_idea=idea, revision=revision))
        if not 0 <= idea < len(stored.ideas):
            raise ValueError(f"there is no idea {idea}; the analysis has {len(stored.ideas)}")
        if becomes.id is not None:
            raise ValueError("the chosen idea becomes a new PDSA cycle or commitment")
        if isinstance(becomes, PdsaCycle):
            _check_pdsa(becomes)
            made = _store(con, becomes, by=by, at=at)
            links = {"pdsa_id": made.id, "commitment_id": None}
        else:
            _check_commitment(becomes)
            first = LogEntry(becomes.made_on, becomes.status, by, "", at)
            made = _store(con, replace(becomes, log=[first]), by=by, at=at)
            links = {"pdsa_id": None, "commitment_id": made.id}
        chosen = _store(con, replace(stored, chosen_idea=idea, **links), by=by, at=at)
    return chosen, made


# --- which commitments concern a workgroup ------------------------------------------


def _for_workgroup(db: AppDB, found: list[Commitment], workgroup_id: int) -> list[Commitment]:
    group = _one(db, "workgroup", workgroup_id)
    if not group.vendor_ids:
        return found
    held = {m.id for m in _all(db, "meeting") if m.workgroup_id == workgroup_id}
    vendors = set(group.vendor_ids)
    return [
        c for c in found
        if c.meeting_id in held or (c.party == "vendor" and c.party_id in vendors) or c.slice.vendor_id in vendors
    ]


# --- checks ---------------------------------------------------------------------------


def _check_person(person: Person) -> None:
    if person.party not in PARTIES:
        raise ValueError(f"{person.name}: unknown party {person.party!r}; the parties are {', '.join(PARTIES)}")
    if (person.party == "district") != (person.party_id is None):
        raise ValueError(f"{person.name}: a vendor's or school's person names its id; the district's names none")


def _check_workgroup(record: Workgroup) -> None:
    if not record.name.strip():
        raise ValueError("a workgroup needs a name")
    for person in record.members:
        _check_person(person)
    missing = sorted({p.party_id for p in record.members if p.party == "vendor"} - set(record.vendor_ids))
    if missing:
        raise ValueError(f"members come from vendor(s) {', '.join(missing)} that the workgroup does not list")


def _check_meeting(record: Meeting) -> None:
    if not isinstance(record.held_on, date):
        raise ValueError("a meeting needs the date it is held on")
    unknown = sorted(set(record.agenda) - set(AGENDA_KEYS))
    if unknown:
        raise ValueError(f"unknown agenda part(s) {', '.join(unknown)}; the parts are {', '.join(AGENDA_KEYS)}")
    for person in record.attendees:
        _check_person(person)


def _check_commitment(record: Commitment) -> None:
    if record.party not in PARTIES:
        raise ValueError(f"unknown party {record.party!r}; the parties are {', '.join(PARTIES)}")
    if (record.party == "district") != (record.party_id is None):
        raise ValueError("a vendor's or a school's commitment names the vendor or school; the district's names none")
    if record.party == "vendor" and record.slice.vendor_id not in (None, record.party_id):
        raise ValueError("a vendor's commitment is measured on its own students")
    if record.status not in STATUSES:
        raise ValueError(f"unknown status {record.status!r}; the statuses are {', '.join(STATUSES)}")
    if not record.action.strip():
        raise ValueError("a commitment needs an action")
    if not record.owner.strip():
        raise ValueError("a commitment needs an owner")
    if record.due_on is not None and record.due_on < record.made_on:
        raise ValueError(f"the due date {record.due_on:%b %-d, %Y} is before the commitment was made "
                         f"({record.made_on:%b %-d, %Y})")
    if record.due_on is not None and record.due_on > record.made_on + LONGEST_COMMITMENT:
        raise ValueError(f"the due date {record.due_on:%b %-d, %Y} is more than two years after the commitment was "
                         f"made ({record.made_on:%b %-d, %Y}): a typo? A longer aim is better split into steps")


def _check_root_cause(record: RootCause) -> None:
    if not record.problem.strip():
        raise ValueError("an analysis starts from a problem: the trend to explain")
    if record.chosen_idea is not None and not 0 <= record.chosen_idea < len(record.ideas):
        raise ValueError(f"there is no idea {record.chosen_idea}; the analysis has {len(record.ideas)}")


def _check_pdsa(record: PdsaCycle) -> None:
    if not record.title.strip():
        raise ValueError("a PDSA cycle needs a title")
    if record.act is not None and record.act not in ACTS:
        raise ValueError(f"unknown act {record.act!r}; a cycle ends in {', '.join(ACTS)}")
    if record.ends_on is not None and record.ends_on < record.start_on:
        raise ValueError("a cycle cannot end before it starts")


def final_message(m: Meeting) -> str:
    return (
        f"the meeting of {m.held_on} was finalised on {m.finalised_at:%Y-%m-%d} by {m.finalised_by};"
        " its minutes are read-only"
    )


def _without_status(c: Commitment) -> Commitment:
    return replace(c, status="", log=[], revision=0, updated_at=None, updated_by=None)


def _latest_status(log: list[LogEntry]) -> str:
    """The status of the latest-dated entry; of entries on one day, the last recorded."""
    return sorted(log, key=lambda e: e.on)[-1].status if log else "open"


# --- storage --------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _store(con, record, *, by: str, at: datetime | None, stored=None):
    """Inserts a new record or updates one whose stored revision is the record's, and keeps
    the saved revision in history. Runs inside the caller's transaction."""
    if not by or not str(by).strip():
        raise ValueError("a save names who made it")
    entity = ENTITY_OF[type(record)]
    table, key, _ = TABLES[entity]
    at = at or _now()
    if record.id is None:
        saved = replace(record, revision=1, updated_at=at, updated_by=by)
        row = _row(saved)
        row.pop(key)
        [new_id] = con.execute(
            f"insert into {table} ({', '.join(row)}) values ({', '.join('?' * len(row))}) returning {key}",
            list(row.values()),
        ).fetchone()
        saved = replace(saved, id=new_id)
    else:
        stored = stored or one_in(con, entity, record.id)
        if stored.revision != record.revision:
            raise EditConflict(entity, stored, record)
        saved = replace(record, revision=stored.revision + 1, updated_at=at, updated_by=by)
        row = _row(saved)
        row.pop(key)
        con.execute(
            f"update {table} set {', '.join(f'{c} = ?' for c in row)} where {key} = ?", [*row.values(), record.id]
        )
    con.execute(
        "insert into history (entity, entity_id, revision, saved_by, saved_at, record) values (?, ?, ?, ?, ?, ?)",
        [entity, saved.id, saved.revision, by, at.isoformat(), json.dumps(as_json(saved), allow_nan=False)],
    )
    return saved


def _drop_draft(con, saved, by: str):
    """A save takes what the saver typed: their draft of the record has served."""
    con.execute("delete from drafts where username = ? and entity = ? and entity_id = ?",
                [by, ENTITY_OF[type(saved)], saved.id])
    return saved


def _row(record) -> dict[str, Any]:
    _, key, _ = TABLES[ENTITY_OF[type(record)]]
    row = {}
    for f in fields(record):
        value = as_json(getattr(record, f.name))
        if isinstance(value, (list, dict)):
            value = json.dumps(value, allow_nan=False)
        row[key if f.name == "id" else f.name] = value
    return row


def _from_row(entity: str, row) -> Any:
    _, key, cls = TABLES[entity]
    hints = get_type_hints(cls)
    values = {}
    for f in fields(cls):
        raw = row[key if f.name == "id" else f.name]
        if isinstance(raw, str) and _is_structured(hints[f.name]):
            raw = json.loads(raw)
        values[f.name] = from_json(hints[f.name], raw)
    return cls(**values)


def _is_structured(kind) -> bool:
    optional = get_origin(kind) in (Union, types.UnionType)
    inner = [a for a in get_args(kind) if a is not type(None)] if optional else [kind]
    return any(get_origin(k) in (list, dict) or k in (list, dict) or dataclasses.is_dataclass(k) for k in inner)


def _all(db: AppDB, entity: str, order: str = "") -> list:
    table, _, _ = TABLES[entity]
    with db.connect() as con:
        return [_from_row(entity, row) for row in con.execute(f"select * from {table} {order}").fetchall()]


def _one(db: AppDB, entity: str, entity_id: int):
    with db.connect() as con:
        return one_in(con, entity, entity_id)


def one_in(con, entity: str, entity_id: int | None):
    """The record as stored, read on the caller's connection (in its transaction, if any); NotFound when there is none."""
    table, key, _ = TABLES[entity]
    row = con.execute(f"select * from {table} where {key} = ?", [entity_id]).fetchone()
    if row is None:
        raise NotFound(f"no {entity.replace('_', ' ')} {entity_id}")
    return _from_row(entity, row)
