"""Workgroups: the standing groups that run the CI process. Each has a purpose, members with
their roles, a cadence and a format, the decisions it is there to make, and a schedule whose
meetings it lists (held, missed, coming), drafts a week ahead and offers as .ics files."""

from collections.abc import Callable
from dataclasses import replace
from datetime import time
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from ciboard import calendar_feeds, ci_ui, meeting_calendar, meetings
from ciboard.ci_records import EVERY, PARTIES, WEEKDAYS, WEEKS_OF_MONTH, Person, Schedule, Workgroup
from ciboard.dashboard import account, audit, disguised, scope, warehouse
from ciboard.session import aliasing

db = ci_ui.db()
# On a shared screen with vendors as letters the records read disguised, and the forms (which
# hold the text as typed) are left out.
staff = ci_ui.district_staff() and not aliasing()
NOTICE = "workgroups-notice"
# The form's long text, kept as a draft while typed: {field: (its title, its text in a workgroup)}.
DRAFTED = {"purpose": ("Purpose", lambda g: g.purpose),
           "decisions": ("Decisions it makes", lambda g: "\n".join(g.decisions))}


def organisations() -> dict[str, str]:
    """Every vendor and school this account sees, by id: who a member can come from."""
    return {**ci_ui.labels().get("vendor_id", {}), **ci_ui.labels().get("school_id", {})}


st.title("Workgroups")
st.caption(
    "Who meets, why, how often and to decide what: the groups that keep the district, the vendors and the schools "
    "reading the data together and acting on it."
)
if notice := st.session_state.pop(NOTICE, None):
    st.success(ci_ui.say(notice), icon=":material/check_circle:")

groups = meetings.workgroups(db, scope())
if groups:
    st.dataframe(disguised(ci_ui.records_frame(groups, {
        "Workgroup": lambda g: g.name,
        "Purpose": lambda g: g.purpose,
        "Meets": lambda g: g.cadence,
        "Schedule": lambda g: str(g.schedule or "—"),
        "Format": lambda g: g.format,
        "Vendors": lambda g: ", ".join(ci_ui.vendor_name(v) for v in g.vendor_ids) or "District only",
        "Members": lambda g: len(g.members),
    })), hide_index=True)


# --- the form, for a new workgroup and for an edit ----------------------------------------


def members_frame(people: list[Person]) -> pd.DataFrame:
    columns = ("name", "organisation", "party", "party_id", "role")
    return pd.DataFrame({c: pd.Series([getattr(p, c) for p in people], dtype="object") for c in columns})


def member_columns() -> dict:
    names = organisations()
    return {
        "name": st.column_config.TextColumn("Name", required=True),
        "organisation": st.column_config.TextColumn("Organisation", help="Left empty: the vendor's or school's name"),
        "party": st.column_config.SelectboxColumn("Party", options=PARTIES, default="district", required=True),
        "party_id": st.column_config.SelectboxColumn("Vendor or school", options=list(names), format_func=names.get,
                                                     help="For a vendor's or a school's person"),
        "role": st.column_config.TextColumn("Role", width="large"),
    }


def text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value).strip()


def members_from(frame: pd.DataFrame) -> list[Person]:
    names = organisations()
    people = []
    for row in frame.to_dict("records"):
        if not text(row["name"]):
            continue
        party = text(row["party"]) or "district"
        party_id = None if party == "district" else text(row["party_id"]) or None
        organisation = text(row["organisation"]) or names.get(party_id or "", "District")
        people.append(Person(text(row["name"]), organisation, party, party_id, text(row["role"])))
    return people


REPEATS = {"": "No schedule", "weekly": "Weekly", "monthly": "Monthly"}


def schedule_fields(form: str, base: Schedule | None) -> Callable[[], Schedule | None]:
    """The schedule's fields inside a form; what they hold, read when the form is saved (so a
    schedule that cannot be met is refused as the save's error)."""
    st.markdown("**Schedule**, for the meeting calendar")
    one, two, three, four = st.columns(4)
    repeats = one.selectbox("Repeats", list(REPEATS), index=list(REPEATS).index(base.frequency if base else ""),
                            format_func=REPEATS.get, key=f"{form}-repeats")
    every = two.selectbox("Every", list(EVERY), index=(base.every if base else 1) - 1,
                          format_func=lambda n: EVERY[n].strip().capitalize() or "Each", key=f"{form}-every",
                          help="Each week (or month), every second one, …")
    weekday = three.selectbox("On", range(7), index=base.weekday if base else 1, format_func=WEEKDAYS.__getitem__,
                              key=f"{form}-weekday")
    weeks = list(WEEKS_OF_MONTH)
    week = four.selectbox("Which in the month", weeks, format_func=lambda n: WEEKS_OF_MONTH[n].capitalize(),
                          index=weeks.index(base.week_of_month) if base and base.week_of_month else 0,
                          key=f"{form}-week", help="Monthly schedules only: the first Thursday, the last Friday, …")
    five, six, seven, eight = st.columns(4)
    starts = five.date_input("From", base.starts_on if base else ci_ui.today(), format="YYYY-MM-DD",
                             key=f"{form}-starts")
    ends = six.date_input("To", base.ends_on if base else None, format="YYYY-MM-DD", key=f"{form}-ends",
                          help="Left empty: until the schedule is changed")
    at = seven.time_input("At", base.at if base else time(16, 0), key=f"{form}-at")
    minutes = eight.number_input("Minutes", 5, 480, base.minutes if base else 60, step=5, key=f"{form}-minutes")

    def schedule() -> Schedule | None:
        if not repeats:
            return None
        if starts is None:
            raise ValueError("A schedule needs the day it starts.")
        return Schedule(repeats, weekday, starts, at, int(minutes), every,
                        week if repeats == "monthly" else None, ends)

    return schedule


def group_form(form: str, base: Workgroup, button: str) -> tuple[Callable[[], Workgroup], bool]:
    """The workgroup as typed into a form filled from `base` (read when called), and whether
    `button` was pressed."""
    names = ci_ui.labels().get("vendor_id", {})
    vendors = list(names)
    with st.form(form):
        name = st.text_input("Name", base.name, key=f"{form}-name")
        purpose = st.text_area("Purpose", base.purpose, key=f"{form}-purpose")
        left, right = st.columns(2)
        cadence = left.text_input("Cadence", base.cadence, placeholder="How often and how long", key=f"{form}-cadence")
        way = right.text_input("Format", base.format, placeholder="Where, and in person or by video", key=f"{form}-format")
        decisions = st.text_area("Decisions it makes, one a line", "\n".join(base.decisions), key=f"{form}-decisions")
        schedule = schedule_fields(form, base.schedule)
        chosen = st.multiselect("Vendors taking part", vendors, default=[v for v in base.vendor_ids if v in vendors],
                                format_func=names.get, key=f"{form}-vendors")
        st.markdown("**Members**")
        members = st.data_editor(members_frame(base.members), key=f"{form}-members", num_rows="dynamic", hide_index=True,
                                 column_config=member_columns(), width="stretch")
        pressed = st.form_submit_button(button, type="primary", icon=":material/save:")
    people = members_from(members)
    # A vendor's person brings the vendor into the group.
    vendor_ids = chosen + sorted({p.party_id for p in people if p.party == "vendor"} - set(chosen))

    def typed() -> Workgroup:
        return replace(base, name=name.strip(), purpose=purpose.strip(), members=people, cadence=cadence.strip(),
                       schedule=schedule(), format=way.strip(),
                       decisions=[d.strip() for d in decisions.splitlines() if d.strip()], vendor_ids=vendor_ids)

    return typed, pressed


def check_name(typed: Workgroup) -> None:
    """Names pick a group in the address, so no two groups share one."""
    if any(g.name == typed.name and g.id != typed.id for g in meetings.workgroups(db, scope())):
        raise ValueError(f"There is already a workgroup called “{typed.name}”.")


def store(typed: Workgroup) -> Workgroup:
    check_name(typed)
    return meetings.save_workgroup(db, scope(), typed, by=ci_ui.me())


def new_workgroup() -> None:
    generation = st.session_state.setdefault("new-workgroup-generation", 0)
    with st.expander("Set up a workgroup", icon=":material/add:"):
        typed, pressed = group_form(f"new-workgroup-{generation}", Workgroup(name=""), "Set it up")
        if not pressed:
            return
        made = ci_ui.save_new(lambda: store(typed()))
        if made is not None:
            st.session_state["new-workgroup-generation"] += 1  # an empty form for the next group
            ci_ui.open_new("group", made.id, (NOTICE, f"Set up {made.name}."))


ci_ui.offer_new(staff, new_workgroup)
if not groups:
    st.info("No workgroup yet" + ("." if ci_ui.district_staff() else " that your organisation takes part in."))
    st.stop()

ci_ui.choose_new("group")
by_id = {g.id: g for g in groups}
# Not keyed "workgroup" like the meetings page's chooser: with the same key on both pages, the
# meetings page ignored the ?workgroup= of the links below (seen in Chromium).
group = by_id[st.selectbox("Workgroup", list(by_id), format_func=ci_ui.distinct(by_id, lambda g: ci_ui.plain(by_id[g].name)), key="group",
                           bind="query-params")]


# --- one workgroup ---------------------------------------------------------------------------


def show_group(group: Workgroup) -> None:
    st.subheader(ci_ui.say(group.name))
    st.markdown(ci_ui.say(group.purpose) or "_No purpose written yet._")
    st.markdown(ci_ui.say(f"**Meets** {group.cadence or '—'} · **Format** {group.format or '—'}"))
    st.markdown(f"**Schedule** {group.schedule or 'none yet: no meeting calendar'}")
    vendors = ", ".join(ci_ui.vendor_name(v) for v in group.vendor_ids)
    st.markdown(ci_ui.say(f"**Vendors** {vendors or 'none: a district group'}"))
    st.markdown(ci_ui.say("**Decides**\n\n" + ("\n".join(f"- {d}" for d in group.decisions) or "_Not written yet._")))
    st.dataframe(disguised(ci_ui.records_frame(group.members, {
        "Name": lambda p: p.name, "Organisation": lambda p: p.organisation, "Party": lambda p: p.party.capitalize(),
        "Role": lambda p: p.role,
    })), hide_index=True)


def show_meetings(group: Workgroup) -> None:
    held = list(reversed(meetings.meetings(db, scope(), group.id)))
    st.markdown(f"**Meetings** ({len(held)})")
    for meeting in held:
        st.page_link("app_pages/meetings.py", label=ci_ui.meeting_label(meeting),
                     icon=":material/lock:" if meeting.is_final else ":material/edit_note:",
                     query_params={"workgroup": str(group.id), "meeting": str(meeting.id)})
    if not held:
        st.caption("It has not met yet.")
        st.page_link("app_pages/meetings.py", label="Meetings", icon=":material/event_note:",
                     query_params={"workgroup": str(group.id)})


def show_calendar(group: Workgroup) -> None:
    """The schedule's last few dates and its next ones, each held, drafted, missed or coming;
    the next one to draft; and the .ics files."""
    today = ci_ui.today()
    cancelled = meeting_calendar.cancellations(db, scope(), group)
    found = meeting_calendar.slots(group, meetings.meetings(db, scope(), group.id), today, cancelled=cancelled)
    if not found:
        return
    past = [s for s in found if s.on < today]
    shown = past[-4:] + meeting_calendar.upcoming(found, today, count=4)
    st.markdown("**Calendar**")
    st.dataframe(pd.DataFrame({
        "Date": [f"{s.on:%a %b %-d, %Y} {group.schedule.at:%H:%M}" for s in shown],
        "Status": [meeting_calendar.STATUS_LABELS[s.status] for s in shown],
        "Meeting": [ci_ui.meeting_label(s.meeting) if s.meeting else ci_ui.plain(cancelled[s.on].reason)
                    if s.on in cancelled else "" for s in shown],
    }), hide_index=True)
    if missed := meeting_calendar.missed(found):
        latest = ", ".join(f"{s.on:%b %-d, %Y}" for s in missed[-3:])
        st.caption(f":orange[{len(missed)} scheduled meeting{'s' * (len(missed) > 1)} missed] since "
                   f"{group.schedule.starts_on:%b %-d, %Y}, with no meeting recorded within "
                   f"{meeting_calendar.NEAR.days} days; the latest {latest}.")
    elif not meeting_calendar.upcoming(found, today):
        st.caption("The schedule has ended.")
    due = meeting_calendar.next_to_draft(found, today)
    if due and staff and st.button(f"Draft the meeting of {due:%a %b %-d}", icon=":material/edit_calendar:",
                                   help="A draft meeting with its members as attendees and its agenda's next steps "
                                        "prefilled: the last meeting's, and the commitments due by then"):
        made = meeting_calendar.draft_next(db, scope(), group, due, by=ci_ui.me())
        st.session_state[NOTICE] = f"Drafted the meeting of {made.held_on:%B %-d}: open it under Meetings below."
        st.rerun()
    coming = [s.on for s in found if s.status in (meeting_calendar.DUE, meeting_calendar.UPCOMING)][:8]
    if staff and coming:
        with st.expander("Cancel one meeting", icon=":material/event_busy:"):
            with st.form("cancel-meeting"):
                on = st.selectbox("Meeting", coming, format_func=lambda d: f"{d:%a %b %-d, %Y}", key="cancel-on")
                reason = st.text_input("Why", placeholder="Parent conferences", key="cancel-reason")
                if st.form_submit_button("Cancel this meeting", key="cancel-meeting-button",
                                         help="Members' calendars drop it when they import the .ics again."):
                    try:
                        meeting_calendar.cancel(db, scope(), group, on, reason, by=account())
                    except (ValueError, PermissionError) as error:
                        st.error(ci_ui.say(str(error)))
                    else:
                        st.session_state[NOTICE] = f"Cancelled the meeting of {on:%B %-d}."
                        st.rerun()


def calendar_downloads(group: Workgroup) -> None:
    """The workgroup's meetings and those of every workgroup this account sees, as .ics files to
    import into a calendar. Not while presenting with vendors as letters: the files name them."""
    if aliasing():
        return
    today = ci_ui.today()
    zone = warehouse().settings.time_zone
    left, right = st.columns(2)
    if group.schedule:
        name = f"workgroup-{group.id}.ics"
        left.download_button(
            "This workgroup's meetings (.ics)",
            meeting_calendar.ics([group], group.name, today, time_zone=zone, cancelled=cancelled([group])), file_name=name,
            mime="text/calendar", icon=":material/calendar_month:", key="ics-workgroup", on_click=audit,
            args=("export", {"file": name, "workgroup": group.id}),
        )
    if any(g.schedule for g in groups):
        name = f"ciboard-{ci_ui.me()}.ics"
        right.download_button(
            "All my workgroups' meetings (.ics)",
            meeting_calendar.ics(groups, f"CI Board: {ci_ui.me()}", today, time_zone=zone, cancelled=cancelled(groups)),
            file_name=name, mime="text/calendar", icon=":material/calendar_month:", key="ics-account", on_click=audit,
            args=("export", {"file": name}),
            help="Every meeting of the workgroups this account sees. Import it again after a schedule changes: "
                 "the meetings are updated, not doubled.",
        )


def server_address() -> str:
    """This server as the browser reached it, for links that leave the page."""
    base = st.get_option("server.baseUrlPath").strip("/")
    opened = urlsplit(st.context.url or f"http://localhost:{st.get_option('server.port')}")
    return f"{opened.scheme}://{opened.netloc}" + (f"/{base}" if base else "")


def calendar_link() -> None:
    """The account's calendar link, which a calendar app subscribes to: made, shown once, replaced
    or stopped. Not while presenting with vendors as letters: the link is a secret."""
    if aliasing():
        return
    me = account()
    made_at = calendar_feeds.link_made_at(db, me)
    shown = st.session_state.get("calendar-link")
    with st.expander("Subscribe in a calendar app", icon=":material/event_repeat:", expanded=shown is not None):
        st.caption(
            "A calendar link holds the meetings of every workgroup you see, as the file above does, and your calendar "
            "app (Outlook, Google Calendar, Apple Calendar: add a calendar from a URL) fetches it again by itself, so "
            "schedule changes and cancellations reach you. Anyone who has the link sees these meetings: keep it to "
            "yourself, and make a new one if it is shared by mistake."
        )
        if shown:
            st.code(shown, language=None)
            st.caption("Copy it now: after you sign out it cannot be shown again. Your earlier link, if you had one, has "
                       "stopped working.")
        elif made_at:
            st.caption(f"You made your link on {made_at:%b %-d, %Y}. It is shown only when it is made: if you no longer "
                       "have it, make a new one, and the old one stops working.")
        left, right = st.columns(2)
        if left.button("Make a new link" if made_at else "Make my calendar link", icon=":material/link:",
                       key="calendar-link-make"):
            st.session_state["calendar-link"] = calendar_feeds.address(server_address(), calendar_feeds.make_link(db, me))
            st.rerun()
        if made_at and right.button("Stop my link", icon=":material/link_off:", key="calendar-link-stop"):
            calendar_feeds.stop_link(db, me)
            st.session_state.pop("calendar-link", None)
            st.rerun()


def cancelled(some: list[Workgroup]) -> dict[int, set]:
    return {g.id: set(meeting_calendar.cancellations(db, scope(), g)) for g in some if g.schedule}


show_group(group)
show_calendar(group)
calendar_downloads(group)
calendar_link()
show_meetings(group)


# --- editing: the form keeps what was typed, and a save names the revision it started from ---


def stored(typed: Workgroup, revision: int) -> Workgroup:
    saved = store(replace(typed, revision=revision))
    st.session_state["open-group"] = saved.id  # a new name is a new option of the chooser
    return saved


def latest() -> Workgroup:
    return meetings.workgroup(db, scope(), group.id)


def edit(record: Workgroup, session: dict) -> None:
    offered = ci_ui.session_drafts(session, "workgroup", DRAFTED)
    with st.expander("Edit the workgroup", icon=":material/edit:", expanded=session["conflict"] is not None or offered):
        if moved := ci_ui.moved_on(record, session):
            ci_ui.offer_latest(session, moved, latest)
        typed, pressed = group_form(session["form"], session["opened"], "Save the workgroup")
        ci_ui.save_or_resolve(session, pressed, latest=latest, notice=NOTICE,
                              store=lambda revision: stored(typed(), revision))


if staff:
    edit(group, ci_ui.edit_session(group, "workgroup", "wg", drawn="name"))

with st.expander("History", icon=":material/history:"):
    shown = ci_ui.read_history("workgroup", group.id, f"workgroup-history-{group.id}-{group.revision}", {
        "Name": lambda v: v.record.name, "Members": lambda v: len(v.record.members),
    })
    st.markdown(ci_ui.say(f"**{shown.name}**\n\n{shown.purpose}\n\n**Meets** {shown.cadence} · **Format** {shown.format}"
                          f" · **Schedule** {shown.schedule or '—'}"))
    st.markdown(ci_ui.say("\n".join(f"- {p.name} ({p.organisation}): {p.role}" for p in shown.members)) or "_No members._")
