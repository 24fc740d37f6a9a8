"""Peak memory of a large upload, taken the way the Submit data page takes it.

    python bench/bench_upload.py [--megabytes 200] [--keep DIR]

Builds a small warehouse (the sample schools, vendors and contracts, and a roster of V1
students), writes a sessions CSV of about --megabytes for V1, and then, in a fresh process
per case, does what app_pages/upload.py does with an upload: the file's bytes in memory (as
Streamlit holds them), copied to a file on disk a block at a time, and `ingest` from there as
the vendor. Cases: the file with one bad value in its last row (rejected, without copying the
warehouse); with a last row that cannot be read (rejected after Python's csv module reads the
whole file again, row by row); the file itself (it lands); and the file sent again (unchanged).

Figures go to stdout: peak RSS of each case's process (VmHWM), what the upload's bytes alone
take, and the seconds of each step. PASS/FAIL against the target: peak under 1 GB.
"""

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from ciboard.warehouse import WORKSPACE_MEMORY

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
TARGET_MB = 1024
STUDENTS = 40_000


def peak_mb() -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def build(folder: Path, megabytes: int) -> Path:
    """A warehouse with V1's roster, and a sessions file of about `megabytes` for it."""
    from ciboard.ingest import Submission, ingest
    from ciboard.settings import Settings
    from ciboard.warehouse import Warehouse

    warehouse = Warehouse(Settings(data_dir=folder / "data"))
    warehouse.init(["2025-26"])
    roster = folder / "roster.csv"
    duckdb.execute(
        f"""copy (select 'ST' || lpad(i::varchar, 7, '0') as student_id, 'V1' as vendor_id, 'E01' as school_id,
                  4 as grade, 'White' as race_ethnicity, 'Female' as gender, 0 as econ_disadvantaged,
                  0 as english_learner, 0 as special_education, 'near' as baseline_band,
                  date '2025-09-15' as enrolled_on
            from range({STUDENTS}) as t(i)) to '{roster}' (header)"""
    )
    ingest(
        warehouse,
        [Submission(SAMPLES / f"{kind}.csv", kind) for kind in ("schools", "vendors", "contracts")]
        + [Submission(roster, "roster", by_district=True)],
    )
    # One session per student per school day from mid-September: about 37 bytes a row.
    rows = megabytes * 1_000_000 // 37
    days = -(-rows // STUDENTS)
    sessions = folder / "sessions_V1_2025-26.csv"
    duckdb.execute(
        f"""copy (
            select 'ST' || lpad(s::varchar, 7, '0') as student_id, d.day as session_date,
                   'V1-T' || lpad((s % 400)::varchar, 3, '0') as tutor_id, 1 + s % 4 as group_size,
                   40 as scheduled_minutes, (s * 7 + d.n) % 41 as attended_minutes
            from range({STUDENTS}) as t(s),
                 (select day::date as day, row_number() over (order by day) as n
                  from range(date '2025-09-15', date '2026-06-30', interval 1 day) as r(day)
                  where isodow(day) <= 5 qualify n <= {days}) as d
            order by d.day, s
            limit {rows}
        ) to '{sessions}' (header)"""
    )
    return sessions


def case(data_dir: str, source: str, name: str, replace: bool) -> None:
    """One upload, as the page takes it; prints its figures as JSON (run in a fresh process)."""
    from ciboard import ingest
    from ciboard.settings import Settings
    from ciboard.warehouse import Warehouse

    figures = {"start_mb": round(rss_mb())}
    with open(source, "rb") as handle:
        uploaded = io.BytesIO(handle.read())  # what Streamlit holds of an upload
    figures["upload_held_mb"] = round(rss_mb() - figures["start_mb"])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=Path(data_dir)) as folder:
        path = Path(folder) / ("upload" + Path(name).suffix)
        uploaded.seek(0)
        with open(path, "wb") as handle:
            shutil.copyfileobj(uploaded, handle, 1 << 20)
        figures["to_disk_s"] = round(time.perf_counter() - started, 2)
        figures["after_copy_peak_mb"] = round(peak_mb())
        submission = ingest.Submission(path, "sessions", "V1", file_name=name)
        started = time.perf_counter()
        try:
            [outcome] = ingest.ingest(Warehouse(Settings(data_dir=Path(data_dir))), [submission], replace=replace)
            figures["result"] = f"{outcome.status}: {outcome.rows:,} rows"
        except ingest.IngestRejected as rejected:
            figures["result"] = f"rejected: {len(rejected.problems)} problem(s), e.g. {rejected.problems[0]}"
        except ingest.ReplaceUnconfirmed as unconfirmed:
            figures["result"] = f"refused until confirmed: {unconfirmed}"
        figures["ingest_s"] = round(time.perf_counter() - started, 2)
    figures["peak_mb"] = round(peak_mb())
    print(json.dumps(figures))


def run_case(label: str, data_dir: Path, source: Path, name: str, replace: bool = False) -> dict:
    print(f"  {label}…", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, __file__, "--case", str(data_dir), str(source), name, str(replace)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="Build in this folder and keep it.")
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        data_dir, source, name, replace = args.case
        case(data_dir, source, name, replace == "True")
        return

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-upload-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        print(f"building a warehouse and a {args.megabytes} MB sessions file in {folder}…", file=sys.stderr)
        sessions = build(folder, args.megabytes)
        size = sessions.stat().st_size / 1e6
        rows = sum(1 for _ in open(sessions, "rb")) - 1
        bad = folder / "sessions_bad_value.csv"
        shutil.copyfile(sessions, bad)
        with open(bad, "a") as handle:
            handle.write("ST0000001,2026-06-29,V1-T001,3,40,41\n")  # attended more than scheduled
        unreadable = folder / "sessions_unreadable_row.csv"
        shutil.copyfile(sessions, unreadable)
        with open(unreadable, "a") as handle:
            handle.write('ST0000001,2026-06-29,"V1-T001,3,40,40\n')  # a quote never closed
        data_dir = folder / "data"
        results = [
            ("rejected: a bad value", run_case("a bad value in the last row", data_dir, bad, bad.name)),
            ("rejected: an unreadable row", run_case("an unreadable last row", data_dir, unreadable, unreadable.name)),
            ("lands", run_case("the file lands", data_dir, sessions, sessions.name)),
        ]
        results.append(("same file again (unchanged)", run_case("the same file again", data_dir, sessions, sessions.name)))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"\nupload: {sessions.name}, {size:,.0f} MB, {rows:,} sessions of {STUDENTS:,} students (V1)")
    print(f"{'case':<30} {'peak RSS':>9} {'upload held':>12} {'to disk':>8} {'ingest':>8}  result")
    worst = 0
    for label, figures in results:
        worst = max(worst, figures["peak_mb"])
        print(
            f"{label:<30} {figures['peak_mb']:>6} MB {figures['upload_held_mb']:>9} MB {figures['to_disk_s']:>6} s"
            f" {figures['ingest_s']:>6} s  {figures['result'][:120]}"
        )
    print(f"(ingest's DuckDB memory: {WORKSPACE_MEMORY} at most, then it spills to disk)")
    print(f"\npeak RSS {worst} MB against a target of under {TARGET_MB} MB: {'PASS' if worst < TARGET_MB else 'FAIL'}")


if __name__ == "__main__":
    main()
