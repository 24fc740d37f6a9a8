"""Shared fixtures: a warehouse holding the README's sample files, and one demo district per run."""

import functools
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ciboard import demo, followup, signal_store
from ciboard.appdb import AppDB
from ciboard.ingest import Submission, ingest
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
# The order a district loads them in: reference data, then rosters, then what refers to students.
SAMPLE_FILES = (
    ("schools", None),
    ("vendors", None),
    ("contracts", None),
    ("annotations", None),
    ("roster", None),
    ("sessions", "V1"),
    ("school_attendance", None),
    ("assessment", None),
    ("survey", "V1"),
)
DEMO_STUDENTS = 3000
DEMO_SEED = 11


def make_warehouse(data_dir: Path, **settings) -> Warehouse:
    """The app database is the SQLite file in data_dir unless `app_db_url` says otherwise, whatever
    the environment says (the `app_db_url` fixture sets it for the CLI)."""
    return Warehouse(Settings(**{"data_dir": data_dir, "app_db_url": None, **settings}))


def publish_empty(warehouse: Warehouse, times: int = 1) -> None:
    """New versions that change no outcome data, as many as `times`: later loads, for what they do
    to old versions. Each changes one row of its own, as a lake writes no snapshot for a publish
    that changes nothing."""
    for _ in range(times):
        with warehouse.publish() as con:
            con.execute("delete from warehouse_info where key = 'a later load'")
            con.execute("insert into warehouse_info values ('a later load', ?)", [uuid.uuid4().hex])


def close_statement(warehouse: Warehouse, db, who, vendor_id: str, period: str, **options):
    """Closes a vendor's month as the Payments page does: the statement as `who` reads it now."""
    from ciboard import queries, statements

    computed = queries.run(warehouse, "statement", who.scope, {"vendor_id": vendor_id, "period": period})
    return statements.close(warehouse, db, who, computed, **options)


def stored_order(con) -> list[tuple]:
    """(metric_id, student_key, period_start) of every fact in the order the table stores them."""
    return con.execute("select metric_id, student_key, period_start from facts order by rowid").fetchall()


def shuffle_facts(con) -> None:
    """Stores a publish's facts in no order, as code before migration 16 left them."""
    con.execute("create temp table shuffled as select * from facts order by hash(student_key, metric_id, period_start)")
    con.execute("delete from facts")
    con.execute("insert into facts select * from shuffled")
    con.execute("drop table shuffled")


def in_metric_order(stored: list[tuple]) -> bool:
    """Each metric's facts side by side, and in it each student's weeks: what lets a view skip the
    other metrics and group a metric's facts by student fast (warehouse.FACTS_ORDER). `stored` is
    stored_order's; the metrics may come in any order."""
    runs = [row[0] for i, row in enumerate(stored) if i == 0 or stored[i - 1][0] != row[0]]
    return len(runs) == len(set(runs)) and all(
        row[1:] <= after[1:] for row, after in zip(stored, stored[1:]) if row[0] == after[0]
    )


def sample_submissions() -> list[Submission]:
    return [Submission(SAMPLES / f"{kind}.csv", kind, vendor) for kind, vendor in SAMPLE_FILES]


@pytest.fixture(scope="session")
def empty_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder of an empty warehouse with the 2025-26 school year, made once: each test
    that wants one gets a copy, which takes a hundredth of the time."""
    data_dir = tmp_path_factory.mktemp("empty") / "data"
    made = make_warehouse(data_dir)
    made.init(["2025-26"])
    made.close()
    return data_dir


@pytest.fixture(scope="session")
def loaded_data_dir(tmp_path_factory: pytest.TempPathFactory, empty_data_dir: Path) -> Path:
    """`empty_data_dir` with every sample file loaded, made once to be copied the same way."""
    return built_once(tmp_path_factory.mktemp("loaded"), empty_data_dir, lambda files: sample_submissions())


def built_once(folder: Path, empty_data_dir: Path, submissions: Callable[[Path], list[Submission]]) -> Path:
    """The data folder of `empty_data_dir` with the files `submissions` writes in `folder / "files"`
    loaded, for a module's tests to copy (`copy_of`): each test of a module that loaded its own
    district took an init and an ingest, two to three seconds, a copy a few hundredths. An ingest
    writes nothing to the app database, so a copy may have its own (`app_db_url`)."""
    data_dir = folder / "data"
    shutil.copytree(empty_data_dir, data_dir)
    made = make_warehouse(data_dir)
    ingest(made, submissions(folder / "files"))
    made.close()
    return data_dir


def copy_of(built: Path, data_dir: Path, **settings) -> Warehouse:
    """A warehouse of the test's own in `data_dir`: a copy of `built` (a data folder names no path
    of its own)."""
    shutil.copytree(built, data_dir)
    return make_warehouse(data_dir, **settings)


@pytest.fixture
def warehouse(tmp_path: Path, empty_data_dir: Path):
    """An empty warehouse with the 2025-26 school year, the test's own."""
    shutil.copytree(empty_data_dir, tmp_path / "data")
    warehouse = make_warehouse(tmp_path / "data")
    yield warehouse
    warehouse.close()


@pytest.fixture
def loaded(warehouse: Warehouse, loaded_data_dir: Path) -> Warehouse:
    """The empty warehouse with every sample file loaded."""
    warehouse.close()
    shutil.rmtree(warehouse.settings.data_dir)
    shutil.copytree(loaded_data_dir, warehouse.settings.data_dir)
    return warehouse


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory):
    """The demo district, each worker's own copy: tests write to its app database."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    shutil.copytree(_demo_built_once(tmp_path_factory), data_dir)
    warehouse = make_warehouse(data_dir)
    yield warehouse
    warehouse.close()


def _demo_built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data folder, built by whichever of pytest-xdist's workers asks first while the
    others wait for it (a build takes a minute alone, two at once take two minutes each), its
    readings prepared as a server would (a minute and a half more), then copied: a data folder
    names no path of its own."""
    import fcntl

    run_folder = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_folder = run_folder.parent  # the workers' base folders are side by side in the run's
    built = run_folder / "demo-built" / "data"
    with open(run_folder / "demo-built.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built.parent / "done").exists():
            shutil.rmtree(built.parent, ignore_errors=True)  # a worker that failed half-way
            made = make_warehouse(built)
            demo.build(made, students=DEMO_STUDENTS, seed=DEMO_SEED)
            # As a server does once it starts: without the stored readings, every test that opens
            # Meetings or Overview charted the signals again (13 s for a draft meeting's).
            signal_store.prepare(made, signal_store.plan(made, AppDB.of(made.settings)), followup)
            made.close()
            (built.parent / "done").touch()
    return built


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for this test, dropped after it. The server is the one
    CIBOARD_TEST_POSTGRES_URL names (.ci/run starts a throwaway one: scripts/throwaway_postgres.sh)."""
    import uuid

    import psycopg

    server = os.environ.get("CIBOARD_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("no PostgreSQL: set CIBOARD_TEST_POSTGRES_URL (scripts/throwaway_postgres.sh starts one)")
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL at CIBOARD_TEST_POSTGRES_URL: {error}")
    name = f"ciboard_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"create database {name}")
        try:
            yield f"{server.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f"drop database {name} with (force)")


@pytest.fixture(params=["sqlite", "postgresql"])
def app_db_url(request, monkeypatch):
    """Runs an app-database test on each backend: None (the SQLite file in the data folder) and
    the URL of a fresh PostgreSQL database. Settings made meanwhile (the CLI's too) point there."""
    from ciboard.settings import get_settings

    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    if url:
        monkeypatch.setenv("CIBOARD_APP_DB_URL", url)
    else:
        monkeypatch.delenv("CIBOARD_APP_DB_URL", raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def snapshot(warehouse: Warehouse) -> dict[str, list]:
    """Every data table's rows, to compare before and after something that must change nothing."""
    tables = (
        "facts", "students", "sessions", "school_attendance", "assessments", "survey_responses",
        "schools", "vendors", "contracts", "annotations", "student_dosage",
    )
    with warehouse.cursor() as cur:
        return {t: sorted(map(repr, cur.execute(f"select * from {t}").fetchall())) for t in tables}


SESSIONS_SAMPLE = SAMPLES / "sessions.csv"


ROOT = Path(__file__).resolve().parent.parent
MEDIA: list = []  # the media stores of AppTest runs, newest last, for reading downloads


@pytest.fixture
def dashboard(demo_warehouse, monkeypatch):
    """The dashboard reads the demo warehouse; caches start empty (AppTest shares them)."""
    import streamlit as st

    from ciboard.settings import get_settings

    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    class RecordedMedia(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            MEDIA.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", RecordedMedia)
    # AppTest compiles main.py and the page anew on every run (a script cache of its own per run);
    # the files do not change during a test run, so one cache serves every run, as on a server.
    import streamlit.testing.v1.local_script_runner as local_script_runner

    monkeypatch.setattr(app_test, "ScriptCache", _shared_script_cache)
    monkeypatch.setattr(local_script_runner, "ScriptCache", _shared_script_cache)
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(demo_warehouse.settings.data_dir))
    get_settings.cache_clear()
    # Cached answers are keyed by the warehouse file, so they can be shared across tests of one
    # warehouse; the warehouse resource itself is per data dir, so it is dropped.
    st.cache_resource.clear()
    yield demo_warehouse
    get_settings.cache_clear()


@functools.cache
def _shared_script_cache():
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    return ScriptCache()


def signed_in(username: str) -> dict:
    """The session state of a signed-in demo account (the demo makes analyst, facilitator,
    admin and vendor-v1 … vendor-v6)."""
    from datetime import datetime

    return {"signed_in": {"username": username, "at": datetime.now().isoformat()}}


def open_page(path: str, *, query: dict | None = None, state: dict | None = None, user: str | None = "analyst"):
    """Opens the app at one page, signed in as `user`, as someone following a link with these
    query parameters.

    Filters are query parameters: AppTest loses the sidebar's elements after the first
    run of an app with st.navigation, but the values it set live on.
    """
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    app = AppTest.from_file(str(ROOT / "main.py"), default_timeout=90)
    app.query_params.update(query or {})
    state = {**(signed_in(user) if user else {}), **(state or {})}
    for key, value in (state or {}).items():
        app.session_state[key] = value
    # Straight to the page, as a followed link lands, not through Overview first: that was a
    # second whole page run in every page test. AppTest asks for a page before its first run
    # only by file name, which is not the address st.navigation gives a page, hence its hash.
    if path in URL_PATHS:
        app._page_hash = calc_hash(URL_PATHS[path])
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    app.switch_page(path)  # refuses a page this account's navigation does not have
    if app._page_hash != app._finished_page_script_hash:
        app.run()
        assert not app.exception, [e.value for e in app.exception]
    return app


def _url_paths() -> dict[str, str]:
    """Each page file's address, from main.py's PAGES (section, file, title, icon, url path, roles)."""
    import ast

    tree = ast.parse((ROOT / "main.py").read_text())
    [pages] = [node.value for node in tree.body
               if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PAGES"]
    return {f"app_pages/{row.elts[1].value}.py": row.elts[4].value for row in pages.elts}


URL_PATHS = _url_paths()


VENDOR_LABELS = {
    "V1": "V1 · BrightPath Tutoring",
    "V2": "V2 · Lumen Learning Partners",
    "V3": "V3 · Keystone Math Corps",
    "V4": "V4 · Northstar Readers",
    "V5": "V5 · Cardinal Tutors",
    "V6": "V6 · Summit Peer Tutoring",
}


def figures(app) -> list[dict]:
    """The plotly figures a page drew, as JSON dicts."""
    import json

    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def downloads(app) -> dict[str, bytes]:
    """What each download button of the latest run would give the user, by its key."""
    storage = MEDIA[-1]
    found = {}
    for button in app.get("download_button"):
        file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
        found[button.proto.id] = storage.get_file(file_id).content
    return found


def plotted(trace: dict, axis: str = "y") -> list:
    """A trace's values: plotly sends numeric arrays as base64 typed arrays."""
    import base64

    import numpy as np

    values = trace.get(axis)
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values or [])


def view(warehouse, name: str, **params):
    """A view as an analyst sees it: what a page's numbers are checked against."""
    from ciboard import queries
    from ciboard.access import ANALYST

    return queries.run(warehouse, name, ANALYST, params)


def default_dates(warehouse) -> dict:
    """The filter bar's default dates: the school year with data."""
    years = view(warehouse, "choices").query("dimension == 'school_year' and students > 0")
    return {"start": years["starts_on"].max().isoformat(), "end": years["ends_on"].max().isoformat()}


def download(app, name: str):
    """The CSV behind a page's download button named `name`, as a frame."""
    import io

    import pandas as pd

    [content] = [data for key, data in downloads(app).items() if key.endswith(f"download-{name}")]
    return pd.read_csv(io.BytesIO(content))


def pytest_collection_modifyitems(config, items):
    """Modules that need no demo district run first: the first worker to reach one builds the
    demo (a minute and a half) while the others go on with the rest, instead of all of them
    waiting for it from the first test on. A module keeps its tests together, in their order."""
    needs_demo = {item.module for item in items if "demo_warehouse" in item.fixturenames}
    items.sort(key=lambda item: item.module in needs_demo)


def pytest_configure(config):
    """Streamlit scans every installed package for components when an AppTest first runs, 0.24 s
    each time; a server scans once at start. The packages do not change during a run. And an
    AppTest waits for its run's end to be told, not by asking (`_wait_for_the_run`)."""
    from streamlit.components.v2 import manifest_scanner
    from streamlit.testing.v1 import local_script_runner

    manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)
    local_script_runner.require_widgets_deltas = _wait_for_the_run


def _wait_for_the_run(runner, timeout: float = 3) -> None:
    """AppTest's wait for a script run, told by the run's end instead of asking every millisecond:
    the asking thread woke a thousand times a second and took the interpreter from the script it
    waited for (a tenth of the CPU time of a page test). A run past `timeout` fails as AppTest's."""
    import threading

    from streamlit.runtime.scriptrunner import ScriptRunnerEvent

    ended = threading.Event()

    def on_event(sender, event, **kwargs):
        if event == ScriptRunnerEvent.SHUTDOWN:
            ended.set()

    runner.on_event.connect(on_event, weak=False)
    try:
        if runner.script_stopped() or ended.wait(timeout):
            return
    finally:
        runner.on_event.disconnect(on_event)
    runner.request_stop()
    runner.join()
    raise RuntimeError(f"AppTest script run timed out after {timeout}(s)")


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))


def pytest_unconfigure(config):
    """Leaves without the interpreter's teardown, keeping pytest's exit status: DuckDB's
    bindings print a page of "leaked instance" warnings at teardown when connections outlive
    the run (Streamlit's caches keep some), burying pytest's summary line."""
    import sys

    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: its controller prints the summary, and waits for it to end
    if _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
