"""Benchmark of CI Board's data core: demo build time, view latency and ingest throughput.

    python bench/bench_core.py [--sizes 1M,10M] [--repeats 15] [--keep DIR] [--storage lake|files]

Builds a demo district per size (students chosen from the facts-per-student ratio of the
demo), times every view through `queries.run` as an analyst and as a vendor, and times a
large sessions file (CSV and Parquet) loaded by `ingest` into a copy of the largest
warehouse, on the storage asked for (the lake, the default, unless --storage files). Figures go to stdout, progress to stderr; a JSON copy of the figures goes to
bench/results/. Nothing here asserts on time: it prints figures and PASS/FAIL against
the targets.
"""

import argparse
import json
import logging
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from unittest import mock

import duckdb

from ciboard import demo
from ciboard.access import Scope
from ciboard.calendar import calendar_for, school_closed
from ciboard.ingest import Submission, ingest
from ciboard.queries import VIEWS, run
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

FACTS_PER_STUDENT = 223  # the demo's ratio: 12,000 students give about 2.7M facts
SCHOOL_YEAR = "2025-26"
QUERY_TARGET_MS = 100.0  # median, at 10M facts
INGEST_TARGETS = {"parquet": 500_000, "csv": 200_000}  # rows/s, end to end

# (view, label, params); a vendor scope runs the same parameters, with the vendor filter
# naming its own vendor (a vendor may not ask for another vendor's data).
def query_cases(vendor: str) -> list[tuple[str, str, dict]]:
    cal = calendar_for(SCHOOL_YEAR)
    return [
        ("series", "week, attendance rate, all students", {"metric": "tutoring_attendance_rate", "grain": "week"}),
        (
            "series",
            f"month, attendance rate, {vendor} x EL",
            {"metric": "tutoring_attendance_rate", "grain": "month", "vendor_id": vendor, "english_learner": "true"},
        ),
        ("series", "window, sgp (median)", {"metric": "sgp", "grain": "window"}),
        ("breakdown", "attendance rate by race_ethnicity", {"metric": "tutoring_attendance_rate", "by": "race_ethnicity"}),
        (
            "breakdown",
            "attendance rate by vendor_id x EL",
            {"metric": "tutoring_attendance_rate", "by": "vendor_id", "by2": "english_learner"},
        ),
        (
            "breakdown",
            "met_growth_target by race, dosage>=0.5",
            {"metric": "met_growth_target", "by": "race_ethnicity", "min_dosage_share": 0.5},
        ),
        ("vendors", "attendance rate per vendor", {"metric": "tutoring_attendance_rate"}),
        *(
            [("panel", "week x vendor_id, attendance rate", {"metric": "tutoring_attendance_rate", "grain": "week", "by": "vendor_id"})]
            if "panel" in VIEWS
            else []
        ),
        ("payments", f"as of {cal.program_end}", {"end": cal.program_end.isoformat()}),
        (
            "quality",
            f"school year {SCHOOL_YEAR}",
            {"start": f"{SCHOOL_YEAR[:4]}-08-01", "end": f"20{SCHOOL_YEAR[-2:]}-07-31"},
        ),
    ]


# --- output helpers ------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def throttled(prefix: str, every: float = 3.0) -> Callable[[str], None]:
    """A progress callable that prints at most one message every `every` seconds."""
    last = [0.0]

    def progress(message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            say(f"{prefix}{message}")

    return progress


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """Plain text table; `align` is a string of 'l'/'r' per column."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    lines = []
    for n, row in enumerate(cells):
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def parse_size(text: str) -> int:
    text = text.strip().upper()
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor > 1 else text
    return int(float(number) * factor)


def size_label(facts: int) -> str:
    if facts >= 1_000_000 and facts % 1_000_000 == 0:
        return f"{facts // 1_000_000}M"
    if facts >= 1_000 and facts % 1_000 == 0:
        return f"{facts // 1_000}k"
    return str(facts)


def mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def open_warehouse(data_dir: Path, storage: str) -> Warehouse:
    return Warehouse(Settings(data_dir=data_dir, storage=storage))


def warehouse_mb(warehouse: Warehouse) -> float:
    """The current version's file, or the lake's catalog and data files (not this process's read copies)."""
    if warehouse.settings.on_lake:
        return (warehouse.lake.data_bytes() + sum(p.stat().st_size for p in warehouse.directory.glob("catalog.sqlite*"))) / 1e6
    return mb(warehouse.path_of(warehouse.version()))


@dataclass
class Probe:
    when: str
    two_threads_ms: float
    one_thread_ms: float
    load: float


def cpu_probe(when: str) -> Probe:
    """A fixed CPU-bound DuckDB query on 2 threads and on 1: the other sessions on a shared
    machine can take a core, and then every figure is slower. Both cores free: ratio near 2."""
    con = duckdb.connect()
    try:
        con.execute("create table probe as select i from range(10000000) as t(i)")
        times = {}
        for threads in (2, 1):
            con.execute(f"set threads = {threads}")
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                con.execute("select sum(hash(i::varchar || 'x')) from probe").fetchall()
                runs.append((time.perf_counter() - started) * 1000)
            times[threads] = min(runs)
    finally:
        con.close()
    probe = Probe(when, times[2], times[1], os.getloadavg()[0])
    say(f"CPU probe ({when}): 2 threads {probe.two_threads_ms:.0f} ms, 1 thread {probe.one_thread_ms:.0f} ms, load {probe.load:.1f}")
    return probe


# --- 1. demo builds ------------------------------------------------------------------------


@dataclass
class Build:
    label: str
    target_facts: int
    students: int
    facts: int
    seconds: float | None  # None if reused from --keep without a recorded time
    reused: bool
    data_dir: str
    warehouse_mb: float
    storage: str


def students_for(facts: int) -> int:
    # Nearest 500, and at least the demo's minimum of 60.
    return max(60, int(round(facts / FACTS_PER_STUDENT / 500)) * 500 or round(facts / FACTS_PER_STUDENT))


def build_demo(root: Path, target_facts: int, reuse: bool, storage: str) -> Build:
    label = size_label(target_facts)
    data_dir = root / f"demo-{label}-{storage}"
    record = data_dir / "build.json"
    students = students_for(target_facts)
    if reuse and record.exists() and open_warehouse(data_dir, storage).exists():
        saved = json.loads(record.read_text())
        if saved.get("students") == students:
            say(f"[{label}] reusing the demo warehouse in {data_dir}")
            warehouse = open_warehouse(data_dir, storage)
            if warehouse.upgrade_if_stale():
                say(f"[{label}] the views or migrations changed since the build: published a migrated copy")
            size = warehouse_mb(warehouse)
            warehouse.close()
            return Build(label, target_facts, students, saved["facts"], saved.get("seconds"), True, str(data_dir), size, storage)
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    warehouse = open_warehouse(data_dir, storage)
    say(f"[{label}] building the demo district: {students:,} students")
    started = time.perf_counter()
    result = demo.build(warehouse, students=students, seed=7, progress=throttled(f"[{label}] demo: "))
    seconds = time.perf_counter() - started
    size = warehouse_mb(warehouse)
    warehouse.close()
    say(f"[{label}] built: {result.facts:,} facts in {seconds:.1f} s")
    shutil.rmtree(data_dir / "demo_files", ignore_errors=True)  # raw files are not needed any more
    record.write_text(json.dumps({"students": students, "facts": result.facts, "seconds": seconds}))
    return Build(label, target_facts, students, result.facts, seconds, False, str(data_dir), size, storage)


# --- 2. view latency -------------------------------------------------------------------


@dataclass
class Latency:
    size: str
    facts: int
    scope: str
    view: str
    case: str
    rows: int
    median_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    passed: bool


HANDWRITTEN_TARGET = 2.0
# The three cases, as an analyst reads them, each with SQL written by hand over the
# tables that gives the same value and student count per group (the view's cell key included,
# so both do the same work; a rate has no sd).
HANDWRITTEN_SELECT = """
    sum(f.value) / nullif(sum(f.denominator), 0) as value, count(distinct f.student_key) as n,
    sum(f.value) as numerator, sum(f.denominator) as denominator,
    bit_xor(distinct hash(f.student_key, k.secret)) as cell_key
from facts as f
join calendar_weeks as w on w.week_start = f.period_start
cross join privacy_key as k
where f.metric_id = 'tutoring_attendance_rate'"""
HANDWRITTEN = [
    ("breakdown by race", ("breakdown", {"metric": "tutoring_attendance_rate", "by": "race_ethnicity"}),
     f"select f.race_ethnicity as group_1, {HANDWRITTEN_SELECT} and f.race_ethnicity is not null group by 1 order by 1"),
    ("breakdown by vendor x EL",
     ("breakdown", {"metric": "tutoring_attendance_rate", "by": "vendor_id", "by2": "english_learner"}),
     f"select coalesce(f.vendor_id, 'not tutored') as group_1, f.english_learner::varchar as group_2, {HANDWRITTEN_SELECT}"
     " and f.english_learner is not null group by 1, 2 order by 1, 2"),
    ("vendors", ("vendors", {"metric": "tutoring_attendance_rate"}),
     f"select coalesce(f.vendor_id, 'not tutored') as vendor_id, {HANDWRITTEN_SELECT} group by 1 order by 1"),
]


def against_handwritten(warehouse: Warehouse, repeats: int) -> list[tuple[str, float, float]]:
    """Each case of HANDWRITTEN through `queries.run` and as its hand-written SQL, on the same
    snapshot, alternating: (case, view median ms, hand-written median ms). Raises where the two
    give different numbers."""
    measured = []
    for label, (view, params), handwritten in HANDWRITTEN:
        with warehouse.cursor() as cur:
            ours = run(warehouse, view, Scope("analyst"), params)
            theirs = cur.execute(handwritten).df()
        for column in ("value", "n"):
            if ours[column].astype(float).round(9).tolist() != theirs[column].astype(float).round(9).tolist():
                raise RuntimeError(f"{label}: the hand-written SQL's {column} differs from the view's")
        view_ms, raw_ms = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            run(warehouse, view, Scope("analyst"), params)
            view_ms.append((time.perf_counter() - started) * 1000)
            with warehouse.cursor() as cur:
                started = time.perf_counter()
                cur.execute(handwritten).fetchall()
                raw_ms.append((time.perf_counter() - started) * 1000)
        measured.append((label, statistics.median(view_ms), statistics.median(raw_ms)))
    return measured


def time_views(build: Build, vendor: str, repeats: int) -> list[Latency]:
    """Every case once untimed (warm), then `repeats` rounds over all cases: on a shared
    machine a busy spell then spreads over every row instead of landing on a few."""
    warehouse = open_warehouse(Path(build.data_dir), build.storage)
    cases = [(scope, view, label, params) for scope in (Scope("analyst"), Scope("vendor", vendor)) for view, label, params in query_cases(vendor)]
    times: list[list[float]] = [[] for _ in cases]
    rows: list[int] = []
    try:
        for scope, view, label, params in cases:
            rows.append(len(run(warehouse, view, scope, params)))
        for round_number in range(repeats):
            for i, (scope, view, label, params) in enumerate(cases):
                started = time.perf_counter()
                run(warehouse, view, scope, params)
                times[i].append((time.perf_counter() - started) * 1000)
            say(f"[{build.label}] queries: round {round_number + 1} of {repeats}")
    finally:
        warehouse.close()
    results = []
    for (scope, view, label, params), runs, count in zip(cases, times, rows):
        median = statistics.median(runs)
        results.append(
            Latency(
                build.label, build.facts, str(scope), view, label, count, median,
                percentile(runs, 90), min(runs), max(runs), median < QUERY_TARGET_MS,
            )
        )
    return results


# --- 3. ingest throughput ----------------------------------------------------------------


@dataclass
class IngestRun:
    format: str
    rows: int
    file_mb: float
    seconds: float
    rows_per_s: float
    target: int
    passed: bool
    phases: dict[str, float] = field(default_factory=dict)
    warehouse_mb_before: float = 0.0
    warehouse_mb_after: float = 0.0


def copy_warehouse(source_dir: Path, target_dir: Path, storage: str) -> Warehouse:
    """A fresh data dir holding only the source's current version: a file warehouse's file, or
    the lake with the read copies a server that read it has made."""
    source = open_warehouse(source_dir, storage)
    version = source.version()
    if storage == "lake":
        source.cursor().close()  # asks for the current snapshot's read copy, as a server's first page does
        source.lake.wait_for_copies()
    source.close()
    shutil.rmtree(target_dir, ignore_errors=True)
    if storage == "lake":
        for folder in ("lake", "lake-copies"):
            shutil.copytree(source_dir / folder, target_dir / folder)
        return open_warehouse(target_dir, storage)
    (target_dir / "warehouse").mkdir(parents=True)
    shutil.copyfile(source.path_of(version), target_dir / "warehouse" / f"{version}.duckdb")
    (target_dir / "warehouse" / "CURRENT").write_text(f"{version}.duckdb")
    return open_warehouse(target_dir, storage)


def write_sessions_files(warehouse: Warehouse, vendor: str, rows: int, directory: Path) -> tuple[dict[str, Path], int]:
    """`rows` valid, new session rows for the vendor's students, as CSV and Parquet.

    Dates are open school days of the demo program; tutor ids (`<vendor>-B...`) do not exist
    in the demo, so no row repeats the key (student_id, session_date, tutor_id) of a loaded one.
    """
    cal = calendar_for(SCHOOL_YEAR)
    days = [
        cal.program_start + timedelta(days=d)
        for d in range((cal.program_end - cal.program_start).days + 1)
        if not school_closed(cal, cal.program_start + timedelta(days=d))
    ]
    directory.mkdir(parents=True, exist_ok=True)
    con = warehouse.cursor()
    try:
        students = con.execute("select count(*) from students where vendor_id = ?", [vendor]).fetchall()[0][0]
        minutes = demo.SESSION_MINUTES.get(vendor, 40)
        slots = math.ceil(rows / (students * len(days)))
        con.execute(
            """
            create temp table bench_sessions as
            with grid as (
                select s.student_key as student_id, d.session_date, k.slot,
                       hash(s.student_key, d.session_date, k.slot) as h
                from students as s
                cross join (select unnest(?::date[]) as session_date) as d
                cross join range(?) as k(slot)
                where s.vendor_id = ?
            )
            select student_id, session_date,
                   ?::varchar || '-B' || slot::varchar || lpad((h % 997)::varchar, 4, '0') as tutor_id,
                   1 + (h % 4)::int as group_size,
                   ?::int as scheduled_minutes,
                   case when (h >> 8) % 100 < 13 then 0
                        when (h >> 16) % 100 < 12 then ?::int - 5 - ((h >> 24) % 15)::int
                        else ?::int end as attended_minutes
            from grid
            order by h
            limit ?
            """,
            [days, slots, vendor, vendor, minutes, minutes, minutes, rows],
        )
        made = con.execute("select count(*) from bench_sessions").fetchall()[0][0]
        if made != rows:
            raise RuntimeError(f"made {made:,} session rows, not {rows:,}")
        paths = {"csv": directory / f"sessions_{vendor}_bench.csv", "parquet": directory / f"sessions_{vendor}_bench.parquet"}
        ordered = "select * from bench_sessions order by session_date, student_id, tutor_id"
        con.execute(f"copy ({ordered}) to '{paths['csv']}' (header, delimiter ',')")
        con.execute(f"copy ({ordered}) to '{paths['parquet']}' (format parquet)")
    finally:
        con.close()
    return paths, students


class PublishPhases(logging.Handler):
    """The phases a lake publish logs (ciboard.lake: staging, the command, writing)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.phases: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.phases.update(getattr(record, "phases", {}))


def copying(run: IngestRun) -> float:
    """What the publish spends on the warehouse as it was: a file's copy, or staging the snapshot's tables."""
    return run.phases.get("publish: copy warehouse file", 0) + run.phases.get("publish: stage the snapshot's tables", 0)


def time_ingest(source_dir: Path, scratch: Path, path: Path, fmt: str, vendor: str, rows: int, storage: str) -> IngestRun:
    target_dir = scratch / f"ingest-{fmt}"
    warehouse = copy_warehouse(source_dir, target_dir, storage)
    before = warehouse_mb(warehouse)
    submission = Submission(path, "sessions", vendor, datetime.now())
    today = max(date.today(), calendar_for(SCHOOL_YEAR).last_school_day)

    marks: list[tuple[float, str]] = []
    copies: list[tuple[float, float]] = []
    real_copyfile = shutil.copyfile

    def timed_copyfile(src, dst, *args, **kwargs):
        started = time.perf_counter()
        result = real_copyfile(src, dst, *args, **kwargs)
        copies.append((started, time.perf_counter()))
        return result

    def progress(message: str) -> None:
        marks.append((time.perf_counter(), message))
        say(f"[ingest {fmt}] {message}")

    # A file publish copies the current version with shutil.copyfile: time it where it happens.
    lake_log, lake_phases = logging.getLogger("ciboard.lake"), PublishPhases()
    lake_log.addHandler(lake_phases)
    level = lake_log.level
    lake_log.setLevel(logging.DEBUG)
    try:
        with mock.patch("ciboard.warehouse.shutil.copyfile", timed_copyfile):
            started = time.perf_counter()
            outcomes = ingest(warehouse, [submission], progress=progress, today=today)
            ended = time.perf_counter()
    finally:
        lake_log.removeHandler(lake_phases)
        lake_log.setLevel(level)
    seconds = ended - started
    accepted = [o for o in outcomes if o.status == "accepted"]
    if not accepted or accepted[0].rows != rows:
        raise RuntimeError(f"the {fmt} file was not loaded whole: {outcomes}")
    after = warehouse_mb(warehouse)
    warehouse.close()

    def mark(word: str) -> float | None:
        return next((t for t, m in marks if word in m), None)

    phases: dict[str, float] = {}
    copy_start, copy_end = copies[0] if copies else (started, started)
    read, loaded, derived = mark(": read "), mark(": loaded "), mark("facts derived")
    # One file is read and checked against the published warehouse before the publish copies
    # it (a rejected file copies nothing), so the marks come in this order.
    order = [started, read, copy_start, copy_end, loaded, derived, ended]
    if storage == "lake":
        publish = sum(lake_phases.phases.values())
        phases["hash + read + check the file against the warehouse"] = ended - started - publish
        phases["publish: stage the snapshot's tables"] = lake_phases.phases.get("staging", 0)
        phases["publish: insert + derive facts"] = lake_phases.phases.get("command", 0)
        phases["publish: find what changed"] = lake_phases.phases.get("comparing", 0)
        phases["publish: write it to the lake, keep the copy"] = lake_phases.phases.get("writing", 0)
    elif all(order) and order == sorted(order):
        phases["hash + read file"] = read - started
        phases["type + check against the warehouse"] = copy_start - read
        phases["publish: copy warehouse file"] = copy_end - copy_start
        phases["open copy + insert"] = loaded - copy_end
        phases["derive facts"] = derived - loaded
        phases["commit + checkpoint + swap"] = ended - derived
    else:
        phases["before the publish's copy"] = copy_start - started
        phases["publish: copy warehouse file"] = copy_end - copy_start
        phases["after it"] = ended - copy_end
    shutil.rmtree(target_dir, ignore_errors=True)
    rate = rows / seconds
    return IngestRun(fmt, rows, mb(path), seconds, rate, INGEST_TARGETS[fmt], rate >= INGEST_TARGETS[fmt], phases, before, after)


# --- main --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M,10M", help="fact counts of the demo databases (default 1M,10M)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per view, after one warm run (default 15)")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build the databases in DIR and keep them; a later run with the same DIR reuses them",
    )
    parser.add_argument("--vendor", default="V5", help="the vendor of the vendor scope and of the ingest file (default V5)")
    parser.add_argument("--ingest-rows", type=int, default=1_000_000, help="rows of the ingested sessions file (0 skips)")
    parser.add_argument("--ingest-repeats", type=int, default=3, help="ingest runs per format, each into a fresh copy (default 3)")
    parser.add_argument("--storage", choices=("lake", "files"), default="lake", help="the warehouse's storage (default lake)")
    args = parser.parse_args()
    sizes = sorted(parse_size(s) for s in args.sizes.split(",") if s.strip())

    started = time.perf_counter()
    if args.keep:
        root = args.keep.resolve()
        root.mkdir(parents=True, exist_ok=True)
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="ciboard-bench-")
        root = Path(cleanup.name)
    say(f"working in {root}")
    settings = Settings(data_dir=root, storage=args.storage)
    probes = [cpu_probe("start")]
    try:
        builds = [build_demo(root, facts, reuse=args.keep is not None, storage=args.storage) for facts in sizes]
        latencies = []
        for build in builds:
            probes.append(cpu_probe(f"before the {build.label} queries"))
            latencies += time_views(build, args.vendor, args.repeats)
        largest = builds[-1]
        say(f"[{largest.label}] the views against hand-written SQL")
        handwritten = against_handwritten(open_warehouse(Path(largest.data_dir), args.storage), args.repeats)
        probes.append(cpu_probe("before ingest"))
        ingests: list[IngestRun] = []
        ingest_students = 0
        if args.ingest_rows > 0:
            scratch = root / "ingest"
            say(f"writing {args.ingest_rows:,} session rows for {args.vendor} as CSV and Parquet")
            paths, ingest_students = write_sessions_files(
                open_warehouse(Path(largest.data_dir), args.storage), args.vendor, args.ingest_rows, scratch / "files"
            )
            # Formats alternate, so a busy spell on a shared machine does not land on one format only.
            for repeat in range(args.ingest_repeats):
                for fmt in ("csv", "parquet"):
                    ingests.append(
                        time_ingest(Path(largest.data_dir), scratch, paths[fmt], fmt, args.vendor, args.ingest_rows, args.storage)
                    )
                    say(f"[ingest {fmt}] run {repeat + 1}: {ingests[-1].rows_per_s:,.0f} rows/s")
            shutil.rmtree(scratch, ignore_errors=True)
        probes.append(cpu_probe("end"))
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    total = time.perf_counter() - started

    # --- the figures ---------------------------------------------------------------------
    out = []
    out.append(f"CI Board data core benchmark, {datetime.now():%Y-%m-%d %H:%M}")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    out.append(
        f"machine: {os.cpu_count()} CPUs, {mem:.1f} GiB RAM, {platform.system()} {platform.release()};"
        f" Python {platform.python_version()}, DuckDB {duckdb.__version__}; memory_limit {settings.memory_limit};"
        f" storage {args.storage}"
    )
    out.append(
        "CPU probe (fixed DuckDB query; 2-thread time about half the 1-thread time = both cores free): "
        + "; ".join(f"{p.when} {p.two_threads_ms:.0f}/{p.one_thread_ms:.0f} ms, load {p.load:.1f}" for p in probes)
    )
    out.append("")
    out.append("1. Demo builds (demo.build: write the raw files, then load them through ingest)")
    out.append(
        table(
            ["size", "students", "facts", "facts/student", "build s", "warehouse MB"],
            [
                [
                    b.label,
                    f"{b.students:,}",
                    f"{b.facts:,}",
                    f"{b.facts / b.students:.0f}",
                    ("reused" if b.seconds is None else f"{b.seconds:.1f}" + (" (earlier run)" if b.reused else "")),
                    f"{b.warehouse_mb:.0f}",
                ]
                for b in builds
            ],
            "lrrrrr",
        )
    )
    out.append("")
    out.append(
        f"2. View latency through queries.run, ms ({args.repeats} timed rounds over all cases after 1 warm round;"
        f" vendor scope = vendor:{args.vendor}). Target: median < {QUERY_TARGET_MS:.0f} ms at 10M facts."
    )
    out.append(
        table(
            ["size", "scope", "view", "parameters", "rows", "median", "p90", "min", "max", "target"],
            [
                [
                    r.size, r.scope, r.view, r.case, r.rows, f"{r.median_ms:.1f}", f"{r.p90_ms:.1f}",
                    f"{r.min_ms:.1f}", f"{r.max_ms:.1f}", "PASS" if r.passed else "FAIL",
                ]
                for r in latencies
            ],
            "llllrrrrrl",
        )
    )
    for build in builds:
        rows = [r for r in latencies if r.size == build.label]
        failed = [r for r in rows if not r.passed]
        out.append(
            f"   {build.label}: {len(rows) - len(failed)}/{len(rows)} under {QUERY_TARGET_MS:.0f} ms"
            + (f"; slowest {max(rows, key=lambda r: r.median_ms).view} {max(r.median_ms for r in rows):.1f} ms" if rows else "")
        )
    out.append("")
    out.append(
        f"2b. Views against SQL written by hand that gives the same numbers, on the {largest.label} warehouse's"
        f" same snapshot, as an analyst, alternating, median of {args.repeats}. Target: within {HANDWRITTEN_TARGET:.0f}x."
    )
    out.append(
        table(
            ["case", "view ms", "hand-written ms", "ratio", "target"],
            [[label, f"{v:.1f}", f"{r:.1f}", f"{v / r:.2f}", "PASS" if v / r <= HANDWRITTEN_TARGET else "FAIL"]
             for label, v, r in handwritten],
            "lrrrl",
        )
    )
    out.append("")
    if ingests:
        out.append(
            f"3. Ingest throughput: {args.ingest_rows:,} new session rows for {args.vendor}'s {ingest_students:,} students,"
            f" into a fresh copy of the {largest.label} warehouse per run, end to end (hash, check, load, derive, publish)."
        )
        by_format = {fmt: [r for r in ingests if r.format == fmt] for fmt in ("csv", "parquet")}
        medians = {fmt: sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2] for fmt, runs in by_format.items() if runs}
        out.append(
            table(
                ["format", "file MB", "runs s", "median s", "rows/s (median)", "target", "result", "publish copy/staging", "warehouse MB"],
                [
                    [
                        fmt,
                        f"{r.file_mb:.1f}",
                        " ".join(f"{x.seconds:.2f}" for x in by_format[fmt]),
                        f"{r.seconds:.2f}",
                        f"{r.rows_per_s:,.0f}",
                        f">= {r.target:,}",
                        "PASS" if r.passed else "FAIL",
                        f"{copying(r):.2f} s ({copying(r) / r.seconds:.0%})",
                        f"{r.warehouse_mb_before:.0f} -> {r.warehouse_mb_after:.0f}",
                    ]
                    for fmt, r in medians.items()
                ],
                "lrrrrrlrr",
            )
        )
        out.append("   where the time goes in the median run (seconds, share of its total):")
        names = list(next(iter(medians.values())).phases)
        phase_table = table(
            ["phase", *medians],
            [[name, *[f"{r.phases.get(name, 0):.2f} ({r.phases.get(name, 0) / r.seconds:.0%})" for r in medians.values()]] for name in names],
            "l" + "r" * len(medians),
        )
        out.append("\n".join("   " + line for line in phase_table.splitlines()))
        out.append("")
    out.append(f"whole run: {total:.0f} s")
    text = "\n".join(out)
    print(text)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = RESULTS_DIR / f"bench_core-{datetime.now():%Y%m%d-%H%M%S}.json"
    record.write_text(
        json.dumps(
            {
                "when": datetime.now().isoformat(timespec="seconds"),
                "args": {k: str(v) for k, v in vars(args).items()},
                "duckdb": duckdb.__version__,
                "cpus": os.cpu_count(),
                "builds": [asdict(b) for b in builds],
                "latency": [asdict(r) for r in latencies],
                "handwritten": [{"case": label, "view_ms": v, "handwritten_ms": r} for label, v, r in handwritten],
                "ingest": [asdict(r) for r in ingests],
                "cpu_probes": [asdict(p) for p in probes],
                "seconds": total,
            },
            indent=2,
        )
    )
    say(f"figures also in {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
