"""Ingest: raw submission files in, validated, turned into tidy facts, published whole or not at all.

A command may carry several files (the demo loads a year at once). They are checked in
order against the warehouse as the earlier files leave it, so a roster and the sessions of
its students can arrive together. If any file has a problem, nothing of the command lands:
the rejected files are logged with every problem found, and the facts stay exactly as they
were. A rejection writes no warehouse version: it goes to the warehouse's rejection log.

A command of one file (every upload from the dashboard) is checked in a workspace that reads
the published warehouse, before anything is copied or written: only a file that will land
copies the warehouse. A command of several files is checked in the copy, each file as the
earlier ones leave it, and a rejection discards the copy unpublished.

What a sender is told. A vendor's own file is told nothing about other vendors: a student who
is not the vendor's is "not on your roster", whether unknown or another vendor's, and a key
already loaded names only the vendor's own files. The district is told everything. The
rejection log keeps only what the file's vendor may read, since that vendor reads it.

A corrected re-submission replaces the earlier file of the same vendor, kind and period. If
that would remove rows, nothing lands until the sender confirms (`replace=True`); until then
ReplaceUnconfirmed carries, for each week, the rows before and after.
"""

import csv
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa

from ciboard.settings import Settings
from ciboard.warehouse import PROBLEM_COLUMNS, REJECTION_COLUMNS, Warehouse

log = logging.getLogger(__name__)

# --- what each kind of file holds ------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # varchar | integer | double | date | boolean
    required: bool = True
    limit: float | None = None  # a number's magnitude must stay below this (the warehouse column's range)


@dataclass(frozen=True)
class Check:
    """A rule on typed columns: `ok` is SQL over the staged row that is true when the row is fine.
    `for_vendor` is what the file's vendor is told instead, where `reason` would tell it about
    other vendors."""

    column: str
    ok: str
    reason: str
    for_vendor: str | None = None


@dataclass(frozen=True)
class Kind:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    # Joins (to `staged`) of what the checks look up in the warehouse. Lookups are joins, never
    # subqueries that refer to the row: DuckDB would hold a whole large file in memory for those.
    lookups: str = ""
    period_column: str | None = None  # the dates that say which period a file covers
    data_dates: tuple[str, ...] = ()  # dates that must lie in a school year and not in the future
    year_dates: tuple[str, ...] = ()  # dates that must lie in a school year


NOT_YOURS = "is not on your roster"
MAX_PROBLEMS = 1_000  # listed per file; a file with more says how many more
WHOLE_NUMBER_LIMIT = 2_147_483_647  # the warehouse keeps whole numbers as 32-bit integers

BASELINE_BANDS = ("well below", "below", "near", "above")
SURVEY_ITEMS = ("sel_identity", "sel_efficacy", "satisfaction")

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "schools",
            (Column("school_id", "varchar"), Column("name", "varchar")),
            key=("school_id",),
        ),
        Kind(
            "vendors",
            (Column("vendor_id", "varchar"), Column("name", "varchar")),
            key=("vendor_id",),
        ),
        Kind(
            "contracts",
            (
                Column("vendor_id", "varchar"),
                Column("payment_metric", "varchar"),
                Column("threshold", "double"),
                Column("base_per_student", "double", limit=1e10),
                Column("outcome_per_student", "double", limit=1e10),
                Column("cap", "double", required=False, limit=1e12),
                Column("starts_on", "date"),
                Column("ends_on", "date"),
            ),
            key=("vendor_id", "payment_metric", "starts_on"),
            checks=(
                Check("vendor_id", "vendor_id in (select vendor_id from known_vendors)", "unknown vendor_id"),
                Check(
                    "payment_metric",
                    "payment_metric in (select metric_id from metrics)",
                    "unknown metric id (see the data map)",
                ),
                Check("base_per_student", "base_per_student >= 0", "must not be negative"),
                Check("outcome_per_student", "outcome_per_student >= 0", "must not be negative"),
                Check("cap", "cap >= 0", "must not be negative"),
                Check("ends_on", "ends_on >= starts_on", "ends before starts_on"),
            ),
        ),
        Kind(
            "annotations",
            (
                Column("starts_on", "date"),
                Column("ends_on", "date", required=False),
                Column("kind", "varchar"),
                Column("title", "varchar"),
                Column("description", "varchar", required=False),
                Column("vendor_id", "varchar", required=False),
                Column("school_id", "varchar", required=False),
                Column("metric_id", "varchar", required=False),
            ),
            key=("starts_on", "kind", "title", "vendor_id", "school_id", "metric_id"),
            checks=(
                Check(
                    "kind",
                    "kind in ('break', 'closure', 'program change', 'external', 'data')",
                    "must be one of break, closure, program change, external, data",
                ),
                Check("ends_on", "ends_on >= starts_on", "ends before starts_on"),
                Check("vendor_id", "vendor_id in (select vendor_id from known_vendors)", "unknown vendor_id"),
                Check("school_id", "school_id in (select school_id from known_schools)", "unknown school_id"),
                Check("metric_id", "metric_id in (select metric_id from metrics)", "unknown metric id"),
            ),
            year_dates=("starts_on", "ends_on"),
        ),
        Kind(
            "roster",
            (
                Column("student_id", "varchar"),
                Column("vendor_id", "varchar"),
                Column("school_id", "varchar"),
                Column("grade", "integer"),
                Column("race_ethnicity", "varchar"),
                Column("gender", "varchar"),
                Column("econ_disadvantaged", "boolean"),
                Column("english_learner", "boolean"),
                Column("special_education", "boolean"),
                Column("baseline_band", "varchar"),
                Column("enrolled_on", "date"),
            ),
            key=("student_id",),
            checks=(
                # A vendor is not told which other vendor ids exist.
                Check(
                    "vendor_id",
                    "vendor_id in (select vendor_id from known_vendors)",
                    "unknown vendor_id",
                    for_vendor="is not the submitting vendor",
                ),
                Check(
                    "vendor_id",
                    "submitting_vendor is null or vendor_id = submitting_vendor",
                    "is not the submitting vendor",
                ),
                Check("school_id", "school_id in (select school_id from known_schools)", "unknown school_id"),
                Check("grade", "grade between 0 and 12", "must be a grade from 0 (K) to 12"),
                Check(
                    "baseline_band",
                    "baseline_band in " + str(BASELINE_BANDS),
                    "must be one of " + ", ".join(BASELINE_BANDS),
                ),
                Check(
                    "student_id",
                    "rostered_vendor is null or rostered_vendor = vendor_id",
                    "is already on another vendor's roster",
                    for_vendor=NOT_YOURS,
                ),
            ),
            lookups="left join (select student_key, vendor_id as rostered_vendor from students) as rostered"
            " on rostered.student_key = staged.student_id",
            period_column="enrolled_on",
            data_dates=("enrolled_on",),
        ),
        Kind(
            "sessions",
            (
                Column("student_id", "varchar"),
                Column("session_date", "date"),
                Column("tutor_id", "varchar"),
                Column("group_size", "integer"),
                Column("scheduled_minutes", "integer"),
                Column("attended_minutes", "integer"),
            ),
            key=("student_id", "session_date", "tutor_id"),
            checks=(
                Check("group_size", "group_size between 1 and 50", "must be between 1 and 50"),
                Check("scheduled_minutes", "scheduled_minutes between 1 and 480", "must be between 1 and 480"),
                Check(
                    "attended_minutes",
                    "attended_minutes between 0 and scheduled_minutes",
                    "must be between 0 (absent) and scheduled_minutes",
                ),
            ),
            period_column="session_date",
            data_dates=("session_date",),
        ),
        Kind(
            "school_attendance",
            (
                Column("student_id", "varchar"),
                Column("week_start", "date"),
                Column("days_enrolled", "integer"),
                Column("days_present", "integer"),
            ),
            key=("student_id", "week_start"),
            checks=(
                Check("week_start", "isodow(week_start) = 1", "must be a Monday (weeks start on Monday)"),
                Check("days_enrolled", "days_enrolled between 0 and 7", "must be between 0 and 7"),
                Check(
                    "days_present", "days_present between 0 and days_enrolled", "must be between 0 and days_enrolled"
                ),
            ),
            period_column="week_start",
            data_dates=("week_start",),
        ),
        Kind(
            "assessment",
            (
                Column("student_id", "varchar"),
                Column("window", "varchar"),
                Column("test_date", "date"),
                Column("scaled_score", "double"),
                Column("sgp", "integer", required=False),
                Column("proficient", "boolean"),
            ),
            key=("student_id", "window", "school_year"),
            checks=(
                Check("window", "\"window\" in ('fall', 'winter', 'spring')", "must be fall, winter or spring"),
                Check(
                    "test_date",
                    "\"window\" is null or \"window\" = calendar_window",
                    "is not in the stated window of the school calendar",
                ),
                Check("scaled_score", "scaled_score >= 0", "must not be negative"),
                Check("sgp", "sgp between 1 and 99", "must be a percentile from 1 to 99"),
            ),
            period_column="test_date",
            data_dates=("test_date",),
        ),
        Kind(
            "survey",
            (
                Column("student_id", "varchar"),
                Column("response_date", "date"),
                Column("item", "varchar"),
                Column("score", "integer"),
            ),
            key=("student_id", "response_date", "item"),
            checks=(
                Check("item", "item in " + str(SURVEY_ITEMS), "must be one of " + ", ".join(SURVEY_ITEMS)),
                Check("score", "score between 1 and 5", "must be from 1 to 5"),
            ),
            period_column="response_date",
            data_dates=("response_date",),
        ),
    )
}

VENDOR_KINDS = ("roster", "sessions", "survey")
STUDENT_KINDS = ("sessions", "school_attendance", "assessment", "survey")

# Where each kind's rows land, the key that finds a row already loaded, and the date that
# says which week a row belongs to.
RAW_TABLES = {
    "sessions": ("sessions", "student_key, session_date, tutor_id", "session_date"),
    "school_attendance": ("school_attendance", "student_key, week_start", "week_start"),
    "assessment": ("assessments", "student_key, window_name, school_year", "test_date"),
    "survey": ("survey_responses", "student_key, response_date, item", "response_date"),
}
STAGED_KEYS = {
    "sessions": "student_id, session_date, tutor_id",
    "school_attendance": "student_id, week_start",
    "assessment": 'student_id, "window", school_year',
    "survey": "student_id, response_date, item",
}


# --- what comes out ----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    row: int | None
    column: str | None
    value: str | None
    reason: str
    # What the file's vendor is told instead, where `reason` says something about other
    # vendors; "" for nothing (another problem of the row says what the vendor may know).
    for_vendor: str | None = field(default=None, compare=False, repr=False)
    # On the problem that stands for those not listed (see MAX_PROBLEMS): the file's rows with a problem.
    rows_with_problems: int | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        where = f"{self.file}" + (f", row {self.row}" if self.row is not None else "")
        what = f"{self.column}" + (f" = {self.value!r}" if self.value is not None else "") if self.column else ""
        return f"{where}: {what + ': ' if what else ''}{self.reason}"


def as_vendor_sees(problems: list[Problem]) -> list[Problem]:
    """The problems as the file's vendor may read them: nothing about other vendors' students,
    batches or files, and each thing said once."""
    seen, shown = set(), []
    for problem in problems:
        reason = problem.reason if problem.for_vendor is None else problem.for_vendor
        if reason and (problem.file, problem.row, problem.column, reason) not in seen:
            seen.add((problem.file, problem.row, problem.column, reason))
            shown.append(Problem(problem.file, problem.row, problem.column, problem.value, reason,
                                 rows_with_problems=problem.rows_with_problems))
    return shown


def rows_with_problems(problems: list[Problem]) -> int:
    counted = [p.rows_with_problems for p in problems if p.rows_with_problems is not None]
    return max(counted) if counted else len({p.row for p in problems if p.row is not None})


@dataclass(frozen=True)
class Submission:
    path: Path
    kind: str
    vendor_id: str | None = None
    received_at: datetime | None = None
    # Sent by the district (the command line, an administrator), which is told about every
    # vendor; a file with a vendor id and not this is the vendor's own.
    by_district: bool = False
    file_name: str | None = None  # the name its sender gave it, where the file on disk has another

    @property
    def name(self) -> str:
        return self.file_name or self.path.name

    @property
    def sent_by_vendor(self) -> bool:
        return self.vendor_id is not None and not self.by_district


@dataclass(frozen=True)
class WeekChange:
    """A week of a file that replaces an earlier one: its rows in the earlier file and in the new one."""

    week_start: date
    rows_before: int
    rows_after: int
    removed: int  # rows of the earlier file whose key the new file does not have
    added: int  # rows of the new file whose key the earlier file did not have


@dataclass
class Outcome:
    file: str
    kind: str
    status: str  # accepted | rejected | unchanged | not loaded (and checked, between checking and loading)
    batch_id: int | None = None
    vendor_id: str | None = None
    rows: int = 0
    period: tuple[date, date] | None = None
    replaced_batch_id: int | None = None
    problems: list[Problem] = field(default_factory=list)
    changes: list[WeekChange] = field(default_factory=list)  # week by week, when it replaces a file

    @property
    def removes_rows(self) -> bool:
        return any(change.removed for change in self.changes)


class IngestRejected(Exception):
    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        self.problems = [p for o in outcomes for p in o.problems]
        rejected = [o.file for o in outcomes if o.status == "rejected"]
        super().__init__(
            f"{len(rejected)} file(s) rejected with {len(self.problems)} problem(s); nothing was loaded: "
            + ", ".join(rejected)
        )


class ReplaceUnconfirmed(Exception):
    """Files that would replace an earlier file and remove rows of it. Nothing was loaded or
    logged; send them again with replace=True to go ahead."""

    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        super().__init__(
            "; ".join(replacement(o) for o in outcomes if o.removes_rows)
            + "; nothing was loaded until the replacement is confirmed"
        )


def replacement(outcome: Outcome) -> str:
    """One line: what a replacing file takes away and brings."""
    before = sum(c.rows_before for c in outcome.changes)
    removed = sum(c.removed for c in outcome.changes)
    added = sum(c.added for c in outcome.changes)
    first, last = outcome.period or (None, None)
    return (
        f"{outcome.file} replaces submission {outcome.replaced_batch_id} ({outcome.kind}, {first} to {last}):"
        f" {removed:,} of its {before:,} rows would be removed and {added:,} added"
    )


def week_lines(outcome: Outcome) -> list[str]:
    """The replacement week by week, as the command line prints it."""
    return [
        f"week of {c.week_start}: {c.rows_before:,} rows now, {c.rows_after:,} in {outcome.file}"
        f" ({c.removed:,} removed, {c.added:,} added)"
        for c in outcome.changes
    ]


Progress = Callable[[str], None]


# --- reading a file into a staging table ------------------------------------------------


class FileUnreadable(Exception):
    """A file that cannot be read at all. The message says why, for the sender: no paths."""


NOT_UTF8 = 'is not text in UTF-8 (from Excel, save it as "CSV UTF-8")'
NOT_EXCEL = "is not an Excel workbook that can be read: save it again from Excel as .xlsx, or as CSV"
NOT_PARQUET = "is not a Parquet file that can be read"
CSV_DELIMITERS = (",", "\t", ";", "|")
BATCH_ROWS = 50_000  # rows handed to DuckDB at a time when a file is read row by row


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stage(con: duckdb.DuckDBPyConnection, path: Path, table: str, name: str | None = None) -> tuple[list[str], list[Problem]]:
    """Load a file into `table` as columns c0..cN plus `_row` (its row number as a spreadsheet shows it).

    Returns the file's header names, in column order, and the rows that could not be parsed.
    Header text never reaches SQL: columns are referred to by position. `table` is a view of
    `<table>_lines`; drop both when done. Raises FileUnreadable for a file that cannot be read.
    """
    name = name or path.name
    suffix = Path(name).suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            return _stage_csv(con, path, table, name)
        if suffix == ".parquet":
            return _stage_parquet(con, path, table), []
        if suffix in (".xlsx", ".xlsm"):
            return _stage_excel(con, path, table), []
    except OSError:
        raise FileUnreadable("the file could not be opened") from None
    raise FileUnreadable(f"unsupported file type {suffix or '(none)'}: use .csv, .parquet or .xlsx")


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[str]:
    try:
        headers = [d[0] for d in con.execute("select * from read_parquet(?) limit 0", [str(path)]).description]
        columns = ", ".join(f"#{i + 1}::varchar as c{i}" for i in range(len(headers)))
        con.execute(
            f"""create or replace temp table {table}_lines as
            select {columns}{', ' if columns else ''}file_row_number + 1 as _row
            from read_parquet(?, file_row_number = true)""",
            [str(path)],
        )
    except duckdb.Error:
        raise FileUnreadable(NOT_PARQUET) from None
    con.execute(f"create or replace temp view {table} as select * from {table}_lines")
    return headers


def _stage_excel(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[str]:
    """The first sheet, row by row (a workbook is never held whole in memory); the first
    row that holds anything is the header."""
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - a file that is not a workbook fails in many ways; all mean the same
        raise FileUnreadable(NOT_EXCEL) from None
    try:
        rows = enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1)
        headers: list[str] = []
        for _, values in rows:
            headers = ["" if v is None else _excel_cell_text(v).strip() for v in values]
            if any(headers):
                break
        while headers and not headers[-1]:
            headers.pop()
        if not headers:
            raise FileUnreadable("the first sheet is empty: its first row must hold the column names")
        with _Batches(con, table, len(headers)) as batches:
            for number, values in rows:
                texts = [None if v is None else _excel_cell_text(v) for v in values[: len(headers)]]
                if any(t is not None and t.strip() for t in texts):
                    batches.add(texts + [None] * (len(headers) - len(texts)), number)
        return headers
    except FileUnreadable:
        raise
    except Exception:  # noqa: BLE001 - as above: a damaged workbook fails in many ways
        raise FileUnreadable(NOT_EXCEL) from None
    finally:
        workbook.close()


def _excel_cell_text(cell: object) -> str:
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == datetime.min.time() else cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


class _Batches:
    """Rows into `<table>_lines` (c0..cN as text, and `_row`) a batch at a time, and the view
    `table` over them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str, width: int):
        self.con, self.table, self.width = con, table, width
        self.columns: list[list] = [[] for _ in range(width + 1)]

    def __enter__(self) -> "_Batches":
        columns = ", ".join(f"c{i} varchar" for i in range(self.width))
        self.con.execute(f"create or replace temp table {self.table}_lines ({columns}, _row bigint)")
        return self

    def add(self, values: list, row: int) -> None:
        for column, value in zip(self.columns, [*values, row]):
            column.append(value)
        if len(self.columns[-1]) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.columns[-1]:
            batch = pa.table(
                {f"c{i}": pa.array(values, pa.string()) for i, values in enumerate(self.columns[:-1])}
                | {"_row": pa.array(self.columns[-1], pa.int64())}
            )
            self.con.register("lines_batch", batch)
            self.con.execute(f"insert into {self.table}_lines select * from lines_batch")
            self.con.unregister("lines_batch")
            self.columns = [[] for _ in range(self.width + 1)]

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.flush()
            self.con.execute(f"create or replace temp view {self.table} as select * from {self.table}_lines")


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, name: str) -> tuple[list[str], list[Problem]]:
    """DuckDB reads a well-formed file fast. If it finds anything amiss (a row that cannot be
    read, a value spanning lines, a blank line), Python's csv module reads the file again row by
    row, so every row is numbered as a spreadsheet shows it (a value spanning lines is one row)
    and a row that cannot be read is reported once, as its own row."""
    delimiter, headers = _csv_header(path, Path(name).suffix.lower())
    if not _read_csv_whole(con, path, table, delimiter, len(headers)):
        return headers, _read_csv_by_row(con, path, table, delimiter, len(headers), name)
    return headers, []


def _csv_header(path: Path, suffix: str) -> tuple[str, list[str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            first = handle.readline(1 << 16)
    except UnicodeDecodeError:
        raise FileUnreadable(NOT_UTF8) from None
    if not first.strip():
        raise FileUnreadable("the file is empty, or its first line is: the first line must hold the column names")
    if not first.endswith(("\n", "\r")) and path.stat().st_size > len(first.encode()) + 3:
        raise FileUnreadable("the first line is not a header of column names (it does not end)")
    delimiter = "\t" if suffix == ".tsv" else max(CSV_DELIMITERS, key=first.count)
    try:
        headers = next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter))
    except csv.Error:
        headers = first.rstrip("\r\n").split(delimiter)
    return delimiter, headers


def _read_csv_whole(con: duckdb.DuckDBPyConnection, path: Path, table: str, delimiter: str, width: int) -> bool:
    """Reads a well-formed file with DuckDB; False (and nothing read) for any other."""
    try:
        con.execute(
            f"""create or replace temp table {table}_lines as
            select * from read_csv(?, header = false, auto_detect = false, columns = ?, delim = ?,
                                   quote = '"', escape = '"')""",
            [str(path), {f"c{i}": "VARCHAR" for i in range(width)}, delimiter],
        )
    except duckdb.Error:
        return False
    # One record per line, or a row's line number is not its position.
    if con.execute(f"select count(*) from {table}_lines").fetchall()[0][0] != _line_count(path):
        con.execute(f"drop table {table}_lines")
        return False
    # Insertion order is kept, so a row's position is its line; line 1 is the header. (Row ids
    # count on from wherever the table's storage starts them.)
    con.execute(
        f"""create or replace temp view {table} as
        select lines.*, lines.rowid - first.rowid + 1 as _row
        from {table}_lines as lines, (select min(rowid) as rowid from {table}_lines) as first
        where lines.rowid > first.rowid"""
    )
    return True


def _line_count(path: Path) -> int:
    """Lines up to the last one that holds anything."""
    lines, last = 0, b""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines, last = lines + block.count(b"\n"), block
    content = last.rstrip(b"\r\n")
    return lines - last[len(content):].count(b"\n") + (1 if content else 0)


class _Lines:
    """The file's lines for the csv reader, keeping the start of the current row's text."""

    def __init__(self, handle):
        self.handle = handle
        self.text = ""

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        if len(self.text) < 200:
            self.text += line
        return line


def _read_csv_by_row(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, delimiter: str, width: int, name: str
) -> list[Problem]:
    problems = []
    with open(path, encoding="utf-8-sig", newline="") as handle, _Batches(con, table, width) as batches:
        lines = _Lines(handle)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        row = unreadable = 0
        while True:
            lines.text = ""
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                row += 1
                unreadable += 1
                if unreadable <= MAX_PROBLEMS:
                    problems.append(Problem(name, row, None, _shown(lines.text), f"row cannot be read: {_csv_error(error)}"))
                continue
            except UnicodeDecodeError:
                raise FileUnreadable(f"{NOT_UTF8}; row {row + 1} is the first that is not") from None
            row += 1
            if row == 1 or not any(v.strip() for v in values):
                continue  # the header, or a blank line
            if len(values) != width:
                unreadable += 1
                if unreadable <= MAX_PROBLEMS:
                    problems.append(
                        Problem(name, row, None, _shown(lines.text),
                                f"row cannot be read: it has {len(values)} values where the header has {width}")
                    )
                continue
            batches.add(values, row)
    if unreadable > MAX_PROBLEMS:
        problems.append(_more_problems(name, unreadable, unreadable))
    return problems


def _shown(text: str) -> str:
    return text.rstrip("\r\n")[:200]


def _csv_error(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return 'a quote (") opened in this row is never closed'
    if "expected after" in text:
        return 'a quoted value goes on after its closing quote (a quote inside a value is written twice: "")'
    if "field larger than field limit" in text:
        return f'a value is longer than {csv.field_size_limit():,} characters; is a quote (") never closed?'
    return f"the CSV reader says: {text}"


# --- checking a staged file -------------------------------------------------------------


def _typed(column: Column, source: str) -> str:
    text = f"nullif(trim({source}::varchar), '')"
    number = f"try_cast({text} as double)"
    if column.type == "varchar":
        return text
    if column.type == "double":
        within = f" and abs({number}) < {column.limit}" if column.limit else ""
        return f"case when isfinite({number}){within} then {number} end"
    if column.type == "integer":
        # A whole number only: a cast would silently round 3.5 to 4.
        return (
            f"case when isfinite({number}) and {number} = floor({number}) and abs({number}) <= {WHOLE_NUMBER_LIMIT}"
            f" then {number}::integer end"
        )
    if column.type == "date":
        return (
            f"coalesce(try_cast({text} as date), try_strptime({text}, '%m/%d/%Y')::date,"
            f" try_cast(try_cast({text} as timestamp) as date))"
        )
    if column.type == "boolean":
        return (
            f"case when lower({text}) in ('1', 'true', 't', 'yes', 'y') then true"
            f" when lower({text}) in ('0', 'false', 'f', 'no', 'n') then false end"
        )
    raise ValueError(column.type)


def _out_of_range(column: Column) -> tuple[str, str] | None:
    """When a number is beyond what the column holds: (SQL true on such a raw value, reason)."""
    number = f"try_cast(nullif(trim({column.name}__raw), '') as double)"
    if column.type == "integer":
        return f"isinf({number}) or abs({number}) > {WHOLE_NUMBER_LIMIT}", f"is out of range for a whole number (up to {WHOLE_NUMBER_LIMIT:,})"
    if column.type == "double" and column.limit:
        return f"isinf({number}) or abs({number}) >= {column.limit}", f"is out of range (it must be below {column.limit:,.0f})"
    if column.type == "double":
        return f"isinf({number})", "is out of range"
    return None


TYPE_HELP = {
    "varchar": "text",
    "double": "a number",
    "integer": "a whole number",
    "date": "a date (YYYY-MM-DD or MM/DD/YYYY)",
    "boolean": "yes/no (1/0, true/false, Y/N)",
}


def type_rows(
    con: duckdb.DuckDBPyConnection, kind: Kind, stage_table: str, headers: list[str], file_name: str
) -> tuple[str | None, list[Problem]]:
    """Builds `<stage>_typed`: each column of the kind as text (`<name>__raw`) and typed (`<name>`)."""
    wanted = {c.name for c in kind.columns}
    position: dict[str, int] = {}
    problems: list[Problem] = []
    for i, header in enumerate(headers):
        name = header.strip().lower().replace(" ", "_")
        if name in wanted:
            if name in position:
                problems.append(Problem(file_name, 1, header, None, f"column {name} appears twice"))
            position.setdefault(name, i)
    missing = [c.name for c in kind.columns if c.required and c.name not in position]
    if missing:
        problems.append(
            Problem(
                file_name,
                1,
                None,
                None,
                f"missing required column(s) {', '.join(missing)}; a {kind.name} file has columns "
                + ", ".join(c.name + ("" if c.required else " (optional)") for c in kind.columns)
                + "; this file has "
                + (", ".join(h for h in headers if h) or "none"),
            )
        )
    if problems:
        return None, problems

    typed = f"{stage_table}_typed"
    selects = ["_row"]
    for c in kind.columns:
        source = f"c{position[c.name]}" if c.name in position else "null"
        selects.append(f"{source}::varchar as {c.name}__raw")
        selects.append(f'{_typed(c, source)} as "{c.name}"')
    con.execute(f"create or replace temp table {typed} as select {', '.join(selects)} from {stage_table}")
    if kind.name == "assessment":
        # The school year is part of the key; the window the calendar has is checked against the stated one.
        con.execute(
            f"""create or replace temp table {typed} as
            select t.*, w.school_year, w.window_name as calendar_window from {typed} as t
            left join calendar_weeks as w on w.week_start = date_trunc('week', t.test_date)::date"""
        )
    if con.execute(f"select count(*) from {typed}").fetchall()[0][0] == 0:
        problems.append(Problem(file_name, None, None, None, "the file has no data rows"))
    return typed, problems


def find_problems(
    con: duckdb.DuckDBPyConnection, kind: Kind, typed: str, file_name: str, vendor_id: str | None, today: date
) -> list[Problem]:
    """Every problem of a typed file against the warehouse as this transaction leaves it.

    The temp table `replacing` names the batches this file replaces: their rows do not count
    as already loaded. Each problem also says what `vendor_id` may be told of it.
    """
    # (column, condition true on a bad row, reason, what the vendor is told instead)
    checks: list[tuple[str, str, str, str | None]] = []
    for c in kind.columns:
        given = f"trim(coalesce({c.name}__raw, '')) <> ''"
        if c.required:
            checks.append((c.name, f"not {given}", "is required", None))
        too_big = _out_of_range(c)
        if too_big:
            checks.append((c.name, f'"{c.name}" is null and {given} and coalesce({too_big[0]}, false)', too_big[1], None))
            given += f" and not coalesce({too_big[0]}, false)"
        checks.append((c.name, f'"{c.name}" is null and {given}', f"is not {TYPE_HELP[c.type]}", None))
    for check in kind.checks:
        checks.append(
            (check.column, f'"{check.column}" is not null and not coalesce({check.ok}, false)', check.reason, check.for_vendor)
        )
    for column in kind.data_dates:
        checks.append((column, f"{column} > today", "is in the future", None))
    for column in kind.data_dates + kind.year_dates:
        checks.append(
            (
                column,
                f"{column} is not null and len(list_filter(years, lambda y: {column} between y.starts_on and y.ends_on)) = 0",
                "is outside every school year of the warehouse (add one with 'ciboard init --school-year')",
                None,
            )
        )
    if kind.name in STUDENT_KINDS:
        # A vendor hears the same of an unknown student and of another vendor's.
        checks.append(
            ("student_id", "student_id not in (select student_key from students)", "is not on any roster", NOT_YOURS)
        )
        if vendor_id is not None:
            checks.append(
                (
                    "student_id",
                    "student_id in (select student_key from students where vendor_id <> $vendor)",
                    "is on another vendor's roster",
                    NOT_YOURS,
                )
            )
    con.execute(
        "create or replace temp table known_vendors as select vendor_id from vendors"
        + (f" union select vendor_id from {typed}" if kind.name == "vendors" else "")
    )
    con.execute(
        "create or replace temp table known_schools as select school_id from schools"
        + (f" union select school_id from {typed}" if kind.name == "schools" else "")
    )

    def text(value: str | None) -> str:
        return "null::varchar" if value is None else "'" + value.replace("'", "''") + "'"

    context = (
        "(select $vendor::varchar as submitting_vendor, $today::date as today,"
        " (select list({'starts_on': starts_on, 'ends_on': ends_on}) from school_years) as years) as context"
    )
    # Every row check in one pass over the file: each row collects the problems it has.
    found = ",\n".join(
        f"case when {condition} then {{'column_name': '{column}', 'value': {column}__raw,"
        f" 'reason': {text(reason)}, 'for_vendor': {text(for_vendor)}}} end"
        for column, condition, reason, for_vendor in checks
    )
    queries = [
        f"""select _row, problem.column_name, problem.value, problem.reason, problem.for_vendor
        from (
            select _row, unnest(list_filter([{found}], lambda p: p is not null)) as problem
            from {typed} as staged {kind.lookups}, {context}
        )"""
    ]
    key_list = ", ".join(f'"{k}"' for k in kind.key)
    key_text = " || ', ' || ".join(f"coalesce(\"{k}\"::varchar, '')" for k in kind.key)
    required_keys = [k for k in kind.key if k == "school_year" or any(c.name == k and c.required for c in kind.columns)]
    queries.append(
        f"""select _row, '{kind.key[0]}', {key_text}, 'repeats the key ({", ".join(kind.key)}) of row ' || first_row,
            null::varchar
        from (select _row, {key_list}, min(_row) over (partition by {key_list}) as first_row from {typed})
        where _row <> first_row and {' and '.join(f'"{k}" is not null' for k in required_keys)}"""
    )
    if kind.name in RAW_TABLES:
        raw_table, raw_key, _ = RAW_TABLES[kind.name]
        staged_key = ", ".join("staged." + k for k in STAGED_KEYS[kind.name].split(", "))
        loaded_key = ", ".join("loaded." + k for k in raw_key.split(", "))
        already = "'was already loaded in batch ' || loaded.batch_id || ' (' || coalesce(log.file_name, '?') || ')'"
        # A vendor hears of its own files only; of another's, nothing if the student is not its
        # own (the row is "not on your roster"), and no batch or file if it is.
        queries.append(
            f"""select staged._row, '{kind.key[0]}', {key_text.replace('coalesce("', 'coalesce(staged."')}, {already},
                case
                    when log.vendor_id is not distinct from submitting_vendor then {already}
                    when staged.student_id in (select student_key from students where vendor_id = $vendor)
                        then 'was already loaded'
                    else ''
                end
            from {typed} as staged
            inner join {raw_table} as loaded on ({loaded_key}) = ({staged_key})
            left join submissions as log on log.batch_id = loaded.batch_id, {context}
            where loaded.batch_id not in (select batch_id from replacing)"""
        )
    found = " union all ".join(queries)
    params = {"today": today, "vendor": vendor_id}
    rows = con.execute(f"select * from ({found}) order by 1, 2 limit {MAX_PROBLEMS + 1}", params).fetchall()
    problems = [Problem(file_name, *row) for row in rows[:MAX_PROBLEMS]]
    if len(rows) > MAX_PROBLEMS:
        every, told, bad_rows = con.execute(
            f"select count(*), count(*) filter (where for_vendor is distinct from ''), count(distinct _row) from ({found})",
            params,
        ).fetchall()[0]
        problems.append(_more_problems(file_name, every, bad_rows, told))
    return problems


def _more_problems(file_name: str, every: int, rows: int, told: int | None = None) -> Problem:
    """Stands for the problems beyond the first MAX_PROBLEMS of a file. `told`: how many of
    them all the file's vendor may hear of. Its row is the number of rows with a problem."""
    def text(count: int) -> str:
        return f"and {count - MAX_PROBLEMS:,} more problem(s): only the first {MAX_PROBLEMS:,} are listed"

    return Problem(file_name, None, None, None, text(every), None if told is None else text(told), rows_with_problems=rows)


# --- loading -------------------------------------------------------------------------------


class _Discard(Exception):
    """Leaves a publish unpublished: some file was rejected, or would remove rows unconfirmed."""


def ingest(
    warehouse: Warehouse,
    submissions: list[Submission],
    *,
    progress: Progress | None = None,
    today: date | None = None,
    replace: bool = False,
) -> list[Outcome]:
    """Check, load and publish `submissions` as one new warehouse version, or raise.

    IngestRejected: some file has problems; nothing landed, and the rejected files are in the
    rejection log (no new version). ReplaceUnconfirmed: some file would replace an earlier
    one and remove rows of it, and `replace` is not set; nothing landed or was logged.
    A command whose every file was loaded before publishes nothing.
    """
    today = today or date.today()
    say = progress or (lambda message: None)
    for submission in submissions:
        if submission.kind not in KINDS:
            raise ValueError(f"unknown kind {submission.kind!r}; the kinds are {', '.join(KINDS)}")
    hashes = [sha256_of(s.path) for s in submissions]
    if _all_loaded_before(warehouse, submissions, hashes):
        say("every file was loaded before; nothing to do")
        return [Outcome(s.name, s.kind, "unchanged") for s in submissions]

    with warehouse.workspace() as work:
        loader = Loader(work.con, warehouse.settings, today, say)
        if len(submissions) == 1:
            # Checked against the published warehouse: a rejected file copies nothing.
            [outcome] = outcomes = [loader.check(submissions[0], hashes[0])]
            if outcome.status == "unchanged":
                return outcomes
            if outcome.status == "rejected":
                _log_rejected(warehouse, outcomes, submissions, hashes)
                raise IngestRejected(_as_told(outcomes, submissions))
            if outcome.removes_rows and not replace:
                outcome.status = "not loaded"
                raise ReplaceUnconfirmed(outcomes)
        try:
            with warehouse.publish(work) as con:
                con.execute("begin")
                if len(submissions) == 1:
                    if warehouse.version() != work.version:
                        loader.judge(outcome, submissions[0])  # another ingest landed meanwhile
                    if not outcome.problems and not (outcome.removes_rows and not replace):
                        loader.apply(outcome, submissions[0], hashes[0])
                else:
                    outcomes = [loader.load(s, h, replace) for s, h in zip(submissions, hashes)]
                if any(o.status == "rejected" for o in outcomes) or any(
                    o.removes_rows and not replace for o in outcomes
                ):
                    raise _Discard
                loader.derive()
                con.execute("commit")
        except _Discard:
            for outcome in outcomes:
                if outcome.status in ("accepted", "checked"):
                    outcome.status, outcome.batch_id = "not loaded", None
            if not any(o.status == "rejected" for o in outcomes):
                raise ReplaceUnconfirmed(outcomes) from None
            _log_rejected(warehouse, outcomes, submissions, hashes)
            raise IngestRejected(_as_told(outcomes, submissions)) from None
    return outcomes


def _all_loaded_before(warehouse: Warehouse, submissions: list[Submission], hashes: list[str]) -> bool:
    with warehouse.cursor() as cur:
        loaded = {
            (kind, vendor, digest)
            for kind, vendor, digest in cur.execute(
                "select kind, vendor_id, content_sha256 from submissions where status <> 'rejected'"
            ).fetchall()
        }
    # A vendor's file counts as its own only: another vendor's identical file does not.
    return all(
        any(kind == s.kind and digest == h and s.vendor_id in (None, vendor) for kind, vendor, digest in loaded)
        for s, h in zip(submissions, hashes)
    )


def _as_told(outcomes: list[Outcome], submissions: list[Submission]) -> list[Outcome]:
    """The outcomes with the problems as the sender may read them."""
    for outcome, submission in zip(outcomes, submissions):
        if submission.sent_by_vendor:
            outcome.problems = as_vendor_sees(outcome.problems)
    return outcomes


def _log_rejected(warehouse: Warehouse, outcomes: list[Outcome], submissions: list[Submission], hashes: list[str]) -> None:
    """The rejected files into the warehouse's rejection log, each with the problems its
    vendor may read (a district file without a vendor keeps them all)."""
    files: dict[str, list] = {name: [] for name in ("file", *REJECTION_COLUMNS)}
    problems: dict[str, list] = {name: [] for name in ("file", *PROBLEM_COLUMNS)}
    now = datetime.now()
    for number, (outcome, submission, digest) in enumerate(zip(outcomes, submissions, hashes)):
        if outcome.status != "rejected":
            continue
        kept = as_vendor_sees(outcome.problems) if outcome.vendor_id else outcome.problems
        period = outcome.period or (None, None)
        row = {
            "file": number, "kind": outcome.kind, "vendor_id": outcome.vendor_id, "file_name": outcome.file,
            "content_sha256": digest, "period_start": period[0], "period_end": period[1], "due_on": None,
            "received_at": submission.received_at or now, "loaded_at": now, "rows_received": outcome.rows,
            "rows_accepted": 0, "rows_rejected": rows_with_problems(kept),
            "status": "rejected", "replaces_batch_id": None,
        }
        for name, value in row.items():
            files[name].append(value)
        for problem in kept:
            for name, value in zip(problems, (number, problem.row, problem.column, problem.value, problem.reason)):
                problems[name].append(value)
    types = {"file": pa.int32(), "period_start": pa.date32(), "period_end": pa.date32(), "due_on": pa.date32(),
             "received_at": pa.timestamp("us"), "loaded_at": pa.timestamp("us"), "rows_received": pa.int64(),
             "rows_accepted": pa.int64(), "rows_rejected": pa.int64(), "replaces_batch_id": pa.int32(),
             "row_number": pa.int64()}
    warehouse.log_rejections(
        pa.table({name: pa.array(values, types.get(name, pa.string())) for name, values in files.items()}),
        pa.table({name: pa.array(values, types.get(name, pa.string())) for name, values in problems.items()}),
    )


class Loader:
    """Checks and loads files on one connection: its default database is the warehouse read
    (`check`) or written (`load`, `apply`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, today: date, say: Progress):
        self.con = con
        self.settings = settings
        self.today = today
        self.say = say
        self.seen: dict[tuple[str, str | None, str], int] = {}
        self.contracts_changed = False
        self.typed: str | None = None  # the file being loaded, typed; None if it cannot be checked
        self.unreadable: list[Problem] = []  # its rows that could not be read
        for name in ("sessions", "school_attendance", "assessment", "survey", "roster"):
            con.execute(f"create or replace temp table affected_{name} (student_key varchar)")
        con.execute("create or replace temp table replacing (batch_id integer)")

    def check(self, submission: Submission, digest: str) -> Outcome:
        """Reads and judges one file against the published warehouse. Should checking fail for a
        reason of CI Board's own, the file is rejected with a reason that says only that."""
        try:
            outcome = self.read(submission, digest)
            if self.typed is not None:
                self.judge(outcome, submission)
            return outcome
        except Exception:  # noqa: BLE001 - no sender sees a traceback; the server log has it
            log.exception("checking %s (%s) failed", submission.name, submission.kind)
            return Outcome(
                submission.name, submission.kind, "rejected", vendor_id=submission.vendor_id,
                problems=[Problem(submission.name, None, None, None,
                                  "could not be checked because of an error in CI Board; the server's log has the details")],
            )

    def load(self, submission: Submission, digest: str, replace: bool) -> Outcome:
        """Reads, judges and (if it has no problems) loads one file into the writable warehouse."""
        outcome = self.read(submission, digest)
        if self.typed is None:
            return outcome
        self.judge(outcome, submission)
        if not outcome.problems and not (outcome.removes_rows and not replace):
            self.apply(outcome, submission, digest)
        return outcome

    def read(self, submission: Submission, digest: str) -> Outcome:
        """Stages and types the file as `self.typed`, if it has the columns to check; the
        outcome holds the problems found so far."""
        kind = KINDS[submission.kind]
        name = submission.name
        outcome = Outcome(name, kind.name, "rejected", vendor_id=submission.vendor_id)
        self.started, self.typed, self.unreadable = datetime.now(), None, []
        earlier = self.con.execute(
            """select batch_id from submissions where kind = ? and content_sha256 = ? and status <> 'rejected'
            and (?::varchar is null or vendor_id = ?)""",
            [kind.name, digest, submission.vendor_id, submission.vendor_id],
        ).fetchall()
        seen = self.seen.get((kind.name, submission.vendor_id, digest))
        if earlier or seen:
            outcome.status = "unchanged"
            outcome.batch_id = earlier[0][0] if earlier else seen
            self.say(f"{name}: identical to batch {outcome.batch_id}, already loaded")
            return outcome

        try:
            headers, outcome.problems = stage(self.con, submission.path, "staged", name)
        except FileUnreadable as error:
            outcome.problems = [Problem(name, None, None, None, str(error))]
            return outcome
        outcome.rows = self.con.execute("select count(*) from staged").fetchall()[0][0] + len(outcome.problems)
        self.say(f"{name}: read {outcome.rows:,} rows as {kind.name}")
        typed, problems = type_rows(self.con, kind, "staged", headers, name)
        self.con.execute("drop view staged")
        self.con.execute("drop table staged_lines")
        # Rows that cannot be read still leave the others to check; missing columns do not.
        self.typed = None if problems else typed
        outcome.problems += problems
        self.unreadable = list(outcome.problems)
        return outcome

    def judge(self, outcome: Outcome, submission: Submission) -> None:
        """The problems of the typed file against the warehouse, and what it would replace."""
        kind, typed, name = KINDS[submission.kind], self.typed, outcome.file
        vendor_id, problems = self._vendor_of(kind, typed, submission.vendor_id, name)
        outcome.vendor_id = vendor_id
        outcome.period = self._period(kind, typed)
        self.con.execute("delete from replacing")
        if outcome.period is not None:
            self.con.execute(
                """insert into replacing select batch_id from submissions
                where kind = ? and vendor_id is not distinct from ? and period_start = ? and period_end = ?
                  and status = 'accepted'""",
                [kind.name, vendor_id, *outcome.period],
            )
        replaced = [row[0] for row in self.con.execute("select batch_id from replacing order by 1").fetchall()]
        outcome.replaced_batch_id = replaced[0] if replaced else None
        found = self.unreadable + problems + find_problems(self.con, kind, typed, name, vendor_id, self.today)
        # By row, as the file reads; what stands for problems not listed comes last.
        outcome.problems = sorted(found, key=lambda p: (p.rows_with_problems is not None, p.row or 0))
        outcome.changes = self._changes(kind, typed) if replaced and not outcome.problems else []
        outcome.status = "rejected" if outcome.problems else "checked"
        if outcome.problems:
            self.say(f"{name}: {len(outcome.problems):,} problem(s)")

    def apply(self, outcome: Outcome, submission: Submission, digest: str) -> None:
        """Loads the judged file: it replaces what it replaces, and is logged as accepted."""
        kind, typed, name = KINDS[submission.kind], self.typed, outcome.file
        outcome.batch_id = self.con.execute("select coalesce(max(batch_id), 0) + 1 from submissions").fetchall()[0][0]
        for (batch,) in self.con.execute("select batch_id from replacing").fetchall():
            self._unload(kind, batch)
        self._insert(kind, typed, outcome.batch_id, outcome.vendor_id)
        if kind.name == "contracts":
            outcome.problems += self._contract_problems(typed, name)
            if outcome.problems:
                outcome.status, outcome.batch_id = "rejected", None
                return
        due_days = self.con.execute("select due_days from submission_kinds where kind = ?", [kind.name]).fetchall()[0][0]
        self.con.execute(
            "insert into submissions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'accepted', ?)",
            [
                outcome.batch_id,
                kind.name,
                outcome.vendor_id,
                name,
                digest,
                *(outcome.period or (None, None)),
                outcome.period[1] + timedelta(days=due_days) if outcome.period else None,
                submission.received_at or datetime.now(),
                datetime.now(),
                outcome.rows,
                outcome.rows,
                outcome.replaced_batch_id,
            ],
        )
        self.seen[(kind.name, submission.vendor_id, digest)] = outcome.batch_id
        outcome.status = "accepted"
        seconds = (datetime.now() - self.started).total_seconds()
        self.say(
            f"{name}: loaded {outcome.rows:,} rows as batch {outcome.batch_id}"
            + (f", replacing batch {outcome.replaced_batch_id}" if outcome.replaced_batch_id else "")
            + f" ({seconds:.2f} s)"
        )

    def _changes(self, kind: Kind, typed: str) -> list[WeekChange]:
        """Week by week, the rows of the replaced batches against the rows of the file, by key."""
        if kind.name not in RAW_TABLES:
            return []  # a roster updates the students it lists; it removes nobody
        table, raw_key, raw_date = RAW_TABLES[kind.name]
        before = ", ".join(f"{column} as k{i}" for i, column in enumerate(raw_key.split(", ")))
        after = ", ".join(f"{column} as k{i}" for i, column in enumerate(STAGED_KEYS[kind.name].split(", ")))
        same = " and ".join(f"b.k{i} = a.k{i}" for i in range(len(raw_key.split(", "))))
        rows = self.con.execute(
            f"""with before as (
                select date_trunc('week', {raw_date})::date as week_start, {before}
                from {table} where batch_id in (select batch_id from replacing)
            ),
            after as (
                select date_trunc('week', {kind.period_column})::date as week_start, {after} from {typed}
            ),
            sides as (
                select b.week_start, 1 as was, 0 as is_now, exists (select 1 from after as a where {same}) as kept
                from before as b
                union all
                select a.week_start, 0, 1, exists (select 1 from before as b where {same}) from after as a
            )
            select week_start, sum(was), sum(is_now), count(*) filter (where was = 1 and not kept),
                   count(*) filter (where is_now = 1 and not kept)
            from sides group by week_start order by week_start"""
        ).fetchall()
        return [WeekChange(week, int(b), int(a), int(removed), int(added)) for week, b, a, removed, added in rows]

    def _vendor_of(
        self, kind: Kind, typed: str, given: str | None, name: str
    ) -> tuple[str | None, list[Problem]]:
        if given is not None:
            if kind.name in ("schools", "vendors", "contracts", "annotations"):
                return None, [Problem(name, None, None, given, f"--vendor does not apply to {kind.name} files")]
            known = self.con.execute("select count(*) from vendors where vendor_id = ?", [given]).fetchall()[0][0]
            if not known:
                return given, [Problem(name, None, "vendor_id", given, "unknown vendor (load it with --kind vendors)")]
            return given, []
        if kind.name == "roster":
            found = self.con.execute(f"select distinct vendor_id from {typed} where vendor_id is not null").fetchall()
        elif kind.name in VENDOR_KINDS:
            found = self.con.execute(
                f"select distinct s.vendor_id from {typed} as t inner join students as s on s.student_key = t.student_id"
            ).fetchall()
            if len(found) > 1:
                return None, [
                    Problem(
                        name,
                        None,
                        "student_id",
                        None,
                        "the students belong to several vendors: send one file per vendor, with --vendor",
                    )
                ]
        else:
            return None, []
        return (found[0][0] if len(found) == 1 else None), []

    def _period(self, kind: Kind, typed: str) -> tuple[date, date] | None:
        if kind.period_column is None:
            return None
        first, last = self.con.execute(
            f"select min({kind.period_column}), max({kind.period_column}) from {typed}"
        ).fetchall()[0]
        if first is None:
            return None  # no readable date; the checks say why
        cadence = self.con.execute("select cadence from submission_kinds where kind = ?", [kind.name]).fetchall()[0][0]
        if cadence == "weekly":
            return first - timedelta(days=first.weekday()), last - timedelta(days=last.weekday()) + timedelta(days=6)
        return first, last

    def _unload(self, kind: Kind, batch_id: int) -> None:
        if kind.name in RAW_TABLES:
            table = RAW_TABLES[kind.name][0]
            self.con.execute(
                f"insert into affected_{kind.name} select distinct student_key from {table} where batch_id = ?",
                [batch_id],
            )
            self.con.execute(f"delete from {table} where batch_id = ?", [batch_id])
        self.con.execute("update submissions set status = 'replaced' where batch_id = ?", [batch_id])

    def _insert(self, kind: Kind, typed: str, batch_id: int, vendor_id: str | None) -> None:
        con = self.con
        if kind.name in ("schools", "vendors"):
            key = kind.key[0]
            con.execute(f"insert or replace into {kind.name} select {key}, name, ? from {typed}", [batch_id])
        elif kind.name == "contracts":
            con.execute(
                f"""delete from contracts where (vendor_id, payment_metric, starts_on) in
                (select (vendor_id, payment_metric, starts_on) from {typed})"""
            )
            con.execute(
                f"""insert into contracts select vendor_id, payment_metric, threshold, base_per_student,
                outcome_per_student, cap, starts_on, ends_on, ? from {typed}""",
                [batch_id],
            )
            self.contracts_changed = True
            # The growth threshold decides met_growth_target, so its students' facts are redone.
            con.execute(
                f"""insert into affected_assessment select student_key from students
                where vendor_id in (select vendor_id from {typed})"""
            )
        elif kind.name == "annotations":
            con.execute(
                f"""delete from annotations where (starts_on, kind, title, coalesce(vendor_id, ''),
                coalesce(school_id, ''), coalesce(metric_id, '')) in (select (starts_on, kind, title,
                coalesce(vendor_id, ''), coalesce(school_id, ''), coalesce(metric_id, '')) from {typed})"""
            )
            con.execute(
                f"""insert into annotations select starts_on, coalesce(ends_on, starts_on), kind, title,
                description, vendor_id, school_id, metric_id, ? from {typed}""",
                [batch_id],
            )
        elif kind.name == "roster":
            con.execute(f"insert into affected_roster select student_id from {typed}")
            con.execute(
                f"""insert or replace into students select student_id, vendor_id, school_id, grade,
                race_ethnicity, gender, econ_disadvantaged, english_learner, special_education,
                baseline_band, enrolled_on, ? from {typed}""",
                [batch_id],
            )
        else:
            con.execute(f"insert into affected_{kind.name} select distinct student_id from {typed}")
            if kind.name == "sessions":
                con.execute(
                    f"""insert into sessions select t.student_id, s.vendor_id, t.session_date, t.tutor_id,
                    t.group_size, t.scheduled_minutes, t.attended_minutes, ?
                    from {typed} as t inner join students as s on s.student_key = t.student_id""",
                    [batch_id],
                )
            elif kind.name == "school_attendance":
                con.execute(
                    f"""insert into school_attendance select student_id, week_start, days_enrolled,
                    days_present, ? from {typed}""",
                    [batch_id],
                )
            elif kind.name == "assessment":
                con.execute(
                    f"""insert into assessments select student_id, school_year, "window", test_date,
                    scaled_score, sgp, proficient, ? from {typed}""",
                    [batch_id],
                )
            elif kind.name == "survey":
                con.execute(
                    f"""insert into survey_responses select t.student_id, s.vendor_id, t.response_date,
                    t.item, t.score, ? from {typed} as t inner join students as s on s.student_key = t.student_id""",
                    [batch_id],
                )

    def _contract_problems(self, typed: str, name: str) -> list[Problem]:
        rows = self.con.execute(
            f"""select t._row, c.vendor_id from {typed} as t
            inner join (
                select vendor_id, starts_on, ends_on from contracts group by all
                having count(distinct base_per_student) > 1 or count(distinct coalesce(cap, -1)) > 1
            ) as c using (vendor_id, starts_on, ends_on)
            order by t._row"""
        ).fetchall()
        return [
            Problem(
                name,
                row,
                "base_per_student",
                vendor,
                "every line of one contract (vendor, starts_on, ends_on) must have the same base_per_student and cap",
            )
            for row, vendor in rows
        ]

    # --- facts ---------------------------------------------------------------------------

    def derive(self) -> None:
        """Rebuild the facts of every student a loaded file touched, from the raw rows."""
        started = datetime.now()
        for kind in STUDENT_KINDS:
            if self.con.execute(f"select count(*) from affected_{kind}").fetchall()[0][0]:
                self.con.execute(f"create or replace temp table affected as select distinct student_key from affected_{kind}")
                metrics = [m for (m,) in self.con.execute("select metric_id from metrics where submitted_as = ?", [kind]).fetchall()]
                self.con.execute(
                    "delete from facts where metric_id in (select unnest(?)) and student_key in (select student_key from affected)",
                    [metrics],
                )
                self.con.execute(DERIVATIONS[kind], {"growth_target": self.settings.growth_target_sgp} if kind == "assessment" else None)
                if kind == "sessions":
                    self.con.execute("delete from student_dosage where student_key in (select student_key from affected)")
                    self.con.execute(STUDENT_DOSAGE)
        if self.contracts_changed or self.con.execute("select count(*) from affected_sessions").fetchall()[0][0]:
            self.con.execute(CONTRACT_SERVED)
        # A corrected roster moves a student's facts to their new school, grade or group.
        self.con.execute(
            """update facts set school_id = s.school_id, grade = s.grade, race_ethnicity = s.race_ethnicity,
                gender = s.gender, econ_disadvantaged = s.econ_disadvantaged,
                english_learner = s.english_learner, special_education = s.special_education,
                baseline_band = s.baseline_band
            from students as s
            where facts.student_key = s.student_key
              and s.student_key in (select student_key from affected_roster)"""
        )
        self.say(f"facts derived ({(datetime.now() - started).total_seconds():.2f} s)")


STUDENT_COLUMNS = (
    "s.student_key, s.vendor_id, s.school_id, s.grade, s.race_ethnicity, s.gender,"
    " s.econ_disadvantaged, s.english_learner, s.special_education, s.baseline_band"
)


def _facts_from(select_metric_rows: str) -> str:
    """Insert facts from rows (student_key, metric_id, period_start, value, denominator, batch_id)."""
    return f"""insert into facts
        select r.metric_id, r.period_start, {STUDENT_COLUMNS}, r.value, r.denominator, r.batch_id
        from ({select_metric_rows}) as r
        inner join students as s on s.student_key = r.student_key"""


DERIVATIONS = {
    "sessions": _facts_from(
        """
        with mine as (
            select * from sessions where student_key in (select student_key from affected)
        ),
        weekly as (
            select
                student_key,
                date_trunc('week', session_date)::date as period_start,
                count(*) as scheduled,
                count(*) filter (where attended_minutes > 0) as attended,
                sum(attended_minutes) as minutes,
                count(*) filter (where attended_minutes >= 30) as full_sessions,
                max(batch_id) as batch_id
            from mine
            group by all
        ),
        -- The most frequent tutor over all of a student's attended sessions; ties go to the
        -- lowest tutor id so that the answer does not depend on row order.
        tutor_counts as (
            select student_key, tutor_id, count(*) as sessions
            from mine where attended_minutes > 0
            group by all
        ),
        main_tutor as (
            select student_key, tutor_id
            from (
                select *, row_number() over (partition by student_key order by sessions desc, tutor_id) as place
                from tutor_counts
            )
            where place = 1
        ),
        consistency as (
            select
                m.student_key,
                date_trunc('week', m.session_date)::date as period_start,
                count(*) filter (where m.tutor_id = t.tutor_id) as with_main_tutor,
                count(*) as attended,
                max(m.batch_id) as batch_id
            from mine as m inner join main_tutor as t using (student_key)
            where m.attended_minutes > 0
            group by all
        )
        select student_key, 'tutoring_attendance_rate' as metric_id, period_start, attended::double as value,
               scheduled::double as denominator, batch_id from weekly
        union all
        select student_key, 'dosage_minutes', period_start, minutes, null, batch_id from weekly
        union all
        select student_key, 'dosage_met', period_start, (full_sessions >= 3)::int, null, batch_id from weekly
        union all
        select student_key, 'tutor_consistency', period_start, with_main_tutor, attended, batch_id from consistency
        """
    ),
    # Closed weeks (no days enrolled) carry no attendance to measure.
    "school_attendance": _facts_from(
        """
        select student_key, 'school_attendance_rate' as metric_id, week_start as period_start,
               days_present::double as value, days_enrolled::double as denominator, batch_id
        from school_attendance
        where student_key in (select student_key from affected) and days_enrolled > 0
        """
    ),
    "assessment": _facts_from(
        """
        with mine as (
            select a.*, date_trunc('week', a.test_date)::date as period_start, s.vendor_id
            from assessments as a inner join students as s using (student_key)
            where a.student_key in (select student_key from affected)
        ),
        -- The growth threshold is the SGP line of the vendor's rate card in force on the test date.
        thresholds as (
            select m.student_key, m.window_name, m.school_year, min(c.threshold) as threshold
            from mine as m
            inner join contracts as c
                on c.vendor_id = m.vendor_id and c.payment_metric in ('sgp', 'met_growth_target')
                and m.test_date between c.starts_on and c.ends_on
            group by all
        )
        select student_key, 'scaled_score' as metric_id, period_start, scaled_score as value,
               null as denominator, batch_id from mine
        union all
        select student_key, 'sgp', period_start, sgp, null, batch_id from mine where sgp is not null
        union all
        select student_key, 'proficient', period_start, proficient::int, null, batch_id from mine
        union all
        select m.student_key, 'met_growth_target', m.period_start,
               (m.sgp >= coalesce(t.threshold, $growth_target))::int, null, m.batch_id
        from mine as m left join thresholds as t using (student_key, window_name, school_year)
        where m.sgp is not null
        """
    ),
    "survey": _facts_from(
        """
        select student_key, item as metric_id, date_trunc('week', response_date)::date as period_start,
               avg(score) as value, null as denominator, max(batch_id) as batch_id
        from survey_responses
        where student_key in (select student_key from affected)
        group by all
        """
    ),
}

# Rebuilt whole when sessions or contracts change: one pass over the sessions at ingest
# saves every payments query that pass.
CONTRACT_SERVED = """
delete from contract_served;
insert into contract_served
select c.vendor_id, c.starts_on, s.student_key, min(s.session_date)
from (select distinct vendor_id, starts_on, ends_on from contracts) as c
inner join sessions as s
    on s.vendor_id = c.vendor_id and s.session_date between c.starts_on and c.ends_on and s.attended_minutes > 0
group by all
"""

STUDENT_DOSAGE = """
insert into student_dosage
select student_key, count(*) as weeks, sum(value)::integer as weeks_met, avg(value) as share_met
from facts
where metric_id = 'dosage_met' and student_key in (select student_key from affected)
group by student_key
"""
