"""DuckDB extensions, loaded offline from the Python packages that ship them.

`INSTALL ducklake` downloads from DuckDB's extension server, which a district's server may not
reach (nor can this project's machines). The extensions come instead as wheels pinned in
pyproject.toml (duckdb-extension-ducklake and friends), each holding the built
`.duckdb_extension` file for exactly one DuckDB version; `LOAD '<that file>'` needs no network.

Load every extension a statement needs before running it: DuckLake on a SQLite or PostgreSQL
catalog needs `sqlite_scanner` or `postgres_scanner` too, and DuckDB would otherwise try to
install them from the network itself.
"""

from importlib import resources
from pathlib import Path

import duckdb

# extension name -> (import name of the package holding it, its name on the package index)
PACKAGES = {
    "ducklake": ("duckdb_extension_ducklake", "duckdb-extension-ducklake"),
    "sqlite_scanner": ("duckdb_extension_sqlite_scanner", "duckdb-extension-sqlite-scanner"),
    "postgres_scanner": ("duckdb_extension_postgres_scanner", "duckdb-extension-postgres-scanner"),
}


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
