"""The dashboard in a real browser: a real `streamlit run` server on 127.0.0.1 and Debian's
headless Chromium, driven by playwright. Every page opens without an error box, a filter
change in the sidebar changes the chart, and each page leaves a screenshot in
tests/screenshots/ for a person to look at.

Skipped, with the reason, where Chromium or playwright is missing.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "tests" / "screenshots"
# The default page (Overview) lives at the root.
PAGES = ["", "trends", "disparities", "vendors", "relationships", "data-quality", "data-map"]

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not found: apt-get install chromium chromium-driver"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    demo = request.getfixturevalue("demo_warehouse")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {**os.environ, "CIBOARD_DATA_DIR": str(demo.settings.data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def settle(page, timeout: float = 60_000) -> None:
    """Waits until the app is connected and its script has finished running."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_timeout(500)


def errors_on(page) -> list[str]:
    boxes = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    return [boxes.nth(i).inner_text()[:300] for i in range(boxes.count())]


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    # The app scrolls inside its own container, so a full-page shot would miss what is below
    # the fold: capture the main block instead.
    page.locator("[data-testid='stMainBlockContainer']").screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.parametrize("path", PAGES)
def test_every_page_opens_without_an_error(server, browser, path):
    # Streamlit paints only what is in the viewport, so a tall one lets the shot show the page.
    page = browser.new_page(viewport={"width": 1500, "height": 4000})
    page.goto(f"{server}/{path}")
    settle(page)
    assert errors_on(page) == []
    assert page.locator("h1").first.inner_text().strip()
    shoot(page, path or "overview")
    page.close()


def test_a_sidebar_filter_changes_the_chart_and_the_url(server, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/trends")
    settle(page)
    headline = page.locator("[data-testid='stMarkdownContainer'] strong").first.locator("xpath=../..").inner_text()

    vendor = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").first
    vendor.click()
    page.get_by_role("option", name="V3 · Keystone Math Corps").click()
    page.keyboard.press("Escape")
    started = time.monotonic()
    settle(page)
    elapsed = time.monotonic() - started
    changed = page.locator("[data-testid='stMarkdownContainer'] strong").first.locator("xpath=../..").inner_text()
    assert changed != headline
    assert "vendor=V3" in page.url
    assert errors_on(page) == []
    shoot(page, "trends-v3")
    print(f"filter change to updated chart: {elapsed:.2f} s")

    # The copied link reproduces the view in a fresh tab.
    copy = browser.new_page(viewport={"width": 1500, "height": 1000})
    copy.goto(page.url)
    settle(copy)
    again = copy.locator("[data-testid='stMarkdownContainer'] strong").first.locator("xpath=../..").inner_text()
    assert again == changed
    copy.close()

    # The filters follow the user to another page, and survive a reload there.
    page.get_by_role("link", name="Vendors").click()
    page.wait_for_url("**/vendors?*", timeout=30_000)
    settle(page)
    assert "vendor=V3" in page.url
    chosen = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").first
    assert "V3 · Keystone Math Corps" in chosen.inner_text()
    page.reload()
    settle(page)
    assert "V3 · Keystone Math Corps" in chosen.inner_text() and errors_on(page) == []
    page.close()
