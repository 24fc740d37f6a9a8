"""PDSA cycles: a change tried on purpose. Plan it with a prediction and the number that will
show it, note what happens as it runs, set the prediction beside what the data did, then adopt,
adapt or abandon the change."""

from dataclasses import replace
from datetime import date, timedelta

import streamlit as st

from ciboard import charts, ci_ui, meetings, movements, signals
from ciboard.access import Scope
from ciboard.ci_records import ACT_LABELS, ACTS, PDSA_STEPS, PdsaCycle, Slice
from ciboard.dashboard import disguised, metrics, min_cell, query, scope, version, warehouse
from ciboard.meetings import EditConflict
from ciboard.session import aliasing

db = ci_ui.db()
# On a shared screen with vendors as letters the records read disguised, and the forms (which
# hold the text as typed) are left out.
staff = ci_ui.district_staff() and not aliasing()
filters = st.session_state["filters"]
NOTICE = "pdsa-notice"
STAGES = {"plan": "Plan", "do": "Do", "study": "Study", "act": "Act"}
# What the edit form changes; a conflict over anything else (a new observation) is no conflict.
FORM_FIELDS = ("title", "change", "prediction", "start_on", "ends_on", "study", "act", "act_note")
# The form's long text, kept as a draft while typed: {field: (its title, its text in a cycle)}.
DRAFTED = {"change": ("The change", lambda c: c.change), "prediction": ("The prediction", lambda c: c.prediction),
           "study": ("Study", lambda c: c.study), "act-note": ("Why, and what next", lambda c: c.act_note)}
# The chart starts at the school year the filters show, or this far before the change if earlier.
CHART_LEAD = timedelta(weeks=16)


def when(day: date | None) -> str:
    return f"{day:%b %-d, %Y}" if day else "—"


def span(period: movements.Period) -> str:
    return f"{when(date.fromisoformat(period.start))} – {when(date.fromisoformat(period.end))}"


@st.cache_data(show_spinner="Comparing before and after the change…", max_entries=64)
def _study(version: str, scope_text: str, metric_id: str, piece: Slice, start_on: date, ends_on: date | None):
    cycle = PdsaCycle(title="study", metric_id=metric_id, start_on=start_on, slice=piece, ends_on=ends_on)
    return movements.pdsa_study(warehouse(), Scope.parse(scope_text), cycle)


def study_of(cycle: PdsaCycle) -> movements.Movement:
    """The cycle's measure before and after it started, cached per warehouse version."""
    return _study(version(), str(scope()), cycle.metric_id, cycle.slice, cycle.start_on, cycle.ends_on)


st.title("PDSA cycles")
st.caption(
    "Test one change at a time: say beforehand what it should do to which number, note what happens, and let the "
    "data answer before deciding whether to keep it. Each cycle's start marks the trend charts of its students."
)
with st.expander("The four steps", icon=":material/help:"):
    st.markdown("\n".join(f"- **{STAGES[step]}.** {prompt}" for step, prompt in PDSA_STEPS.items()))
if notice := st.session_state.pop(NOTICE, None):
    st.success(ci_ui.say(notice), icon=":material/check_circle:")

cycles = meetings.pdsa_cycles(db, scope())
if cycles:
    st.dataframe(disguised(ci_ui.records_frame(cycles, {
        "Cycle": lambda c: c.title,
        "Metric": lambda c: ci_ui.metric_label(c.metric_id),
        "Students": lambda c: ci_ui.slice_text(c.slice),
        "Starts": lambda c: c.start_on,
        "Study on": lambda c: c.ends_on,
        "Step": lambda c: STAGES[c.stage],
        "Decision": lambda c: ACT_LABELS.get(c.act, ""),
    })), hide_index=True)


def new_cycle() -> None:
    with st.expander("Plan a new cycle", icon=":material/add:"):
        st.caption(PDSA_STEPS["plan"])
        title = st.text_input("Name", key="new-cycle-title", placeholder="A few words the group will recognise")
        change = st.text_area("The change", key="new-cycle-change")
        prediction = st.text_area("The prediction", key="new-cycle-prediction")
        metric_id = ci_ui.metric_picker("new-cycle-metric")
        piece = ci_ui.slice_picker("new-cycle")
        left, right = st.columns(2)
        start_on = left.date_input("Starts on", value=ci_ui.today(), format="YYYY-MM-DD", key="new-cycle-start")
        ends_on = right.date_input("Study on", value=None, format="YYYY-MM-DD", key="new-cycle-end")
        if not st.button("Start planning", type="primary", icon=":material/autorenew:", key="new-cycle-save"):
            return
        record = PdsaCycle(title=title.strip(), metric_id=metric_id, start_on=start_on, slice=piece,
                           change=change.strip(), prediction=prediction.strip(), ends_on=ends_on)
        made = ci_ui.save_new(lambda: meetings.save_pdsa(db, scope(), record, by=ci_ui.me()))
        if made is not None:
            ci_ui.open_new("cycle", made.id, (NOTICE, f"Planned: {made.title}."), form="new-cycle-")


ci_ui.offer_new(staff, new_cycle)
if not cycles:
    st.info("No PDSA cycle yet" + ("." if ci_ui.district_staff() else " about your students."))
    st.stop()

ci_ui.choose_new("cycle")
by_id = {c.id: c for c in cycles}
cycle = by_id[st.selectbox("Cycle", list(by_id), format_func=ci_ui.distinct(by_id, lambda i: ci_ui.cycle_label(by_id[i])), key="cycle",
                           bind="query-params")]
metric = metrics()[cycle.metric_id]


# --- the four steps ----------------------------------------------------------------------


def show_plan(cycle: PdsaCycle) -> None:
    st.subheader(ci_ui.say(f"Plan · {cycle.title}"))
    st.markdown(ci_ui.say(
        f"**The change.** {cycle.change or '—'}\n\n**The prediction.** {cycle.prediction or '—'}\n\n"
        f"**The measure.** {metric['label']} for {ci_ui.slice_text(cycle.slice)}, from {when(cycle.start_on)}"
        + (f", studied on {when(cycle.ends_on)}" if cycle.ends_on else "")
    ))
    origin = meetings.root_cause_of(db, scope(), pdsa_id=cycle.id)
    if origin is not None:
        st.page_link("app_pages/root_causes.py", label=ci_ui.say(f"Why we are trying it: {ci_ui.short(origin.problem)}"),
                     icon=":material/account_tree:", query_params={"analysis": ci_ui.analysis_label(origin)})


def observe(cycle: PdsaCycle) -> None:
    """A dated note on the Do step. It is appended to the newest revision, so it never conflicts."""
    with st.form(f"observe-{cycle.id}", clear_on_submit=True):
        on = st.date_input("On", value=ci_ui.today(), format="YYYY-MM-DD", key=f"observe-{cycle.id}-on")
        text = st.text_area("What happened", key=f"observe-{cycle.id}-text")
        if not st.form_submit_button("Add the observation", icon=":material/add_comment:"):
            return
    if not text.strip():
        st.error("Write what happened first.")
        return
    meetings.add_observation(db, scope(), cycle.id, text, by=ci_ui.me(), on=on)
    st.session_state[NOTICE] = "Observation added."
    st.rerun()


def show_do(cycle: PdsaCycle) -> None:
    st.subheader("Do")
    st.caption(PDSA_STEPS["do"])
    if cycle.observations:
        st.dataframe(disguised(ci_ui.records_frame(sorted(cycle.observations, key=lambda o: o.on), {
            "Date": lambda o: o.on, "Observation": lambda o: o.text, "By": lambda o: o.by,
        })), hide_index=True)
    else:
        st.caption("Nothing noted yet.")
    if staff:
        observe(cycle)


def show_numbers(movement: movements.Movement) -> None:
    unit = "Weeks" if metric["frequency"] == "weekly" else "Windows"
    st.markdown(f"**What the data did.** {movement.sentence(metric)}")
    before, after, change = st.columns(3)
    before.metric(f"Before · {span(movement.before)}", charts.format_value(movement.before.value, metric))
    after.metric(f"After · {span(movement.after)}", charts.format_value(movement.after.value, metric))
    change.metric("Change", charts.format_change(movement.difference, metric),
                  help=f"95% interval {charts.format_change(movement.low, metric)} to {charts.format_change(movement.high, metric)}")
    st.dataframe(ci_ui.records_frame([("Before", movement.before), ("After", movement.after)], {
        "Period": lambda p: p[0], "From": lambda p: p[1].start, "To": lambda p: p[1].end, unit: lambda p: p[1].points,
        "Value": lambda p: p[1].value, "Students": lambda p: p[1].students,
    }), hide_index=True,
        column_config={"Value": st.column_config.NumberColumn(format="percent" if charts.is_share(metric) else "%.2f")})
    # A rise every group saw is not the change's doing: the same periods for a comparison group.
    st.markdown(f"**Beyond its comparison (difference in differences).** {movement.did_sentence(metric)}")
    if movement.did is not None:
        st.caption(
            f"{movement.comparison.capitalize()}: {charts.format_value(movement.comparison_before, metric)} → "
            f"{charts.format_value(movement.comparison_after, metric)} over the same periods. "
            + ("A vendor's cycle is compared with all other vendors' students together, where two or more other "
               "vendors have enough students in both periods: never with one other vendor. "
               if movement.comparison == movements.PEERS else
               "Students without tutoring are the comparison where the district's records hold some at the cycle's "
               "schools with data for this metric; otherwise all other vendors' students. ")
            + "Tutored students were chosen for a reason, so the comparison allows for a rise everyone saw, not for "
            "every way the two groups differ."
        )


def spc_chart(cycle: PdsaCycle, movement: movements.Movement) -> None:
    """The weekly control chart of the cycle's measure, its start marked as on every trend chart."""
    if metric["frequency"] != "weekly":
        return
    start, end = min(filters.start, cycle.start_on - CHART_LEAD), max(filters.end, cycle.ends_on or cycle.start_on)
    series = query("series", metric=cycle.metric_id, grain="week", start=start.isoformat(), end=end.isoformat(),
                   **cycle.slice.filters())
    if series["value"].notna().sum() < signals.MIN_POINTS:
        st.caption(f"Fewer than {signals.MIN_POINTS} weeks with data: too few for a control chart.")
        return
    marks = meetings.pdsa_marks(db, scope(), cycle.metric_id, cycle.slice)
    figure = charts.spc_figure(signals.chart(series, metric), metric, events=disguised(marks[marks["pdsa_id"] == cycle.id]),
                               height=360, min_cell=min_cell())
    for name, period, colour in (("before", movement.before, "#999999"), ("after", movement.after, "#56B4E9")):
        if period is not None:
            figure.add_vrect(x0=period.start, x1=period.end, fillcolor=colour, opacity=0.12, line_width=0,
                             annotation_text=name, annotation_position="bottom left")
    st.plotly_chart(figure, width="stretch", key="pdsa-spc")


def show_study(cycle: PdsaCycle) -> None:
    st.subheader("Study")
    st.caption(PDSA_STEPS["study"])
    st.markdown(ci_ui.say(f"**Predicted.** {cycle.prediction or '—'}"))
    movement = study_of(cycle)
    if movement.status == "ok":
        show_numbers(movement)
    else:
        st.info(movement.note, icon=":material/hourglass_empty:")
    st.caption(" ".join(part for part in (movement.chart_note, movement.method) if part))
    spc_chart(cycle, movement)
    st.markdown(ci_ui.say(f"**What the group learned.** {cycle.study or '_Not written yet._'}"))


def show_act(cycle: PdsaCycle) -> None:
    st.subheader("Act")
    st.caption(PDSA_STEPS["act"])
    if cycle.act:
        st.markdown(ci_ui.say(f"**{ACT_LABELS[cycle.act]}.** {cycle.act_note}"))
    else:
        st.caption("Not decided yet.")


show_plan(cycle)
show_do(cycle)
show_study(cycle)
show_act(cycle)


# --- editing: the form keeps what was typed, and a save names the revision it started from ---


def edit_form(record: PdsaCycle, session: dict) -> tuple[PdsaCycle, bool]:
    opened, form = session["opened"], session["form"]
    with st.form(form):
        title = st.text_input("Name", opened.title, key=f"{form}-title")
        change = st.text_area("The change", opened.change, key=f"{form}-change")
        prediction = st.text_area("The prediction", opened.prediction, key=f"{form}-prediction")
        left, right = st.columns(2)
        start_on = left.date_input("Starts on", opened.start_on, format="YYYY-MM-DD", key=f"{form}-start")
        ends_on = right.date_input("Study on", opened.ends_on, format="YYYY-MM-DD", key=f"{form}-end")
        study = st.text_area(f"Study: {PDSA_STEPS['study']}", opened.study, key=f"{form}-study")
        choices = [None, *ACTS]
        act = st.radio(f"Act: {PDSA_STEPS['act']}", choices, index=choices.index(opened.act), horizontal=True,
                       format_func=lambda a: ACT_LABELS.get(a, "Not decided yet"), key=f"{form}-act")
        act_note = st.text_area("Why, and what next", opened.act_note, key=f"{form}-act-note")
        pressed = st.form_submit_button("Save the cycle", type="primary", icon=":material/save:")
    typed = replace(record, title=title.strip(), change=change.strip(), prediction=prediction.strip(), start_on=start_on,
                    ends_on=ends_on, study=study.strip(), act=act, act_note=act_note.strip())
    return typed, pressed


def store(typed: PdsaCycle, opened: PdsaCycle, revision: int) -> PdsaCycle:
    try:
        return meetings.save_pdsa(db, scope(), replace(typed, revision=revision), by=ci_ui.me())
    except EditConflict as conflict:
        if all(getattr(conflict.theirs, f) == getattr(opened, f) for f in FORM_FIELDS):
            return store(typed, opened, conflict.theirs.revision)  # they only added an observation
        raise


def latest() -> PdsaCycle:
    return meetings.pdsa_cycle(db, scope(), cycle.id)


def edit(record: PdsaCycle, session: dict) -> None:
    offered = ci_ui.session_drafts(session, "pdsa", DRAFTED)
    with st.expander("Update the cycle", icon=":material/edit:", expanded=session["conflict"] is not None or offered):
        touched = any(getattr(record, f) != getattr(session["opened"], f) for f in FORM_FIELDS)
        if touched and session["conflict"] is None:
            ci_ui.offer_latest(session, f"{record.updated_by} changed this cycle (revision {record.revision}) after this "
                               "form opened. Saving will show you both.", latest)
        typed, pressed = edit_form(record, session)
        ci_ui.save_or_resolve(session, pressed, latest=latest, notice=NOTICE,
                              store=lambda revision: store(typed, session["opened"], revision))


if staff:
    edit(cycle, ci_ui.edit_session(cycle, "pdsa", "pdsa", drawn="title"))

with st.expander("History", icon=":material/history:"):
    shown = ci_ui.read_history("pdsa", cycle.id, f"pdsa-history-{cycle.id}-{cycle.revision}",
                               {"Step": lambda v: STAGES[v.record.stage]})
    st.markdown(ci_ui.say(
        f"**{shown.title}** · from {when(shown.start_on)}\n\n**The change.** {shown.change or '—'}\n\n"
        f"**The prediction.** {shown.prediction or '—'}\n\n**Observations.** {len(shown.observations)}\n\n"
        f"**Study.** {shown.study or '—'}\n\n**Act.** {ACT_LABELS.get(shown.act, 'not decided')}. {shown.act_note}"
    ))
