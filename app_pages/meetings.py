"""Meetings: a workgroup's CI meeting with its agenda in four parts. The outcomes-data part
comes prefilled with what the data did since the group last met and how each open
commitment's number has moved; finalising freezes those numbers into the minutes."""

from dataclasses import replace
from datetime import date

import pandas as pd
import streamlit as st

from ciboard import ci_records, ci_ui, drafts, followup, meetings, movements, session
from ciboard.charts import POINT_NAMES, format_value
from ciboard.ci_records import AGENDA, Person
from ciboard.dashboard import disguised, metrics, scope, warehouse
from ciboard.meetings import EditConflict, MeetingFinal
from ciboard.session import aliasing
from ciboard.warehouse import data_version

NEW = 0  # the meeting chooser's "new meeting" entry
db = ci_ui.db()
staff = ci_ui.district_staff()

st.title("Meetings")
st.caption(
    "Run the meeting from here: the agenda in four parts, the data since the group last met, the commitments made "
    "and every one still open with what its number has done since. Finalise the minutes to keep the numbers as they "
    "were on screen." if staff else
    "The meetings of the workgroups your organisation takes part in: their agenda, notes and minutes, and the "
    "commitments made at each. District staff run them; update your own commitments on Commitments."
)

groups = {g.id: g for g in meetings.workgroups(db, scope())}
if not groups:
    st.info("There is no workgroup yet" + (": set one up first." if staff else " that your organisation takes part in."))
    st.page_link("app_pages/workgroups.py", label="Workgroups", icon=":material/diversity_3:")
    st.stop()

if "open_meeting" in st.session_state:  # a meeting made in the last run opens itself
    st.session_state["meeting"] = st.session_state.pop("open_meeting")
left, right = st.columns(2)
ci_ui.keep_choice("workgroup", list(groups))
group_id = left.selectbox("Workgroup", list(groups), format_func=ci_ui.distinct(groups, lambda g: ci_ui.plain(groups[g].name)), key="workgroup")
ci_ui.chosen("workgroup", group_id)
group = groups[group_id]
held = list(reversed(meetings.meetings(db, scope(), group_id)))
options = [m.id for m in held] + ([NEW] if staff else [])
if not options:
    st.info("This workgroup has not met yet.")
    st.stop()
labels = {m.id: ci_ui.meeting_label(m) for m in held} | {NEW: "New meeting…"}
ci_ui.keep_choice("meeting", options)
meeting_id = right.selectbox("Meeting", options, format_func=ci_ui.distinct(options, labels.get), key="meeting")
ci_ui.chosen("meeting", meeting_id)

with st.expander(f"About {ci_ui.say(group.name)}", icon=":material/diversity_3:"):
    st.markdown(ci_ui.say(f"{group.purpose}\n\n**Meets** {group.cadence} · {group.format}"))
    if group.decisions:
        st.markdown(ci_ui.say("**Decides**\n" + "\n".join(f"- {d}" for d in group.decisions)))
    st.dataframe(ci_ui.records_frame(group.members, {
        "Name": lambda p: p.name, "Organisation": lambda p: p.organisation, "Role": lambda p: p.role,
    }), hide_index=True)


def new_meeting() -> None:
    with st.form("new_meeting"):
        held_on = st.date_input("Date", value=date.today(), format="YYYY-MM-DD")
        present = st.multiselect("Attendees", [p.name for p in group.members], default=[p.name for p in group.members])
        guests = st.text_input("Other attendees", placeholder="Name (organisation), separated by commas")
        if st.form_submit_button("Start the meeting", type="primary", icon=":material/event_note:"):
            people = [p for p in group.members if p.name in present] + [
                Person(name.strip(), "Guest", "district") for name in guests.split(",") if name.strip()
            ]
            made = meetings.save_meeting(
                db, scope(), replace(ci_records.draft_meeting(group, held_on), attendees=people), by=ci_ui.me()
            )
            st.session_state["open_meeting"] = made.id
            st.rerun()


if meeting_id == NEW:
    new_meeting()
    st.stop()

meeting = meetings.meeting(db, scope(), meeting_id)
session.run_meeting(meeting)  # a draft is the meeting being run: the screen takes its letters
# While vendors read as letters the notes (as people typed them) are shown disguised, not edited.
editing = staff and not meeting.is_final and not aliasing()
when = f"{meeting.held_on:%A, %B %-d, %Y}"
opened = f"opened-{meeting.id}"  # the revision this editor started from, kept across reruns
boxes = {part.key: f"agenda-{meeting.id}-{part.key}" for part in AGENDA}
# Boxes not drawn in the last run (first open, or back from another page) fill from the meeting as it is now.
if editing and (opened not in st.session_state or not any(box in st.session_state for box in boxes.values())):
    st.session_state[opened] = meeting.revision

st.subheader(ci_ui.say(f"{group.name} · {when}"))
st.caption(ci_ui.say(
    "Attendees: " + (", ".join(f"{p.name} ({p.organisation})" for p in meeting.attendees) or "not recorded")
    + f" · revision {meeting.revision}, saved by {meeting.updated_by} on {meeting.updated_at:%b %-d, %H:%M}"
))
if meeting.is_final:
    st.info(ci_ui.say(
        f"Minutes finalised by {meeting.finalised_by} on {meeting.finalised_at:%b %-d, %Y}. The numbers are those on "
        f"screen then ({data_version(meeting.warehouse_version)}), whatever data has come in since."),
        icon=":material/lock:",
    )
    if staff:
        ci_ui.leftover_draft("meeting", meeting.id, "these minutes", {part.key: part.title for part in AGENDA})
elif staff and aliasing():
    st.info(ci_ui.EDITING_OFF, icon=":material/edit_off:")

# A vendor in a meeting of several vendors reads the agenda; the frozen numbers are the district's.
# Frozen numbers read as this account may see them: an analyst's snapshot holds small cells.
if meeting.is_final:
    outcomes = ci_ui.frozen(meeting)
else:
    vendor_filter = {"vendor_id": group.vendor_ids} if group.vendor_ids else {}
    outcomes = ci_ui.prefill(group_id, meeting.held_on, vendor_filter)


def show_outcomes(snapshot: dict | None) -> None:
    if not snapshot:
        st.caption("The numbers of this meeting are shown to district staff.")
        return
    prefill = followup.Prefill.from_dict(snapshot["prefill"])
    catalogue = metrics()
    st.markdown(ci_ui.say("\n".join(f"- {line}" for line in followup.summary(prefill, warehouse())[:6])))
    if prefill.pending:
        parts = "; ".join(name for name, waiting in (("the control-chart signals", prefill.signals_pending),
                                                      ("the gaps between student groups", "gaps" in prefill.preparing),
                                                      ("how commitments and PDSA cycles moved", "movements" in prefill.preparing)) if waiting)
        ci_ui.wait_for(
            lambda: not followup.Prefill.from_dict(ci_ui.prefill(group_id, meeting.held_on, vendor_filter)["prefill"]).pending,
            f"{parts[:1].upper()}{parts[1:]}: being prepared for this version of the data, and shown here by "
            "themselves in a moment. The minutes can be finalised then.",
        )
    if prefill.signals:
        with st.expander(f"Control-chart signals since {prefill.since} ({len(prefill.signals)})", icon=":material/insights:"):
            top = followup.TOP_SIGNALS
            every = len(prefill.signals) <= top or st.toggle(f"Show all {len(prefill.signals)}", key="all-signals")
            st.dataframe(disguised(pd.DataFrame([
                {"Metric": s["label"], "For": ci_ui.slice_text(ci_records.Slice(
                    vendor_id=s.get("vendor_id"), dimension=s.get("dimension") if s.get("dimension") in ci_ui.GROUP_DIMENSIONS else None,
                    value=s.get("group") if s.get("dimension") in ci_ui.GROUP_DIMENSIONS else None,
                    school_id=s.get("group") if s.get("dimension") == "school_id" else None)),
                 "Week": s["period_start"], "Value": format_value(s["value"], catalogue[s["metric_id"]]),
                 "Signal": POINT_NAMES.get(s["point_type"], s["point_type"]), "Rule": s["rules"],
                 "Same in": f"+{len(s.get('folded') or [])} groups" if s.get("folded") else ""}
                for s in (prefill.signals if every else prefill.signals[:top])
            ])), hide_index=True)
    if prefill.gaps:
        st.markdown("**Gaps that moved beyond chance**")
        st.dataframe(disguised(pd.DataFrame([
            {"Metric": g["label"], "Group": f"{ci_ui.GROUP_DIMENSIONS.get(g['dimension'], g['dimension'])}: {g['group']}",
             "Against": g["reference"], "Then": format_value(g["gap_then"], catalogue[g["metric_id"]]),
             "Now": format_value(g["gap_now"], catalogue[g["metric_id"]]), "Moved": g["direction"]}
            for g in prefill.gaps
        ])), hide_index=True)
    if prefill.late_or_missing:
        st.markdown("**Late, missing or rejected data**")
        st.dataframe(disguised(pd.DataFrame([
            {"Vendor": ci_ui.vendor_name(r["vendor_id"]), "Data": r["kind"], "Week of": r["period_start"],
             "Due": r["due_on"], "Status": r["status"]}
            for r in prefill.late_or_missing
        ])), hide_index=True)
    st.markdown(f"**Open commitments** ({len(prefill.commitments)})")
    if prefill.commitments:
        # A static table wraps its text, so the action and how its number moved read whole on a shared screen.
        st.table(disguised(pd.DataFrame([commitment_row(item) for item in prefill.commitments])), hide_index=True)
    else:
        st.caption("None carried forward.")


def commitment_row(item: dict) -> dict:
    c = ci_records.from_json(ci_records.Commitment, item["commitment"])
    movement = item.get("movement")
    moved = movements.Movement.from_dict(movement).sentence(metrics()[c.metric_id]) if movement and c.metric_id else "—"
    due = f"{c.due_on:%b %-d}" if c.due_on else "—"
    measured = ci_ui.metric_label(c.metric_id)
    return {
        "Who": f"{ci_ui.party_text(c.party, c.party_id)} · {c.owner}" if c.owner else ci_ui.party_text(c.party, c.party_id),
        "Action": c.action,
        "Due": due + (f" · {item['days_overdue']} days overdue" if item["overdue"] else ""),
        "Status": ci_records.STATUS_LABELS[item["status"]],
        "Measured by": f"{measured} · {ci_ui.slice_text(c.slice)}" if c.metric_id else "—",
        "Since it was made": moved,
    }


def made_here() -> None:
    """The commitments made at this meeting; while it is a draft, a form to add one and to edit each."""
    made = meetings.commitments(db, scope(), meeting_id=meeting.id)
    st.markdown(f"**Made at this meeting** ({len(made)})")
    if made:
        st.dataframe(ci_ui.records_frame(made, {
            "#": lambda c: c.id, "Party": lambda c: ci_ui.party_text(c.party, c.party_id), "Owner": lambda c: c.owner,
            "Action": lambda c: c.action, "Due": lambda c: f"{c.due_on:%b %-d, %Y}" if c.due_on else "—",
            "Status": lambda c: ci_records.STATUS_LABELS[c.status], "Metric": lambda c: ci_ui.metric_label(c.metric_id),
            "For": lambda c: ci_ui.slice_text(c.slice),
        }), hide_index=True, column_config={"Action": st.column_config.TextColumn(width="large")})
    else:
        st.caption("None yet.")
    if not editing:
        return
    with st.expander("Add a commitment", icon=":material/add_task:", expanded=True):
        st.caption(ci_records.COMMITMENT_PROMPT)
        ci_ui.new_commitment(f"new-commitment-{meeting.id}", meeting.id, meeting.held_on)
    if made:
        by_id = {c.id: c for c in made}
        chosen = st.selectbox("Edit a commitment made here", list(by_id), index=None, key=f"edit-made-{meeting.id}",
                              format_func=lambda i: f"#{i} · {ci_ui.short(ci_ui.plain(by_id[i].action))}",
                              placeholder="Choose one to correct its owner, action, due date or number")
        if chosen is not None:
            with st.container(border=True):
                ci_ui.edit_commitment(by_id[chosen])


def restore(found: drafts.Draft) -> None:
    """Saving restored notes names the revision they were typed over."""
    st.session_state[opened] = found.revision
    st.session_state.pop("conflict", None)


texts = {}
keep_typed = None
if editing:
    keep_typed = ci_ui.drafts(ci_ui.DraftForm(
        "meeting", meeting.id, st.session_state[opened], boxes,
        {part.key: meeting.agenda.get(part.key, "") for part in AGENDA}, {part.key: part.title for part in AGENDA},
    ), restore)
for part in AGENDA:
    st.markdown(f"#### {part.title}")
    with st.popover("Guiding questions", icon=":material/help:"):
        st.markdown("\n".join(f"- {q}" for q in part.questions))
    if part.key == "outcomes_data":
        show_outcomes(outcomes)
    if editing:
        texts[part.key] = st.text_area(
            f"Notes on {part.title.lower()}", meeting.agenda.get(part.key, ""), key=boxes[part.key],
            height=120, label_visibility="collapsed", placeholder="Notes…", on_change=keep_typed,
        )
    else:
        st.markdown(ci_ui.say(meeting.agenda.get(part.key)) or "_No notes._")
    if part.key == "next_steps":
        made_here()


def save(agenda: dict[str, str], revision: int) -> ci_records.Meeting | None:
    try:
        saved = meetings.save_meeting(db, scope(), replace(meeting, agenda=agenda, revision=revision), by=ci_ui.me())
    except EditConflict as conflict:
        st.session_state["conflict"] = conflict
        return None
    st.session_state[opened] = saved.revision
    st.session_state.pop("conflict", None)
    return saved


if editing:
    save_column, finalise_column = st.columns(2)
    if save_column.button("Save notes", type="primary", icon=":material/save:"):
        if save(texts, st.session_state[opened]):
            st.toast("Notes saved")
            st.rerun()
    conflict: EditConflict | None = st.session_state.get("conflict")
    if conflict is not None and conflict.theirs.id == meeting.id:
        choice = ci_ui.conflict_choice(conflict, mine="Keep my notes (I have read theirs)", theirs="Take their notes")
        if choice == "mine":
            if save(texts, conflict.theirs.revision):
                st.rerun()
        elif choice == "theirs":
            drafts.discard_draft(db, "meeting", meeting.id, by=ci_ui.me())
            for part in AGENDA:
                st.session_state.pop(boxes[part.key], None)
            st.session_state[opened] = conflict.theirs.revision
            st.session_state.pop("conflict")
            st.rerun()
    with finalise_column.popover("Finalise the minutes", icon=":material/lock:"):
        st.markdown(ci_ui.say(
            f"Finalise the minutes of **{group.name}** held on **{when}**? This saves the notes and freezes them, "
            "with the numbers above, as this meeting's minutes. They cannot be edited after."))
        # Minutes keep the numbers on screen: not before the signals are among them.
        pending = bool(outcomes) and followup.Prefill.from_dict(outcomes["prefill"]).pending
        if st.button(f"Finalise the meeting of {meeting.held_on:%b %-d, %Y}", type="primary", key="finalise",
                     disabled=pending, help="The numbers are still being prepared." if pending else None):
            saved = save(texts, st.session_state[opened])
            if saved:
                try:
                    followup.finalise(warehouse(), db, scope(), meeting.id, outcomes, by=ci_ui.me(), revision=saved.revision)
                except (EditConflict, MeetingFinal) as error:
                    st.error(ci_ui.say(str(error)))
                else:
                    st.rerun()

ci_ui.packet_downloads(meeting, group)

with st.expander("History of these notes", icon=":material/history:"):
    shown = ci_ui.read_history("meeting", meeting.id, f"revision-{meeting.id}", {"Status": lambda v: v.record.status})
    for part in AGENDA:
        st.markdown(f"**{part.title}**\n\n{ci_ui.say(shown.agenda.get(part.key)) or '_No notes._'}")

st.page_link("app_pages/commitments.py", label="Commitments: every party's, with their progress", icon=":material/task_alt:")
