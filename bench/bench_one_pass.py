"""The signals' panels and the gaps' breakdowns read in one pass, against one view run each.

    python bench/bench_one_pass.py --data-dir DIR [--repeats 3]

DIR holds a warehouse (`ciboard demo --data-dir DIR` makes one). For each scope (an analyst, a
facilitator, a vendor) and each weekly metric, times alternately, in one process:
- the 18 weekly groupings a set of signals charts (the district, each student dimension, each
  vendor, each vendor by each dimension; a vendor's own 9) as `queries.panels` reads them, and as
  a run of the series or panel view each;
- the six key groups' breakdowns a meeting's gaps read over eight weeks, as `queries.breakdowns`
  reads them, and as six runs of the breakdown view;
then a whole set of signals (`signals.special_points`) and of gap changes (`followup.gap_changes`)
per scope. Prints medians in milliseconds, and checks every one-pass frame against the view's.
"""

import argparse
import statistics
import time
from datetime import date
from pathlib import Path

import pandas as pd

from ciboard import followup, signals
from ciboard.access import ANALYST, Scope
from ciboard.queries import breakdowns, data_map, panels, run
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

SCOPES = (ANALYST, Scope("facilitator"), Scope("vendor", "V2"))
# The look-back of a meeting's gaps in the demo's year: the eight weeks before the meeting.
SINCE, UNTIL = date(2026, 1, 6), date(2026, 3, 3)


def groupings(scope: Scope) -> list[tuple[str, ...]]:
    dimensions = list(signals.GROUP_DIMENSIONS)
    found = [(), *[(d,) for d in dimensions]]
    if scope.role != "vendor":
        found += [("vendor_id",), *[("vendor_id", d) for d in dimensions]]
    return found


def readings(warehouse: Warehouse, scope: Scope, metric: str, kind: str):
    """The one-pass call and the view runs it stands for, of one metric."""
    if kind == "panels":
        params, wanted = {"metric": metric, "grain": "week"}, groupings(scope)
        return (lambda: panels(warehouse, scope, params, wanted),
                lambda: [run(warehouse, "panel" if g else "series", scope, {**params, **dict(zip(("by", "by2"), g))})
                         for g in wanted])
    params, wanted = {"metric": metric, "start": SINCE, "end": UNTIL}, [(d,) for d in followup.KEY_GROUPS]
    return (lambda: breakdowns(warehouse, scope, params, wanted),
            lambda: [run(warehouse, "breakdown", scope, {**params, "by": d}) for (d,) in wanted])


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def compare(warehouse: Warehouse, scope: Scope, metrics: list[str], repeats: int, kind: str) -> tuple[float, float]:
    """Median ms per metric of the one pass and of the view runs, the two alternating."""
    one, each = [], []
    for metric in metrics:
        together, apart = readings(warehouse, scope, metric, kind)
        for _ in range(repeats):
            ms, passed = timed(together)
            one.append(ms)
            ms, ran = timed(apart)
            each.append(ms)
        for a, b in zip(passed, ran, strict=True):
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    return statistics.median(one), statistics.median(each)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warehouse = Warehouse(Settings(data_dir=args.data_dir))
    catalogue = data_map(warehouse)
    weekly = list(catalogue.loc[catalogue["frequency"] == "weekly", "metric_id"])
    gapped = catalogue[catalogue["kind"].isin(followup.GAP_KINDS) & (catalogue["aggregation"] != "median")]
    with warehouse.cursor() as cur:
        facts = cur.execute("select count(*) from facts").fetchone()[0]
    print(f"warehouse {warehouse.version()}: {facts:,} facts; {len(weekly)} weekly metrics, {len(gapped)} with gaps")
    print("median ms per metric, one pass / one view run per grouping (every frame checked equal)")
    for scope in SCOPES:
        one, each = compare(warehouse, scope, weekly, args.repeats, "panels")
        print(f"  {str(scope):12} signals' {len(groupings(scope))} panels: {one:6.0f} / {each:6.0f}  ({each / one:.1f}x)")
        one, each = compare(warehouse, scope, list(gapped["metric_id"]), args.repeats, "breakdowns")
        print(f"  {str(scope):12} gaps' 6 breakdowns:  {one:6.0f} / {each:6.0f}  ({each / one:.1f}x)")
    print("whole analyses, median s over the repeats")
    for scope in SCOPES:
        points = [timed(lambda: signals.special_points(warehouse, scope))[0] / 1000 for _ in range(args.repeats)]
        gaps = [timed(lambda: followup.gap_changes(warehouse, scope, SINCE, UNTIL))[0] / 1000 for _ in range(args.repeats)]
        print(f"  {str(scope):12} signals {statistics.median(points):5.2f} s   gap changes {statistics.median(gaps):5.2f} s")


if __name__ == "__main__":
    main()
