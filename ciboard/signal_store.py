"""Signals kept per warehouse version, so that no page charts every weekly metric for every
vendor and student group on its first open (tens of seconds on the demo, more at scale).

What is kept is every chart's special-cause points (`signals.special_points`), not the
signals: a reader picks them from its own "since" (`signals.pick`), so one set answers every
last-meeting date. A set is kept per request: the scope it is read in, a date range and a
vendor filter. The scope is the query layer's, so a set holds what that scope may see and
nothing more: each vendor's set is read through its own vendor scope, and the district's
staff (facilitators and admins, who see the same hidden cells and the same noise) share
one set read as a facilitator. A reader only ever opens the set of its own scope.

The gaps between student groups a draft meeting checks (`followup.gap_changes`, a hundred
breakdowns) are kept the same way, one JSON file per meeting reading (`GapRequest`): they
depend on the data and the meeting's dates only, so a version computes each once. So are how
each open commitment's and PDSA cycle's metric moved (`MovementRequest`), and the few views a
page opens on that take seconds at scale (`ViewRequest`: payments, flagged sessions, coverage).

Sets live in signals/<version>/ of the folder every server of the warehouse shares
(`Warehouse.shared_folder`: the data folder, or on a lake the lake's folder), one Parquet file
each, written aside and renamed into place, so every server process reads them and none sees
half a file. A new version starts with none: a publish leaves the old sets unused, and the
folders of versions no longer kept are deleted.

One thread per server (`watch`) prepares the sets of the current version that are missing: at
start, and after every publish, whoever published. While it works it holds a lock file, so
pages can say what is being prepared rather than compute the same thing again beside it (on two
cores that doubles the wait), and servers sharing a warehouse prepare them once: the first
to start prepares, and the others' pages wait for it and ask it for what they need first.
"""

import argparse
import ctypes
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from ciboard import accounts, meetings, signals
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from ciboard.queries import BOOLEAN_DIMENSIONS, CHECKED, NOT_TUTORED, readable, run, service_checks_key
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse, version_number

FOLDER = "signals"
LOCK = ".preparing"
PLAN = ".plan.json"  # the keys of the sets the thread at work will store, in order
UNDER_WAY = ".under_way.json"  # the key of the reading the thread at work is computing now
ASKED = ".asked"  # a file per planned reading a page waits for: the preparation takes these first
PR_SET_PDEATHSIG = 1  # linux/prctl.h
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One stored set: the special-cause points of every chart over [start, end], read as `scope`
    (its text, e.g. 'vendor:V3'), filtered to `vendors` if any."""

    scope: str
    start: date
    end: date
    vendors: tuple[str, ...] = ()

    def key(self) -> str:
        """Names the set's files. The end is left out: it is matched apart (`_matches`)."""
        text = json.dumps([self.scope, self.start.isoformat(), sorted(self.vendors)])
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def request(scope: Scope, start: Any, end: Any, filters: Mapping[str, Any] | None = None) -> Request | None:
    """The stored set that answers `signals.signals(scope, start=, end=, filters=)` with every
    group dimension, or None where no set can: filters other than vendors, or no dates."""
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "", [], ())}
    if set(filters) - {"vendor_id"} or start in (None, "") or end in (None, ""):
        return None
    # A signal names a group, never a student, and an evaluator reads what an analyst reads: its
    # signals are the analyst's, which the server prepares anyway.
    read_as = str(ANALYST) if scope.role == "evaluator" else _shared_reading(scope)
    if read_as is None:
        return None
    vendors = filters.get("vendor_id", ())
    vendors = (vendors,) if isinstance(vendors, str) else tuple(vendors)
    if scope.role == "vendor" and set(vendors) == {scope.vendor_id}:
        vendors = ()  # the vendor's own, which its scope reads anyway
    return Request(read_as, _day(start), _day(end), tuple(sorted(vendors)))


@dataclass(frozen=True)
class GapRequest:
    """One stored reading of `followup.gap_changes`: read as `scope` (its text), gaps since
    `since` against before it, up to `until`, filtered to `vendors` if any."""

    scope: str
    since: date
    until: date
    vendors: tuple[str, ...] = ()

    def key(self) -> str:
        text = json.dumps(["gaps", self.scope, self.since.isoformat(), self.until.isoformat(), sorted(self.vendors)])
        return "gaps-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def gap_request(scope: Scope, since: Any, until: Any, filters: Mapping[str, Any] | None = None) -> GapRequest | None:
    """The stored reading that answers `followup.gap_changes(scope, since, until, filters)`,
    or None where none can: filters other than vendors."""
    signal_set = request(scope, since, until, filters)
    if signal_set is None:
        return None
    return GapRequest(signal_set.scope, signal_set.start, signal_set.end, signal_set.vendors)


def gaps_of(warehouse: Warehouse, scope: Scope, since: date, until: date, filters: Mapping[str, Any],
            compute: Callable[..., list[dict]], *, wait: bool = True) -> list[dict] | None:
    """`compute(warehouse, scope, since, until, filters)` (followup.gap_changes), from the
    stored reading where the server has prepared one. While it prepares it: with `wait`,
    waiting is sooner than computing it again beside it; without, None."""
    return _stored_or(warehouse, scope, gap_request(scope, since, until, filters),
                      lambda: compute(warehouse, scope, since, until, dict(filters)), wait)


@dataclass(frozen=True)
class MovementRequest:
    """One stored `movements.metric_movement`, as its dict: the metric for `slice` (a Slice as
    JSON) before `since` against from `since` to `until`, read as `scope` (its text)."""

    scope: str
    metric_id: str
    slice: str
    since: date
    until: date | None

    def key(self) -> str:
        text = json.dumps(["movement", self.scope, self.metric_id, self.slice, self.since.isoformat(),
                           self.until.isoformat() if self.until else None])
        return "movement-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def movement_request(scope: Scope, metric_id: str, slice: Mapping[str, Any], since: Any,
                     until: Any) -> MovementRequest | None:
    """The stored movement that answers `movements.metric_movement` in this scope, or None where
    none can: an evaluator's are read live, in its own scope."""
    read_as = _shared_reading(scope)
    if read_as is None:
        return None
    return MovementRequest(read_as, metric_id, json.dumps(dict(slice), sort_keys=True, default=str), _day(since),
                           _day(until) if until not in (None, "") else None)


def movement_of(warehouse: Warehouse, scope: Scope, metric_id: str, slice: Mapping[str, Any], since: date,
                until: date | None, compute: Callable[[], dict], *, wait: bool = True) -> dict | None:
    """`compute()` (movements.metric_movement as a dict), from the stored one where the server
    has prepared it; while it prepares it, as `gaps_of`."""
    return _stored_or(warehouse, scope, movement_request(scope, metric_id, slice, since, until), compute, wait)


# Views a page opens on that take seconds at scale, kept per version too. Each reads the version
# and the district's session-check settings and decisions only: not the rejection log (readers
# see a rejected file without a new version), nor the day.
STORED_VIEWS = ("payments", "session_check_counts", "session_checks", "coverage")


@dataclass(frozen=True)
class ViewRequest:
    """One stored `queries.run(view, scope, params)` with the session checks as `checks` says
    (`queries.service_checks_key`): a decision about a flagged session gives a new reading."""

    view: str
    scope: str
    params: tuple[tuple[str, Any], ...]
    checks: str = ""

    def key(self) -> str:
        text = json.dumps(["view", self.view, self.scope, self.params, self.checks], default=str)
        return "view-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def view_request(warehouse: Warehouse, scope: Scope, view: str, params: Mapping[str, Any]) -> ViewRequest | None:
    """The stored reading that answers `queries.run(warehouse, view, scope, params)`, or None
    where none can: another view, or a school's or an evaluator's scope."""
    if view not in STORED_VIEWS or scope.role in ("school", "evaluator"):
        return None
    given = tuple(sorted(
        (k, tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v))
        for k, v in params.items() if v not in (None, "", [], ())
    ))
    return ViewRequest(view, str(scope), given, service_checks_key(warehouse) if view in CHECKED else "")


def view_of(warehouse: Warehouse, scope: Scope, view: str, params: Mapping[str, Any], *,
            wait: bool = True) -> pd.DataFrame | None:
    """`queries.run(warehouse, view, scope, params)`, from the stored reading where the server has
    prepared one; while it prepares it, as `gaps_of`."""
    wanted = view_request(warehouse, scope, view, params)
    return _stored_or(warehouse, scope, wanted, lambda: run(warehouse, view, scope, dict(params)), wait)


def view_being_prepared(warehouse: Warehouse, scope: Scope, view: str, params: Mapping[str, Any]) -> bool:
    """Whether a thread is at work on this version and will store this reading."""
    wanted = view_request(warehouse, scope, view, params)
    return wanted is not None and _being_prepared(warehouse, wanted)


def _stored_or(warehouse: Warehouse, scope: Scope, wanted: "GapRequest | MovementRequest | ViewRequest | None",
               compute: Callable[[], Any], wait: bool) -> Any:
    """The stored reading of `wanted`; while it is being prepared, the reading once stored with
    `wait` and None without; else `compute()`, kept (`_computed_and_kept`)."""
    if wanted is None:
        return compute()
    path = _path(warehouse, wanted)
    while path is None and _being_prepared(warehouse, wanted):
        if not wait:
            return None
        time.sleep(0.5)
        path = _path(warehouse, wanted)
    if path is None:
        return _computed_and_kept(warehouse, scope, wanted, compute)
    if isinstance(wanted, ViewRequest):
        frame = pd.read_parquet(path)
        frame.attrs = {"version": warehouse.version()}
        return frame
    return json.loads(path.read_text())


def _computed_and_kept(warehouse: Warehouse, scope: Scope, wanted: "Reading", compute: Callable[[], Any]) -> Any:
    """`compute()` (as `scope`), kept as the reading of `wanted` for every later reader of the
    version: a meeting the server did not prepare is computed once, not once per reader. Kept only
    as read in the very scope it is kept for (an admin reads the facilitators' readings but keeps
    none), and only if no publish, nor a decision about flagged sessions a view counts by, came
    while it was computed."""
    version = warehouse.version()
    reading = compute()
    current = not isinstance(wanted, ViewRequest) or wanted.view not in CHECKED or (
        wanted.checks == service_checks_key(warehouse))
    if str(scope) == wanted.scope and warehouse.version() == version and current:
        folder = _folder(warehouse, version)
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder, wanted, reading)
    return reading


def _shared_reading(scope: Scope) -> str | None:
    """The scope a stored reading is kept in: facilitators and admins read the same cells,
    hidden and noised alike, so they share one; a vendor's and a school's are their own.
    Evaluators keep none: theirs name students by their own pseudonyms, so they are read
    live in their own scope."""
    if scope.role == "evaluator":
        return None
    return str(scope) if scope.role in ("analyst", "vendor", "school") else "facilitator"


def stored(
    warehouse: Warehouse,
    scope: Scope,
    *,
    start: Any,
    end: Any,
    since: date | None,
    filters: Mapping[str, Any] | None = None,
    dimensions: Iterable[str] = signals.GROUP_DIMENSIONS,
) -> pd.DataFrame | None:
    """What `signals.signals` would return, from the stored set; None if there is none (yet)."""
    wanted = request(scope, start, end, filters)
    if wanted is None or tuple(dimensions) != signals.GROUP_DIMENSIONS:
        return None
    points = _read(warehouse, wanted)
    return None if points is None else signals.pick(points, since)


def being_prepared(warehouse: Warehouse, scope: Scope, *, start: Any, end: Any,
                   filters: Mapping[str, Any] | None = None) -> bool:
    """Whether a thread is at work on this version and will store this request's set."""
    wanted = request(scope, start, end, filters)
    return wanted is not None and _being_prepared(warehouse, wanted)


Reading = Request | GapRequest | MovementRequest | ViewRequest


def _planned(wanted: Reading) -> list[str]:
    """How the plan file names a reading: a signal set by its key and end, as it matches them."""
    return [wanted.key(), wanted.end.isoformat()] if isinstance(wanted, Request) else [wanted.key()]


def _being_prepared(warehouse: Warehouse, wanted: Reading) -> bool:
    """Whether waiting for the preparation is sooner than computing the reading here: for a signal
    set, gap or movement (half a minute at scale), while it is planned, and the preparation is
    asked to take it next; for a view (seconds), only while it is the reading under way, since
    one queued behind others is sooner computed on the page. Not once it is stored: the
    preparation goes on to other readings, and a page waiting on this one must not wait for
    them too."""
    folder = _folder(warehouse)
    if _path(warehouse, wanted) is not None:
        return False
    if _locked(folder):
        try:
            if isinstance(wanted, ViewRequest):
                return _planned(wanted) == json.loads((folder / UNDER_WAY).read_text())
            planned = _planned(wanted) in json.loads((folder / PLAN).read_text())
        except (FileNotFoundError, ValueError):
            return False
    elif isinstance(wanted, ViewRequest):
        return False
    else:
        # Between a publish and the preparation taking the lock: this process's thread will
        # prepare what it prepared for the version before.
        watcher = _watching.get(Path(warehouse.settings.data_dir).resolve())
        planned = (
            watcher is not None and watcher.thread.is_alive() and watcher.failed != warehouse.version()
            and wanted in watcher.planned
        )
    if planned:
        _ask(folder, wanted)
    return planned


def _ask(folder: Path, wanted: Reading) -> None:
    """Tells the preparation of `folder`'s version that a page waits for `wanted`: the meeting a
    facilitator opens is not left behind every other scope's readings."""
    key = json.dumps(_planned(wanted))
    asked = folder / ASKED / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
    if not asked.exists():
        asked.parent.mkdir(parents=True, exist_ok=True)
        _write_aside(asked, key.encode())


def _next(folder: Path, todo: list[Reading]) -> Reading:
    """Takes from `todo` the reading to prepare next: one a page asked for (the longest waiting
    first), else the first in the plan's order."""
    asked = sorted((folder / ASKED).glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
    for path in asked:
        with suppress(FileNotFoundError, ValueError):
            key = json.loads(path.read_text())
            path.unlink()
            for i, reading in enumerate(todo):
                if _planned(reading) == key:
                    return todo.pop(i)
    return todo.pop(0)


def signals_of(
    warehouse: Warehouse,
    scope: Scope,
    *,
    start: Any,
    end: Any,
    since: date | None,
    filters: Mapping[str, Any] | None = None,
    dimensions: Iterable[str] = signals.GROUP_DIMENSIONS,
    wait: bool = True,
) -> pd.DataFrame | None:
    """`signals.signals`, from the stored set where there is one. Where the server is preparing
    it: with `wait`, waiting is sooner than charting everything again beside it; without, None.
    Else the set is charted here, and kept where a stored set could answer it (`_computed_and_kept`)."""
    dimensions = tuple(dimensions)
    found = stored(warehouse, scope, start=start, end=end, since=since, filters=filters, dimensions=dimensions)
    while found is None and being_prepared(warehouse, scope, start=start, end=end, filters=filters):
        if not wait:
            return None
        time.sleep(0.5)
        found = stored(warehouse, scope, start=start, end=end, since=since, filters=filters, dimensions=dimensions)
    if found is not None:
        return found
    wanted = request(scope, start, end, filters)
    if wanted is None or dimensions != signals.GROUP_DIMENSIONS:
        return signals.signals(warehouse, scope, start=start, end=end, since=since, dimensions=dimensions,
                               filters=dict(filters or {}))
    points = _computed_and_kept(warehouse, scope, wanted, lambda: signals.special_points(
        warehouse, scope, start=start, end=end, filters=dict(filters or {}) or None))
    return signals.pick(points, since)


def stamp(warehouse: Warehouse) -> str:
    """Changes whenever a reading of the current version is stored: part of the cache key of
    what was read while one was being prepared."""
    folder = _folder(warehouse)
    stored = [p for p in folder.iterdir() if p.suffix in (".parquet", ".json") and not p.name.startswith(".")] if folder.exists() else []
    return f"{warehouse.version()}:{len(stored)}"


def prepare(warehouse: Warehouse, requests: list["Reading"], followup: Any = None) -> int:
    """Stores the readings of `requests` the current version lacks, in order; returns how many it
    stored. Gaps and movements need `followup` (ciboard.followup, which reads this store: passed
    in, not imported); without it they are left out. Does nothing while another thread or
    process prepares this version."""
    version = warehouse.version()
    folder = _folder(warehouse, version)
    folder.mkdir(parents=True, exist_ok=True)
    _forget_old_versions(warehouse)
    with open(folder / LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        # Gaps and movements are followup's to compute: without it they are left to the pages.
        todo = [r for r in missing(warehouse, requests, version)
                if followup is not None or not isinstance(r, (GapRequest, MovementRequest))]
        _write_aside(folder / PLAN, json.dumps([_planned(r) for r in todo]).encode())
        (folder / UNDER_WAY).unlink(missing_ok=True)  # a killed preparation's
        made = 0
        while todo:
            wanted = _next(folder, todo)
            _write_aside(folder / UNDER_WAY, json.dumps(_planned(wanted)).encode())
            scope = Scope.parse(wanted.scope)
            if isinstance(wanted, ViewRequest):
                if wanted.view in CHECKED and wanted.checks != service_checks_key(warehouse):
                    continue  # a decision about a flagged session came in since the plan
                reading = run(warehouse, wanted.view, scope, dict(wanted.params))
            elif isinstance(wanted, MovementRequest):
                reading = followup.movement(warehouse, scope, wanted.metric_id, json.loads(wanted.slice), wanted.since, wanted.until)
            else:
                filters = {"vendor_id": list(wanted.vendors)} if wanted.vendors else {}
                if isinstance(wanted, GapRequest):
                    reading = followup.gap_changes(warehouse, scope, wanted.since, wanted.until, filters)
                else:
                    reading = signals.special_points(warehouse, scope, start=wanted.start, end=wanted.end, filters=filters or None)
            if warehouse.version() != version:
                return made  # published meanwhile: the reading may mix two versions
            _write(folder, wanted, reading)
            made += 1
        (folder / PLAN).unlink(missing_ok=True)
        (folder / UNDER_WAY).unlink(missing_ok=True)
        return made


def plan(warehouse: Warehouse, db: AppDB) -> list[Reading]:
    """What the pages will ask for first: the slow views the pages open on (`STORED_VIEWS`, over
    the school year the filter bar opens on) in every scope (the district's, then each vendor's);
    then, scope by scope, the signals of that year, then of each draft meeting that scope reads,
    and how each of those meetings' open commitments and PDSA cycles moved; then the gaps each
    draft meeting checks, in each scope; then each school account's signals of that year (its
    Overview would chart them live for half a minute)."""
    choices = run(warehouse, "choices", ANALYST)
    years = choices[choices["dimension"] == "school_year"].sort_values("value")
    with_data = years[years["students"] > 0]
    opened = (with_data if not with_data.empty else years).tail(1)
    if opened.empty:
        return []
    start, end = _day(opened["starts_on"].iloc[0]), _day(opened["ends_on"].iloc[0])
    vendors = sorted(set(choices.loc[choices["dimension"] == "vendor_id", "value"]) - {NOT_TUTORED})
    drafts = [
        (group, meeting) for group in meetings.workgroups(db, ANALYST)
        for meeting in meetings.meetings(db, ANALYST, group.id) if not meeting.is_final
    ]
    # As the pages ask: the payments to the filter bar's end, the rest over its dates.
    opened_with = {"payments": {"end": end.isoformat()}}
    readers = [ANALYST, Scope("facilitator"), Scope("admin"), *(Scope("vendor", v) for v in vendors)]
    # The views first, every reader's: a second or two each where a signal set takes half a minute.
    wanted = [
        view_request(warehouse, reader, view, opened_with.get(view, {"start": start.isoformat(), "end": end.isoformat()}))
        for reader in readers for view in STORED_VIEWS if readable(reader, view)
    ]
    gaps = []
    for reader in readers:
        if reader.role == "admin":
            continue  # an admin reads the facilitator's signals, gaps and movements
        wanted.append(request(reader, start, end))
        for group, meeting in drafts:
            if reader.role == "vendor" and reader.vendor_id not in group.vendor_ids:
                continue  # a vendor reads the meetings of its own workgroups only
            holding = years[(years["starts_on"].map(_day) <= meeting.held_on) & (years["ends_on"].map(_day) >= meeting.held_on)]
            if holding.empty:
                continue
            filters = {"vendor_id": list(group.vendor_ids)} if group.vendor_ids else {}
            read_as, narrowed = meeting_reading(reader, filters)
            wanted.append(request(read_as, _day(holding["starts_on"].iloc[0]), meeting.held_on, narrowed))
            reviewed, cycles = meetings.under_review(db, reader, group.id, meeting.held_on, group.vendor_ids)
            moved = [(i.commitment.metric_id, i.commitment.slice, i.commitment.made_on) for i in reviewed]
            moved += [(c.metric_id, c.slice, c.start_on) for c in cycles]
            wanted.extend(movement_request(reader, metric, dataclasses.asdict(slice), since, meeting.held_on)
                          for metric, slice, since in moved if metric)
            since, _ = meetings.look_back_from(db, reader, group.id, meeting.held_on)
            gaps.append(gap_request(reader, since, meeting.held_on, filters))
    # Last: a district may give every school an account, and a page that waits asks for its own first.
    schools = [request(school, start, end) for school in accounts.school_scopes(db)]
    return [w for w in dict.fromkeys(wanted + gaps + schools) if w is not None]


def meeting_reading(scope: Scope, filters: Mapping[str, Any]) -> tuple[Scope, dict]:
    """The scope and filters a meeting's signals are read in. Filtered to one vendor, the
    district's charts are that vendor's: district staff who see hidden cells hidden read them
    as the vendor reads them (the same cells hidden), which draws each chart once."""
    vendors = filters.get("vendor_id") or []
    if len(vendors) == 1 and scope.role != "vendor" and scope.suppresses_small_cells:
        return Scope("vendor", vendors[0]), {k: v for k, v in filters.items() if k != "vendor_id"}
    return scope, dict(filters)


@dataclass
class Watcher:
    """A server's thread that keeps the sets prepared, and what it knows."""

    thread: threading.Thread
    stopping: threading.Event
    planned: set = field(default_factory=set)  # the requests of its latest plan
    failed: str | None = None  # a version whose preparation failed is not tried again


_watching: dict[Path, Watcher] = {}


def watch(settings: Settings, every: float = 10.0) -> threading.Thread:
    """Starts, once per process and data folder, the thread that has the sets the current
    version lacks prepared: it looks each second for a new version, and every `every` seconds
    for new draft meetings, until `stop_watching`.

    They are prepared in a process of their own at a lower priority: charting is Python, and
    in this one it would hold the interpreter from the pages people are waiting for.
    """
    folder = Path(settings.data_dir).resolve()
    if folder in _watching and _watching[folder].thread.is_alive():
        return _watching[folder].thread
    watcher = Watcher(threading.Thread(target=lambda: keep_prepared(), name="signal-store", daemon=True), threading.Event())

    def keep_prepared() -> None:
        warehouse = Warehouse(settings)
        db = AppDB.of(settings)
        seen, looked = None, 0.0
        while not watcher.stopping.is_set():
            version = None
            try:
                version = warehouse.version() if warehouse.exists() else None
                if version is not None and (version != seen or time.monotonic() - looked >= every):
                    seen, looked = version, time.monotonic()
                    planned = plan(warehouse, db)
                    watcher.planned = set(planned)
                    if version != watcher.failed and missing(warehouse, planned) and not _locked(_folder(warehouse, version)):
                        _prepare_apart(folder, watcher.stopping, lambda: warehouse.version() != version)
            except Exception:  # what is not stored is computed on the page instead
                log.exception("preparing the stored signals of %s failed", version)
                watcher.failed = version
            watcher.stopping.wait(1.0)
        warehouse.close()

    watcher.thread.start()
    _watching[folder] = watcher
    return watcher.thread


def _prepare_apart(folder: Path, stopping: threading.Event, superseded: Callable[[], bool]) -> int:
    """Runs the preparation in a child process until it is done, the server stops, or a newer
    version is published: one reading can take half a minute at scale, and the pages of the new
    version wait for its own preparation, not for the old one's to end."""
    child = subprocess.Popen(
        [sys.executable, "-m", "ciboard.signal_store", "--data-dir", str(folder)], preexec_fn=_lower_and_tie_to_parent,
    )
    while child.poll() is None and not stopping.wait(0.5) and not superseded():
        continue
    if child.poll() is None:
        child.terminate()
    if child.wait() not in (0, -signal.SIGTERM):
        raise RuntimeError(f"python -m ciboard.signal_store exited with {child.returncode}")
    return child.returncode


def _lower_and_tie_to_parent() -> None:
    """In the preparing child before it starts: a lower priority than the pages, and, on Linux,
    ended with the server (a server stopped or killed leaves no preparation running on)."""
    os.nice(10)
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_watching(settings: Settings) -> None:
    """Ends the thread `watch` started for this data folder, and the preparation under way."""
    watcher = _watching.pop(Path(settings.data_dir).resolve(), None)
    if watcher is not None:
        watcher.stopping.set()
        watcher.thread.join()


def missing(warehouse: Warehouse, requests: list[Reading], version: str | None = None) -> list:
    """The requests with nothing stored for the version, in order."""
    return [r for r in dict.fromkeys(requests) if _path(warehouse, r, version) is None]


def _folder(warehouse: Warehouse, version: str | None = None) -> Path:
    return warehouse.shared_folder() / FOLDER / (version or warehouse.version())


def _path(warehouse: Warehouse, wanted: Reading, version: str | None = None) -> Path | None:
    if not isinstance(wanted, Request):
        path = _folder(warehouse, version) / f"{wanted.key()}.{'parquet' if isinstance(wanted, ViewRequest) else 'json'}"
        return path if path.exists() else None
    for path in sorted(_folder(warehouse, version).glob(f"{wanted.key()}_*.parquet")):
        end, last = (_day(part) if part != "none" else None for part in path.stem.split("_")[1:3])
        if _matches(wanted.end, end, last):
            return path
    return None


def _read(warehouse: Warehouse, wanted: Request, version: str | None = None) -> pd.DataFrame | None:
    path = _path(warehouse, wanted, version)
    if path is None:
        return None
    points = pd.read_parquet(path)
    points["group"] = [_group(d, g) for d, g in zip(points["dimension"], points["group"])]
    last = path.stem.split("_")[2]
    points.attrs["last_week"] = _day(last) if last != "none" else None
    return points


def _matches(asked: date, end: date, last: date | None) -> bool:
    """A set drawn to `end` answers a request to `asked` when no week with data lies between
    them: charts draw weeks with data only, so they are the same charts. `last` is the set's
    latest week with data up to `end`, not the version's: a set drawn to a meeting's date in
    March knows nothing of April, so it answers no request that ends after `end`."""
    return asked == end or (last is not None and last <= asked <= end)


def _write(folder: Path, wanted: Reading, reading: Any) -> None:
    if isinstance(wanted, ViewRequest):
        table = reading.copy()
        table.attrs = {}  # the version is the folder's
        aside = _aside(folder / f"{wanted.key()}.parquet")
        table.to_parquet(aside, index=False)
        os.replace(aside, folder / f"{wanted.key()}.parquet")
        return
    if not isinstance(wanted, Request):
        _write_aside(folder / f"{wanted.key()}.json", json.dumps(reading).encode())
        return
    points = reading
    last = points.attrs.get("last_week")
    name = f"{wanted.key()}_{wanted.end.isoformat()}_{last.isoformat() if last else 'none'}.parquet"
    # Groups are text, numbers or yes/no by dimension; a Parquet column holds one type.
    table = points.assign(group=[None if g is None or pd.isna(g) else str(g) for g in points["group"]])
    table.attrs = {}  # the last week is in the file's name
    aside = _aside(folder / name)
    table.to_parquet(aside, index=False)
    os.replace(aside, folder / name)


def _write_aside(path: Path, data: bytes) -> None:
    aside = _aside(path)
    aside.write_bytes(data)
    os.replace(aside, path)


def _aside(path: Path) -> Path:
    """Where a file is written before it is renamed into `path`: the process's and thread's own,
    since the preparing thread and pages' threads of several servers may write the same reading."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}")


def _group(dimension: Any, group: Any) -> Any:
    """A group as the panel's groupby gives it: grades as numbers, yes/no groups as booleans."""
    if pd.isna(dimension) or pd.isna(group):
        return None
    if dimension == "grade":
        return int(group)
    if dimension in BOOLEAN_DIMENSIONS:
        return group == "True"
    return group


def _locked(folder: Path) -> bool:
    try:
        with open(folder / LOCK) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def _forget_old_versions(warehouse: Warehouse) -> None:
    """Deletes the readings of versions no page reads any more: those the warehouse no longer
    keeps, and those more than `keep_versions` publishes old that no record pinned (a lake keeps
    every snapshot for days, and a reading a day for each)."""
    root = warehouse.shared_folder() / FOLDER
    current, pinned = version_number(warehouse.version()), set(warehouse.pins())
    for folder in root.iterdir() if root.exists() else ():
        if not folder.is_dir():
            continue
        number = version_number(folder.name)
        superseded = folder.name not in pinned and None not in (current, number) and current - number >= warehouse.settings.keep_versions
        if superseded or not warehouse.is_kept(folder.name):
            shutil.rmtree(folder, ignore_errors=True)


def _day(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, pd.Timestamp) else pd.Timestamp(value).date()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Store the current warehouse version's signals (see ciboard.signal_store).")
    parser.add_argument("--data-dir", type=Path, required=True)
    data_dir = parser.parse_args().data_dir
    settings = Settings(data_dir=data_dir)
    warehouse = Warehouse(settings)
    from ciboard import followup  # the entry point composes: followup reads this store

    prepare(warehouse, plan(warehouse, AppDB.of(settings)), followup)
