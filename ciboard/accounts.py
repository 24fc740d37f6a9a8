"""Accounts, local sign-in and the audit log, in the app database. No Streamlit here: the CLI,
the dashboard and the tests share it.

Passwords are kept as salted scrypt hashes (the standard library's `hashlib.scrypt`, a
memory-hard function made to be slow to guess against). Repeated failures lock an account
for a while; a sign-in fails with the same words whether the name or the password was
wrong, so the page does not tell a guesser which accounts exist.
"""

import base64
import hashlib
import hmac
import json
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

    @property
    def scope(self) -> Scope:
        return Scope(self.role, self.vendor_id)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT)
    params = f"n={SCRYPT['n']},r={SCRYPT['r']},p={SCRYPT['p']}"
    return f"scrypt${params}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        method, params, salt, digest = stored.split("$")
        cost = {k: int(v) for k, v in (item.split("=") for item in params.split(","))}
    except ValueError:
        return False
    if method != "scrypt":
        return False
    return hmac.compare_digest(_scrypt(password, _unb64(salt), cost), _unb64(digest))


def _scrypt(password: str, salt: bytes, cost: dict[str, int]) -> bytes:
    memory = 128 * cost["r"] * (cost["n"] + cost["p"] + 2)
    return hashlib.scrypt(password.encode(), salt=salt, **cost, maxmem=memory + 1024 * 1024, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now()).replace(microsecond=0)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def _account(row) -> Account:
    return Account(row["username"], row["display_name"], row["role"], row["vendor_id"], row["email"])


def add_user(
    db: AppDB,
    username: str,
    *,
    role: str,
    display_name: str | None = None,
    vendor_id: str | None = None,
    email: str | None = None,
    password: str | None = None,
    now: datetime | None = None,
) -> Account:
    """A new account. Without a password it can sign in only through OIDC (by its e-mail)."""
    username = username.strip().lower()
    if not username or any(c.isspace() for c in username):
        raise AccountError("a user name is one word with no spaces")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    if (role == "vendor") != bool(vendor_id):
        raise AccountError("a vendor account needs --vendor, and only a vendor account has one")
    if password is not None:
        _check_password(password)
    with db.transaction() as con:
        if con.execute("select 1 from users where username = ?", [username]).fetchone():
            raise AccountError(f"there is already an account named {username}")
        if email and con.execute("select 1 from users where email = ?", [email]).fetchone():
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
    return Account(username, display_name or username, role, vendor_id or None, email or None)


def set_password(db: AppDB, username: str, password: str, *, now: datetime | None = None) -> None:
    """A new password; it also lifts a lockout."""
    _check_password(password)
    with db.transaction() as con:
        changed = con.execute(
            """update users set password_hash = ?, password_changed_at = ?, failed_attempts = 0, locked_until = null
            where username = ?""",
            [hash_password(password), _now(now).isoformat(), username.strip().lower()],
        ).rowcount
        if not changed:
            raise AccountError(f"no account named {username}")
        # The demo's list of passwords would now be wrong.
        con.execute("delete from demo_credentials where username = ?", [username.strip().lower()])


def unlock(db: AppDB, username: str, *, now: datetime | None = None) -> None:
    """Lifts a lockout without a new password; the lifting is audited."""
    name = username.strip().lower()
    with db.transaction() as con:
        row = con.execute("select * from users where username = ?", [name]).fetchone()
        if row is None:
            raise AccountError(f"no account named {username}")
        con.execute("update users set failed_attempts = 0, locked_until = null where username = ?", [name])
        _audit(con, None, "sign-in lock lifted", name, "ok", _now(now))


def set_disabled(db: AppDB, username: str, disabled: bool, *, now: datetime | None = None) -> None:
    with db.transaction() as con:
        changed = con.execute(
            "update users set disabled_at = ? where username = ?",
            [_now(now).isoformat() if disabled else None, username.strip().lower()],
        ).rowcount
        if not changed:
            raise AccountError(f"no account named {username}")


def users(db: AppDB) -> list[dict[str, Any]]:
    """Every account, without its password hash."""
    with db.connect() as con:
        rows = con.execute(
            """select username, display_name, email, role, vendor_id, password_hash is not null as has_password,
            disabled_at, locked_until, failed_attempts, created_at, password_changed_at
            from users order by role, vendor_id, username"""
        ).fetchall()
    return [dict(row) for row in rows]


def account(db: AppDB, username: str) -> Account | None:
    """The account, if it exists and is not disabled."""
    with db.connect() as con:
        row = con.execute(
            "select * from users where username = ? and disabled_at is null", [username.strip().lower()]
        ).fetchone()
    return _account(row) if row else None


def account_for_email(db: AppDB, email: str | None) -> Account | None:
    """The enabled account an identity provider's e-mail belongs to (OIDC sign-in)."""
    if not email:
        return None
    with db.connect() as con:
        row = con.execute("select * from users where email = ? and disabled_at is null", [email.strip()]).fetchone()
    return _account(row) if row else None


def authenticate(
    db: AppDB, settings: Settings, username: str, password: str, *, now: datetime | None = None
) -> Account:
    """The account these credentials open, or SignInError. Every attempt is audited."""
    now = _now(now)
    name = (username or "").strip().lower()
    with db.transaction() as con:
        row = con.execute("select * from users where username = ?", [name]).fetchone()
        if row is None:
            # Spend the same time as a real check, so timing does not tell which names exist.
            verify_password(password, hash_password("not an account"))
            _audit(con, None, "sign-in", f"unknown user name {name!r}", "failed", now)
            failure = SignInError(WRONG)
        elif row["disabled_at"]:
            _audit(con, _account(row), "sign-in", "account disabled", "failed", now)
            failure = SignInError("This account is disabled. Ask an administrator.")
        elif row["locked_until"] and datetime.fromisoformat(row["locked_until"]) > now:
            _audit(con, _account(row), "sign-in", "account locked", "failed", now)
            failure = SignInError(_locked_message(datetime.fromisoformat(row["locked_until"])))
        elif not verify_password(password, row["password_hash"]):
            failures = row["failed_attempts"] + 1
            locked = now + timedelta(minutes=settings.lockout_minutes) if failures >= settings.lockout_attempts else None
            con.execute(
                "update users set failed_attempts = ?, locked_until = ? where username = ?",
                [0 if locked else failures, locked.isoformat() if locked else None, name],
            )
            _audit(con, _account(row), "sign-in", "wrong password" + (", account locked" if locked else ""), "failed", now)
            failure = SignInError(_locked_message(locked) if locked else WRONG)
        else:
            con.execute("update users set failed_attempts = 0, locked_until = null where username = ?", [name])
            _audit(con, _account(row), "sign-in", "", "ok", now)
            return _account(row)
    # Raised after the transaction commits, so the failure and its audit record are kept.
    raise failure


def _locked_message(until: datetime) -> str:
    return f"Too many failed sign-ins: this account is locked until {until:%H:%M}. Try again then, or ask an administrator."


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
            "select * from audit_log where ? is null or action = ? order by event_id desc limit ?",
            [action, action, limit],
        ).fetchall()
    return [dict(row) for row in rows]


def create_demo_accounts(db: AppDB, vendors: list[tuple[str, str]]) -> dict[str, str]:
    """One account per role and one per vendor, with fresh random passwords: {user name: password}.
    The passwords are kept in `demo_credentials` so the demo's sign-in page can list them."""
    people = [
        ("analyst", "Data analyst", "analyst", None),
        ("facilitator", "CI facilitator", "facilitator", None),
        ("admin", "District administrator", "admin", None),
        *[(f"vendor-{vid.lower()}", f"{name} (vendor)", "vendor", vid) for vid, name in vendors],
    ]
    created = {}
    for username, display_name, role, vendor_id in people:
        password = generate_password()
        add_user(db, username, role=role, display_name=display_name, vendor_id=vendor_id, password=password)
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
            order by case u.role when 'analyst' then 0 when 'facilitator' then 1 when 'admin' then 2 else 3 end,
            u.vendor_id"""
        ).fetchall()
    return [dict(row) for row in rows]
