"""Student follow-up: the lists of students someone should act on (persistently absent, not
growing, not yet served) and the dated log of what was done about each.

The lists come through the query layer, so a vendor's lists hold its own students only; the
log lives in the app database and is read and written within the same scope (`_scope_rule`).
An evaluator reads the lists and each student's statuses under its own pseudonyms, and writes
nothing; the log's notes and who wrote them name students and staff as they were typed, so an
evaluator reads neither.
The log is only ever added to, and is kept per student, not per list: a student who leaves
a list and comes back shows everything logged before. A student on a list with nothing logged
is "new".
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd

from ciboard import privacy
from ciboard.access import Scope, ScopeError, require_writer
from ciboard.appdb import AppDB
from ciboard.queries import DIMENSIONS, run
from ciboard.warehouse import Warehouse

LISTS = {
    "absent": "Persistently absent",
    "not_growing": "Not growing",
    "not_yet_served": "Not yet served",
}
STATUSES = ("new", "contacted", "re-engaged", "substituted", "dis-enrolled")
STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "re-engaged": "Re-engaged",
    "substituted": "Substituted",
    "dis-enrolled": "Dis-enrolled",
}


@dataclass(frozen=True)
class FollowUp:
    """One entry of a student's log: on which list, what status from when, who said so, why."""

    student_key: str
    list: str
    status: str
    on: date
    by: str
    note: str = ""
    at: datetime | None = None


def describe(settings) -> dict[str, str]:
    """What puts a student on each list, in the district's settings: "Students who …"."""
    return {
        "absent": f"attended less than {settings.absent_below_rate:.0%} of their scheduled tutoring sessions "
        f"over the last {settings.absent_weeks} weeks",
        "not_growing": "were below the growth target at the latest assessment window, having attended tutoring",
        "not_yet_served": f"have been on a roster {settings.unserved_weeks} weeks or more without attending a session",
    }


def lists(
    warehouse: Warehouse, scope: Scope, end: date, filters: Mapping[str, Any] | None = None
) -> dict[str, pd.DataFrame]:
    """The three lists up to `end` in the scope, each a frame of students (student_key,
    vendor_id, school_id, grade, and what put them there)."""
    settings = warehouse.settings
    dims = _dimensions(filters)
    return {
        "absent": run(warehouse, "absent_students", scope, {
            "max_rate": settings.absent_below_rate, "weeks": settings.absent_weeks, "end": end, **dims}),
        "not_growing": run(warehouse, "not_growing", scope, {"end": end, **dims}),
        "not_yet_served": run(warehouse, "not_yet_served", scope, {
            "weeks": settings.unserved_weeks, "end": end, **dims}),
    }


def counts(
    warehouse: Warehouse, scope: Scope, end: date, filters: Mapping[str, Any] | None = None
) -> dict[str, int | None]:
    """How many students each list holds up to `end` in the scope; None where the count is
    too small for the scope to see."""
    settings = warehouse.settings
    found = run(warehouse, "follow_up_counts", scope, {
        "max_rate": settings.absent_below_rate, "weeks": settings.absent_weeks,
        "unserved_weeks": settings.unserved_weeks, "end": end, **_dimensions(filters)})
    return {row.list: None if pd.isna(row.students) else int(row.students) for row in found.itertuples()}


def history(db: AppDB, scope: Scope, student_key: str) -> list[FollowUp]:
    """A student's whole log, oldest first; empty for a student outside the scope. An evaluator
    names the student by its pseudonym."""
    rule, params = _scope_rule(scope)
    if scope.pseudonymises:
        return [e for e in _read(db, scope, rule, params) if e.student_key == student_key]
    return _read(db, scope, f"student_key = ? and {rule}", [student_key, *params])


def latest(db: AppDB, scope: Scope) -> dict[str, FollowUp]:
    """Each student's latest entry in the scope, by the day it happened, then the order logged."""
    rule, params = _scope_rule(scope)
    return {entry.student_key: entry for entry in _read(db, scope, rule, params)}


def _read(db: AppDB, scope: Scope, rule: str, params: list) -> list[FollowUp]:
    """The log entries the rule selects, oldest first; an evaluator's with its pseudonyms for the
    students and neither the note nor who wrote it."""
    with db.connect() as con:
        rows = con.execute(f"select * from student_follow_ups where {rule} order by logged_on, entry_id", params).fetchall()
    entries = [_entry(row) for row in rows]
    if not scope.pseudonymises:
        return entries
    key = privacy.pseudonym_key(db)
    return [replace(e, student_key=privacy.pseudonym(key, scope.evaluator, e.student_key), by="", note="")
            for e in entries]


def with_status(frame: pd.DataFrame, known: Mapping[str, FollowUp]) -> pd.DataFrame:
    """A list with each student's status, since when and by whom ("new" where nothing is logged)."""
    entries = [known.get(key) for key in frame["student_key"]]
    return frame.assign(
        status=[e.status if e else "new" for e in entries],
        status_on=[e.on if e else None for e in entries],
        status_by=[e.by if e else "" for e in entries],
        note=[e.note if e else "" for e in entries],
    )


def log_status(
    db: AppDB,
    warehouse: Warehouse,
    scope: Scope,
    student_key: str,
    list_key: str,
    status: str,
    *,
    by: str,
    note: str = "",
    on: date | None = None,
    at: datetime | None = None,
) -> FollowUp:
    """Adds an entry to a student's log, dated `on` (today by default). Only a scope that
    follows students up, and only for a student in its scope: the warehouse says whose
    student it is, not the caller."""
    if list_key not in LISTS:
        raise ValueError(f"unknown list {list_key!r}; the lists are {', '.join(LISTS)}")
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; the statuses are {', '.join(STATUSES)}")
    require_writer(scope, "follow-up statuses")
    _scope_rule(scope)
    if not student_key.strip():
        raise ValueError("say which student the status is for")
    at = at or datetime.now(timezone.utc).replace(microsecond=0)
    on = on or at.date()
    if on > at.date():
        raise ValueError(f"a status change cannot be dated after today ({on} > {at.date()})")
    found = run(warehouse, "followed_student", scope, {"student_id": student_key})
    if found.empty:
        raise ScopeError(f"student {student_key} is not one this account follows up")
    student = found.iloc[0]
    entry = FollowUp(str(student["student_key"]), list_key, status, on, by, note.strip(), at)
    with db.transaction() as con:
        con.execute(
            "insert into student_follow_ups (student_key, vendor_id, school_id, list, status, logged_on,"
            " logged_by, note, logged_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [entry.student_key, student["vendor_id"], student["school_id"], list_key, status, on.isoformat(),
             by, entry.note, at.isoformat()],
        )
    return entry


def _scope_rule(scope: Scope) -> tuple[str, list]:
    """The one rule for whose log entries a scope reads: an analyst and an evaluator every
    student's, a vendor its own students', a school its own schools' students'."""
    if not scope.reads_follow_up:
        raise ScopeError(
            "the follow-up lists name students: the district's analysts and evaluators, each vendor for its own and "
            "each school for its own"
        )
    if scope.role == "vendor":
        return "vendor_id = ?", [scope.vendor_id]
    if scope.role == "school":
        return f"school_id in ({', '.join('?' for _ in scope.school_ids)})", list(scope.school_ids)
    return "1 = 1", []


def _dimensions(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (filters or {}).items() if k in DIMENSIONS}


def _entry(row) -> FollowUp:
    return FollowUp(
        row["student_key"], row["list"], row["status"], date.fromisoformat(row["logged_on"]), row["logged_by"],
        row["note"], datetime.fromisoformat(row["logged_at"]),
    )
