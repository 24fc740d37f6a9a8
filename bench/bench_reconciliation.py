"""Benchmark of the reconciliation: how long one vendor's months take to reconcile, and where.

    python bench/bench_reconciliation.py --data-dir DIR [--vendor V3] [--repeats 3]

DIR is a built warehouse (`ciboard demo --data-dir DIR --students 3000`). The reconciliation
computes each month's statement as it stands (ciboard.reconciliation.earned); the Payments page
shows it on opening if it is fast enough. It prints, per run, the whole reconciliation of the
vendor (every month up to today), and then one month's statement split into its parts: the
payment_students query, the rules in Python, the left-out session count and the adjustments.
Figures only; nothing here asserts on time. The machine is shared: read medians, and the load.
"""

import argparse
import os
import statistics
import time
from datetime import date

from ciboard import payments, queries, reconciliation, statements
from ciboard.access import ANALYST
from ciboard.appdb import AppDB
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--vendor", default="V3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--today", default=None, help="reconcile as of this day (default: today), YYYY-MM-DD")
    args = parser.parse_args()
    warehouse = Warehouse(Settings(data_dir=args.data_dir))
    db = AppDB.of(warehouse.settings)
    today = date.fromisoformat(args.today) if args.today else None
    contracts = queries.run(warehouse, "payments", ANALYST, {})
    entries = reconciliation.ledger(db, ANALYST, args.vendor)
    closed = statements.closed_months(db, args.vendor)
    months = reconciliation.periods(contracts[contracts["vendor_id"] == args.vendor], entries, closed, today)
    with warehouse.cursor() as cur:
        facts, students = cur.execute("select count(*), count(distinct student_key) from facts").fetchone()
    print(f"warehouse {warehouse.version()}: {facts:,} facts, {students:,} students; vendor {args.vendor}, "
          f"{len(months)} months ({months[0]} to {months[-1]}); load {os.getloadavg()[0]:.1f}")

    whole = [timed(lambda: reconciliation.earned(warehouse, ANALYST, args.vendor, months)) for _ in range(args.repeats)]
    print(f"reconcile {len(months)} months: median {statistics.median(whole):.2f} s "
          f"(min {min(whole):.2f}, max {max(whole):.2f}; {statistics.median(whole) / len(months) * 1000:.0f} ms a month)")

    # As the reconciliation read them before queries.statement_totals: each month's whole statement.
    def month_by_month() -> None:
        for period in months:
            queries.run(warehouse, "statement", ANALYST, {"vendor_id": args.vendor, "period": period})

    before = [timed(month_by_month) for _ in range(args.repeats)]
    print(f"the same months through queries.run one by one: median {statistics.median(before):.2f} s "
          f"(min {min(before):.2f}, max {max(before):.2f})")

    month = months[len(months) // 2]
    period = payments.period_of(month)
    bound = {"scope_vendor": None, "vendor": args.vendor, "end": payments.period_end(period),
             **queries._service_checks(warehouse)}
    parts: dict[str, list[float]] = {"payment_students query": [], "rules (Python)": [], "left-out count": [],
                                     "adjustments": [], "statement through queries.run": []}
    for _ in range(args.repeats):
        version = warehouse.version()
        with warehouse.cursor(version) as cur:
            started = time.perf_counter()
            frame = cur.execute(queries.SQL["statement"], bound).df()
            parts["payment_students query"].append(time.perf_counter() - started)
        frame = queries._shape("statement", frame, {})
        rows, _ = payments.statement(frame, period)
        parts["rules (Python)"].append(timed(lambda: payments.statement(frame, period)))
        parts["left-out count"].append(timed(lambda: queries._left_out(warehouse, version, bound, rows)))
        parts["adjustments"].append(timed(lambda: queries._adjustments(warehouse, version, ANALYST, bound, period)))
        parts["statement through queries.run"].append(timed(
            lambda: queries.run(warehouse, "statement", ANALYST, {"vendor_id": args.vendor, "period": month})))
    print(f"one month ({month}), median of {args.repeats}:")
    for name, seconds in parts.items():
        print(f"  {name:32s} {statistics.median(seconds) * 1000:8.0f} ms")
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
