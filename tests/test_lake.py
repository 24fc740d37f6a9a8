"""The warehouse on DuckLake (ciboard.lake): the file warehouse's interface over snapshots.

Each test reads through the same interface the pages use (`cursor`, `at`, `publish`, `pin`), so
what holds for the file warehouse in test_warehouse.py is checked here for the lake.
"""

import fcntl
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from click.testing import CliRunner

from ciboard import cli, read_copies
from conftest import in_metric_order, make_warehouse, publish_empty, sample_submissions, shuffle_facts, snapshot, stored_order, write_csv
from ciboard.access import ANALYST
from ciboard.ingest import IngestRejected, Submission, ingest
from ciboard.lake import CURRENT_FOR, LakeWarehouse
from ciboard.lake_catalog import lake_ddl, lake_files, number
from ciboard.read_copies import COPIES_KEPT, copies_folder, make_read_copy
from ciboard.queries import run
from ciboard.settings import Settings
from ciboard.warehouse import VersionGone, Warehouse, migrations


def lake_at(tmp_path: Path, **settings) -> Warehouse:
    return make_warehouse(tmp_path / "data", catalog_url=f"sqlite:{tmp_path}/catalog.sqlite", **settings)


@pytest.fixture(scope="module")
def lake_made(tmp_path_factory) -> Path:
    """A folder holding an empty lake with the 2025-26 school year (its catalog and its data
    folder), made once: a test copies it in a tenth of the time a lake takes to make."""
    folder = tmp_path_factory.mktemp("lake")
    made = lake_at(folder)
    made.init(["2025-26"])
    made.close()
    return folder


@pytest.fixture
def lake(tmp_path, lake_made):
    shutil.copytree(lake_made, tmp_path, dirs_exist_ok=True)
    warehouse = lake_at(tmp_path)
    yield warehouse
    warehouse.close()


def count(warehouse: Warehouse, table: str) -> int:
    with warehouse.cursor() as cur:
        return cur.execute(f"select count(*) from {table}").fetchall()[0][0]


def test_a_catalog_url_puts_the_warehouse_on_the_lake_with_every_migration(lake, tmp_path):
    assert isinstance(lake, LakeWarehouse)
    assert lake.version().startswith("lake-")
    with lake.cursor() as cur:
        applied = [v for (v,) in cur.execute("select version from schema_migrations order by 1").fetchall()]
    assert applied == [number for number, _, _ in migrations()]
    assert lake.is_current_code()
    assert not (tmp_path / "data" / "warehouse").exists(), "the lake wrote a file warehouse beside itself"


def test_the_storage_unset_is_the_lake_except_for_a_folder_that_holds_a_file_warehouse_and_no_lake(tmp_path):
    def storage(**settings) -> bool:
        return Settings(data_dir=tmp_path / "data", app_db_url=None, **settings).on_lake

    assert storage(), "an empty data folder"
    (tmp_path / "data" / "warehouse").mkdir(parents=True)
    (tmp_path / "data" / "warehouse" / "CURRENT").write_text("wh-000001.duckdb")
    assert not storage() and storage(storage="lake") and storage(catalog_url=f"sqlite:{tmp_path}/catalog.sqlite")
    (tmp_path / "data" / "lake").mkdir()
    (tmp_path / "data" / "lake" / "catalog.sqlite").touch()  # what migrate-to-lake makes beside it
    assert storage() and not storage(storage="files")


def test_the_lake_takes_every_migration_without_constraints_it_refuses():
    for migration, _, sql in migrations():
        stripped = lake_ddl(sql).lower()
        assert "primary key" not in stripped and " unique" not in stripped, migration
        assert "check (" not in stripped.replace("  ", " "), migration


def test_the_sample_files_read_the_same_through_the_lake_as_through_files(lake, tmp_path):
    files = make_warehouse(tmp_path / "files")
    files.init(["2025-26"])
    ingest(files, sample_submissions())
    ingest(lake, sample_submissions())

    assert snapshot(lake) == snapshot(files)
    for view, params in (
        ("series", {"metric": "tutoring_attendance_rate"}),
        ("breakdown", {"metric": "tutoring_attendance_rate", "by": "race_ethnicity"}),
        ("vendors", {"metric": "tutoring_attendance_rate"}),
    ):
        ours, theirs = run(lake, view, ANALYST, params), run(files, view, ANALYST, params)
        assert len(ours) > 0, view
        assert ours.round(9).equals(theirs.round(9)), view
    files.close()


def test_a_failed_publish_writes_no_snapshot(lake):
    ingest(lake, sample_submissions())
    version, facts = lake.version(), count(lake, "facts")
    with pytest.raises(RuntimeError):
        with lake.publish() as con:
            con.execute("delete from facts")
            raise RuntimeError("the block failed")
    assert lake.version() == version
    assert count(lake, "facts") == facts > 0


def test_a_publish_writes_only_the_tables_its_block_changed_and_says_where_its_time_went(lake, caplog):
    ingest(lake, sample_submissions())
    caplog.set_level("DEBUG", logger="ciboard.lake")
    version = lake.version()
    with lake.publish() as con:
        assert con.execute("select count(*) from facts").fetchall()[0][0] > 0  # a block that only reads
    assert lake.version() == version, "a publish that changed nothing made a snapshot"
    with lake.publish() as con:
        con.execute("delete from facts where metric_id = 'tutoring_attendance_rate'")
    assert lake.version() > version
    nothing, facts_only = [r for r in caplog.records if hasattr(r, "phases")]
    assert re.search(r"staged from the (read copy|lake), none changed \(", nothing.getMessage())
    assert re.search(r"staged from the (read copy|lake), facts changed \(", facts_only.getMessage()), facts_only.getMessage()
    assert set(facts_only.phases) == {"staging", "command", "comparing", "writing"}
    assert all(seconds >= 0 for seconds in facts_only.phases.values())


def test_a_table_empty_at_a_snapshot_reads_empty_there_with_its_columns_and_full_later(lake):
    before = lake.version()
    with lake.cursor() as cur:
        assert cur.execute("select count(*) from vendors").fetchall() == [(0,)]
    with lake.publish() as con:  # staged from the lake: the empty table is copied as its columns alone
        con.execute("insert into vendors values ('V1', 'BrightPath', 1), ('V2', 'Acorn', 1)")
    make_read_copy(lake.settings, number(before), copies_folder(lake.settings) / "made-here.duckdb")
    with lake.at(before).cursor() as then, lake.cursor() as now:
        assert then.execute("select * from vendors").fetchall() == []
        assert [d[0] for d in then.description] == [d[0] for d in now.execute("select * from vendors limit 0").description]
        assert now.execute("select vendor_id from vendors order by 1").fetchall() == [("V1",), ("V2",)]
    with closing(duckdb.connect(str(copies_folder(lake.settings) / "made-here.duckdb"), read_only=True)) as copy:
        assert copy.execute("select * from vendors").fetchall() == [], "the read copy of the earlier snapshot"
        assert [d[0] for d in copy.description] == ["vendor_id", "name", "batch_id"]


def test_a_lake_made_by_older_code_is_upgraded_and_an_earlier_snapshot_keeps_its_own_fingerprint(lake):
    with lake.publish() as con:
        con.execute("update warehouse_info set value = 'older code' where key = 'code_fingerprint'")
    older = lake.version()
    assert not lake.is_current_code()
    assert lake.upgrade_if_stale()
    assert lake.is_current_code() and lake.version() > older
    assert not lake.at(older).is_current_code(), "a pinned snapshot read the current one's fingerprint"
    assert not lake.upgrade_if_stale(), "a current lake was upgraded again"


def test_a_rejected_file_writes_no_snapshot_and_every_server_reads_its_log_until_a_publish_folds_it_in(lake, tmp_path):
    ingest(lake, sample_submissions())
    facts = count(lake, "facts")
    before, key = lake.version(), lake.read_key()
    bad = write_csv(tmp_path / "bad.csv", "school_id,name", "E01,", ",Nameless")
    with pytest.raises(IngestRejected):
        ingest(lake, [Submission(bad, "schools", None)])
    assert lake.version() == before, "a rejected file wrote a snapshot"
    assert lake.read_key() != key, "cached answers are keyed on the log too"

    def rejected(warehouse: Warehouse) -> tuple:
        with warehouse.cursor() as cur:
            [(batch, status, name)] = cur.execute(
                "select batch_id, status, file_name from submissions where batch_id = (select max(batch_id) from submissions)"
            ).fetchall()
            problems = cur.execute("select count(*) from submission_errors where batch_id = ?", [batch]).fetchall()[0][0]
        return batch, status, name, problems

    server = another_server(tmp_path)
    batch, status, name, problems = rejected(lake)
    assert (status, name) == ("rejected", "bad.csv") and problems >= 2
    assert rejected(server) == (batch, status, name, problems), "another server did not read the log"
    assert count(lake, "facts") == facts

    new_snapshot(lake)  # folds the log into the snapshot, once
    assert rejected(lake) == rejected(server) == (batch, status, name, problems)
    with lake.cursor() as cur:
        assert cur.execute("select count(*) from submissions where file_name = 'bad.csv'").fetchall() == [(1,)]
    new_snapshot(lake)  # a reader that listed the log before the last publish has read it by now
    assert not list((lake.directory / "rejected").glob("*")), "the rejection stayed in the log beside the lake"
    server.close()


def test_a_pinned_snapshot_reads_as_it_was_after_later_loads_and_maintenance(tmp_path):
    lake = lake_at(tmp_path, keep_days=1e-9)
    lake.init(["2025-26"])
    ingest(lake, sample_submissions())
    pinned, unpinned = lake.version(), None
    lake.pin(pinned, "meeting-1")
    facts = count(lake, "facts")
    with lake.publish() as con:
        con.execute("delete from facts where metric_id = 'tutoring_attendance_rate'")
    unpinned = lake.version()
    with lake.publish() as con:
        con.execute("delete from facts")

    expired = lake.maintain()

    assert int(unpinned.removeprefix("lake-")) in expired
    assert int(pinned.removeprefix("lake-")) not in expired
    assert count(lake.at(pinned), "facts") == facts
    assert count(lake, "facts") == 0
    with pytest.raises(VersionGone):
        lake.at(unpinned)
    lake.release(pinned, "meeting-1")
    lake.maintain()
    with pytest.raises(VersionGone):
        lake.at(pinned)


def test_a_snapshot_is_read_only(lake):
    with pytest.raises(PermissionError):
        with lake.at(lake.version()).publish():
            pass


def test_another_server_sees_a_new_snapshot_on_its_next_read_without_a_restart(lake, tmp_path):
    other = lake_at(tmp_path)  # a second process's warehouse object: its own catalog connection
    seen = other.version()
    assert count(other, "facts") == 0
    ingest(lake, sample_submissions())
    assert other.version() > seen
    assert count(other, "facts") == count(lake, "facts") > 0
    assert count(other.at(seen), "facts") == 0, "a page run's snapshot changed under it"
    other.close()


def test_a_postgresql_catalog_serves_two_servers(tmp_path, postgres_url):
    lake = make_warehouse(tmp_path / "data", catalog_url=postgres_url, lake_path=tmp_path / "shared")
    lake.init(["2025-26"])
    other = make_warehouse(tmp_path / "other", catalog_url=postgres_url, lake_path=tmp_path / "shared")
    ingest(lake, sample_submissions())
    assert other.version() == lake.version()
    assert count(other, "facts") == count(lake, "facts") > 0
    lake.close()
    other.close()


def test_migrate_to_lake_moves_the_current_version_and_every_pinned_one_with_its_pins(tmp_path, caplog):
    files = make_warehouse(tmp_path / "data", storage="files")
    files.init(["2025-26"])
    ingest(files, sample_submissions())
    pinned = files.version()
    files.pin(pinned, "meeting-3")
    as_pinned = snapshot(files)
    with files.publish() as con:
        con.execute("delete from facts where metric_id = 'tutoring_attendance_rate'")
        shuffle_facts(con)
        assert not in_metric_order(stored_order(con))
    as_current = snapshot(files)
    files.close()
    unset = make_warehouse(tmp_path / "data")  # the storage unset: a folder made before the lake stays on files
    assert not isinstance(unset, LakeWarehouse) and snapshot(unset) == as_current
    assert "ciboard migrate-to-lake" in caplog.text
    unset.close()

    result = CliRunner().invoke(cli.main, ["migrate-to-lake", "--data-dir", str(tmp_path / "data")])

    assert result.exit_code == 0, result.output
    assert "read it from now on" in result.output
    lake = make_warehouse(tmp_path / "data")  # once the lake is there, the lake
    assert isinstance(lake, LakeWarehouse)
    assert snapshot(lake) == as_current
    with closing(duckdb.connect(str(lake.lake.read_copy(number(lake.version()))), read_only=True)) as moved:
        assert in_metric_order(stored_order(moved)), "the facts moved in kept the old file's order"
    assert snapshot(lake.at(pinned)) == as_pinned, "a record's pinned file version did not become its snapshot"
    assert lake.resolve(pinned) in lake.pins() and lake.pins()[lake.resolve(pinned)] == ["meeting-3"]
    assert [v for v in lake.maintain()] == [] or lake.is_kept(pinned)
    again = CliRunner().invoke(cli.main, ["migrate-to-lake", "--data-dir", str(tmp_path / "data")])
    assert again.exit_code != 0 and "has a warehouse already" in again.output
    lake.close()


def test_a_duckdb_2_export_moves_into_the_lake_as_the_samples_loaded_here(tmp_path, lake):
    """The export was made by the file warehouse on DuckDB 2.0.1 (tests/fixtures/.../README.md)."""
    ingest(lake, sample_submissions())
    export = Path(__file__).parent / "fixtures" / "warehouse-duckdb2-export"
    result = CliRunner().invoke(
        cli.main, ["migrate-to-lake", "--from-export", str(export), "--data-dir", str(tmp_path / "moved")]
    )
    assert result.exit_code == 0, result.output
    moved = make_warehouse(tmp_path / "moved", storage="lake")
    assert snapshot(moved) == snapshot(lake)
    assert moved.is_current_code()
    moved.close()


def test_a_newer_duckdb_file_is_refused_with_what_to_do(tmp_path):
    newer = tmp_path / "data" / "warehouse"
    newer.mkdir(parents=True)
    # The first 12 KB of a file DuckDB 2.0.1 wrote: its headers say storage version 999.
    header = Path(__file__).parent / "fixtures" / "duckdb-2.0-file-header.duckdb"
    (newer / "wh-000001.duckdb").write_bytes(header.read_bytes())
    (newer / "CURRENT").write_text("wh-000001.duckdb")
    result = CliRunner().invoke(cli.main, ["migrate-to-lake", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code != 0
    assert "EXPORT DATABASE" in result.output and "--from-export" in result.output, result.output
    assert not (tmp_path / "data" / "lake").exists(), "a lake was begun for a move that could not be made"


def test_a_server_that_mounts_the_shared_folder_elsewhere_reads_the_same_lake(lake, tmp_path):
    ingest(lake, sample_submissions())
    facts = snapshot(lake)
    lake.close()
    (tmp_path / "data" / "lake").rename(tmp_path / "mounted")
    elsewhere = make_warehouse(tmp_path / "server-b", catalog_url=f"sqlite:{tmp_path}/catalog.sqlite",
                               lake_path=tmp_path / "mounted")
    assert snapshot(elsewhere) == facts
    elsewhere.close()


KILLED_INGEST = """
import sys
sys.path.insert(0, {tests!r})
from conftest import make_warehouse, sample_submissions
from ciboard.ingest import ingest


def progress(message):
    print(message, flush=True)
    if {held!r} and {said!r} in message:
        sys.stdin.readline()  # held where it said it is, until killed


ingest(make_warehouse({data!r}, catalog_url={catalog!r}), sample_submissions(), progress=progress)
"""


# Killed where the command says it is, held there until the kill: checking its first file (the
# publish has staged the snapshot), loading the sessions (inside the block), the facts derived
# (the block done, what changed about to be found); and, not held, a moment after the facts are
# derived (finding what changed or writing to the lake, or done).
@pytest.mark.parametrize("said, held", [("schools.csv: read", True), ("sessions.csv: loaded", True), ("facts derived", True), ("facts derived", False)])
def test_an_ingest_killed_at_any_point_leaves_the_last_snapshot_whole(tmp_path, said, held):
    lake = lake_at(tmp_path)
    lake.init(["2025-26"])
    before = lake.version()
    code = KILLED_INGEST.format(
        tests=str(Path(__file__).parent), data=str(tmp_path / "data"), catalog=lake.settings.catalog_url, said=said, held=held
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    heard = []
    for line in process.stdout:
        heard.append(line)
        if said in line:
            break
    if not held:
        time.sleep(0.3)
    process.kill()
    process.wait()
    assert said in "".join(heard), f"the ingest ended without saying {said!r}: {heard}"
    lake.close()
    after = lake_at(tmp_path)
    if held:
        assert after.version() == before, "killed before it wrote, the ingest wrote a snapshot"
    if after.version() == before:
        assert count(after, "facts") == 0 and count(after, "submissions") == 0
    else:  # it finished writing before the kill: all of it landed
        assert count(after, "submissions") == len(sample_submissions()) and count(after, "facts") > 0
    after.maintain()  # and the files of the killed ingest go
    assert count(after, "facts") in (0, count(after.at(after.version()), "facts"))
    publish_empty(after)  # the next publish clears a killed one's private copies
    assert not list(copies_folder(after.settings).glob("building-*"))
    after.close()


def new_snapshot(lake: LakeWarehouse) -> int:
    with lake.publish() as con:
        con.execute("create table if not exists scratch (n integer)")
        con.execute("insert into scratch values (1)")
    return number(lake.version())


def another_server(tmp_path: Path, name: str = "another-server") -> Warehouse:
    """The `lake` fixture's lake, read by a server with a data folder (and read copies) of its own."""
    return make_warehouse(
        tmp_path / name, catalog_url=f"sqlite:{tmp_path}/catalog.sqlite", lake_path=tmp_path / "data" / "lake"
    )


def test_the_lake_s_files_and_another_server_s_read_copy_store_each_metric_s_facts_together(lake, tmp_path):
    ingest(lake, sample_submissions())
    con = lake.lake._control_cursor()
    [(files,)] = con.execute("select list(data_file) from ducklake_list_files('lake', 'facts')").fetchall()
    assert files
    for file in files:
        stored = con.execute(
            "select metric_id, student_key, period_start from read_parquet(?, file_row_number = true)"
            " order by file_row_number", [file]
        ).fetchall()
        assert stored and in_metric_order(stored), file
    copy = tmp_path / "another-server" / "copy.duckdb"
    make_read_copy(lake.settings, number(lake.version()), copy)
    with closing(duckdb.connect(str(copy), read_only=True)) as copied:
        assert in_metric_order(stored_order(copied))


def test_a_publish_leaves_its_server_the_read_copy_of_the_snapshot_it_wrote(lake):
    ingest(lake, sample_submissions())
    current = number(lake.version())
    assert lake.lake.read_copy(current).exists()
    assert not list(copies_folder(lake.settings).glob("building-*")), "a publish left its private copy behind"
    snapshot(lake)
    assert lake.lake._readers[current][2], "the publishing server read the lake, not its copy"
    with pytest.raises(RuntimeError):
        with lake.publish() as con:
            con.execute("delete from facts")
            raise RuntimeError("the block failed")
    assert number(lake.version()) == current and count(lake, "facts") > 0
    assert not list(copies_folder(lake.settings).glob("building-*")), "a failed publish left its private copy behind"


def test_a_server_reads_the_lake_until_its_read_copy_of_the_snapshot_is_made_then_the_copy(lake, tmp_path):
    ingest(lake, sample_submissions())
    current = number(lake.version())
    elsewhere = another_server(tmp_path)  # the same lake, and no copy of its own
    through_lake = snapshot(elsewhere)
    assert not elsewhere.lake._readers[current][2], "the first read waited for a copy"
    elsewhere.lake.wait_for_copies(60)
    assert f"{current:06d}" in [c.name.split("-")[1] for c in copies_folder(elsewhere.settings).glob("lake-*.duckdb")]

    assert snapshot(elsewhere) == through_lake == snapshot(lake)
    assert elsewhere.lake._readers[current][2], "the reader did not move to the copy once it was made"
    elsewhere.close()
    elsewhere = another_server(tmp_path, "third")  # and one that reads the lake alone
    for view, params in (
        ("series", {"metric": "tutoring_attendance_rate"}),
        ("breakdown", {"metric": "tutoring_attendance_rate", "by": "race_ethnicity"}),
    ):
        ours, theirs = run(lake, view, ANALYST, params), run(elsewhere, view, ANALYST, params)
        assert len(ours) > 0 and ours.equals(theirs), view
    elsewhere.close()


def test_a_command_that_exits_while_its_read_copy_is_made_exits_cleanly(lake, tmp_path):
    """A command on a server without the snapshot's copy (another server wrote it) reads the lake
    and has the copy made in the background; exiting meanwhile aborted inside DuckDB (134)."""
    ingest(lake, sample_submissions())
    server = tmp_path / "another-server"
    script = (
        "import sys; from pathlib import Path; from ciboard.settings import Settings; from ciboard.warehouse import Warehouse\n"
        f"w = Warehouse(Settings(data_dir=Path({str(server)!r}), catalog_url={f'sqlite:{tmp_path}/catalog.sqlite'!r},"
        f" lake_path=Path({str(tmp_path / 'data' / 'lake')!r}), app_db_url=None))\n"
        "print(w.cursor().execute('select count(*) from facts').fetchall()[0][0])\n"
    )
    for _ in range(3):  # the copy is under way at exit on most tries; on none did one abort
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert int(done.stdout) == count(lake, "facts") > 0
        assert not list((server / "lake-copies").glob("*.partial")), "an interrupted copy left its partial file"
        shutil.rmtree(server / "lake-copies", ignore_errors=True)


def test_a_closed_server_ends_the_read_copy_it_was_making_and_writes_nothing_more(lake, tmp_path, monkeypatch, caplog):
    """Its data folder may go next (a passing test's does): a copy that went on writing into it
    failed there, and logged a warning into whichever test ran next."""
    ingest(lake, sample_submissions())
    endless = "select count(*) as n from range(1000000000000)"  # a table that takes hours to copy
    monkeypatch.setattr(read_copies, "read_all", lambda *table: endless)
    elsewhere = another_server(tmp_path)
    elsewhere.cursor().close()  # reads the lake, and asks for the snapshot's copy in the background
    copier = elsewhere.lake._copier._thread
    deadline = time.monotonic() + 30
    while copier.is_alive() and not read_copies._copying.get(copier) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert copier.is_alive(), "the copy ended by itself: this test needs it under way"
    started = time.monotonic()
    elsewhere.close()
    assert not copier.is_alive(), "the copy went on after its server was closed"
    assert time.monotonic() - started < 5
    assert not list(copies_folder(elsewhere.settings).glob("*.partial")), "a stopped copy left its partial file"
    assert not [r for r in caplog.records if r.name == "ciboard.read_copies"], "a stopped copy was reported as failed"


def test_a_reader_sees_a_publish_of_its_own_process_at_once_and_another_process_s_within_a_moment(lake, tmp_path):
    """The current snapshot is asked of the catalog at most every CURRENT_FOR seconds (a cursor
    asked every time: 4.5 ms on SQLite, against 0.2 ms now)."""
    server = another_server(tmp_path)
    before = server.version()
    assert number(server.version()) < new_snapshot(lake) == number(server.version()), "a publish of this process went unseen"
    script = (
        "import sys; from pathlib import Path; from ciboard.settings import Settings; from ciboard.warehouse import Warehouse\n"
        f"w = Warehouse(Settings(data_dir=Path({str(tmp_path / 'data')!r}), catalog_url={f'sqlite:{tmp_path}/catalog.sqlite'!r},"
        " app_db_url=None))\n"
        "with w.publish() as con:\n"
        "    con.execute('create table if not exists scratch (n integer)')\n"
        "    con.execute('insert into scratch values (2)')\n"
        "print(w.version())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    time.sleep(CURRENT_FOR)
    assert server.version() == done.stdout.strip() > before
    with server.cursor() as cur:
        assert cur.execute("select count(*) from scratch where n = 2").fetchall() == [(1,)]
    server.close()


def test_a_lake_made_again_in_the_same_place_never_reads_the_earlier_lakes_copy(tmp_path):
    first = lake_at(tmp_path)
    first.init(["2025-26"])
    ingest(first, sample_submissions())
    assert count(first, "facts") > 0
    first.lake.wait_for_copies(60)
    assert list(copies_folder(first.settings).glob(f"{first.version()}-*.duckdb"))
    first.close()
    (tmp_path / "catalog.sqlite").unlink()
    shutil.rmtree(tmp_path / "data" / "lake")

    again = lake_at(tmp_path)
    again.init(["2025-26"])
    while number(again.version()) < number(first.version()):
        new_snapshot(again)
    assert again.version() == first.version()
    assert count(again, "facts") == 0, "the new lake read the earlier lake's copy of the same snapshot"
    again.close()


def test_a_read_copy_appears_whole_or_not_at_all_and_only_one_process_makes_it(lake):
    ingest(lake, sample_submissions())
    current = number(lake.version())
    target = lake.lake.read_copy(current)
    target.unlink()  # the publish's own
    with open(target.parent / f"{target.stem}.lock", "w") as another_process:
        fcntl.flock(another_process, fcntl.LOCK_EX)
        make_read_copy(lake.settings, current, target)
        assert not target.exists(), "two processes made the same copy at once"

    make_read_copy(lake.settings, current, target)
    assert target.exists() and not list(target.parent.glob("*.partial"))
    made = target.stat().st_mtime_ns
    make_read_copy(lake.settings, current, target)
    assert target.stat().st_mtime_ns == made, "a copy that was made already was made again"

    with pytest.raises(duckdb.Error):  # the lake's files are gone mid-copy: no partial copy stays
        shutil.rmtree(lake_files(lake.settings))
        target.unlink()
        make_read_copy(lake.settings, current, target)
    assert not target.exists() and not list(target.parent.glob("*.partial"))


def test_a_server_keeps_only_its_most_recently_read_copies(lake):
    made = []
    for _ in range(COPIES_KEPT + 2):
        current = new_snapshot(lake)
        # A copy the server's own reads asked for in the background, of a snapshot before, is
        # read earlier than this one: it must not be made after it (as on a loaded CI machine).
        lake.lake.wait_for_copies(60)
        made.append(lake.lake.read_copy(current))
        make_read_copy(lake.settings, current, made[-1])
        lake.lake.wait_for_copies(60)
    kept = sorted(copies_folder(lake.settings).glob("lake-*.duckdb"))
    assert kept == sorted(made[-COPIES_KEPT:])
    assert sorted(p.stem for p in copies_folder(lake.settings).glob("*.lock")) == sorted(p.stem for p in kept)


def test_a_publish_staged_from_the_read_copy_writes_what_one_staged_from_the_lake_writes(lake, tmp_path):
    twin = lake_at(tmp_path / "twin")
    twin.init(["2025-26"])
    for warehouse in (lake, twin):
        ingest(warehouse, sample_submissions())
    assert lake.lake.read_copy(number(lake.version())).exists()
    shutil.rmtree(copies_folder(twin.settings))  # the twin's publish stages from the lake

    for warehouse in (lake, twin):
        with warehouse.publish() as con:
            con.execute("delete from facts where metric_id = 'tutoring_attendance_rate'")
            con.execute("update students set grade = grade + 1 where grade < 5")
    assert snapshot(lake) == snapshot(twin)
    assert count(lake, "facts") > 0


def test_an_ingest_compares_only_the_students_it_touched_and_the_lake_holds_what_it_wrote(lake, tmp_path, caplog):
    ingest(lake, sample_submissions())
    with lake.cursor() as cur:
        first = cur.execute("select min(student_key) from sessions").fetchall()[0][0]
        others = cur.execute("select count(distinct student_key) from facts where student_key <> ?", [first]).fetchall()[0][0]
    assert others > 0
    caplog.set_level("DEBUG", logger="ciboard.lake")
    extra = write_csv(
        tmp_path / "sessions_more.csv",
        "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
        f"{first},2025-10-01,T-NEW,1,30,30",
    )
    ingest(lake, [Submission(extra, "sessions", "V1")])
    [record] = [r for r in caplog.records if hasattr(r, "phases")]
    assert {"facts", "sessions", "student_dosage"} <= set(record.narrowed), record.getMessage()
    assert "schools" not in record.narrowed, "a table without student_key was compared by students"
    assert not [r for r in caplog.records if r.levelname == "WARNING" and r.name == "ciboard.lake"]
    # What the lake holds, read by a server with no copy of its own, is what this server's copy holds.
    elsewhere = another_server(tmp_path)
    assert snapshot(elsewhere) == snapshot(lake)
    with elsewhere.cursor() as cur:
        assert cur.execute("select count(*) from sessions where tutor_id = 'T-NEW'").fetchall()[0][0] == 1
    elsewhere.close()


def test_new_views_are_one_publish_from_the_read_copy_that_compares_no_students_rows_one_by_one(lake, caplog):
    ingest(lake, sample_submissions())
    with lake.publish() as con:
        con.execute("update warehouse_info set value = 'older code' where key = 'code_fingerprint'")
    older = lake.version()
    with lake.cursor() as cur:
        facts = cur.execute("select * from facts order by all").fetchall()
    caplog.set_level("DEBUG", logger="ciboard.lake")
    assert lake.upgrade_if_stale()
    # No migration is pending: no snapshot of its own, whose tables the publish would stage from the lake.
    [record] = [r for r in caplog.records if hasattr(r, "phases")]
    assert "staged from the read copy, warehouse_info changed (" in record.getMessage(), record.getMessage()
    assert {"facts", "sessions", "student_year_sums"} <= set(record.narrowed), record.getMessage()
    assert not [r for r in caplog.records if r.levelname == "WARNING" and r.name == "ciboard.lake"]
    assert number(lake.version()) == number(older) + 1
    assert lake.is_current_code() and not lake.at(older).is_current_code()
    with lake.cursor() as cur:
        assert cur.execute("select * from facts order by all").fetchall() == facts
    assert not lake.upgrade_if_stale()


def test_a_pending_migration_has_a_snapshot_of_its_own_before_the_publish(lake, monkeypatch):
    from ciboard import lake as lake_module, warehouse as warehouse_module

    shipped = warehouse_module.migrations()
    newer = lambda: [*shipped, (999, "a_new_table", "create table a_new_table (x integer);")]  # noqa: E731
    monkeypatch.setattr(warehouse_module, "migrations", newer)
    monkeypatch.setattr(lake_module, "migrations", newer)
    older = lake.version()
    assert lake._migrations_pending() and not lake.is_current_code()
    assert lake.upgrade_if_stale()
    assert not lake._migrations_pending() and lake.is_current_code()
    assert number(lake.version()) == number(older) + 1, "the migration's snapshot, and no other: the publish after it changed nothing"
    with lake.cursor() as cur:
        assert cur.execute("select count(*) from a_new_table").fetchall() == [(0,)]


def test_a_block_that_changes_a_student_it_did_not_name_is_compared_whole(lake, tmp_path, caplog):
    ingest(lake, sample_submissions())
    totals = "select student_key, count(*), sum(value) from facts where student_key in (?, ?) group by 1 order by 1"
    with lake.cursor() as cur:
        named, unnamed = [k for (k,) in cur.execute("select distinct student_key from facts order by 1 limit 2").fetchall()]
        before = cur.execute(totals, [named, unnamed]).fetchall()
    caplog.set_level("DEBUG", logger="ciboard.lake")
    with lake.publish() as con:
        con.execute("create temp table touched_students as select ? as student_key", [named])
        con.execute("update facts set value = value + 1 where student_key in (?, ?)", [named, unnamed])
        con.execute("update sessions set tutor_id = 'T-CHANGED' where student_key = ?", [named])
    elsewhere = another_server(tmp_path)  # reads the lake itself
    with elsewhere.cursor() as cur:
        after = cur.execute(totals, [named, unnamed]).fetchall()
        assert cur.execute("select count(*) from sessions where tutor_id = 'T-CHANGED'").fetchall()[0][0] > 0
    assert [(key, n, total + n) for key, n, total in before] == after
    assert snapshot(elsewhere) == snapshot(lake)
    elsewhere.close()
    [warning] = [r for r in caplog.records if r.levelname == "WARNING" and r.name == "ciboard.lake"]
    assert "facts" in warning.getMessage()
    [record] = [r for r in caplog.records if hasattr(r, "phases")]
    assert "facts" not in record.narrowed and "sessions" in record.narrowed


def test_a_read_of_the_sqlite_catalog_never_makes_a_publish_fail_as_locked(lake, tmp_path):
    catalog_file = tmp_path / "catalog.sqlite"
    with closing(sqlite3.connect(catalog_file)) as db:
        db.execute("pragma journal_mode = delete")  # as a lake made before the catalog was put in WAL mode
    new_snapshot(lake)  # its next publish puts it in WAL mode
    with closing(sqlite3.connect(catalog_file)) as db:
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"

    with closing(sqlite3.connect(catalog_file, isolation_level=None)) as reader:
        reader.execute("begin")
        reader.execute("select count(*) from ducklake_snapshot").fetchall()  # a page's query, mid-read
        ingest(lake, sample_submissions())  # a publish commits meanwhile
        reader.execute("commit")
    assert count(lake, "facts") > 0


def test_a_publish_opens_no_second_sqlite_library_on_a_catalog_in_wal_mode(lake, monkeypatch):
    """Python's sqlite3 beside DuckDB's own SQLite, in one process: neither sees the other's
    connections, so closing one taken for the catalog's last removed the log under the other's
    open handles ("disk I/O error"). Once the catalog is in WAL mode, nothing opens it that way."""
    from ciboard import lake as lake_module

    new_snapshot(lake)  # puts a new catalog in WAL mode
    opened = []

    def connect(path, *args, **kwargs):
        opened.append(path)
        return sqlite3.connect(path, *args, **kwargs)

    # The name as ciboard.lake sees it, not the sqlite3 module's own: nothing else is touched.
    monkeypatch.setattr(lake_module, "sqlite3", SimpleNamespace(connect=connect, OperationalError=sqlite3.OperationalError))
    ingest(lake, sample_submissions())
    with pytest.raises(IngestRejected):
        ingest(lake, [Submission(write_csv(lake.settings.data_dir / "bad.csv", "student_id,session_date", "ST0000001,x"),
                                 "sessions", "V1")])
    new_snapshot(lake)
    assert opened == [] and count(lake, "facts") > 0


def test_a_long_running_server_keeps_only_the_last_two_connections_its_copies_replaced(lake, tmp_path):
    server = another_server(tmp_path)
    for _ in range(4):
        current = new_snapshot(lake)
        count(server, "facts")  # reads the lake, and asks for the copy
        server.lake.wait_for_copies(60)
        count(server, "facts")  # reads the copy: the lake's connection is replaced
        assert server.lake._readers[current][2]
    assert len(server.lake._retired) == 2
    server.close()
