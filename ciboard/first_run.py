"""The first start on a fresh machine: the demo district is built in the background, once per
process, while everyone who opens the dashboard sees its progress.

The build writes into a scratch folder beside the warehouse and moves in when whole, the
warehouse's pointer last, so no reader (in this process or another, or after a crash) ever
opens half a district. Nothing here draws inside a cached function: Streamlit replays what a
cached function drew on every later call, on every page, until a restart.
"""

import fcntl
import shutil
import sqlite3
import sys
import threading
import time
import traceback
from contextlib import closing
from pathlib import Path
from typing import Literal

import streamlit as st
from streamlit import config
from streamlit.web.server import server_util

from ciboard import demo
from ciboard.ingest import Progress
from ciboard.settings import Settings, get_settings
from ciboard.warehouse import POINTER, Warehouse

SCRATCH = ".demo-building"  # in the data folder, so moving in is a rename on one file system
TAKES = "about 2 minutes"  # the default demo on 2 cores: 75 s to build when idle, 4-5 min when they are busy


_READY: set[str] = set()


def ready() -> bool:
    """Whether the warehouse exists; until it does, main.py shows the demo's progress page.
    Asked on every page run, and a warehouse once made stays made: a yes is kept for the
    settings it was given for (asking a lake's catalog takes some 40 ms)."""
    settings = get_settings()
    key = settings.model_dump_json()
    if key in _READY:
        return True
    warehouse = Warehouse(settings)
    try:
        made = warehouse.exists()
    finally:
        warehouse.close()
    if made:
        _READY.add(key)
    return made


class DemoBuild:
    """This process's build of one data folder's demo district, on its own thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.state: Literal["idle", "running", "failed", "done"] = "idle"
        self.latest = ""
        self.started = self.finished = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Starts the build unless it is running (again after a failure, or if the warehouse it
        built has gone since)."""
        with self._lock:
            if self.state == "running":
                return
            self.state, self.latest, self.started = "running", "starting", time.monotonic()
            threading.Thread(target=self._run, name="ciboard-demo-build", daemon=True).start()

    def elapsed(self) -> float:
        return (self.finished if self.state in ("done", "failed") else time.monotonic()) - self.started

    def _say(self, message: str) -> None:
        self.latest = message

    def _run(self) -> None:
        try:
            build(self.settings, self._say)
        except Exception:
            # The terminal gets the traceback; the page only says that it failed and where to look.
            announce("The demo district could not be built (the page offers to try again):")
            traceback.print_exc()
            self.finished, self.state = time.monotonic(), "failed"
        else:
            self.finished, self.state = time.monotonic(), "done"


_BUILDS: dict[Path, DemoBuild] = {}
_BUILDS_LOCK = threading.Lock()


def demo_build(settings: Settings) -> DemoBuild:
    """The one build of this data folder in this process; a plain registry rather than a
    Streamlit cache, so clearing the caches cannot start a second one."""
    with _BUILDS_LOCK:
        return _BUILDS.setdefault(Path(settings.data_dir).resolve(), DemoBuild(settings))


def build(settings: Settings, say: Progress) -> demo.DemoResult | None:
    """Builds the demo district into the data folder, unless a warehouse is there already
    (None: another process built it meanwhile). Prints the address and the demo's passwords."""
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "demo-build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("another process is building the demo district in this folder; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if Warehouse(settings).exists():
            return None
        started = time.monotonic()
        announce(f"First start: building the demo district in {data.resolve()} ({TAKES}).\n"
                 f"  Its progress is on the page at {address()}")
        scratch = data / SCRATCH
        shutil.rmtree(scratch, ignore_errors=True)  # what a killed build left behind
        # Built in the scratch folder, then moved in whole, so no server reads a half-built district:
        # a lake of the data folder's own is built there as it will be; for a lake elsewhere
        # (several servers), files are built and then moved into it.
        storage = "lake" if _local_lake(settings) else "files"
        staged = settings.model_copy(update={"data_dir": scratch, "storage": storage, "catalog_url": None})
        try:
            if not settings.app_db_url:
                copy_app_db(settings.app_db_path, staged.app_db_path)  # accounts made before the demo count
            store = Warehouse(staged)
            result = demo.build(store, progress=say)
            store.close()
            say("moving the finished district into place")
            move_in(staged, settings)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    announce_ready(result, time.monotonic() - started)
    return result


def copy_app_db(source: Path, target: Path) -> None:
    """Through SQLite's backup, so a reader of the target never sees half a copy. A PostgreSQL app
    database (CIBOARD_APP_DB_URL) is not a file: the build writes its accounts there directly."""
    if not source.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source)) as read, closing(sqlite3.connect(target, timeout=30)) as write:
        read.backup(write)


def _local_lake(settings: Settings) -> bool:
    """Whether the warehouse is a lake wholly in the data folder (catalog and files)."""
    return settings.on_lake and not settings.catalog_url and settings.lake_path is None


def move_in(staged: Settings, settings: Settings) -> None:
    """The raw files, the app database, and last the warehouse: a lake of the data folder's own
    by renaming its folder (its read copies first), or files' current version and then the
    pointer that makes the warehouse exist."""
    files = Path(settings.data_dir) / "demo_files"
    shutil.rmtree(files, ignore_errors=True)
    (Path(staged.data_dir) / "demo_files").replace(files)
    if not settings.app_db_url:
        copy_app_db(staged.app_db_path, settings.app_db_path)
    if _local_lake(settings) and staged.on_lake:
        copies, theirs = Path(staged.data_dir) / "lake-copies", Path(settings.data_dir) / "lake-copies"
        if copies.exists():
            shutil.rmtree(theirs, ignore_errors=True)  # an earlier lake's: its id is not this one's
            copies.replace(theirs)
        staged.lake_dir.replace(settings.lake_dir)
        return
    built, target = Warehouse(staged), Warehouse(settings)
    version = built.version()
    if settings.on_lake:
        target.move_in([(version, built.path_of(version))], {})
        return
    with target.writer_lock():
        built.path_of(version).replace(target.path_of(version))
        (built.directory / POINTER).replace(target.directory / POINTER)


def address() -> str:
    """The address to open, as Streamlit's own "You can now view" lines give it."""
    host = "localhost"
    if config.is_manually_set("browser.serverAddress"):
        host = config.get_option("browser.serverAddress")
    elif config.is_manually_set("server.address") and config.get_option("server.address") not in ("0.0.0.0", "::"):
        host = config.get_option("server.address")
    return server_util.get_url(host)


def announce(text: str) -> None:
    """To the terminal that runs the server, indented as Streamlit's own lines are."""
    print(f"\n  {text}\n", file=sys.stdout, flush=True)


def announce_ready(result: demo.DemoResult, seconds: float) -> None:
    took = f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    if not result.passwords:
        announce(f"The demo district is ready ({took}). Open {address()} and sign in: the app database "
                 "already had accounts, so the demo made none.")
        return
    width = max(map(len, result.passwords))
    accounts = "\n".join(f"    {username:<{width}}  {password}" for username, password in result.passwords.items())
    announce(f"The demo district is ready ({took}). Open {address()} and sign in with a demo account\n"
             f"  (shown here once; the demo's sign-in page lists them too):\n\n{accounts}")


def progress_page() -> None:
    """What everyone who opens the dashboard sees until the demo district is built."""
    demo_district = demo_build(get_settings())
    if demo_district.state != "failed":
        demo_district.start()
    st.title("CI Board")
    st.caption("The shared data room of the district, its schools and its tutoring vendors.")
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        if demo_district.state == "failed":
            st.error(
                "The demo district could not be built. The terminal that runs the server says why; "
                "once that is put right, try again.",
                icon=":material/error:",
            )
            st.button("Try again", icon=":material/refresh:", on_click=demo_district.start)
            return
        st.markdown(
            f"**Building the demo district.** This first start writes a school year of a made-up district "
            f"and loads it through the same checks as real data, which takes {TAKES}. This page moves on "
            "to sign-in by itself; the demo's accounts and passwords are listed there, and printed in the "
            "terminal that runs the server."
        )
        progress(demo_district)


@st.fragment(run_every=2)  # a run costs the server about 0.1 s of CPU for each tab that waits
def progress(demo_district: DemoBuild) -> None:
    if demo_district.state != "running":
        st.rerun()  # built (or failed): the whole page moves on
    minutes, seconds = divmod(int(demo_district.elapsed()), 60)
    with st.status(f"{minutes}:{seconds:02d} elapsed", state="running", expanded=True):
        st.caption(demo_district.latest)
