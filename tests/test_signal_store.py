"""Signals stored per warehouse version: the same signals as computing them, a vendor's set
its own only, a publish answered by a new set (and the old one unused), and the Overview saying
they are being prepared while the server prepares them."""

import fcntl
import json
import shutil
import threading
import time
from datetime import date

import pandas as pd
import pytest

from ciboard import accounts, meetings, signal_store
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from ciboard.signals import POINT_COLUMNS, pick, signals, special_points
from ciboard.ingest import ingest
from conftest import default_dates, make_warehouse, open_page, publish_empty, sample_submissions
from test_lake import new_snapshot

VENDOR = Scope("vendor", "V3")


@pytest.fixture(scope="module")
def prepared(demo_warehouse):
    """The demo's sets for an analyst and for vendor V3 over the school year, as the server stores them."""
    dates = default_dates(demo_warehouse)
    asked = [signal_store.request(scope, dates["start"], dates["end"]) for scope in (ANALYST, VENDOR)]
    # A browser test's server shares this data folder and prepares sets of its own in it, from the
    # app database as other tests had left it then: this module starts from an empty store.
    shutil.rmtree(demo_warehouse.shared_folder() / signal_store.FOLDER, ignore_errors=True)
    assert signal_store.prepare(demo_warehouse, asked) == 2
    yield dates
    shutil.rmtree(demo_warehouse.shared_folder() / signal_store.FOLDER)


@pytest.mark.parametrize("scope", [ANALYST, VENDOR, Scope("evaluator", evaluator="evaluator")], ids=str)
def test_stored_signals_are_the_computed_ones(demo_warehouse, prepared, scope):
    """An evaluator reads the analyst's set: the same signals as computed in its own scope."""
    since = date(2026, 1, 5)
    computed = signals(demo_warehouse, scope, start=prepared["start"], end=prepared["end"], since=since)
    assert not computed.empty
    pd.testing.assert_frame_equal(signal_store.stored(demo_warehouse, scope, since=since, **prepared), computed)
    # Any other last meeting is picked from the same points (drawn once: the costly part).
    points = special_points(demo_warehouse, scope, **prepared)
    for since in (None, date(2026, 4, 27)):
        stored = signal_store.stored(demo_warehouse, scope, since=since, **prepared)
        pd.testing.assert_frame_equal(stored, pick(points, since))


def test_a_vendor_reads_only_its_own_set(demo_warehouse, prepared):
    stored = signal_store.stored(demo_warehouse, VENDOR, since=date(2026, 1, 5), **prepared)
    assert not stored.empty
    assert set(stored["vendor_id"]) == {"V3"}
    assert {g["vendor_id"] for folded in stored["folded"] for g in folded} <= {"V3"}
    # Another vendor has no set of its own here, and never reads the analyst's or V3's.
    assert signal_store.stored(demo_warehouse, Scope("vendor", "V1"), since=None, **prepared) is None
    assert signal_store.stored(demo_warehouse, Scope("facilitator"), since=None, **prepared) is None


def test_a_set_answers_only_what_it_was_drawn_for(demo_warehouse, prepared):
    """Other filters, dates that cut the data short, or fewer groups are computed, not read."""
    asked = {"scope": ANALYST, "since": None}
    assert signal_store.stored(demo_warehouse, **asked, **prepared, filters={"grade": ["4"]}) is None
    assert signal_store.stored(demo_warehouse, **asked, **prepared, dimensions=("gender",)) is None
    assert signal_store.stored(demo_warehouse, **asked, start=prepared["start"], end="2026-02-01") is None
    # Any end past the last week with data draws the same charts.
    later = signal_store.stored(demo_warehouse, **asked, start=prepared["start"], end="2026-07-01")
    pd.testing.assert_frame_equal(later, signal_store.stored(demo_warehouse, **asked, **prepared))


def test_a_set_drawn_to_a_meeting_date_never_answers_the_whole_year(demo_warehouse, prepared):
    """A draft meeting's set ends on its date; the year's charts go on past it. Found first by
    name, it once answered the year's request with 113 signals of the 283 there are."""
    asked = {"scope": ANALYST, "since": date(2026, 1, 5), "start": prepared["start"]}
    year = signal_store.stored(demo_warehouse, **asked, end=prepared["end"])
    meeting_day = date(2026, 3, 5)
    assert signal_store.prepare(demo_warehouse, [signal_store.request(ANALYST, prepared["start"], meeting_day)]) == 1
    try:
        pd.testing.assert_frame_equal(signal_store.stored(demo_warehouse, **asked, end=prepared["end"]), year)
        in_march = signal_store.stored(demo_warehouse, **asked, end=meeting_day)
        assert len(in_march) < len(year)
        pd.testing.assert_frame_equal(in_march, signals(demo_warehouse, **asked, end=meeting_day))
    finally:
        for path in (demo_warehouse.shared_folder() / signal_store.FOLDER).glob(f"*/*_{meeting_day.isoformat()}_*.parquet"):
            path.unlink()


def test_a_draft_meetings_gaps_are_stored_once_per_version(demo_warehouse, prepared):
    """The hundred breakdowns of a meeting's gap check (most of a first open of Meetings) are
    prepared with the signals; the page reads them instead, in its own scope only."""
    from ciboard import followup
    from ciboard.followup import gap_changes

    db = AppDB.of(demo_warehouse.settings)
    planned = [r for r in signal_store.plan(demo_warehouse, db) if isinstance(r, signal_store.GapRequest)]
    # A draft dated outside every school year with data (the calendar drafts a week ahead of
    # today) has no gaps to check.
    year = date.fromisoformat(prepared["start"]), date.fromisoformat(prepared["end"])
    drafts = [m for g in meetings.workgroups(db, ANALYST) for m in meetings.meetings(db, ANALYST, g.id)
              if not m.is_final and year[0] <= m.held_on <= year[1]]
    assert drafts and {r.until for r in planned} == {m.held_on for m in drafts}
    assert {r.scope for r in planned} >= {"analyst", "facilitator"}

    reading = next(r for r in planned if r.scope == "facilitator")
    filters = {"vendor_id": list(reading.vendors)} if reading.vendors else {}
    computed = gap_changes(demo_warehouse, Scope("facilitator"), reading.since, reading.until, filters)
    assert signal_store.prepare(demo_warehouse, [reading], followup) == 1

    def not_again(*_):
        raise AssertionError("computed again although stored")

    for reader in (Scope("facilitator"), Scope("admin")):  # the district's staff share one reading
        assert signal_store.gaps_of(demo_warehouse, reader, reading.since, reading.until, filters, not_again) == computed
    # An analyst's gaps count students' own spread and a vendor's hold its own students: neither reads it.
    for reader in (ANALYST, VENDOR):
        assert signal_store.gap_request(reader, reading.since, reading.until, filters).scope == str(reader)


def test_a_publish_leaves_the_old_sets_unused_and_they_go_with_their_version(loaded):
    dates = default_dates(loaded)
    wanted = signal_store.request(ANALYST, dates["start"], dates["end"])
    old = loaded.version()
    folder = loaded.shared_folder() / signal_store.FOLDER / old
    folder.mkdir(parents=True)
    signal_store._write(folder, wanted, pd.DataFrame(columns=POINT_COLUMNS))
    assert signal_store.stored(loaded, ANALYST, since=None, **dates) is not None
    publish_empty(loaded)
    assert signal_store.stored(loaded, ANALYST, since=None, **dates) is None
    assert signal_store.missing(loaded, [wanted]) == [wanted]
    # Versions no longer kept take their sets with them.
    publish_empty(loaded, times=loaded.settings.keep_versions)
    signal_store.prepare(loaded, [])
    assert not folder.exists()


def test_the_server_prepares_each_published_version(loaded):
    """The thread `watch` starts has the year's sets stored for each scope once a version is published."""
    dates = default_dates(loaded)
    publish_empty(loaded)  # a version the thread has not seen
    signal_store.watch(loaded.settings, every=0.2)
    try:
        # The analyst's set comes first; on a busy machine the others may take a while longer.
        for _ in range(3000):
            found = signal_store.stored(loaded, ANALYST, since=None, **dates)
            if found is not None:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"no stored signals for {loaded.version()} after five minutes")
    finally:
        signal_store.stop_watching(loaded.settings)
    planned = signal_store.plan(loaded, AppDB(loaded.settings.app_db_path))
    assert {str(ANALYST), "facilitator", "vendor:V1"} <= {r.scope for r in planned}
    assert set(found["vendor_id"].dropna()) <= {"V1"}


def test_the_overview_lists_the_stored_signals(dashboard, prepared):
    since = date(2026, 1, 5)
    app = open_page("app_pages/overview.py", query={"since": since.isoformat()})
    stored = signal_store.stored(dashboard, ANALYST, since=since, **prepared)
    assert any(f"**{len(stored)} signals** since" in m.value for m in app.markdown)


def test_the_overview_says_the_signals_are_being_prepared(dashboard, prepared):
    """While the server prepares this version's set, the page says so instead of charting it too."""
    wanted = signal_store.request(Scope("facilitator"), prepared["start"], prepared["end"])
    _forget(dashboard, wanted)  # as an earlier test's page may have charted and kept it
    folder = dashboard.shared_folder() / signal_store.FOLDER / dashboard.version()
    (folder / signal_store.PLAN).write_text(json.dumps([[wanted.key(), wanted.end.isoformat()]]))
    with open(folder / signal_store.LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            app = open_page("app_pages/overview.py", user="facilitator")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    (folder / signal_store.PLAN).unlink()
    assert any("being prepared" in info.value for info in app.info)
    assert not any("signals** since" in m.value for m in app.markdown)


def test_a_meeting_shows_the_rest_while_its_signals_are_prepared(dashboard, prepared):
    """The draft meeting's outcomes open without its signals, say why, and cannot be finalised yet."""
    planned = signal_store.plan(dashboard, AppDB(dashboard.settings.app_db_path))
    folder = dashboard.shared_folder() / signal_store.FOLDER / dashboard.version()
    # The plan file names signal sets: the meetings' own, which an earlier test's page may have kept.
    sets = [r for r in planned if isinstance(r, signal_store.Request) and r.end.isoformat() != prepared["end"]]
    assert sets, "the demo's draft meetings have sets of their own to prepare"
    for reading in sets:
        _forget(dashboard, reading)
    (folder / signal_store.PLAN).write_text(json.dumps([[r.key(), r.end.isoformat()] for r in sets]))
    with open(folder / signal_store.LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            app = open_page("app_pages/meetings.py")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    (folder / signal_store.PLAN).unlink()
    assert any("being prepared" in info.value for info in app.info)
    assert any("signals are being prepared" in m.value for m in app.markdown)
    assert app.button(key="finalise").disabled


def test_a_newer_version_ends_the_preparation_of_the_old_one(loaded):
    """One reading takes half a minute at 10M facts: a publish meanwhile must not leave the new
    version's pages waiting for the old version's preparation to run its course."""
    import signal

    started = time.monotonic()
    ended = signal_store._prepare_apart(loaded.settings.data_dir, threading.Event(), superseded=lambda: True)
    assert ended == -signal.SIGTERM  # ended, not run to its end
    assert time.monotonic() - started < 10
    # Not superseded, it runs to its end and stores the version's readings.
    planned = signal_store.plan(loaded, AppDB.of(loaded.settings))
    assert planned and signal_store.missing(loaded, planned) == planned
    assert signal_store._prepare_apart(loaded.settings.data_dir, threading.Event(), superseded=lambda: False) == 0
    assert signal_store.missing(loaded, planned) == []


def test_between_a_publish_and_its_preparation_pages_already_wait(loaded):
    """The server's thread notices a publish within a second and its process takes a while to
    start: meanwhile what it prepared for the version before counts as being prepared."""
    dates = default_dates(loaded)
    wanted = signal_store.request(ANALYST, dates["start"], dates["end"])
    stopping = threading.Event()
    thread = threading.Thread(target=stopping.wait)
    thread.start()
    folder = loaded.settings.data_dir.resolve()
    signal_store._watching[folder] = signal_store.Watcher(thread, stopping, planned={wanted})
    try:
        assert signal_store.being_prepared(loaded, ANALYST, **dates)
        assert not signal_store.being_prepared(loaded, VENDOR, **dates)  # not in its plan
        # The page asked for it, for the preparation to take first once it starts.
        stored = loaded.shared_folder() / signal_store.FOLDER / loaded.version()
        assert len(list((stored / signal_store.ASKED).iterdir())) == 1
        signal_store._write(stored, wanted, pd.DataFrame(columns=POINT_COLUMNS))
        assert not signal_store.being_prepared(loaded, ANALYST, **dates)
    finally:
        stopping.set()
        signal_store._watching.pop(folder)


@pytest.mark.parametrize("view", signal_store.STORED_VIEWS)
def test_a_slow_views_stored_reading_is_the_computed_one_in_its_own_scope_only(demo_warehouse, prepared, view):
    """Payments, flagged sessions and coverage (seconds each at 10M facts) are read once per
    version in each scope the pages open them in; a reader never opens another scope's."""
    from ciboard.queries import run

    params = {"end": prepared["end"]} if view == "payments" else dict(prepared)
    planned = [r for r in signal_store.plan(demo_warehouse, AppDB.of(demo_warehouse.settings))
               if isinstance(r, signal_store.ViewRequest) and r.view == view]
    assert {r.scope for r in planned} >= {str(ANALYST), str(VENDOR)}
    assert all(dict(r.params) == params for r in planned)
    mine = [r for r in planned if r.scope == str(VENDOR)]
    signal_store.prepare(demo_warehouse, mine)  # or, meanwhile, the thread of a page test's server
    stored = signal_store.view_of(demo_warehouse, VENDOR, view, params)  # waits while it is being prepared
    assert signal_store.missing(demo_warehouse, mine) == []
    pd.testing.assert_frame_equal(stored, run(demo_warehouse, view, VENDOR, params), check_like=False)
    assert stored.attrs["version"] == demo_warehouse.version()
    if "vendor_id" in stored:
        assert set(stored["vendor_id"].dropna()) <= {"V3"}
    # Another vendor, the district's staff and other dates never read V3's.
    for reader, asked in ((Scope("vendor", "V1"), params), (ANALYST, params), (Scope("facilitator"), params),
                          (VENDOR, {**params, "end": "2026-01-31"})):
        assert signal_store.view_request(demo_warehouse, reader, view, asked) not in mine
    # A school and an evaluator read live, in their own scope.
    assert signal_store.view_request(demo_warehouse, Scope("school", school_ids=("E01",)), view, params) is None


def test_a_decision_about_a_flagged_session_gives_new_readings_of_what_counts(loaded):
    """What counts toward payment moves with the district's decisions: a reading of payments
    made before one is never read after it."""
    dates = default_dates(loaded)
    before = signal_store.view_request(loaded, ANALYST, "payments", {"end": dates["end"]})
    coverage = signal_store.view_request(loaded, ANALYST, "coverage", dates)
    with AppDB.of(loaded.settings).connect() as con:
        con.execute(
            "insert into session_check_decisions (flag_key, vendor_id, check_name, decision, reason, decided_by, decided_at)"
            " values ('V3|S1|2026-01-05|T1|calendar', 'V3', 'calendar', 'accepted', 'a test', 'analyst', '2026-12-05T00:00:00')"
        )
    after = signal_store.view_request(loaded, ANALYST, "payments", {"end": dates["end"]})
    assert after.key() != before.key()
    # Coverage does not read the decisions: its reading stands.
    assert signal_store.view_request(loaded, ANALYST, "coverage", dates) == coverage


def test_a_draft_meetings_movements_are_stored_once_per_version(demo_warehouse, prepared):
    """How each open commitment's and PDSA cycle's metric moved (most of a first open of
    Meetings after the gaps) is prepared with the signals, and read in its own scope."""
    from ciboard import followup

    planned = [r for r in signal_store.plan(demo_warehouse, AppDB.of(demo_warehouse.settings))
               if isinstance(r, signal_store.MovementRequest)]
    assert planned and {r.scope for r in planned} >= {"analyst", "facilitator"}
    reading = next(r for r in planned if r.scope == "facilitator")
    slice = json.loads(reading.slice)
    computed = followup.movement(demo_warehouse, Scope("facilitator"), reading.metric_id, slice, reading.since, reading.until)
    signal_store.prepare(demo_warehouse, [reading], followup)  # or, meanwhile, the thread of a page test's server

    def not_again():
        raise AssertionError("computed again although stored")

    for reader in (Scope("facilitator"), Scope("admin")):  # waits while it is being prepared
        found = signal_store.movement_of(demo_warehouse, reader, reading.metric_id, slice, reading.since, reading.until, not_again)
        assert found == json.loads(json.dumps(computed))
    for reader in (ANALYST, VENDOR):  # each reads its own
        assert signal_store.movement_request(reader, reading.metric_id, slice, reading.since, reading.until).scope == str(reader)


def _preparing(warehouse, readings):
    """Holds this version's lock with `readings` in its plan and the first of them under way, as
    the server's preparation does."""
    from contextlib import contextmanager

    @contextmanager
    def held():
        folder = warehouse.shared_folder() / signal_store.FOLDER / warehouse.version()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / signal_store.PLAN).write_text(json.dumps([signal_store._planned(r) for r in readings]))
        (folder / signal_store.UNDER_WAY).write_text(json.dumps(signal_store._planned(readings[0])))
        with open(folder / signal_store.LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
                (folder / signal_store.PLAN).unlink()
                (folder / signal_store.UNDER_WAY).unlink()

    return held()


def _forget(warehouse, reading) -> None:
    """Deletes a stored reading: a page that computed one keeps it for the version."""
    while (path := signal_store._path(warehouse, reading)) is not None:
        path.unlink()


def test_the_overview_says_the_payments_are_being_prepared(dashboard, prepared):
    wanted = signal_store.view_request(dashboard, ANALYST, "payments", {"end": prepared["end"]})
    _forget(dashboard, wanted)
    with _preparing(dashboard, [wanted]):
        app = open_page("app_pages/overview.py")
    assert any("payments are being prepared" in info.value for info in app.info)
    assert not [m for m in app.metric if m.label == "Earned"]
    # Once stored, the page reads it.
    signal_store.prepare(dashboard, [wanted])
    assert signal_store.missing(dashboard, [wanted]) == []
    app = open_page("app_pages/overview.py")
    assert [m for m in app.metric if m.label == "Earned"]


def test_a_view_queued_behind_other_readings_is_computed_on_the_page_not_waited_for(dashboard, prepared):
    """A vendor signing in on a freshly started server waited over a minute for its payments,
    queued behind the other scopes' signal sets: a view is seconds, so only the one under way is
    waited for."""
    mine = signal_store.view_request(dashboard, Scope("vendor", "V5"), "payments", {"end": prepared["end"]})
    ahead = signal_store.request(ANALYST, prepared["start"], prepared["end"])
    _forget(dashboard, mine)
    with _preparing(dashboard, [mine, ahead]):
        assert signal_store.view_being_prepared(dashboard, Scope("vendor", "V5"), "payments", {"end": prepared["end"]})
    with _preparing(dashboard, [ahead, mine]):
        assert not signal_store.view_being_prepared(dashboard, Scope("vendor", "V5"), "payments", {"end": prepared["end"]})
        app = open_page("app_pages/vendors.py", user="vendor-v5")  # waiting, it would never end
    assert any("earned across" in m.value for m in app.markdown)


def test_a_set_a_page_waits_for_is_prepared_next(loaded, monkeypatch):
    """A facilitator opening a meeting right after a publish waited for every scope's readings
    before its own: a page that waits for a planned reading asks for it, and it is taken next."""
    dates = default_dates(loaded)
    planned = [signal_store.request(reader, dates["start"], dates["end"]) for reader in (ANALYST, Scope("facilitator"), VENDOR)]
    with _preparing(loaded, planned):
        assert signal_store.being_prepared(loaded, VENDOR, **dates)  # the vendor's page waits: it asks
    order = []
    write = signal_store._write
    monkeypatch.setattr(signal_store, "_write", lambda folder, wanted, reading: order.append(wanted) or write(folder, wanted, reading))
    assert signal_store.prepare(loaded, planned) == 3
    assert order == [planned[2], planned[0], planned[1]]
    assert not list((loaded.shared_folder() / signal_store.FOLDER / loaded.version() / signal_store.ASKED).iterdir())


def test_the_views_are_planned_before_any_signal_set(demo_warehouse):
    planned = signal_store.plan(demo_warehouse, AppDB.of(demo_warehouse.settings))
    views = [i for i, r in enumerate(planned) if isinstance(r, signal_store.ViewRequest)]
    assert {r.scope for r in planned if isinstance(r, signal_store.ViewRequest)} >= {str(ANALYST), "vendor:V5"}
    assert views == list(range(len(views)))


def test_a_meeting_shows_the_rest_while_its_movements_are_prepared(dashboard, prepared):
    from ciboard import followup

    # What the page reads: the analyst's readings for the meeting it opens, the first workgroup's
    # latest. Other meetings' and scopes' (more of them the more meetings the suite's earlier tests
    # left in the app database) are not this test's: preparing them all took minutes.
    db = AppDB(dashboard.settings.app_db_path)
    [group, *_] = meetings.workgroups(db, ANALYST)
    shown = meetings.meetings(db, ANALYST, group.id)[-1]
    planned = [
        r for r in signal_store.plan(dashboard, db)
        if r.scope == str(ANALYST) and shown.held_on in (getattr(r, "end", None), getattr(r, "until", None))
    ]
    waiting = [r for r in planned if isinstance(r, (signal_store.MovementRequest, signal_store.GapRequest))]
    signal_store.prepare(dashboard, [r for r in planned if isinstance(r, signal_store.Request)])
    for reading in waiting:  # as an earlier test's page may have computed and kept them
        _forget(dashboard, reading)
    with _preparing(dashboard, waiting):
        app = open_page("app_pages/meetings.py")
    [waiting_box] = [info.value for info in app.info if "being prepared" in info.value]
    assert "gaps between student groups" in waiting_box and "commitments and PDSA cycles" in waiting_box
    assert any("Being prepared for this version" in str(t.value) for t in app.table)  # each commitment's movement
    assert app.button(key="finalise").disabled
    # Prepared, the meeting shows them and may be finalised.
    signal_store.prepare(dashboard, waiting, followup)
    app = open_page("app_pages/meetings.py")
    assert not any("being prepared" in info.value for info in app.info)
    assert not app.button(key="finalise").disabled


def test_servers_on_one_lake_prepare_its_readings_once_for_all_of_them(tmp_path):
    """Servers sharing a lake each have a data folder of their own: what one prepares, every
    other reads, and while one prepares, the others' pages wait for it and ask, not compute
    the same again beside it. A lake made again in the same place reads none of it."""
    shared = {"catalog_url": f"sqlite:{tmp_path}/catalog.sqlite", "lake_path": tmp_path / "lake"}
    server_a = make_warehouse(tmp_path / "server-a", **shared)
    server_a.init(["2025-26"])
    ingest(server_a, sample_submissions())
    server_b = make_warehouse(tmp_path / "server-b", **shared)
    dates = default_dates(server_a)
    wanted = signal_store.request(ANALYST, dates["start"], dates["end"])
    folder = signal_store._folder(server_a)
    assert folder == signal_store._folder(server_b) and not folder.is_relative_to(tmp_path / "server-a")

    folder.mkdir(parents=True)
    (folder / signal_store.PLAN).write_text(json.dumps([signal_store._planned(wanted)]))
    with open(folder / signal_store.LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # server A's preparation at work
        assert signal_store.being_prepared(server_b, ANALYST, **dates)
        assert list((folder / signal_store.ASKED).iterdir()), "server B's page did not ask server A's preparation"
    assert signal_store.prepare(server_a, [wanted]) == 1
    assert signal_store.missing(server_b, [wanted]) == []
    assert signal_store.stored(server_b, ANALYST, since=None, **dates).equals(
        signal_store.stored(server_a, ANALYST, since=None, **dates))
    version = server_a.version()
    server_a.close()
    server_b.close()

    (tmp_path / "catalog.sqlite").unlink()
    shutil.rmtree(tmp_path / "lake" / "data")
    again = make_warehouse(tmp_path / "server-a", **shared)
    again.init(["2025-26"])
    while again.version() < version:
        new_snapshot(again)
    assert again.version() == version
    assert signal_store.missing(again, [wanted]) == [wanted], "a new lake read the earlier lake's readings"
    again.close()


def test_a_school_accounts_signals_are_prepared_in_its_scope_and_its_overview_reads_them(dashboard, prepared, monkeypatch):
    import streamlit as st

    import ciboard.signals

    db = AppDB.of(dashboard.settings)
    school = accounts.account(db, "school").scope
    wanted = signal_store.request(school, prepared["start"], prepared["end"])
    assert wanted.scope == str(school) and wanted in signal_store.plan(dashboard, db)
    assert signal_store.prepare(dashboard, [wanted]) == 1
    since = date(2026, 1, 5)
    stored = signal_store.stored(dashboard, school, since=since, **prepared)
    assert not stored.empty
    pd.testing.assert_frame_equal(stored, signals(dashboard, school, start=prepared["start"], end=prepared["end"], since=since))
    # Its set is its schools' alone: another school's scope, or one school of the two, has none.
    for other in (("S99",), school.school_ids[:1]):
        assert signal_store.stored(dashboard, Scope("school", school_ids=other), since=since, **prepared) is None

    def charted_again(*_, **__):
        raise AssertionError("the Overview charted the school's signals although they are stored")

    monkeypatch.setattr(ciboard.signals, "special_points", charted_again)
    st.cache_data.clear()  # an earlier test's page may have charted them live
    app = open_page("app_pages/overview.py", query={"since": since.isoformat()}, user="school")
    assert any(f"**{len(stored)} signals** since" in m.value for m in app.markdown)


def test_a_page_stops_waiting_for_a_reading_once_it_is_stored_while_the_rest_are_prepared(loaded):
    """The Overview's waiting box reran the page only once the whole preparation ended: a school
    account's signals, stored 10 s after it asked, showed two minutes later."""
    dates = default_dates(loaded)
    wanted, other = (signal_store.request(scope, dates["start"], dates["end"]) for scope in (ANALYST, VENDOR))
    folder = signal_store._folder(loaded)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / signal_store.PLAN).write_text(json.dumps([signal_store._planned(wanted), signal_store._planned(other)]))
    with open(folder / signal_store.LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the preparation at work, with both planned
        assert signal_store.being_prepared(loaded, ANALYST, **dates)
        signal_store._write(folder, wanted, pd.DataFrame(columns=POINT_COLUMNS))
        assert not signal_store.being_prepared(loaded, ANALYST, **dates)
        assert signal_store.being_prepared(loaded, VENDOR, **dates)


def test_a_reading_a_page_computed_is_kept_for_every_later_reader_of_the_version_in_its_scope(loaded):
    """A meeting the server did not prepare (one made since it started) is computed on the
    first open and read from the store after: by the next reader, another server, a restart."""
    facilitator, since, until = Scope("facilitator"), date(2026, 1, 5), date(2026, 3, 2)
    computed = []

    def compute(*asked):
        computed.append(asked[1])
        return [{"metric_id": "dosage_met", "asked_as": str(asked[1])}]

    def not_again(*_):
        raise AssertionError("computed again although stored")

    first = signal_store.gaps_of(loaded, facilitator, since, until, {}, compute)
    assert signal_store.gaps_of(loaded, facilitator, since, until, {}, not_again) == first
    assert signal_store.gaps_of(loaded, Scope("admin"), since, until, {}, not_again) == first
    assert computed == [facilitator]
    # Each scope computes and keeps its own: a vendor never reads the district's, nor the reverse.
    signal_store.gaps_of(loaded, VENDOR, since, until, {}, compute)
    assert signal_store.gaps_of(loaded, VENDOR, since, until, {}, not_again)[0]["asked_as"] == str(VENDOR)
    assert signal_store.gaps_of(loaded, facilitator, since, until, {}, not_again) == first

    # An admin reads the facilitators' readings, and keeps none it computed: they are read as the admin.
    later = date(2026, 3, 9)
    signal_store.gaps_of(loaded, Scope("admin"), since, later, {}, compute)
    signal_store.gaps_of(loaded, facilitator, since, later, {}, compute)
    assert computed[-2:] == [Scope("admin"), facilitator]

    # A reading computed while a publish came may mix two versions: it is kept for neither.
    old = loaded.version()
    request = signal_store.gap_request(facilitator, since, date(2026, 3, 16))
    signal_store.gaps_of(loaded, facilitator, since, date(2026, 3, 16), {},
                         lambda *asked: publish_empty(loaded) or compute(*asked))
    assert loaded.version() != old
    assert signal_store.missing(loaded, [request], old) == [request]
    assert signal_store.missing(loaded, [request]) == [request]

    # A slow view a page read live is kept too, in the scope it was read in.
    dates = default_dates(loaded)
    coverage = signal_store.view_request(loaded, VENDOR, "coverage", dates)
    live = signal_store.view_of(loaded, VENDOR, "coverage", dates)
    assert signal_store.missing(loaded, [coverage]) == []
    pd.testing.assert_frame_equal(signal_store.view_of(loaded, VENDOR, "coverage", dates), live)
    assert signal_store.missing(loaded, [signal_store.view_request(loaded, ANALYST, "coverage", dates)])


def test_a_set_of_signals_a_page_charted_is_kept_for_the_next_reader_in_its_scope(demo_warehouse, prepared):
    vendor, facilitator = Scope("vendor", "V4"), Scope("facilitator")
    asked = {"start": prepared["start"], "end": prepared["end"], "since": date(2026, 5, 1)}
    theirs, mine = (signal_store.request(s, prepared["start"], prepared["end"]) for s in (facilitator, vendor))
    for reading in (theirs, mine):
        _forget(demo_warehouse, reading)
    signal_store.signals_of(demo_warehouse, Scope("admin"), **asked)  # the facilitators' set, kept by none but them
    assert signal_store.missing(demo_warehouse, [theirs]) == [theirs]
    narrowed = signal_store.signals_of(demo_warehouse, vendor, **asked, dimensions=("grade",))
    assert signal_store.missing(demo_warehouse, [mine]) == [mine], "a set of fewer dimensions answers no request"

    charted = signal_store.signals_of(demo_warehouse, vendor, **asked)
    assert signal_store.missing(demo_warehouse, [mine]) == []
    assert len(charted) > len(narrowed) > 0
    pd.testing.assert_frame_equal(charted, signals(demo_warehouse, vendor, **asked))
    again = signal_store.stored(demo_warehouse, vendor, **asked)
    pd.testing.assert_frame_equal(again.drop(columns="group"), charted.drop(columns="group"))
    assert [str(g) for g in again["group"]] == [str(g) for g in charted["group"]]
    assert signal_store.stored(demo_warehouse, Scope("vendor", "V1"), **asked) is None
