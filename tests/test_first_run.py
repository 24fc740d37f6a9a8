"""The first start on a fresh machine, through AppTest: the demo district builds in the background
while every session sees its progress, the warehouse appears only when whole, the terminal gets
the address and the demo's passwords once, and no page afterwards replays the build's status."""

import contextlib
import io
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ciboard import accounts, demo, first_run
from ciboard.appdb import AppDB
from ciboard.settings import Settings, get_settings
from ciboard.warehouse import Warehouse

APP = str(Path(__file__).resolve().parent.parent / "main.py")
SMALL = 60  # the fewest students the demo takes; its 447 files still take about 25 s to load
BUILDING = "Building the demo district"


def shown(app: AppTest) -> str:
    """Everything the latest run drew, labels and text alike."""
    return "\n".join(str(node.proto) for node in app._tree if getattr(node, "proto", None) is not None)


def wait_until(done, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def first_start(tmp_path_factory):
    """A dashboard's first start on an empty data folder with a small demo, two sessions
    arriving while it builds and a third after; what each run drew and what the terminal got."""
    data = tmp_path_factory.mktemp("first-start") / "data"
    settings = Settings(data_dir=data)
    seen, calls = [], []

    def small_build(warehouse, *, progress, **options):
        def say(message: str) -> None:
            seen.append(Warehouse(settings).exists() or settings.app_db_path.exists())
            progress(message)

        calls.append(warehouse.directory)
        return real_build(warehouse, **{**options, "students": SMALL}, progress=say)

    real_build = demo.build
    terminal = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(terminal):
        patch.setenv("CIBOARD_DATA_DIR", str(data))
        patch.setattr(demo, "build", small_build)
        get_settings.cache_clear()
        st.cache_resource.clear()
        try:
            first = AppTest.from_file(APP, default_timeout=120).run()
            second = AppTest.from_file(APP, default_timeout=120)
            second.query_params["vendor"] = "V3 · Keystone Math Corps"  # a link someone followed
            second.run()
            during = [shown(first), shown(second)]
            exceptions = [e.value for app in (first, second) for e in app.exception]
            wait_until(lambda: Warehouse(settings).exists())
            with contextlib.suppress(AssertionError):  # the test of the terminal says what is missing
                wait_until(lambda: "The demo district is ready" in terminal.getvalue(), 30)
            later = [shown(app.run()) for app in (first, second)]
            third = AppTest.from_file(APP, default_timeout=120).run()
            later.append(shown(third))
            later.append(shown(third.run()))
            exceptions += [e.value for app in (first, second, third) for e in app.exception]
        finally:
            get_settings.cache_clear()
            st.cache_resource.clear()
    return SimpleNamespace(
        data=data, settings=settings, during=during, later=later, exceptions=exceptions,
        terminal=terminal.getvalue(), seen=seen, calls=calls,
    )


def test_every_session_that_arrives_during_the_build_sees_its_progress(first_start):
    assert first_start.exceptions == []
    for page in first_start.during:
        assert BUILDING in page and "elapsed" in page
        assert "User name" not in page


def test_later_runs_show_no_status_of_the_build(first_start):
    for page in first_start.later:
        assert "User name" in page, "the sign-in page"
        assert BUILDING not in page and "elapsed" not in page


def test_the_build_runs_once_and_is_invisible_until_whole(first_start):
    assert len(first_start.calls) == 1
    assert first_start.calls[0] != first_start.settings.warehouse_dir
    assert len(first_start.seen) > 100 and not any(first_start.seen), "the data folder held a warehouse or accounts mid-build"
    data = first_start.data
    assert Warehouse(first_start.settings).exists()
    assert sorted(p.name for p in data.iterdir()) == ["app.sqlite3", "demo-build.lock", "demo_files", "lake", "lake-copies"]
    assert len(list((data / "demo_files").glob("sessions_*.csv"))) > 100
    with Warehouse(first_start.settings).cursor() as cur:
        # SMALL tutored students, and as many again whom no vendor tutors.
        assert cur.execute("select count(*) from students").fetchall()[0][0] == 2 * SMALL


def test_the_terminal_gets_the_address_and_each_password_once(first_start):
    printed = first_start.terminal
    assert "http://localhost:8501" in printed
    assert printed.index("First start: building the demo district") < printed.index("The demo district is ready")
    credentials = accounts.demo_credentials(AppDB.of(first_start.settings))
    # One account per district role, and one per vendor.
    assert sorted(row["username"] for row in credentials) == sorted(
        ["analyst", "facilitator", "admin", "school", "evaluator", *(f"vendor-v{i}" for i in range(1, 7))])
    for row in credentials:
        assert printed.count(row["password"]) == 1
        assert f"    {row['username']} " in printed


def test_the_build_starts_once_per_process_and_data_folder(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(first_run, "build", lambda settings, say: started.append(time.sleep(0.5)))
    settings = Settings(data_dir=tmp_path / "data")
    for _ in range(5):
        first_run.demo_build(Settings(data_dir=tmp_path / "data")).start()
    wait_until(lambda: first_run.demo_build(settings).state == "done", 10)
    assert len(started) == 1


def test_a_failed_build_says_so_without_a_traceback_or_a_path(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"

    def out_of_space(warehouse, **options):
        raise OSError(28, "No space left on device", str(warehouse.directory / "wh-000001.duckdb"))

    monkeypatch.setenv("CIBOARD_DATA_DIR", str(data))
    monkeypatch.setattr(demo, "build", out_of_space)
    get_settings.cache_clear()
    try:
        app = AppTest.from_file(APP, default_timeout=30).run()
        wait_until(lambda: first_run.demo_build(get_settings()).state == "failed", 30)
        app.run()
        assert not app.exception
        [error] = app.error
        assert "could not be built" in error.value and "terminal" in error.value
        assert str(tmp_path) not in shown(app) and "Traceback" not in shown(app)
        assert "No space left on device" in capsys.readouterr().err
        assert not (data / first_run.SCRATCH).exists() and not Warehouse(get_settings()).exists()

        app.button[0].click().run()  # "Try again" builds again
        wait_until(lambda: first_run.demo_build(get_settings()).state == "failed", 30)
        assert "No space left on device" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_two_builds_of_one_folder_at_once_make_one_district(tmp_path, monkeypatch):
    """As two servers started on one data folder would: the second waits for the first's lock and
    finds the warehouse there."""
    made = []

    def quick_build(warehouse, *, progress, **options):
        made.append(warehouse.directory)
        time.sleep(1)
        warehouse.init(["2025-26"])
        (Path(warehouse.settings.data_dir) / "demo_files").mkdir()
        return demo.DemoResult(0, 0, 0, warehouse.version(), [], {})

    monkeypatch.setattr(demo, "build", quick_build)
    settings = Settings(data_dir=tmp_path / "data")
    results, said = [], []
    threads = [threading.Thread(target=lambda: results.append(first_run.build(settings, said.append))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(made) == 1 and sorted(r is None for r in results) == [False, True]
    assert any("another process is building" in line for line in said)
    assert Warehouse(settings).exists() and not (tmp_path / "data" / first_run.SCRATCH).exists()


def test_a_first_start_on_the_lake_moves_the_finished_district_in_as_one_snapshot(tmp_path, monkeypatch):
    def quick_build(warehouse, *, progress, **options):
        warehouse.init(["2025-26"])
        with warehouse.publish() as con:
            con.execute("insert into vendors values ('V1', 'BrightPath', 1)")
        (Path(warehouse.settings.data_dir) / "demo_files").mkdir()
        return demo.DemoResult(0, 0, 0, warehouse.version(), [], {})

    monkeypatch.setattr(demo, "build", quick_build)
    settings = Settings(data_dir=tmp_path / "data", storage="lake")
    first_run.build(settings, lambda message: None)
    lake = Warehouse(settings)
    assert lake.version().startswith("lake-")
    with lake.cursor() as cur:
        assert cur.execute("select vendor_id from vendors").fetchall() == [("V1",)]
    assert not (tmp_path / "data" / "warehouse").exists() and not (tmp_path / "data" / first_run.SCRATCH).exists()
    lake.close()
