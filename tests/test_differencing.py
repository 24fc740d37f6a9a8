"""No two answers subtract to a hidden small group, for any scope that hides small cells.

Suppression protects one table at a time; these attacks use two. Each asks two questions whose
students differ by exactly one small group, subtracts, and checks what comes out against the
analyst's exact numbers for that group. Before cell-key noise (ciboard.privacy) every one of
them gave the hidden group back to the last session.

The method is the cell-key perturbation of the Australian Bureau of Statistics' TableBuilder
(Fraser and Wooton, "A proposed method for confidentialising tabular output to protect against
differencing", UNECE Work Session on Statistical Data Confidentiality, 2005) and of the ONS's
Census 2021 outputs: the same students always get the same noise, so asking twice reveals
nothing, and two different sets of students get unrelated noise, so a difference is noisy.
"""

import numpy as np
import pandas as pd
import pytest

from ciboard import privacy
from ciboard.access import ANALYST, Scope
from ciboard.ingest import Submission, ingest
from ciboard.queries import run

FACILITATOR = Scope("facilitator")
MIN_CELL = 10
SUMS = ("numerator", "denominator")


def exact_small(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["n"] > 0) & (frame["n"] < MIN_CELL)]


def assert_not_given_back(difference: pd.Series, truth: pd.Series, *, shown_none: bool = False) -> None:
    """The sums behind a hidden group never come back exactly, nor the whole group.

    `shown_none`: the wider group, a shown cell, had no successes at all. Its share then shows as
    0 (noise keeps a share within 0 and 1), which says on its own that each of its subgroups had
    none: that is told by one cell the reader may see, not worked out by subtracting two, so a
    numerator of 0 coming back is not counted against the noise."""
    for column in SUMS:
        if shown_none and column == "numerator" and truth[column] == 0:
            continue
        assert not np.isclose(difference[column], truth[column], rtol=0, atol=1e-9), (column, difference, truth)
    assert not all(np.isclose(difference[c], truth[c], rtol=0, atol=1e-9) for c in ("n", *SUMS))


def subtracted(pair: pd.Series, suffix: str) -> pd.Series:
    """What a reader works out by subtracting the second answer (columns ending `suffix`) from the first."""
    return pd.Series({c: float(pair[c]) - float(pair[f"{c}{suffix}"]) for c in ("n", *SUMS)})


def small_vendor_groups(warehouse, vendor: str, metric: str, grain: str):
    """(race, grade) pairs where `vendor` has a period of 1 to 9 students: the hidden cells."""
    choices = run(warehouse, "choices", ANALYST)
    races = choices.loc[choices["dimension"] == "race_ethnicity", "value"]
    for race in races:
        for grade in range(3, 9):
            filters = {"race_ethnicity": race, "grade": str(grade)}
            mine = run(warehouse, "series", ANALYST, {"metric": metric, "grain": grain, "vendor_id": vendor, **filters})
            if len(exact_small(mine)):
                yield filters, mine


def test_all_vendors_minus_the_benchmark_does_not_give_a_vendors_small_group_back(demo_warehouse):
    """The issue's first attack: series for all vendors, minus peers for V2, under the same filters."""
    metric, grain = "tutoring_attendance_rate", "month"
    checked = 0
    for filters, truth in small_vendor_groups(demo_warehouse, "V2", metric, grain):
        everyone = run(demo_warehouse, "series", FACILITATOR, {"metric": metric, "grain": grain, **filters})
        others = run(demo_warehouse, "peers", FACILITATOR, {"metric": metric, "grain": grain, "vendor_id": "V2", **filters})
        both = everyone.merge(others, on="period_start", suffixes=("", "_others")).dropna(subset=["n", "n_others"])
        for row in exact_small(truth).itertuples():
            pair = both[both["period_start"] == row.period_start]
            if pair.empty:
                continue
            pair = pair.iloc[0]
            assert_not_given_back(subtracted(pair, "_others"), pd.Series(row._asdict()))
            checked += 1
        if checked >= 20:
            break
    assert checked, "the demo should hold a small V2 group that both answers show"


def test_every_race_but_one_does_not_give_the_missing_race_back(demo_warehouse):
    """The issue's second attack: `vendors` at one school, once for all races and once for all but one."""
    choices = run(demo_warehouse, "choices", ANALYST)
    races = list(choices.loc[choices["dimension"] == "race_ethnicity", "value"])
    schools = list(choices.loc[choices["dimension"] == "school_id", "value"])
    metric = "tutoring_attendance_rate"
    checked = 0
    for school in schools:
        for race in races:
            truth = run(demo_warehouse, "vendors", ANALYST, {"metric": metric, "school_id": school, "race_ethnicity": race})
            truth = exact_small(truth)
            if truth.empty:
                continue
            rest = ",".join(r for r in races if r != race)
            whole = run(demo_warehouse, "vendors", FACILITATOR, {"metric": metric, "school_id": school})
            part = run(demo_warehouse, "vendors", FACILITATOR, {"metric": metric, "school_id": school, "race_ethnicity": rest})
            both = whole.merge(part, on="vendor_id", suffixes=("", "_part")).dropna(subset=["n", "n_part"])
            for row in truth.itertuples():
                pair = both[both["vendor_id"] == row.vendor_id]
                if pair.empty:
                    continue
                pair = pair.iloc[0]
                assert_not_given_back(subtracted(pair, "_part"), pd.Series(row._asdict()))
                checked += 1
        if checked >= 20:
            break
    assert checked, "the demo should hold a small race group at some school that both answers show"


DIMENSIONS = ("school_id", "grade", "race_ethnicity", "english_learner", "special_education", "baseline_band", "vendor_id")
METRICS = ("tutoring_attendance_rate", "dosage_met", "dosage_minutes", "school_attendance_rate", "sel_identity")


@pytest.mark.parametrize("scope", [FACILITATOR, Scope("admin"), Scope("vendor", "V3")], ids=str)
def test_two_filter_sets_differing_in_one_value_never_subtract_to_a_small_group(demo_warehouse, scope):
    """A randomized search, seeded so a failure repeats: a base filter on one dimension, a second
    dimension asked once with a set of values and once with one value more; the difference is
    the group of that one value, and wherever it is small it must not come back."""
    rng = np.random.default_rng(20261203)
    choices = run(demo_warehouse, "choices", scope)
    values = {d: list(choices.loc[choices["dimension"] == d, "value"]) for d in DIMENSIONS}
    checked = 0
    # Whether the first shown period of each group gave its count back exactly. One a group:
    # a group's periods hold the same students, so share a cell key and the same noise.
    exact_counts: list[bool] = []
    for _ in range(400):
        metric = str(rng.choice(METRICS))
        grain = str(rng.choice(["week", "month", "window"]))
        base_dimension, dimension = rng.choice([d for d in DIMENSIONS if len(values[d]) > 1], size=2, replace=False)
        base = {base_dimension: str(rng.choice(values[base_dimension]))}
        pool = values[dimension]
        chosen = list(rng.choice(pool, size=int(rng.integers(1, len(pool))), replace=False))
        extra = str(rng.choice([v for v in pool if v not in chosen] or pool))
        if extra in chosen:
            continue
        params = {"metric": metric, "grain": grain, **base}
        truth = exact_small(run(demo_warehouse, "series", ANALYST, {
            **params, dimension: extra, **({"vendor_id": scope.vendor_id} if scope.vendor_id else {}),
        }))
        if truth.empty:
            continue
        wider = run(demo_warehouse, "series", scope, {**params, dimension: ",".join(map(str, [*chosen, extra]))})
        narrower = run(demo_warehouse, "series", scope, {**params, dimension: ",".join(map(str, chosen))})
        both = wider.merge(narrower, on="period_start", suffixes=("", "_narrower")).dropna(subset=["n", "n_narrower"])
        both = both.merge(truth, on="period_start", suffixes=("", "_truth"))
        exact_wider = run(demo_warehouse, "series", ANALYST, {
            **params, dimension: ",".join(map(str, [*chosen, extra])),
            **({"vendor_id": scope.vendor_id} if scope.vendor_id else {}),
        }).set_index("period_start")["numerator"]
        for i, (_, row) in enumerate(both.iterrows()):
            difference = subtracted(row, "_narrower")
            truth_row = pd.Series({c: float(row[f"{c}_truth"]) for c in ("n", *SUMS)})
            assert_not_given_back(difference, truth_row, shown_none=exact_wider.get(row["period_start"]) == 0)
            if i == 0:
                exact_counts.append(difference["n"] == truth_row["n"])
            checked += 1
        if checked >= 60 and len(exact_counts) >= 15:
            break
    assert checked >= 10, f"only {checked} small groups reached; the search should find more"
    # Counts move by whole students, so a difference of counts is sometimes right by chance
    # (two draws of the noise alike: 0.26), but far from always, and nothing tells the reader
    # which time it is. A group's rows are one draw, so the share is of groups, not rows: of
    # rows, one group's weeks once made it 40 of 64.
    assert len(exact_counts) >= 10, f"only {len(exact_counts)} groups reached"
    assert sum(exact_counts) < 0.6 * len(exact_counts), f"{sum(exact_counts)} of {len(exact_counts)} groups exact"


def small_grade_district(warehouse, tmp_path):
    """One vendor at one school: 40 students in grade 4 and 4 in grade 5, joining over the first
    weeks and tutored for 12, each week a different few of them missing."""
    weeks = pd.date_range("2025-09-15", periods=12, freq="W-MON").date
    rows = [(f"S{i:03d}", 4 if i < 40 else 5) for i in range(44)]
    files = {
        "schools": "school_id,name\nE01,Elm Elementary\n",
        "vendors": "vendor_id,name\nV1,Acme Tutoring\n",
        "roster": "student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,"
        "special_education,baseline_band,enrolled_on\n"
        + "".join(f"{s},V1,E01,{g},White,Female,0,0,0,near,{weeks[i % 4]}\n" for i, (s, g) in enumerate(rows)),
        "sessions": "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes\n"
        + "".join(
            f"{s},{day},T1,3,30,{30 if (i + week) % 5 else 0}\n"
            for week, day in enumerate(weeks)
            for i, (s, _) in enumerate(rows)
            if i % 4 <= week and (i * 7 + week) % 3  # not every student has a session every week
        ),
    }
    for kind, text in files.items():
        (tmp_path / f"{kind}.csv").write_text(text)
        ingest(warehouse, [Submission(tmp_path / f"{kind}.csv", kind, "V1" if kind == "sessions" else None)])
    return warehouse


def test_coverage_counts_do_not_subtract_to_a_small_group(warehouse, tmp_path):
    """Coverage of every grade against every grade but one, where that grade has 4 students at
    most. Counts move by whole students, so a difference is right now and then by chance (about
    one time in four), but not mostly, and the reader cannot tell when."""
    district = small_grade_district(warehouse, tmp_path)
    truth = run(district, "coverage", ANALYST, {"grade": "5"})
    assert (truth["enrolled"] <= 4).all() and (truth["with_data"] < MIN_CELL).all()
    assert run(district, "coverage", FACILITATOR, {"grade": "5"})[["enrolled", "with_data"]].isna().all().all()
    whole = run(district, "coverage", FACILITATOR, {})
    part = run(district, "coverage", FACILITATOR, {"grade": "4"})
    both = whole.merge(part, on=["metric_id", "period_start"], suffixes=("", "_part")).merge(
        truth, on=["metric_id", "period_start"], suffixes=("", "_truth")
    )
    # A week's students with data are the same set for every session metric: one draw a week.
    both = both.drop_duplicates("period_start").dropna(subset=["with_data", "with_data_part"])
    assert len(both) >= 10
    differences = both["with_data"].astype(float) - both["with_data_part"].astype(float)
    assert (differences == both["with_data_truth"]).mean() <= 0.75
    exact = run(district, "coverage", ANALYST, {})
    assert ((whole["with_data"] - exact["with_data"]).abs() <= 2).all()
    assert (whole["with_data"] != exact["with_data"]).any()


def test_the_same_students_get_the_same_numbers_whichever_way_they_are_asked_for(demo_warehouse):
    """Asking again, or through another view, gives nothing new: a vendor's own series is the
    facilitator's series filtered to that vendor, to the last digit."""
    params = {"metric": "tutoring_attendance_rate", "grain": "week"}
    mine = run(demo_warehouse, "series", Scope("vendor", "V4"), params)
    theirs = run(demo_warehouse, "series", FACILITATOR, {**params, "vendor_id": "V4"})
    pd.testing.assert_frame_equal(mine, theirs)
    pd.testing.assert_frame_equal(mine, run(demo_warehouse, "series", Scope("vendor", "V4"), params))
    by_vendor = run(demo_warehouse, "vendors", FACILITATOR, {"metric": "dosage_met"}).set_index("vendor_id")
    one = run(demo_warehouse, "breakdown", FACILITATOR, {"metric": "dosage_met", "by": "vendor_id", "vendor_id": "V4"})
    assert one.set_index("vendor_id").loc["V4", "value"] == by_vendor.loc["V4", "value"]


def test_analysts_keep_exact_numbers_and_noise_is_small_where_groups_are_large(demo_warehouse):
    params = {"metric": "tutoring_attendance_rate", "grain": "week"}
    exact = run(demo_warehouse, "series", ANALYST, params)
    with demo_warehouse.cursor() as cur:
        raw = cur.execute(
            "select sum(value) / sum(denominator) as value, count(*) as n from facts"
            " where metric_id = 'tutoring_attendance_rate' group by period_start order by period_start"
        ).df()
    np.testing.assert_allclose(exact["value"], raw["value"])
    assert (exact["n"].to_numpy() == raw["n"].to_numpy()).all()
    noisy = run(demo_warehouse, "series", FACILITATOR, params)
    assert (noisy["value"] != exact["value"]).mean() > 0.9
    assert (noisy["value"] - exact["value"]).abs().max() < 0.01  # a district week holds thousands of sessions
    assert ((noisy["n"] - exact["n"]).abs() <= 2).all()


def test_noise_is_a_fixed_function_of_the_cell_key():
    keys = np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64)
    draws = privacy.uniform(keys, "n")
    assert ((draws >= 0) & (draws < 1)).all() and len(set(draws)) == 4
    np.testing.assert_array_equal(draws, privacy.uniform(keys.copy(), "n"))
    assert not np.array_equal(draws, privacy.uniform(keys, "numerator"))
    # Over many keys the count noise follows its table.
    many = privacy.count_noise(np.arange(200_000, dtype=np.uint64) * np.uint64(0x9E3779B1), "n")
    shares = [np.mean(many == step) for step in privacy.COUNT_NOISE]
    np.testing.assert_allclose(shares, privacy.COUNT_NOISE_CHANCE, atol=0.01)
