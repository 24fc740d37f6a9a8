"""Ingest: raw submission files in, validated, turned into tidy facts, published whole or not at all.

A command may carry several files (the demo loads a year at once). They are checked in
order against the warehouse as the earlier files leave it, so a roster and the sessions of
its students can arrive together. If any file has a problem, nothing of the command lands:
the rejected files are recorded in the submission log with every problem found, and the
facts stay exactly as they were.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

# --- what each kind of file holds ------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # varchar | integer | double | date | boolean
    required: bool = True


@dataclass(frozen=True)
class Check:
    """A rule on typed columns: `ok` is SQL over the staged row that is true when the row is fine."""

    column: str
    ok: str
    reason: str


@dataclass(frozen=True)
class Kind:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    period_column: str | None = None  # the dates that say which period a file covers
    data_dates: tuple[str, ...] = ()  # dates that must lie in a school year and not in the future
    year_dates: tuple[str, ...] = ()  # dates that must lie in a school year


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
                Column("base_per_student", "double"),
                Column("outcome_per_student", "double"),
                Column("cap", "double", required=False),
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
                Check("vendor_id", "vendor_id in (select vendor_id from known_vendors)", "unknown vendor_id"),
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
                    "not exists (select 1 from students as s where s.student_key = student_id"
                    " and s.vendor_id <> staged.vendor_id)",
                    "is already on another vendor's roster",
                ),
            ),
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
                    "\"window\" is null or \"window\" = (select w.window_name from calendar_weeks as w"
                    " where w.week_start = date_trunc('week', test_date)::date)",
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

# Where each kind's rows land, and the key that finds a row already loaded.
RAW_TABLES = {
    "sessions": ("sessions", "student_key, session_date, tutor_id"),
    "school_attendance": ("school_attendance", "student_key, week_start"),
    "assessment": ("assessments", "student_key, window_name, school_year"),
    "survey": ("survey_responses", "student_key, response_date, item"),
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

    def __str__(self) -> str:
        where = f"{self.file}" + (f", row {self.row}" if self.row is not None else "")
        what = f"{self.column}" + (f" = {self.value!r}" if self.value is not None else "") if self.column else ""
        return f"{where}: {what + ': ' if what else ''}{self.reason}"


@dataclass(frozen=True)
class Submission:
    path: Path
    kind: str
    vendor_id: str | None = None
    received_at: datetime | None = None


@dataclass
class Outcome:
    file: str
    kind: str
    status: str  # accepted | rejected | unchanged | not loaded
    batch_id: int | None = None
    vendor_id: str | None = None
    rows: int = 0
    period: tuple[date, date] | None = None
    replaced_batch_id: int | None = None
    problems: list[Problem] = field(default_factory=list)


class IngestRejected(Exception):
    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        self.problems = [p for o in outcomes for p in o.problems]
        rejected = [o.file for o in outcomes if o.status == "rejected"]
        super().__init__(
            f"{len(rejected)} file(s) rejected with {len(self.problems)} problem(s); nothing was loaded: "
            + ", ".join(rejected)
        )


Progress = Callable[[str], None]


# --- reading a file into a staging table ------------------------------------------------


class FileUnreadable(Exception):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stage(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[list[str], list[Problem]]:
    """Load a file into `table` as columns c0..cN plus `_row` (its row number as a spreadsheet shows it).

    Returns the file's header names, in column order, and the rows that could not be parsed.
    Header text never reaches SQL: columns are referred to by position.
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return _stage_csv(con, path, table)
    if suffix == ".parquet":
        frame = pq.read_table(path)
        headers = list(frame.column_names)
        frame = frame.rename_columns([f"c{i}" for i in range(len(headers))])
        frame = frame.append_column("_row", pa.array(range(1, frame.num_rows + 1), pa.int64()))
    elif suffix in (".xlsx", ".xlsm"):
        sheet = pd.read_excel(path, dtype=object, engine="openpyxl")
        headers = [str(h) for h in sheet.columns]
        sheet.columns = [f"c{i}" for i in range(len(headers))]
        sheet = sheet.map(_excel_cell_text).astype("string")
        # Row 1 of the sheet is the header, so data row k is spreadsheet row k + 1.
        sheet["_row"] = range(2, len(sheet) + 2)
        frame = pa.Table.from_pandas(sheet, preserve_index=False)
    else:
        raise FileUnreadable(f"unsupported file type {suffix or '(none)'}: use .csv, .parquet or .xlsx")
    con.register(f"{table}_arrow", frame)
    con.execute(f"create or replace temp table {table} as select * from {table}_arrow")
    con.unregister(f"{table}_arrow")
    return headers, []


def _excel_cell_text(cell: object) -> str | None:
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return None
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == datetime.min.time() else cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[list[str], list[Problem]]:
    # header=false keeps the header as the first row, so a row's number is its line in the file.
    try:
        con.execute(
            f"""create or replace temp table {table}_lines as
            select *, row_number() over () as _line
            from read_csv(?, header = false, all_varchar = true, store_rejects = true,
                          rejects_table = '{table}_rejects', rejects_scan = '{table}_rejects_scan')""",
            [str(path)],
        )
    except duckdb.Error as error:
        raise FileUnreadable(f"not a readable CSV file: {str(error).splitlines()[0]}") from None
    rejects = con.execute(
        f"select line, error_message, csv_line from {table}_rejects order by line"
    ).fetchall()
    first = con.execute(f"select * exclude (_line) from {table}_lines where _line = 1")
    columns = [d[0] for d in first.description]
    header_row = first.fetchall()
    if not header_row:
        raise FileUnreadable("the file is empty")
    headers = ["" if h is None else str(h) for h in header_row[0]]
    if rejects:
        # Rows the parser rejected are not in the table: number the good rows by the lines left.
        bad = {line for line, _, _ in rejects}
        lines = [line for line in range(1, con.execute(f"select count(*) from {table}_lines").fetchall()[0][0] + len(bad) + 1) if line not in bad]
        numbers = pa.table({"_line": pa.array(range(1, len(lines) + 1), pa.int64()), "_row": pa.array(lines, pa.int64())})
        con.register(f"{table}_numbers", numbers)
        row_expr, join = "n._row", f"join {table}_numbers as n using (_line)"
    else:
        row_expr, join = "_line", ""
    con.execute(
        f"create or replace temp table {table} as select "
        + ", ".join(f'{col} as c{i}' for i, col in enumerate(columns))
        + f", {row_expr} as _row from {table}_lines {join} where {row_expr} > 1"
    )
    problems = [
        Problem(path.name, int(line), None, (raw or "")[:200], f"row cannot be read: {message}")
        for line, message, raw in rejects
    ]
    return headers, problems


# --- checking a staged file -------------------------------------------------------------


def _typed(column: Column, source: str) -> str:
    text = f"nullif(trim({source}::varchar), '')"
    if column.type == "varchar":
        return text
    if column.type == "double":
        return f"try_cast({text} as double)"
    if column.type == "integer":
        # A whole number only: a cast would silently round 3.5 to 4.
        return f"case when try_cast({text} as double) = floor(try_cast({text} as double)) then try_cast({text} as double)::bigint end"
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
        con.execute(
            f"""create or replace temp table {typed} as
            select t.*, w.school_year from {typed} as t
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
    as already loaded.
    """
    checks: list[tuple[str, str, str]] = []  # (column, condition true on a bad row, reason)
    for c in kind.columns:
        if c.required:
            checks.append((c.name, f"{c.name}__raw is null or trim({c.name}__raw) = ''", "is required"))
        checks.append(
            (c.name, f'"{c.name}" is null and trim(coalesce({c.name}__raw, \'\')) <> \'\'', f"is not {TYPE_HELP[c.type]}")
        )
    for check in kind.checks:
        checks.append((check.column, f'"{check.column}" is not null and not coalesce({check.ok}, false)', check.reason))
    for column in kind.data_dates:
        checks.append((column, f"{column} > today", "is in the future"))
    for column in kind.data_dates + kind.year_dates:
        checks.append(
            (
                column,
                f"{column} is not null and not exists (select 1 from school_years as y"
                f" where {column} between y.starts_on and y.ends_on)",
                "is outside every school year of the warehouse (add one with 'ciboard init --school-year')",
            )
        )
    if kind.name in STUDENT_KINDS:
        checks.append(
            ("student_id", "student_id not in (select student_key from students)", "is not on any roster")
        )
        if vendor_id is not None:
            checks.append(
                (
                    "student_id",
                    "student_id in (select student_key from students where vendor_id <> submitting_vendor)",
                    "is on another vendor's roster",
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

    context = "(select $vendor::varchar as submitting_vendor, $today::date as today) as context"
    # Every row check in one pass over the file: each row collects the problems it has.
    found = ",\n".join(
        f"case when {condition} then {{'column_name': '{column}', 'value': {column}__raw,"
        f" 'reason': '{reason.replace(chr(39), chr(39) * 2)}'}} end"
        for column, condition, reason in checks
    )
    queries = [
        f"""select _row, problem.column_name, problem.value, problem.reason
        from (
            select _row, unnest(list_filter([{found}], lambda p: p is not null)) as problem
            from {typed} as staged, {context}
        )"""
    ]
    key_list = ", ".join(f'"{k}"' for k in kind.key)
    key_text = " || ', ' || ".join(f"coalesce(\"{k}\"::varchar, '')" for k in kind.key)
    required_keys = [k for k in kind.key if k == "school_year" or any(c.name == k and c.required for c in kind.columns)]
    queries.append(
        f"""select _row, '{kind.key[0]}', {key_text}, 'repeats the key ({", ".join(kind.key)}) of row ' || first_row
        from (select *, min(_row) over (partition by {key_list}) as first_row from {typed}) as staged, {context}
        where _row <> first_row and {' and '.join(f'"{k}" is not null' for k in required_keys)}"""
    )
    if kind.name in RAW_TABLES:
        raw_table, raw_key = RAW_TABLES[kind.name]
        staged_key = ", ".join("staged." + k for k in STAGED_KEYS[kind.name].split(", "))
        loaded_key = ", ".join("loaded." + k for k in raw_key.split(", "))
        queries.append(
            f"""select staged._row, '{kind.key[0]}', {key_text.replace('coalesce("', 'coalesce(staged."')},
                'was already loaded in batch ' || loaded.batch_id || ' (' || coalesce(log.file_name, '?') || ')'
            from {typed} as staged
            inner join {raw_table} as loaded on ({loaded_key}) = ({staged_key})
            left join submissions as log on log.batch_id = loaded.batch_id, {context}
            where loaded.batch_id not in (select batch_id from replacing)"""
        )
    rows = con.execute(
        " union all ".join(queries) + " order by 1, 2", {"today": today, "vendor": vendor_id}
    ).fetchall()
    return [Problem(file_name, row, column, value, reason) for row, column, value, reason in rows]


# --- loading -------------------------------------------------------------------------------


def ingest(
    warehouse: Warehouse,
    submissions: list[Submission],
    *,
    progress: Progress | None = None,
    today: date | None = None,
) -> list[Outcome]:
    """Check, load and publish `submissions` as one new warehouse version, or raise IngestRejected.

    On rejection the new version holds only the rejection records; no row of any file lands.
    A command whose every file was loaded before publishes nothing.
    """
    today = today or date.today()
    say = progress or (lambda message: None)
    for submission in submissions:
        if submission.kind not in KINDS:
            raise ValueError(f"unknown kind {submission.kind!r}; the kinds are {', '.join(KINDS)}")
    hashes = [sha256_of(s.path) for s in submissions]
    if warehouse.exists() and _all_loaded_before(warehouse, submissions, hashes):
        say("every file was loaded before; nothing to do")
        return [Outcome(s.path.name, s.kind, "unchanged") for s in submissions]

    with warehouse.publish() as con:
        con.execute("begin")
        loader = Loader(con, warehouse.settings, today, say)
        outcomes = [loader.load(s, h) for s, h in zip(submissions, hashes)]
        rejected = [o for o in outcomes if o.status == "rejected"]
        if rejected:
            con.execute("rollback")
            con.execute("begin")
            for outcome, submission, digest in zip(outcomes, submissions, hashes):
                if outcome.status == "rejected":
                    loader.record_rejection(outcome, submission, digest)
                elif outcome.status == "accepted":
                    outcome.status, outcome.batch_id = "not loaded", None
            con.execute("commit")
        else:
            loader.derive()
            con.execute("commit")
    if rejected:
        raise IngestRejected(outcomes)
    return outcomes


def _all_loaded_before(warehouse: Warehouse, submissions: list[Submission], hashes: list[str]) -> bool:
    with warehouse.cursor() as cur:
        loaded = {
            (kind, digest)
            for kind, digest in cur.execute(
                "select kind, content_sha256 from submissions where status <> 'rejected'"
            ).fetchall()
        }
    return all((s.kind, h) in loaded for s, h in zip(submissions, hashes))


class Loader:
    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, today: date, say: Progress):
        self.con = con
        self.settings = settings
        self.today = today
        self.say = say
        self.next_batch = con.execute("select coalesce(max(batch_id), 0) + 1 from submissions").fetchall()[0][0]
        self.seen: dict[tuple[str, str], int] = {}
        self.contracts_changed = False
        for name in ("sessions", "school_attendance", "assessment", "survey", "roster"):
            con.execute(f"create or replace temp table affected_{name} (student_key varchar)")
        con.execute("create or replace temp table replacing (batch_id integer)")

    def _batch_id(self) -> int:
        self.next_batch += 1
        return self.next_batch - 1

    def load(self, submission: Submission, digest: str) -> Outcome:
        kind = KINDS[submission.kind]
        name = submission.path.name
        outcome = Outcome(name, kind.name, "rejected", vendor_id=submission.vendor_id)
        earlier = self.con.execute(
            "select batch_id from submissions where kind = ? and content_sha256 = ? and status <> 'rejected'",
            [kind.name, digest],
        ).fetchall()
        if earlier or (kind.name, digest) in self.seen:
            outcome.status = "unchanged"
            outcome.batch_id = earlier[0][0] if earlier else self.seen[(kind.name, digest)]
            self.say(f"{name}: identical to batch {outcome.batch_id}, already loaded")
            return outcome

        started = datetime.now()
        stage_table = "staged"
        try:
            headers, outcome.problems = stage(self.con, submission.path, stage_table)
        except (FileUnreadable, OSError, ValueError, pa.ArrowException) as error:
            outcome.problems = [Problem(name, None, None, None, str(error))]
            return outcome
        outcome.rows = self.con.execute(f"select count(*) from {stage_table}").fetchall()[0][0] + len(outcome.problems)
        self.say(f"{name}: read {outcome.rows:,} rows as {kind.name}")
        typed, problems = type_rows(self.con, kind, stage_table, headers, name)
        outcome.problems += problems
        if typed is None or problems:
            return outcome

        vendor_id, problems = self._vendor_of(kind, typed, submission.vendor_id, name)
        outcome.vendor_id = vendor_id
        outcome.problems += problems
        outcome.period = self._period(kind, typed)
        self.con.execute("delete from replacing")
        if outcome.period is not None:
            self.con.execute(
                """insert into replacing select batch_id from submissions
                where kind = ? and vendor_id is not distinct from ? and period_start = ? and period_end = ?
                  and status = 'accepted'""",
                [kind.name, vendor_id, *outcome.period],
            )
        replaced = [row[0] for row in self.con.execute("select batch_id from replacing").fetchall()]
        outcome.problems += find_problems(self.con, kind, typed, name, vendor_id, self.today)
        if outcome.problems:
            self.say(f"{name}: {len(outcome.problems):,} problem(s)")
            return outcome

        outcome.batch_id = self._batch_id()
        outcome.replaced_batch_id = replaced[0] if replaced else None
        for batch in replaced:
            self._unload(kind, batch)
        self._insert(kind, typed, outcome.batch_id, vendor_id)
        if kind.name == "contracts":
            outcome.problems += self._contract_problems(typed, name)
            if outcome.problems:
                return outcome
        due_days = self.con.execute("select due_days from submission_kinds where kind = ?", [kind.name]).fetchall()[0][0]
        self.con.execute(
            "insert into submissions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'accepted', ?)",
            [
                outcome.batch_id,
                kind.name,
                vendor_id,
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
        self.seen[(kind.name, digest)] = outcome.batch_id
        outcome.status = "accepted"
        seconds = (datetime.now() - started).total_seconds()
        self.say(
            f"{name}: loaded {outcome.rows:,} rows as batch {outcome.batch_id}"
            + (f", replacing batch {outcome.replaced_batch_id}" if replaced else "")
            + f" ({seconds:.2f} s)"
        )
        return outcome

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

    def record_rejection(self, outcome: Outcome, submission: Submission, digest: str) -> None:
        outcome.batch_id = self._batch_id()
        self.con.execute(
            "insert into submissions values (?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, 0, ?, 'rejected', null)",
            [
                outcome.batch_id,
                outcome.kind,
                outcome.vendor_id,
                outcome.file,
                digest,
                *(outcome.period or (None, None)),
                submission.received_at or datetime.now(),
                datetime.now(),
                outcome.rows,
                len({p.row for p in outcome.problems}) if outcome.rows else 0,
            ],
        )
        frame = pa.table(
            {
                "batch_id": pa.array([outcome.batch_id] * len(outcome.problems), pa.int32()),
                "row_number": pa.array([p.row for p in outcome.problems], pa.int64()),
                "column_name": pa.array([p.column for p in outcome.problems], pa.string()),
                "value": pa.array([p.value for p in outcome.problems], pa.string()),
                "reason": pa.array([p.reason for p in outcome.problems], pa.string()),
            }
        )
        self.con.register("rejection_problems", frame)
        self.con.execute("insert into submission_errors select * from rejection_problems")
        self.con.unregister("rejection_problems")

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
