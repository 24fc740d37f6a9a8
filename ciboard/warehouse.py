"""The warehouse's interface, and its storage before the lake: immutable, versioned DuckDB files
and the pointer that names the current one (`storage = files`; the default is ciboard.lake).

DuckDB lets one process write a file and blocks every other open of it meanwhile, even a
read-only one. So nothing ever writes a published file. A writer copies the current version
to a new file, changes the copy, and then swaps a small pointer file; readers open whatever
version the pointer names, read-only, and never wait. The version id goes into every cache
key, so a new version is never served from an old answer.

A record that relied on a version (a finalised meeting) pins it: `at(version)` reads it as it
was, and a pinned version is never deleted with the old ones until the record lets go of it.
"""

import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ciboard.profiles import record_shipped, shipped_text
from ciboard.settings import Settings

log = logging.getLogger(__name__)
_told_to_move: set[Path] = set()  # data folders whose file warehouse was already said to be movable

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
POINTER = "CURRENT"
VERSION_FILE = re.compile(r"wh-(\d{6})\.duckdb")
PINS = "pins"  # one folder per pinned version, one empty file in it per record that holds it
REJECTED = "rejected"  # the rejection log: one folder per rejected command, until a publish folds it in
# An ingest's DuckDB memory at most (less if the memory_limit setting is less): past it, it spills
# to disk, so a large upload does not take the dashboard's memory (bench/bench_upload.py).
WORKSPACE_MEMORY = "512MB"
# A publish's block may name in this temp table the students whose rows it changed: the lake then
# compares only those students' rows of a table keyed by student_key, having checked that no other
# row of it changed (else it compares them all). The file warehouse copies whole versions.
TOUCHED_STUDENTS = "touched_students"

# The order facts are written in. Every view reads one metric, and DuckDB and Parquet keep each
# block of rows' smallest and largest value: with a metric's facts side by side, a view skips the
# blocks of the others. In the order a derivation's grouping gave them, each block mixed a kind's
# metrics: a view of tutoring attendance read 5.6M of the 45,000-student demo's 12.3M facts for
# its 1.4M, and one of school attendance all 12.3M; now 1.5M. Within a metric, a student's weeks
# side by side make the views' grouping per student two to three times faster than weeks side by
# side (31 against 68 ms at 12.3M facts, 244 against 728 ms at 110M).
FACTS_ORDER = "metric_id, student_key, period_start"

# Per metric, school year, student and the groups the student's facts carry: the count and sums
# of the facts of the year's calendar weeks, as panel.sql sums a student's facts over a longer
# period. A view over whole school years reads these rows, about one per student, and not the
# facts, about one per student and week (at 12M facts a breakdown read 1.4M facts in 130 ms).
# Kept for every fact however its metric aggregates, since the data map's aggregation may change;
# the scaled sums (what panel.sql's sample_sd_from_sums needs) are left null for a value past
# 1e9, which no mean it computes holds, rather than fail the ingest of another kind of metric.
STUDENT_YEAR_SUMS = """
select
    f.metric_id, w.school_year, f.student_key, f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
    f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band,
    count(*) as facts,
    sum(f.value) as total,
    sum(f.denominator) as denominator,
    sum(case when abs(f.value) < 1e9 then (f.value * 1e9)::hugeint end) as scaled_total,
    sum(case when abs(f.value) < 1e9 then (f.value * 1e9)::hugeint * (f.value * 1e9)::hugeint end) as scaled_squares
from facts as f
inner join calendar_weeks as w on w.week_start = f.period_start
{only}
group by all
"""


# A rejected file's row of `submissions`, as the rejection log keeps it: no batch id until it is
# folded into a version (readers number it after the version's last batch).
REJECTION_COLUMNS = (
    "kind", "vendor_id", "file_name", "content_sha256", "period_start", "period_end", "due_on",
    "received_at", "loaded_at", "rows_received", "rows_accepted", "rows_rejected", "status", "replaces_batch_id",
)
PROBLEM_COLUMNS = ("row_number", "column_name", "value", "reason")

# Table macros bind when created, so a view comes after the views it reads from.
VIEW_FILES = (
    "scoped_facts",
    "panel",
    "weekly_facts",
    "series",
    "breakdown",
    "vendors",
    "peers",
    "matched",
    "session_checks",
    "payments",
    "quality",
    "submission_log",
    "choices",
    "events",
    "rejections",
    "coverage",
    "absent_students",
    "follow_up",
    "student_values",
    "roster_disagreements",
    "student_records",
)


class WarehouseMissing(RuntimeError):
    pass


class WarehouseTooNew(WarehouseMissing):
    """The data folder was written by a newer DuckDB than the one installed, which cannot read it."""


# DuckDB refuses a file of a newer storage format with "Trying to read a database file with
# version number 999, but we can only read versions between 64 and 68".
NEWER_STORAGE = re.compile(r"database file with version number (\d+), but we can only read versions? (?:between )?(\d+)(?: and (\d+))?")


@contextmanager
def _opening(directory: Path, file: Path) -> Iterator[None]:
    """Turns DuckDB's refusal of a newer file into what the reader can do about it."""
    try:
        yield
    except duckdb.IOException as error:
        found = NEWER_STORAGE.search(str(error))
        if found is None:
            raise
        raise WarehouseTooNew(
            f"the data folder {directory} was written by a newer DuckDB ({_written_by(file) or 'storage version ' + found[1]})"
            f" than the DuckDB {duckdb.__version__} installed, which reads storage versions {found[2]} to {found[3] or found[2]}"
            " (ciboard stays on DuckDB 1.5 until DuckLake is published for 2.x). Either rebuild the demo"
            f" with 'ciboard demo --data-dir {directory.parent}', or, to keep the data, export {file.name}"
            " (the version named in CURRENT) with DuckDB 2.0's EXPORT DATABASE and bring the export in with"
            " 'ciboard migrate-to-lake'."
        ) from None


def _written_by(file: Path) -> str | None:
    """The DuckDB version a file's header names, e.g. 'DuckDB v2.0.1', if it can be read."""
    try:
        with open(file, "rb") as handle:
            header = handle.read(96)
    except OSError:
        return None
    # The main header: 8 bytes of checksum, "DUCK", the storage version, flags, then the
    # writer's version as a NUL-padded string at byte 52.
    if header[8:12] != b"DUCK":
        return None
    name = header[52:84].split(b"\0", 1)[0].decode("ascii", "replace")
    return f"DuckDB {name}" if name.startswith("v") else None


class VersionGone(LookupError):
    """The version asked for was deleted before any record pinned it."""


@dataclass(frozen=True)
class Workspace:
    """A connection of its own that reads `version` (attached read-only as its default database)
    and keeps temp tables; `Warehouse.publish(workspace)` attaches the writable copy to it."""

    con: duckdb.DuckDBPyConnection
    version: str


def migrations() -> list[tuple[int, str, str]]:
    found = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append((int(number), name, path.read_text()))
    return found


def views_sql() -> str:
    return "\n".join((SQL_DIR / "views" / f"{name}.sql").read_text() for name in VIEW_FILES)


def stand_ins(tables) -> list[str]:
    """Views in place of the derived tables a version made before their migration lacks, so
    today's views read a version a record pinned: student_year_sums summed from its facts."""
    return [] if "student_year_sums" in tables else [f"create view student_year_sums as {STUDENT_YEAR_SUMS.format(only='')}"]


def code_fingerprint() -> str:
    """Changes whenever a migration or a view changes, so readers know a file is stale."""
    text = views_sql() + "".join(sql for _, _, sql in migrations()) + shipped_text()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def migrate(con: duckdb.DuckDBPyConnection, ddl: Callable[[str], str] = str) -> list[int]:
    """Bring a writable warehouse up to the code: pending migrations, then the views. `ddl`
    rewrites each statement for the storage (DuckLake takes no key or CHECK constraints, and
    keeps no views: its readers make their own, ciboard.lake)."""
    con.execute(ddl(
        "create table if not exists schema_migrations"
        " (version integer primary key, name varchar not null, applied_at timestamp not null)"
    ))
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for number, name, sql in migrations():
        if number in done:
            continue
        con.execute(ddl(sql))
        con.execute("insert into schema_migrations values (?, ?, ?)", [number, name, datetime.now()])
        applied.append(number)
    if ddl is str:
        con.execute(views_sql())
    record_shipped(con)
    con.execute(ddl("create table if not exists warehouse_info (key varchar primary key, value varchar not null)"))
    # Which entries of the rejection log this version holds, so none is counted twice.
    con.execute(ddl("create table if not exists folded_rejections (log_key varchar primary key)"))
    con.execute("delete from warehouse_info where key = 'code_fingerprint'")
    con.execute("insert into warehouse_info values ('code_fingerprint', ?)", [code_fingerprint()])
    return applied


class Warehouse:
    def __new__(cls, settings: Settings, **_):
        if cls is Warehouse and settings.on_lake:
            from ciboard.lake import LakeWarehouse

            return super().__new__(LakeWarehouse)
        if cls is Warehouse and settings.storage is None and settings.data_dir not in _told_to_move:
            _told_to_move.add(settings.data_dir)
            log.warning(
                "%s holds a file warehouse and no lake, so it is read as files: 'ciboard migrate-to-lake' moves it into "
                "the lake, the default storage (CIBOARD_STORAGE=files keeps it on files and says nothing)",
                settings.data_dir,
            )
        return super().__new__(cls)

    def __init__(self, settings: Settings, *, fixed_version: str | None = None):
        self.settings = settings
        self.directory = Path(settings.warehouse_dir)
        self.fixed_version = fixed_version
        self._readers: dict[str, duckdb.DuckDBPyConnection] = {}
        self._lock = threading.Lock()

    def at(self, version: str) -> "Warehouse":
        """The warehouse as it was at `version`: everything read through it is that version's,
        whatever has been published since, and nothing can be written through it."""
        if not self.is_kept(version):
            raise VersionGone(f"warehouse version {version} is no longer kept in {self.directory}")
        fixed = Warehouse(self.settings, fixed_version=version)
        with fixed.cursor() as cur:
            applied = {number for (number,) in cur.execute("select version from schema_migrations").fetchall()}
        missing = sorted({number for number, _, _ in migrations()} - applied)
        if missing:
            fixed.close()
            raise VersionGone(
                f"warehouse version {version} was written before migration {missing[0]}: today's views cannot read it"
            )
        return fixed

    # --- reading -----------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.directory / POINTER).exists()

    def version(self) -> str:
        """The id of the current version, e.g. 'wh-000007'; part of every cache key."""
        if self.fixed_version is not None:
            return self.fixed_version
        try:
            name = (self.directory / POINTER).read_text().strip()
        except FileNotFoundError:
            raise WarehouseMissing(
                f"no warehouse in {self.directory}: run 'ciboard demo' or 'ciboard init' first"
            ) from None
        return name.removesuffix(".duckdb")

    def is_kept(self, version: str) -> bool:
        """Whether `version` can still be read (a record pinned it, or it is not old yet)."""
        return self.path_of(version).exists()

    def path_of(self, version: str) -> Path:
        return self.directory / f"{version}.duckdb"

    def cursor(self, version: str | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh cursor on a published version: DuckDB connections are not safe across threads."""
        version = version or self.version()
        with self._lock:
            connection = self._readers.get(version)
            if connection is None:
                with _opening(self.directory, self.path_of(version)):
                    connection = self._connect(version)
                self._readers[version] = connection
                self._close_stale_readers(keep=version)
            cursor = connection.cursor()
        return self._with_logged_rejections(cursor)

    def _with_logged_rejections(self, cursor: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """The cursor, reading the files rejected since the version as part of its submissions.
        Files rejected since a fixed version are not part of it."""
        logged = [] if self.fixed_version else self._logged_rejections()
        if logged:
            _show_logged_rejections(cursor, logged)
        return cursor

    def _connect(self, version: str) -> duckdb.DuckDBPyConnection:
        config = {"memory_limit": self.settings.memory_limit}
        if not self.fixed_version:
            return duckdb.connect(str(self.path_of(version)), read_only=True, config=config)
        # Today's views over the data as it was: the version's tables, seen from an in-memory
        # database that holds today's macros, made once for every cursor. Made as temp macros
        # on each cursor instead (temp objects are a cursor's own), they took 40 ms a query.
        connection = duckdb.connect(":memory:", config=config)
        try:
            connection.execute("attach '" + str(self.path_of(version)).replace("'", "''") + "' as pinned (read_only)")
            tables = [name for (name,) in connection.execute(
                "select table_name from duckdb_tables() where database_name = 'pinned'"
                " union all select view_name from duckdb_views() where database_name = 'pinned' and not internal"
            ).fetchall()]
            for name in tables:
                connection.execute(f'create view "{name}" as select * from pinned.main."{name}"')
            for stand_in in stand_ins(tables):
                connection.execute(stand_in)
            connection.execute(views_sql())
        except BaseException:
            connection.close()
            raise
        return connection

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
        with self.publish() as con:  # publishing a copy is what migrates it
            # The block itself changes no student's rows, so a lake compares none of them row by
            # row, only their count and sum (at 10M facts, 0.56 s for the facts against 3.8 s).
            con.execute(f"create temp table {TOUCHED_STUDENTS} (student_key varchar)")
        return True

    def init(self, school_years: list[str]) -> list[str]:
        """Creates the warehouse if needed and adds school years; returns the years added."""
        with self.publish() as con:
            return add_school_years(con, school_years, self.settings)

    # --- pins ---------------------------------------------------------------------------

    def pin(self, version: str, record: str) -> None:
        """Keeps `version` for `record` (e.g. 'meeting-12') until `release`; VersionGone if it
        was deleted already. Taken under the writer lock, so no publish deletes it meanwhile."""
        with self.writer_lock():
            if not self.is_kept(version):
                raise VersionGone(f"warehouse version {version} is no longer kept in {self.directory}")
            folder = self.directory / PINS / version
            folder.mkdir(parents=True, exist_ok=True)
            (folder / _pin_name(record)).touch()

    def release(self, version: str, record: str) -> None:
        """`record` no longer needs `version`; the next publish deletes it if nothing else holds it."""
        with self.writer_lock():
            (self.directory / PINS / version / _pin_name(record)).unlink(missing_ok=True)

    def pins(self) -> dict[str, list[str]]:
        """The pinned versions and the records holding each."""
        folders = sorted((self.directory / PINS).glob("*")) if (self.directory / PINS).exists() else []
        held = {folder.name: sorted(p.name for p in folder.iterdir()) for folder in folders}
        return {version: records for version, records in held.items() if records}

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
    def workspace(self) -> Iterator[Workspace]:
        """A private in-memory connection that reads the current version without copying it; its
        temp tables spill to a folder of its own beside the versions."""
        self._refuse_writes()
        self.version()  # says how to make a warehouse if there is none
        spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=self.directory))
        memory = min(self.settings.memory_limit, WORKSPACE_MEMORY, key=_bytes)
        con = duckdb.connect(":memory:", config={"memory_limit": memory, "temp_directory": str(spill)})
        try:
            for attempt in range(3):
                version = self.version()
                try:
                    with _opening(self.directory, self.path_of(version)):
                        con.execute(f"attach {_literal(self.path_of(version))} as published (read_only)")
                    break
                except duckdb.IOException:
                    if attempt == 2:  # a writer deleted the version just read three times over
                        raise
            con.execute("use published")
            yield Workspace(con, version)
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)

    @contextmanager
    def publish(self, workspace: Workspace | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writable copy of the current version; it becomes current only if the block succeeds.

        With a workspace, the copy is attached to the workspace's connection and becomes its
        default database, so the block can load what the workspace has already staged. If the
        block raises, the copy is deleted and readers never see any of it. Rejections logged
        since the current version are folded into the copy first.
        """
        self._refuse_writes()
        with self.writer_lock():
            numbers = [int(m[1]) for p in self.directory.iterdir() if (m := VERSION_FILE.fullmatch(p.name))]
            target = self.directory / f"wh-{max(numbers, default=0) + 1:06d}.duckdb"
            building = target.with_name(target.name + ".building")
            for leftover in self.directory.glob("*.building*"):
                leftover.unlink()
            if self.exists():
                # Byte copy is safe: a published file is never written, so it is always checkpointed.
                shutil.copyfile(self.path_of(self.version()), building)
            try:
                with _opening(self.directory, self.path_of(self.version()) if self.exists() else building):
                    if workspace is None:
                        con = duckdb.connect(str(building), config={"memory_limit": self.settings.memory_limit})
                    else:
                        con = workspace.con
                        con.execute(f"attach {_literal(building)} as building")
                        con.execute("use building")
            except WarehouseTooNew:
                building.unlink(missing_ok=True)
                raise
            logged = self._logged_rejections()
            try:
                migrate(con)
                held = _folded(con)
                _fold_rejections(con, logged)
                # No transaction around the block: the copy is private and deleted if the block
                # fails, and on DuckDB 1.5 one transaction over a year's files held what the load
                # changed in memory until the commit (out of memory at 45,000 students).
                yield con
                con.execute("checkpoint")
            except BaseException:
                self._let_go(con, workspace, failed=True)
                for leftover in self.directory.glob(building.name + "*"):
                    leftover.unlink()
                raise
            self._let_go(con, workspace, failed=False)
            os.replace(building, target)
            pointer_tmp = self.directory / (POINTER + ".tmp")
            pointer_tmp.write_text(target.name)
            with open(pointer_tmp) as handle:
                os.fsync(handle.fileno())
            os.replace(pointer_tmp, self.directory / POINTER)
            # A log folder goes a publish after the one that folded it in: a reader that listed
            # it just before that publish may still be reading it.
            for folder in logged:
                if folder.name in held:
                    shutil.rmtree(folder, ignore_errors=True)
            self._delete_old_versions()

    @staticmethod
    def _let_go(con: duckdb.DuckDBPyConnection, workspace: Workspace | None, failed: bool) -> None:
        if workspace is None:
            con.close()
            return
        if failed:
            try:
                con.execute("rollback")
            except duckdb.Error:
                pass  # no transaction was open
        con.execute("use published")
        con.execute("detach building")

    # --- the rejection log -------------------------------------------------------------

    def log_rejections(self, files: pa.Table, problems: pa.Table) -> None:
        """Logs rejected files without writing a version: `files` has a `file` number (0, 1, ...)
        and the REJECTION_COLUMNS, `problems` the `file` number and the PROBLEM_COLUMNS.

        A folder per command, written aside and renamed into place, so a reader sees all of it or none.
        """
        log = self.directory / REJECTED
        log.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        aside = log / f".{name}"
        aside.mkdir()
        for table, file_name in ((files, "files.parquet"), (problems, "problems.parquet")):
            keys = pa.array([f"{name}-{number:05d}" for number in table.column("file").to_pylist()], pa.string())
            pq.write_table(table.drop_columns(["file"]).append_column("log_key", keys), aside / file_name)
        aside.rename(log / name)

    def shared_folder(self) -> Path:
        """A folder every server reading this warehouse shares, for what they work out from its
        versions once for all of them (ciboard.signal_store): the data folder, which a file
        warehouse's servers share."""
        return Path(self.settings.data_dir)

    def read_key(self) -> str:
        """What a cached answer must be keyed on: the current version, and the newest entry of
        the rejection log, which readers see without a new version."""
        logged = [] if self.fixed_version else self._logged_rejections()
        return self._version_key() + (f"+{logged[-1].name}" if logged else "")

    def _version_key(self) -> str:
        return str(self.path_of(self.version()))

    def _logged_rejections(self) -> list[Path]:
        """The rejection log's folders, oldest first (their names start with the time)."""
        try:
            return sorted(p for p in (self.directory / REJECTED).iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def _refuse_writes(self) -> None:
        if self.fixed_version is not None:
            raise PermissionError(f"warehouse version {self.fixed_version} is read as it was; nothing is written to it")

    def _delete_old_versions(self) -> None:
        # A reader in another process may still hold an old file open; on POSIX it keeps
        # reading the unlinked file until it moves to the new version.
        pinned = self.pins()
        versions = sorted(p for p in self.directory.iterdir() if VERSION_FILE.fullmatch(p.name))
        for path in versions[: -self.settings.keep_versions]:
            if path.stem not in pinned:
                path.unlink(missing_ok=True)
        for folder in (self.directory / PINS).glob("*"):
            if folder.name not in pinned and not self.path_of(folder.name).exists():
                shutil.rmtree(folder, ignore_errors=True)


def data_version(version: str | None) -> str:
    """A warehouse version as people read it: 'wh-000007' is 'data version 7'."""
    number = version_number(version or "")
    return f"data version {number}" if number is not None else "an earlier data version"


def version_number(version: str) -> int | None:
    """'wh-000007' and 'lake-000007' are both the 7th; None for a name of neither kind."""
    number = version.rpartition("-")[2]
    return int(number) if number.isdigit() else None


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


def _pin_name(record: str) -> str:
    """A record's name as a file name: letters, digits, dots, dashes and underscores only."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", record).strip(".-")
    if not name:
        raise ValueError(f"a pin needs a record name, not {record!r}")
    return name


def _bytes(size: str) -> float:
    """A DuckDB size ('4GB', '512 MiB') in bytes, near enough to compare two."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?)(i?)b?\s*", size.lower())
    if match is None:
        return float("inf")  # not a size this reads; DuckDB will say what is wrong with it
    number, unit, binary = match.groups()
    return float(number) * (1024 if binary else 1000) ** ("_kmgt".index(unit or "_"))


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _parquet_list(folders: list[Path], name: str) -> str:
    return "[" + ", ".join(_literal(folder / name) for folder in folders) + "]"


def _logged(folders: list[Path], catalog: str = "", folded: bool = True) -> str:
    """The log's files not yet in the version (`folded`: the version keeps a list of those it
    holds), numbered on after the version's last batch in the order they were logged, as the
    next publish will number them."""
    return f"""select f.*, (select coalesce(max(batch_id), 0) from {catalog}submissions)
            + row_number() over (order by f.log_key) as batch_id
        from read_parquet({_parquet_list(folders, "files.parquet")}) as f
        """ + (f"where f.log_key not in (select log_key from {catalog}folded_rejections)" if folded else "")


def _folded(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The log folders a writable version already holds (a log key is its folder's name and a number)."""
    return {key.rsplit("-", 1)[0] for (key,) in con.execute("select log_key from folded_rejections").fetchall()}


def _fold_rejections(con: duckdb.DuckDBPyConnection, folders: list[Path]) -> None:
    if not folders:
        return
    columns = ", ".join(REJECTION_COLUMNS)
    con.execute(f"create or replace temp table folding as {_logged(folders)}")
    con.execute(f"insert into submissions (batch_id, {columns}) select batch_id, {columns} from folding")
    con.execute(
        f"""insert into submission_errors (batch_id, {", ".join(PROBLEM_COLUMNS)})
        select f.batch_id, {", ".join("p." + c for c in PROBLEM_COLUMNS)}
        from read_parquet({_parquet_list(folders, "problems.parquet")}) as p inner join folding as f using (log_key)"""
    )
    con.execute("insert into folded_rejections select log_key from folding")
    con.execute("drop table folding")


def _show_logged_rejections(cur: duckdb.DuckDBPyConnection, folders: list[Path]) -> None:
    """Makes `submissions` and `submission_errors` on this cursor the version's rows and the
    logged ones after them (temp views come first in DuckDB's search path, views included)."""
    database = cur.execute("select current_database()").fetchall()[0][0]
    catalog = '"' + database.replace('"', '""') + '".main.'
    # A version made before the list of folded rejections has none folded. (On the lake it is a view
    # of the snapshot's table.)
    try:
        cur.execute(f"select 1 from {catalog}folded_rejections limit 0")
        folded = True
    except duckdb.CatalogException:
        folded = False
    columns = ", ".join(REJECTION_COLUMNS)
    cur.execute(f"create temp view logged_rejections as {_logged(folders, catalog, bool(folded))}")
    cur.execute(
        f"""create temp view submissions as
        select batch_id, {columns} from {catalog}submissions
        union all
        select batch_id, {columns} from logged_rejections"""
    )
    cur.execute(
        f"""create temp view submission_errors as
        select batch_id, {", ".join(PROBLEM_COLUMNS)} from {catalog}submission_errors
        union all
        select l.batch_id, {", ".join("p." + c for c in PROBLEM_COLUMNS)}
        from read_parquet({_parquet_list(folders, "problems.parquet")}) as p inner join logged_rejections as l using (log_key)"""
    )
