"""Reading a sent file into a staging table: CSV (any common delimiter), Excel or Parquet, as
text columns by position, each row numbered as a spreadsheet shows it. A row that cannot be
read is a problem of its own; a file that cannot be read at all raises FileUnreadable.
"""

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa

from ciboard.kinds import MAX_PROBLEMS, Problem, more_problems


class FileUnreadable(Exception):
    """A file that cannot be read at all. The message says why, for the sender: no paths."""


NOT_UTF8 = 'is not text in UTF-8 (from Excel, save it as "CSV UTF-8")'
NOT_EXCEL = "is not an Excel workbook that can be read: save it again from Excel as .xlsx, or as CSV"
NOT_PARQUET = "is not a Parquet file that can be read"
CSV_DELIMITERS = (",", "\t", ";", "|")
BATCH_ROWS = 50_000  # rows handed to DuckDB at a time when a file is read row by row


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
        problems.append(more_problems(name, unreadable, unreadable))
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
