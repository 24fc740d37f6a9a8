"""The server answers nothing before sign-in but the pages' own traffic: Streamlit's metrics
route, open to anyone in 1.67 and not closable by config, is closed by app.py's middleware."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
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


def status(url: str) -> int:
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
    yield url
    process.terminate()
    process.wait(timeout=20)


def status_or_none(url: str) -> int | None:
    try:
        return status(url)
    except OSError:
        return None


def test_the_metrics_route_answers_not_found(server):
    for path in ("/_stcore/metrics", "/_stcore/metrics/", "/_stcore/metrics?families=session_events", "/%5Fstcore/metrics"):
        assert status(server + path) == 404, path


def test_the_dashboard_is_served(server):
    page = urllib.request.urlopen(server + "/", timeout=5)
    assert page.status == 200 and b"<html" in page.read().lower()
