"""What the app writes (accounts, the audit log, meetings and their history) in one SQLite
file beside the warehouse.

Not in the warehouse: every ingest publishes a new warehouse file and never edits a published
one, and DuckDB lets one process write a file while blocking every other open of it. The
dashboard and the CLI both write these small records, sometimes at once; SQLite (in the
standard library) takes concurrent writers from several processes with write-ahead logging
and a busy timeout, and an ingest never touches this file.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ciboard.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "app"
BUSY_TIMEOUT_SECONDS = 30


class AppDB:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._migrated = False

    @classmethod
    def of(cls, settings: Settings) -> "AppDB":
        return cls(settings.app_db_path)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading; rows read as sqlite3.Row (by name)."""
        self.migrate()
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write that lands whole or not at all. `begin immediate` takes the write lock at
        the start, so a read-then-write (a version check before a save) cannot interleave."""
        with self.connect() as con:
            con.execute("begin immediate")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("pragma foreign_keys = on")
        return con

    def migrate(self) -> list[int]:
        """Applies the numbered files of sql/app/ not applied yet, each in its own transaction."""
        if self._migrated:
            return []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open()
        try:
            con.execute("pragma journal_mode = wal")
            con.execute(
                "create table if not exists schema_migrations"
                " (number integer primary key, name text not null, applied_at text not null default current_timestamp)"
            )
            # Off for the whole migration, as SQLite's guide to rebuilding a table asks (a table
            # dropped to be rebuilt would otherwise take its references' rows with it); the keys
            # are checked before the migration commits instead.
            con.execute("pragma foreign_keys = off")
            con.execute("begin immediate")
            try:
                done = {n for (n,) in con.execute("select number from schema_migrations")}
                applied = []
                for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
                    number, _, name = path.stem.partition("_")
                    if int(number) in done:
                        continue
                    for statement in _statements(path.read_text()):
                        con.execute(statement)
                    con.execute("insert into schema_migrations (number, name) values (?, ?)", [int(number), name])
                    applied.append(int(number))
                broken = con.execute("pragma foreign_key_check").fetchall()
                if broken:
                    raise sqlite3.IntegrityError(f"a migration broke {len(broken)} foreign key(s): {[tuple(r) for r in broken]}")
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")
        finally:
            con.close()
        self._migrated = True
        return applied


def _statements(script: str) -> list[str]:
    """A migration's statements; sqlite3's executescript would commit the open transaction."""
    statements, current = [], []
    for line in script.splitlines(keepends=True):
        current.append(line)
        if sqlite3.complete_statement("".join(current)):
            statements.append("".join(current).strip())
            current = []
    if "".join(current).strip():
        statements.append("".join(current).strip())
    return [s for s in statements if s and not all(l.strip().startswith("--") or not l.strip() for l in s.splitlines())]
