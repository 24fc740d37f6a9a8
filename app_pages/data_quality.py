"""Data quality: can we trust this week's numbers? Every submission a vendor owes, the rows
rejected and why, how many enrolled students each metric covers, and how fresh each feed is."""

from datetime import date

import pandas as pd
import streamlit as st

from ciboard import charts, ci_ui, session_checks, session_decisions
from ciboard.dashboard import account, chart_footer, fewer_than, keep_vendor_choice, metrics, query, scope, warehouse
from ciboard.session import app_db
from ciboard.settings import get_settings

filters = st.session_state["filters"]
catalogue = metrics()
own_only = scope().role == "vendor"  # a vendor sees its own submissions, and the district's
FEEDS = {
    "sessions": "Session logs",
    "survey": "Exit tickets and surveys",
    "roster": "Rosters",
    "school_attendance": "School attendance",
    "assessment": "Assessments",
    "students": "District student records",
}
GROUP_FIELDS = {
    "school_id": "School", "grade": "Grade", "race_ethnicity": "Race/ethnicity", "gender": "Gender",
    "econ_disadvantaged": "Economically disadvantaged", "english_learner": "English learner",
    "special_education": "Special education", "baseline_band": "Baseline band",
}


def source_label(vendor_id) -> str:
    return "District" if pd.isna(vendor_id) else filters.label("vendor_id", vendor_id)


st.title("Data quality")
st.caption(
    "Whether the data behind every other page is complete and on time: each submission a vendor owes by week, "
    "the rows of rejected files and why they were rejected, the sessions that fail a check against the district's "
    "records, the share of enrolled students each metric covers, "
    "and how recent each feed is. Talk about gaps here before reading a trend."
)

chosen = filters.chosen.get("vendor_id") or []

st.subheader("Where student groups come from")
records = query("student_records").iloc[0]
if records["students"] == 0:
    st.warning(
        "**Student groups come from the vendors' rosters.** The district has not sent its student records, so each "
        "vendor's roster sets its students' school, grade, race/ethnicity, gender, poverty, English-learner and "
        "special-education status and baseline band, and a vendor's roster can move its own students' groups (and "
        "its expected values on *Vendors*). Once the district loads its records (`ciboard ingest FILE --kind "
        "students`), they decide.",
        icon=":material/info:",
    )
else:
    without = int(records["rostered_without_record"])
    first, last = (f"{records[d]:%b %-d, %Y}" for d in ("first_as_of", "last_as_of"))
    st.markdown(
        f"Student groups come from **the district's student records**: {int(records['students']):,} students, "
        + (f"as of {first}" if first == last else f"in records from {first} to {last}")
        + ". Vendors' rosters only say which vendor serves whom."
        + (f" {without:,} rostered student(s) are not in the records: their groups still come from their vendor's "
           "roster." if without else "")
    )
    disagreeing = int(records["students_disagreeing"])
    if not disagreeing:
        st.caption("No roster states a student's groups differently from the district's records.")
    elif not scope().sees_students:
        whose = "Your roster states" if own_only else "Vendors' rosters state"
        st.markdown(
            f"{whose} other groups than the district's records "
            f"for {disagreeing:,} student(s); the records decide. Analysts see which students and groups."
        )
    else:
        listing = query("roster_disagreements")
        if chosen:
            listing = listing[listing["vendor_id"].isin(chosen)]
        listing = listing.assign(source=listing["vendor_id"].map(source_label), group=listing["field"].map(GROUP_FIELDS))
        st.markdown(
            f"**Vendors' rosters state other groups than the district's records for {disagreeing:,} student(s)** ("
            + "; ".join(f"{source}: {count}" for source, count in listing.groupby("source")["student_key"].nunique().items())
            + "). The records decide; what a roster says of a student's groups changes nothing."
        )
        st.dataframe(
            listing, hide_index=True, width="stretch",
            column_order=["source", "student_key", "group", "roster_value", "district_value", "record_as_of", "file_name"],
            column_config={
                "source": st.column_config.TextColumn("Vendor", width="medium"),
                "student_key": "Student",
                "group": "Group",
                "roster_value": "Roster says",
                "district_value": "District's records say",
                "record_as_of": st.column_config.DateColumn("Record of", format="MMM D, YYYY"),
                "file_name": "Roster file",
            },
        )
        chart_footer(
            listing.drop(columns=["source", "group"]), None, name="roster-disagreements",
            who="Each vendor's current roster against the district's record in force when it was received",
        )

quality = query("quality", start=filters.start.isoformat(), end=filters.end.isoformat())
if chosen:
    # District feeds belong to no vendor; with vendors chosen, show only theirs.
    quality = quality[quality["vendor_id"].isin(chosen)]
if quality.empty:
    st.info("No submissions were due for these dates.")
    st.stop()
quality = quality.assign(
    source=quality["vendor_id"].map(source_label),
    feed=quality["kind"].map(lambda k: FEEDS.get(k, k)),
    # Weekly feeds (session logs, exit tickets) cover one week per row; rosters and district files do not.
    weekly=(pd.to_datetime(quality["period_end"]) - pd.to_datetime(quality["period_start"])).dt.days == 6,
)
weekly = quality[quality["vendor_id"].notna() & quality["weekly"]]

st.subheader("Your submissions in one line" if own_only else "Each vendor in one line")
# Files no schedule expects, for dates no contract of the vendor reaches: they landed, and count toward no payment.
received = query("submission_log", start=filters.start.isoformat(), end=filters.end.isoformat())
outside = received[received["outside_contract"]].groupby("vendor_id").size()
for vendor_id, rows in quality[quality["vendor_id"].notna()].groupby("vendor_id", sort=True):
    parts = []
    for kind in [k for k in FEEDS if k in set(rows["kind"])]:
        feed = rows[rows["kind"] == kind]
        counts = feed["status"].value_counts()
        name = FEEDS[kind].lower()
        if len(feed) == 1:
            parts.append(f"{name}: {feed['status'].iloc[0]}")
            continue
        unit = "weeks" if feed["weekly"].all() else "files"
        problems = [f"{counts[s]} of {len(feed)} {unit} {s}" for s in ("late", "missing", "rejected") if counts.get(s, 0)]
        # A week can be on time or late and still have had a rejected file covering it.
        also = int(((feed["rows_rejected"] > 0) & (feed["status"] != "rejected")).sum())
        parts.append(f"{name}: {', '.join(problems) if problems else f'all {len(feed)} {unit} on time'}"
                     + (f" ({also} also had a rejected file)" if also else ""))
    uncovered = int(outside.get(vendor_id, 0))
    if uncovered:
        parts.append(f"{uncovered} file(s) for dates no contract covers, counted toward no payment")
    warned = rows["status"].ne("on time").any() or uncovered
    flag = ":orange[:material/warning:]" if warned else ":blue[:material/check_circle:]"
    st.markdown(f"{flag} **{source_label(vendor_id)}** · " + " · ".join(parts))
st.caption(
    "A week is on time when its first accepted file arrived by the due date (three days after the week ends); a "
    "corrected file sent later does not make it late. Rejected: only a rejected file came. Missing: nothing came."
)

st.subheader("Submissions by week")
kinds = [k for k in FEEDS if k in set(quality["kind"])] + sorted(set(quality["kind"]) - set(FEEDS))
kind = st.segmented_control(
    "Submission", kinds, default=kinds[0], format_func=lambda k: FEEDS.get(k, k), key="feed", bind="query-params",
) or kinds[0]
timeline = quality[quality["kind"] == kind]
st.plotly_chart(charts.submission_timeline_figure(timeline, category="source"), width="stretch", key="timeline")
st.caption(
    f"{FEEDS.get(kind, kind)}: one mark per source and period due, by colour and shape: on time (blue circle), "
    "late (orange triangle), rejected and never replaced (red square), missing (black cross). Weeks a break covers are "
    "not due. Hover for the due date and when the file came."
)
chart_footer(
    timeline.drop(columns=["source", "feed", "weekly"]), None, name=f"submissions-{kind}",
    who=f"{FEEDS.get(kind, kind)} due for periods from {filters.start:%b %-d, %Y} to {filters.end:%b %-d, %Y}",
)

st.subheader("Rejected rows")
rejections = query("rejections", start=filters.start.isoformat(), end=filters.end.isoformat())
if chosen:
    rejections = rejections[rejections["vendor_id"].isin(chosen)]
if rejections.empty:
    st.success("No file was rejected in these dates.", icon=":material/check_circle:")
else:
    rejections = rejections.assign(source=rejections["vendor_id"].map(source_label))
    files = rejections.groupby("file_name", sort=False).agg(source=("source", "first"), received_at=("received_at", "first"), problems=("reason", "size"))
    st.markdown(
        f"**{len(rejections)} problem(s) in {len(files)} rejected file(s)**: "
        + "; ".join(f"`{name}` from {row.source}, received {row.received_at:%b %-d %H:%M} ({row.problems})" for name, row in files.iterrows())
    )
    st.dataframe(
        rejections, hide_index=True, width="stretch",
        column_order=["file_name", "source", "received_at", "row_number", "column_name", "value", "reason"],
        column_config={
            "file_name": st.column_config.TextColumn("File", width="medium"),
            "source": st.column_config.TextColumn("From", width="small"),
            "received_at": st.column_config.DatetimeColumn("Received", format="MMM D, HH:mm"),
            "row_number": st.column_config.NumberColumn("Row", format="%d", help="Row of the file, counting the header as row 1"),
            "column_name": "Column",
            "value": "Value",
            "reason": st.column_config.TextColumn("Why it was rejected", width="large"),
        },
    )
    st.caption(
        "A file with any problem is rejected whole, so nothing half-loaded reaches the charts; the vendor fixes it and "
        "sends it again. Whether the week was then on time is in the chart above."
    )
    chart_footer(
        rejections.drop(columns=["source"]), None, name="rejected-rows",
        who=f"Files received from {filters.start:%b %-d, %Y} to {filters.end:%b %-d, %Y}",
    )

st.subheader("Sessions checked against the district's records")
settings = get_settings()
checks = session_checks.describe(settings)
counted = set(settings.session_checks_counted)
st.caption(
    "Before a session counts toward payment it is checked. Flagged: "
    + "; ".join(f"**{session_checks.CHECKS[c]}**, {text}" for c, text in checks.items())
    + ". A flagged session counts only once the district accepts it"
    + (f", except under {', '.join(session_checks.CHECKS[c] for c in sorted(counted))}, which count until rejected."
       if counted else ".")
)
dates = {"start": filters.start.isoformat(), "end": filters.end.isoformat()}
flag_counts = query("session_check_counts", **dates, vendor_id=chosen or None)
if flag_counts.empty:
    st.success("No attended session in these dates fails a check.", icon=":material/check_circle:")
else:
    flag_counts = flag_counts.assign(
        source=flag_counts["vendor_id"].map(source_label), check=flag_counts["check_name"].map(session_checks.CHECKS),
    )
    st.dataframe(
        flag_counts, hide_index=True, width="stretch",
        column_order=["source", "check", "sessions", "students", "pending", "accepted", "rejected", "not_counted"],
        column_config={
            "source": st.column_config.TextColumn("Vendor", width="medium"),
            "check": "Check",
            "sessions": st.column_config.NumberColumn("Sessions flagged", format="%d"),
            "students": st.column_config.NumberColumn("Students", format="%d"),
            "pending": st.column_config.NumberColumn("Not decided", format="%d"),
            "accepted": st.column_config.NumberColumn("Accepted", format="%d"),
            "rejected": st.column_config.NumberColumn("Rejected", format="%d"),
            "not_counted": st.column_config.NumberColumn("Not counted for payment", format="%d"),
        },
    )
    if flag_counts["suppressed"].any():
        st.caption(f"Blank: {fewer_than()} students, hidden.")
    if scope().follows_up_students:
        check = st.segmented_control(
            "Check", list(flag_counts["check_name"].unique()), format_func=session_checks.CHECKS.get,
            key="flag-check", bind="query-params",
        )
        flagged = query("session_checks", **dates, vendor_id=chosen or None, check=check)
        flagged = flagged.assign(source=flagged["vendor_id"].map(source_label), check=flagged["check_name"].map(session_checks.CHECKS))
        st.dataframe(
            flagged, hide_index=True, width="stretch",
            column_order=["source", "check", "session_date", "student_key", "tutor_id", "attended_minutes", "reason", "decision"],
            column_config={
                "source": st.column_config.TextColumn("Vendor", width="medium"),
                "check": "Check",
                "session_date": st.column_config.DateColumn("Session", format="ddd MMM D, YYYY"),
                "student_key": "Student",
                "tutor_id": "Tutor",
                "attended_minutes": st.column_config.NumberColumn("Minutes", format="%d"),
                "reason": st.column_config.TextColumn("Why it was flagged", width="large"),
                "decision": "Decision",
            },
        )
        chart_footer(
            flagged.drop(columns=["source", "check", "flag_key"]), None, name="flagged-sessions",
            who=f"Attended sessions from {filters.start:%b %-d, %Y} to {filters.end:%b %-d, %Y} that fail a check",
        )
        if scope().role in ("analyst", "admin") and not flagged.empty:
            if "flag-decided" in st.session_state:
                st.success(st.session_state.pop("flag-decided"), icon=":material/check_circle:")
            described = {
                r.flag_key: f"{r.session_date:%a %b %-d, %Y} · {r.student_key} · tutor {r.tutor_id} · {r.check}: "
                f"{r.reason} · {r.decision}"
                for r in flagged.itertuples()
            }
            with st.form("decide-one-flag", clear_on_submit=True):
                st.markdown("**Accept or reject one flagged session**, whatever was decided about it before")
                one = st.selectbox("Session", list(described), format_func=ci_ui.distinct(described, described.get),
                                   key="decide-one-session")
                one_decision = st.radio("Decision", session_checks.DECISIONS, horizontal=True,
                                        format_func=lambda d: "Accept: it counts" if d == "accepted" else "Reject: it does not",
                                        key="decide-one-decision")
                one_reason = st.text_input("Reason", placeholder="e.g. the school confirmed the make-up session",
                                           key="decide-one-reason")
                if st.form_submit_button("Decide this session"):
                    try:
                        session_decisions.decide_one(app_db(), warehouse(), account(), one, decision=one_decision,
                                                  reason=one_reason)
                    except ValueError as error:
                        st.error(str(error))
                    else:
                        st.session_state["flag-decided"] = f"{described[one].rsplit(' · ', 1)[0]}: {one_decision}, {one_reason.strip()}"
                        st.rerun()
    if scope().role in ("analyst", "admin"):
        if "flags-decided" in st.session_state:
            st.success(st.session_state.pop("flags-decided"), icon=":material/check_circle:")
        with st.form("decide-flags", clear_on_submit=True):
            st.markdown("**Accept or reject flagged sessions** not decided yet, in these dates")
            left, middle, right = st.columns(3)
            vendor = left.selectbox("Vendor", sorted(flag_counts["vendor_id"].unique()), format_func=source_label, key="decide-vendor")
            picked = middle.selectbox("Check", list(session_checks.CHECKS), format_func=session_checks.CHECKS.get, key="decide-check")
            decision = right.radio("Decision", session_checks.DECISIONS, horizontal=True,
                                   format_func=lambda d: "Accept: they count" if d == "accepted" else "Reject: they do not",
                                   key="decide-decision")
            reason = st.text_input("Reason", placeholder="e.g. make-up sessions the school agreed to",
                                   key="decide-reason")
            if st.form_submit_button("Decide"):
                try:
                    decided = session_decisions.decide(
                        app_db(), warehouse(), account(), vendor_id=vendor, check=picked, decision=decision,
                        reason=reason, start=filters.start, end=filters.end,
                    )
                except ValueError as error:
                    st.error(str(error))
                else:
                    st.session_state["flags-decided"] = (
                        f"{decided} flagged session(s) of {source_label(vendor)} under {session_checks.CHECKS[picked]} "
                        f"{decision}: {reason.strip()}"
                    )
                    st.rerun()

st.subheader("Coverage: students with data")
in_scope = chosen or sorted(v for v in quality["vendor_id"].dropna().unique())
focus = None
if not own_only:  # a vendor's coverage is its own
    keep_vendor_choice("coverage-vendor", source_label)
    focus = st.selectbox(
        "Coverage for", [None, *in_scope], format_func=lambda v: "All vendors shown" if v is None else source_label(v),
        key="coverage-vendor", bind="query-params",
    )
coverage = query(
    "coverage", start=filters.start.isoformat(), end=filters.end.isoformat(),
    vendor_id=[focus] if focus else chosen or None,
    school_id=filters.chosen.get("school_id") or None, grade=filters.chosen.get("grade") or None,
)
if coverage.empty:
    st.info("No weekly data in these dates.")
else:
    coverage = coverage.assign(metric=coverage["metric_id"].map(lambda m: catalogue.get(m, {}).get("label", m)))
    expected_weeks = weekly["period_start"] if not weekly.empty else pd.Series(dtype=object)
    if not expected_weeks.empty:
        # Only weeks a vendor owed data can show a gap in its data. Outside them (after the
        # contracts end, say) a metric with no data at all had nothing to cover: blank, not 0%.
        # Weeks a break covers are owed by no one, though a vendor may have logged sessions in them.
        inside = coverage["period_start"].isin(set(expected_weeks))
        coverage["owed"] = inside | coverage["with_data"].fillna(0).gt(0).to_numpy(dtype=bool)
        coverage.loc[~coverage["owed"], "coverage"] = float("nan")
        usual = coverage[inside].groupby("metric_id")["coverage"].median()
        dips = coverage[inside & (coverage["coverage"] < coverage["metric_id"].map(usual) - 0.10)]
        if dips.empty:
            st.markdown("No metric fell more than 10 points below its usual coverage in any week vendors owed data.")
        else:
            st.markdown(
                "**Weeks well below usual coverage**: "
                + "; ".join(
                    f"{week:%b %-d}: {', '.join(f'{row.metric} {row.coverage:.0%} (usually {usual[row.metric_id]:.0%})' for row in rows.itertuples())}"
                    for week, rows in dips.groupby("period_start")
                )
            )
    st.plotly_chart(charts.coverage_figure(coverage, row="metric"), width="stretch", key="coverage")
    last_week = (
        f" Vendors owed weekly data from {expected_weeks.min():%b %-d} to {expected_weeks.max():%b %-d}, breaks aside; in "
        "weeks no one owed, a metric without any data is left blank." if not expected_weeks.empty else ""
    )
    st.caption(
        "Share of students enrolled in tutoring that week with a value of the metric; dark cells are gaps. Exit-ticket "
        "metrics (SEL) only count students who attended and answered, so they sit lower every week." + last_week
    )
    chart_footer(
        coverage, None, name="coverage",
        who=f"{'Your students' if own_only else 'All vendors shown' if focus is None else source_label(focus)} · weekly metrics · {filters.describe()}",
    )

st.subheader("Freshness")
today = date.today()
as_of = min(filters.end, today)
received = quality[quality["received_at"].notna()]
freshness = (
    quality.groupby(["source", "kind"], sort=False)
    .agg(latest_due=("period_start", "max"))
    .join(received.groupby(["source", "kind"], sort=False).agg(latest_period_received=("period_end", "max"), last_received_at=("received_at", "max")))
    .reset_index()
)
freshness["feed"] = freshness["kind"].map(lambda k: FEEDS.get(k, k))
freshness["days_since"] = [(as_of - pd.Timestamp(t).date()).days if pd.notna(t) else None for t in freshness["last_received_at"]]
latest_status = quality.sort_values("period_start").groupby(["source", "kind"]).tail(1).set_index(["source", "kind"])["status"]
freshness["latest_due_status"] = [latest_status.get((s, k)) for s, k in zip(freshness["source"], freshness["kind"])]
st.dataframe(
    freshness, hide_index=True, width="stretch", height=35 * (len(freshness) + 1) + 3,
    column_order=["source", "feed", "latest_period_received", "last_received_at", "days_since", "latest_due", "latest_due_status"],
    column_config={
        "source": st.column_config.TextColumn("From", width="medium"),
        "feed": "Submission",
        "latest_period_received": st.column_config.DateColumn("Data up to", format="MMM D, YYYY", help="End of the latest period received"),
        "last_received_at": st.column_config.DatetimeColumn("Last file received", format="MMM D, YYYY HH:mm"),
        "days_since": st.column_config.NumberColumn(f"Days before {as_of:%b %-d}", format="%d"),
        "latest_due": st.column_config.DateColumn("Latest period due", format="MMM D, YYYY"),
        "latest_due_status": "Its status",
    },
)
st.caption(
    f"How recent each feed is, counted back from {as_of:%b %-d, %Y}: the end of the selected dates, or today if that "
    "is sooner. A feed whose last file is older than its latest due period has a gap at the end."
)
chart_footer(freshness, None, name="freshness", who=f"Every feed in these dates, as of {as_of:%b %-d, %Y}")
