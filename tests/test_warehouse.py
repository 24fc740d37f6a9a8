"""The warehouse: migrations, atomic publishing, and readers that never wait on a writer."""

import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from conftest import SESSIONS_SAMPLE, in_metric_order, make_warehouse, publish_empty, sample_submissions, shuffle_facts, stored_order
from ciboard.ingest import ingest
from ciboard.queries import run
from ciboard.access import ANALYST
from ciboard.warehouse import POINTER, VersionGone, WarehouseMissing, code_fingerprint, migrations


def test_a_new_warehouse_gets_every_migration(warehouse):
    with warehouse.cursor() as cur:
        applied = [v for (v,) in cur.execute("select version from schema_migrations order by version").fetchall()]
        metrics = cur.execute("select count(*) from metrics").fetchall()[0][0]
        weeks = cur.execute("select min(week_start), max(week_start), count(*) from calendar_weeks").fetchall()[0]
    assert applied == [number for number, _, _ in migrations()]
    assert metrics == 12
    assert str(weeks[0]) == "2025-08-04" and weeks[0].weekday() == 0 and weeks[2] == 52
    assert warehouse.is_current_code()


def test_an_older_warehouse_is_upgraded_and_keeps_its_data(tmp_path):
    # An older file: only the first migration, an old view, a row of data.
    directory = tmp_path / "data" / "warehouse"
    directory.mkdir(parents=True)
    con = duckdb.connect(str(directory / "wh-000001.duckdb"))
    con.execute("create table schema_migrations (version integer primary key, name varchar not null, applied_at timestamp not null)")
    number, name, sql = migrations()[0]
    con.execute(sql)
    con.execute("insert into schema_migrations values (?, ?, now())", [number, name])
    con.execute("insert into vendors values ('V1', 'BrightPath', 1)")
    con.close()
    (directory / POINTER).write_text("wh-000001.duckdb")
    warehouse = make_warehouse(tmp_path / "data")

    assert not warehouse.is_current_code()
    assert warehouse.upgrade_if_stale()
    with warehouse.cursor() as cur:
        applied = [v for (v,) in cur.execute("select version from schema_migrations order by version").fetchall()]
        vendors = cur.execute("select * from vendors").fetchall()
        fingerprint = cur.execute("select value from warehouse_info where key = 'code_fingerprint'").fetchall()
    assert applied == [n for n, _, _ in migrations()]
    assert vendors == [("V1", "BrightPath", 1)]
    assert fingerprint == [(code_fingerprint(),)]
    assert warehouse.version() == "wh-000002"
    assert not warehouse.upgrade_if_stale(), "a current warehouse was upgraded again"


def test_a_failed_write_publishes_nothing(loaded):
    version = loaded.version()
    with pytest.raises(RuntimeError):
        with loaded.publish() as con:
            con.execute("delete from facts")
            raise RuntimeError("the ingest failed half way")
    assert loaded.version() == version
    assert not list(loaded.directory.glob("*.building*"))
    with loaded.cursor() as cur:
        assert cur.execute("select count(*) from facts").fetchall()[0][0] > 0


@pytest.fixture
def loaded_files(tmp_path):
    """The sample files loaded into a file warehouse (`storage = files`), whose versions are files."""
    warehouse = make_warehouse(tmp_path / "data", storage="files")
    warehouse.init(["2025-26"])
    ingest(warehouse, sample_submissions())
    yield warehouse
    warehouse.close()


def test_an_ingest_stores_each_metric_s_facts_together_and_each_student_s_weeks_in_it(loaded_files):
    with duckdb.connect(str(loaded_files.path_of(loaded_files.version())), read_only=True) as con:
        stored = stored_order(con)
    assert len({row[0] for row in stored}) == 12
    assert in_metric_order(stored)


def test_migration_16_puts_an_older_warehouse_s_facts_in_metric_order_and_keeps_them_all(loaded_files):
    with loaded_files.publish() as con:  # facts as older code left them: in no order
        shuffle_facts(con)
        con.execute("delete from schema_migrations where version = 16")
        con.execute("update warehouse_info set value = 'older code' where key = 'code_fingerprint'")
        shuffled = stored_order(con)
        every_fact = sorted(con.execute("select * from facts").fetchall())
    assert not in_metric_order(shuffled)

    assert loaded_files.upgrade_if_stale()
    with duckdb.connect(str(loaded_files.path_of(loaded_files.version())), read_only=True) as con:
        assert in_metric_order(stored_order(con))
        assert sorted(con.execute("select * from facts").fetchall()) == every_fact
        assert con.execute(
            "select column_name from duckdb_columns() where table_name = 'facts' and not is_nullable"
        ).fetchall() == [(c,) for c in ("metric_id", "period_start", "student_key", "school_id", "grade",
                                         "race_ethnicity", "gender", "value", "batch_id")]


def test_old_versions_are_deleted_but_the_newest_kept(loaded_files):
    publish_empty(loaded_files, 4)
    files = sorted(p.name for p in loaded_files.directory.glob("wh-*.duckdb"))
    assert len(files) == loaded_files.settings.keep_versions
    assert files[-1] == loaded_files.version() + ".duckdb"



def test_a_pinned_version_outlives_the_old_ones_until_released(loaded_files):
    pinned = loaded_files.version()
    loaded_files.pin(pinned, "meeting 12")
    publish_empty(loaded_files, 4)
    assert loaded_files.path_of(pinned).exists()
    assert loaded_files.pins() == {pinned: ["meeting-12"]}
    assert len(list(loaded_files.directory.glob("wh-*.duckdb"))) == loaded_files.settings.keep_versions + 1

    loaded_files.release(pinned, "meeting 12")
    publish_empty(loaded_files)
    assert not loaded_files.path_of(pinned).exists() and loaded_files.pins() == {}
    assert not (loaded_files.directory / "pins" / pinned).exists()


def test_a_version_read_as_it_was_keeps_its_numbers_after_later_loads(loaded_files):
    series = dict(metric="tutoring_attendance_rate", grain="week")
    before = run(loaded_files, "series", ANALYST, series)
    version = loaded_files.version()
    loaded_files.pin(version, "meeting-1")
    with loaded_files.publish() as con:
        con.execute("delete from facts where vendor_id = 'V1'")
    assert not run(loaded_files, "series", ANALYST, series).equals(before), "the later load changed nothing to compare"

    then = loaded_files.at(version)
    assert then.version() == version and then.read_key().startswith(str(loaded_files.path_of(version)))
    assert run(then, "series", ANALYST, series).equals(before)
    with then.cursor() as cur:  # read by today's views, not those the version was written with
        assert cur.execute("select current_database()").fetchall() == [("memory",)]
        assert cur.execute(
            "select count(*) from duckdb_functions() where database_name = 'memory' and function_name = 'series'"
        ).fetchall() == [(1,)]
    with pytest.raises(PermissionError):
        publish_empty(then)


def test_a_deleted_version_cannot_be_pinned_or_read(loaded_files):
    gone = loaded_files.version()
    publish_empty(loaded_files, loaded_files.settings.keep_versions)
    assert not loaded_files.path_of(gone).exists()
    with pytest.raises(VersionGone, match=gone):
        loaded_files.pin(gone, "meeting-1")
    with pytest.raises(VersionGone, match=gone):
        loaded_files.at(gone)

def test_no_warehouse_says_how_to_make_one(tmp_path):
    with pytest.raises(WarehouseMissing, match="run 'ciboard demo' or 'ciboard init' first"):
        make_warehouse(tmp_path).version()


def test_readers_keep_reading_while_another_process_ingests(loaded, tmp_path):
    """Eight reader threads query throughout four publishes by another process: no errors, and
    every answer is one whole version (never half an ingest)."""
    script = tmp_path / "ingest_four.py"
    script.write_text(
        f"""
import sys
from pathlib import Path
from datetime import date, timedelta
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import make_warehouse, write_csv
from ciboard.ingest import Submission, ingest
w = make_warehouse(Path({str(loaded.settings.data_dir)!r}))
for week in range(1, 5):
    monday = date(2025, 9, 15) + timedelta(weeks=week)
    path = write_csv(Path({str(tmp_path)!r}) / f"week{{week}}.csv",
        "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
        f"ST0000001,{{monday}},V1-T001,3,40,40", f"ST0000002,{{monday}},V1-T001,3,40,0")
    ingest(w, [Submission(path, "sessions", "V1")])
"""
    )
    errors: list[BaseException] = []
    seen: dict[str, set[int]] = {}
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                frame = run(loaded, "series", ANALYST, {"metric": "tutoring_attendance_rate"})
                seen.setdefault(frame.attrs["version"], set()).add(len(frame))
            except BaseException as error:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(8)]
    for reader in readers:
        reader.start()
    writer = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    stop.set()
    for reader in readers:
        reader.join()
    assert writer.returncode == 0, writer.stderr
    assert errors == []
    # Each version shows exactly one week count: a reader never saw a partial ingest.
    assert all(len(counts) == 1 for counts in seen.values()), seen
    final = run(loaded, "series", ANALYST, {"metric": "tutoring_attendance_rate"})
    assert len(final) == 5


def test_samples_are_the_documented_order(loaded):
    """The README tells users to load the samples in this order; it must work as written."""
    assert [s.kind for s in sample_submissions()][:5] == ["schools", "vendors", "contracts", "annotations", "roster"]
    assert SESSIONS_SAMPLE.exists()


def test_a_years_files_land_in_one_command_within_a_small_memory_limit(tmp_path):
    """A district loading a year at once (the demo's files for 1,000 students, in one command)
    within 100 MB of DuckDB memory. The load kept every row it added in memory until one commit
    at the end, and ran out of memory at this size, and for 45,000 students at the 512 MB an
    ingest may use. The demo's meetings and reports, which the rest of its build seeds, are
    not this test's."""
    from datetime import date

    from ciboard import demo
    from ciboard.calendar import calendar_for

    warehouse = make_warehouse(tmp_path / "data", memory_limit="100MB")
    cal = calendar_for("2025-26")
    files, _ = demo.write_files(tmp_path / "files", students=1000, seed=11, cal=cal, settings=warehouse.settings,
                                say=lambda message: None)
    warehouse.init([cal.school_year])
    outcomes = ingest(warehouse, files, today=max(date.today(), cal.last_school_day))
    assert len(files) > 100 and {o.status for o in outcomes} == {"accepted"}
    with warehouse.cursor() as cur:
        assert cur.execute("select count(*) from facts").fetchall()[0][0] > 200_000
    warehouse.close()
