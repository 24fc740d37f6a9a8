"""Calendar links (ciboard.calendar_feeds): a calendar app fetches an account's meetings without
signing in, so the link is a secret: kept hashed, shown once, ended by a new one, by stopping
it or by disabling the account, and never more than the account's own workgroups."""

from datetime import date, datetime, time, timezone

import pytest
from icalendar import Calendar

from ciboard import accounts, calendar_feeds, meetings
from ciboard.access import Scope
from ciboard.appdb import AppDB
from ciboard.ci_records import Person, Schedule, Workgroup
from ciboard.settings import get_settings

TODAY = date(2026, 9, 20)
WEEKLY = Schedule("weekly", 1, date(2026, 9, 1), at=time(15, 30), minutes=45, ends_on=date(2026, 12, 15))


@pytest.fixture
def db(app_db_url, tmp_path, monkeypatch) -> AppDB:
    """The app database the server's settings name, on each backend, with two scheduled workgroups:
    one V1 takes part in and one of district staff only."""
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    store = AppDB.of(get_settings())
    staff = Scope("facilitator")
    for name, vendors in (("V1 attendance", ["V1"]), ("District leads", [])):
        meetings.save_workgroup(store, staff, Workgroup(
            name=name, purpose="Read the data together.", cadence="weekly", format="video call", vendor_ids=vendors,
            members=[Person("Ana Ruiz", "District", "district", role="facilitator")], schedule=WEEKLY,
        ), by="facilitator")
    return store


def summaries(ics: bytes) -> set[str]:
    return {str(event["summary"]) for event in Calendar.from_ical(ics).walk("VEVENT")}


def test_a_link_serves_the_meetings_of_the_workgroups_its_account_sees(db):
    fran = accounts.add_user(db, "fran", role="facilitator")
    vendor = accounts.add_user(db, "v1-lead", role="vendor", vendor_id="V1")
    settings = get_settings()
    staff_feed = calendar_feeds.feed(db, settings, calendar_feeds.make_link(db, fran), TODAY)
    vendor_feed = calendar_feeds.feed(db, settings, calendar_feeds.make_link(db, vendor), TODAY)
    assert summaries(staff_feed) == {"V1 attendance", "District leads"}
    assert summaries(vendor_feed) == {"V1 attendance"}, "a vendor's link holds only its own workgroups"
    assert len(Calendar.from_ical(vendor_feed).walk("VEVENT")) == 16  # the Tuesdays from Sep 1 to Dec 15


def test_the_token_is_kept_only_hashed_and_shown_once(db):
    fran = accounts.add_user(db, "fran", role="facilitator")
    token = calendar_feeds.make_link(db, fran, now=datetime(2026, 9, 20, 8, 30, tzinfo=timezone.utc))
    with db.connect() as con:
        stored = [tuple(row) for row in con.execute("select * from calendar_feeds").fetchall()]
    assert not any(token in str(value) for row in stored for value in row)
    assert calendar_feeds.link_made_at(db, fran) == datetime(2026, 9, 20, 8, 30, tzinfo=timezone.utc)
    assert len(token) == 32 and calendar_feeds.holder(db, token) == fran


def test_a_new_link_stopping_it_or_disabling_the_account_ends_the_old_link(db):
    fran = accounts.add_user(db, "fran", role="facilitator")
    settings = get_settings()
    first = calendar_feeds.make_link(db, fran)
    second = calendar_feeds.make_link(db, fran)
    assert calendar_feeds.feed(db, settings, first, TODAY) is None
    assert calendar_feeds.feed(db, settings, second, TODAY) is not None
    accounts.set_disabled(db, "fran", True)
    assert calendar_feeds.feed(db, settings, second, TODAY) is None, "a disabled account's link stops"
    accounts.set_disabled(db, "fran", False)
    assert calendar_feeds.stop_link(db, fran) and not calendar_feeds.stop_link(db, fran)
    assert calendar_feeds.feed(db, settings, second, TODAY) is None and calendar_feeds.link_made_at(db, fran) is None
    logged = [row["detail"] for row in accounts.audit_log(db, action="calendar link")]
    assert sorted(logged) == sorted(["made (any earlier link stopped)"] * 2 + ["stopped"])


@pytest.mark.parametrize(("base", "path"), [("", "/calendar/{token}.ics"), ("board", "/board/calendar/{token}.ics"),
                                            ("/ci/board/", "/ci/board/calendar/{token}.ics")])
def test_the_route_sits_under_the_servers_base_path_as_the_pages_do(base, path):
    [route] = calendar_feeds.routes(base)
    assert route.path == path
