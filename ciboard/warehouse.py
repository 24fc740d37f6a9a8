"""The warehouse: immutable, versioned DuckDB files and the pointer that names the current one.

DuckDB lets one process write a file and blocks every other open of it meanwhile, even a
read-only one. So nothing ever writes a published file. A writer copies the current version
to a new file, changes the copy, and then swaps a small pointer file; readers open whatever
version the pointer names, read-only, and never wait. The version id goes into every cache
key, so a new version is never served from an old answer.
"""

import fcntl
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

from ciboard.settings import Settings

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
POINTER = "CURRENT"
VERSION_FILE = re.compile(r"wh-(\d{6})\.duckdb")

# Table macros bind when created, so a view comes after the views it reads from.
VIEW_FILES = (
    "scoped_facts",
    "panel",
    "series",
    "breakdown",
    "vendors",
    "peers",
    "payments",
    "quality",
    "choices",
    "events",
    "rejections",
    "coverage",
    "absent_students",
    "student_values",
)


class WarehouseMissing(RuntimeError):
    pass


def migrations() -> list[tuple[int, str, str]]:
    found = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append((int(number), name, path.read_text()))
    return found


def views_sql() -> str:
    return "\n".join((SQL_DIR / "views" / f"{name}.sql").read_text() for name in VIEW_FILES)


def code_fingerprint() -> str:
    """Changes whenever a migration or a view changes, so readers know a file is stale."""
    text = views_sql() + "".join(sql for _, _, sql in migrations())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Bring a writable warehouse file up to the code: pending migrations, then the views."""
    con.execute(
        "create table if not exists schema_migrations"
        " (version integer primary key, name varchar not null, applied_at timestamp not null)"
    )
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for number, name, sql in migrations():
        if number in done:
            continue
        con.execute(sql)
        con.execute("insert into schema_migrations values (?, ?, ?)", [number, name, datetime.now()])
        applied.append(number)
    con.execute(views_sql())
    con.execute("create table if not exists warehouse_info (key varchar primary key, value varchar not null)")
    con.execute("insert or replace into warehouse_info values ('code_fingerprint', ?)", [code_fingerprint()])
    return applied


class Warehouse:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.directory = Path(settings.warehouse_dir)
        self._readers: dict[str, duckdb.DuckDBPyConnection] = {}
        self._lock = threading.Lock()

    # --- reading -----------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.directory / POINTER).exists()

    def version(self) -> str:
        """The id of the current version, e.g. 'wh-000007'; part of every cache key."""
        try:
            name = (self.directory / POINTER).read_text().strip()
        except FileNotFoundError:
            raise WarehouseMissing(
                f"no warehouse in {self.directory}: run 'ciboard demo' or 'ciboard init' first"
            ) from None
        return name.removesuffix(".duckdb")

    def path_of(self, version: str) -> Path:
        return self.directory / f"{version}.duckdb"

    def cursor(self, version: str | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh cursor on a published version: DuckDB connections are not safe across threads."""
        version = version or self.version()
        with self._lock:
            connection = self._readers.get(version)
            if connection is None:
                connection = duckdb.connect(
                    str(self.path_of(version)),
                    read_only=True,
                    config={"memory_limit": self.settings.memory_limit},
                )
                self._readers[version] = connection
                self._close_stale_readers(keep=version)
            return connection.cursor()

    def _close_stale_readers(self, keep: str) -> None:
        # The previous version stays open: a page may still be finishing a query on it.
        for version in sorted(self._readers)[:-2]:
            if version != keep:
                self._readers.pop(version).close()

    def close(self) -> None:
        with self._lock:
            for connection in self._readers.values():
                connection.close()
            self._readers.clear()

    def is_current_code(self) -> bool:
        with self.cursor() as cur:
            row = cur.execute(
                "select value from warehouse_info where key = 'code_fingerprint'"
                if cur.execute("select count(*) from duckdb_tables() where table_name = 'warehouse_info'").fetchall()[0][0]
                else "select null"
            ).fetchall()
        return row[0][0] == code_fingerprint()

    def upgrade_if_stale(self) -> bool:
        """Publish a migrated copy when the code has new migrations or views; True if it did."""
        if self.is_current_code():
            return False
        with self.publish():
            pass  # publishing a copy is what migrates it
        return True

    def init(self, school_years: list[str]) -> list[str]:
        """Creates the warehouse if needed and adds school years; returns the years added."""
        with self.publish() as con:
            return add_school_years(con, school_years, self.settings)

    # --- writing -----------------------------------------------------------------------

    @contextmanager
    def writer_lock(self, wait_seconds: float = 600) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "writer.lock", "w") as handle:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"another process has been writing {self.directory} for over {wait_seconds:.0f} s"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def publish(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writable copy of the current version; it becomes current only if the block succeeds.

        If the block raises, the copy is deleted and readers never see any of it.
        """
        with self.writer_lock():
            numbers = [int(m[1]) for p in self.directory.iterdir() if (m := VERSION_FILE.fullmatch(p.name))]
            target = self.directory / f"wh-{max(numbers, default=0) + 1:06d}.duckdb"
            building = target.with_name(target.name + ".building")
            for leftover in self.directory.glob("*.building*"):
                leftover.unlink()
            if self.exists():
                # Byte copy is safe: a published file is never written, so it is always checkpointed.
                shutil.copyfile(self.path_of(self.version()), building)
            con = duckdb.connect(str(building), config={"memory_limit": self.settings.memory_limit})
            try:
                migrate(con)
                yield con
                con.execute("checkpoint")
            except BaseException:
                con.close()
                for leftover in self.directory.glob(building.name + "*"):
                    leftover.unlink()
                raise
            con.close()
            os.replace(building, target)
            pointer_tmp = self.directory / (POINTER + ".tmp")
            pointer_tmp.write_text(target.name)
            with open(pointer_tmp) as handle:
                os.fsync(handle.fileno())
            os.replace(pointer_tmp, self.directory / POINTER)
            self._delete_old_versions()

    def _delete_old_versions(self) -> None:
        # A reader in another process may still hold an old file open; on POSIX it keeps
        # reading the unlinked file until it moves to the new version.
        versions = sorted(p for p in self.directory.iterdir() if VERSION_FILE.fullmatch(p.name))
        for path in versions[: -self.settings.keep_versions]:
            path.unlink(missing_ok=True)


def add_school_years(con: duckdb.DuckDBPyConnection, names: list[str], settings: Settings) -> list[str]:
    """Adds school years and their calendar weeks; years already there are left alone."""
    from ciboard.calendar import parse_school_year, weeks

    added = []
    for name in names:
        year = parse_school_year(name, settings.school_year_start_month)
        if con.execute("select count(*) from school_years where school_year = ?", [year.name]).fetchall()[0][0]:
            continue
        con.execute("insert into school_years values (?, ?, ?)", [year.name, year.starts_on, year.ends_on])
        con.executemany(
            "insert into calendar_weeks values (?, ?, ?, ?, ?, ?)",
            [list(row.values()) for row in weeks(year, settings)],
        )
        added.append(year.name)
    return added
