"""Benchmark of CI Board's SPC engine: microseconds per chart, per series length.

    python bench/bench_stats.py [--sizes 12,33,100,500] [--repeats 300] [--save]

The signals page draws one chart per metric x vendor x student group (about 250 for a
metric), so a chart has to cost well under a millisecond. Inputs are realistic: weekly
attendance-style proportions with denominators in the thousands and more than binomial
variation between weeks (the case Laney's p' is for), and a mean-style measure for the
XmR, each with a shift part way through so that the rules have something to find.

Each figure is the median over `repeats` samples of the time per call, a sample being a
batch of calls long enough (about a millisecond) for the clock to resolve it. Nothing
here asserts on time. --save writes a JSON copy of the figures to bench/results/.
"""

import argparse
import json
import platform
import statistics
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ciboard.stats import spc

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_US = 1000.0  # per chart, so ~250 charts leave most of 2 s for the queries


def proportions(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weekly numerators and denominators: 2,000-6,000 sessions a week, a rate near 0.85
    that wanders more than binomially and steps up by two points two thirds of the way in."""
    n = rng.integers(2_000, 6_000, size).astype(float)
    rate = 0.85 + rng.normal(0, 0.01, size)
    rate[2 * size // 3:] += 0.02
    x = rng.binomial(n.astype(int), np.clip(rate, 0, 1)).astype(float)
    return x, n


def measure(size: int, rng: np.random.Generator) -> np.ndarray:
    """A mean-style weekly measure (a growth percentile, say) that drifts up late on."""
    y = 50 + rng.normal(0, 4, size)
    y[2 * size // 3:] += 5
    return y


def cases(size: int, rng: np.random.Generator) -> dict:
    x, n = proportions(size, rng)
    y = measure(size, rng)
    chart = spc.xmr(y, direction="increase", target=55.0)
    return {
        "xmr": lambda: spc.xmr(y, direction="increase", target=55.0),
        "p_chart": lambda: spc.p_chart(x, n, direction="increase", target=0.9),
        "p_chart laney": lambda: spc.p_chart(x, n, direction="increase", laney=True, target=0.9),
        "summary": lambda: spc.summary(chart, direction="increase"),
        "runs_analysis": lambda: spc.runs_analysis(y),
    }


def time_per_call(call, repeats: int) -> float:
    """Median seconds per call."""
    for _ in range(20):  # warm caches and imports before the clock starts
        call()
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    batch = max(1, int(1e-3 / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batch):
            call()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="12,33,100,500", help="series lengths, comma separated")
    parser.add_argument("--repeats", type=int, default=300, help="timed samples per figure")
    parser.add_argument("--save", action="store_true", help="write a JSON copy to bench/results/")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    figures: dict[str, dict[int, float]] = {}
    for size in sizes:
        rng = np.random.default_rng(size)
        for name, call in cases(size, rng).items():
            figures.setdefault(name, {})[size] = time_per_call(call, args.repeats) * 1e6

    width = max(len(name) for name in figures)
    print(f"median microseconds per call (numpy {np.__version__}, pandas {pd.__version__})")
    print(f"{'':{width}}" + "".join(f"{f'n={size}':>10}" for size in sizes))
    for name, row in figures.items():
        print(f"{name:{width}}" + "".join(f"{row[size]:>10.1f}" for size in sizes))
    charts = [name for name in ("xmr", "p_chart", "p_chart laney") if name in figures]
    at = 33 if 33 in sizes else max(sizes)
    worst = max(figures[name][at] for name in charts)
    verdict = "PASS" if worst < TARGET_US else "FAIL"
    print(f"slowest chart at n={at}: {worst:.1f} us, target < {TARGET_US:.0f} us: {verdict}")

    if args.save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"bench_stats-{datetime.now():%Y%m%d-%H%M%S}.json"
        payload = {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "repeats": args.repeats,
            "microseconds": {name: {str(size): us for size, us in row.items()} for name, row in figures.items()},
        }
        path.write_text(json.dumps(payload, indent=2))
        print(f"saved {path}")


if __name__ == "__main__":
    main()
