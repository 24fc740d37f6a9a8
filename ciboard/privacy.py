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

Suppression works one table at a time, and filters let anyone ask for many overlapping tables:
a series for all vendors minus the benchmark of all but one, or a table for every race minus one
for all races but one, would give a hidden cell back exactly. So every count and sum a hiding
scope receives also carries a little noise, by the cell-key method of the table builders of the
Australian Bureau of Statistics and the Office for National Statistics (Fraser and Wooton, "A
proposed method for confidentialising tabular output to protect against differencing", 2005;
ONS, "Cell key perturbation", Census 2021): every student has a fixed random record key, a
cell's key combines the keys of its students, and the noise is drawn from the cell key. The same
students therefore always get the same noise, on every page and in every export, so asking again
reveals nothing; two different sets of students get unrelated noise, so a difference of two
cells is the hidden cell plus noise. Counts move by a whole student or two; numerators,
denominators and spreads by a continuous amount of up to `SPREAD` students' worth, so no
difference of two answers equals a hidden cell's sums, and no rate or mean is a ratio of exact
counts that could be read back from its digits.

What the noise cannot stop is averaging: the same small group reached by many different pairs of
filter sets gives many independent differences, whose average tends to the truth. It takes
dozens of deliberate queries. Analysts keep exact numbers.
"""

import hashlib
import hmac

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from ciboard.access import Scope

MEASURES = ("value", "numerator", "denominator", "sd")
# Noise on a count, in whole students, with their chances: a published count is the true one two
# times in five, and never more than two away.
COUNT_NOISE = np.array([-2, -1, 0, 1, 2])
COUNT_NOISE_CHANCE = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
# Noise on a sum, in students' worth (what one student of the cell adds): uniform in +-SPREAD.
SPREAD = 1.5
# Different draws from one cell key: splitmix64 of the key xor a constant per use.
_SALTS = {"n": 0x6E, "numerator": 0x6E756D, "denominator": 0x64656E, "sd": 0x7364}


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
        # Coded once for the frame, not per table: a signal set suppresses some 150 panels of
        # 30 periods each, and slicing the frame per period was most of the time it took.
        codes = [pd.factorize(frame[column], use_na_sentinel=False)[0] for column in by] if len(by) > 1 else []
        for rows in tables:
            if hidden[rows].any():  # a table with no small cell needs no complement
                hidden[rows] = protect(n[rows], _lines(len(rows), [column[rows] for column in codes]), min_cell)
    frame["n"] = frame["n"].astype("Int64")
    measures = [c for c in MEASURES if c in frame.columns]
    frame[measures] = frame[measures].astype("float64")
    frame["small_cell"] = hidden
    frame["suppressed"] = hidden & hide
    return blank(frame, frame["suppressed"].to_numpy())


def perturb(frame: pd.DataFrame, aggregation: str, *, min_cell: int) -> pd.DataFrame:
    """Adds the cell-key noise to every shown cell of a series, breakdown, panel or benchmark
    (a frame with n, numerator, denominator, sd, value and cell_key), for a scope that hides.

    `value` is worked out again from the noisy sums for a rate, mean or proportion; a median is a
    value of one student in the middle, not a sum, and stays. A shown count stays at `min_cell`
    or more, as a shown count always is. Hidden cells stay hidden.
    """
    frame = frame.copy()
    keys = frame["cell_key"]
    shown = frame["n"].notna().to_numpy() & keys.notna().to_numpy()
    if not shown.any():
        return frame
    key = keys[shown].to_numpy(dtype=np.uint64)
    n = frame.loc[shown, "n"].to_numpy(dtype=float)
    numerator = frame.loc[shown, "numerator"].to_numpy(dtype=float)
    denominator = frame.loc[shown, "denominator"].to_numpy(dtype=float)
    # What one student adds to the cell: to a count of successes or sessions, as many as they
    # could have had (the denominator's share); to a sum of scores, the mean score.
    counted = aggregation in ("rate", "proportion")
    numerator_step = denominator / n if counted else np.abs(numerator) / n
    numerator = numerator + _spread(key, "numerator") * numerator_step
    denominator = np.maximum(denominator + _spread(key, "denominator") * denominator / n, 1e-9)
    if counted:  # a share stays a share
        numerator = np.clip(numerator, 0.0, denominator)
    frame.loc[shown, "numerator"] = numerator
    frame.loc[shown, "denominator"] = denominator
    frame.loc[shown, "sd"] = frame.loc[shown, "sd"].to_numpy(dtype=float) * (1 + _spread(key, "sd") / n)
    if aggregation != "median":
        frame.loc[shown, "value"] = numerator / denominator
    frame["n"] = perturb_counts(frame["n"], keys, floor=min_cell)
    return frame


def perturb_counts(counts: pd.Series, keys: pd.Series, *, floor: int = 0) -> pd.Series:
    """A count column with the cell-key noise of whole students, never below `floor`."""
    known = counts.notna().to_numpy() & keys.notna().to_numpy()
    noisy = counts.astype("Int64").copy()
    noise = count_noise(keys[known].to_numpy(dtype=np.uint64), "n")
    noisy[known] = np.maximum(counts[known].to_numpy(dtype=float) + noise, floor).astype("int64")
    return noisy


def count_noise(keys: np.ndarray, salt: str) -> np.ndarray:
    """Whole-student noise per cell key, drawn from COUNT_NOISE with COUNT_NOISE_CHANCE."""
    cut = np.cumsum(COUNT_NOISE_CHANCE)[:-1]
    return COUNT_NOISE[np.searchsorted(cut, uniform(keys, salt), side="right")]


def _spread(keys: np.ndarray, salt: str) -> np.ndarray:
    return SPREAD * (2 * uniform(keys, salt) - 1)


def uniform(keys: np.ndarray, salt: str) -> np.ndarray:
    """A number in [0, 1) per cell key and use, the same every time (splitmix64's finaliser)."""
    x = keys.astype(np.uint64) ^ np.uint64(_SALTS[salt])
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def blank(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Hides the count and measures of some rows (in place, and returns the frame)."""
    if not rows.any():
        return frame  # an assignment through .loc costs milliseconds even to no row
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


def _lines(cells: int, codes: list[np.ndarray]) -> np.ndarray:
    """The totals a reader may know, as a matrix of lines x cells: the grand total, and with two
    dimensions (`codes`, each dimension's group of each cell) each row's and each column's
    total, in the order the table's cells first name them."""
    lines = [np.ones(cells, dtype=bool)]
    for column in codes:
        lines.extend(column == code for code in pd.unique(column))
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


# An evaluator's student ids. Keyed by the district's `pseudonyms` secret (sql/app/011), which
# never leaves the server, and by the evaluator's account: the same student reads the same to
# one evaluator on every page and in every file, differently to each other evaluator, and no
# table of guessed ids can be hashed back without the secret.
PSEUDONYM_DIGITS = 16  # 64 bits: no two of a district's students share one in practice


def pseudonym_key(db) -> bytes:
    """The district's secret for pseudonyms, from the app database (ciboard.appdb.AppDB)."""
    with db.connect() as con:
        row = con.execute("select value from secrets where name = 'pseudonyms'").fetchone()
    if row is None:
        raise RuntimeError("the app database has no pseudonym secret; run its migrations")
    return bytes.fromhex(row["value"])


def pseudonym(key: bytes, evaluator: str, student: object) -> str:
    """HMAC-SHA256 of (evaluator account, student id) under the district's key, shortened."""
    message = f"{evaluator}\x1f{student}".encode()
    return "P" + hmac.new(key, message, hashlib.sha256).hexdigest()[:PSEUDONYM_DIGITS]


STUDENT_COLUMNS = ("student_key", "student_id")  # the columns that name a student


def pseudonymised(frame: pd.DataFrame, key: bytes, evaluator: str) -> pd.DataFrame:
    """The frame (attrs kept) with every student column an evaluator's pseudonyms."""
    columns = [c for c in STUDENT_COLUMNS if c in frame.columns]
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].map(lambda s: None if pd.isna(s) else pseudonym(key, evaluator, s))
    return frame


# What a scope that hides is given of the views that are not cells.

# A vendor sees the benchmark's values only: two pools' counts and sums, under two filters,
# would subtract to a part that one other vendor alone fills.
PEERS_FOR_VENDORS = ("period_start", "value", "suppressed")


def benchmark_pool(frame: pd.DataFrame, scope: Scope, min_cell: int) -> pd.DataFrame:
    """Hides, for every scope, the periods fewer than two other vendors of `min_cell` students
    stand behind: there the pool would be one vendor's own numbers."""
    frame = frame.copy()
    frame["n"] = frame["n"].astype("Int64")
    frame["suppressed"] = ((frame["vendors"] < 2) | (frame["n"] < min_cell)).to_numpy(dtype=bool)
    frame = blank(frame, frame["suppressed"].to_numpy())
    if scope.role == "vendor":
        frame = frame[list(PEERS_FOR_VENDORS)]
    return frame


def noisy_comparison(
    result: pd.DataFrame, units: pd.DataFrame, reference: pd.DataFrame, strata: list[str], min_cell: int
) -> pd.DataFrame:
    """The comparison with each side's cell-key noise: the observed side keyed on the vendor's
    matched students, the expected side on the not-tutored students of the strata it was matched
    in; the difference and its interval move with them."""
    matched = units.merge(reference[strata].drop_duplicates(), on=strata)
    behind = reference.drop(columns="vendor_id").merge(units[["vendor_id", *strata]].drop_duplicates(), on=strata)

    def keys(cells: pd.DataFrame) -> pd.Series:
        return cells.groupby("vendor_id")["cell_key"].agg(
            lambda k: np.bitwise_xor.reduce(k.to_numpy(dtype=np.uint64))
        )

    result = result.copy()
    for side, count, cells in (("observed", "n", matched), ("expected", "reference_n", behind)):
        pooled = pd.DataFrame({
            "n": result[count].to_numpy(dtype=float), "numerator": (result[side] * result[count]).to_numpy(dtype=float),
            "denominator": result[count].to_numpy(dtype=float), "sd": 0.0, "value": result[side].to_numpy(dtype=float),
            "cell_key": result["vendor_id"].map(keys(cells)).to_numpy(),
        })
        noisy = perturb(pooled, "mean", min_cell=min_cell)
        shift = noisy["value"].to_numpy(dtype=float) - result[side].to_numpy(dtype=float)
        result[side] = noisy["value"].to_numpy(dtype=float)
        result[count] = noisy["n"].to_numpy(dtype=float)
        sign = 1 if side == "observed" else -1
        for column in ("difference", "diff_low", "diff_high"):
            result[column] = result[column] + sign * shift
    return result


def coverage(frame: pd.DataFrame, hide: bool, min_cell: int) -> pd.DataFrame:
    """For a scope that hides: weeks with fewer than `min_cell` students enrolled are hidden,
    and both counts carry cell-key noise, so no two filters subtract to a small group. The
    same students get the same noise, so a week every enrolled student has data stays whole."""
    keys = frame[["enrolled_key", "with_data_key"]]
    frame = frame.drop(columns=keys.columns)
    if not hide:
        return frame
    small = (frame["enrolled"] < min_cell).to_numpy()
    enrolled = perturb_counts(frame["enrolled"], keys["enrolled_key"], floor=min_cell)
    with_data = perturb_counts(frame["with_data"], keys["with_data_key"])
    frame["enrolled"] = enrolled
    frame["with_data"] = with_data.where(with_data <= enrolled, enrolled)
    frame["coverage"] = frame["with_data"].astype(float) / frame["enrolled"].astype(float)
    frame["suppressed"] = small
    frame.loc[small, ["enrolled", "with_data"]] = pd.NA
    frame.loc[small, "coverage"] = np.nan
    return frame


def follow_up_counts(frame: pd.DataFrame, hide: bool, min_cell: int) -> pd.DataFrame:
    """A count of a few students on a list could point at them where a slice is small: from a
    scope that may not see the students, hidden as a small cell is, and the others carry the
    cell-key noise every count it reads carries, so two filters' counts do not subtract to a
    hidden one. Whoever follows the students up reads their lists whole, and the exact count."""
    frame = frame.copy()
    frame["students"] = frame["students"].astype("Int64")
    small = (frame["students"] < min_cell).to_numpy(dtype=bool) & hide
    if hide:
        frame["students"] = perturb_counts(frame["students"], frame["cell_key"], floor=min_cell)
    frame["suppressed"] = small
    frame.loc[small, "students"] = pd.NA
    return frame


def session_check_counts(frame: pd.DataFrame, hide: bool, min_cell: int) -> pd.DataFrame:
    """Flags over a few students could point at them: every count of a vendor and check over
    fewer than `min_cell` students is hidden from a scope that may not see the sessions."""
    frame = frame.copy()
    counts = ["sessions", "students", "pending", "accepted", "rejected", "not_counted"]
    frame[counts] = frame[counts].astype("Int64")
    frame["suppressed"] = (frame["students"] < min_cell).to_numpy(dtype=bool) & hide
    frame.loc[frame["suppressed"], counts] = pd.NA
    return frame
