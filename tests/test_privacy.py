"""Small cells: hidden for every scope but the analyst's, with enough other cells that none comes back.

The rule is complementary suppression as US federal statistical agencies describe it in the
Federal Committee on Statistical Methodology's Statistical Policy Working Paper 22 (Report on
Statistical Disclosure Limitation Methodology, 1994, revised 2005): a cell under the threshold
is withheld (primary suppression), and further cells are withheld so that it cannot be worked
out by subtraction from the totals (complementary suppression); the result is then audited for
what the shown cells and totals still pin down. The tests check that audit independently: with
numpy's matrix rank for what subtraction gives, and with linear programming for what the
knowledge that every hidden cell holds at least one student adds.
"""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from ciboard.access import Scope
from ciboard.privacy import MEASURES, for_export, hidden_text, suppress
from ciboard.queries import run

MIN_CELL = 10


def cells(counts: dict, numerators: dict | None = None) -> pd.DataFrame:
    """A breakdown (keys are groups) or a two-way table (keys are (row, col)) of student counts."""
    rows = []
    for key, n in counts.items():
        numerator = (numerators or {}).get(key, n // 2)
        row, col = key if isinstance(key, tuple) else (key, "")
        rows.append({"row": row, "col": col, "value": numerator / n, "n": n, "numerator": float(numerator),
                     "denominator": float(n), "sd": 0.5})
    return pd.DataFrame(rows)


def hidden_keys(frame: pd.DataFrame) -> set:
    shown = frame[frame["suppressed"]]
    return set(shown["row"]) if (frame["col"] == "").all() else set(zip(shown["row"], shown["col"]))


def known_totals(frame: pd.DataFrame, by: tuple[str, ...]) -> np.ndarray:
    """The totals a reader may know, lines x cells: the grand total, and each row's and column's
    in a two-way table; a total counts if it holds two cells or more and at least MIN_CELL
    students (a smaller one is itself hidden; a one-cell line's total is that cell)."""
    lines = [np.ones(len(frame), dtype=bool)]
    if len(by) == 2:
        for column in by:
            lines.extend((frame[column] == value).to_numpy() for value in frame[column].unique())
    lines = np.array(lines)
    n = frame["n"].to_numpy(dtype=float)
    return lines[(lines.sum(axis=1) >= 2) & (lines @ n >= MIN_CELL)].astype(float)


def determined_by_subtraction(lines: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Hidden cell i is fixed by the shown cells and the totals exactly when dropping its
    column from the constraint matrix (restricted to hidden cells) lowers the rank."""
    a = lines[:, hidden]
    rank = np.linalg.matrix_rank(a) if a.size else 0
    found = np.zeros(len(hidden), dtype=bool)
    for position, cell in enumerate(np.flatnonzero(hidden)):
        rest = np.delete(a, position, axis=1)
        found[cell] = rank == (np.linalg.matrix_rank(rest) if rest.size else 0) + 1
    return found


def determined_with_bounds(lines: np.ndarray, hidden: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Hidden cells whose count is the same in every solution with at least one student a cell."""
    a = lines[:, hidden]
    keep = a.any(axis=1)
    a = a[keep]
    found = np.zeros(len(hidden), dtype=bool)
    if not len(a):
        return found
    b = a @ n[hidden]
    for position, cell in enumerate(np.flatnonzero(hidden)):
        c = np.zeros(a.shape[1])
        c[position] = 1.0
        low = linprog(c, A_eq=a, b_eq=b, bounds=(1, None), method="highs").fun
        high = -linprog(-c, A_eq=a, b_eq=b, bounds=(1, None), method="highs").fun
        found[cell] = high - low < 0.5
    return found


def test_a_lone_small_cell_takes_the_smallest_other_cell_with_it():
    frame = suppress(cells({"a": 3, "b": 25, "c": 40, "d": 60}), min_cell=MIN_CELL, hide=True, by=("row",))
    assert hidden_keys(frame) == {"a", "b"}
    # Otherwise the total minus b, c and d would give a back.
    assert frame.loc[frame["suppressed"], ["value", "numerator", "denominator", "sd"]].isna().all().all()
    assert frame.loc[frame["suppressed"], "n"].isna().all() and frame["n"].dtype == "Int64"
    assert frame.loc[~frame["suppressed"], "n"].tolist() == [40, 60]


def test_small_cells_under_the_minimum_together_take_a_third():
    frame = suppress(cells({"a": 3, "b": 4, "c": 25, "d": 40, "e": 60}), min_cell=MIN_CELL, hide=True, by=("row",))
    assert hidden_keys(frame) == {"a", "b", "c"}  # a and b alone would give back their 7 together
    enough = suppress(cells({"a": 4, "b": 7, "c": 25, "d": 40}), min_cell=MIN_CELL, hide=True, by=("row",))
    assert hidden_keys(enough) == {"a", "b"}


def test_every_hidden_cell_is_flagged_alike_so_labels_cannot_pin_it():
    # 11 students split into "under 10" and "10 or more" could only be 1 and 10.
    frame = suppress(cells({"a": 1, "b": 10}), min_cell=MIN_CELL, hide=True, by=("row",))
    assert frame["suppressed"].all() and frame["small_cell"].all()
    analyst = suppress(cells({"a": 1, "b": 10}), min_cell=MIN_CELL, hide=False, by=("row",))
    assert analyst["small_cell"].tolist() == [True, False] and not analyst["suppressed"].any()


def test_a_bridge_left_by_the_row_and_column_rules_is_closed():
    # Two blocks of small cells joined by one small cell, (r2, c3): every row and column holds two
    # hidden cells and at least 10 students, yet the totals of r1 and r2 less those of c1 and c2
    # give (r2, c3) back.
    counts = {
        ("r1", "c1"): 6, ("r1", "c2"): 6, ("r1", "c3"): 40, ("r1", "c4"): 40,
        ("r2", "c1"): 6, ("r2", "c2"): 6, ("r2", "c3"): 6, ("r2", "c4"): 35,
        ("r3", "c1"): 40, ("r3", "c2"): 40, ("r3", "c3"): 6, ("r3", "c4"): 6,
        ("r4", "c1"): 40, ("r4", "c2"): 40, ("r4", "c3"): 6, ("r4", "c4"): 6,
    }
    table = cells(counts)
    small = (table["n"] < MIN_CELL).to_numpy()
    lines = known_totals(table, ("row", "col"))
    assert determined_by_subtraction(lines, small).tolist() == [k == ("r2", "c3") for k in counts]

    frame = suppress(table, min_cell=MIN_CELL, hide=True, by=("row", "col"))
    assert hidden_keys(frame) == {k for k, n in counts.items() if n < MIN_CELL} | {("r2", "c4")}
    assert not determined_by_subtraction(lines, frame["suppressed"].to_numpy()).any()


def test_cells_of_one_student_are_audited_with_that_bound():
    # Six small cells in a cycle, two to a row and a column, 10 students or more in each: by
    # subtraction each is free, but moving along the cycle either way takes a 1 to 0.
    counts = {
        ("r1", "c1"): 9, ("r1", "c2"): 1, ("r1", "c3"): 50,
        ("r2", "c1"): 50, ("r2", "c2"): 9, ("r2", "c3"): 9,
        ("r3", "c1"): 9, ("r3", "c2"): 50, ("r3", "c3"): 1,
    }
    table = cells(counts)
    n = table["n"].to_numpy(dtype=float)
    small = n < MIN_CELL
    lines = known_totals(table, ("row", "col"))
    assert not determined_by_subtraction(lines, small).any()
    assert (determined_with_bounds(lines, small, n) == small).all()
    frame = suppress(table, min_cell=MIN_CELL, hide=True, by=("row", "col"))
    hidden = frame["suppressed"].to_numpy()
    assert hidden.sum() == small.sum() + 1
    assert not determined_with_bounds(lines, hidden, n).any()


def test_a_series_hides_only_its_small_periods_and_a_panel_protects_each_period():
    series = cells({"w1": 3, "w2": 40, "w3": 50})
    assert hidden_keys(suppress(series, min_cell=MIN_CELL, hide=True)) == {"w1"}
    panel = pd.concat([cells({"a": 3, "b": 25, "c": 40}).assign(period="p1"),
                       cells({"a": 30, "b": 25, "c": 40}).assign(period="p2")])
    frame = suppress(panel.reset_index(drop=True), min_cell=MIN_CELL, hide=True, by=("row",), per=("period",))
    assert frame["suppressed"].tolist() == [True, True, False, False, False, False]


def test_the_export_says_why_a_cell_is_hidden_and_keeps_the_rest():
    frame = suppress(cells({"a": 3, "b": 25, "c": 40}), min_cell=MIN_CELL, hide=True, by=("row",))
    exported = for_export(frame, MIN_CELL)
    assert list(exported.columns) == list(frame.columns) and len(exported) == len(frame)
    text = hidden_text(MIN_CELL)
    assert "fewer than 10" in text
    assert (exported.loc[exported["suppressed"], ["n", *MEASURES]] == text).all().all()
    assert exported.loc[~exported["suppressed"], "n"].tolist() == [40]
    assert exported.loc[~exported["suppressed"], "value"].tolist() == frame.loc[~frame["suppressed"], "value"].tolist()
    assert "fewer than 10" in exported.to_csv(index=False)
    analyst = suppress(cells({"a": 3, "b": 25}), min_cell=MIN_CELL, hide=False, by=("row",))
    pd.testing.assert_frame_equal(for_export(analyst, MIN_CELL), analyst)


@st.composite
def tables(draw):
    """A breakdown or a two-way table of counts 0..60 (0: no such cell) with numerators to match."""
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 5))
    full = draw(st.booleans())
    counts = {}
    for r in range(rows):
        for c in range(cols):
            n = draw(st.integers(1 if full else 0, 60))
            if n:
                counts[(f"r{r}", f"c{c}")] = n
    if not counts:
        counts[("r0", "c0")] = draw(st.integers(1, 60))
    numerators = {key: draw(st.integers(0, n)) for key, n in counts.items()}
    return cells(counts, numerators), full


@settings(max_examples=200, deadline=None)
@given(tables(), st.booleans())
def test_no_hidden_count_or_numerator_can_be_worked_out(drawn, one_way):
    """Given every shown cell, every total and each hidden cell's at least one student, no hidden
    cell's count or numerator is fixed, unless the totals fix it with every cell hidden."""
    table, full = drawn
    if one_way:
        table = table.assign(col="")
        table = table.groupby("row", as_index=False).agg(
            col=("col", "first"), n=("n", "sum"), numerator=("numerator", "sum"), denominator=("denominator", "sum"),
            sd=("sd", "first"))
        table["value"] = table["numerator"] / table["n"]
    by = ("row",) if one_way else ("row", "col")
    n = table["n"].to_numpy(dtype=float)

    analyst = suppress(table, min_cell=MIN_CELL, hide=False, by=by)
    assert not analyst["suppressed"].any()
    assert analyst["n"].tolist() == table["n"].tolist()
    assert analyst["numerator"].tolist() == table["numerator"].tolist()
    assert (analyst["small_cell"] == (table["n"] < MIN_CELL)).all()

    frame = suppress(table, min_cell=MIN_CELL, hide=True, by=by)
    hidden = frame["suppressed"].to_numpy()
    assert (hidden >= (n < MIN_CELL)).all()
    assert frame.loc[hidden, "n"].isna().all() and frame.loc[hidden, "numerator"].isna().all()
    assert frame.loc[~hidden, "numerator"].tolist() == table.loc[~hidden, "numerator"].tolist()

    # Counts and numerators add up along the same lines, so the same matrix decides both.
    # Cells the totals give away with every cell hidden are beyond help; in a full table of two
    # rows and two columns or more, subtraction alone gives none away.
    lines = known_totals(table, by)
    everything = np.ones(len(table), dtype=bool)
    bounded_away = determined_with_bounds(lines, everything, n)
    if full:
        assert not determined_by_subtraction(lines, everything).any()
    assert not (determined_by_subtraction(lines, hidden) & ~bounded_away).any()
    assert not (determined_with_bounds(lines, hidden, n) & ~bounded_away).any()
    # What the hidden cells of a line hold together is no small aggregate either.
    for line in lines.astype(bool):
        together = n[line & hidden & ~bounded_away].sum()
        assert together == 0 or together >= MIN_CELL or (line <= hidden | bounded_away).all()


def test_through_the_query_layer_no_small_group_comes_back(demo_warehouse):
    facilitator = Scope("facilitator")
    asked = {"metric": "proficient", "by": "race_ethnicity", "school_id": "M01"}
    analyst = run(demo_warehouse, "breakdown", Scope("analyst"), asked)
    shown = run(demo_warehouse, "breakdown", facilitator, asked)
    small = (analyst["n"] < MIN_CELL).to_numpy()
    hidden = shown["suppressed"].to_numpy()
    assert small.sum() == 2 and hidden.sum() == 3  # the 2 small groups hold 6 students together
    assert (shown["small_cell"] == shown["suppressed"]).all()
    truth = analyst.rename(columns={"race_ethnicity": "row"}).assign(col="")
    assert not determined_by_subtraction(known_totals(truth, ("row",)), hidden).any()
    assert shown.loc[hidden, ["n", "value", "numerator"]].isna().all().all()

    exported = for_export(shown, demo_warehouse.settings.min_cell_size)
    assert exported.loc[hidden, "value"].eq(hidden_text(10)).all()
    assert "fewer than 10" in exported.to_csv(index=False)

    # A two-way table: every row and column of it is protected, and the analyst sees it all.
    asked = {"metric": "proficient", "by": "school_id", "by2": "race_ethnicity", "grade": "3"}
    analyst = run(demo_warehouse, "breakdown", Scope("analyst"), asked)
    shown = run(demo_warehouse, "breakdown", facilitator, asked)
    truth = analyst.rename(columns={"school_id": "row", "race_ethnicity": "col"})
    hidden = shown["suppressed"].to_numpy()
    everything = np.ones(len(truth), dtype=bool)
    lines = known_totals(truth, ("row", "col"))
    assert (hidden >= (analyst["n"] < MIN_CELL).to_numpy()).all()
    assert not (determined_by_subtraction(lines, hidden) & ~determined_by_subtraction(lines, everything)).any()
    assert analyst["small_cell"].any() and not analyst["suppressed"].any() and analyst["value"].notna().all()

