"""The meeting calendar on the Workgroups and Overview pages through AppTest, on the demo
district: a schedule set in the form, the calendar's held, missed and coming meetings, the
next meeting drafted, the .ics files, and what a vendor sees of them.

Like tests/test_page_ci.py, these tests only add records of their own (named as tests, with
V2), never change a seeded one. Dates are read from today, as the pages read them.
"""

from datetime import date, time, timedelta

from icalendar import Calendar

from ciboard import meeting_calendar, meetings
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from ciboard.ci_records import Schedule, Workgroup
from conftest import downloads, open_page

WORKGROUPS = "app_pages/workgroups.py"
OVERVIEW = "app_pages/overview.py"


def no_exception(app) -> None:
    assert not app.exception, [e.value for e in app.exception]


def markdown(app) -> str:
    return "\n".join(m.value for m in app.markdown)


def calendar_table(app):
    return next(d.value for d in app.dataframe if "Status" in d.value.columns)


def ics_dates(data: bytes) -> list[date]:
    return [event.decoded("dtstart").date() for event in Calendar.from_ical(data).walk("VEVENT")]


def ics_download(app, key: str) -> bytes:
    [data] = [data for found, data in downloads(app).items() if found.endswith(key)]
    return data


def test_a_schedule_set_in_the_form_lists_missed_and_coming_meetings_and_drafts_the_next(dashboard):
    db = AppDB.of(dashboard.settings)
    today = date.today()
    soon = today + timedelta(days=3)  # within the week ahead: the page offers to draft it
    app = open_page(WORKGROUPS, user="facilitator")
    form = next(t.key for t in app.text_input if t.key.startswith("new-workgroup")).rsplit("-", 1)[0]
    app.text_input(key=f"{form}-name").set_value("Test workgroup: weekly calendar")
    app.multiselect(key=f"{form}-vendors").set_value(["V2"])
    app.selectbox(key=f"{form}-repeats").set_value("weekly")
    app.selectbox(key=f"{form}-weekday").set_value(soon.weekday())
    app.date_input(key=f"{form}-starts").set_value(today - timedelta(days=25))
    app.time_input(key=f"{form}-at").set_value(time(15, 30))
    app.number_input(key=f"{form}-minutes").set_value(45)
    next(b for b in app.button if b.label == "Set it up").click().run()
    no_exception(app)
    [made] = [g for g in meetings.workgroups(db, ANALYST) if g.name == "Test workgroup: weekly calendar"]
    assert made.schedule == Schedule("weekly", soon.weekday(), today - timedelta(days=25), time(15, 30), 45)
    assert f"**Schedule** {made.schedule}" in markdown(app).split("\n")
    assert f" · **Schedule** {made.schedule}" in markdown(app), "and in the history's revision"

    shown = calendar_table(app)
    scheduled = meeting_calendar.dates(made.schedule, today + timedelta(days=28))
    past = [d for d in scheduled if d < today]
    assert shown["Date"].tolist() == [f"{d:%a %b %-d, %Y} 15:30" for d in past[-4:] + [d for d in scheduled if d >= today][:4]]
    # Every date three or more days gone is missed; none is held.
    assert shown["Status"].tolist()[:len(past[-4:])] == ["Missed" if d + timedelta(days=3) < today else "Due: not recorded yet"
                                                           for d in past[-4:]]
    assert shown["Status"].tolist()[len(past[-4:]):] == ["Upcoming"] * 4
    assert any("scheduled meetings missed" in c.value for c in app.caption)

    draft = next(b for b in app.button if b.label == f"Draft the meeting of {soon:%a %b %-d}")
    draft.click().run()
    no_exception(app)
    [drafted] = meetings.meetings(db, ANALYST, made.id)
    assert drafted.held_on == soon and not drafted.is_final
    assert [p.name for p in drafted.attendees] == [p.name for p in made.members]
    assert calendar_table(app).set_index("Date").loc[f"{soon:%a %b %-d, %Y} 15:30", "Status"] == "Drafted, not finalised"
    assert not [b for b in app.button if b.label.startswith("Draft the meeting")], "drafted once"


def test_a_schedule_that_cannot_be_met_is_not_saved_and_says_why(dashboard):
    db = AppDB.of(dashboard.settings)
    app = open_page(WORKGROUPS, user="facilitator")
    form = next(t.key for t in app.text_input if t.key.startswith("new-workgroup")).rsplit("-", 1)[0]
    app.text_input(key=f"{form}-name").set_value("Test workgroup: ends before it starts")
    app.selectbox(key=f"{form}-repeats").set_value("monthly")
    app.selectbox(key=f"{form}-week").set_value(-1)
    app.date_input(key=f"{form}-starts").set_value(date(2026, 9, 1))
    app.date_input(key=f"{form}-ends").set_value(date(2026, 8, 1))
    next(b for b in app.button if b.label == "Set it up").click().run()
    no_exception(app)
    assert [e.value for e in app.error] == ["Not saved: a schedule ends on or after the day it starts"]
    assert "Test workgroup: ends before it starts" not in [g.name for g in meetings.workgroups(db, ANALYST)]


def test_the_seeded_groups_ics_holds_exactly_their_scheduled_dates(dashboard):
    db = AppDB.of(dashboard.settings)
    today = date.today()
    review = next(g for g in meetings.workgroups(db, ANALYST) if g.name == "District data review")
    app = open_page(WORKGROUPS, user="facilitator")
    app.selectbox(key="group").set_value(review.id).run()
    no_exception(app)
    expected = meeting_calendar.dates(review.schedule, today + meeting_calendar.HORIZON)
    assert ics_dates(ics_download(app, "ics-workgroup")) == expected
    mine = [d for g in meetings.workgroups(db, Scope("facilitator")) if g.schedule
            for d in meeting_calendar.dates(g.schedule, today + meeting_calendar.HORIZON)]
    assert sorted(ics_dates(ics_download(app, "ics-account"))) == sorted(mine)
    assert "**Schedule** Monthly on the first Tuesday, 09:00 for 60 minutes" in markdown(app)


def test_a_vendors_calendar_holds_only_its_own_workgroups(dashboard):
    db = AppDB.of(dashboard.settings)
    today = date.today()
    own = meetings.workgroups(db, Scope("vendor", "V3"))
    assert own and all("V3" in g.vendor_ids for g in own)
    app = open_page(WORKGROUPS, user="vendor-v3")
    no_exception(app)
    assert not [b for b in app.button if b.label.startswith("Draft the meeting")]
    found = Calendar.from_ical(ics_download(app, "ics-account")).walk("VEVENT")
    assert {str(e["summary"]) for e in found} == {g.name for g in own if g.schedule}
    assert sorted(e.decoded("dtstart").date() for e in found) == sorted(
        d for g in own if g.schedule for d in meeting_calendar.dates(g.schedule, today + meeting_calendar.HORIZON))


def test_the_overview_names_the_next_meetings_and_the_commitments_overdue_before_them(dashboard):
    db = AppDB.of(dashboard.settings)
    today = date.today()
    coming = meeting_calendar.next_meetings(db, Scope("facilitator"), today)
    assert coming, "the demo's standing groups meet on"
    app = open_page(OVERVIEW, user="facilitator")
    no_exception(app)
    lines = [m.value for m in app.markdown if " · " in m.value and m.value.startswith("**")]
    for upcoming in coming[:4]:
        [line] = [line for line in lines if upcoming.group.name in line]
        day = "Today" if upcoming.slot.on == today else f"{upcoming.slot.on:%a %b %-d}"
        assert line.startswith(f"**{day}** {upcoming.group.schedule.at:%H:%M}")
        for owed in upcoming.overdue:
            assert f"{owed.commitment.owner} (due {owed.commitment.due_on:%b %-d})" in line
        assert ("overdue commitment" in line) == bool(upcoming.overdue)
    seeded = next(n for n in coming if "Keystone" in n.group.name)
    assert seeded.overdue, "the demo's V3 commitments are overdue by now"


def test_a_vendor_reads_only_its_own_next_meetings_on_the_overview(dashboard):
    db = AppDB.of(dashboard.settings)
    today = date.today()
    mine = meeting_calendar.next_meetings(db, Scope("vendor", "V3"), today)
    assert [n.group.name for n in mine] == ["District–vendor coordination: Keystone Math Corps"]
    assert all(o.commitment.party_id in (None, "V3", "E08") and
               (o.commitment.party_id == "V3" or o.commitment.slice.vendor_id == "V3") for n in mine for o in n.overdue)
    app = open_page(OVERVIEW, user="vendor-v3")
    no_exception(app)
    text = markdown(app)
    assert "Keystone Math Corps" in text and "District data review" not in text
    assert "Cardinal" not in text
    # V5's only group's schedule ended with the school year: no next meeting to show.
    assert meeting_calendar.next_meetings(db, Scope("vendor", "V5"), today) == []
    app = open_page(OVERVIEW, user="vendor-v5")
    assert "Next meetings" not in [h.value for h in app.subheader]


def test_staff_cancel_one_meeting_which_reads_cancelled_and_leaves_calendars_as_cancelled(dashboard):
    from ciboard import accounts

    db = AppDB.of(dashboard.settings)
    today = date.today()
    group = meetings.save_workgroup(db, Scope("facilitator"), Workgroup(
        name="Test workgroup: a cancelled week", vendor_ids=["V2"],
        schedule=Schedule("weekly", today.weekday(), today - timedelta(days=14), time(15, 30), 45)), by="facilitator")
    off = today + timedelta(days=7)
    app = open_page(WORKGROUPS, user="facilitator", state={"group": group.id})
    app.selectbox(key="cancel-on").set_value(off)
    app.text_input(key="cancel-reason").set_value("Parent conferences")
    app.button(key="cancel-meeting-button").click().run()
    no_exception(app)
    assert not app.error, [e.value for e in app.error]
    row = calendar_table(app).set_index("Date").loc[f"{off:%a %b %-d, %Y} 15:30"]
    assert (row["Status"], row["Meeting"]) == ("Cancelled", "Parent conferences")
    assert f"{off:%a %b %-d, %Y}" not in app.selectbox(key="cancel-on").options
    [logged] = [e for e in accounts.audit_log(db, action="meeting cancel") if f'"workgroup": {group.id}' in e["detail"]]
    assert logged["username"] == "facilitator"
    events = Calendar.from_ical(ics_download(app, "ics-workgroup")).walk("VEVENT")
    assert [e.decoded("dtstart").date() for e in events if str(e.get("status", "")) == "CANCELLED"] == [off]
    assert {e["dtstart"].params["TZID"] for e in events} == {dashboard.settings.time_zone}
    # A vendor of the workgroup reads it cancelled, and cannot cancel one itself.
    vendor = open_page(WORKGROUPS, user="vendor-v2", state={"group": group.id})
    no_exception(vendor)
    assert calendar_table(vendor).set_index("Date").loc[f"{off:%a %b %-d, %Y} 15:30", "Status"] == "Cancelled"
    assert not [b for b in vendor.button if b.key == "cancel-meeting-button"]


def test_a_calendar_link_is_made_shown_once_serves_the_accounts_meetings_and_stops(dashboard):
    from ciboard import accounts, calendar_feeds

    db = AppDB.of(dashboard.settings)
    app = open_page(WORKGROUPS, user="facilitator")
    app.button(key="calendar-link-make").click().run()
    no_exception(app)
    [link] = [c.value for c in app.code if "/calendar/" in c.value]
    token = link.rsplit("/", 1)[1].removesuffix(".ics")
    holder = accounts.account(db, "facilitator")
    served = calendar_feeds.feed(db, dashboard.settings, token, date.today())
    seen = {g.name for g in meetings.workgroups(db, holder.scope) if g.schedule}
    assert {str(e["summary"]) for e in Calendar.from_ical(served).walk("VEVENT")} == seen
    assert seen, "the demo schedules its workgroups"

    app = open_page(WORKGROUPS, user="facilitator")  # later: the link is not shown again, only when it was made
    assert not [c for c in app.code if "/calendar/" in c.value]
    assert any("You made your link on" in c.value for c in app.caption)
    app.button(key="calendar-link-stop").click().run()
    no_exception(app)
    assert calendar_feeds.feed(db, dashboard.settings, token, date.today()) is None
