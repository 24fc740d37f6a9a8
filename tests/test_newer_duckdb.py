"""A data folder written by a newer DuckDB (2.0) than the installed one says so, and what to do."""

import struct
import subprocess
from pathlib import Path

import duckdb
import pytest

from conftest import make_warehouse
from ciboard.cli import main
from ciboard.warehouse import POINTER, Warehouse, WarehouseMissing, WarehouseTooNew
from click.testing import CliRunner

DUCKDB_2 = Path("/work/main/.venv/bin/python")  # a developer's environment that still has duckdb 2.0
HEADER = 4096


def claim_newer_duckdb(file: Path) -> None:
    """Rewrites a file's main header as DuckDB 2.0.1 writes it: storage version 999 and the
    writer's name, with the header's checksum recomputed so DuckDB gets as far as the version."""
    header = bytearray(file.read_bytes()[:HEADER])
    assert header[8:12] == b"DUCK"
    header[12:20] = struct.pack("<Q", 999)
    header[52:84] = b"v2.0.1".ljust(32, b"\0")
    # DuckDB's block checksum: 5381, xor of each 8-byte word times a constant.
    checksum = 5381
    for (word,) in struct.iter_unpack("<Q", bytes(header[8:])):
        checksum ^= (word * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    header[0:8] = struct.pack("<Q", checksum)
    with open(file, "r+b") as handle:
        handle.write(header)


def assert_says_what_to_do(error: Exception, warehouse: Warehouse) -> None:
    message = str(error)
    assert f"the data folder {warehouse.directory} was written by a newer DuckDB (DuckDB v2.0.1)" in message
    assert f"the DuckDB {duckdb.__version__} installed, which reads storage versions 64 to " in message
    assert "ciboard demo --data-dir" in message
    assert "EXPORT DATABASE" in message and "ciboard migrate-to-lake" in message


@pytest.fixture
def newer(tmp_path: Path) -> Warehouse:
    """A file warehouse whose current version claims to be written by DuckDB 2.0.1 (read as files:
    the data folder has no lake)."""
    warehouse = make_warehouse(tmp_path / "data", storage="files")
    warehouse.init(["2025-26"])
    current = warehouse.path_of(warehouse.version())
    warehouse.close()
    claim_newer_duckdb(current)
    return make_warehouse(tmp_path / "data")


def test_the_crafted_header_is_what_duckdb_refuses_for_its_version(newer):
    # Without the checksum recomputed DuckDB would call the file corrupt, a different error.
    with pytest.raises(duckdb.IOException, match="version number 999"):
        duckdb.connect(str(newer.path_of(newer.version())), read_only=True)


def test_reading_says_the_folder_is_from_a_newer_duckdb(newer):
    with pytest.raises(WarehouseTooNew) as refused:
        newer.cursor()
    assert_says_what_to_do(refused.value, newer)
    assert isinstance(refused.value, WarehouseMissing), "every command that reports a missing warehouse reports this"


def test_a_workspace_says_so_too(newer):
    with pytest.raises(WarehouseTooNew) as refused, newer.workspace():
        pass
    assert_says_what_to_do(refused.value, newer)


def test_publishing_says_so_and_changes_nothing(newer):
    before = sorted(path.name for path in newer.directory.iterdir())
    pointer = (newer.directory / POINTER).read_text()
    with pytest.raises(WarehouseTooNew) as refused, newer.publish():
        pass
    assert_says_what_to_do(refused.value, newer)
    assert sorted(path.name for path in newer.directory.iterdir()) == before
    assert (newer.directory / POINTER).read_text() == pointer


def test_the_cli_prints_it_without_a_traceback(newer):
    result = CliRunner().invoke(
        main, ["query", "series", "--as", "analyst", "--param", "metric=attendance_rate",
               "--data-dir", str(newer.settings.data_dir)]
    )
    assert result.exit_code == 1
    assert "was written by a newer DuckDB (DuckDB v2.0.1)" in result.output
    assert "Traceback" not in result.output


def duckdb_2_available() -> bool:
    if not DUCKDB_2.exists():
        return False
    found = subprocess.run([DUCKDB_2, "-c", "import duckdb; print(duckdb.__version__)"], capture_output=True, text=True)
    return found.returncode == 0 and found.stdout.strip().startswith("2.")


@pytest.mark.skipif(not duckdb_2_available(), reason=f"no DuckDB 2.x at {DUCKDB_2} to write a real 2.0 file with")
def test_a_file_really_written_by_duckdb_2(tmp_path):
    directory = tmp_path / "data" / "warehouse"
    directory.mkdir(parents=True)
    script = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); con.execute('create table t as select 1 as x'); con.close()"
    subprocess.run([DUCKDB_2, "-c", script, str(directory / "wh-000001.duckdb")], check=True)
    (directory / POINTER).write_text("wh-000001.duckdb")
    warehouse = make_warehouse(tmp_path / "data")
    with pytest.raises(WarehouseTooNew, match=r"was written by a newer DuckDB \(DuckDB v2\.") as refused:
        warehouse.cursor()
    assert "EXPORT DATABASE" in str(refused.value)


def test_the_dashboard_says_it_instead_of_a_traceback(newer, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ciboard.settings import get_settings

    monkeypatch.setenv("CIBOARD_DATA_DIR", str(newer.settings.data_dir))
    get_settings.cache_clear()
    st.cache_resource.clear()
    try:
        app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "main.py"), default_timeout=60).run()
    finally:
        get_settings.cache_clear()
        st.cache_resource.clear()
    assert not app.exception, [e.value for e in app.exception]
    [shown] = [e.value for e in app.error]
    assert "was written by a newer DuckDB (DuckDB v2.0.1)" in shown and "ciboard demo --data-dir" in shown
