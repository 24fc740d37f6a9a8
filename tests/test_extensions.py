"""DuckDB's extensions load from their wheels, offline, and DuckLake works on a SQLite catalog."""

from pathlib import Path

import duckdb
import pytest

from ciboard import extensions


def offline_connection() -> duckdb.DuckDBPyConnection:
    # With automatic install and load off, an extension is loaded by our LOAD or not at all.
    return duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})


def loaded_extensions(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("select extension_name from duckdb_extensions() where loaded").fetchall()}


@pytest.mark.parametrize("name", sorted(extensions.PACKAGES))
def test_each_extension_loads_on_a_fresh_connection(name):
    con = offline_connection()
    assert name not in loaded_extensions(con)
    extensions.load(con, name)
    assert name in loaded_extensions(con)


def test_loading_again_is_harmless():
    con = offline_connection()
    extensions.load(con, "ducklake")
    extensions.load(con, "ducklake", "sqlite_scanner")
    assert {"ducklake", "sqlite_scanner"} <= loaded_extensions(con)


def test_an_unknown_extension_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown DuckDB extension 'spatial'"):
        extensions.load(offline_connection(), "spatial")


def test_a_missing_package_is_named_with_how_to_install_it(monkeypatch):
    monkeypatch.setitem(extensions.PACKAGES, "ducklake", ("no_such_package_here", "duckdb-extension-ducklake"))
    with pytest.raises(extensions.ExtensionMissing) as refused:
        extensions.load(offline_connection(), "ducklake")
    message = str(refused.value)
    assert "duckdb-extension-ducklake" in message
    assert "not installed" in message
    assert f"pip install duckdb-extension-ducklake=={duckdb.__version__}" in message


def test_a_package_built_for_another_duckdb_says_which_builds_it_has(monkeypatch):
    installed = duckdb.__version__
    monkeypatch.setattr(duckdb, "__version__", "9.9.9")
    with pytest.raises(extensions.ExtensionMissing, match=rf"no build for DuckDB 9\.9\.9 \(it has v{installed}\)"):
        extensions.path("ducklake")


def test_a_ducklake_on_a_sqlite_catalog_keeps_its_older_snapshots(tmp_path: Path):
    con = offline_connection()
    extensions.load(con, "ducklake", "sqlite_scanner")
    catalog, data = tmp_path / "catalog.sqlite", tmp_path / "data"
    # Inlining off: the rows go to Parquet files under the data path, as a warehouse's would.
    con.execute(f"attach 'ducklake:sqlite:{catalog}' as lake (data_path '{data}/', data_inlining_row_limit 0)")
    con.execute("create table lake.scores (student_key varchar, value double)")
    con.execute("insert into lake.scores values ('S1', 200.5), ('S2', 210.0)")
    first = con.execute("select max(snapshot_id) from lake.snapshots()").fetchone()[0]
    con.execute("update lake.scores set value = 0 where student_key = 'S1'")
    con.execute("insert into lake.scores values ('S3', 190.0)")
    con.execute("detach lake")

    reader = offline_connection()
    extensions.load(reader, "ducklake", "sqlite_scanner")
    reader.execute(f"attach 'ducklake:sqlite:{catalog}' as lake (read_only)")
    now = reader.execute("select student_key, value from lake.scores order by student_key").fetchall()
    then = reader.execute(
        "select student_key, value from lake.scores at (version => ?) order by student_key", [first]
    ).fetchall()
    assert now == [("S1", 0.0), ("S2", 210.0), ("S3", 190.0)]
    assert then == [("S1", 200.5), ("S2", 210.0)]
    assert list(data.rglob("*.parquet")), "the rows were written as Parquet under the data path"


def test_a_file_is_checked_on_its_first_load_and_again_whenever_it_changed(monkeypatch, tmp_path: Path):
    # A copy of the DuckLake build only this test uses, so no other test's load counts as its first.
    copy = tmp_path / "ducklake.duckdb_extension"
    copy.write_bytes(extensions.path("ducklake").read_bytes())
    monkeypatch.setattr(extensions, "path", lambda name: copy)

    def checks_signatures(con: duckdb.DuckDBPyConnection) -> bool:
        return not con.execute("select current_setting('allow_unsigned_extensions')").fetchall()[0][0]

    first, second = extensions.connect("ducklake"), extensions.connect("ducklake")
    assert checks_signatures(first) and not checks_signatures(second)
    assert "ducklake" in loaded_extensions(second)

    built = bytearray(copy.read_bytes())
    built[len(built) // 2] ^= 0xFF  # one byte of the code changed; the metadata at the end is intact
    # Written beside it and moved over it, as pip would: this process maps the file it loaded.
    (tmp_path / "changed").write_bytes(bytes(built))
    (tmp_path / "changed").replace(copy)
    with pytest.raises(duckdb.Error, match="signature"):
        extensions.connect("ducklake")
