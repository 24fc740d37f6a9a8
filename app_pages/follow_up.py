"""Follow-up: the students someone should act on (persistently absent, not growing, not yet
served) and what has been done about each, as a dated log. Analysts see every student, a
vendor its own, a school its schools'; an evaluator reads every student and status under its
pseudonyms and logs nothing; everyone else, and any shared screen, sees how many."""

from datetime import date

import pandas as pd
import streamlit as st

from ciboard import ci_ui, student_lists
from ciboard.access import Scope, ScopeError
from ciboard.dashboard import chart_footer, scope, version, warehouse
from ciboard.session import presenting
from ciboard.student_lists import LISTS, STATUS_LABELS, STATUSES

filters = st.session_state["filters"]
settings = warehouse().settings
said = student_lists.describe(settings)
end = filters.end
today = date.today()

st.title("Follow-up")
st.caption(
    f"Students to follow up as of {end:%b %-d, %Y}, the end of the dates chosen: who is persistently absent, who is "
    "not growing, who is not yet served, and what has been done about each. A student's log stays with the "
    "student: one who leaves a list and comes back shows everything logged before."
)


@st.cache_data(show_spinner=False, max_entries=64)
def counted(version: str, scope_text: str, end: date, params: tuple) -> dict:
    return student_lists.counts(warehouse(), Scope.parse(scope_text), end, dict(params))


@st.cache_data(show_spinner=False, max_entries=64)
def listed(version: str, scope_text: str, end: date, params: tuple) -> dict:
    return student_lists.lists(warehouse(), Scope.parse(scope_text), end, dict(params))


params = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.params().items()))
if not scope().reads_follow_up or presenting():
    st.info("Students are named to the district's analysts and to each vendor for its own; here, how many.")
    found = counted(version(), str(scope()), end, params)
    for column, key in zip(st.columns(len(LISTS)), LISTS):
        column.metric(LISTS[key], "too few to show" if found[key] is None else f"{found[key]:,}")
        column.caption(f"Students who {said[key]}.")
    st.stop()

db = ci_ui.db()
who = [] if scope().role == "vendor" else ["vendor"]  # a vendor's students are all its own
# An evaluator reads statuses, not the notes, which name students and staff as they were typed.
reader_only = not scope().follows_up_students
if reader_only:
    st.caption("Read-only: students appear under your pseudonyms, with each one's status and since when; the log's "
               "notes and who wrote them stay with the district.")
lists = listed(version(), str(scope()), end, params)
known = student_lists.latest(db, scope())

COLUMNS = {
    "absent": {
        "attended": st.column_config.ProgressColumn("Attended", format="%.0f%%", min_value=0, max_value=100,
                                                    width="small"),
        "sessions_attended": st.column_config.NumberColumn("Sessions", width="small", help="Sessions attended"),
        "sessions_scheduled": st.column_config.NumberColumn("Scheduled", width="small"),
        "last_attended": st.column_config.TextColumn("Last attended", width="medium",
                                                     help="The week of the last session attended"),
    },
    "not_growing": {
        "sgp": st.column_config.NumberColumn("SGP", width="small"),
        "window_start": st.column_config.DateColumn("Window", format="MMM D, YYYY"),
        "served_on": st.column_config.DateColumn("Served since", format="MMM D, YYYY"),
    },
    "not_yet_served": {
        "enrolled_on": st.column_config.DateColumn("On roster since", format="MMM D, YYYY"),
        "weeks_on_roster": st.column_config.NumberColumn("Weeks", width="small", help="Weeks on the roster"),
    },
}
for tab, key in zip(st.tabs([f"{LISTS[key]} ({len(lists[key]):,})" for key in LISTS]), LISTS):
    with tab:
        st.caption(f"Students who {said[key]}.")
        frame = student_lists.with_status(lists[key], known)
        shown = frame.assign(
            vendor=[filters.label("vendor_id", v) for v in frame["vendor_id"]],
            school=[filters.label("school_id", v) for v in frame["school_id"]],
            status=frame["status"].map(STATUS_LABELS),
            status_on=[f"{d:%b %-d, %Y}" if d else "" for d in frame["status_on"]],
            **({"attended": frame["attendance_rate"] * 100,
                # A date column draws a student who never attended as "None"; say what it means.
                "last_attended": [f"{d:%b %-d, %Y}" if pd.notna(d) else "none in these weeks"
                                  for d in frame["last_week_attended"]]} if key == "absent" else {}),
        )
        st.dataframe(
            shown[["student_key", "status", "status_on", *([] if reader_only else ["note"]), *who, "school", "grade",
                   *COLUMNS[key]]],
            hide_index=True, width="stretch", key=f"list-{key}", height=min(420, 38 + 35 * max(len(shown), 1)),
            column_config={
                "student_key": st.column_config.TextColumn("Student", width="small"),
                "status": st.column_config.TextColumn("Status", width="small"),
                "status_on": st.column_config.TextColumn("Since", width=100, help="When the status was logged"),
                "vendor": st.column_config.TextColumn("Vendor", width="medium"),
                "school": st.column_config.TextColumn("School", width="medium"),
                "grade": st.column_config.NumberColumn("Grade", width="small"),
                **COLUMNS[key],
                "note": st.column_config.TextColumn("Latest note", width="medium"),
            },
        )
        chart_footer(frame, None, name=f"follow-up-{key}", who=f"{LISTS[key]} · {filters.describe()}",
                     students=len(frame))

st.subheader("A student's log")
on_lists = {}
for key in LISTS:
    for student in lists[key]["student_key"]:
        on_lists.setdefault(student, []).append(key)
student = st.selectbox(
    "Student", sorted(on_lists), index=None, key="student", placeholder="Choose a student on a list",
    format_func=lambda s: f"{s} · {', '.join(LISTS[k] for k in on_lists[s])}",
)
if student is not None:
    log = student_lists.history(db, scope(), student)
    if log:
        entries = {"On": [e.on for e in log], "Status": [STATUS_LABELS[e.status] for e in log],
                   "List": [LISTS[e.list] for e in log]}
        if not reader_only:
            entries.update({"By": [e.by for e in log], "Note": [e.note for e in log]})
        st.dataframe(pd.DataFrame(entries), hide_index=True, width="stretch", key="log",
                     column_config={"On": st.column_config.DateColumn(format="MMM D, YYYY")})
    else:
        st.caption("Nothing logged yet: the student is new to follow-up.")
if student is not None and not reader_only:
    with st.form("log-status", clear_on_submit=True):
        left, middle, right = st.columns(3)
        list_key = left.selectbox("List", on_lists[student], format_func=LISTS.get)
        current = log[-1].status if log else "new"
        status = middle.selectbox("Status", STATUSES, index=STATUSES.index(current), format_func=STATUS_LABELS.get)
        on = right.date_input("On", value=today, max_value=today, format="YYYY-MM-DD")
        note = st.text_input("Note", placeholder="Who was reached, what was agreed, what is next")
        if st.form_submit_button("Log", type="primary"):
            try:
                student_lists.log_status(db, warehouse(), scope(), student, list_key, status,
                                         by=ci_ui.me(), note=note, on=on)
            except (ScopeError, ValueError) as error:
                st.error(ci_ui.say(str(error)))
            else:
                st.rerun()
