"""Two app servers on one PostgreSQL (the lake's catalog and the app database) and one shared
lake folder, as the README's *Several servers* sets them up, driven in headless Chromium:
a third process ingests and both servers show it on their next run without a restart; a
meeting note saved through one server is read through the other; two people saving the same
notes through different servers get the edit conflict, not a silent overwrite.

Skipped, with the reason, without Chromium or PostgreSQL (.ci/run provides both).
"""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from test_browser import CHROMIUM, browser, errors_on, free_port, open_as, settle  # noqa: F401 (browser: a fixture)
from ciboard import accounts, demo
from ciboard.appdb import AppDB
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not found: apt-get install chromium chromium-driver"),
]


def start_server(environment: dict, log: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, **environment}, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return url, process
        except OSError:
            time.sleep(0.3)
    process.kill()
    pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")


def rerun(page, link: str) -> None:
    """Runs the page again as a person would, from the sidebar: reloading the tab would sign out."""
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=link, exact=True).click()
    settle(page)


def notes_of(page):
    return page.get_by_placeholder("Notes…").first


def ready(page):
    """Once the meeting's numbers are shown: until then the page may still be drawing its boxes."""
    page.get_by_text("shown here by themselves in a moment").wait_for(state="detached", timeout=900_000)
    settle(page)
    return page


def save_notes(page, text: str) -> None:
    """Types once the meeting's numbers are ready: what a save does while they are still being
    prepared is test_page_meetings' concern; here the timing of a busy machine would decide it."""
    notes_of(ready(page)).fill(text)
    page.get_by_role("button", name="Save notes").click()
    settle(page)


def test_two_servers_share_one_lake_and_one_app_database(tmp_path, postgres_url, browser):  # noqa: F811
    shared = {"CIBOARD_CATALOG_URL": postgres_url, "CIBOARD_APP_DB_URL": postgres_url,
              "CIBOARD_LAKE_PATH": str(tmp_path / "shared-lake")}
    settings = Settings(data_dir=tmp_path / "builder", catalog_url=postgres_url, app_db_url=postgres_url,
                        lake_path=tmp_path / "shared-lake")
    warehouse = Warehouse(settings)
    demo.build(warehouse, students=300, seed=11)
    passwords = {row["username"]: row["password"] for row in accounts.demo_credentials(AppDB.of(settings))}
    servers = [start_server({**shared, "CIBOARD_DATA_DIR": str(tmp_path / name)}, tmp_path / f"{name}.log")
               for name in ("server-a", "server-b")]
    (a, _), (b, _) = servers
    try:
        # A third process ingests; both servers show the new snapshot on their next run.
        shown = {}
        for name, url in (("a", a), ("b", b)):
            page = open_as(browser, url, passwords, "analyst", "payments", height=2000)
            shown[name] = page
        before = warehouse.version()
        done = subprocess.run(
            [sys.executable, "-c", "from ciboard.cli import main; main()", "ingest", str(demo.next_week_of_sessions(warehouse, "V1", tmp_path)),
             "--kind", "sessions", "--vendor", "V1"],
            cwd=ROOT, env={**os.environ, **shared, "CIBOARD_DATA_DIR": str(tmp_path / "ingest")},
            capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        after = warehouse.version()
        assert after != before
        for name, page in shown.items():
            rerun(page, "Payments")
            text = page.locator("[data-testid='stMain']").inner_text()
            assert f"data version {int(after.removeprefix('lake-'))}" in text, f"server {name} still shows the old data"
            page.close()

        # A note saved through server A is read through server B.
        page_a = open_as(browser, a, passwords, "facilitator", "meetings", height=3200)
        save_notes(page_a, "Bus times changed on Feb 2; two sites start 15 minutes later.")
        assert errors_on(page_a) == []
        page_b = open_as(browser, b, passwords, "facilitator", "meetings", height=3200)
        assert "Bus times changed" in notes_of(ready(page_b)).input_value()

        # Two people, two servers, the same notes: the second save is shown both, not lost.
        save_notes(page_a, "Sites 3 and 7 start at 3:45 from Feb 9.")
        save_notes(page_b, "Bus times changed on Feb 2; tutors wait ten minutes.")
        assert "Not saved" in page_b.locator("[data-testid='stMain']").inner_text()
        rerun(page_a, "Meetings")
        assert "Sites 3 and 7" in notes_of(ready(page_a)).input_value(), "server B's stale save overwrote server A's"
        page_a.close()
        page_b.close()
    finally:
        for _, process in servers:
            process.terminate()
            process.wait(timeout=20)
        warehouse.close()
