"""A server's read copies: each snapshot it reads, as a DuckDB file of its own, made once in the
background. DuckLake reads its catalog for every table of every query, 3 ms a table on a SQLite
catalog and 10-40 ms on PostgreSQL, which made a view 2 to 6 times slower than the same view on
a DuckDB file; a snapshot never changes, so its copy never goes stale. Until the copy is made,
the lake (ciboard.lake) answers."""

import atexit
import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import duckdb

from ciboard.lake_catalog import LAKE, PREFIX, LakeError, attach_sql, connect, lake_tables, literal, read_all
from ciboard.settings import Settings

COPY = "read_copy"
# Read copies kept per server, the most recently opened first: the current snapshot, the one
# before (a page may still be finishing on it) and one a pinned record was last read at.
COPIES_KEPT = 3

log = logging.getLogger(__name__)
# The connections making read copies in the background, by thread. A process that exits while one
# copies would abort inside DuckDB ("terminate called without an active exception", exit code
# 134): at exit they are interrupted and waited for, and no further copy starts.
_copiers: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
_copying: dict[threading.Thread, duckdb.DuckDBPyConnection] = {}
_exiting = threading.Event()


@atexit.register
def _stop_copying() -> None:
    _exiting.set()
    for con in list(_copying.values()):
        with suppress(duckdb.Error):
            con.interrupt()
    for thread in list(_copiers):
        thread.join(10)


def copies_folder(settings: Settings) -> Path:
    """This server's copies of snapshots it reads: under its own data folder, not the shared lake."""
    return Path(settings.data_dir) / "lake-copies"


class Copier:
    """Makes the read copies a process asks for, in a thread of its own, the newest snapshot
    first, one at a time, and only of the snapshots a reader still has open (`still_read`): an
    ingest of many files reads each snapshot it makes, and copies of the ones in between would
    be wasted.

    The owner's `lock` guards what is asked for: the owner holds it when it asks or forgets, and
    the copier when it looks, so a snapshot asked for while its reader is being opened is looked
    at once the reader is there."""

    def __init__(self, settings: Settings, still_read: Callable[[int], bool], lock: threading.Lock):
        self.settings = settings
        self.still_read = still_read
        self._wanted: dict[int, Path] = {}
        self._thread: threading.Thread | None = None
        self._lock = lock
        self._stopping = threading.Event()

    def ask(self, snapshot: int, copy: Path) -> None:
        """Called holding the owner's lock."""
        self._wanted[snapshot] = copy
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._make_copies, name="lake-read-copies", daemon=True)
            _copiers.add(self._thread)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Returns once the read copies asked for so far are made (or could not be)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def forget(self) -> None:
        """Called holding the owner's lock."""
        self._wanted.clear()

    def stop(self, timeout: float = 10) -> None:
        """Ends the copy being made, if any (its partial file is removed), and waits for the
        thread: once its owner is closed, nothing more is written into its data folder, which
        its owner may be about to remove. Called without the owner's lock, which the thread takes."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        con = _copying.get(thread)
        if con is not None:
            with suppress(duckdb.Error):
                con.interrupt()
        thread.join(timeout)

    def _make_copies(self) -> None:
        while True:
            with self._lock:
                wanted = [n for n in self._wanted if self.still_read(n)]
                if not wanted or _exiting.is_set() or self._stopping.is_set():
                    self._wanted.clear()
                    self._thread = None
                    return
                snapshot = max(wanted)
                copy = self._wanted.pop(snapshot)
            try:
                make_read_copy(self.settings, snapshot, copy, self._stopping)
            except Exception:  # noqa: BLE001 - a copy is only faster; the lake still answers
                if _exiting.is_set() or self._stopping.is_set():
                    return
                log.warning("could not make a read copy of snapshot %s; reading it from the lake", snapshot, exc_info=True)


def make_read_copy(settings: Settings, snapshot: int, target: Path, stopping: threading.Event | None = None) -> None:
    """Copies `snapshot`'s tables into `target`, a DuckDB file, unless it is made already or
    another process is making it. The file appears whole or not at all: not at all once
    `stopping` is set, or the process exits."""
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{target.stem}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another process on this server is making it
        if target.exists():
            return
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        con = connect(settings)
        _copying[threading.current_thread()] = con
        try:
            con.execute(attach_sql(settings, LAKE, read_only=True, snapshot=snapshot))
            con.execute(f"attach {literal(str(partial))} as {COPY}")
            for table, holds_rows in lake_tables(con, LAKE, snapshot).items():
                if _exiting.is_set() or (stopping is not None and stopping.is_set()):
                    raise LakeError("the copy was stopped: its lake is closed, or the process exits")
                con.execute(f'create table {COPY}."{table}" as {read_all(f"{LAKE}.main", table, holds_rows)}')
            con.execute(f"detach {COPY}")
        except BaseException:
            con.close()
            partial.unlink(missing_ok=True)
            raise
        finally:
            _copying.pop(threading.current_thread(), None)
        con.close()
        os.replace(partial, target)
    _forget_old_copies(folder)


def keep_as_read_copy(building: Path, copy: Path) -> None:
    """Makes a publish's private copy, detached and so whole, the read copy of the snapshot it
    holds, unless that snapshot has one already."""
    if copy.exists() or building.with_name(building.name + ".wal").exists():
        return  # a write-ahead log left after the detach: the file alone is not the whole snapshot
    os.replace(building, copy)
    _forget_old_copies(copy.parent)


def _forget_old_copies(folder: Path) -> None:
    """Deletes all but the COPIES_KEPT most recently read copies. A process still reading one
    keeps its open file; one about to open it reads the lake instead."""
    def last_read(copy: Path) -> float:
        try:
            return copy.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    for old in sorted(folder.glob(f"{PREFIX}*.duckdb"), key=last_read, reverse=True)[COPIES_KEPT:]:
        old.unlink(missing_ok=True)
        (folder / f"{old.stem}.lock").unlink(missing_ok=True)
