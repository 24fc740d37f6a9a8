"""The views at 100M facts: median latency per view as an analyst and as a vendor, and the
reading process's peak memory.

    python bench/bench_scale.py --source DIR [--facts 100M] [--repeats 5] [--keep DIR] [--storage lake]

The facts are generated, not loaded through the demo's files: the current version of the demo
warehouse in --source (made by `ciboard demo --data-dir DIR`; bench_lake's DIR/files will do)
is copied, and its students, their dosage and their facts are repeated under new student keys
(`ST0000001~3`) until the facts reach --facts. Every repeat has its original's groups and values,
so the groups' shares stay the demo's while each group holds the repeat count times the students.
The repeated facts go into a table without the primary key's index (an index over 100M keys
would take more memory than the views), which no view reads.

The views are timed in a process of their own, so its peak resident memory (ru_maxrss) is what
reading costs: every view case of bench_core except payments and quality, which read sessions,
attendance and assessments, tables the generator does not repeat. Target: median < 1 s.
Figures to stdout; nothing asserts on time.
"""

import argparse
import json
import math
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import parse_size, query_cases, table  # noqa: E402

from ciboard.access import Scope  # noqa: E402
from ciboard.lake_catalog import number  # noqa: E402
from ciboard.queries import run  # noqa: E402
from ciboard.settings import Settings  # noqa: E402
from ciboard.warehouse import FACTS_ORDER, POINTER, Warehouse  # noqa: E402

TARGET_MS = 1000.0
NOT_REPEATED = ("payments", "quality")  # they read tables the generator does not repeat
VENDOR = "V1"


def generate(source: Path, target: Path, facts_wanted: int, storage: str) -> dict:
    """A copy of `source`'s current version with its students, dosage, facts and their yearly sums repeated
    until the facts reach `facts_wanted`. On the lake, the copy is of the source's read copy (its
    current snapshot's tables in a DuckDB file), and the repeated tables are then moved into a
    lake of their own as `ciboard migrate-to-lake` moves a file warehouse: one snapshot, which
    the moving server keeps as its read copy."""
    original = Warehouse(Settings(data_dir=source, storage=storage))
    version = original.version()
    if storage == "lake":
        original.cursor().close()  # asks for the snapshot's read copy, as a server's first page does
        original.lake.wait_for_copies()
        copied = original.lake.read_copy(number(version))
        path = target / "generated.duckdb"
        target.mkdir(parents=True)
    else:
        copied = original.path_of(version)
        (target / "warehouse").mkdir(parents=True)
        path = target / "warehouse" / f"{version}.duckdb"
        (target / "warehouse" / POINTER).write_text(f"{version}.duckdb")
    shutil.copyfile(copied, path)
    original.close()

    started = time.perf_counter()
    con = duckdb.connect(str(path), config={"preserve_insertion_order": False})
    try:
        facts = con.execute("select count(*) from facts").fetchall()[0][0]
        times = math.ceil(facts_wanted / facts)
        repeats = f"(select 0 as k union all select k from range(1, {times}) as r(k))"
        renamed = "case when k = 0 then {0} else {0} || '~' || k end as {0}"
        in_order = {"facts": FACTS_ORDER, "student_year_sums": "metric_id, school_year, student_key"}
        for name in ("facts", "student_year_sums", "student_dosage", "students"):
            columns = [row[0] for row in con.execute(f"select * from {name} limit 0").description]
            chosen = ", ".join(renamed.format(c) if c == "student_key" else c for c in columns)
            if name in in_order:
                # In the order an ingest writes them (warehouse.FACTS_ORDER), a metric at a time:
                # 100M rows sorted at once had grown past 20 GB when I stopped it.
                con.execute(f"create table {name}_repeated as select {chosen} from {name}, {repeats} limit 0")
                for (metric,) in con.execute(f"select distinct metric_id from {name} order by 1").fetchall():
                    con.execute(f"insert into {name}_repeated select {chosen} from {name}, {repeats} where metric_id = ?"
                                f" order by {in_order[name]}", [metric])
            else:
                con.execute(f"create table {name}_repeated as select {chosen} from {name}, {repeats}")
            if name == "students":
                # Students are kept with their key (other tables refer to them): the repeats go beside.
                con.execute("insert into students by name select * from students_repeated where student_key like '%~%'")
                con.execute("drop table students_repeated")
                continue
            con.execute(f"drop table {name}")
            con.execute(f"alter table {name}_repeated rename to {name}")
        con.execute("checkpoint")
        total = con.execute("select count(*) from facts").fetchall()[0][0]
        students = con.execute("select count(*) from students").fetchall()[0][0]
    finally:
        con.close()
    made = {"facts": total, "students": students, "times": times, "seconds": time.perf_counter() - started,
            "mb": path.stat().st_size / 1e6}
    if storage == "lake":
        lake = Warehouse(Settings(data_dir=target, storage="lake"))
        moving = time.perf_counter()
        lake.move_in([("generated", path)], {})
        made["moved_in_seconds"] = time.perf_counter() - moving
        made["lake_mb"] = lake.lake.data_bytes() / 1e6
        made["read_copy_mb"] = lake.lake.read_copy(number(lake.version())).stat().st_size / 1e6
        lake.close()
        path.unlink()
    return made


def measure(data_dir: Path, repeats: int, storage: str) -> dict:
    """Run in a process of its own: each case once to warm, then `repeats` rounds of all. On the
    lake, through the read copy the move left (a server reads the lake itself only until its
    copy is made)."""
    warehouse = Warehouse(Settings(data_dir=data_dir, storage=storage))
    cases = [
        (scope, view, label, params)
        for scope in (Scope("analyst"), Scope("vendor", VENDOR))
        for view, label, params in query_cases(VENDOR)
        if view not in NOT_REPEATED
    ]
    rows = [len(run(warehouse, view, scope, params)) for scope, view, label, params in cases]
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for i, (scope, view, label, params) in enumerate(cases):
            started = time.perf_counter()
            run(warehouse, view, scope, params)
            times[i].append((time.perf_counter() - started) * 1000)
    warehouse.close()
    return {
        "cases": [[str(scope), f"{view}: {label}", n, statistics.median(t), max(t)]
                  for (scope, view, label, params), n, t in zip(cases, rows, times)],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a data folder with a demo warehouse (on --storage)")
    parser.add_argument("--facts", type=parse_size, default=100_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="the generated folder: reused if it is there")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--storage", choices=("files", "lake"), default="files",
                        help="the storage of --source and of the generated warehouse (default files)")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeats, args.storage)))
        return 0

    target = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-")) / "data"
    record = target / "generated.json"
    if record.exists():
        made = json.loads(record.read_text())
    else:
        if not args.source:
            parser.error("--source is needed to generate the facts")
        shutil.rmtree(target, ignore_errors=True)
        made = generate(args.source, target, args.facts, args.storage)
        record.write_text(json.dumps(made))
    print(f"generated: {made['facts']:,} facts, {made['students']:,} students (the demo's {made['times']} times), "
          f"{made['mb']:,.0f} MB, in {made['seconds']:.0f} s")
    if "moved_in_seconds" in made:
        print(f"moved into the lake in {made['moved_in_seconds']:.0f} s; its data files {made['lake_mb']:,.0f} MB,"
              f" the server's read copy {made['read_copy_mb']:,.0f} MB")

    measured = subprocess.run(
        [sys.executable, __file__, "--measure", str(target), "--repeats", str(args.repeats), "--storage", args.storage],
        check=True, capture_output=True, text=True,
    )
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    print(f"\nView latency, ms over {args.repeats} rounds (target: median < {TARGET_MS:.0f} ms)")
    print(table(
        ["scope", "case", "rows", "median", "max", "result"],
        [[scope, case, str(n), f"{median:.0f}", f"{most:.0f}", "PASS" if median < TARGET_MS else "FAIL"]
         for scope, case, n, median, most in result["cases"]],
    ))
    print(f"\nPeak resident memory of the reading process: {result['peak_mb']:,.0f} MB")
    print(f"\nfolder kept in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
