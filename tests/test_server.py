"""The server answers nothing before sign-in but the pages' own traffic: Streamlit's metrics
route, open to anyone in 1.67 and not closable by config, is closed by app.py's middleware."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ciboard.server import closed

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", [
    "/_stcore/metrics", "/_stcore/metrics/", "//_stcore//metrics", "/_STCORE/Metrics", "/board/_stcore/metrics",
])
def test_every_spelling_of_the_metrics_route_is_closed(path):
    assert closed(path)


@pytest.mark.parametrize("path", ["/", "/_stcore/health", "/_stcore/stream", "/trends", "/_stcore/metrics-help"])
def test_the_pages_own_routes_stay_open(path):
    assert not closed(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status(url: str | urllib.request.Request) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py`, as the README starts it; no page runs, so no warehouse is built."""
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    log = folder / "streamlit.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "CIBOARD_DATA_DIR": str(folder / "data")}, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while status_or_none(f"{url}/_stcore/health") != 200:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
        time.sleep(0.3)
    yield url, folder / "data"
    process.terminate()
    process.wait(timeout=20)


def status_or_none(url: str) -> int | None:
    try:
        return status(url)
    except OSError:
        return None


def test_the_metrics_route_answers_not_found(server):
    server, _ = server
    for path in ("/_stcore/metrics", "/_stcore/metrics/", "/_stcore/metrics?families=session_events", "/%5Fstcore/metrics"):
        assert status(server + path) == 404, path


def test_the_dashboard_is_served(server):
    server, _ = server
    page = urllib.request.urlopen(server + "/", timeout=5)
    assert page.status == 200 and b"<html" in page.read().lower()


def test_an_accounts_calendar_link_is_served_to_a_calendar_app_and_nothing_else_is(server):
    from icalendar import Calendar

    from ciboard import accounts, calendar_feeds
    from ciboard.appdb import AppDB

    server, data = server
    db = AppDB(data / "app.sqlite3")
    token = calendar_feeds.make_link(db, accounts.add_user(db, "fran", role="facilitator"))
    served = urllib.request.urlopen(calendar_feeds.address(server, token), timeout=10)
    assert served.headers["Content-Type"].startswith("text/calendar")
    assert served.headers["Cache-Control"] == "private, no-store"
    assert Calendar.from_ical(served.read())["x-wr-calname"] == "CI Board: fran"
    assert status(urllib.request.Request(calendar_feeds.address(server, token), method="POST")) == 405
    for wrong in (token.swapcase(), token[:-1], "x" * 32, urllib.parse.quote("' or 1=1 --" + "x" * 21), "../app.sqlite3", token + "x"):
        assert status(server + f"/calendar/{wrong}.ics") in (400, 404), wrong  # 400: Streamlit's own path check
