"""What the continuous-improvement pages (meetings, commitments, root causes, PDSA cycles,
workgroups) share: the store in the viewer's scope, free text shown safely, slices in words and
as widgets, the screen that shows both versions when two people saved the same record, and
drafts of what someone typed and has not saved."""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from datetime import date
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from ciboard import ci_records, followup, meetings, safe_text
from ciboard.access import ScopeError, whose_students
from ciboard.appdb import AppDB
from ciboard.ci_records import PARTIES, Commitment, Slice
from ciboard.dashboard import account, aliases, disguised, disguised_text, metrics, scope, warehouse
from ciboard.drafts import Draft, discard_draft, draft, keep_draft
from ciboard.meetings import EditConflict
from ciboard.session import aliasing, app_db

GROUP_DIMENSIONS = {
    "grade": "Grade",
    "race_ethnicity": "Race/ethnicity",
    "gender": "Gender",
    "econ_disadvantaged": "Economically disadvantaged",
    "english_learner": "English learner",
    "special_education": "Special education",
    "baseline_band": "Baseline band",
}
YES_NO = ("econ_disadvantaged", "english_learner", "special_education")


def distinct(options: Iterable[Any], label: Callable[[Any], str]) -> Callable[[Any], str]:
    """A chooser's format_func whose labels never repeat. Streamlit sends a choice back as its
    label, so of two options labelled alike the second cannot be chosen: picking it opens the
    first (two workgroups named alike, two meetings on one day), and a save then lands there.
    A repeated label gets the record's id (an int option) or its place among its twins."""
    options = list(options)
    labels = [label(option) for option in options]
    repeats = Counter(labels)
    seen: dict[str, int] = {}
    unique = {}
    for option, text in zip(options, labels):
        if repeats[text] > 1:
            seen[text] = seen.get(text, 0) + 1
            text += f" · #{option}" if isinstance(option, int) and not isinstance(option, bool) else f" · {seen[text]}"
        unique[option] = text
    return unique.__getitem__


_PAGE_RUN = "waiting-in-the-page-run"


def wait_for(ready: Callable[[], bool], message: str) -> None:
    """Shows `message` while something the server prepares in the background is not ready, and
    reruns the page by itself once it is, without a click. Only the waiting box's own tick reruns
    the page: a rerun inside the page's run would drop a button pressed in that run, so a Save
    clicked while the signals were being prepared would save nothing and say nothing."""
    st.session_state[_PAGE_RUN] = True
    _waiting(ready, message)


@st.fragment(run_every=3)
def _waiting(ready: Callable[[], bool], message: str) -> None:
    if not st.session_state.pop(_PAGE_RUN, False) and ready():
        st.rerun()
    st.info(message, icon=":material/hourglass_top:")


def db() -> AppDB:
    return app_db()


def me() -> str:
    return account().username


def district_staff() -> bool:
    """Analysts, facilitators and admins run the CI process; a vendor or a school reads it and
    updates its own commitments; an evaluator only reads it."""
    return scope().role in ("analyst", "facilitator", "admin")


def labels() -> dict[str, dict[str, str]]:
    return st.session_state["filters"].labels


def vendor_name(vendor_id: str | None) -> str:
    """A vendor's name, or its letter while presenting with "Vendor A, B, C"."""
    if not vendor_id:
        return ""
    alias = aliases().get(vendor_id)
    return alias or labels().get("vendor_id", {}).get(vendor_id, vendor_id)


def say(text: str | None) -> str:
    """Free text people wrote (a workgroup's name, notes, an action) for anything that reads
    Markdown (st.markdown, captions, headers, alerts, labels): their formatting and links, but
    no image, HTML or math (see safe_text), with vendors as their letters while presenting
    with "Vendor A, B, C". App text around it may be passed in with it: it holds none of those."""
    return safe_text.markdown(plain(text))


def plain(text: str | None) -> str:
    """Free text for what shows text as it is (a chooser's options, a table, an address), with
    vendors as their letters while presenting with "Vendor A, B, C"."""
    return disguised_text(text) if text else ""


def school_name(school_id: str | None) -> str:
    if not school_id:
        return ""
    return labels().get("school_id", {}).get(school_id, school_id)


def party_text(party: str, party_id: str | None) -> str:
    """'District', 'Cardinal Tutors (vendor)', 'Hamilton Middle (school)'."""
    if party == "vendor":
        return f"{vendor_name(party_id)} (vendor)" if party_id else "Vendor"
    if party == "school":
        return f"{school_name(party_id)} (school)" if party_id else "School"
    return "District"


def metric_label(metric_id: str | None) -> str:
    if not metric_id:
        return "—"
    row = metrics().get(metric_id)
    return row["label"] if row else metric_id


def slice_text(piece: Slice) -> str:
    """A slice in words: 'Cardinal Tutors · English learner: yes'."""
    parts = []
    if piece.vendor_id:
        parts.append(vendor_name(piece.vendor_id))
    if piece.school_id:
        parts.append(school_name(piece.school_id))
    if piece.dimension:
        name = GROUP_DIMENSIONS[piece.dimension]
        value = piece.value
        if piece.dimension in YES_NO:
            value = "yes" if str(value).lower() == "true" else "no"
        elif piece.dimension == "grade":
            value = str(value)
        parts.append(f"{name}: {value}")
    if parts:
        return " · ".join(parts)
    # A slice of nothing is everything the reader's numbers cover: for a vendor or a school, its own.
    everyone = whose_students(scope(), lambda d, v: vendor_name(v) if d == "vendor_id" else school_name(v))
    return everyone[0].upper() + everyone[1:]


def slice_picker(key: str, default: Slice | None = None) -> Slice:
    """Widgets for a slice: vendor (a vendor's own, fixed), school, and one student group."""
    default = default or Slice()
    vendors = list(labels().get("vendor_id", {}))
    schools = list(labels().get("school_id", {}))
    left, middle, right, far = st.columns(4)
    if scope().role == "vendor":
        vendor = scope().vendor_id
        left.text_input("Vendor", vendor_name(vendor), disabled=True, key=f"{key}-vendor-fixed")
    else:
        vendor = left.selectbox(
            "Vendor", [None, *vendors], index=([None, *vendors].index(default.vendor_id) if default.vendor_id in vendors else 0),
            format_func=lambda v: "All vendors" if v is None else vendor_name(v), key=f"{key}-vendor",
        )
    school = middle.selectbox(
        "School", [None, *schools], index=([None, *schools].index(default.school_id) if default.school_id in schools else 0),
        format_func=lambda s: "All schools" if s is None else school_name(s), key=f"{key}-school",
    )
    dimensions = [None, *GROUP_DIMENSIONS]
    dimension = right.selectbox(
        "Student group", dimensions, index=dimensions.index(default.dimension) if default.dimension in dimensions else 0,
        format_func=lambda d: "All students" if d is None else GROUP_DIMENSIONS[d], key=f"{key}-dimension",
    )
    value = None
    if dimension in YES_NO:
        value = far.selectbox("Group", ["true", "false"], format_func={"true": "Yes", "false": "No"}.get, key=f"{key}-value")
    elif dimension is not None:
        values = list(labels().get(dimension, {}))
        value = far.selectbox(
            "Group", values, format_func=lambda v: labels()[dimension].get(v, v), key=f"{key}-value",
            index=values.index(str(default.value)) if str(default.value) in values else 0,
        )
    return Slice(vendor_id=vendor, school_id=school, dimension=dimension, value=value)


def metric_picker(key: str, default: str | None = None) -> str:
    catalogue = metrics()
    options = list(catalogue)
    return st.selectbox(
        "Metric", options, index=options.index(default) if default in options else 0,
        format_func=lambda m: catalogue[m]["label"], key=key,
    )


def show_conflict(error: EditConflict) -> None:
    """Both versions of a record two people saved, side by side, field by field."""
    st.error(say(f"Not saved: {error}"), icon=":material/sync_problem:")
    changed = error.changed
    rows = [
        {"field": name.replace("_", " "), "saved by " + str(error.theirs.updated_by): _plain(getattr(error.theirs, name)),
         "yours": _plain(getattr(error.mine, name))}
        for name in changed
    ]
    if rows:
        st.dataframe(disguised(pd.DataFrame(rows)), hide_index=True, width="stretch")


def conflict_choice(
    conflict: EditConflict, key: str | None = None, mine: str = "Save mine over theirs (I have read both)",
    theirs: str = "Take theirs and drop mine",
) -> str | None:
    """The conflict screen with its two ways out; "mine" or "theirs" when one was pressed."""
    show_conflict(conflict)
    left, right = st.columns(2)
    keep = left.button(mine, icon=":material/edit_note:", key=key and f"{key}-mine")
    take = right.button(theirs, icon=":material/undo:", key=key and f"{key}-theirs")
    return "mine" if keep else "theirs" if take else None


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "\n\n".join(f"{k}: {v}" for k, v in value.items() if v)
    if isinstance(value, list):
        return "\n".join(_plain(v) if not hasattr(v, "__dataclass_fields__") else _record(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return _record(value)
    return "" if value is None else str(value)


def _record(value: Any) -> str:
    return ", ".join(f"{f.name}: {getattr(value, f.name)}" for f in fields(value) if getattr(value, f.name) not in (None, "", []))


def movement_text(movement: dict | None, metric_id: str | None) -> str:
    """'+4.1 points (95% CI +1.2 to +7.0): better' for a movements.Movement as a dict."""
    if not movement:
        return "—"
    if movement.get("status") != "ok":
        return movement.get("note") or "not enough data yet"
    row = metrics().get(metric_id or movement.get("metric_id"), {})
    share = row.get("unit") in ("rate", "proportion", "share") or row.get("aggregation") in ("rate", "proportion")
    scale, unit = (100, " points") if share else (1, "")
    difference = movement.get("difference")
    if difference is None:
        return movement.get("verdict") or "—"
    text = f"{difference * scale:+.1f}{unit}"
    if movement.get("low") is not None and movement.get("high") is not None:
        text += f" (95% CI {movement['low'] * scale:+.1f} to {movement['high'] * scale:+.1f})"
    text = f"{text}: {movement.get('verdict', '')}".rstrip(": ")
    if movement.get("did") is not None:
        text += (f"; {movement['did'] * scale:+.1f} beyond {movement['comparison']} (95% CI {movement['did_low'] * scale:+.1f}"
                 f" to {movement['did_high'] * scale:+.1f}): {movement.get('did_verdict', '')}")
    return text


@st.cache_data(show_spinner="Reading the data since the last meeting…", max_entries=64)
def _prefill(version: str, scope_text: str, workgroup_id: int, held_on: date, filters: tuple) -> dict:
    from ciboard.access import Scope

    prefill = followup.outcomes_prefill(warehouse(), db(), Scope.parse(scope_text), workgroup_id, held_on, dict(filters),
                                        wait=False)
    return followup.snapshot(prefill, dict(filters))


def prefill(workgroup_id: int, held_on: date, filters: dict) -> dict:
    """The outcomes-data part of a meeting's agenda, as `followup.snapshot` shapes it. Cached per
    warehouse version: a new ingest gives a new reading. Commitments change without an ingest,
    so the cache also keys on the latest change to commitments, PDSA cycles and meeting dates
    (not on notes: saving the agenda text does not move a number), and on the signals the server
    has stored: signals it was still preparing are left out until it has."""
    from ciboard import signal_store
    from ciboard.dashboard import version

    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items() if v))
    key = f"{version()}|{_store_stamp()}|{signal_store.stamp(warehouse())}"
    return _prefill(key, str(scope()), workgroup_id, held_on, frozen)


def frozen(meeting: ci_records.Meeting) -> dict | None:
    """A finalised meeting's numbers as this account may see them (followup.frozen_prefill), in
    the shape `prefill` gives; None where they are shown to district staff only."""
    return _frozen(meeting.id, meeting.revision, str(scope()), meeting)


@st.cache_data(show_spinner=False, max_entries=32)
def _frozen(meeting_id: int, revision: int, scope_text: str, _meeting: ci_records.Meeting) -> dict | None:
    from ciboard.access import Scope
    from ciboard.warehouse import VersionGone

    # Counted again, where a reader's scope needs it, from the version the minutes pinned (the
    # current one if it is gone, as the packet does).
    try:
        pinned = warehouse().at(_meeting.warehouse_version) if _meeting.warehouse_version else None
    except VersionGone:
        pinned = None
    try:
        prefill = followup.frozen_prefill(pinned or warehouse(), db(), Scope.parse(scope_text), _meeting)
    finally:
        if pinned is not None:
            pinned.close()
    return {"prefill": prefill.to_dict()} if prefill else None


def _store_stamp() -> str:
    with db().connect() as con:
        saved, count = con.execute(
            "select coalesce(max(saved_at), ''), count(*) from history where entity in ('commitment', 'pdsa')"
        ).fetchone()
        held = [day for (day,) in con.execute("select held_on from meetings order by meeting_id")]
    return f"{saved}/{count}/{','.join(held)}"


def packet_downloads(meeting: ci_records.Meeting, group: ci_records.Workgroup) -> None:
    """The meeting packet as one self-contained HTML file and as Markdown, in the viewer's scope.
    Built on request: the HTML carries its own charting library and weighs a few megabytes."""
    from ciboard.dashboard import audit

    key = f"packet-{meeting.id}-{meeting.revision}-{scope()}-{aliasing()}"
    left, middle, right = st.columns(3, vertical_alignment="center")
    if key not in st.session_state:
        if left.button("Prepare the meeting packet", icon=":material/folder_zip:"):
            from ciboard import packet, packet_files

            with st.spinner("Writing the packet…"):
                built = packet.build(warehouse(), db(), scope(), meeting.id, lettered=aliasing())  # the screen's letters
                st.session_state[key] = {
                    packet_files.filename(built, "html"): packet_files.to_html(built),
                    packet_files.filename(built, "md"): packet_files.to_markdown(built),
                }
            st.rerun()
        return
    left.caption("The packet holds what this account may see.")
    for column, (name, text) in zip((middle, right), st.session_state[key].items()):
        html = name.endswith(".html")
        column.download_button(
            f"Packet ({'HTML' if html else 'Markdown'})", text.encode(), file_name=name,
            mime="text/html" if html else "text/markdown", icon=":material/download:",
            on_click=audit, args=("export", {"file": name, "meeting": meeting.id}),
        )


def records_frame(items: list, columns: dict[str, Any]) -> pd.DataFrame:
    """A table of records: {column title: function of a record}, vendors disguised while aliasing."""
    frame = pd.DataFrame([{title: get(item) for title, get in columns.items()} for item in items], columns=list(columns))
    return disguised(frame)


def short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def analysis_label(analysis: ci_records.RootCause) -> str:
    """How an analysis reads in the root causes page's chooser, and so in its address (?analysis=…)."""
    return plain(f"#{analysis.id} · {short(analysis.problem)}")


def cycle_label(cycle: ci_records.PdsaCycle) -> str:
    """How a cycle reads in the PDSA cycles page's chooser, and so in its address (?cycle=…)."""
    return plain(f"#{cycle.id} · {short(cycle.title)}")


def meeting_label(meeting: ci_records.Meeting) -> str:
    """How a meeting reads in the meetings page's chooser and in links to it."""
    return f"{meeting.held_on:%b %-d, %Y} · {'minutes' if meeting.is_final else 'draft'}"


def keep_choice(key: str, options: list[int]) -> None:
    """Before the chooser keyed `key` (whose options are record ids) is drawn: the choice it opens
    on. Streamlit forgets a chooser's state, and its part of the address, once another page is
    opened, and opens a page it comes back to (the browser's Back) without its query. So the
    choice is the one the address names (a reload, a link), else the one last made here in
    this session, else the first. `chosen` afterwards keeps it in both."""
    if key in st.session_state and st.session_state[key] in options:
        return
    named = st.query_params.get(key, "")
    remembered = st.session_state.get(f"chosen-{key}")
    if named.isdigit() and int(named) in options:
        st.session_state[key] = int(named)
    elif remembered in options:
        st.session_state[key] = remembered
    else:
        st.session_state[key] = options[0]


def chosen(key: str, value: int) -> None:
    """A chooser's choice in the address, for a reload or a link, and in the session, for coming back."""
    st.session_state[f"chosen-{key}"] = value
    if st.query_params.get(key) != str(value):
        st.query_params[key] = str(value)


# --- a new record: made, then opened in the page's chooser ------------------------------------


# A text box shows, sends and saves exactly what is in it. Filled with the vendors' letters, what
# was saved would hold letters that mean nothing after this meeting; filled with the real text,
# the shared screen would show the names. So nothing is edited while vendors are letters.
EDITING_OFF = (
    "Editing is off while vendors are shown as letters: a text box shows exactly what it saves, so editing here "
    "would either put vendors' names on the shared screen or save letters that mean nothing after the meeting. "
    "To take notes, open this page on a screen that is not shared (a second window or another device) with "
    "*Vendors as Vendor A, B, C* off, and type there; what you save shows here, in letters, on the next click."
)


def offer_new(staff: bool, form: Callable[[], None]) -> None:
    """The form for a new record to staff who may edit, or why it is missing on a shared screen."""
    if staff:
        form()
    elif district_staff():
        st.caption(EDITING_OFF)


def save_new(store: Callable[[], Any]) -> Any | None:
    """The record `store` saved, or None after saying why it was refused."""
    try:
        return store()
    except (ValueError, ScopeError, meetings.MeetingFinal) as error:
        st.error(say(f"Not saved: {error}"), icon=":material/error:")
        return None


# --- commitments: added and edited where they are made -----------------------------------------


def commitment_form(key: str, made_on: date, submit: str, default: Commitment | None = None) -> Commitment | None:
    """Widgets for what a commitment says (party, owner, action, due date, the number it should
    move and for whom), keyed under `key`, filled from `default`; the commitment they describe
    once `submit` is pressed, else None."""
    default = default or Commitment(party="district", owner="", action="", made_on=made_on)
    left, middle, right = st.columns(3)
    party = left.selectbox("Party", PARTIES, index=PARTIES.index(default.party), format_func=str.capitalize,
                           key=f"{key}-party")
    owner = middle.text_input("Owner", default.owner, placeholder="The person who will see it done", key=f"{key}-owner")
    # Bounds no typed date can pass: a date outside a date box's bounds is shown as an error in
    # the browser while the server is sent the box's last good date, or none. Every date the box
    # can hold reaches the store, which refuses one that makes no sense for the commitment.
    due_on = right.date_input("Due", default.due_on, min_value=date.min, max_value=date.max, format="YYYY-MM-DD",
                              key=f"{key}-due")
    action = st.text_area("Action", default.action, placeholder="What will be done", key=f"{key}-action", height=80)
    st.markdown("The number it should move, and for whom (the vendor or school of a vendor's or school's commitment):")
    metric_id = metric_picker(f"{key}-metric", default.metric_id)
    piece = slice_picker(key, default.slice)
    if not st.button(submit, type="primary", icon=":material/add_task:", key=f"{key}-submit"):
        return None
    if due_on is None:
        st.error("Not saved: choose the due date (a date the box cannot read arrives as none).", icon=":material/error:")
        return None
    party_id = {"vendor": piece.vendor_id, "school": piece.school_id}.get(party)
    return replace(default, party=party, party_id=party_id, owner=owner.strip(), action=action.strip(), due_on=due_on,
                   metric_id=metric_id, slice=piece)


def new_commitment(key: str, meeting_id: int | None, made_on: date) -> None:
    """The form for a new commitment, made at a meeting (or at none) on `made_on`. Saved, it is
    confirmed and the form empties for the next one; refused, nothing is saved, it says why and
    what was typed stays."""
    notice, generation = f"{key}-saved", st.session_state.setdefault(f"{key}-generation", 0)
    if text := st.session_state.pop(notice, None):
        st.success(say(text), icon=":material/check_circle:")
    record = commitment_form(f"{key}-{generation}", made_on, "Add the commitment")
    if record is None:
        return
    saved = save_new(lambda: meetings.save_commitment(db(), scope(), replace(record, meeting_id=meeting_id), by=me()))
    if saved is None:
        return
    st.session_state[f"{key}-generation"] = generation + 1
    st.session_state[notice] = (f"Added commitment #{saved.id}: {saved.action} ({saved.owner}, due "
                                f"{saved.due_on:%b %-d, %Y}).")
    st.rerun()


def edit_commitment(c: Commitment) -> None:
    """A commitment's form, filled from it; a save names the revision the form opened at, so a
    save by someone else since shows both versions rather than being overwritten."""
    key = f"edit-commitment-{c.id}"
    opened = st.session_state.setdefault(f"{key}-revision", c.revision)
    generation = st.session_state.setdefault(f"{key}-generation", 0)
    if text := st.session_state.pop(f"{key}-saved", None):
        st.success(say(text), icon=":material/check_circle:")
    record = commitment_form(f"{key}-{generation}", c.made_on, "Save the commitment", default=c)
    if record is None:
        return
    try:
        saved = meetings.save_commitment(db(), scope(), replace(record, revision=opened), by=me())
    except EditConflict as conflict:
        show_conflict(conflict)
        st.session_state[f"{key}-revision"] = conflict.theirs.revision
        st.caption("Their version is above. Save again to keep yours over it.")
        return
    except (ValueError, ScopeError) as error:
        st.error(say(f"Not saved: {error}"), icon=":material/error:")
        return
    st.session_state[f"{key}-revision"] = saved.revision
    st.session_state[f"{key}-generation"] = generation + 1
    st.session_state[f"{key}-saved"] = f"Saved commitment #{saved.id} as revision {saved.revision}."
    st.rerun()


def open_new(chooser: str, record_id: int, notice: tuple[str, str], form: str | None = None) -> None:
    """After a new record is saved: an empty form for the next one (its widget keys start with
    `form`), the record chosen in the `chooser` of the next run and a notice there."""
    if form:
        for key in [k for k in st.session_state if str(k).startswith(form)]:
            del st.session_state[key]
    st.session_state[f"open-{chooser}"] = record_id
    st.session_state[notice[0]] = notice[1]
    st.rerun()


def choose_new(chooser: str) -> None:
    """A record made in the last run opens itself in the chooser keyed `chooser`."""
    if f"open-{chooser}" in st.session_state:
        st.session_state[chooser] = st.session_state.pop(f"open-{chooser}")


# --- editing a record: the form keeps what was typed, and a save names the revision it opened at ---


def edit_session(record: Any, kind: str, form: str, drawn: str) -> dict:
    """This editor's session on a record, kept across reruns under "edit-{kind}-{id}": the version
    the form opened at (its text fills the form), the revision a save names and a conflict to
    resolve. A form whose field `drawn` was not drawn in the last run opens afresh on the record
    as it is."""
    key = f"edit-{kind}-{record.id}"
    session = st.session_state.get(key)
    if session is None or f"{session['form']}-{drawn}" not in st.session_state:
        session = st.session_state[key] = _fresh_session(key, form, record, session)
    return session


def _fresh_session(key: str, form: str, record: Any, old: dict | None) -> dict:
    generation = old["generation"] + 1 if old else 0
    return {"key": key, "prefix": form, "opened": record, "revision": record.revision, "generation": generation,
            "form": f"{form}-{record.id}-{generation}", "conflict": None}


def reopen(session: dict, record: Any) -> None:
    """Drops this editor's unsaved text, draft included, and opens the form on `record`, as stored now."""
    discard_draft(db(), meetings.ENTITY_OF[type(record)], record.id, by=me())
    st.session_state[session["key"]] = _fresh_session(session["key"], session["prefix"], record, session)
    st.rerun()


def moved_on(record: Any, session: dict) -> str | None:
    """Who saved the record since the form opened, while no conflict is on screen."""
    if record.revision == session["revision"] or session["conflict"] is not None:
        return None
    return (f"{record.updated_by} saved revision {record.revision} after this form opened at revision "
            f"{session['revision']}. Saving will show you both.")


def offer_latest(session: dict, message: str, latest: Callable[[], Any]) -> None:
    st.info(say(message), icon=":material/sync_problem:")
    if st.button("Open the latest instead", key=f"{session['form']}-latest"):
        reopen(session, latest())


def save_edit(session: dict, store: Callable[[int], Any], revision: int, notice: str) -> None:
    """Saves through `store` naming `revision`. A conflict waits in the session for
    `save_or_resolve`; a refusal is said; a save opens the form afresh on what was saved."""
    try:
        saved = store(revision)
    except EditConflict as conflict:
        session["conflict"] = conflict
        return
    except ValueError as error:
        st.error(say(str(error)))
        return
    st.session_state[session["key"]] = _fresh_session(session["key"], session["prefix"], saved, session)
    st.session_state[notice] = f"Saved as revision {saved.revision}."
    st.rerun()


def save_or_resolve(session: dict, pressed: bool, store: Callable[[int], Any], latest: Callable[[], Any],
                    notice: str) -> None:
    """Saves when Save was pressed; on a conflict shows both versions, to save mine over theirs or
    take theirs."""
    if pressed:
        save_edit(session, store, session["revision"], notice)
    conflict = session["conflict"]
    if conflict is None:
        return
    choice = conflict_choice(conflict, key=session["form"])
    if choice == "mine":
        save_edit(session, store, conflict.theirs.revision, notice)
    elif choice == "theirs":
        reopen(session, latest())


def read_history(entity: str, record_id: int, key: str, columns: dict[str, Callable]) -> Any:
    """A record's saved versions as a table (who saved which when, then `columns`) and a chooser
    of one to read; returns the version chosen."""
    versions = meetings.history(db(), scope(), entity, record_id)
    st.dataframe(records_frame(versions, {
        "Revision": lambda v: v.revision, "Saved by": lambda v: v.saved_by,
        "Saved at": lambda v: f"{v.saved_at:%Y-%m-%d %H:%M}", **columns,
    }), hide_index=True)
    revision = st.selectbox("Read revision", [v.revision for v in versions], index=len(versions) - 1, key=key)
    return next(v.record for v in versions if v.revision == revision)


# --- drafts: what someone types is kept every few seconds, and offered back on reopening ------

DRAFT_EVERY_SECONDS = 3
# Streamlit sends a text box's value only when it loses focus or on Ctrl+Enter, and a box in a
# form only when the form is submitted: typed text not yet sent is lost on a reload. So this
# script reads the record's text boxes in the page every few seconds and sends what changed.
# It is mounted in a fragment, so what it sends reruns that fragment only, never the page
# someone is typing in.
_WATCH_JS = """
export default function ({ data, setTriggerValue }) {
  const read = () => {
    const found = {};
    for (const [field, box] of Object.entries(data.boxes)) {
      const area = document.querySelector(`.${box} textarea`);
      if (area) found[field] = area.value;
    }
    return found;
  };
  let sent = JSON.stringify(read());
  const timer = setInterval(() => {
    const now = read();
    if (JSON.stringify(now) !== sent) {
      sent = JSON.stringify(now);
      setTriggerValue("typed", now);
    }
  }, data.every * 1000);
  return () => clearInterval(timer);
}
"""
_watcher = st.components.v2.component("draft_watcher", js=_WATCH_JS)


@dataclass(frozen=True)
class DraftForm:
    """A record's form as drafts see it: which text box holds each field, what the fields held
    when the form opened, and the revision it opened at."""

    kind: str  # the record's entity: "meeting", "pdsa", "root_cause", "workgroup"
    record_id: int
    revision: int
    boxes: dict[str, str]  # field: the key of its text box
    opened: dict[str, str]  # field: its text when the form opened
    titles: dict[str, str]  # field: what the form calls it


def drafts(form: DraftForm, restore: Callable[[Draft], None]) -> Callable[[], None] | None:
    """Offers back this person's unsaved draft of the record when its form opens afresh ("restore"
    puts its text in the boxes and calls `restore` to take its revision; "discard" drops it),
    and from then on keeps what they type in the boxes as their draft every few seconds. Call it
    outside any st.form, before the boxes. Returns the on_change for boxes outside a form, or
    None while a draft waits for an answer (nothing typed then replaces it)."""
    waiting = f"draft-offered-{form.kind}-{form.record_id}"
    found = draft(db(), form.kind, form.record_id, by=me())
    if found is not None and all(found.texts.get(f, form.opened[f]) == form.opened[f] for f in form.boxes):
        discard_draft(db(), form.kind, form.record_id, by=me())
        found = None
    fresh = not any(box in st.session_state for box in form.boxes.values())
    if found is None:
        st.session_state.pop(waiting, None)
    elif fresh or waiting in st.session_state:
        st.session_state[waiting] = True
        _offer(form, found, restore, waiting)
        return None
    _watch(form)
    return partial(_keep, form, None)


def _offer(form: DraftForm, found: Draft, restore: Callable[[Draft], None], waiting: str) -> None:
    with st.container(border=True):
        text = f"You have an unsaved draft from {found.saved_at:%b %-d, %H:%M}."
        if found.revision != form.revision:
            text += (f" It was typed over revision {found.revision}, and revision {form.revision} has been saved since: "
                     "restore it and save, and you will see both.")
        st.info(text, icon=":material/edit_note:")
        with st.expander("Read the draft"):
            _show(form.titles, found)
        left, right = st.columns(2)
        left.button("Restore the draft", icon=":material/restore:", key=f"{waiting}-restore",
                    on_click=_restore, args=(form, found, restore, waiting))
        right.button("Discard the draft", icon=":material/delete:", key=f"{waiting}-discard",
                     on_click=_discard, args=(form, waiting))


def _restore(form: DraftForm, found: Draft, restore: Callable[[Draft], None], waiting: str) -> None:
    for field, box in form.boxes.items():
        if field in found.texts:
            st.session_state[box] = found.texts[field]
    restore(found)
    st.session_state.pop(waiting, None)


def _discard(form: DraftForm, waiting: str) -> None:
    discard_draft(db(), form.kind, form.record_id, by=me())
    st.session_state.pop(waiting, None)


def restore_session(session: dict, kind: str) -> Callable[[Draft], None]:
    """For an edit session (see edit_session): a restored draft's form opens at the version the
    draft was typed over, so a save names that revision and a save by someone else since is
    shown as a conflict, not overwritten."""

    def restore(found: Draft) -> None:
        versions = {v.revision: v.record for v in meetings.history(db(), scope(), kind, found.entity_id)}
        if found.revision in versions:
            session["opened"], session["revision"] = versions[found.revision], found.revision
        session["conflict"] = None
        session["restored"] = True

    return restore


def session_drafts(session: dict, kind: str, texts: dict[str, tuple[str, Callable[[Any], str]]]) -> bool:
    """`drafts` for an edit session's form (see edit_session), whose text boxes are keyed
    "{form}-{field}": `texts` gives each field's title and its text in a record. Call it outside
    the form's expander; True while a draft waits for an answer or is in the form, to keep the
    expander open."""
    opened = session["opened"]
    form = DraftForm(kind, opened.id, session["revision"], {field: f"{session['form']}-{field}" for field in texts},
                     {field: get(opened) for field, (_, get) in texts.items()},
                     {field: title for field, (title, _) in texts.items()})
    return drafts(form, restore_session(session, kind)) is None or session.get("restored", False)


def leftover_draft(kind: str, record_id: int, why: str, titles: dict[str, str]) -> None:
    """This person's draft of a record that can no longer take it (finalised minutes): shown to
    copy from, and dropped on request."""
    found = draft(db(), kind, record_id, by=me())
    if found is None:
        return
    with st.container(border=True):
        st.warning(f"Your unsaved draft from {found.saved_at:%b %-d, %H:%M} is not in {why}.", icon=":material/edit_note:")
        _show(titles, found)
        st.button("Discard the draft", icon=":material/delete:", key=f"draft-leftover-{kind}-{record_id}",
                  on_click=discard_draft, args=(db(), kind, record_id), kwargs={"by": me()})


def _show(titles: dict[str, str], found: Draft) -> None:
    for field, typed in found.texts.items():
        st.caption(titles.get(field, field))
        st.text(plain(typed) or "—")


@st.fragment
def _watch(form: DraftForm) -> None:
    key = f"draft-watch-{form.kind}-{form.record_id}"
    boxes = {field: "st-key-" + "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in box.strip())
             for field, box in form.boxes.items()}  # the class Streamlit gives a keyed widget's element
    _watcher(key=key, data={"boxes": boxes, "every": DRAFT_EVERY_SECONDS}, on_typed_change=partial(_keep, form, key))


def _keep(form: DraftForm, watcher: str | None) -> None:
    """Keeps the boxes' text as this person's draft: what the watcher sent, else what the boxes
    last sent. Text back as the form opened is no draft. The watcher's own state is gone when
    its form went in the same run (minutes finalised as the watcher sent its last text)."""
    typed = ((st.session_state.get(watcher) or {}).get("typed") or {}) if watcher else {}
    texts = _texts(form, typed)
    try:
        if texts == form.opened:
            discard_draft(db(), form.kind, form.record_id, by=me())
        else:
            keep_draft(db(), scope(), form.kind, form.record_id, texts, by=me(), revision=form.revision)
    except (meetings.MeetingFinal, meetings.NotFound, ScopeError):
        pass  # finalised or gone since: the page says so on its next run


def _texts(form: DraftForm, typed: dict[str, str]) -> dict[str, str]:
    return {field: str(typed[field] if field in typed else st.session_state.get(box, form.opened[field]) or "")
            for field, box in form.boxes.items()}


def today() -> date:
    return date.today()


__all__ = ["meetings"]
