"""Commitments: what each party agreed to do, by when, and whether the number it should move
has moved. Open ones are carried into every later meeting until someone closes them; a
vendor updates its own."""

from datetime import date

import streamlit as st

from ciboard import ci_records, ci_ui, meetings, movements
from ciboard.access import ScopeError
from ciboard.ci_records import PARTIES, STATUS_LABELS, STATUSES, Commitment
from ciboard.dashboard import metrics, scope, warehouse
from ciboard.meetings import EditConflict
from ciboard.session import aliasing

db = ci_ui.db()
staff = ci_ui.district_staff()
today = date.today()

st.title("Commitments")
st.caption(ci_records.COMMITMENT_PROMPT)

everything = meetings.commitments(db, scope())
left, middle, right = st.columns([2, 2, 1], vertical_alignment="bottom")
statuses = left.multiselect(
    "Status", STATUSES, default=["open", "in_progress"], format_func=STATUS_LABELS.get, key="status", bind="query-params"
)
parties = middle.multiselect("Party", PARTIES, format_func=str.capitalize, key="party", bind="query-params", placeholder="Every party")
overdue_only = right.toggle("Overdue only", key="overdue", bind="query-params")
shown = [
    c for c in everything
    if (not statuses or c.status in statuses) and (not parties or c.party in parties)
    and (not overdue_only or c.is_overdue_on(today))
]


def due_text(c: Commitment) -> str:
    if c.due_on is None:
        return "—"
    late = (today - c.due_on).days if c.is_overdue_on(today) else 0
    return f"{c.due_on:%b %-d, %Y}" + (f" · {late} days overdue" if late else "")


st.dataframe(
    ci_ui.records_frame(sorted(shown, key=lambda c: (not c.is_overdue_on(today), c.due_on or date.max)), {
        "#": lambda c: c.id, "Party": lambda c: ci_ui.party_text(c.party, c.party_id), "Owner": lambda c: c.owner,
        "Action": lambda c: c.action, "Due": due_text, "Status": lambda c: STATUS_LABELS[c.status],
        "Metric": lambda c: ci_ui.metric_label(c.metric_id), "For": lambda c: ci_ui.slice_text(c.slice),
        "Made": lambda c: f"{c.made_on:%b %-d, %Y}",
    }),
    hide_index=True,
    column_config={"Action": st.column_config.TextColumn(width="large")},
)
st.caption(f"{len(shown)} of {len(everything)} commitments. Overdue ones come first.")


@st.cache_data(show_spinner=False, max_entries=128)
def movement(version: str, scope_text: str, commitment_id: int, revision: int) -> dict | None:
    from ciboard.access import Scope

    c = meetings.commitment(db, Scope.parse(scope_text), commitment_id)
    if not c.metric_id:
        return None
    return movements.metric_movement(warehouse(), Scope.parse(scope_text), c.metric_id, c.slice, c.made_on).to_dict()


def show_one(c: Commitment) -> None:
    from ciboard.dashboard import version

    st.subheader(ci_ui.say(c.action))
    st.markdown(ci_ui.say(
        f"**{ci_ui.party_text(c.party, c.party_id)}** · owner {c.owner} · due {due_text(c)} · "
        f"**{STATUS_LABELS[c.status]}** · made {c.made_on:%b %-d, %Y}"
    ))
    if c.metric_id:
        moved = movement(version(), str(scope()), c.id, c.revision)
        sentence = movements.Movement.from_dict(moved).sentence(metrics()[c.metric_id]) if moved else "—"
        st.markdown(ci_ui.say(f"**{ci_ui.metric_label(c.metric_id)}** for {ci_ui.slice_text(c.slice)} since it was made: {sentence}"))
    st.dataframe(ci_ui.records_frame(c.log, {
        "On": lambda e: f"{e.on:%b %-d, %Y}", "Status": lambda e: STATUS_LABELS[e.status], "By": lambda e: e.by,
        "Note": lambda e: e.note,
    }), hide_index=True)
    if not may_update(c):
        return
    if aliasing():
        st.caption(ci_ui.EDITING_OFF)
        return
    opened = f"commitment-opened-{c.id}"
    st.session_state.setdefault(opened, c.revision)
    with st.form(f"status-{c.id}"):
        st.markdown("**Log progress**")
        status = st.selectbox("Status", STATUSES, index=STATUSES.index(c.status), format_func=STATUS_LABELS.get)
        note = st.text_input("Note", placeholder="What happened, what is next")
        on = st.date_input("On", value=today, max_value=today, min_value=c.made_on, format="YYYY-MM-DD")
        if st.form_submit_button("Save", type="primary"):
            try:
                saved = meetings.update_status(db, scope(), c.id, status, by=ci_ui.me(), revision=st.session_state[opened], note=note, on=on)
            except EditConflict as conflict:
                ci_ui.show_conflict(conflict)
                st.session_state[opened] = conflict.theirs.revision
                st.caption("Their change is above; save again to add yours after it.")
            else:
                st.session_state[opened] = saved.revision
                st.rerun()


def may_update(c: Commitment) -> bool:
    own = scope()
    return staff or (c.party == "vendor" and c.party_id == own.vendor_id) or (
        c.party == "school" and c.party_id in own.school_ids
    )


ids = [c.id for c in shown]
if ids:
    chosen = st.selectbox(
        "Open a commitment", ids, index=None, placeholder="Choose one to see its log or update it",
        format_func=lambda i: next(f"#{c.id} · {ci_ui.plain(c.action)[:90]}" for c in shown if c.id == i), key="commitment",
    )
    if chosen is not None:
        try:
            show_one(meetings.commitment(db, scope(), chosen))
        except ScopeError as error:
            st.error(ci_ui.say(str(error)))


def new_commitment() -> None:
    held = list(reversed(meetings.meetings(db, scope())))
    groups = {g.id: g.name for g in meetings.workgroups(db, scope())}
    by_id = {m.id: m for m in held if not m.is_final}  # minutes are closed: a commitment joins a later meeting
    with st.expander("Add a commitment", icon=":material/add_task:"):
        meeting_id = st.selectbox(
            "Made at", [None, *by_id], key="made-at",
            format_func=lambda i: "No meeting (today)" if i is None else
            f"{ci_ui.plain(groups[by_id[i].workgroup_id])} · {by_id[i].held_on:%b %-d, %Y}",
            help="A meeting's own commitments are best added in its Next steps, on Meetings.",
        )
        made_on = by_id[meeting_id].held_on if meeting_id is not None else today
        ci_ui.new_commitment("new-commitment", meeting_id, made_on)


ci_ui.offer_new(staff and not aliasing(), new_commitment)
