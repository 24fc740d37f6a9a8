"""Service checked against district records: the district's decisions about flagged sessions.

The checks themselves are the `session_checks` view (sql/views/session_checks.sql): one row per
attended session and check it fails. Whether a flag counts toward payment is kept in the app
database: an analyst or admin accepts or rejects flags in bulk or one session at a time, with a
reason (ciboard.session_decisions), and every decision is kept (a later one supersedes, none is
deleted). The warehouse cannot read the app database, so the query layer binds the flags in
force as two lists of keys (`decided`) into every view that counts service, and the dashboard
keys its cache on `revision`.
"""

from ciboard.appdb import AppDB

CHECKS = {
    "calendar": "District calendar",
    "enrollment": "Enrollment",
    "attendance": "School attendance",
    "plausibility": "Plausibility",
}
DECISIONS = ("accepted", "rejected")


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


def history(db: AppDB, flag_key: str) -> list[dict]:
    """Every decision about one flag, oldest first."""
    with db.connect() as con:
        rows = con.execute(
            "select * from session_check_decisions where flag_key = ? order by decision_id", [flag_key]
        ).fetchall()
    return [dict(row) for row in rows]
