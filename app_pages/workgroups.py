"""Workgroups: the standing groups that run the CI process. Each has a purpose, members with
their roles, a cadence and a format, and the decisions it is there to make."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from ciboard import ci_ui, meetings
from ciboard.access import ScopeError
from ciboard.dashboard import disguised, scope
from ciboard.meetings import PARTIES, EditConflict, Person, Workgroup
from ciboard.session import aliasing

db = ci_ui.db()
# On a shared screen with vendors as letters the records read disguised, and the forms (which
# hold the text as typed) are left out.
staff = ci_ui.district_staff() and not aliasing()
NOTICE = "workgroups-notice"


def organisations() -> dict[str, str]:
    """Every vendor and school this account sees, by id: who a member can come from."""
    return {**ci_ui.labels().get("vendor_id", {}), **ci_ui.labels().get("school_id", {})}


def meeting_label(meeting: meetings.Meeting) -> str:
    """How the meetings page names a meeting in its address (?meeting=…)."""
    return f"{meeting.held_on:%b %-d, %Y} · {'minutes' if meeting.is_final else 'draft'}"


st.title("Workgroups")
st.caption(
    "Who meets, why, how often and to decide what: the groups that keep the district, the vendors and the schools "
    "reading the data together and acting on it."
)
if notice := st.session_state.pop(NOTICE, None):
    st.success(notice, icon=":material/check_circle:")

groups = meetings.workgroups(db, scope())
if groups:
    st.dataframe(disguised(ci_ui.records_frame(groups, {
        "Workgroup": lambda g: g.name,
        "Purpose": lambda g: g.purpose,
        "Meets": lambda g: g.cadence,
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


def group_form(form: str, base: Workgroup, button: str) -> tuple[Workgroup, bool]:
    """The workgroup as typed into a form filled from `base`, and whether `button` was pressed."""
    names = ci_ui.labels().get("vendor_id", {})
    vendors = list(names)
    with st.form(form):
        name = st.text_input("Name", base.name, key=f"{form}-name")
        purpose = st.text_area("Purpose", base.purpose, key=f"{form}-purpose")
        left, right = st.columns(2)
        cadence = left.text_input("Cadence", base.cadence, placeholder="How often and how long", key=f"{form}-cadence")
        way = right.text_input("Format", base.format, placeholder="Where, and in person or by video", key=f"{form}-format")
        decisions = st.text_area("Decisions it makes, one a line", "\n".join(base.decisions), key=f"{form}-decisions")
        chosen = st.multiselect("Vendors taking part", vendors, default=[v for v in base.vendor_ids if v in vendors],
                                format_func=names.get, key=f"{form}-vendors")
        st.markdown("**Members**")
        members = st.data_editor(members_frame(base.members), key=f"{form}-members", num_rows="dynamic", hide_index=True,
                                 column_config=member_columns(), width="stretch")
        pressed = st.form_submit_button(button, type="primary", icon=":material/save:")
    people = members_from(members)
    # A vendor's person brings the vendor into the group.
    vendor_ids = chosen + sorted({p.party_id for p in people if p.party == "vendor"} - set(chosen))
    typed = replace(base, name=name.strip(), purpose=purpose.strip(), members=people, cadence=cadence.strip(),
                    format=way.strip(), decisions=[d.strip() for d in decisions.splitlines() if d.strip()],
                    vendor_ids=vendor_ids)
    return typed, pressed


def check_name(typed: Workgroup) -> None:
    """Names pick a group in the address, so no two groups share one."""
    if any(g.name == typed.name and g.id != typed.id for g in meetings.workgroups(db, scope())):
        raise ValueError(f"There is already a workgroup called “{typed.name}”.")


def new_workgroup() -> None:
    generation = st.session_state.setdefault("new-workgroup-generation", 0)
    with st.expander("Set up a workgroup", icon=":material/add:"):
        typed, pressed = group_form(f"new-workgroup-{generation}", Workgroup(name=""), "Set it up")
        if not pressed:
            return
        try:
            check_name(typed)
            made = meetings.save_workgroup(db, scope(), typed, by=ci_ui.me())
        except (ValueError, ScopeError) as error:
            st.error(str(error))
            return
        st.session_state["new-workgroup-generation"] += 1
        st.session_state["open-workgroup"] = made.id
        st.session_state[NOTICE] = f"Set up {made.name}."
        st.rerun()


if staff:
    new_workgroup()
elif ci_ui.district_staff():
    st.caption("Editing is off while vendors are shown as letters.")
if not groups:
    st.info("No workgroup yet" + ("." if ci_ui.district_staff() else " that your organisation takes part in."))
    st.stop()

if "open-workgroup" in st.session_state:  # a group set up in the last run opens itself
    st.session_state["group"] = st.session_state.pop("open-workgroup")
by_id = {g.id: g for g in groups}
# Not keyed "workgroup" like the meetings page's chooser: with the same key on both pages, the
# meetings page ignored the ?workgroup= of the links below (seen in Chromium).
group = by_id[st.selectbox("Workgroup", list(by_id), format_func=lambda g: ci_ui.say(by_id[g].name), key="group",
                           bind="query-params")]


# --- one workgroup ---------------------------------------------------------------------------


def show_group(group: Workgroup) -> None:
    st.subheader(ci_ui.say(group.name))
    st.markdown(ci_ui.say(group.purpose) or "_No purpose written yet._")
    st.markdown(ci_ui.say(f"**Meets** {group.cadence or '—'} · **Format** {group.format or '—'}"))
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
        st.page_link("app_pages/meetings.py", label=meeting_label(meeting),
                     icon=":material/lock:" if meeting.is_final else ":material/edit_note:",
                     query_params={"workgroup": group.name, "meeting": meeting_label(meeting)})
    if not held:
        st.caption("It has not met yet.")
        st.page_link("app_pages/meetings.py", label="Meetings", icon=":material/event_note:",
                     query_params={"workgroup": group.name})


show_group(group)
show_meetings(group)


# --- editing: the form keeps what was typed, and a save names the revision it started from ---


def fresh_session(record: Workgroup, old: dict | None = None) -> dict:
    generation = old["generation"] + 1 if old else 0
    return {"opened": record, "revision": record.revision, "generation": generation,
            "form": f"wg-{record.id}-{generation}", "conflict": None}


def edit_session(record: Workgroup) -> dict:
    """This editor's session on the workgroup, kept across reruns: the version the form opened
    at (its text fills the form), the revision a save names and a conflict to resolve. A form
    not drawn in the last run opens afresh on the workgroup as it is."""
    key = f"edit-workgroup-{record.id}"
    session = st.session_state.get(key)
    if session is None or f"{session['form']}-name" not in st.session_state:
        session = st.session_state[key] = fresh_session(record, session)
    return session


def save(typed: Workgroup, revision: int, session: dict) -> None:
    try:
        check_name(typed)
        saved = meetings.save_workgroup(db, scope(), replace(typed, revision=revision), by=ci_ui.me())
    except EditConflict as conflict:
        session["conflict"] = conflict
        return
    except ValueError as error:
        st.error(str(error))
        return
    st.session_state[f"edit-workgroup-{saved.id}"] = fresh_session(saved, session)
    st.session_state["open-workgroup"] = saved.id  # a new name is a new option of the chooser
    st.session_state[NOTICE] = f"Saved as revision {saved.revision}."
    st.rerun()


def reopen(session: dict) -> None:
    """Drops this editor's unsaved changes and opens the form on the workgroup as stored now."""
    st.session_state[f"edit-workgroup-{group.id}"] = fresh_session(meetings.workgroup(db, scope(), group.id), session)
    st.rerun()


def edit(record: Workgroup, session: dict) -> None:
    with st.expander("Edit the workgroup", icon=":material/edit:", expanded=session["conflict"] is not None):
        if record.revision != session["revision"] and session["conflict"] is None:
            st.info(f"{record.updated_by} saved revision {record.revision} after this form opened at revision "
                    f"{session['revision']}. Saving will show you both.", icon=":material/sync_problem:")
            if st.button("Open the latest instead", key=f"{session['form']}-latest"):
                reopen(session)
        typed, pressed = group_form(session["form"], session["opened"], "Save the workgroup")
        if pressed:
            save(typed, session["revision"], session)
        conflict = session["conflict"]
        if conflict is None:
            return
        ci_ui.show_conflict(conflict)
        mine, theirs = st.columns(2)
        if mine.button("Save mine over theirs (I have read both)", icon=":material/edit_note:", key=f"{session['form']}-mine"):
            save(typed, conflict.theirs.revision, session)
        if theirs.button("Take theirs and drop mine", icon=":material/undo:", key=f"{session['form']}-theirs"):
            reopen(session)


if staff:
    edit(group, edit_session(group))

with st.expander("History", icon=":material/history:"):
    versions = meetings.history(db, scope(), "workgroup", group.id)
    st.dataframe(disguised(ci_ui.records_frame(versions, {
        "Revision": lambda v: v.revision, "Saved by": lambda v: v.saved_by,
        "Saved at": lambda v: f"{v.saved_at:%Y-%m-%d %H:%M}", "Name": lambda v: v.record.name,
        "Members": lambda v: len(v.record.members),
    })), hide_index=True)
    revision = st.selectbox("Read revision", [v.revision for v in versions], index=len(versions) - 1,
                            key=f"workgroup-history-{group.id}-{group.revision}")
    shown = next(v.record for v in versions if v.revision == revision)
    st.markdown(ci_ui.say(f"**{shown.name}**\n\n{shown.purpose}\n\n**Meets** {shown.cadence} · **Format** {shown.format}"))
    st.markdown(ci_ui.say("\n".join(f"- {p.name} ({p.organisation}): {p.role}" for p in shown.members)) or "_No members._")
