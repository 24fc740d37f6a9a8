"""The warehouse on DuckLake: one catalog database and Parquet data files, each publish a snapshot.

For more than one server. The file warehouse (ciboard.warehouse) copies a DuckDB file per
version and lets only processes on its own machine read it; here the catalog lives in
PostgreSQL (or, on one machine, a SQLite file: a DuckDB-file catalog would be locked by the
first process that opened it) and the data files in a folder every server mounts. Any number
of servers read; one ingest writes at a time.

The interface is the file warehouse's (`version`, `cursor`, `at`, `workspace`, `publish`,
`pin`, `release`, `log_rejections`), so everything above the storage is the same:
- a version is a snapshot id ('lake-000042'); a reader attaches the lake at that snapshot, so
  a page run reads one snapshot across all its queries, and a pinned record reads its own;
- a publish is one DuckLake transaction, so a failed block writes nothing and readers see all
  of a publish or none of it;
- the views are macros of each reader's own in-memory database over the snapshot's tables,
  made from today's code, so an old snapshot is read through today's views;
- a server reads a snapshot from the lake only until its own read copy is made: the snapshot's
  tables in a local DuckDB file, built once per snapshot in the background (ciboard.read_copies);
- a rejected file writes no snapshot: as on files, it goes to the rejection log, here in the
  lake's folder where every server reads it with the snapshot, and the next publish folds it in
  (a snapshot per rejection would have every server prepare its stored readings again);
- old snapshots expire in `maintain`, after `keep_days`, unless a record pinned them.
"""

import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from ciboard.derivations import refresh_student_year_sums
from ciboard.lake_catalog import (
    LAKE, PREFIX, LakeError, attach_sql, catalog, connect, lake_ddl, lake_files, lake_tables, literal, number, read_all, tables_of,
    version_name,
)
from ciboard.read_copies import COPY, Copier, copies_folder, keep_as_read_copy
from ciboard.settings import Settings
from ciboard.warehouse import (
    FACTS_ORDER, TOUCHED_STUDENTS, WORKSPACE_MEMORY, Warehouse, WarehouseMissing, Workspace, _bytes, _fold_rejections, _folded, code_fingerprint, migrate, migrations, stand_ins, views_sql,
)

log = logging.getLogger(__name__)
# The newest snapshot as this process last read it, by catalog, and when: another process's
# publish goes unseen for at most CURRENT_FOR seconds (a page run then reads the one before it).
CURRENT_FOR = 0.5
_current: dict[str, tuple[int, float]] = {}


class Lake:
    """The lake's catalog as one process sees it: the current snapshot, old ones, readers."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._control: duckdb.DuckDBPyConnection | None = None
        self._readers: dict[int, tuple[duckdb.DuckDBPyConnection, Path, bool]] = {}
        self._retired: list[duckdb.DuckDBPyConnection] = []
        self._lake_id: str | None = None
        # A lake once made stays made, and a snapshot's rows never change: asked on every page run,
        # both are answered from here after the first time.
        self._created = False
        self._infos: dict[tuple[int, str], str | None] = {}
        self._lock = threading.Lock()
        self._copier = Copier(settings, still_read=lambda snapshot: snapshot in self._readers, lock=self._lock)

    def _control_cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._control is None:
                con = connect(self.settings)
                con.execute(attach_sql(self.settings, LAKE, read_only=True))
                self._control = con
            return self._control.cursor()

    def created(self) -> bool:
        if self._created:
            return True
        if catalog(self.settings).startswith("sqlite:"):
            if not Path(catalog(self.settings).removeprefix("sqlite:")).exists():
                return False
        elif not self._postgres_has_lake():
            return False
        with self._control_cursor() as cur:
            try:
                cur.execute(f"select 1 from {LAKE}.schema_migrations limit 0")
            except duckdb.CatalogException:
                return False
        self._created = True
        return True

    def _postgres_has_lake(self) -> bool:
        con = connect(self.settings)
        try:
            con.execute(f"attach {literal(catalog(self.settings).removeprefix('postgres:'))} as catalog (type postgres, read_only)")
            return bool(con.execute(
                "select count(*) from duckdb_tables() where database_name = 'catalog' and table_name = 'ducklake_snapshot'"
            ).fetchall()[0][0])
        finally:
            con.close()

    def current(self, fresh: bool = False) -> int:
        """The newest snapshot. Every query's cursor asks, and the catalog's answer takes 2 to 3 ms
        on SQLite, so an answer is reused for CURRENT_FOR seconds unless `fresh` is asked for (a
        writer's); a publish in this process gives its snapshot at once."""
        key = catalog(self.settings)
        known = _current.get(key)
        if not fresh and known is not None and time.monotonic() - known[1] < CURRENT_FOR:
            return known[0]
        # DuckLake's own snapshot table: its `snapshots()` function takes 6 ms to the table's 1.
        with self._control_cursor() as cur:
            newest = cur.execute(f"select max(snapshot_id) from __ducklake_metadata_{LAKE}.ducklake_snapshot").fetchall()[0][0]
        _current[key] = (newest, time.monotonic())
        return newest

    def snapshots(self) -> list[tuple[int, datetime]]:
        with self._control_cursor() as cur:
            return [(n, at.replace(tzinfo=None)) for n, at in cur.execute(
                f"select snapshot_id, snapshot_time::timestamp from {LAKE}.snapshots() order by 1").fetchall()]

    def info(self, snapshot: int, key: str) -> str | None:
        """A value of `warehouse_info` at `snapshot`; None where it has none."""
        if (snapshot, key) in self._infos:
            return self._infos[snapshot, key]
        with self._control_cursor() as cur:
            try:
                rows = cur.execute(f"select value from {LAKE}.warehouse_info at (version => ?) where key = ?", [snapshot, key]).fetchall()
            except duckdb.CatalogException:
                rows = []  # a lake made before warehouse_info was
        self._infos[snapshot, key] = rows[0][0] if rows else None
        return self._infos[snapshot, key]

    def migrations_done(self, snapshot: int) -> set[int]:
        """The numbers of the migrations applied at `snapshot`."""
        with self._control_cursor() as cur:
            return {n for (n,) in cur.execute(f"select version from {LAKE}.schema_migrations at (version => ?)", [snapshot]).fetchall()}

    def reader(self, snapshot: int, views_sql: Callable[[], str]) -> duckdb.DuckDBPyConnection:
        """A connection reading `snapshot`: an in-memory database whose views name the snapshot's
        tables, and today's macros over them. The tables are the read copy's once it is made,
        and the lake's until then (asking for the copy to be made)."""
        reading = self._readers.get(snapshot)
        copy = reading[1] if reading else self.read_copy(snapshot)
        with self._lock:
            reading = self._readers.get(snapshot)
            if reading is None or (not reading[2] and copy.exists()):
                con = connect(self.settings)
                try:
                    con.execute(f"attach {literal(str(copy))} as {COPY} (read_only)")
                    tables, source, copied = dict.fromkeys(tables_of(con, COPY), True), f"{COPY}.main", True
                    with suppress(FileNotFoundError):
                        os.utime(copy)  # recently read: kept before older copies
                except duckdb.IOException:  # not made yet, or removed since it was seen
                    con.execute(attach_sql(self.settings, LAKE, read_only=True, snapshot=snapshot))
                    tables, source, copied = lake_tables(con, LAKE, snapshot), f"{LAKE}.main", False
                    self._copier.ask(snapshot, copy)
                for table, holds_rows in tables.items():
                    # A snapshot's table that is empty stays empty: a view of its columns alone.
                    con.execute(f'create view "{table}" as {read_all(source, table, holds_rows)}')
                for stand_in in stand_ins(tables):
                    con.execute(stand_in)
                con.execute(views_sql())
                if reading is not None:
                    # A page may still be finishing a query on the connection the copy replaces;
                    # the two last replaced stay open, as the two newest readers do below.
                    self._retired.append(reading[0])
                    while len(self._retired) > 2:
                        self._retired.pop(0).close()
                reading = self._readers[snapshot] = (con, copy, copied)
                # The newest two stay open: a page may still be finishing a query on the older.
                for old in sorted(self._readers)[:-2]:
                    if old != snapshot:
                        self._readers.pop(old)[0].close()
            return reading[0].cursor()

    def read_copy(self, snapshot: int) -> Path:
        """Where this server keeps its copy of `snapshot`. The name holds the lake's own id too, so
        a lake made again in the same place never reads an earlier lake's copy."""
        return copies_folder(self.settings) / f"{version_name(snapshot)}-{self.lake_id()}.duckdb"

    def lake_id(self) -> str:
        """The start of the uuid DuckLake gave the lake's first schema: it tells this lake from
        one made before it in the same place, whose snapshots had the same numbers. Asked once
        per control connection: a page asks for its stored readings' folder often, and a lake
        made again is opened anew."""
        if self._lake_id is None:
            with self._control_cursor() as cur:
                [(schema_uuid,)] = cur.execute(
                    f"select schema_uuid from __ducklake_metadata_{LAKE}.ducklake_schema order by schema_id limit 1"
                ).fetchall()
            self._lake_id = str(schema_uuid)[:8]
        return self._lake_id

    def wait_for_copies(self, timeout: float | None = None) -> None:
        """Returns once the read copies asked for so far are made (or could not be)."""
        self._copier.wait(timeout)

    def close(self) -> None:
        self._copier.stop()
        with self._lock:
            for con, _, _ in self._readers.values():
                con.close()
            for con in self._retired:
                con.close()
            self._readers.clear()
            self._retired.clear()
            self._copier.forget()
            if self._control is not None:
                self._control.close()
                self._control = None
            self._lake_id = None
            self._created = False
            self._infos.clear()
            _current.pop(catalog(self.settings), None)

    @contextmanager
    def workspace(self, memory: str, spill_parent: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, int]]:
        spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=spill_parent))
        con = connect(self.settings, memory_limit=memory, temp_directory=str(spill))
        try:
            snapshot = self.current(fresh=True)
            self.attach_published(con, snapshot)
            yield con, snapshot
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)

    def attach_published(self, con: duckdb.DuckDBPyConnection, snapshot: int) -> None:
        """`snapshot` as the database `published`, and in use: its read copy where this server has
        one (an ingest's checks read it many times, each read of the lake also reading its catalog),
        and the lake otherwise."""
        try:
            con.execute(f"attach {literal(str(self.read_copy(snapshot)))} as published (read_only)")
        except duckdb.IOException:
            con.execute(attach_sql(self.settings, "published", read_only=True, snapshot=snapshot))
        con.execute("use published")

    def expire(self, keep_days: float, pinned: set[int]) -> list[int]:
        """Expires snapshots older than `keep_days`, except pinned ones and the current one,
        deletes the files only they used, and merges small files; returns the expired ids."""
        cutoff = datetime.now() - timedelta(days=keep_days)
        current = self.current(fresh=True)
        old = [n for n, at in self.snapshots() if at < cutoff and n != current and n not in pinned]
        con = connect(self.settings)
        try:
            con.execute(attach_sql(self.settings, LAKE, read_only=False))
            if old:
                con.execute(f"call ducklake_expire_snapshots({literal(LAKE)}, versions => {old})")
            con.execute(f"call ducklake_merge_adjacent_files({literal(LAKE)})")
            con.execute(f"call ducklake_cleanup_old_files({literal(LAKE)}, cleanup_all => true)")
            # Files an ingest wrote and never committed (it was killed): no ingest runs meanwhile,
            # as maintenance holds the writer's lock.
            con.execute(f"call ducklake_delete_orphaned_files({literal(LAKE)}, cleanup_all => true)")
        finally:
            con.close()
        self.close()
        return old

    def data_bytes(self) -> int:
        return sum(p.stat().st_size for p in lake_files(self.settings).rglob("*") if p.is_file())


class LakeWarehouse(Warehouse):
    """The warehouse's interface (ciboard.warehouse.Warehouse) over a DuckLake; what it does
    not override (pins, the writer's lock, the rejection log, migrations' check in `at`) it shares."""

    def __init__(self, settings: Settings, *, fixed_version: str | None = None):
        super().__init__(settings, fixed_version=fixed_version)
        self.directory = settings.lake_dir
        self.lake = Lake(settings)

    def exists(self) -> bool:
        return self.lake.created()

    def version(self) -> str:
        if self.fixed_version is not None:
            return self.fixed_version
        try:
            return version_name(self.lake.current())
        except duckdb.Error:
            if self.exists():
                raise
        raise WarehouseMissing(f"no warehouse in the lake {catalog(self.settings)}: run 'ciboard demo' or 'ciboard init' first")

    def resolve(self, version: str) -> str:
        """The snapshot a version id names: a file warehouse's version that `migrate-to-lake`
        moved in (a record pinned it before the move) is the snapshot it became."""
        if version.startswith(PREFIX):
            return version
        with self.lake.reader(self.lake.current(), views_sql) as cur:
            if not _has_table(cur, "version_aliases"):
                return version
            found = cur.execute("select snapshot from version_aliases where file_version = ?", [version]).fetchall()
        return version_name(found[0][0]) if found else version

    def is_kept(self, version: str) -> bool:
        try:
            wanted = number(self.resolve(version))
        except LakeError:
            return False  # a file warehouse's version that was not moved into the lake
        return any(n == wanted for n, _ in self.lake.snapshots())

    def at(self, version: str) -> "LakeWarehouse":
        return super().at(self.resolve(version))

    def cursor(self, version: str | None = None) -> duckdb.DuckDBPyConnection:
        return self._with_logged_rejections(self.lake.reader(number(self.resolve(version or self.version())), views_sql))

    def close(self) -> None:
        self.lake.close()

    def is_current_code(self) -> bool:
        """Asked of the lake's catalog: a reader of the snapshot would build all its views first."""
        return self.lake.info(number(self.resolve(self.version())), "code_fingerprint") == code_fingerprint()

    def _version_key(self) -> str:
        return f"{catalog(self.settings)}@{self.version()}"

    def shared_folder(self) -> Path:
        """In the lake's folder, which every server mounts: servers on one lake each have a data
        folder of their own, and would otherwise each work out the same readings. Under the
        lake's id, so a lake made again in the same place never reads what an earlier one's
        snapshots gave."""
        return self.settings.lake_dir / "shared" / self.lake.lake_id()

    @contextmanager
    def workspace(self) -> Iterator[Workspace]:
        self._refuse_writes()
        self.version()  # says how to make a warehouse if there is none
        self.directory.mkdir(parents=True, exist_ok=True)
        memory = min(self.settings.memory_limit, WORKSPACE_MEMORY, key=_bytes)
        with self.lake.workspace(memory, self.directory) as (con, snapshot):
            yield Workspace(con, version_name(snapshot))

    @contextmanager
    def publish(self, workspace: Workspace | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private copy of the current snapshot's tables, a DuckDB file of this server's, for the
        block to change as it likes; if it succeeds, what changed is written to the lake in one
        transaction, one snapshot, and the copy becomes this server's read copy of that snapshot.
        If the block raises, nothing is written at all.

        The copy is a copy of the snapshot's read copy where this server has one (a file copy,
        as the file warehouse makes), and read from the lake otherwise; the snapshot as staged
        stays beside it (a hard link to the read copy), to tell what the block changed. A block
        that names the students it touched (TOUCHED_STUDENTS) has only their rows compared, as
        long as no other row changed. Written row by row, each
        of a command's files would add a Parquet file per table, and every later check in the
        command would read all of them: staged, a command of 400 files adds one file per table it
        changed. Rejections logged since are written into it too.
        """
        self._refuse_writes()
        with self.writer_lock():
            self._migrate()
            spill = None
            if workspace is None:
                spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=self.directory))
                con = connect(self.settings, temp_directory=str(spill))
            else:
                con = workspace.con
            base = self.lake.current(fresh=True)
            building = copies_folder(self.settings) / f"building-{os.getpid()}-{threading.get_ident()}.partial"
            # The snapshot as staged, for telling what the block changed.
            before = building.with_suffix(".before")
            building.parent.mkdir(parents=True, exist_ok=True)
            # Under the writer's lock no other publish runs: any other is a killed one's leftover.
            for leftover in building.parent.glob("building-*"):
                leftover.unlink(missing_ok=True)
            con.execute(f"drop table if exists temp.{TOUCHED_STUDENTS}")
            try:
                started = time.perf_counter()
                source = "read copy"
                try:
                    _link_or_copy(self.lake.read_copy(base), before)
                except FileNotFoundError:
                    source = "lake"
                    con.execute(attach_sql(self.settings, "base", read_only=True, snapshot=base))
                    con.execute(f"attach {literal(str(before))} as before")
                    for table, holds_rows in lake_tables(con, "base", base).items():
                        con.execute(f'create table before."{table}" as {read_all("base.main", table, holds_rows)}')
                    # Attached, the lake makes every look at DuckDB's catalog read its catalog too.
                    con.execute("detach base")
                    con.execute("checkpoint before")
                    con.execute("detach before")
                shutil.copyfile(before, building)
                con.execute(f"attach {literal(str(before))} as before (read_only)")
                con.execute(f"attach {literal(str(building))} as building")
                con.execute("use building")
                self._bring_up_to_code(con)
                logged = self._logged_rejections()
                held = _folded(con)
                _fold_rejections(con, logged)
                phases = {"staging": time.perf_counter() - started}
                yield con
                phases["command"] = time.perf_counter() - started - phases["staging"]
                con.execute("use memory")
                if workspace is not None:
                    # A SQLite catalog takes no write while this connection still reads it.
                    con.execute("detach published")
                changed, narrowed, snapshot = self._write_changes(con, base, phases)
                _current[catalog(self.settings)] = (snapshot, time.monotonic())
                con.execute("detach building")
                # What the block made is the snapshot it wrote (or, unchanged, the one it read).
                keep_as_read_copy(building, self.lake.read_copy(snapshot))
                phases["writing"] = time.perf_counter() - started - sum(phases.values())
                # What a lake publish spends where (bench_core.py and bench_lake.py print it):
                # staging the snapshot's tables, the command's own work, finding what changed, and
                # writing it to the lake, then keeping the copy.
                log.debug("publish of snapshot %s: staged from the %s, %s changed (%s compared by the touched students); %s",
                          base, source, ", ".join(changed) or "none", ", ".join(narrowed) or "none",
                          ", ".join(f"{k} {v:.3f} s" for k, v in phases.items()),
                          extra={"phases": phases, "source": source, "narrowed": narrowed})
            finally:
                con.execute("use memory")
                con.execute(f"drop table if exists temp.{TOUCHED_STUDENTS}")
                for alias in ("building", "before", "base", "target"):
                    try:
                        con.execute(f"detach {alias}")
                    except duckdb.Error:
                        pass  # not attached (the block failed before it)
                for leftover in (building, before, *(path.with_name(path.name + ".wal") for path in (building, before))):
                    leftover.unlink(missing_ok=True)
                if workspace is None:
                    con.close()
                    shutil.rmtree(spill, ignore_errors=True)
                else:
                    if not _attached(con, "published"):
                        self.lake.attach_published(con, number(workspace.version))
                    con.execute("use published")
            # A log folder goes a publish after the one that folded it in: a reader that listed
            # it just before that publish may still be reading it.
            for folder in logged:
                if folder.name in held:
                    shutil.rmtree(folder, ignore_errors=True)

    def _migrate(self) -> None:
        """Today's migrations, in a snapshot of their own before any data is staged. Where none
        is pending and only the views or the shipped profiles changed, the publish brings its
        staged copy up to them instead (`_bring_up_to_code`): a snapshot of its own would have
        no read copy, and the publish after it would stage every table from the lake (about 11 s
        more at 10M facts)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lake_files(self.settings).mkdir(parents=True, exist_ok=True)
        _readers_never_block_writers(self.settings)  # a lake made before this holds too
        if self.lake.created() and (self.is_current_code() or not self._migrations_pending()):
            return
        self.lake.close()  # the control connection read a catalog that had no lake yet
        created = self.lake.created()
        # A migration may rewrite a table (016 sorts every fact): what does not fit in memory
        # spills here, not into whatever folder the process runs in.
        spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=self.directory))
        con = connect(self.settings, temp_directory=str(spill))
        try:
            con.execute(attach_sql(self.settings, "target", read_only=False, create=not created))
            con.execute("use target")
            con.execute("begin")
            migrate(con, lake_ddl)
            con.execute("commit")
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
            _current.pop(catalog(self.settings), None)
        _readers_never_block_writers(self.settings)  # a catalog just made

    def _migrations_pending(self) -> bool:
        return bool({n for n, _, _ in migrations()} - self.lake.migrations_done(self.lake.current(fresh=True)))

    def _bring_up_to_code(self, con: duckdb.DuckDBPyConnection) -> None:
        """In the staged copy of a snapshot older code wrote, with no migration pending
        (`_migrate`): today's shipped profiles and code fingerprint, written with the block's
        changes. The views are each reader's own."""
        if not self.is_current_code():
            migrate(con, lake_ddl)

    def _write_changes(self, con: duckdb.DuckDBPyConnection, base: int, phases: dict[str, float]) -> tuple[list[str], list[str], int]:
        """Writes what the block changed in the staged tables (`building`) since snapshot `base`
        (`before`). Rows are told apart by the hash of all their columns: where a hash's count
        differs now, the lake's rows with it are deleted and the staged ones inserted. So the lake
        is read for nothing here, two rows sharing a hash cost a rewrite and never a loss, and a
        table the block did not change is not written. Where the block named the students it
        touched, a table keyed by student_key compares only their rows (`_compare`). Returns the
        tables written, those compared by the touched students, and the snapshot that holds them
        (`base` when nothing changed); `phases` gains the time spent comparing."""
        started = time.perf_counter()
        now, was = tables_of(con, "building"), set(tables_of(con, "before"))
        touched = _has_temp_table(con, TOUCHED_STUDENTS)
        changes: list[str] = []
        dropped = sorted(was - set(now))
        written = list(dropped)
        narrowed = []
        for table in now:
            if table not in was:
                changes.append(f'create table target."{table}" as select * from building."{table}"')
                written.append(table)
                continue
            if not _holds_rows(con, "before", table):
                # Every row is new (a first load, or a warehouse moved in): nothing to compare.
                if _holds_rows(con, "building", table):
                    changes.append(f'insert into target."{table}" select * from building."{table}"')
                    written.append(table)
                continue
            row_hash = _row_hash(con, table)
            of_touched = touched and "student_key" in _columns(con, "building", table) and self._compare(con, table, row_hash, True)
            if of_touched:
                narrowed.append(table)
            else:
                self._compare(con, table, row_hash, False)
            [(count, any_was_there)] = con.execute(f'select count(*), bool_or(was_there) from "changed_{table}"').fetchall()
            if not count:
                continue
            written.append(table)
            # Every changed row is a touched student's: the key narrows the lake's rows to hash.
            theirs = f"student_key in (select student_key from temp.{TOUCHED_STUDENTS}) and " if of_touched else ""
            if any_was_there:  # a delete reads the lake's table: 30 to 130 ms, on a table of any size
                changes.append(
                    f'delete from target."{table}" where {theirs}{row_hash} in (select h from "changed_{table}" where was_there)'
                )
            changes.append(
                f'insert into target."{table}" select * from building."{table}"'
                f' where {theirs}{row_hash} in (select h from "changed_{table}")'
            )
        changes += [f'drop table target."{table}"' for table in dropped]
        phases["comparing"] = time.perf_counter() - started
        if not changes:
            return [], narrowed, base
        con.execute(attach_sql(self.settings, "target", read_only=False))
        con.execute("begin")
        try:
            latest = con.execute("select max(snapshot_id) from target.snapshots()").fetchall()[0][0]
            if latest != base:
                raise LakeError(
                    f"another process wrote the lake (snapshot {latest}) while this one staged snapshot {base}'s "
                    "tables: one ingest at a time (see the README's deployment section)"
                )
            for statement in changes:
                con.execute(statement)
            con.execute("commit")
        except BaseException:
            with suppress(duckdb.Error):
                con.execute("rollback")  # unless the failed commit ended the transaction
            raise
        # One writer at a time (the lock, and the check above): the snapshot after the commit is ours.
        return written, narrowed, con.execute("select max(snapshot_id) from target.snapshots()").fetchall()[0][0]

    def _compare(self, con: duckdb.DuckDBPyConnection, table: str, row_hash: str, of_touched: bool) -> bool:
        """Leaves in temp table changed_<table> each hash whose count of rows differs between
        `before` and `building`, and whether `before` had it. With `of_touched`, only the touched
        students' rows are counted by hash, and the answer is False (nothing left) unless the
        other rows are the same in both: as many, with the same sum of hashes. Each side is read
        once: the other rows are one group, the hash left null."""
        for side in ("before", "building"):
            if of_touched:
                con.execute(
                    f"""create or replace temp table "{side}_{table}" as
                    select case when touched.student_key is not null then h end as h, count(*) as n, sum(h::hugeint) as s
                    from (select {row_hash} as h, student_key from {side}."{table}") as t
                    left join (select distinct student_key from temp.{TOUCHED_STUDENTS}) as touched using (student_key)
                    group by 1"""
                )
            else:
                con.execute(
                    f'create or replace temp table "{side}_{table}" as select {row_hash} as h, count(*) as n'
                    f' from {side}."{table}" group by h'
                )
        if of_touched:
            [(same,)] = con.execute(
                f"""select (select (n, s) from "before_{table}" where h is null)
                    is not distinct from (select (n, s) from "building_{table}" where h is null)"""
            ).fetchall()
            if not same:
                log.warning("a publish changed rows of %s of students it did not name as touched: all its rows compared", table)
                return False
        con.execute(
            f"""create or replace temp table "changed_{table}" as
            select h, was.n is not null as was_there
            from "building_{table}" as now full outer join "before_{table}" as was using (h)
            where h is not null and now.n is distinct from was.n"""
        )
        con.execute(f'drop table "before_{table}"')
        con.execute(f'drop table "building_{table}"')
        return True

    def maintain(self) -> list[int]:
        """Expires snapshots older than `keep_days` that no record pinned, merges small files
        and deletes the files no snapshot kept reads; returns the expired snapshots' ids."""
        self._refuse_writes()
        with self.writer_lock():
            pinned = set()
            for version in self.pins():
                with suppress(LakeError):
                    pinned.add(number(self.resolve(version)))
            return self.lake.expire(self.settings.keep_days, pinned)

    def move_in(self, sources: list[tuple[str, Path]], pins: dict[str, list[str]]) -> dict[str, str]:
        """Makes a new lake from file-warehouse versions, oldest first: each becomes a snapshot
        (its tables' rows by column name; a column an older version lacks stays empty), and the
        records that pinned one pin its snapshot. `sources` are (version id, DuckDB file or
        EXPORT DATABASE folder). Returns each version's snapshot."""
        if self.exists():
            raise LakeError(f"the lake {catalog(self.settings)} has a warehouse already: move into an empty one")
        for _, source in sources:  # each readable before the lake is made, or no lake at all
            scratch = duckdb.connect(":memory:")
            try:
                _attach_source(scratch, source)
            finally:
                scratch.close()
        moved: dict[str, str] = {}
        for version, source in sources:
            with self.publish() as con:
                _attach_source(con, source)
                theirs, ours = tables_of(con, "source"), tables_of(con, "building")
                con.execute("use building")
                for table in ours:
                    if table in ("schema_migrations", "warehouse_info", "version_aliases"):
                        continue
                    if table in theirs:
                        con.execute(f'delete from "{table}"')
                        in_order = f" order by {FACTS_ORDER}" if table == "facts" else ""
                        con.execute(f'insert into "{table}" by name select * from source."{table}"{in_order}')
                if "student_year_sums" not in theirs:  # a version made before them: summed from its facts
                    refresh_student_year_sums(con)
                con.execute("use memory")
                con.execute("detach source")
            moved[version] = self.version()
        with self.publish() as con:
            con.execute("create table if not exists version_aliases (file_version varchar not null, snapshot bigint not null)")
            con.executemany("insert into version_aliases values (?, ?)", [[v, number(s)] for v, s in moved.items()])
        for version, records in pins.items():
            for record in records:
                if version in moved:
                    self.pin(moved[version], record)
        return moved


def _readers_never_block_writers(settings: Settings) -> None:
    """Puts a SQLite catalog in write-ahead-log mode. In SQLite's default mode a query reading
    the catalog (every query on the lake does) makes another process's commit fail with
    'database is locked'; with the log, readers and the one writer go on side by side."""
    if not catalog(settings).startswith("sqlite:"):
        return
    path = Path(catalog(settings).removeprefix("sqlite:"))
    if not path.exists():
        return  # DuckLake makes it
    if _in_wal_mode(path):
        # Asked through Python's sqlite3, this would be a second SQLite library in the process
        # beside DuckDB's. Neither sees the other's connections (POSIX locks are per process),
        # so closing this one, taken for the catalog's last, removes the log's files under
        # DuckDB's open handles: a later read failed with "disk I/O error".
        return
    with closing(sqlite3.connect(path, timeout=1)) as db:
        if db.execute("pragma journal_mode").fetchone()[0] != "wal":
            with suppress(sqlite3.OperationalError):  # a reader still holds the old mode: the next publish tries again
                db.execute("pragma journal_mode = wal")


def _in_wal_mode(catalog_file: Path) -> bool:
    """Read off the file's header (its write and read format versions are 2 in WAL mode), not
    through a connection."""
    with open(catalog_file, "rb") as header:
        return header.read(20)[18:20] == b"\x02\x02"


def _columns(con: duckdb.DuckDBPyConnection, database: str, table: str) -> list[str]:
    return [d[0] for d in con.execute(f'select * from {database}."{table}" limit 0').description]


def _row_hash(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The hash of all of a staged table's columns, as SQL."""
    return "hash(" + ", ".join('"' + name.replace('"', '""') + '"' for name in _columns(con, "building", table)) + ")"


def _holds_rows(con: duckdb.DuckDBPyConnection, database: str, table: str) -> bool:
    return bool(con.execute(f'select count(*) from (select 1 from {database}."{table}" limit 1)').fetchall()[0][0])


def _has_temp_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where temporary and table_name = ?", [name]
    ).fetchall()[0][0])


def _link_or_copy(source: Path, target: Path) -> None:
    """`target` holds `source`'s bytes whatever later happens to `source`: a hard link where the
    file system makes one (a read copy is never written again, only replaced or deleted)."""
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copyfile(source, target)


def _attached(con: duckdb.DuckDBPyConnection, alias: str) -> bool:
    return bool(con.execute("select count(*) from duckdb_databases() where database_name = ?", [alias]).fetchall()[0][0])


def _has_table(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(cur.execute("select count(*) from duckdb_tables() where table_name = ?", [name]).fetchall()[0][0]) or bool(
        cur.execute("select count(*) from duckdb_views() where view_name = ? and not internal", [name]).fetchall()[0][0]
    )


def _attach_source(con: duckdb.DuckDBPyConnection, source: Path) -> None:
    """A file warehouse's version as the database `source`: its DuckDB file, or the folder DuckDB's
    EXPORT DATABASE wrote (a file written by a newer DuckDB opens only that way)."""
    if source.is_dir():
        con.execute("attach ':memory:' as source")
        con.execute("use source")
        schema = (source / "schema.sql").read_text()
        # The export's views are the macros of the version's own code: the lake makes today's.
        tables = [s for s in schema.split(";") if re.match(r"\s*create\s+table", s, re.IGNORECASE)]
        for statement in tables:
            con.execute(statement)
        for statement in (source / "load.sql").read_text().split(";"):
            if statement.strip():
                con.execute(_load_from(statement, source))
        con.execute("use memory")
        return
    try:
        con.execute(f"attach {literal(str(source))} as source (read_only)")
    except duckdb.Error as error:
        if "version number" in str(error):
            raise LakeError(
                f"{source} was written by a newer DuckDB than this one ({duckdb.__version__}): with that DuckDB, "
                f"run EXPORT DATABASE 'folder' (FORMAT parquet) on it, then ciboard migrate-to-lake --from-export folder"
            ) from None
        raise


def _load_from(statement: str, folder: Path) -> str:
    """A load.sql statement reading its file from `folder`, wherever the export was written."""
    return re.sub(r"'([^']*/)?([^'/]+\.(parquet|csv))'", lambda m: literal(folder / m.group(2)), statement)
