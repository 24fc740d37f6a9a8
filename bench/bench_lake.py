"""The two storages side by side: view latency, a pinned snapshot's, one weekly upload, and disk.

    python bench/bench_lake.py [--students 3000] [--repeats 9] [--keep DIR]

Builds the same demo district twice, on versioned DuckDB files and on DuckLake (a SQLite
catalog), as DIR/files and DIR/lake, unless --keep names a folder that has both from an
earlier run. Then, in one
process and alternating between the storages so a busy machine slows both alike:
1. every view case of bench_core through `queries.run` as an analyst: files, the lake's
   current snapshot, and the lake read at its previous snapshot (a record's pinned one);
2. one more week of a vendor's sessions loaded through `ingest` into each, end to end;
3. disk: the file warehouse's folder against the lake's files and catalog, and the lake's
   data files before and after `maintain`.
Figures to stdout; nothing asserts on time.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import SCHOOL_YEAR, query_cases, table  # noqa: E402

from ciboard import demo  # noqa: E402
from ciboard.access import Scope  # noqa: E402
from ciboard.ingest import Submission, ingest  # noqa: E402
from ciboard.queries import run  # noqa: E402
from ciboard.settings import Settings  # noqa: E402
from ciboard.warehouse import Warehouse  # noqa: E402


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6 if path.exists() else 0.0


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


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
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-lake-"))
    files, lake = build(root, "files", args.students), build(root, "lake", args.students)
    previous = f"lake-{int(lake.version().removeprefix('lake-')) - 1:06d}"
    pinned = lake.at(previous)
    readers = {"files": files, "lake": lake, "lake, pinned": pinned}

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
        rows.append([f"{view}: {label}", *(f"{m:.0f}" for m in medians), f"{medians[1] / medians[0]:.2f}", f"{medians[2] / medians[1]:.2f}"])
    print(f"1. View latency, median ms over {args.repeats} alternating rounds ({args.students:,} students)")
    print(table(["case", *readers, "lake/files", "pinned/current"], rows))

    upload = []
    for name, warehouse in (("files", files), ("lake", lake)):
        with tempfile.TemporaryDirectory() as scratch:
            path = demo.next_week_of_sessions(warehouse, "V1", Path(scratch))
            rows_in = sum(1 for _ in open(path)) - 1
            took = timed(lambda: ingest(warehouse, [Submission(path, "sessions", "V1")]))
            upload.append([name, f"{rows_in:,}", f"{took / 1000:.2f}"])
    print("\n2. One more week of V1's sessions through ingest, end to end")
    print(table(["storage", "rows", "seconds"], upload))

    lake_files = root / "lake" / "lake" / "data"
    before = (folder_mb(lake_files), len(list(lake_files.rglob("*.parquet"))))
    lake.maintain()
    after = (folder_mb(lake_files), len(list(lake_files.rglob("*.parquet"))))
    print("\n3. Disk, MB")
    print(table(["what", "MB", "files"], [
        ["file warehouse (every version kept)", f"{folder_mb(root / 'files' / 'warehouse'):.1f}",
         str(len(list((root / "files" / "warehouse").glob("wh-*.duckdb"))))],
        ["lake data files before maintain", f"{before[0]:.1f}", str(before[1])],
        ["lake data files after maintain", f"{after[0]:.1f}", str(after[1])],
        ["lake catalog (SQLite)", f"{folder_mb(root / 'lake' / 'lake') - folder_mb(lake_files):.1f}", "1"],
    ]))
    print(f"\nfolders kept in {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
