"""The app database's store layer: one interface over SQLite and PostgreSQL, migrations that keep
the two schemas alike, and several servers sharing one PostgreSQL."""

import sqlite3
import threading
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from ciboard import accounts
from ciboard import ci_records as rec
from ciboard import meetings as m
from ciboard.access import Scope
from ciboard.appdb import MIGRATIONS_DIR, PG_MIGRATIONS_DIR, AppDB, Row, placeholders

STAFF = Scope("facilitator")


def numbered(folder: Path) -> dict[int, str]:
    return {int(p.stem.partition("_")[0]): p.stem.partition("_")[2] for p in folder.glob("*.sql")}


def test_every_sqlite_migration_has_its_postgresql_twin():
    """A migration added to sql/app/ without its PostgreSQL copy would leave a shared database behind."""
    sqlite_side, postgres_side = numbered(MIGRATIONS_DIR), numbered(PG_MIGRATIONS_DIR)
    assert sqlite_side and sqlite_side == postgres_side


@pytest.mark.parametrize("folder", [MIGRATIONS_DIR, PG_MIGRATIONS_DIR], ids=["sqlite", "postgresql"])
def test_no_two_migrations_share_a_number(folder):
    """A database that applied one 013 would skip another 013 merged later from another branch."""
    numbers = [p.stem.partition("_")[0] for p in folder.glob("*.sql")]
    assert len(numbers) == len(set(numbers))


def test_the_setting_takes_a_postgresql_url_and_messages_hide_its_password(tmp_path):
    from pydantic import ValidationError

    from ciboard.settings import Settings

    with pytest.raises(ValidationError, match="app_db_url"):
        Settings(data_dir=tmp_path, app_db_url="mysql://ana@db/ciboard")
    settings = Settings(data_dir=tmp_path, app_db_url="postgresql://ana:s3cret@db.example.org:5432/ciboard")
    db = AppDB.of(settings)
    assert (db.url, db.path, db.location) == (settings.app_db_url, None, "postgresql://ana:***@db.example.org:5432/ciboard")
    assert AppDB.of(settings) is db  # one per process: its connections are reused
    on_file = AppDB.of(Settings(data_dir=tmp_path, app_db_url=None))
    assert (on_file.url, on_file.path) == (None, tmp_path / "app.sqlite3")


# --- placeholders -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sqlite_sql", "psycopg_sql"), [
    ("select * from users where username = ? and role = ?", "select * from users where username = %s and role = %s"),
    ("select '?' as mark, ? as value", "select '?' as mark, %s as value"),
    ("select 'it''s ?' || ?", "select 'it''s ?' || %s"),
    ('select "odd?name" from t where a = ?', 'select "odd?name" from t where a = %s'),
    ("select 1 -- why? because\nwhere a = ?", "select 1 -- why? because\nwhere a = %s"),
    ("select /* a? */ ?", "select /* a? */ %s"),
    ("select 5 % 2, '100%' where a like ?", "select 5 %% 2, '100%%' where a like %s"),
    ("select 'unterminated ?", "select 'unterminated ?"),
])
def test_placeholders_are_translated_outside_literals_only(sqlite_sql, psycopg_sql):
    assert placeholders(sqlite_sql) == psycopg_sql


def test_a_row_reads_by_name_and_by_index_as_sqlite3_rows_do():
    row = Row({"username": 0, "role": 1}, ("ana", "analyst"))
    con = sqlite3.connect(":memory:")
    con.row_factory = sqlite3.Row
    reference = con.execute("select 'ana' as username, 'analyst' as role").fetchone()
    for read in (row, reference):
        assert (read["username"], read[1], read[-1], tuple(read), len(read)) == ("ana", "analyst", "analyst",
                                                                                  ("ana", "analyst"), 2)
        assert dict(read) == {"username": "ana", "role": "analyst"}
        (name, role) = read
        assert (name, role) == ("ana", "analyst")
    with pytest.raises(KeyError):
        row["password"]


# --- the two backends end alike -------------------------------------------------------------------


def sqlite_schema(db: AppDB) -> dict[str, list[tuple]]:
    with db.connect() as con:
        tables = [t for (t,) in con.execute("select name from sqlite_master where type = 'table' order by name")]
        return {t: [(c["name"], bool(c["notnull"]), c["pk"] > 0) for c in con.execute(f"pragma table_info({t})")]
                for t in tables}


def postgres_schema(db: AppDB) -> dict[str, list[tuple]]:
    with db.connect() as con:
        columns = con.execute(
            """select c.table_name, c.column_name, c.is_nullable = 'NO',
                      exists (select 1 from information_schema.key_column_usage k
                              join information_schema.table_constraints t using (constraint_schema, constraint_name)
                              where t.constraint_type = 'PRIMARY KEY' and k.table_name = c.table_name
                              and k.column_name = c.column_name)
               from information_schema.columns c where c.table_schema = 'public'
               order by c.table_name, c.ordinal_position"""
        ).fetchall()
    found: dict[str, list[tuple]] = {}
    for table, column, not_null, primary in columns:
        found.setdefault(table, []).append((column, bool(not_null), bool(primary)))
    return found


def test_both_backends_end_with_the_same_tables_columns_and_keys(tmp_path, postgres_url):
    on_sqlite, on_postgres = sqlite_schema(AppDB(tmp_path / "app.sqlite3")), postgres_schema(AppDB(postgres_url))
    assert set(on_sqlite) == set(on_postgres)
    for table, columns in on_sqlite.items():
        # SQLite's `integer primary key` may hold null (it is the rowid); PostgreSQL's may not.
        relaxed = [(c, not_null or primary, primary) for c, not_null, primary in columns]
        assert relaxed == on_postgres[table], table


def test_both_backends_refuse_alike(tmp_path, app_db_url):
    """The refusals the SQLite triggers and checks give, given by PostgreSQL's too."""
    from ciboard.appdb import IntegrityError

    db = AppDB(app_db_url or tmp_path / "app.sqlite3")
    accounts.add_user(db, "ana", role="analyst", password="a long password")
    accounts.audit(db, None, "a sign-in", "from a test")
    with db.connect() as con:
        for statement in ("update audit_log set outcome = 'ok'", "delete from audit_log",
                          *(["truncate audit_log"] if db.url else [])):
            with pytest.raises(IntegrityError, match="the audit log is only added to"):
                con.execute(statement)
        with pytest.raises(IntegrityError, match="only a school account has schools"):
            con.execute("insert into user_schools (username, school_id) values ('ana', 'S1')")
        with pytest.raises(IntegrityError):
            con.execute("insert into users (username, display_name, role, created_at) values ('Bob', 'Bob', 'analyst', 'now')")
        with pytest.raises(IntegrityError):
            con.execute("insert into users (username, display_name, role, created_at) values ('v', 'V', 'vendor', 'now')")
    accounts.add_user(db, "e", role="admin", email="Eve@District.org", password="a long password")
    with pytest.raises(accounts.AccountError, match="already has the e-mail"):
        accounts.add_user(db, "c", role="analyst", email="eve@district.org", password="a long password")
    assert accounts.account_for_email(db, "eve@district.ORG").username == "e"
    with db.connect() as con:
        with pytest.raises(IntegrityError):  # the e-mail is unique whatever its case, even past the code's check
            con.execute("insert into users (username, display_name, email, role, created_at)"
                        " values ('f', 'F', 'EVE@district.org', 'admin', 'now')")
        (letters, pseudonyms) = [len(v) for (v,) in con.execute("select value from secrets order by name")]
    assert letters == pseudonyms == 64


def test_a_failed_write_lands_nothing(tmp_path, app_db_url):
    db = AppDB(app_db_url or tmp_path / "app.sqlite3")
    with pytest.raises(accounts.AccountError):
        accounts.add_user(db, "s", role="school", password="a long password")  # a school account needs schools
    with pytest.raises(RuntimeError):
        with db.transaction() as con:
            con.execute("insert into audit_log (at, action) values ('now', 'half')")
            raise RuntimeError("the second half failed")
    assert accounts.users(db) == [] and accounts.audit_log(db, action="half") == []


# --- several servers on one PostgreSQL -------------------------------------------------------------


def test_two_servers_see_each_others_writes_at_once(postgres_url):
    server_a, server_b = AppDB(postgres_url), AppDB(postgres_url)
    accounts.add_user(server_a, "ana", role="analyst", password="a long password")
    assert accounts.account(server_b, "ana").role == "analyst"
    group = m.save_workgroup(server_a, STAFF, rec.Workgroup(name="Coordination"), by="ana")
    meeting = m.save_meeting(server_b, STAFF, rec.draft_meeting(group, date(2026, 3, 10)), by="ana")
    noted = m.save_meeting(server_a, STAFF, replace(meeting, agenda={"operations": "Bus passes for V3's students"}),
                           by="ana")
    assert m.meeting(server_b, STAFF, meeting.id).agenda == noted.agenda


def test_two_people_saving_one_record_through_two_servers_get_the_edit_conflict(postgres_url):
    server_a, server_b = AppDB(postgres_url), AppDB(postgres_url)
    group = m.save_workgroup(server_a, STAFF, rec.Workgroup(name="Coordination"), by="ana")
    meeting = m.save_meeting(server_a, STAFF, rec.draft_meeting(group, date(2026, 3, 10)), by="ana")
    # Both opened revision 1; A saves first, then B's save is told, with both versions.
    m.save_meeting(server_a, STAFF, replace(meeting, agenda={"operations": "A's notes"}), by="ana")
    with pytest.raises(m.EditConflict) as conflict:
        m.save_meeting(server_b, STAFF, replace(meeting, agenda={"operations": "B's notes"}), by="ben")
    assert conflict.value.theirs.agenda == {"operations": "A's notes"} and conflict.value.theirs.updated_by == "ana"
    assert m.meeting(server_b, STAFF, meeting.id).agenda == {"operations": "A's notes"}

    # At the same moment, from many threads on both servers: exactly one save of the revision lands.
    current = m.meeting(server_a, STAFF, meeting.id)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def save(server: AppDB, writer: int) -> None:
        start.wait()
        try:
            m.save_meeting(server, STAFF, replace(current, agenda={"operations": f"writer {writer}"}), by=f"w{writer}")
            outcomes.append("saved")
        except m.EditConflict:
            outcomes.append("conflict")
        except Exception as error:  # pragma: no cover - the failure is reported below
            outcomes.append(repr(error))

    threads = [threading.Thread(target=save, args=((server_a, server_b)[i % 2], i)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["saved"]
    revisions = [v.revision for v in m.history(server_b, STAFF, "meeting", meeting.id)]
    assert revisions == [1, 2, 3]


def test_a_server_starting_while_another_writes_reads_without_waiting(postgres_url):
    writing = AppDB(postgres_url)
    writing.migrate()
    with writing.transaction() as con:
        con.execute("insert into audit_log (at, action) values ('now', 'held')")
        # A new process's first read checks the migrations without the writer's lock: no wait, and
        # nothing uncommitted is read.
        assert accounts.audit_log(AppDB(postgres_url), action="held") == []
    assert len(accounts.audit_log(AppDB(postgres_url), action="held")) == 1


def test_servers_starting_at_once_migrate_a_fresh_database_once(postgres_url):
    servers = [AppDB(postgres_url) for _ in range(4)]
    applied: list[list[int]] = []
    threads = [threading.Thread(target=lambda s=s: applied.append(s.migrate())) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(len, applied)) == [0, 0, 0, len(numbered(PG_MIGRATIONS_DIR))]
    with servers[0].connect() as con:
        assert con.execute("select count(*) from secrets").fetchone()[0] == 2


# --- moving a SQLite app database to PostgreSQL --------------------------------------------------


def every_row(db: AppDB) -> dict[str, list[tuple]]:
    from ciboard.appdb import COPY_ORDER

    with db.connect() as con:
        return {t: sorted(tuple(r) for r in con.execute(f"select * from {t}").fetchall()) for t in COPY_ORDER}


def test_every_table_is_copied_and_in_an_order_its_references_allow(tmp_path):
    from ciboard.appdb import COPY_ORDER

    db = AppDB(tmp_path / "app.sqlite3")
    with db.connect() as con:
        tables = {t for (t,) in con.execute("select name from sqlite_master where type = 'table'")}
        for position, table in enumerate(COPY_ORDER):
            for reference in con.execute(f"pragma foreign_key_list({table})").fetchall():
                assert COPY_ORDER.index(reference["table"]) <= position, (table, reference["table"])
    assert set(COPY_ORDER) == tables - {"schema_migrations"}


def test_the_demo_app_database_moves_to_postgresql_whole_and_keeps_working(demo_warehouse, postgres_url):
    from click.testing import CliRunner

    from ciboard import letters
    from ciboard.cli import main

    source = AppDB.of(demo_warehouse.settings)
    before = every_row(source)
    assert before["meetings"] and before["history"] and before["student_follow_ups"] and before["users"]
    data = ["--data-dir", str(demo_warehouse.settings.data_dir)]
    moved = CliRunner().invoke(main, ["migrate-app-db", "--to", postgres_url, *data])
    assert moved.exit_code == 0, moved.output
    assert f"meetings: {len(before['meetings'])} rows" in moved.output

    target = AppDB(postgres_url)
    after = every_row(target)
    copy_audit = after["audit_log"].pop()
    assert after == before and copy_audit[5] == "app database copied"
    assert every_row(source) == before  # the SQLite file is left as it was
    # The same secrets: a meeting's letters and an evaluator's pseudonyms do not change.
    assert letters.secret(target) == letters.secret(source)
    # New rows continue after the copied ids; every account signs in with its password.
    password = {r["username"]: r["password"] for r in accounts.demo_credentials(source)}["analyst"]
    settings = demo_warehouse.settings.model_copy(update={"app_db_url": postgres_url})
    assert accounts.authenticate(target, settings, "analyst", password).role == "analyst"
    group = m.workgroups(target, STAFF)[0]
    made = m.save_meeting(target, STAFF, rec.draft_meeting(group, date(2026, 6, 30)), by="facilitator")
    assert made.id == max(r[0] for r in before["meetings"]) + 1

    again = CliRunner().invoke(main, ["migrate-app-db", "--to", postgres_url, *data])
    assert again.exit_code == 1 and "is not empty (users has rows)" in again.output
    assert len(every_row(target)["meetings"]) == len(before["meetings"]) + 1
    refused = CliRunner().invoke(main, ["migrate-app-db", "--to", str(demo_warehouse.settings.app_db_path), *data])
    assert refused.exit_code == 1 and "postgresql://" in refused.output
