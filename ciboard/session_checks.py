"""Service checked against district records: the district's decisions about flagged sessions.

The checks themselves are the `session_checks` view (sql/views/session_checks.sql): one row per
attended session and check it fails. Whether a flag counts toward payment is decided here, in the
app database: an analyst or admin accepts or rejects flags in bulk or one session at a time, with a
reason, and every decision is kept (a later one supersedes, none is deleted). The warehouse cannot read the app
database, so the query layer binds the flags in force as two lists of keys (`decided`) into every
view that counts service, and the dashboard keys its cache on `revision`.
"""

from datetime import date, datetime, timezone

from ciboard import accounts, queries
from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.warehouse import Warehouse

CHECKS = {
    "calendar": "District calendar",
    "enrollment": "Enrollment",
    "attendance": "School attendance",
    "plausibility": "Plausibility",
}
DECISIONS = ("accepted", "rejected")
DISTRICT = Scope("analyst")  # decisions are the district's: they resolve every vendor's flags


def describe(settings) -> dict[str, str]:
    """What each check flags, in the district's settings."""
    return {
        "calendar": "an attended session on a day a break or closure closes the student's school",
        "enrollment": "a session outside the student's enrollment with the vendor (roster dates), or in a week the "
        "district's attendance has the student enrolled 0 days",
        "attendance": "a session in a week the district recorded the student with 0 days present at school",
        "plausibility": "more sessions for a student in a day than the vendor's contract allows (else "
        f"{settings.max_sessions_per_day}), more than {settings.max_session_minutes} minutes attended in one session, "
        "or a tutor in two places at once",
    }


def decided(db: AppDB) -> dict[str, list[str]]:
    """The flags in force, by their latest decision: {"accepted": [...], "rejected": [...]}."""
    with db.connect() as con:
        rows = con.execute(
            "select flag_key, decision from session_check_decisions as d where decision_id ="
            " (select max(decision_id) from session_check_decisions where flag_key = d.flag_key)"
        ).fetchall()
    found: dict[str, list[str]] = {d: [] for d in DECISIONS}
    for key, decision in rows:
        found[decision].append(key)
    return found


def revision(db: AppDB) -> int:
    """Changes whenever a decision is added: what a cached count of service must be keyed on."""
    with db.connect() as con:
        return con.execute("select coalesce(max(decision_id), 0) from session_check_decisions").fetchone()[0]


def decide(
    db: AppDB,
    warehouse: Warehouse,
    who: Account,
    *,
    vendor_id: str,
    check: str,
    decision: str,
    reason: str,
    start: date | None = None,
    end: date | None = None,
    only_pending: bool = True,
    at: datetime | None = None,
) -> int:
    """Accepts or rejects, with a reason, every flag of one vendor and check in the dates (only
    those not yet decided, unless `only_pending` is off), and audits it: how many. Analysts and
    admins only; the flags are read from the warehouse, never taken from the caller."""
    _may_decide(who, check, decision, reason)
    if start and end and start > end:
        raise ValueError(f"start {start} is after end {end}")
    flags = queries.run(
        warehouse, "session_checks", DISTRICT,
        {"vendor_id": vendor_id, "check": check, "start": start, "end": end},
    )
    if only_pending:
        flags = flags[flags["decision"] == "pending"]
    keys = sorted(set(flags["flag_key"]))
    if not keys:
        return 0
    _record(db, who, keys, vendor_id, check, decision, reason,
            {"vendor_id": vendor_id, "check": check, "start": start, "end": end, "flags": len(keys)}, at)
    return len(keys)


def decide_one(
    db: AppDB, warehouse: Warehouse, who: Account, flag_key: str, *, decision: str, reason: str,
    at: datetime | None = None,
) -> dict:
    """Accepts or rejects one flagged session under one check, with a reason, whatever was decided
    about it before (the earlier decision stays, superseded), and audits it: the flag as the
    warehouse has it. Analysts and admins only; a key the warehouse does not flag is refused."""
    vendor_id, *_, check = str(flag_key).split("|") if "|" in str(flag_key) else ("", "")
    _may_decide(who, check if check in CHECKS else "", decision, reason)
    flags = queries.run(warehouse, "session_checks", DISTRICT, {"vendor_id": vendor_id, "check": check})
    found = flags[flags["flag_key"] == flag_key]
    if found.empty:
        raise ValueError(f"no flagged session {flag_key!r}: it may have been re-sent without the problem")
    flag = found.iloc[0]
    _record(db, who, [flag_key], vendor_id, check, decision, reason,
            {"vendor_id": vendor_id, "check": check, "student": flag["student_key"],
             "session_date": flag["session_date"], "tutor_id": flag["tutor_id"], "flags": 1}, at)
    return flag.to_dict()


def _may_decide(who: Account, check: str, decision: str, reason: str) -> None:
    if who.role not in ("analyst", "admin"):
        raise ScopeError("flagged sessions are accepted or rejected by the district's analysts and admins")
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}; the checks are {', '.join(CHECKS)}")
    if decision not in DECISIONS:
        raise ValueError(f"a decision is accepted or rejected, not {decision!r}")
    if not reason.strip():
        raise ValueError("say why: a decision about flagged sessions needs a reason")


def _record(db: AppDB, who: Account, keys: list[str], vendor_id: str, check: str, decision: str, reason: str,
            details: dict, at: datetime | None) -> None:
    """The decisions and their audit entry, in one transaction: both land or neither."""
    at = at or datetime.now(timezone.utc).replace(microsecond=0)
    with db.transaction() as con:
        con.executemany(
            "insert into session_check_decisions (flag_key, vendor_id, check_name, decision, reason, decided_by,"
            " decided_at) values (?, ?, ?, ?, ?, ?, ?)",
            [(key, vendor_id, check, decision, reason.strip(), who.username, at.isoformat()) for key in keys],
        )
        accounts._audit(con, who, f"session check {decision[:-2]}", {**details, "reason": reason.strip()}, "ok", at)


def history(db: AppDB, flag_key: str) -> list[dict]:
    """Every decision about one flag, oldest first."""
    with db.connect() as con:
        rows = con.execute(
            "select * from session_check_decisions where flag_key = ? order by decision_id", [flag_key]
        ).fetchall()
    return [dict(row) for row in rows]
