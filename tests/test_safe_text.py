"""Free text shown as Markdown keeps its formatting and links but loads nothing: no image of
any form, no raw HTML, no entity that turns into markup, no LaTeX. The pages send notes only
that way (test_page_meetings.py, test_page_ci.py use `markdown_sent` and `loads_something`
below), and in a real browser hostile notes make no request anywhere (the browser test here)."""

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import example, given, strategies as st

from ciboard.safe_text import markdown

try:  # the browser test reuses test_browser's server and sign-in; the rest runs without playwright
    import test_browser as live
except pytest.skip.Exception:
    live = None
else:
    server, browser, passwords = live.server, live.browser, live.passwords

HOSTILE = {
    "inline image": ("![x](http://evil/p.png)", "&#33;[x](http://evil/p.png)"),
    "raw HTML": ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
    "image inside a link": ("[![x](http://e/p.png)](http://e)", "[&#33;[x](http://e/p.png)](http://e)"),
    "reference-style image": ("![x][r]\n\n[r]: http://e/p.png", "&#33;[x][r]\n\n[r]: http://e/p.png"),
    "collapsed and shortcut references": ("![r][] ![r]\n\n[r]: http://e/p.png", "&#33;[r][] &#33;[r]\n\n[r]: http://e/p.png"),
    "autolink to an image": ("<http://e/p.png>", "&lt;http://e/p.png>"),
    "HTML entities": ("&lt;img src=x onerror=alert(1)&gt;", "&amp;lt;img src=x onerror=alert(1)&amp;gt;"),
    "an entity for the bang": ("&#33;[x](http://e/p.png)", "&amp;#33;[x](http://e/p.png)"),
    "an HTML comment": ("<!-- hidden -->", "&lt;!-- hidden -->"),
    "a script": ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
    "LaTeX": (r"$\includegraphics{http://e/p.png}$", r"&#36;\includegraphics{http://e/p.png}&#36;"),
    "money": ("$40 an hour, $5 less", "&#36;40 an hour, &#36;5 less"),
    # A written-out URL becomes a link that would swallow a backslash escape right after it.
    "an image right after a URL": ("http://e.org/x![a](http://evil/p.png)", "http://e.org/x&#33;[a](http://evil/p.png)"),
    "HTML right after a URL": ("http://e.org/x<img src=http://evil/p.png>", "http://e.org/x&lt;img src=http://evil/p.png>"),
}


@pytest.mark.parametrize(("typed", "shown"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_neutralised(typed, shown):
    assert markdown(typed) == shown


def test_formatting_and_links_are_kept():
    notes = "**Bus times** changed on _Feb 2_:\n\n- two sites start later\n- see [the schedule](https://district.org/bus)\n> as agreed"
    assert markdown(notes) == notes


def test_the_writers_own_escapes_are_kept_and_do_not_unescape_an_image():
    assert markdown(r"\*not bold\* \# no heading") == r"\*not bold\* \# no heading"
    # An escape of one of the four gives way to its entity, which shows the same character.
    assert markdown(r"\![x](http://e/p.png) \<b> \$5") == "&#33;[x](http://e/p.png) &lt;b> &#36;5"
    # An escaped backslash before an image leaves the image: it gets its entity.
    assert markdown(r"\\![x](http://e/p.png)") == r"\\&#33;[x](http://e/p.png)"
    assert markdown("ends with a backslash \\") == "ends with a backslash \\"


def test_nothing_is_nothing():
    assert markdown(None) == "" and markdown("") == ""


# Notes a hostile writer might leave, each way of loading an image or writing HTML at once.
HOSTILE_NOTES = (
    "![x](http://evil/p.png) <img src=x onerror=alert(1)> [![y](http://e/p.png)](http://e) "
    "&lt;img src=x&gt; ![z][r]\n\n[r]: http://e/p.png"
)


def markdown_sent(app) -> list[str]:
    """Everything an AppTest run sent that the browser reads as Markdown: bodies and labels."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error", "toast")
    sent = [e.value for kind in kinds for e in app.get(kind)]
    sent += [e.label for e in app.expander] + [p.proto.label for p in app.get("page_link")]
    return [str(text) for text in sent]


def loads_something(text: str) -> bool:
    """Whether Markdown holds an image or an HTML tag CommonMark would render (a backslash
    escape counts as safe here; safe_text.markdown writes entities, which are safer still)."""
    return any(not escaped(text, match.start()) for match in re.finditer(r"!\[|<[a-zA-Z!/]", text))


def escaped(text: str, at: int) -> bool:
    """Whether the character at `at` follows an odd run of backslashes: CommonMark reads it as
    a literal."""
    run = len(text[:at]) - len(text[:at].rstrip("\\"))
    return run % 2 == 1


OURS = re.compile("|".join(re.escape(e) for e in ("&#33;", "&lt;", "&amp;", "&#36;")))


@given(st.lists(st.sampled_from(["!", "[", "]", "(", ")", "<", ">", "&", "$", "\\", "x", " ", "\n", "`", "#33;", "lt;",
                                 "http://e/p.png"]), max_size=40).map("".join))
@example("!![")  # the first "!" stays: the second, before "[", becomes the entity
def test_no_image_html_entity_or_math_can_come_through(text):
    shown = markdown(text)
    # Nothing but the entities it writes: no "![", "<", "$" or "&" of the writer's is left. An
    # entity is one character to CommonMark, never syntax: "!&#33;[" is no image, so each stands
    # as a plain character here, not as nothing ("![" would be the test's own making).
    assert not re.search(r"!\[|[<&$]", OURS.sub("_", shown)), (text, shown)
    if "\\" not in text:  # nothing else changes: reading the entities back gives what was typed
        assert html.unescape(shown) == text


# --- in a real browser: hostile notes call nobody ----------------------------------------------


@pytest.fixture
def tracker():
    """A server that counts what asks it for anything: the tracking pixel's owner."""
    hits: list[str] = []

    class Pixel(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()
            self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

        def log_message(self, *args):
            pass

    pixel = ThreadingHTTPServer(("127.0.0.1", 0), Pixel)
    threading.Thread(target=pixel.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{pixel.server_port}", hits
    pixel.shutdown()


def _hostile_meeting(demo_warehouse, url):
    """A facilitator's draft meeting of a workgroup of V2, whose every text is hostile notes that
    would load `url`'s images."""
    from dataclasses import replace
    from datetime import date

    from ciboard import ci_records, meetings
    from ciboard.access import Scope
    from ciboard.appdb import AppDB

    notes = (f"![a]({url}/inline.gif) <img src={url}/raw.gif> [![b]({url}/nested.gif)](http://e) "
             f"&lt;img src={url}/entity.gif&gt; ![c][r]\n\n[r]: {url}/reference.gif")
    store, staff = AppDB.of(demo_warehouse.settings), Scope("facilitator")
    group = meetings.save_workgroup(store, staff, ci_records.Workgroup(
        name="Test workgroup: a tracking pixel", purpose=notes, decisions=[notes], vendor_ids=["V2"]), by="facilitator")
    held = meetings.save_meeting(store, staff, replace(
        ci_records.draft_meeting(group, date(2026, 2, 27)), agenda={key: notes for key in ci_records.AGENDA_KEYS},
    ), by="facilitator")
    return group, held


in_chromium = pytest.mark.skipif(live is None or not Path(live.CHROMIUM).exists(), reason="playwright or Chromium is missing")


# Before the next test starts this module's server: its preparation of the demo's readings on both
# cores made this packet take a minute instead of seven seconds.
@pytest.mark.browser
@in_chromium
def test_hostile_notes_make_no_request_from_the_packet(browser, demo_warehouse, tracker, tmp_path):
    from ciboard import packet, packet_files
    from ciboard.access import Scope
    from ciboard.appdb import AppDB

    url, hits = tracker
    _, held = _hostile_meeting(demo_warehouse, url)
    made = packet.build(demo_warehouse, AppDB.of(demo_warehouse.settings), Scope("facilitator"), held.id)
    (tmp_path / "packet.html").write_text(packet_files.to_html(made))
    page = browser.new_page()
    page.goto((tmp_path / "packet.html").as_uri())
    page.wait_for_timeout(1500)
    assert "Test workgroup: a tracking pixel" in page.locator("body").inner_text()
    page.close()
    assert hits == []


@pytest.mark.browser
@in_chromium
def test_hostile_notes_make_no_request_in_the_browser(server, browser, passwords, demo_warehouse, tracker):
    url, hits = tracker
    group, held = _hostile_meeting(demo_warehouse, url)
    address = f"meetings?workgroup={group.id}&meeting={held.id}"  # the meeting's address names it by id

    page = live.open_as(browser, server, passwords, "vendor-v2", address, height=3000)
    page.get_by_text("About Test workgroup: a tracking pixel").click()  # the purpose, in its expander
    page.wait_for_timeout(1500)
    main = page.locator("[data-testid='stMain']")
    # What would have been images are links, and the HTML is text.
    assert page.locator(f"a[href='{url}/inline.gif']").count() >= 2 and f"<img src={url}/raw.gif>" in main.inner_text()
    assert page.locator(f"img[src^='{url}']").count() == 0
    live.shoot(page, "hostile-notes")
    page.close()
    assert hits == []
