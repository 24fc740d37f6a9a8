"""sample_sd, the views' standard deviation: right to the certified digits, and the same on every run."""

import json
import statistics
from pathlib import Path

import pytest

from ciboard.access import ANALYST
from ciboard.queries import run

REFERENCE = json.loads((Path(__file__).parent / "reference" / "nist_strd_univariate.json").read_text())["datasets"]


def sd_of(cursor, values) -> float | None:
    return cursor.execute("select sample_sd(x) from (select unnest(?::double[]) as x)", [values]).fetchone()[0]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_certified_sd_of_nist_strd_datasets(warehouse, name):
    # NIST StRD univariate summary statistics (public domain), certified to 15 significant
    # digits. Michelso and Mavro have a mean thousands of SDs from zero, where a naive
    # sum-of-squares formula loses most of its digits.
    dataset = REFERENCE[name]
    with warehouse.cursor() as cur:
        got = sd_of(cur, dataset["values"])
    assert got == pytest.approx(dataset["certified_sd"], rel=1e-14)


def test_the_same_digits_on_every_run(warehouse):
    # A table of enough rows, in groups, that both threads add up parts of each group in an
    # order that changes from run to run: stddev_samp's (and sum's) last digits change with it.
    with warehouse.cursor() as cur:
        cur.execute(
            "create temp table spread as"
            " select i % 7 as g, (hash(i) % 100003) / 3.0 + 199.7 as x from range(1500000) as r(i)"
        )
        sql = "select g, sample_sd(x) from spread group by g order by g"
        runs = {tuple(cur.execute(sql).fetchall()) for _ in range(6)}
        assert len(runs) == 1
        [result] = runs
        values = [x for (x,) in cur.execute("select x from spread where g = 3").fetchall()]
    # statistics.stdev adds exactly (fractions), a reference free of rounding order.
    assert dict(result)[3] == pytest.approx(statistics.stdev(values), rel=1e-13)


def test_too_few_values_have_no_sd_and_nulls_are_not_values(warehouse):
    with warehouse.cursor() as cur:
        assert sd_of(cur, []) is None
        assert sd_of(cur, [4.0]) is None
        assert sd_of(cur, [4.0, None]) is None
        assert sd_of(cur, [1.0, None, 3.0]) == pytest.approx(2**0.5, rel=1e-15)
        assert sd_of(cur, [212.25] * 5) == 0.0
        assert sd_of(cur, [-3.0, -1.0]) == sd_of(cur, [1.0, 3.0])


def test_the_panel_sd_is_the_sd_of_its_students_values(loaded):
    # The weekly panel's sd of a mean metric is the sd of that week's facts, computed here
    # from the same facts by the reference above.
    with loaded.cursor() as cur:
        metric, week = cur.execute(
            "select f.metric_id, f.period_start from facts as f inner join metrics as m using (metric_id)"
            " where m.aggregation = 'mean' group by all having count(*) >= 3 order by count(*) desc, 1, 2 limit 1"
        ).fetchone()
        values = [v for (v,) in cur.execute(
            "select value from facts where metric_id = ? and period_start = ? and value is not null", [metric, week]
        ).fetchall()]
    panel = run(loaded, "series", ANALYST, {"metric": metric, "grain": "week"})
    [row] = panel[panel["period_start"] == week].to_dict(orient="records")
    assert row["sd"] == pytest.approx(statistics.stdev(values), rel=1e-12)
