"""Where a lake is and how a connection reaches it: its catalog (PostgreSQL or a SQLite file), its
data files, the names of its snapshots, the statement that attaches it at one of them, and the
tables a snapshot has. The lake (ciboard.lake) and the read copies (ciboard.read_copies) both
stand on this."""

import re
from pathlib import Path

import duckdb

from ciboard import extensions
from ciboard.settings import Settings

PREFIX = "lake-"
LAKE = "lake"


class LakeError(RuntimeError):
    """The lake cannot do what was asked: a catalog URL it does not know, a move into a lake that
    has a warehouse, another process's write while this one staged."""


def lake_ddl(sql: str) -> str:
    """A migration as DuckLake takes it: without PRIMARY KEY, UNIQUE and CHECK constraints,
    which it refuses. The ingest's checks hold what those constraints held (a file with a
    duplicate key or a value outside a list is rejected before anything is written)."""
    sql = re.sub(r",([ \t]*--[^\n]*)?\s*(primary\s+key|unique)\s*\([^)]*\)", r"\1", sql, flags=re.IGNORECASE)
    sql = re.sub(r"\s+(primary\s+key|unique)\b(?!\s*\()", "", sql, flags=re.IGNORECASE)
    out, i = [], 0
    for match in re.finditer(r"\s+check\s*\(", sql, flags=re.IGNORECASE):
        if match.start() < i:
            continue
        out.append(sql[i:match.start()])
        depth, j = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[j], 0)
            j += 1
        i = j
    out.append(sql[i:])
    return "".join(out)


def attach_sql(settings: Settings, alias: str, *, read_only: bool, snapshot: int | None = None, create: bool = False) -> str:
    """The data path is this server's (CIBOARD_LAKE_PATH), whatever the catalog recorded when the
    lake was made (`create`): each server may mount the shared folder where it likes."""
    options = ["data_inlining_row_limit 0", f"data_path {literal(str(lake_files(settings)) + '/')}"]
    if not create:
        options.append("override_data_path true")
    if read_only:
        options.append("read_only")
    if snapshot is not None:
        options.append(f"snapshot_version {int(snapshot)}")
    return f"attach {literal('ducklake:' + catalog(settings))} as {alias} ({', '.join(options)})"


def catalog(settings: Settings) -> str:
    """DuckLake's name for the catalog database: 'sqlite:<file>' or 'postgres:<connection string>'."""
    url = settings.catalog_url or f"sqlite:{settings.local_catalog}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgres:" + url
    if url.startswith("sqlite:"):
        return "sqlite:" + url.removeprefix("sqlite:").removeprefix("//")
    raise LakeError(f"CIBOARD_CATALOG_URL must start with postgresql:// or sqlite:, not {url!r}")


def lake_files(settings: Settings) -> Path:
    return settings.lake_dir / "data"


def number(version: str) -> int:
    if not version.startswith(PREFIX) or not version.removeprefix(PREFIX).isdigit():
        raise LakeError(f"{version!r} is not a lake snapshot id")
    return int(version.removeprefix(PREFIX))


def version_name(snapshot: int) -> str:
    return f"{PREFIX}{snapshot:06d}"


def connect(settings: Settings, **config) -> duckdb.DuckDBPyConnection:
    scanner = "postgres_scanner" if catalog(settings).startswith("postgres:") else "sqlite_scanner"
    return extensions.connect("ducklake", scanner, **{"memory_limit": settings.memory_limit, **config})


def literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def lake_tables(con: duckdb.DuckDBPyConnection, alias: str, snapshot: int) -> dict[str, bool]:
    """The lake's tables at `snapshot`, each with whether it holds any rows, from DuckLake's own
    catalog tables (its specification's `ducklake_table` and `ducklake_data_file`): asking
    DuckDB's catalog functions instead reads every table's metadata."""
    return dict(con.execute(
        f"""select t.table_name, count(f.data_file_id) > 0 or count(i.table_id) > 0
        from __ducklake_metadata_{alias}.ducklake_table as t
        left join __ducklake_metadata_{alias}.ducklake_data_file as f
            on f.table_id = t.table_id and f.begin_snapshot <= $1 and (f.end_snapshot is null or f.end_snapshot > $1)
        left join __ducklake_metadata_{alias}.ducklake_inlined_data_tables as i on i.table_id = t.table_id
        where t.begin_snapshot <= $1 and (t.end_snapshot is null or t.end_snapshot > $1)
        group by t.table_name order by 1""",
        [snapshot],
    ).fetchall())


def read_all(source: str, table: str, holds_rows: bool) -> str:
    """SQL reading every row of a lake's table. DuckLake 1.5.5 takes some 2 ms a column to scan a
    table that has no data file at all (50 ms for one of 20 columns, against 4 ms for a table of 15
    columns with rows); an empty table is read as its columns alone."""
    return f'select * from {source}."{table}"' + ("" if holds_rows else " limit 0")


def tables_of(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    """A database's own tables, not the connection's temp tables (SHOW TABLES lists those too)."""
    return [table for (table,) in con.execute(
        "select table_name from duckdb_tables() where database_name = ? and not temporary order by 1", [database]
    ).fetchall()]
