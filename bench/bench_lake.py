"""The two storages side by side: view latency, a pinned snapshot's, one weekly upload, and disk.

    python bench/bench_lake.py [--students 3000] [--repeats 9] [--weeks 1] [--keep DIR]

Builds the same demo district twice, on versioned DuckDB files and on DuckLake (a SQLite
catalog), as DIR/files and DIR/lake, unless --keep names a folder that has both from an
earlier run. Then, in one
process and alternating between the storages so a busy machine slows both alike:
0. how long a server takes to make its read copy of the current and of a pinned snapshot
   (what it reads until the copy is made is the lake itself);
1. every view case of bench_core through `queries.run` as an analyst: files, the files' current
   version read as a record reads its pinned one, the lake's current snapshot, and the lake read at the newest earlier
   snapshot kept (a record's pinned one);
2. three views against SQL written by hand that gives the same numbers, on each storage;
3. --weeks more weeks of every vendor's sessions, one upload a week through `ingest`, into
   each, end to end, and where the lake's publish spent its time;
4. disk, after those weeks: the file warehouse's folder against the lake's data files with
   every snapshot kept, after `maintain` within CIBOARD_KEEP_DAYS and after it once the older
   weeks have expired, the catalog, and the read copies.
Figures to stdout; nothing asserts on time.
"""

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import SCHOOL_YEAR, against_handwritten, query_cases, table  # noqa: E402

from ciboard import demo  # noqa: E402
from ciboard.access import Scope  # noqa: E402
from ciboard.ingest import IngestRejected, Submission, ingest  # noqa: E402
from ciboard.lake_catalog import number, version_name  # noqa: E402
from ciboard.read_copies import copies_folder, make_read_copy  # noqa: E402
from ciboard.queries import run  # noqa: E402
from ciboard.settings import Settings  # noqa: E402
from ciboard.warehouse import Warehouse  # noqa: E402


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6 if path.exists() else 0.0


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


class PhaseLog(logging.Handler):
    """Keeps what each lake publish logs of where its time went (ciboard.lake, at DEBUG)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, dict[str, float]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "phases"):
            self.records.append((record.source, record.phases))


def build(root: Path, storage: str, students: int) -> Warehouse:
    warehouse = Warehouse(Settings(data_dir=root / storage, storage=storage))
    if not warehouse.exists():
        started = time.perf_counter()
        demo.build(warehouse, students=students, seed=11, school_year=SCHOOL_YEAR, progress=lambda m: None)
        print(f"demo on {storage}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return warehouse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--weeks", type=int, default=1, help="weekly uploads of every vendor's sessions, up to the school year's end")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-lake-"))
    files, lake = build(root, "files", args.students), build(root, "lake", args.students)
    # The newest snapshot before the current one still kept: a folder kept from an earlier run
    # has had its older weeks expired by that run's `maintain` (a demo meeting's pin outlives them).
    current = number(lake.version())
    pinned = lake.at(version_name(max(n for n, _ in lake.lake.snapshots() if n < current)))
    # The file warehouse's current version read as a record reads the version it pinned
    # (`at`): the same data, so the ratio is the pinned reading's own cost.
    files_pinned = files.at(files.version())
    readers = {"files": files, "files, pinned": files_pinned, "lake": lake, "lake, pinned": pinned}
    copies = []
    for name, warehouse in (("current", lake), ("pinned", pinned)):
        snapshot = number(warehouse.version())
        target = warehouse.lake.read_copy(snapshot)
        warehouse.lake.wait_for_copies()  # the build's reads asked for some: made again here, timed
        target.unlink(missing_ok=True)
        took = timed(lambda: make_read_copy(warehouse.settings, snapshot, target))
        copies.append([name, warehouse.version(), f"{took / 1000:.1f}", f"{target.stat().st_size / 1e6:.1f}"])
        warehouse.cursor().close()  # reads the copy from here on

    cases = query_cases("V1")
    times: dict[tuple[str, str], list[float]] = {}
    for round_number in range(args.repeats + 1):
        for view, label, params in cases:
            for name, warehouse in readers.items():
                took = timed(lambda: run(warehouse, view, Scope("analyst"), params))
                if round_number:  # the first round warms each reader
                    times.setdefault((label, name), []).append(took)
    rows = []
    for view, label, params in cases:
        medians = [statistics.median(times[(label, name)]) for name in readers]
        files_ms, files_pinned_ms, lake_ms, lake_pinned_ms = medians
        rows.append([f"{view}: {label}", *(f"{m:.0f}" for m in medians), f"{lake_ms / files_ms:.2f}",
                     f"{files_pinned_ms / files_ms:.2f}", f"{lake_pinned_ms / lake_ms:.2f}"])
    print("0. Each server's read copy of a snapshot, made once per snapshot in the background")
    print(table(["snapshot", "id", "seconds", "MB"], copies))
    with files.cursor() as cur:  # what was built, which --keep may hold from a run with other --students
        facts = cur.execute("select count(*) from facts").fetchall()[0][0]
    print(f"\n1. View latency, median ms over {args.repeats} alternating rounds ({facts:,} facts)")
    print(table(["case", *readers, "lake/files", "pinned/current, files", "pinned/current, lake"], rows))

    print("\n2. The views against hand-written SQL computing the same numbers on the same snapshot, median ms")
    rows = []
    for name in ("files", "lake"):
        for label, view_ms, raw_ms in against_handwritten(readers[name], args.repeats):
            rows.append([label, name, f"{view_ms:.0f}", f"{raw_ms:.0f}", f"{view_ms / raw_ms:.2f}"])
    print(table(["case", "storage", "view", "hand-written", "view/hand-written"], rows))

    upload = []
    phases = PhaseLog()
    logging.getLogger("ciboard.lake").addHandler(phases)
    logging.getLogger("ciboard.lake").setLevel(logging.DEBUG)
    for name, warehouse in (("files", files), ("lake", lake)):
        took, rows_in = [], 0
        for _ in range(args.weeks):
            with tempfile.TemporaryDirectory() as scratch:
                paths = {vendor: demo.next_week_of_sessions(warehouse, vendor, Path(scratch)) for vendor in demo.VENDORS}
                submissions = [Submission(path, "sessions", vendor) for vendor, path in paths.items()]
                try:
                    took.append(timed(lambda: ingest(warehouse, submissions)))
                except IngestRejected:
                    print(f"{name}: the week after {len(took)} uploads falls outside the school year: stopped there", file=sys.stderr)
                    break
                rows_in += sum(sum(1 for _ in open(path)) - 1 for path in paths.values())
        upload.append([name, str(len(took)), f"{rows_in:,}", f"{statistics.median(took) / 1000:.2f}", f"{max(took) / 1000:.2f}"])
    logging.getLogger("ciboard.lake").removeHandler(phases)
    print("\n3. More weeks of every vendor's sessions through ingest, one upload a week, end to end")
    print(table(["storage", "weeks", "rows", "median s", "max s"], upload))
    print("\n   Where a lake upload's publish spends its time, median s (staged from: "
          + ", ".join(sorted({source for source, _ in phases.records})) + ")")
    print(table(["staging (a file copy)", "the command", "finding what changed", "writing it to the lake, keeping the copy"],
                [[f"{statistics.median(p[k] for _, p in phases.records):.2f}" for k in ("staging", "command", "comparing", "writing")]]))

    lake_files = root / "lake" / "lake" / "data"
    before = (folder_mb(lake_files), len(list(lake_files.rglob("*.parquet"))))
    lake.maintain()  # within CIBOARD_KEEP_DAYS every snapshot is kept
    kept = (folder_mb(lake_files), len(list(lake_files.rglob("*.parquet"))))
    current_only = Warehouse(lake.settings.model_copy(update={"keep_days": 1e-9}))
    current_only.maintain()  # what a folder holds once the older weeks are past CIBOARD_KEEP_DAYS
    current_only.close()
    after = (folder_mb(lake_files), len(list(lake_files.rglob("*.parquet"))))
    print("\n4. Disk, MB")
    print(table(["what", "MB", "files"], [
        ["file warehouse (the last CIBOARD_KEEP_VERSIONS versions)", f"{folder_mb(root / 'files' / 'warehouse'):.1f}",
         str(len(list((root / "files" / "warehouse").glob("wh-*.duckdb"))))],
        [f"lake data files, every snapshot ({lake.version()})", f"{before[0]:.1f}", str(before[1])],
        ["the same after maintain (small files merged)", f"{kept[0]:.1f}", str(kept[1])],
        ["after maintain, snapshots past CIBOARD_KEEP_DAYS expired", f"{after[0]:.1f}", str(after[1])],
        ["lake catalog (SQLite)", f"{folder_mb(root / 'lake' / 'lake') - folder_mb(lake_files):.1f}", "1"],
        ["each server's read copies", f"{folder_mb(copies_folder(lake.settings)):.1f}",
         str(len(list(copies_folder(lake.settings).glob("*.duckdb"))))],
    ]))
    print(f"\nfolders kept in {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
