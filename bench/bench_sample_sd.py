"""What sample_sd (exact integer sums, the same digits every run) costs against stddev_samp.

    python bench/bench_sample_sd.py [--rows 1000000,10000000] [--groups 50] [--repeats 7]

Times each aggregate alone over a table of `rows` doubles in `groups` groups, alternately in
one process, and prints the median per run, the ratio, and how many distinct answers each
gave over the runs (stddev_samp's last digits change with the order its threads add in).
"""

import argparse
import statistics
import time

import duckdb

from ciboard.warehouse import SQL_DIR

AGGREGATES = {"stddev_samp": "stddev_samp(x)", "sample_sd": "sample_sd(x)"}


def scalar_macros() -> str:
    # The views' scalar macros, without the table macro that needs a warehouse's tables.
    text = (SQL_DIR / "views" / "scoped_facts.sql").read_text()
    return text[text.index("create or replace macro sample_sd_from_sums"):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute(scalar_macros())
    [(threads,)] = con.execute("select current_setting('threads')").fetchall()
    print(f"duckdb {duckdb.__version__}, {threads} threads")
    for rows in (int(size) for size in args.rows.split(",")):
        con.execute(
            "create or replace table spread as select i % ? as g, (hash(i) % 100003) / 3.0 + 199.7 as x"
            " from range(?) as r(i)", [args.groups, rows]
        )
        timings = {name: [] for name in AGGREGATES}
        answers = {name: set() for name in AGGREGATES}
        for _ in range(args.repeats):
            for name, aggregate in AGGREGATES.items():
                started = time.perf_counter()
                result = con.execute(f"select g, {aggregate} from spread group by g order by g").fetchall()
                timings[name].append(time.perf_counter() - started)
                answers[name].add(tuple(result))
        medians = {name: statistics.median(times) * 1000 for name, times in timings.items()}
        print(f"{rows:>11,} rows, {args.groups} groups: "
              + ", ".join(f"{name} {ms:.0f} ms ({len(answers[name])} distinct answers)" for name, ms in medians.items())
              + f"; sample_sd / stddev_samp = {medians['sample_sd'] / medians['stddev_samp']:.1f}x")


if __name__ == "__main__":
    main()
