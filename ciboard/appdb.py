"""What the app writes (accounts, the audit log, meetings and their history): a SQLite file
beside the warehouse by default, or a PostgreSQL database shared by several app servers
(`CIBOARD_APP_DB_URL`).

Not in the warehouse: an ingest publishes new data and never edits what the app wrote. The
dashboard and the CLI both write these small records, sometimes at once. SQLite (in the
standard library) takes concurrent writers from several processes on one machine with
write-ahead logging and a busy timeout; PostgreSQL takes them from several machines.

Both backends honour one store interface, the part of sqlite3's the code uses: `connect()`
and `transaction()` yield a connection whose `execute(sql, params)` takes `?` placeholders
and returns a cursor (`fetchone`, `fetchall`, iteration, `rowcount`), and `executemany`; rows
read by name and by index. New ids come back through `insert ... returning`, which both
dialects speak, so there is no `lastrowid`. Each backend's schema is its numbered migrations,
sql/app/ for SQLite and sql/app_pg/ for PostgreSQL, with the same numbers.
"""

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg

from ciboard.settings import Settings

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "app"
PG_MIGRATIONS_DIR = SQL_DIR / "app_pg"
BUSY_TIMEOUT_SECONDS = 30
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Idle PostgreSQL connections kept per AppDB for reuse: a new one costs a server process and ~20 ms.
IDLE_CONNECTIONS = 8
# pg_advisory_xact_lock's key for "the app database's writer": any fixed number no other code takes.
WRITER_LOCK = 0x0C1B0A2D

# What a refused write raises, whichever the backend: a constraint, or a trigger's refusal
# (append-only logs, a finalised meeting); PostgreSQL's triggers raise SQLSTATE 23000.
IntegrityError = (sqlite3.IntegrityError, psycopg.errors.IntegrityError)


_SHARED: dict[str, "AppDB"] = {}
_SHARED_LOCK = threading.Lock()


def is_duplicate(error: BaseException) -> bool:
    """Whether a write was refused for a unique key, whichever the backend."""
    return isinstance(error, psycopg.errors.UniqueViolation) or (
        isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error))


class AppDB:
    """The app database at `location`: a SQLite file's path, or a postgresql:// URL."""

    def __init__(self, location: Path | str):
        self.url = str(location) if str(location).startswith(POSTGRES_SCHEMES) else None
        self.path = None if self.url else Path(location)
        self._migrated = False
        self._idle: list[psycopg.Connection] = []
        self._idle_lock = threading.Lock()

    @classmethod
    def of(cls, settings: Settings) -> "AppDB":
        """The settings' app database. A PostgreSQL one is shared by the whole process, so its
        connections are reused and its migrations checked once; a SQLite file is cheap to open,
        and may be a scratch folder's that goes and comes back (the first start's demo build)."""
        if not settings.app_db_url:
            return cls(settings.app_db_path)
        with _SHARED_LOCK:
            return _SHARED.setdefault(settings.app_db_url, cls(settings.app_db_url))

    @property
    def location(self) -> str:
        """Where it is, for messages: the file, or the URL without its password."""
        if self.url is None:
            return str(self.path)
        return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", self.url)

    @contextmanager
    def connect(self) -> Iterator["sqlite3.Connection | PostgresConnection"]:
        """A connection for reading (each statement commits on its own)."""
        self.migrate()
        con = self._open()
        try:
            yield con
        finally:
            self._close(con)

    @contextmanager
    def transaction(self) -> Iterator["sqlite3.Connection | PostgresConnection"]:
        """A write that lands whole or not at all, one writer at a time, so a read-then-write
        (a version check before a save) cannot interleave with another writer's.

        SQLite: `begin immediate` takes the database's write lock at the start. PostgreSQL: the
        first statement takes a transaction-scoped advisory lock that every writer takes, the
        same one lock for the whole database; in READ COMMITTED each later statement reads
        what the writers before it committed. Readers never wait for it. SERIALIZABLE would
        need each write retried on conflict, and the body of a `with` cannot be run again."""
        with self.connect() as con:
            con.execute("begin immediate" if self.url is None else "begin")
            try:
                if self.url is not None:
                    _take_writer_lock(con)
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def _open(self) -> "sqlite3.Connection | PostgresConnection":
        if self.url is not None:
            return PostgresConnection(self._reused() or self._new_postgres())
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("pragma foreign_keys = on")
        return con

    def _new_postgres(self) -> psycopg.Connection:
        con = psycopg.connect(self.url, autocommit=True, row_factory=_rows)
        # A Python str is sent as text, not as psycopg's default "unknown": SQLite takes
        # `lower(?)` or `? is null`, where PostgreSQL cannot tell an unknown's type.
        con.adapters.register_dumper(str, psycopg.types.string.StrDumper)
        return con

    def _reused(self) -> psycopg.Connection | None:
        """An idle connection that still answers (the server may have restarted since), or None."""
        while True:
            with self._idle_lock:
                if not self._idle:
                    return None
                con = self._idle.pop()
            try:
                con.execute("select 1")
                return con
            except psycopg.Error:
                con.close()

    def _close(self, con: "sqlite3.Connection | PostgresConnection") -> None:
        if not isinstance(con, PostgresConnection):
            con.close()
            return
        raw = con.release()
        # Only a connection outside any transaction goes back: one left mid-transaction by a
        # broken connection or an interrupted rollback is closed, which rolls it back.
        if raw.closed or raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raw.close()
            return
        with self._idle_lock:
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(raw)
                return
        raw.close()

    def migrate(self) -> list[int]:
        """Applies the numbered migrations not applied yet, all in one transaction."""
        if self._migrated:
            return []
        applied = self._migrate_postgres() if self.url is not None else self._migrate_sqlite()
        self._migrated = True
        return applied

    def _migrate_postgres(self) -> list[int]:
        con = self._open()
        try:
            if not self._pending_postgres(con):
                return []
            con.execute("begin")
            try:
                # Two servers starting at once: the second waits, then finds the work done.
                _take_writer_lock(con)
                con.execute(
                    "create table if not exists schema_migrations"
                    " (number integer primary key, name text not null, applied_at text not null default current_timestamp)"
                )
                done = {n for (n,) in con.execute("select number from schema_migrations")}
                applied = []
                for path in sorted(PG_MIGRATIONS_DIR.glob("*.sql")):
                    number, _, name = path.stem.partition("_")
                    if int(number) in done:
                        continue
                    con.run_script(path.read_text())
                    con.execute("insert into schema_migrations (number, name) values (?, ?)", [int(number), name])
                    applied.append(int(number))
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")
        finally:
            self._close(con)
        return applied

    @staticmethod
    def _pending_postgres(con: "PostgresConnection") -> bool:
        """Whether a migration is to be applied; read without the writer's lock, so a process
        whose database is up to date never waits for a writer to learn so."""
        if con.execute("select to_regclass('schema_migrations')").fetchone()[0] is None:
            return True
        done = {n for (n,) in con.execute("select number from schema_migrations")}
        return not {int(p.stem.partition("_")[0]) for p in PG_MIGRATIONS_DIR.glob("*.sql")} <= done

    def _migrate_sqlite(self) -> list[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open()
        try:
            con.execute("pragma journal_mode = wal")
            con.execute(
                "create table if not exists schema_migrations"
                " (number integer primary key, name text not null, applied_at text not null default current_timestamp)"
            )
            # Off for the whole migration, as SQLite's guide to rebuilding a table asks (a table
            # dropped to be rebuilt would otherwise take its references' rows with it); the keys
            # are checked before the migration commits instead.
            con.execute("pragma foreign_keys = off")
            con.execute("begin immediate")
            try:
                done = {n for (n,) in con.execute("select number from schema_migrations")}
                applied = []
                for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
                    number, _, name = path.stem.partition("_")
                    if int(number) in done:
                        continue
                    for statement in _statements(path.read_text()):
                        con.execute(statement)
                    con.execute("insert into schema_migrations (number, name) values (?, ?)", [int(number), name])
                    applied.append(int(number))
                broken = con.execute("pragma foreign_key_check").fetchall()
                if broken:
                    raise sqlite3.IntegrityError(f"a migration broke {len(broken)} foreign key(s): {[tuple(r) for r in broken]}")
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")
        finally:
            con.close()
        return applied


def _take_writer_lock(con: "PostgresConnection") -> None:
    """The one writer's lock, waited for as long as SQLite waits for its own (then an error,
    not a hang: a writer that never commits must not stop every other)."""
    con.execute(f"set local lock_timeout = '{BUSY_TIMEOUT_SECONDS}s'")
    con.execute("select pg_advisory_xact_lock(?)", [WRITER_LOCK])


class Row:
    """A PostgreSQL row read as sqlite3.Row reads: by column name or by index, unpacked as a tuple."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]):
        self._index, self._values = index, values

    def __getitem__(self, key: int | str | slice) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and self.keys() == other.keys() and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values))!r})"


def _rows(cursor: psycopg.Cursor) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(index, values)


class PostgresConnection:
    """A psycopg connection behind the part of sqlite3.Connection's interface the code uses."""

    def __init__(self, con: psycopg.Connection):
        self._con = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self._con.execute(placeholders(sql), list(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        cursor = self._con.cursor()
        rows = [list(r) for r in rows]
        if rows:  # psycopg refuses an empty batch, which sqlite3 takes as nothing to do
            cursor.executemany(placeholders(sql), rows)
        return cursor

    def run_script(self, script: str) -> None:
        """Statements with no parameters, in one round trip (a migration's file)."""
        self._con.execute(script)

    def release(self) -> psycopg.Connection:
        """The psycopg connection, for its AppDB to keep or close; this wrapper is done."""
        con, self._con = self._con, None
        return con


@lru_cache(maxsize=1024)
def placeholders(sql: str) -> str:
    """sqlite3's `?` placeholders as psycopg's `%s`, and a literal `%` as `%%`, which psycopg
    reads as a placeholder's start anywhere in the text. A `?` inside a string literal, a
    quoted name or a comment is text, and stays."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = sql.find(c, i + 1)
            while end != -1 and sql.startswith(c, end + 1):  # '' inside '...' is one quote
                end = sql.find(c, end + 2)
            end = n if end == -1 else end + 1
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        else:
            out.append("%s" if c == "?" else "%%" if c == "%" else c)
            i += 1
    return "".join(out)


def _statements(script: str) -> list[str]:
    """A migration's statements; sqlite3's executescript would commit the open transaction."""
    statements, current = [], []
    for line in script.splitlines(keepends=True):
        current.append(line)
        if sqlite3.complete_statement("".join(current)):
            statements.append("".join(current).strip())
            current = []
    if "".join(current).strip():
        statements.append("".join(current).strip())
    return [s for s in statements if s and not all(l.strip().startswith("--") or not l.strip() for l in s.splitlines())]


# Every table of the app database, in an order that inserts what a row refers to before the row:
# report texts before the report's workflow events, whose triggers refuse text after a review.
COPY_ORDER = (
    "users", "user_schools", "demo_credentials", "audit_log", "sign_in_failures", "secrets",
    "workgroups", "meeting_cancellations", "meetings", "commitments", "pdsa_cycles", "root_causes", "history", "drafts",
    "closed_statements", "statement_signoffs", "student_follow_ups", "ledger", "session_check_decisions",
    "reports", "report_texts", "report_snapshots", "report_events", "calendar_feeds",
)


class CopyRefused(RuntimeError):
    pass


def copy_sqlite_to_postgres(source: AppDB, target: AppDB) -> dict[str, int]:
    """Copies a SQLite app database, whole, into an empty PostgreSQL one in one transaction:
    rows as they are, ids and the server's secrets (so a meeting's letters and an evaluator's
    pseudonyms stay the same) included. Returns the rows copied per table. Nothing is written
    unless all of it is."""
    if source.url is not None or target.url is None:
        raise CopyRefused("the copy goes from a SQLite app database to a PostgreSQL one")
    if not source.path.exists():
        raise CopyRefused(f"there is no app database at {source.path}")
    source.migrate()
    with source.connect() as read:
        tables = {t for (t,) in read.execute("select name from sqlite_master where type = 'table'")} - {"schema_migrations"}
    if tables != set(COPY_ORDER):
        raise CopyRefused(f"the copy does not know the tables {sorted(tables ^ set(COPY_ORDER))}")
    copied = {}
    with source.connect() as read, target.transaction() as write:
        for table in COPY_ORDER:
            if table != "secrets" and write.execute(f"select 1 from {table} limit 1").fetchone():
                raise CopyRefused(f"{target.location} is not empty ({table} has rows): copy into a new database")
        write.execute("delete from secrets")  # the new database's own, made by its migration
        for table in COPY_ORDER:
            cursor = read.execute(f"select * from {table} order by rowid")
            columns = [d[0] for d in cursor.description]
            rows = [tuple(row) for row in cursor.fetchall()]
            write.executemany(
                f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})", rows)
            copied[table] = len(rows)
        # Ids were copied as they were: each identity continues after the largest.
        for table, column in write.execute(
            "select table_name, column_name from information_schema.columns"
            " where table_schema = current_schema() and is_identity = 'YES'"
        ).fetchall():
            write.execute(f"select setval(pg_get_serial_sequence('{table}', '{column}'),"
                          f" coalesce((select max({column}) from {table}), 0) + 1, false)")
    return copied
