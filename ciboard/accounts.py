"""Accounts, local sign-in and the audit log, in the app database. No Streamlit here: the CLI,
the dashboard and the tests share it.

Passwords are kept as salted scrypt hashes (the standard library's `hashlib.scrypt`, a
memory-hard function made to be slow to guess against). A sign-in tells a guesser nothing
about which accounts exist: every checked attempt costs one scrypt run, whatever name it
gives, and fails with the same words unless the password was right.

Failed sign-ins are counted per user name (an account or not) and client address. After a few,
that address waits before trying that name again, twice as long after each further failure;
guesses from many addresses make every failing address wait from its first failure. An address
that has not failed is always let try, so nobody elsewhere can lock the owner out.
"""

import base64
import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ciboard.access import ROLES, Scope
from ciboard.appdb import AppDB
from ciboard.settings import Settings

# scrypt at N=2^15, r=8: 32 MiB and about a tenth of a second per guess on a laptop core.
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
MIN_PASSWORD_LENGTH = 10
WRONG = "That user name and password do not match an account."
DISABLED = "This account is disabled. Ask an administrator."
WAIT = "Too many failed sign-ins with this user name from here. Try again in {wait}."
# A day without a failure from an address forgets that address's failures.
FORGET_FAILURES_AFTER = timedelta(days=1)
# Where the server does not know the client's address (a local browser, or a proxy that does not
# pass it on), all such attempts count as coming from one address.
UNKNOWN_ADDRESS = ""
# Generated passwords leave out what is easy to misread: 0 O o Q D, 1 l I i j, 5 S s, 2 Z z, 8 B, u v.
PASSWORD_ALPHABET = "abcdefghkmnpqrtwxy" "ACEFGHJKLMNPRTWXY" "34679"
PASSWORD_CHARACTERS = 16  # 85 bits


class AccountError(ValueError):
    """A change to accounts that cannot be made; the message says why."""


class SignInError(PermissionError):
    """A sign-in that failed; the message is safe to show on the sign-in page."""


@dataclass(frozen=True)
class Account:
    username: str
    display_name: str
    role: str
    vendor_id: str | None = None
    email: str | None = None
    school_ids: tuple[str, ...] = ()

    @property
    def scope(self) -> Scope:
        return Scope(
            self.role,
            self.vendor_id,
            school_ids=self.school_ids,
            evaluator=self.username if self.role == "evaluator" else None,
        )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT)
    params = f"n={SCRYPT['n']},r={SCRYPT['r']},p={SCRYPT['p']}"
    return f"scrypt${params}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether the password matches the stored hash. Without a usable hash (no such account, or one
    that signs in only through OIDC) it checks against a stand-in, so every answer costs one scrypt run."""
    try:
        method, params, salt, digest = (stored or "").split("$")
        cost = {k: int(v) for k, v in (item.split("=") for item in params.split(","))}
        usable = method == "scrypt"
    except ValueError:
        usable = False
    if not usable:
        method, params, salt, digest = _STAND_IN.split("$")
        cost = SCRYPT
    matches = hmac.compare_digest(_scrypt(password, _unb64(salt), cost), _unb64(digest))
    return matches and usable


def _scrypt(password: str, salt: bytes, cost: dict[str, int]) -> bytes:
    memory = 128 * cost["r"] * (cost["n"] + cost["p"] + 2)
    return hashlib.scrypt(password.encode(), salt=salt, **cost, maxmem=memory + 1024 * 1024, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


# No password's scrypt digest is 32 zero bytes, in practice: checking against this costs what a real check costs.
_STAND_IN = f"scrypt$n={SCRYPT['n']},r={SCRYPT['r']},p={SCRYPT['p']}${_b64(bytes(16))}${_b64(bytes(32))}"


def generate_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_CHARACTERS))


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now()).replace(microsecond=0)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def _account(con, row) -> Account:
    schools = [s for (s,) in con.execute(
        "select school_id from user_schools where username = ? order by school_id", [row["username"]])]
    return Account(row["username"], row["display_name"], row["role"], row["vendor_id"], row["email"], tuple(schools))


def _school_ids(role: str, school_ids) -> tuple[str, ...]:
    schools = tuple(sorted({str(s).strip() for s in (school_ids or ()) if str(s).strip()}))
    if (role == "school") != bool(schools):
        raise AccountError("a school account needs at least one --school, and only a school account has any")
    return schools


def add_user(
    db: AppDB,
    username: str,
    *,
    role: str,
    display_name: str | None = None,
    vendor_id: str | None = None,
    school_ids: list[str] | tuple[str, ...] = (),
    email: str | None = None,
    password: str | None = None,
    now: datetime | None = None,
) -> Account:
    """A new account. Without a password it can sign in only through OIDC (by its e-mail).
    A school account reads the schools in `school_ids`; the ids are the district's own, checked
    against its schools by the caller that knows them (the CLI and the Accounts page)."""
    username = username.strip().lower()
    if not username or any(c.isspace() for c in username):
        raise AccountError("a user name is one word with no spaces")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    if (role == "vendor") != bool(vendor_id):
        raise AccountError("a vendor account needs --vendor, and only a vendor account has one")
    schools = _school_ids(role, school_ids)
    if password is not None:
        _check_password(password)
    with db.transaction() as con:
        if con.execute("select 1 from users where username = ?", [username]).fetchone():
            raise AccountError(f"there is already an account named {username}")
        if email and con.execute("select 1 from users where lower(email) = lower(?)", [email]).fetchone():
            raise AccountError(f"another account already has the e-mail {email}")
        con.execute(
            """insert into users (username, display_name, email, role, vendor_id, password_hash, created_at,
            password_changed_at) values (?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                username, display_name or username, email or None, role, vendor_id or None,
                hash_password(password) if password else None, _now(now).isoformat(),
                _now(now).isoformat() if password else None,
            ],
        )
        con.executemany("insert into user_schools (username, school_id) values (?, ?)", [(username, s) for s in schools])
    return Account(username, display_name or username, role, vendor_id or None, email or None, schools)


def set_schools(db: AppDB, username: str, school_ids, *, by: Account | None = None, now: datetime | None = None) -> None:
    """A school account's schools, all replaced at once; audited as done `by` (None: the command line)."""
    name = username.strip().lower()
    with db.transaction() as con:
        row = con.execute("select role from users where username = ?", [name]).fetchone()
        if row is None:
            raise AccountError(f"no account named {username}")
        schools = _school_ids(row["role"], school_ids)
        before = [s for (s,) in con.execute("select school_id from user_schools where username = ? order by 1", [name])]
        con.execute("delete from user_schools where username = ?", [name])
        con.executemany("insert into user_schools (username, school_id) values (?, ?)", [(name, s) for s in schools])
        _audit(con, by, "account schools changed", {"account": name, "before": before, "after": list(schools)}, "ok", _now(now))


def set_password(db: AppDB, username: str, password: str, *, now: datetime | None = None) -> None:
    """A new password; it also forgets the account's failed sign-ins, so nobody has to wait."""
    _check_password(password)
    name = username.strip().lower()
    with db.transaction() as con:
        changed = con.execute(
            "update users set password_hash = ?, password_changed_at = ? where username = ?",
            [hash_password(password), _now(now).isoformat(), name],
        ).rowcount
        if not changed:
            raise AccountError(f"no account named {username}")
        con.execute("delete from sign_in_failures where username = ?", [name])
        # The demo's list of passwords would now be wrong.
        con.execute("delete from demo_credentials where username = ?", [name])


def unlock(db: AppDB, username: str, *, now: datetime | None = None, by: Account | None = None) -> None:
    """Forgets the account's failed sign-ins, so no address has to wait, and keeps its password.
    Audited as done `by` that account (None: from the command line)."""
    name = username.strip().lower()
    with db.transaction() as con:
        if con.execute("select 1 from users where username = ?", [name]).fetchone() is None:
            raise AccountError(f"no account named {username}")
        con.execute("delete from sign_in_failures where username = ?", [name])
        _audit(con, by, "sign-in lock lifted", name, "ok", _now(now))


def set_disabled(db: AppDB, username: str, disabled: bool, *, now: datetime | None = None) -> None:
    with db.transaction() as con:
        changed = con.execute(
            "update users set disabled_at = ? where username = ?",
            [_now(now).isoformat() if disabled else None, username.strip().lower()],
        ).rowcount
        if not changed:
            raise AccountError(f"no account named {username}")


def users(db: AppDB, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every account, without its password hash; with its failed sign-ins of the last day (from
    every address) and the time until which some address must wait to try it (None: none waits)."""
    now = _now(now)
    with db.connect() as con:
        rows = con.execute(
            """select username, display_name, email, role, vendor_id,
            case when password_hash is null then 0 else 1 end as has_password,
            disabled_at, created_at, password_changed_at,
            (select coalesce(sum(failures), 0) from sign_in_failures as f
             where f.username = users.username and f.last_failed_at >= ?) as failed_sign_ins,
            (select max(waits_until) from sign_in_failures as f
             where f.username = users.username and f.waits_until > ?) as throttled_until
            from users order by role, vendor_id, username""",
            [(now - FORGET_FAILURES_AFTER).isoformat(), now.isoformat()],
        ).fetchall()
        schools: dict[str, list[str]] = {}
        for username, school_id in con.execute("select username, school_id from user_schools order by username, school_id"):
            schools.setdefault(username, []).append(school_id)
    # The schools joined here, not in SQL: SQLite's group_concat is PostgreSQL's string_agg.
    return [
        {**{k: row[k] for k in ("username", "display_name", "email", "role", "vendor_id")},
         "school_ids": ", ".join(schools.get(row["username"], ())) or None, **dict(row)}
        for row in rows
    ]


def account(db: AppDB, username: str) -> Account | None:
    """The account, if it exists and is not disabled."""
    with db.connect() as con:
        row = con.execute(
            "select * from users where username = ? and disabled_at is null", [username.strip().lower()]
        ).fetchone()
        return _account(con, row) if row else None


def school_scopes(db: AppDB) -> list[Scope]:
    """What the enabled school accounts read, as each one's sign-in scopes it, each scope once
    (two accounts of the same schools share it)."""
    with db.connect() as con:
        rows = con.execute("select * from users where role = 'school' and disabled_at is null order by username").fetchall()
        scopes = {str(scope): scope for scope in (_account(con, row).scope for row in rows)}
    return list(scopes.values())


def account_for_email(db: AppDB, email: str | None) -> Account | None:
    """The enabled account an identity provider's e-mail belongs to (OIDC sign-in)."""
    if not email:
        return None
    with db.connect() as con:
        row = con.execute("select * from users where lower(email) = lower(?) and disabled_at is null", [email.strip()]).fetchone()
        return _account(con, row) if row else None


def authenticate(
    db: AppDB,
    settings: Settings,
    username: str,
    password: str,
    *,
    address: str | None = None,
    now: datetime | None = None,
) -> Account:
    """The account these credentials open, or SignInError. `address` is the client's (None where the
    server does not know it). Every attempt is audited with its address."""
    now = _now(now)
    name = (username or "").strip().lower()
    where = address or UNKNOWN_ADDRESS
    place = address or "an unknown address"
    with db.transaction() as con:
        con.execute("delete from sign_in_failures where last_failed_at < ?", [(now - FORGET_FAILURES_AFTER).isoformat()])
        row = con.execute("select * from users where username = ?", [name]).fetchone()
        who = _account(con, row) if row else None
        waiting = con.execute(
            "select failures, waits_until from sign_in_failures where username = ? and address = ? and waits_until > ?",
            [name, where, now.isoformat()],
        ).fetchone()
        if waiting:
            # Refused unchecked, with words that hold for any name: the wait is this address's own doing.
            until = datetime.fromisoformat(waiting["waits_until"])
            detail = f"refused: {waiting['failures']} failed sign-ins as {name!r} from {place}; it may try again at {until:%H:%M:%S}"
            _audit(con, who, "sign-in", detail, "throttled", now)
            failure = SignInError(WAIT.format(wait=_duration(until - now)))
        elif not verify_password(password, row["password_hash"] if row else None):
            _fail(con, settings, name, where, now)
            _audit(con, who, "sign-in", (f"unknown user name {name!r}" if row is None else "wrong password") + f", from {place}",
                   "failed", now)
            failure = SignInError(WRONG)
        elif row["disabled_at"]:
            # Said only to the right password, so a guesser learns nothing of the account.
            _audit(con, who, "sign-in", f"account disabled, from {place}", "failed", now)
            failure = SignInError(DISABLED)
        else:
            con.execute("delete from sign_in_failures where username = ? and address = ?", [name, where])
            _audit(con, who, "sign-in", f"from {place}", "ok", now)
            return who
    # Raised after the transaction commits, so the failure and its audit record are kept.
    raise failure


def _fail(con, settings: Settings, name: str, address: str, now: datetime) -> None:
    """Counts a failed sign-in as `name` from `address`, and sets how long that address waits."""
    failures = 1 + (con.execute(
        "select failures from sign_in_failures where username = ? and address = ?", [name, address]
    ).fetchone() or [0])[0]
    everywhere = 1 + con.execute(
        "select coalesce(sum(failures), 0) from sign_in_failures where username = ?", [name]
    ).fetchone()[0]
    free = settings.sign_in_free_failures if everywhere < settings.sign_in_account_failures else 1
    waits_until = None
    if failures >= free:
        doublings = min(failures - free, 32)
        seconds = min(settings.sign_in_delay_seconds * 2**doublings, settings.sign_in_max_delay_minutes * 60)
        waits_until = (now + timedelta(seconds=seconds)).isoformat()
    con.execute(
        """insert into sign_in_failures (username, address, failures, last_failed_at, waits_until)
        values (?, ?, ?, ?, ?) on conflict (username, address) do update
        set failures = excluded.failures, last_failed_at = excluded.last_failed_at, waits_until = excluded.waits_until""",
        [name, address, failures, now.isoformat(), waits_until],
    )


def _duration(wait: timedelta) -> str:
    seconds = math.ceil(wait.total_seconds())
    if seconds < 120:
        return f"{seconds} second" + ("s" if seconds != 1 else "")
    return f"{math.ceil(seconds / 60)} minutes"


def audit(
    db: AppDB,
    who: Account | None,
    action: str,
    detail: str | dict = "",
    outcome: str = "ok",
    *,
    now: datetime | None = None,
) -> None:
    with db.transaction() as con:
        _audit(con, who, action, detail, outcome, _now(now))


def _audit(con, who: Account | None, action: str, detail: str | dict, outcome: str, now: datetime) -> None:
    text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True, default=str)
    con.execute(
        "insert into audit_log (at, username, role, vendor_id, action, detail, outcome) values (?, ?, ?, ?, ?, ?, ?)",
        [now.isoformat(), who.username if who else None, who.role if who else None,
         who.vendor_id if who else None, action, text, outcome],
    )


def audit_log(db: AppDB, *, limit: int = 1000, action: str | None = None) -> list[dict[str, Any]]:
    """The newest audit records first."""
    with db.connect() as con:
        rows = con.execute(
            "select * from audit_log where cast(? as text) is null or action = ? order by event_id desc limit ?",
            [action, action, limit],
        ).fetchall()
    return [dict(row) for row in rows]


def create_demo_accounts(
    db: AppDB, vendors: list[tuple[str, str]], schools: list[tuple[str, str]] = ()
) -> dict[str, str]:
    """One account per role and one per vendor, with fresh random passwords: {user name: password}.
    `schools` ((id, name), the first two) make the one school account. The passwords are kept in
    `demo_credentials` so the demo's sign-in page can list them."""
    school_ids = tuple(sid for sid, _ in list(schools)[:2])
    people = [
        ("analyst", "Data analyst", "analyst", None, ()),
        ("facilitator", "CI facilitator", "facilitator", None, ()),
        ("admin", "District administrator", "admin", None, ()),
        ("evaluator", "Independent evaluator", "evaluator", None, ()),
        *([("school", " and ".join(name for _, name in list(schools)[:2]) + " (school)", "school", None, school_ids)]
          if school_ids else []),
        *[(f"vendor-{vid.lower()}", f"{name} (vendor)", "vendor", vid, ()) for vid, name in vendors],
    ]
    created = {}
    for username, display_name, role, vendor_id, school_ids in people:
        password = generate_password()
        add_user(db, username, role=role, display_name=display_name, vendor_id=vendor_id, school_ids=school_ids,
                 password=password)
        created[username] = password
    with db.transaction() as con:
        con.executemany("insert into demo_credentials values (?, ?)", list(created.items()))
    return created


def demo_credentials(db: AppDB) -> list[dict[str, str]]:
    """The demo's accounts with their passwords; empty for every database the demo did not make."""
    with db.connect() as con:
        rows = con.execute(
            """select c.username, c.password, u.role, u.display_name from demo_credentials as c
            inner join users as u using (username) where u.disabled_at is null
            order by case u.role when 'analyst' then 0 when 'facilitator' then 1 when 'admin' then 2
            when 'evaluator' then 3 when 'school' then 4 else 5 end,
            u.vendor_id"""
        ).fetchall()
    return [dict(row) for row in rows]
