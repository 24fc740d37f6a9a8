"""Dashboard benchmark: each page's script run cold and warm, per role, a filter change in Chromium, and
each page's first open in Chromium after a server start and after a publish.

    python bench/bench_pages.py --data-dir DIR [--repeats 9] [--users analyst,facilitator,vendor-v3] [--no-browser]
    python bench/bench_pages.py --data-dir DIR --first-opens 3      # only the first opens, 3 rounds
    python bench/bench_pages.py --data-dir DIR --server-settings 3  # the config's speed settings against Streamlit's defaults

DIR holds a warehouse (e.g. one bench/bench_core.py kept, or `ciboard demo --students 45000
--data-dir DIR` for about 10M facts). Prints, per page, the median and p90 time of a full
script run (main.py plus the page) with warm caches, and the first (cold) run that fills them,
through streamlit's AppTest, signed in as each demo account given; then the
time in headless Chromium from choosing a vendor in the sidebar to the updated chart, against
a real `streamlit run` server. Targets at 10M facts: 300 ms per page run, 1 s in the browser.

First opens: per round, the stored signals of the current version are deleted and a fresh
server started; signed in as the analyst in Chromium, each page is opened once from the
navigation, timed from the click to the page's title drawn and its script done. Then a new
version is published (the same data: a publish is what makes every cache and stored set of the
old one unused) and, in a new session, each page is opened once again. Prints each page's
median over the rounds, and says where a page showed that signals were being prepared rather
than wait for them. Target: 3 s on the demo, 5 s at 10M facts.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "overview": "app_pages/overview.py",
    "trends": "app_pages/trends.py",
    "disparities": "app_pages/disparities.py",
    "vendors": "app_pages/vendors.py",
    "relationships": "app_pages/relationships.py",
    "data-quality": "app_pages/data_quality.py",
    "data-map": "app_pages/data_map.py",
    "meetings": "app_pages/meetings.py",
    "commitments": "app_pages/commitments.py",
    "root-causes": "app_pages/root_causes.py",
    "pdsa": "app_pages/pdsa.py",
    "workgroups": "app_pages/workgroups.py",
}
PAGE_TARGET_MS = 300
BROWSER_TARGET_S = 1.0
# The targets for a page's first open: on the demo, and from 10M facts on.
FIRST_OPEN_TARGET_S = 3.0
FIRST_OPEN_TARGET_AT_SCALE_S = 5.0
AT_SCALE_FACTS = 10_000_000
# The navigation's names of the pages, in the order a first visit opens them.
TITLES = {
    "overview": "Overview", "trends": "Trends", "disparities": "Disparities", "vendors": "Vendors",
    "relationships": "Relationships", "meetings": "Meetings", "commitments": "Commitments",
    "root-causes": "Root causes", "pdsa": "PDSA cycles", "workgroups": "Workgroups",
    "data-quality": "Data quality", "data-map": "Data map",
}
PREPARING = "being prepared"


def page_runs(repeats: int, user: str) -> list[tuple[str, float, float, float]]:
    from datetime import datetime

    from streamlit.testing.v1 import AppTest

    results = []
    for name, path in PAGES.items():
        app = AppTest.from_file(str(ROOT / "main.py"), default_timeout=600)
        app.session_state["signed_in"] = {"username": user, "at": datetime.now().isoformat()}
        app.run()
        started = time.perf_counter()
        app.switch_page(path).run()  # the first run on the page fills the caches
        cold = (time.perf_counter() - started) * 1000
        if app.exception:
            raise SystemExit(f"{name}: {app.exception[0].value}")
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            app.run()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        results.append((name, cold, statistics.median(times), times[int(0.9 * (len(times) - 1))]))
        print(f"  {user} {name}: {statistics.median(times):.0f} ms", file=sys.stderr)
    return results


@contextmanager
def server(data_dir: Path, *options: str):
    """A fresh `streamlit run app.py` on a free port, serving DIR with .streamlit/config.toml and
    `options` over it; yields its address and process once healthy."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", *options],
        cwd=ROOT, env={**os.environ, "CIBOARD_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def browser(driver):
    return driver.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def sign_in(page, url: str, password: str, path: str = "") -> None:
    page.goto(f"{url}/{path}")  # a new session: sign in again
    page.wait_for_selector(IDLE, timeout=300_000)
    page.get_by_label("User name").fill("analyst")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(IDLE, timeout=300_000)


def analyst_password(data_dir: Path) -> str:
    from ciboard import accounts
    from ciboard.appdb import AppDB

    return {r["username"]: r["password"] for r in accounts.demo_credentials(AppDB(data_dir / "app.sqlite3"))}["analyst"]


def browser_filter_change(data_dir: Path, repeats: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    password = analyst_password(data_dir)
    with server(data_dir) as (url, _), sync_playwright() as driver:
        chromium = browser(driver)
        page = chromium.new_page(viewport={"width": 1500, "height": 1000})
        vendors = ["V1 · BrightPath Tutoring", "V2 · Lumen Learning Partners", "V3 · Keystone Math Corps",
                   "V4 · Northstar Readers", "V5 · Cardinal Tutors", "V6 · Summit Peer Tutoring"]
        headline = (
            "() => { const s = document.querySelector(\"[data-testid='stMain'] [data-testid='stMarkdownContainer'] strong\");"
            " return s ? s.parentElement.parentElement.innerText : ''; }"
        )
        # Each vendor twice, timed the second time: warm, as a meeting revisits its views.
        seconds = []
        for round_ in range(2):
            for vendor in vendors[: max(1, repeats // 2)]:
                sign_in(page, url, password, "trends")
                page.wait_for_function(f"() => ({headline})() !== ''", timeout=300_000)
                before = page.evaluate(headline)
                page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").first.click()
                page.keyboard.press("ArrowDown")
                started = time.perf_counter()
                page.get_by_role("option", name=vendor).click()
                page.wait_for_function(f"(before) => ({headline})() !== before", arg=before, timeout=300_000)
                page.wait_for_selector(IDLE, timeout=300_000)
                if round_:
                    seconds.append(time.perf_counter() - started)
        chromium.close()
    return seconds


def open_each_page(page, url: str, password: str) -> dict[str, tuple[float, bool]]:
    """Each page opened once from the navigation: seconds from the click to its title drawn and
    its script done, and whether it said signals were being prepared."""
    sign_in(page, url, password, "data-map")  # the one page that charts nothing: the others open cold
    opened = {}
    for name, title in TITLES.items():
        started = time.perf_counter()
        page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
        page.wait_for_function(
            "(title) => { const h = document.querySelector(\"[data-testid='stMain'] h1\"); return h && h.innerText.trim() === title; }",
            arg=title, timeout=600_000,
        )
        page.wait_for_selector(IDLE, timeout=600_000)
        opened[name] = (time.perf_counter() - started, PREPARING in page.inner_text("[data-testid='stMain']"))
        print(f"  {name}: {opened[name][0]:.1f} s{' (signals being prepared)' if opened[name][1] else ''}", file=sys.stderr)
    return opened


def first_opens(data_dir: Path, rounds: int, keep_stored: bool) -> dict[str, dict[str, list[tuple[float, bool]]]]:
    """Per round: a fresh server with no stored signals (or, with `keep_stored`, those a server
    stored before: a restart), each page's first open; then a publish and each page's first
    open in a new session."""
    import shutil

    from playwright.sync_api import sync_playwright

    from ciboard.settings import Settings
    from ciboard.warehouse import Warehouse

    password = analyst_password(data_dir)
    warehouse = Warehouse(Settings(data_dir=data_dir))
    found: dict[str, dict[str, list]] = {"after start": {}, "after publish": {}}
    for round_ in range(rounds):
        if not keep_stored:
            # By name, not through ciboard.signal_store: the same script times code from before there was one.
            shutil.rmtree(data_dir / "signals" / warehouse.version(), ignore_errors=True)
        with server(data_dir) as (url, _), sync_playwright() as driver:
            chromium = browser(driver)
            print(f"round {round_ + 1}: after start (load {load()})", file=sys.stderr)
            page = chromium.new_page(viewport={"width": 1500, "height": 1000})
            for name, result in open_each_page(page, url, password).items():
                found["after start"].setdefault(name, []).append(result)
            page.close()
            with warehouse.publish():
                pass  # the same data in a new version
            print(f"round {round_ + 1}: after publish (load {load()})", file=sys.stderr)
            page = chromium.new_page(viewport={"width": 1500, "height": 1000})
            for name, result in open_each_page(page, url, password).items():
                found["after publish"].setdefault(name, []).append(result)
            chromium.close()
    return found


# Streamlit's own defaults for what .streamlit/config.toml sets for speed.
STREAMLIT_DEFAULTS = ("--runner.postScriptGC", "true", "--server.fileWatcherType", "auto")


def server_settings(data_dir: Path, rounds: int) -> dict[str, list[tuple[float, int]]]:
    """Per round, a fresh server as configured and one with Streamlit's defaults, in turn (which
    goes first alternates): each page opened once from the navigation in one session, then the
    seconds all took and the server's resident memory (MB) after them."""
    from playwright.sync_api import sync_playwright

    password = analyst_password(data_dir)
    found: dict[str, list[tuple[float, int]]] = {"as configured": [], "Streamlit's defaults": []}
    for round_ in range(rounds):
        for name in list(found)[:: 1 if round_ % 2 == 0 else -1]:
            with server(data_dir, *(STREAMLIT_DEFAULTS if name != "as configured" else ())) as (url, process), \
                    sync_playwright() as driver:
                chromium = browser(driver)
                page = chromium.new_page(viewport={"width": 1500, "height": 1000})
                print(f"round {round_ + 1}, {name} (load {load()})", file=sys.stderr)
                started = time.perf_counter()
                open_each_page(page, url, password)
                seconds = time.perf_counter() - started
                status = Path(f"/proc/{process.pid}/status").read_text()
                rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) // 1024
                found[name].append((seconds, rss))
                chromium.close()
    return found


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--users", default="analyst,facilitator,vendor-v3", help="demo accounts to run the pages as")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--first-opens", type=int, default=0, metavar="ROUNDS",
                        help="only time each page's first open after a start and after a publish, over ROUNDS rounds")
    parser.add_argument("--server-settings", type=int, default=0, metavar="ROUNDS",
                        help="only time every page opened in turn by a server as configured and one with "
                             "Streamlit's defaults for what the config sets for speed, over ROUNDS rounds")
    parser.add_argument("--keep-stored", action="store_true",
                        help="with --first-opens: start with the signals a server stored before (a restart), not without")
    args = parser.parse_args()
    os.environ["CIBOARD_DATA_DIR"] = str(args.data_dir.resolve())
    sys.path.insert(0, str(ROOT))

    from ciboard.settings import Settings
    from ciboard.warehouse import Warehouse

    warehouse = Warehouse(Settings(data_dir=args.data_dir))
    with warehouse.cursor() as cur:
        facts = cur.execute("select count(*) from facts").fetchall()[0][0]
    print(f"CI Board page benchmark: {facts:,} facts in {args.data_dir}")
    if args.server_settings:
        found = server_settings(args.data_dir.resolve(), args.server_settings)
        print(f"\nEvery page opened in turn from the navigation in Chromium, a fresh server per round "
              f"({' '.join(STREAMLIT_DEFAULTS)} for Streamlit's defaults)")
        for name, rounds in found.items():
            seconds = ", ".join(f"{s:.1f}" for s, _ in rounds)
            print(f"{name:<22} median {statistics.median(s for s, _ in rounds):5.1f} s ({seconds}); "
                  f"memory after {statistics.median(m for _, m in rounds):.0f} MB")
        return
    if args.first_opens:
        started_load = load()
        target = FIRST_OPEN_TARGET_AT_SCALE_S if facts >= AT_SCALE_FACTS else FIRST_OPEN_TARGET_S
        found = first_opens(args.data_dir.resolve(), args.first_opens, args.keep_stored)
        start = "a restart (signals stored before)" if args.keep_stored else "a start (no signals stored)"
        print(f"\nFirst open of each page in Chromium after {start} and after a publish, median of {args.first_opens} rounds "
              f"(target {target:.0f} s at {facts:,} facts; load average {started_load} at the start, {load()} at the end)")
        print(f"{'page':<15}" + "".join(f"{when:>16}" for when in found) + "  result")
        for name in TITLES:
            cells, passed = "", True
            for when, pages in found.items():
                median = statistics.median(seconds for seconds, _ in pages[name])
                preparing = sum(said for _, said in pages[name])
                cells += f"{median:>13.1f} s" + ("*" * bool(preparing)).rjust(2)
                passed &= median < target
            print(f"{name:<15}{cells}  {'PASS' if passed else 'FAIL'}")
        print("* in at least one round the page said its signals were being prepared, and showed them when ready")
        return
    print(f"\n1. Page script runs through AppTest: the first (cold) and warm ones (target {PAGE_TARGET_MS} ms median warm)")
    print(f"{'user':<13}{'page':<14}{'cold ms':>9}{'median ms':>10}{'p90 ms':>9}  result")
    for user in args.users.split(","):
        for name, cold, median, p90 in page_runs(args.repeats, user):
            verdict = "PASS" if median < PAGE_TARGET_MS else "FAIL"
            print(f"{user:<13}{name:<14}{cold:>9.0f}{median:>10.0f}{p90:>9.0f}  {verdict}")
    if args.no_browser or not Path("/usr/bin/chromium").exists():
        print("\n2. Browser: skipped (no Chromium or --no-browser)")
        return
    seconds = browser_filter_change(args.data_dir, args.repeats)
    median = statistics.median(seconds)
    print(f"\n2. Chromium, trends page: choose a vendor in the sidebar -> updated chart (target {BROWSER_TARGET_S} s)")
    print(f"   {len(seconds)} changes: median {median:.2f} s, max {max(seconds):.2f} s  {'PASS' if median < BROWSER_TARGET_S else 'FAIL'}")


if __name__ == "__main__":
    main()
