"""DuckDB extensions, loaded offline from the Python packages that ship them.

`INSTALL ducklake` downloads from DuckDB's extension server, which a district's server may not
reach (nor can this project's machines). The extensions come instead as wheels pinned in
pyproject.toml (duckdb-extension-ducklake and friends), each holding the built
`.duckdb_extension` file for exactly one DuckDB version; `LOAD '<that file>'` needs no network.

Load every extension a statement needs before running it: DuckLake on a SQLite or PostgreSQL
catalog needs `sqlite_scanner` or `postgres_scanner` too, and DuckDB would otherwise try to
install them from the network itself.
"""

import threading
from importlib import resources
from pathlib import Path

import duckdb

# extension name -> (import name of the package holding it, its name on the package index)
PACKAGES = {
    "ducklake": ("duckdb_extension_ducklake", "duckdb-extension-ducklake"),
    "sqlite_scanner": ("duckdb_extension_sqlite_scanner", "duckdb-extension-sqlite-scanner"),
    "postgres_scanner": ("duckdb_extension_postgres_scanner", "duckdb-extension-postgres-scanner"),
}


# The extension files this process has had DuckDB check, as they were then (inode, size, mtime).
_checked: dict[Path, tuple[int, int, int]] = {}
_checked_lock = threading.Lock()


class ExtensionMissing(RuntimeError):
    """An extension's package is not installed, or was built for another DuckDB."""


def path(name: str) -> Path:
    """The `.duckdb_extension` file of `name` built for the DuckDB installed here."""
    if name not in PACKAGES:
        raise ValueError(f"unknown DuckDB extension {name!r}: expected one of {', '.join(PACKAGES)}")
    module, distribution = PACKAGES[name]
    install = f"pip install {distribution}=={duckdb.__version__} (pip install -e . installs it)"
    try:
        folder = resources.files(module) / "extensions"
    except ModuleNotFoundError:
        raise ExtensionMissing(
            f"DuckDB extension {name!r} needs the Python package {distribution}, which is not installed: {install}"
        ) from None
    wanted = folder / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not wanted.is_file():
        built_for = sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []
        raise ExtensionMissing(
            f"DuckDB extension {name!r}: the installed {distribution} has no build for DuckDB "
            f"{duckdb.__version__} (it has {', '.join(built_for) or 'none'}): {install}"
        )
    return Path(str(wanted))


def load(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Load each named extension into `con` from its package's file, without the network."""
    for name in names:
        file = path(name)
        # LOAD takes no bound parameter; the path is ours (site-packages), quotes doubled all the same.
        con.execute(f"load '{str(file).replace(chr(39), chr(39) * 2)}'")


def connect(*names: str, **config: str) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with each named extension loaded.

    DuckDB checks an extension's signature on every load by hashing its whole file: some 35 MB
    each, 0.07 s, so 0.14 s for each new lake connection. The first load of a file in this
    process is checked; a later connection loads the same file unchecked while it is unchanged
    (same inode, size and modification time). That check guards files fetched from the network;
    these come in wheels beside DuckDB's own library, which nothing checks. A connection opened
    unchecked can load any extension: this project's connections run only its own statements."""
    files = [path(name) for name in names]
    with _checked_lock:
        checked = all(_checked.get(file) == _identity(file) for file in files)
    con = duckdb.connect(":memory:", config={**config, **({"allow_unsigned_extensions": "true"} if checked else {})})
    try:
        load(con, *names)
    except BaseException:
        con.close()
        raise
    if not checked:
        with _checked_lock:
            _checked.update({file: _identity(file) for file in files})
    return con


def _identity(file: Path) -> tuple[int, int, int]:
    status = file.stat()
    return status.st_ino, status.st_size, status.st_mtime_ns
