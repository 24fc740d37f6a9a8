"""Accounts and sign-in: password hashing, throttling, disabled accounts, session expiry, the
sign-in page, OIDC through st.user, the demo's accounts and the `ciboard users` command."""

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from ciboard import accounts
from ciboard.access import Scope
from ciboard.appdb import AppDB
from ciboard.cli import main
from ciboard.settings import Settings
from conftest import ROOT, signed_in

APP = str(ROOT / "main.py")
SETTINGS = Settings(
    sign_in_free_failures=3, sign_in_delay_seconds=30, sign_in_max_delay_minutes=5, sign_in_account_failures=10
)
NOON = datetime(2026, 3, 2, 12, 0)
HOME, ELSEWHERE = "198.51.100.7", "203.0.113.9"


@pytest.fixture
def db(tmp_path: Path, app_db_url, monkeypatch) -> AppDB:
    """An app database whose new passwords hash at a small scrypt cost: the throttling tests sign
    in dozens of times, each a tenth of a second at the real cost. The real cost is the hash
    test's, which reads it from the stored hash; verifying reads the cost from the hash too."""
    monkeypatch.setattr(accounts, "SCRYPT", {"n": 2**4, "r": 8, "p": 1})
    return AppDB(app_db_url or tmp_path / "app.sqlite3")


def test_a_password_hash_is_salted_slow_scrypt_and_verifies():
    first, second = accounts.hash_password("correct horse"), accounts.hash_password("correct horse")
    assert first != second, "each hash has its own salt"
    method, params, salt, digest = first.split("$")
    assert (method, params) == ("scrypt", "n=32768,r=8,p=1")
    # The stored digest is scrypt itself, recomputed here from the standard library.
    import base64

    expected = hashlib.scrypt(b"correct horse", salt=base64.b64decode(salt), n=2**15, r=8, p=1, maxmem=64 << 20, dklen=32)
    assert base64.b64decode(digest) == expected
    assert accounts.verify_password("correct horse", first)
    assert not accounts.verify_password("correct horsE", first)
    assert not accounts.verify_password("correct horse", None)
    assert not accounts.verify_password("correct horse", "md5$abc")


def test_no_password_is_stored_in_clear(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    with db.connect() as con:
        tables = (
            "select table_name from information_schema.tables where table_schema = 'public'" if db.url
            else "select name from sqlite_master where type = 'table'"
        )
        dump = "\n".join(repr(tuple(row)) for (table,) in con.execute(tables).fetchall()
                         for row in con.execute(f"select * from {table}"))
    assert "users" in dump or "ana" in dump
    assert "a long password" not in dump


def attempt(db, name: str, password: str, *, at: datetime, address: str | None = ELSEWHERE) -> str:
    """What the sign-in page would say: "ok", or the refusal's words."""
    try:
        accounts.authenticate(db, SETTINGS, name, password, address=address, now=at)
    except accounts.SignInError as error:
        return str(error)
    return "ok"


def test_sign_in_with_the_right_password_only(db):
    accounts.add_user(db, "Ana", role="analyst", password="a long password", display_name="Ana Analyst")
    account = accounts.authenticate(db, SETTINGS, " ANA ", "a long password", now=NOON)
    assert account == accounts.Account("ana", "Ana Analyst", "analyst")
    assert account.scope == Scope("analyst")
    with pytest.raises(accounts.SignInError) as wrong:
        accounts.authenticate(db, SETTINGS, "ana", "a wrong password", now=NOON)
    with pytest.raises(accounts.SignInError) as unknown:
        accounts.authenticate(db, SETTINGS, "nobody", "a long password", now=NOON)
    assert str(wrong.value) == str(unknown.value), "the page must not tell which user names exist"
    log = accounts.audit_log(db)
    assert [(r["action"], r["outcome"]) for r in log] == [("sign-in", "failed"), ("sign-in", "failed"), ("sign-in", "ok")]
    assert "a wrong password" not in json.dumps(log)


def test_every_sign_in_costs_one_scrypt_run_whoever_it_names(db, monkeypatch):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    accounts.add_user(db, "gone", role="analyst", password="a long password")
    accounts.set_disabled(db, "gone", True)
    accounts.add_user(db, "sso", role="facilitator", email="sso@district.example")  # no local password
    runs = []
    scrypt = accounts._scrypt
    monkeypatch.setattr(accounts, "_scrypt", lambda *args: runs.append(args) or scrypt(*args))
    cases = [
        ("nobody", "a long password"), ("ana", "a wrong password"), ("ana", "a long password"),
        ("gone", "a wrong password"), ("gone", "a long password"), ("sso", "a long password"),
    ]
    counted = {}
    for name, password in cases:
        runs.clear()
        attempt(db, name, password, at=NOON)
        counted[name, password] = len(runs)
    assert counted == {case: 1 for case in cases}


def test_a_disabled_account_says_so_only_to_its_right_password(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    accounts.set_disabled(db, "ana", True)
    assert attempt(db, "ana", "a wrong password", at=NOON) == accounts.WRONG
    assert attempt(db, "ana", "a long password", at=NOON) == accounts.DISABLED


def test_failures_from_one_address_make_it_wait_twice_as_long_each_time(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    at = NOON
    for _ in range(3):
        assert attempt(db, "ana", "guess", at=at) == accounts.WRONG
    # From the third failure on, each one makes this address wait, up to the cap of 5 minutes.
    for wait in (30, 60, 120, 240, 300, 300):
        refused = attempt(db, "ana", "a long password", at=at + timedelta(seconds=wait - 1))
        assert refused == accounts.WAIT.format(wait="1 second"), wait
        assert attempt(db, "ana", "guess", at=at + timedelta(seconds=wait)) == accounts.WRONG
        at += timedelta(seconds=wait)
    assert attempt(db, "ana", "a long password", at=at + timedelta(seconds=300)) == "ok"
    # A success forgets this address's failures.
    assert attempt(db, "ana", "guess", at=at + timedelta(seconds=301)) == accounts.WRONG
    assert attempt(db, "ana", "a long password", at=at + timedelta(seconds=302)) == "ok"


def test_the_wait_is_said_in_seconds_then_minutes(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    for _ in range(3):
        attempt(db, "ana", "guess", at=NOON)
    assert attempt(db, "ana", "guess", at=NOON) == accounts.WAIT.format(wait="30 seconds")
    assert attempt(db, "ana", "guess", at=NOON + timedelta(seconds=30)) == accounts.WRONG
    assert attempt(db, "ana", "guess", at=NOON + timedelta(seconds=31)) == accounts.WAIT.format(wait="59 seconds")
    assert attempt(db, "ana", "guess", at=NOON + timedelta(seconds=90)) == accounts.WRONG
    assert attempt(db, "ana", "guess", at=NOON + timedelta(seconds=91)) == accounts.WAIT.format(wait="119 seconds")
    assert attempt(db, "ana", "guess", at=NOON + timedelta(seconds=210)) == accounts.WRONG
    assert attempt(db, "ana", "guess", at=NOON + timedelta(seconds=211)) == accounts.WAIT.format(wait="4 minutes")


def test_a_stranger_cannot_lock_the_owner_out(db):
    accounts.add_user(db, "admin", role="admin", password="a long password")
    for second in range(0, 600, 3):
        attempt(db, "admin", "guess", at=NOON + timedelta(seconds=second), address=ELSEWHERE)
    assert attempt(db, "admin", "a long password", at=NOON + timedelta(seconds=600), address=ELSEWHERE) != "ok"
    assert attempt(db, "admin", "a typo", at=NOON + timedelta(seconds=600), address=HOME) == accounts.WRONG
    assert attempt(db, "admin", "a long password", at=NOON + timedelta(seconds=601), address=HOME) == "ok"


def test_guessing_from_many_addresses_slows_the_account_down_but_never_locks_it(db):
    accounts.add_user(db, "admin", role="admin", password="a long password")
    for i in range(12):
        assert attempt(db, "admin", "guess", at=NOON, address=f"10.0.0.{i}") == accounts.WRONG
    # Ten failures in all: from then on an address waits after its first failure.
    assert attempt(db, "admin", "guess", at=NOON, address="10.0.0.11") == accounts.WAIT.format(wait="30 seconds")
    assert attempt(db, "admin", "guess", at=NOON, address="10.0.0.0") == accounts.WRONG
    assert attempt(db, "admin", "guess", at=NOON, address="10.0.0.0") == accounts.WAIT.format(wait="60 seconds")
    # The owner, at an address that has not failed, is let in at once; after a typo, half a minute later.
    assert attempt(db, "admin", "a typo", at=NOON, address=HOME) == accounts.WRONG
    assert attempt(db, "admin", "a long password", at=NOON, address=HOME) == accounts.WAIT.format(wait="30 seconds")
    assert attempt(db, "admin", "a long password", at=NOON + timedelta(seconds=30), address=HOME) == "ok"


def test_names_that_are_no_account_are_answered_and_slowed_alike(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    answers = {
        name: [attempt(db, name, "guess", at=NOON + timedelta(seconds=s)) for s in (0, 1, 2, 3, 32, 33)]
        for name in ("ana", "nobody")
    }
    assert answers["ana"] == answers["nobody"]
    assert answers["ana"] == [accounts.WRONG] * 3 + [accounts.WAIT.format(wait="29 seconds"), accounts.WRONG,
                                                     accounts.WAIT.format(wait="59 seconds")]


def test_every_attempt_is_audited_with_its_address(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    for _ in range(4):
        attempt(db, "ana", "guess", at=NOON)
    attempt(db, "nobody", "guess", at=NOON, address=None)
    attempt(db, "ana", "a long password", at=NOON, address=HOME)
    log = [(r["username"], r["action"], r["detail"], r["outcome"]) for r in reversed(accounts.audit_log(db))]
    assert log == [
        *[("ana", "sign-in", f"wrong password, from {ELSEWHERE}", "failed")] * 3,
        ("ana", "sign-in", f"refused: 3 failed sign-ins as 'ana' from {ELSEWHERE}; it may try again at 12:00:30",
         "throttled"),
        (None, "sign-in", "unknown user name 'nobody', from an unknown address", "failed"),
        ("ana", "sign-in", f"from {HOME}", "ok"),
    ]


def test_failures_are_forgotten_after_a_quiet_day(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    for _ in range(3):
        attempt(db, "ana", "guess", at=NOON)
    tomorrow = NOON + timedelta(days=1, seconds=1)
    assert [attempt(db, "ana", "guess", at=tomorrow) for _ in range(3)] == [accounts.WRONG] * 3
    with db.connect() as con:
        assert con.execute("select count(*) from sign_in_failures").fetchone()[0] == 1


def test_attempts_from_an_unknown_address_count_as_one_address(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    for _ in range(3):
        attempt(db, "ana", "guess", at=NOON, address=None)
    assert attempt(db, "ana", "a long password", at=NOON, address=None) == accounts.WAIT.format(wait="30 seconds")
    assert attempt(db, "ana", "a long password", at=NOON, address=HOME) == "ok"


def test_unlock_lifts_the_waits_and_keeps_the_password(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    for _ in range(3):
        attempt(db, "ana", "guess", at=NOON)
    [row] = accounts.users(db, now=NOON)
    assert (row["failed_sign_ins"], row["throttled_until"]) == (3, "2026-03-02T12:00:30")
    accounts.unlock(db, "Ana", now=NOON)
    [row] = accounts.users(db, now=NOON)
    assert (row["failed_sign_ins"], row["throttled_until"]) == (0, None)
    assert attempt(db, "ana", "a long password", at=NOON) == "ok"
    assert ("sign-in lock lifted", "ana") in {(r["action"], r["detail"]) for r in accounts.audit_log(db)}
    with pytest.raises(accounts.AccountError, match="no account named nobody"):
        accounts.unlock(db, "nobody")


def test_a_new_password_lifts_the_waits_too(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    for _ in range(3):
        attempt(db, "ana", "guess", at=NOON)
    accounts.set_password(db, "ana", "another long one")
    assert attempt(db, "ana", "another long one", at=NOON) == "ok"


def test_a_disabled_account_cannot_sign_in(db):
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    accounts.set_disabled(db, "ana", True)
    with pytest.raises(accounts.SignInError, match="disabled"):
        accounts.authenticate(db, SETTINGS, "ana", "a long password", now=NOON)
    assert accounts.account(db, "ana") is None
    accounts.set_disabled(db, "ana", False)
    assert accounts.authenticate(db, SETTINGS, "ana", "a long password", now=NOON)


def test_generated_passwords_hold_no_characters_easy_to_misread():
    passwords = {accounts.generate_password() for _ in range(500)}
    assert len(passwords) == 500 and {len(p) for p in passwords} == {16}
    assert not set("".join(passwords)) & set("0OoQD1lIij|5Ss2Zz8Buv")
    assert set("".join(passwords)) <= set(accounts.PASSWORD_ALPHABET)


@pytest.mark.parametrize(
    ("username", "options", "reason"),
    [
        ("two words", {"role": "analyst"}, "one word"),
        ("v", {"role": "vendor"}, "needs --vendor"),
        ("a", {"role": "analyst", "vendor_id": "V1"}, "only a vendor account"),
        ("a", {"role": "superuser"}, "unknown role"),
        ("a", {"role": "analyst", "password": "short"}, "at least 10"),
    ],
)
def test_accounts_that_cannot_be_made(db, username, options, reason):
    with pytest.raises(accounts.AccountError, match=reason):
        accounts.add_user(db, username, **options)
    assert accounts.users(db) == []


def test_names_and_emails_are_unique(db):
    accounts.add_user(db, "ana", role="analyst", email="ana@district.org")
    with pytest.raises(accounts.AccountError, match="already an account"):
        accounts.add_user(db, "ANA", role="facilitator")
    with pytest.raises(accounts.AccountError, match="e-mail"):
        accounts.add_user(db, "bob", role="facilitator", email="ANA@district.org")


def test_the_demo_makes_one_account_per_role_and_vendor(demo_warehouse):
    db = AppDB.of(demo_warehouse.settings)
    made = {row["username"]: (row["role"], row["vendor_id"]) for row in accounts.users(db)}
    assert {made[name] for name in ("analyst", "facilitator", "admin")} == {
        ("analyst", None), ("facilitator", None), ("admin", None)
    }
    assert {made[f"vendor-v{i}"] for i in range(1, 7)} == {("vendor", f"V{i}") for i in range(1, 7)}
    listed = accounts.demo_credentials(db)
    first = next(row for row in listed if row["username"] == "facilitator")
    assert accounts.authenticate(db, SETTINGS, "facilitator", first["password"]).role == "facilitator"


def test_a_database_the_demo_did_not_make_has_no_default_accounts(warehouse):
    db = AppDB.of(warehouse.settings)
    assert accounts.users(db) == [] and accounts.demo_credentials(db) == []


# --- the sign-in page and the session -----------------------------------------------------------


def app_test(**state) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=90)
    for key, value in state.items():
        app.session_state[key] = value
    return app


def shown_text(app: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("title", "markdown", "caption", "error", "warning") for e in app.get(kind))


def test_without_signing_in_only_the_sign_in_page_exists(dashboard):
    app = app_test()
    app.query_params["vendor"] = "V2 · Lumen Learning Partners"
    app.run()
    assert not app.exception
    assert [t.label for t in app.text_input] == ["User name", "Password"]
    assert not app.get("plotly_chart") and not app.sidebar.multiselect
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("app_pages/trends.py").run()


def test_the_demo_sign_in_page_lists_its_accounts_as_text_to_copy(dashboard):
    password = {r["username"]: r["password"] for r in accounts.demo_credentials(AppDB.of(dashboard.settings))}
    app = app_test()
    app.run()
    assert not app.dataframe, "a data grid's cells cannot be selected as text"
    [table] = app.table
    shown = dict(zip(table.value["User name"], table.value["Password"]))
    assert {"analyst", "facilitator", "admin", "vendor-v1"} <= set(shown)
    assert shown["analyst"] == f"`{password['analyst']}`"


def test_an_admin_lifts_a_lock_on_the_accounts_page(dashboard):
    from conftest import open_page

    db = AppDB.of(dashboard.settings)
    accounts.add_user(db, "locked-out", role="facilitator", password="a long password")
    an_hour = Settings(sign_in_free_failures=1, sign_in_delay_seconds=3600)
    with pytest.raises(accounts.SignInError):
        accounts.authenticate(db, an_hour, "locked-out", "guess", address=ELSEWHERE)
    app = open_page("app_pages/users.py", user="admin")
    [grid] = app.dataframe
    assert grid.value.set_index("username").loc["locked-out", "status"] == "throttled"
    [chooser] = [s for s in app.selectbox if s.label == "Account"]
    chooser.select("locked-out").run()
    [lift] = [b for b in app.button if b.label == "Lift lock"]
    lift.click().run()
    assert not app.exception
    assert "locked-out may sign in again" in app.success[0].value
    assert [r["throttled_until"] for r in accounts.users(db) if r["username"] == "locked-out"] == [None]
    assert ("admin", "sign-in lock lifted", "locked-out") in {
        (r["username"], r["action"], r["detail"]) for r in accounts.audit_log(db)
    }


def test_signing_in_through_the_page(dashboard):
    password = {r["username"]: r["password"] for r in accounts.demo_credentials(AppDB.of(dashboard.settings))}
    app = app_test()
    app.run()
    app.text_input[0].input("vendor-v4")
    app.text_input[1].input("not the password")
    app.button[0].click().run()
    assert "do not match" in app.error[0].value
    app.text_input[0].input("vendor-v4")
    app.text_input[1].input(password["vendor-v4"])
    app.button[0].click().run()
    assert not app.exception
    assert app.session_state["signed_in"]["username"] == "vendor-v4"
    assert app.title[0].value == "Overview"
    assert "Northstar Readers (vendor)" in " ".join(m.value for m in app.sidebar.markdown)


def test_a_session_expires(dashboard):
    hours_ago = (datetime.now() - timedelta(hours=9)).isoformat()
    app = app_test(signed_in={"username": "analyst", "at": hours_ago})
    app.run()
    assert "expired" in app.error[0].value
    assert "signed_in" not in app.session_state


def test_a_disabled_account_is_signed_out_at_its_next_click(dashboard):
    db = AppDB.of(dashboard.settings)
    accounts.add_user(db, "leaving", role="facilitator", password="a long password")
    app = app_test(**signed_in("leaving"))
    app.run()
    assert app.title[0].value == "Overview"
    accounts.set_disabled(db, "leaving", True)
    app.run()
    assert "no longer active" in app.error[0].value


def test_pages_follow_the_role(dashboard):
    from conftest import open_page

    assert open_page("app_pages/users.py", user="admin").title[0].value == "Accounts"
    assert open_page("app_pages/audit.py", user="admin").title[0].value == "Audit log"
    assert open_page("app_pages/upload.py", user="vendor-v2").title[0].value == "Submit data"
    for user, page in [("analyst", "users"), ("facilitator", "audit"), ("vendor-v2", "users"), ("facilitator", "upload")]:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            open_page(f"app_pages/{page}.py", user=user)


def test_oidc_maps_the_providers_email_to_an_account(dashboard, monkeypatch):
    from ciboard.settings import get_settings

    db = AppDB.of(dashboard.settings)
    accounts.add_user(db, "oidc-fac", role="facilitator", email="fac@district.example")
    monkeypatch.setenv("CIBOARD_AUTH", "oidc")
    get_settings.cache_clear()
    app = app_test()
    app.user = {"is_logged_in": True, "email": "fac@district.example"}
    app.run()
    assert not app.exception and app.title[0].value == "Overview"
    stranger = app_test()
    stranger.user = {"is_logged_in": True, "email": "someone@elsewhere.example"}
    stranger.run()
    assert "has no CI Board account" in stranger.warning[0].value
    signed_out = app_test()
    signed_out.user = {"is_logged_in": False}
    signed_out.run()
    assert [b.label for b in signed_out.button] == ["Sign in with your organisation's account"]
    get_settings.cache_clear()


# --- the command line ---------------------------------------------------------------------------


def test_users_commands(warehouse):
    data_dir = str(warehouse.settings.data_dir)
    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "fac", "--role", "facilitator", "--generate", "--data-dir", data_dir])
    assert added.exit_code == 0, added.output
    password = added.output.split("password: ")[1].strip()
    db = AppDB.of(warehouse.settings)
    assert accounts.authenticate(db, SETTINGS, "fac", password).role == "facilitator"

    unknown = runner.invoke(main, ["users", "add", "v", "--role", "vendor", "--vendor", "V9", "--generate", "--data-dir", data_dir])
    assert unknown.exit_code != 0 and "unknown vendor" in unknown.output
    short = runner.invoke(main, ["users", "set-password", "fac", "--password-stdin", "--data-dir", data_dir], input="short\n")
    assert short.exit_code != 0 and "at least 10" in short.output
    changed = runner.invoke(main, ["users", "set-password", "fac", "--password-stdin", "--data-dir", data_dir], input="a new long one\n")
    assert changed.exit_code == 0
    assert runner.invoke(main, ["users", "disable", "fac", "--data-dir", data_dir]).exit_code == 0
    listed = runner.invoke(main, ["users", "list", "--data-dir", data_dir]).output
    assert listed.splitlines()[0].startswith("username,role") and "fac,facilitator" in listed
    assert listed.splitlines()[0].endswith("failed_sign_ins,throttled_until")
    with pytest.raises(accounts.SignInError, match="disabled"):
        accounts.authenticate(db, SETTINGS, "fac", "a new long one")
    assert {"account added", "password set", "account disabled"} <= {r["action"] for r in accounts.audit_log(db)}
