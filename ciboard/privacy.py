"""Small cells: what a scope may see of an aggregate over few students, and what it could work out.

A cell (a row of a series, breakdown or panel) over fewer than `min_cell` students is small. An
analyst sees it, flagged `small_cell`. Every other scope gets it hidden: its measures and its
student count, because counts add up and a hidden count would come back from a total.

Hiding the small cells alone is not enough where cells add up to a total the reader can also
see: the total minus the shown cells gives a lone hidden cell back, and two hidden cells of 3 and
4 students give back their 7 together. So further cells are hidden (complementary suppression)
until, for every hidden cell, the shown cells and the totals leave more than one possible count.

For scopes that hide, every hidden cell is flagged `small_cell`, complements too. Telling them
apart would give a reader bounds to pin cells with: a total of 11 split into one cell "under 10"
and one "10 or more" can only be 1 and 10.

What this cannot stop: filters let anyone ask for many overlapping aggregates (a series for each
group, and one for all), and differences between them are not seen by the tables here.
"""

import numpy as np
import pandas as pd
from scipy.optimize import linprog

MEASURES = ("value", "numerator", "denominator", "sd")


def suppress(
    frame: pd.DataFrame,
    *,
    min_cell: int,
    hide: bool,
    by: tuple[str, ...] = (),
    per: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Flags the cells over fewer than `min_cell` students and, if `hide`, hides them and enough
    other cells that none can be worked out; `n` becomes a nullable integer either way.

    `by` names the dimensions whose groups add up to a total a reader can see: none for a series
    (each row is its own total), one for a breakdown, two for a table whose rows and columns
    add up. `per` names the columns that split the frame into such tables (a panel's periods).
    """
    frame = frame.copy()
    n = frame["n"].to_numpy(dtype=float)
    hidden = n < min_cell
    if hide and by and len(frame):
        tables = frame.groupby(list(per), sort=False, dropna=False).indices.values() if per else [np.arange(len(frame))]
        for rows in tables:
            hidden[rows] = protect(n[rows], _lines(frame.iloc[rows], by), min_cell)
    frame["n"] = frame["n"].astype("Int64")
    measures = [c for c in MEASURES if c in frame.columns]
    frame[measures] = frame[measures].astype("float64")
    frame["small_cell"] = hidden
    frame["suppressed"] = hidden & hide
    return blank(frame, frame["suppressed"].to_numpy())


def blank(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Hides the count and measures of some rows (in place, and returns the frame)."""
    measures = [c for c in MEASURES if c in frame.columns]
    frame.loc[rows, measures] = np.nan
    frame.loc[rows, "n"] = pd.NA
    return frame


def hidden_text(min_cell: int) -> str:
    return f"hidden: fewer than {min_cell} students, or would reveal such a group"


def for_export(frame: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """A copy for a download or an export: each hidden count and measure reads why it is hidden,
    where a blank could be taken for missing data. Shown cells keep their numbers; no row or
    column is dropped."""
    frame = frame.copy()
    rows = frame["suppressed"].fillna(False).to_numpy(dtype=bool) if "suppressed" in frame.columns else None
    if rows is None or not rows.any():
        return frame
    for column in [c for c in ("n", *MEASURES) if c in frame.columns]:
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = hidden_text(min_cell)
    return frame


def _lines(table: pd.DataFrame, by: tuple[str, ...]) -> np.ndarray:
    """The totals a reader may know, as a matrix of lines x cells: the grand total, and with two
    dimensions each row's and each column's total."""
    lines = [np.ones(len(table), dtype=bool)]
    if len(by) > 1:
        for column in by:
            codes, _ = pd.factorize(table[column], use_na_sentinel=False)
            lines.extend(codes == code for code in range(codes.max() + 1))
    return np.array(lines)


def protect(n: np.ndarray, lines: np.ndarray, min_cell: int) -> np.ndarray:
    """Which cells of one table to hide: those under `min_cell` students, then complements.

    A line's total counts as known when the line has two cells or more and at least `min_cell`
    students; a smaller total is itself hidden wherever it is shown, and a one-cell line's total
    is just that cell. Within a line, a lone hidden cell, or hidden cells holding fewer than
    `min_cell` students together, take the line's smallest shown cell as a complement. Then an
    audit finds any hidden cell the totals still pin down (in a two-way table, a hidden cell that
    no cycle of hidden cells passes through) and hides one more cell to break it, until none is.
    """
    hidden = n < min_cell
    lines = lines[(lines.sum(axis=1) >= 2) & (lines @ n >= min_cell)]
    if not hidden.any() or not len(lines):
        return hidden
    # Cells the totals pin even with every cell hidden (say, the one link between two blocks of
    # a sparse table): hiding more cannot help them, and they make no use as complements.
    pinned_anyway = exposed(n, np.ones_like(hidden), lines)
    while True:
        cell = _complement_for_a_line(n, hidden, pinned_anyway, lines, min_cell)
        if cell is None:
            cell = _complement_for_an_exposed_cell(n, hidden, pinned_anyway, lines)
        if cell is None:
            return hidden
        hidden[cell] = True


def _complement_for_a_line(n, hidden, pinned_anyway, lines, min_cell) -> int | None:
    for line in lines:
        held = line & hidden & ~pinned_anyway
        if held.any() and (held.sum() == 1 or n[held].sum() < min_cell):
            free = line & ~hidden & ~pinned_anyway
            if free.any():
                return _smallest(n, free)
    return None


def _complement_for_an_exposed_cell(n, hidden, pinned_anyway, lines) -> int | None:
    open_cells = np.flatnonzero(exposed(n, hidden, lines) & ~pinned_anyway)
    free = ~hidden & ~pinned_anyway
    if not len(open_cells) or not free.any():
        return None
    target = open_cells[0]
    near = free & lines[lines[:, target]].any(axis=0)
    for cell in np.flatnonzero(near)[np.argsort(n[near], kind="stable")]:
        trial = hidden.copy()
        trial[cell] = True
        if not exposed(n, trial, lines)[target]:
            return int(cell)
    # No single cell frees it: hide the nearest smallest and look again.
    return _smallest(n, near if near.any() else free)


def _smallest(n: np.ndarray, among: np.ndarray) -> int:
    cells = np.flatnonzero(among)
    return int(cells[np.argmin(n[cells])])


def exposed(n: np.ndarray, hidden: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The hidden cells whose count a reader can work out from the shown cells and the lines'
    totals, knowing that every hidden cell holds at least one student.

    Without that bound it is linear algebra: the hidden cells' counts solve A x = b (A is the
    lines restricted to the hidden cells), and cell i is fixed exactly when its unit vector lies
    in A's row space, i.e. the projection onto the row space keeps it. The bound can fix more,
    where hidden cells of one student can only stay at one; those are found by linear
    programming and added to A as equations.
    """
    cells = np.flatnonzero(hidden)
    found = np.zeros(len(n), dtype=bool)
    a = lines[:, cells].astype(float)
    a = a[a.any(axis=1)]
    if not len(cells) or not len(a):
        return found
    x = n[cells]
    if (x == 1).any():
        a = np.vstack([a, np.eye(len(cells))[_stuck_at_one(a, x)]])
    projection = np.einsum("il,li->i", np.linalg.pinv(a), a)
    found[cells] = np.isclose(projection, 1.0, atol=1e-8)
    return found


def _stuck_at_one(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Which hidden cells hold exactly one student in every solution of a y = a x with y >= 1.

    Each round maximises the sum of min(y_i - 1, 1) over the cells still suspected: any that
    rise above one can hold more; when none can, the rest are stuck.
    """
    k = len(x)
    suspects = x == 1
    while suspects.any():
        idx = np.flatnonzero(suspects)
        m = len(idx)
        # Variables: y (k) then z (m); z_j <= y_idx[j] - 1, 0 <= z <= 1, maximise sum z.
        bound = np.zeros((m, k + m))
        bound[np.arange(m), idx] = -1.0
        bound[np.arange(m), k + np.arange(m)] = 1.0
        result = linprog(
            np.concatenate([np.zeros(k), -np.ones(m)]),
            A_ub=bound,
            b_ub=-np.ones(m),
            A_eq=np.hstack([a, np.zeros((len(a), m))]),
            b_eq=a @ x,
            bounds=[(1, None)] * k + [(0, 1)] * m,
            method="highs",
        )
        rose = result.x[k:] > 1e-7
        if not rose.any():
            break
        suspects[idx[rose]] = False
    return suspects
