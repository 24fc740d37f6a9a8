"""What cell-key noise costs in accuracy, and in time, on a demo district.

    python bench/bench_privacy.py --data-dir DIR [--repeats 7]

DIR holds a warehouse (`ciboard demo --data-dir DIR` makes one). For every metric, the series at
week and month grain, the breakdown by each dimension and the vendors view are read twice, as an
analyst (exact) and as a facilitator (small cells hidden, cell-key noise on the rest). Prints the
mean and the 95th percentile of the absolute change of every value both show: in percentage
points for shares, in per cent of the value for means and medians; how often a count moved and
by how much; and the median time of a facilitator's query against an analyst's, over those
requests and over the weekly panels by vendor and each other dimension (two-way tables, where
hiding a cell takes the most work).
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ciboard.access import ANALYST, Scope
from ciboard.queries import DIMENSIONS, run
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

FACILITATOR = Scope("facilitator")


def requests(metrics: pd.DataFrame):
    for metric in metrics.itertuples():
        grains = ("window",) if metric.frequency != "weekly" else ("week", "month")
        for grain in grains:
            yield metric, "series", {"metric": metric.metric_id, "grain": grain}
        for dimension in DIMENSIONS:
            yield metric, "breakdown", {"metric": metric.metric_id, "by": dimension}
        yield metric, "vendors", {"metric": metric.metric_id}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    warehouse = Warehouse(Settings(data_dir=args.data_dir))
    with warehouse.cursor() as cur:
        metrics = cur.execute("select metric_id, aggregation, frequency from metrics order by metric_id").df()
        facts = cur.execute("select count(*) from facts").fetchone()[0]
    print(f"warehouse {warehouse.version()}: {facts:,} facts, {len(metrics)} metrics")

    changes: dict[str, list[float]] = {"share (points)": [], "mean or median (% of value)": []}
    counts: list[int] = []
    timings: dict[str, list[float]] = {"analyst": [], "facilitator": []}
    for metric, view, params in requests(metrics):
        exact = run(warehouse, view, ANALYST, params)
        noisy = run(warehouse, view, FACILITATOR, params)
        shown = noisy["n"].notna().to_numpy() & exact["value"].notna().to_numpy()
        difference = (noisy["value"] - exact["value"]).to_numpy(dtype=float)[shown]
        if metric.aggregation in ("rate", "proportion"):
            changes["share (points)"].extend(np.abs(difference) * 100)
        else:
            base = np.abs(exact["value"].to_numpy(dtype=float)[shown])
            changes["mean or median (% of value)"].extend(np.abs(difference) / np.where(base > 0, base, np.nan) * 100)
        counts.extend((noisy["n"] - exact["n"]).to_numpy(dtype=float)[shown].astype(int))
    for metric, view, params in list(requests(metrics))[:: max(1, len(metrics))]:
        for _ in range(args.repeats):
            for name, scope in (("analyst", ANALYST), ("facilitator", FACILITATOR)):
                started = time.perf_counter()
                run(warehouse, view, scope, params)
                timings[name].append(time.perf_counter() - started)

    print("\nchange of shown values, facilitator against analyst")
    for name, values in changes.items():
        values = np.array([v for v in values if np.isfinite(v)])
        if len(values):
            print(f"  {name:30s} cells {len(values):6,}  mean {values.mean():.3f}  p95 {np.percentile(values, 95):.3f}"
                  f"  max {values.max():.3f}")
    counts = np.array(counts)
    print(f"  {'student counts':30s} cells {len(counts):6,}  unchanged {np.mean(counts == 0):.0%}"
          f"  off by 1 {np.mean(np.abs(counts) == 1):.0%}  off by 2 {np.mean(np.abs(counts) == 2):.0%}"
          f"  more {np.mean(np.abs(counts) > 2):.0%}")
    print("\nmedian query time (ms), same requests alternated")
    for name, values in timings.items():
        print(f"  {name:12s} {statistics.median(values) * 1000:7.1f}")

    # Two-way tables are where hiding costs: a hidden cell needs complements in its row and its
    # column. A meeting's signal set reads one such panel per weekly metric and dimension.
    weekly = metrics.loc[metrics["frequency"] == "weekly", "metric_id"].iloc[0]
    panels: dict[str, list[float]] = {"analyst": [], "facilitator": []}
    for dimension in DIMENSIONS[1:]:
        params = {"metric": weekly, "grain": "week", "by": "vendor_id", "by2": dimension}
        for _ in range(args.repeats):
            for name, scope in (("analyst", ANALYST), ("facilitator", FACILITATOR)):
                started = time.perf_counter()
                run(warehouse, "panel", scope, params)
                panels[name].append(time.perf_counter() - started)
    print(f"\nmedian query time (ms) of {weekly}'s weekly panels by vendor x each other dimension, alternated")
    for name, values in panels.items():
        print(f"  {name:12s} {statistics.median(values) * 1000:7.1f}")


if __name__ == "__main__":
    main()
