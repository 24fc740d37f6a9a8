"""Accepting and rejecting flagged sessions: an analyst or admin decides the flags of one vendor
and check in bulk, or one session at a time, with a reason. The flags are read from the
warehouse through the query layer, never taken from the caller; the decisions are kept in the
app database (ciboard.session_checks reads the ones in force).
"""

from datetime import date, datetime, timezone

from ciboard import accounts, queries
from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.session_checks import CHECKS, DECISIONS
from ciboard.warehouse import Warehouse

DISTRICT = Scope("analyst")  # decisions are the district's: they resolve every vendor's flags


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
