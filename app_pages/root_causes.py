"""Root causes: why a trend happens, asked again of every answer until the group reaches causes
it can change. A root cause becomes a "How might we" question; the ideas it draws are sorted
into themes and one is chosen to try, as a PDSA cycle or as a commitment."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from ciboard import ci_records, ci_ui, meetings
from ciboard.access import ScopeError
from ciboard.ci_records import (
    COMMITMENT_PROMPT, HMW_STEPS, HMW_TEMPLATE, MIN_WHYS, PARTIES, PDSA_STEPS, ROOT_CAUSE_STEPS, STATUS_LABELS,
    WHY_PROMPT, Cause, Idea, RootCause,
)
from ciboard.dashboard import disguised, scope
from ciboard.meetings import EditConflict
from ciboard.session import aliasing

db = ci_ui.db()
# On a shared screen with vendors as letters the records read disguised, and the forms (which
# hold the text as typed) are left out.
staff = ci_ui.district_staff() and not aliasing()
NOTICE = "root-causes-notice"
CAUSE_COLUMNS = {
    "text": st.column_config.TextColumn("Cause", width="large", required=True),
    "controllable": st.column_config.CheckboxColumn("Within our reach", default=False),
    "priority": st.column_config.NumberColumn("Priority", min_value=1, step=1, help="1 is the first to tackle"),
}
IDEA_COLUMNS = {
    "text": st.column_config.TextColumn("Idea", width="large", required=True),
    "theme": st.column_config.TextColumn("Theme"),
}
BECOMES = {"pdsa": "A PDSA cycle, to test it", "commitment": "A commitment, to do it"}
# The form's long text, kept as a draft while typed: {field: (its title, its text in an analysis)}.
DRAFTED = {"problem": ("The trend to explain", lambda r: r.problem), "hmw": ("How might we", lambda r: "\n".join(r.hmw))}


def numbered(lines) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


def asked(whys: list[str]) -> list[str]:
    return [why.strip() for why in whys if why.strip()]


def present(value) -> bool:
    """Whether a cell of a data editor holds something (a new row's empty cells are None or NA)."""
    return value is not None and not pd.isna(value)


st.title("Root causes")
st.caption(
    "Dig beneath a trend before deciding what to do about it: keep asking why, sort what the group can change "
    "from what it cannot, then turn a root cause into a question and choose one idea to try."
)
with st.expander("How an analysis goes", icon=":material/help:"):
    st.markdown(numbered(ROOT_CAUSE_STEPS))
    st.markdown("**Then, from a root cause to something to try**\n\n" + numbered(HMW_STEPS))
if notice := st.session_state.pop(NOTICE, None):
    st.success(ci_ui.say(notice), icon=":material/check_circle:")

analyses = meetings.root_causes(db, scope())
cycles = {c.id: c for c in meetings.pdsa_cycles(db, scope())}
promises = {c.id: c for c in meetings.commitments(db, scope())}


def chosen_idea(analysis: RootCause) -> Idea | None:
    return analysis.ideas[analysis.chosen_idea] if analysis.chosen_idea is not None else None


def became(analysis: RootCause) -> str:
    if analysis.pdsa_id in cycles:
        return f"PDSA cycle: {cycles[analysis.pdsa_id].title} ({cycles[analysis.pdsa_id].stage})"
    if analysis.commitment_id in promises:
        promise = promises[analysis.commitment_id]
        return f"Commitment of {ci_ui.party_text(promise.party, promise.party_id)} ({STATUS_LABELS[promise.status].lower()})"
    return ""


if analyses:
    st.dataframe(
        disguised(ci_ui.records_frame(analyses, {
            "Metric": lambda r: ci_ui.metric_label(r.metric_id),
            "Students": lambda r: ci_ui.slice_text(r.slice),
            "Problem": lambda r: r.problem,
            "Whys": lambda r: len(asked(r.whys)),
            "Complete": lambda r: r.complete,
            "Chosen idea": lambda r: chosen_idea(r).text if chosen_idea(r) else "",
            "Became": became,
        })),
        hide_index=True,
        column_config={"Complete": st.column_config.CheckboxColumn(help=f"At least {MIN_WHYS} whys")},
    )


def new_analysis() -> None:
    with st.expander("Start a new analysis", icon=":material/add:"):
        st.caption(ROOT_CAUSE_STEPS[0])
        metric_id = ci_ui.metric_picker("new-analysis-metric")
        piece = ci_ui.slice_picker("new-analysis")
        problem = st.text_area("What the data shows", key="new-analysis-problem")
        groups = {g.id: g.name for g in meetings.workgroups(db, scope())}
        held = {m.id: f"{groups[m.workgroup_id]} · {m.held_on:%b %-d, %Y}" for m in reversed(meetings.meetings(db, scope()))}
        meeting_id = st.selectbox("Raised at", [None, *held], format_func=ci_ui.distinct([None, *held], lambda m: held.get(m, "No meeting")),
                                  key="new-analysis-meeting")
        if st.button("Start the analysis", type="primary", icon=":material/account_tree:", key="new-analysis-start"):
            record = RootCause(metric_id=metric_id, problem=problem.strip(), slice=piece, meeting_id=meeting_id)
            made = ci_ui.save_new(lambda: meetings.save_root_cause(db, scope(), record, by=ci_ui.me()))
            if made is not None:
                ci_ui.open_new("analysis", made.id, (NOTICE, f"Analysis started. Now ask why, at least {MIN_WHYS} times."),
                               form="new-analysis-")


ci_ui.offer_new(staff, new_analysis)
if not analyses:
    st.info("No root-cause analysis yet" + ("." if ci_ui.district_staff() else " about your students."))
    st.stop()

ci_ui.choose_new("analysis")
by_id = {r.id: r for r in analyses}
analysis = by_id[st.selectbox("Analysis", list(by_id), format_func=ci_ui.distinct(by_id, lambda i: ci_ui.analysis_label(by_id[i])), key="analysis",
                              bind="query-params")]


# --- reading one analysis --------------------------------------------------------------


def show_whys(whys: list[str]) -> None:
    st.markdown(f"**{WHY_PROMPT}**")
    if asked(whys):
        st.markdown(ci_ui.say(numbered(asked(whys))))
    if len(asked(whys)) < MIN_WHYS:
        st.warning(f"{len(asked(whys))} whys so far: keep going to at least {MIN_WHYS}.", icon=":material/help:")


def show_causes(analysis: RootCause) -> None:
    reach, beyond = st.columns(2)
    ranked = [f"- **{c.priority}** · {c.text}" if c.priority else f"- {c.text} (not ranked yet)" for c in analysis.within_reach]
    reach.markdown(ci_ui.say("**Within our reach**, first to tackle first\n\n" + ("\n".join(ranked) or "_None marked yet._")))
    set_aside = [f"- {c.text}" for c in analysis.causes if not c.controllable]
    beyond.markdown(ci_ui.say("**Beyond our reach**, set aside\n\n" + ("\n".join(set_aside) or "_None._")))


def show_ideas(analysis: RootCause) -> None:
    st.markdown(ci_ui.say("**How might we …**\n\n" + ("\n".join(f"- *{q}*" for q in analysis.hmw) or "_No question yet._")))
    chosen = chosen_idea(analysis)
    st.markdown("**Ideas**, in themes" if analysis.ideas else "**Ideas**: none yet.")
    for theme, ideas in analysis.themes.items():
        st.markdown(ci_ui.say(f"**{theme}**\n\n" + "\n".join(
            f"- {idea.text}" + (" · :green[**chosen**]" if idea == chosen else "") for idea in ideas
        )))


def show_choice(analysis: RootCause) -> None:
    chosen = chosen_idea(analysis)
    if chosen is None:
        return
    if analysis.pdsa_id in cycles:
        cycle = cycles[analysis.pdsa_id]
        st.success(ci_ui.say(f"Chosen: {chosen.text}. Tested as a PDSA cycle, now at its {cycle.stage} step."),
                   icon=":material/autorenew:")
        st.page_link("app_pages/pdsa.py", label=ci_ui.say(f"PDSA cycle: {cycle.title}"), icon=":material/autorenew:",
                     query_params={"cycle": ci_ui.cycle_label(cycle)})
    elif analysis.commitment_id in promises:
        promise = promises[analysis.commitment_id]
        due = f", due {promise.due_on:%b %-d, %Y}" if promise.due_on else ""
        st.success(ci_ui.say(
            f"Chosen: {chosen.text}. A commitment of {ci_ui.party_text(promise.party, promise.party_id)}, owned by "
            f"{promise.owner}{due}: {STATUS_LABELS[promise.status].lower()}."), icon=":material/task_alt:",
        )
        st.page_link("app_pages/commitments.py", label="Commitments", icon=":material/task_alt:")


def show_analysis(analysis: RootCause) -> None:
    st.subheader(ci_ui.say(f"{ci_ui.metric_label(analysis.metric_id)} · {ci_ui.slice_text(analysis.slice)}"))
    st.markdown(ci_ui.say(analysis.problem))
    st.caption(ci_ui.say(f"Revision {analysis.revision}, saved by {analysis.updated_by} on {analysis.updated_at:%b %-d, %Y %H:%M}"))
    show_whys(analysis.whys)
    show_causes(analysis)
    show_ideas(analysis)
    show_choice(analysis)


show_analysis(analysis)


# --- editing: the form keeps what was typed, and a save names the revision it started from ---


def why_count(session: dict) -> int:
    """How many whys the form asks: those of the version it opened at, at least MIN_WHYS, and
    one more for each "Add another why"."""
    return max(MIN_WHYS, len(session["opened"].whys)) + session.get("more_whys", 0)


def ask_another_why(session: dict) -> None:
    session["more_whys"] = session.get("more_whys", 0) + 1


def causes_frame(causes: list[Cause]) -> pd.DataFrame:
    return pd.DataFrame({
        "text": pd.Series([c.text for c in causes], dtype="object"),
        "controllable": pd.Series([c.controllable for c in causes], dtype="bool"),
        "priority": pd.Series([c.priority for c in causes], dtype="Int64"),
    })


def ideas_frame(ideas: list[Idea]) -> pd.DataFrame:
    return pd.DataFrame({"text": pd.Series([i.text for i in ideas], dtype="object"),
                         "theme": pd.Series([i.theme for i in ideas], dtype="object")})


def causes_from(frame: pd.DataFrame) -> list[Cause]:
    return [
        Cause(str(row["text"]).strip(), bool(row["controllable"]) if present(row["controllable"]) else False,
              int(row["priority"]) if present(row["priority"]) else None)
        for row in frame.to_dict("records") if present(row["text"]) and str(row["text"]).strip()
    ]


def ideas_from(frame: pd.DataFrame) -> list[Idea]:
    return [
        Idea(str(row["text"]).strip(), str(row["theme"]).strip() if present(row["theme"]) else "")
        for row in frame.to_dict("records") if present(row["text"]) and str(row["text"]).strip()
    ]


def edit_form(record: RootCause, session: dict) -> tuple[RootCause, bool]:
    """The form, filled from the version it opened at; returns the analysis as typed and
    whether Save was pressed."""
    opened, form = session["opened"], session["form"]
    with st.form(form):
        problem = st.text_area("The trend to explain", opened.problem, key=f"{form}-problem")
        st.markdown(f"**Whys.** {ROOT_CAUSE_STEPS[1]}")
        whys = [
            st.text_input(f"Why {i + 1}", opened.whys[i] if i < len(opened.whys) else "", placeholder=WHY_PROMPT,
                          key=f"{form}-why-{i}")
            for i in range(why_count(session))
        ]
        st.form_submit_button("Add another why", icon=":material/add:", on_click=ask_another_why, args=(session,))
        st.markdown(f"**Causes.** {ROOT_CAUSE_STEPS[2]} {ROOT_CAUSE_STEPS[3]}")
        causes = st.data_editor(causes_frame(opened.causes), key=f"{form}-causes", num_rows="dynamic", hide_index=True,
                                column_config=CAUSE_COLUMNS, width="stretch")
        st.markdown(f"**How might we.** {HMW_STEPS[0]}")
        hmw = st.text_area("Questions, one a line", "\n".join(opened.hmw), placeholder=HMW_TEMPLATE, key=f"{form}-hmw")
        st.markdown(f"**Ideas.** {HMW_STEPS[1]} {HMW_STEPS[2]}")
        ideas = st.data_editor(ideas_frame(opened.ideas), key=f"{form}-ideas", num_rows="dynamic", hide_index=True,
                               column_config=IDEA_COLUMNS, width="stretch")
        pressed = st.form_submit_button("Save the analysis", type="primary", icon=":material/save:")
    typed = replace(
        record, problem=problem.strip(), whys=asked(whys), causes=causes_from(causes),
        hmw=[line.strip() for line in hmw.splitlines() if line.strip()], ideas=ideas_from(ideas),
    )
    return typed, pressed


def keeping_the_choice(typed: RootCause, stored: RootCause) -> RootCause:
    """The chosen idea is found again by its text, wherever the edit moved it."""
    if stored.chosen_idea is None:
        return typed
    texts = [idea.text for idea in typed.ideas]
    chosen = stored.ideas[stored.chosen_idea].text
    if chosen not in texts:
        raise ValueError(f"“{chosen}” is the idea being tried: keep it among the ideas.")
    return replace(typed, chosen_idea=texts.index(chosen))


def latest() -> RootCause:
    return meetings.root_cause(db, scope(), analysis.id)


def edit(record: RootCause, session: dict) -> None:
    offered = ci_ui.session_drafts(session, "root_cause", DRAFTED)
    with st.expander("Edit the analysis", icon=":material/edit:", expanded=session["conflict"] is not None or offered):
        if moved := ci_ui.moved_on(record, session):
            ci_ui.offer_latest(session, moved, latest)
        typed, pressed = edit_form(record, session)
        ci_ui.save_or_resolve(session, pressed, latest=latest, notice=NOTICE, store=lambda revision: meetings.save_root_cause(
            db, scope(), replace(keeping_the_choice(typed, analysis), revision=revision), by=ci_ui.me()))


# --- choosing an idea: it becomes a PDSA cycle or a commitment ---------------------------


def party_id_picker(where, party: str, piece: ci_records.Slice, key: str) -> str | None:
    if party == "district":
        return None
    dimension, default = ("vendor_id", piece.vendor_id) if party == "vendor" else ("school_id", piece.school_id)
    names = ci_ui.labels().get(dimension, {})
    options = list(names)
    return where.selectbox(party.capitalize(), options, index=options.index(default) if default in options else 0,
                           format_func=names.get, key=f"{key}-{party}")


def as_cycle(record: RootCause, idea: int, key: str) -> ci_records.PdsaCycle:
    st.caption(PDSA_STEPS["plan"])
    left, right = st.columns(2)
    start_on = left.date_input("The change starts on", value=ci_ui.today(), format="YYYY-MM-DD", key=f"{key}-start")
    ends_on = right.date_input("Study it on", value=None, format="YYYY-MM-DD", key=f"{key}-end")
    prediction = st.text_input("Prediction", key=f"{key}-prediction")
    return replace(ci_records.draft_pdsa(record, idea, start_on), prediction=prediction.strip(), ends_on=ends_on)


def as_commitment(record: RootCause, idea: int, key: str) -> ci_records.Commitment:
    st.caption(COMMITMENT_PROMPT)
    left, middle, right, far = st.columns(4)
    party = left.selectbox("Party", PARTIES, format_func=str.capitalize, key=f"{key}-party")
    party_id = party_id_picker(middle, party, record.slice, key)
    owner = right.text_input("Owner", key=f"{key}-owner")
    due_on = far.date_input("Due", value=None, format="YYYY-MM-DD", key=f"{key}-due")
    return ci_records.draft_commitment(record, idea, party=party, party_id=party_id, owner=owner.strip(),
                                       made_on=ci_ui.today(), due_on=due_on)


def choose(record: RootCause, session: dict) -> None:
    if not record.ideas:
        return
    with st.expander("Choose an idea to try", icon=":material/check_circle:", expanded=record.chosen_idea is None):
        st.caption(HMW_STEPS[3])
        key = f"choose-{record.id}"
        idea = st.selectbox("Idea", range(len(record.ideas)), format_func=lambda i: f"{i + 1}. {record.ideas[i].text}",
                            key=f"{key}-idea")
        becomes = st.radio("It becomes", list(BECOMES), format_func=BECOMES.get, horizontal=True, key=f"{key}-becomes")
        draft = as_cycle(record, idea, key) if becomes == "pdsa" else as_commitment(record, idea, key)
        if not st.button("Choose this idea", type="primary", icon=":material/check:", key=f"{key}-go"):
            return
        try:
            chosen, _ = meetings.choose_idea(db, scope(), record.id, idea, draft, by=ci_ui.me(),
                                             revision=session["revision"])
        except EditConflict as conflict:
            st.error(ci_ui.say(f"Not chosen: {conflict.theirs.updated_by} saved revision {conflict.theirs.revision} after you opened "
                     f"revision {session['revision']}. Open the latest in the editor above, then choose again."),
                     icon=":material/sync_problem:")
            return
        except (ValueError, ScopeError) as error:
            st.error(ci_ui.say(str(error)))
            return
        session["revision"] = chosen.revision  # the choice changes nothing the edit form holds
        st.session_state[NOTICE] = f"Chosen: {record.ideas[idea].text}."
        st.rerun()


if staff:
    editing = ci_ui.edit_session(analysis, "root-cause", "rc", drawn="problem")
    edit(analysis, editing)
    choose(analysis, editing)


with st.expander("History", icon=":material/history:"):
    shown = ci_ui.read_history("root_cause", analysis.id, f"rc-history-{analysis.id}-{analysis.revision}",
                               {"Whys": lambda v: len(asked(v.record.whys))})
    st.markdown(ci_ui.say(shown.problem))
    st.markdown(ci_ui.say(numbered(asked(shown.whys))) or "_No whys yet._")
