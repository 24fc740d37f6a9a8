"""Rate cards: each contract's terms as they stand and every version they had; an administrator
edits a contract year's terms, the contract's dates, or gives one school year of an every-year
contract terms of its own here (or with `ciboard contracts terms edit`), each save a version kept
for good, checked as a contract file is."""

import pandas as pd
import streamlit as st

from ciboard import contract_terms, payments, session, statements
from ciboard.dashboard import account, audit, data_map, scope, version, warehouse

st.title("Rate cards")
st.caption(
    "What each contract pays for: the served rule and base, the outcome and how success is measured, who is "
    "eligible, the amounts, caps and schedule. Every change is a new version with who saved it, when and why; "
    "a statement names the version it applied, and a closed statement keeps the terms it was closed with."
)
notice = st.session_state.pop("rate_cards_notice", None)
if notice:
    st.success(notice, icon=":material/check_circle:")


@st.cache_data(show_spinner=False)
def current_lines(key: str, scope_text: str) -> pd.DataFrame:
    return contract_terms.lines(warehouse(), scope())


@st.cache_data(show_spinner=False)
def versions(key: str, scope_text: str, year: contract_terms.ContractYear) -> pd.DataFrame:
    return contract_terms.history(warehouse(), scope(), year)


def every_year(value) -> str:
    return "every year" if value is None or pd.isna(value) else str(value)


lines = current_lines(version(), str(scope()))
if lines.empty:
    st.info("No contract is loaded" + (" for your organisation." if scope().vendor_id else
                                       ": load a contract file on *Submit data* or with `ciboard ingest --kind contracts`."))
    st.stop()

COLUMNS = {
    "vendor_id": "Vendor", "payment_metric": "Line", "school_year": "School year", "starts_on": "From",
    "ends_on": "To", "served_by": "Served by", "served_min": "At least", "base_per_student": "Base",
    "base_schedule": "Base paid", "success": "Success", "threshold": "Threshold", "outcome_window": "Window",
    "from_window": "From window", "outcome_per_student": "Outcome payment", "enrolled_by": "Enrolled by",
    "min_dosage_share": "Dosage share", "student_cap": "Student cap", "cap": "Contract cap",
    "max_sessions_per_day": "Sessions a day at most", "batch_id": "Batch",
}
MONEY = {name: st.column_config.NumberColumn(COLUMNS[name], format="dollar")
         for name in ("base_per_student", "outcome_per_student", "student_cap", "cap")}
st.dataframe(
    lines.assign(school_year=lines["school_year"].map(every_year)), hide_index=True, width="stretch", key="rate-cards",
    column_order=list(COLUMNS), column_config={**COLUMNS, **MONEY},
)

keys = list(lines[contract_terms.LINE].itertuples(index=False, name=None))
# Options are text, so a link or a test names a line: vendor|contract start|school year|metric.
ids = ["|".join(contract_terms.as_text(v) for v in key) for key in keys]
chosen = st.selectbox(
    "Line", ids, key="rate-card-line",
    format_func=lambda i: "{} · {} · contract from {} · {}".format(*(lambda k: (k[0], k[3], k[1], every_year(k[2])))(keys[ids.index(i)])),
)
here = ids.index(chosen)  # the form's widgets are the line's own: another line's start from its terms
vendor, starts_on, school_year, metric = keys[here]
year = contract_terms.ContractYear(vendor, starts_on, None if pd.isna(school_year) else school_year)
line = lines.iloc[here].to_dict()

st.subheader("History")
history = versions(version(), str(scope()), year)
st.caption(f"Every version of the lines of {year}, newest first: an edit names who saved it and why; "
           "a file names the file.")
st.dataframe(
    history.assign(school_year=history["school_year"].map(every_year)), hide_index=True, width="stretch", key="rate-card-history",
    column_order=["version", "batch_id", "saved_by", "saved_at", "note", "payment_metric", "replaced_metric", "moved_from",
                  *[c for c in COLUMNS if c not in ("vendor_id", "payment_metric", "batch_id")]],
    column_config={**COLUMNS, **MONEY, "version": "Version", "batch_id": "Batch", "saved_by": "Saved by",
                   "saved_at": st.column_config.DatetimeColumn("Saved", format="YYYY-MM-DD HH:mm"),
                   "note": st.column_config.TextColumn("Why", width="medium"), "replaced_metric": "Replaced line on",
                   "moved_from": st.column_config.DateColumn("Moved the contract from")},
)

if not account().is_admin:
    st.stop()

st.divider()
st.header("Edit the terms")
closed = statements.closed_months(session.app_db(), vendor)
st.caption(
    f"Administrators only. A save loads the lines of {year} as a contract file would, through the same checks, as a "
    "new version; the contract's own terms (served rule, base, caps, base schedule, sessions a day) apply to each of its lines, and "
    "its dates to every line of every school year. "
    + (f"Closed months of {vendor} ({', '.join(closed)}) keep the terms they were closed with; what new terms change "
       "in them becomes adjustment lines in the vendor's next open month." if closed else "")
)


def choice(label: str, options: list[str], value, key: str, **kwargs) -> str:
    shown = contract_terms.as_text(value)
    options = options if shown in options else [shown, *options]
    return st.selectbox(label, options, index=options.index(shown), key=key,
                        format_func=lambda option: option or "none", **kwargs)


WINDOWS = ["", "fall", "winter", "spring"]
with st.form("edit-terms"):
    typed = {}
    st.markdown(f"**The line on {metric}**")
    cols = st.columns(5)
    with cols[0]:
        typed["payment_metric"] = choice("Payment metric", sorted(data_map()["metric_id"]), line["payment_metric"],
                                         f"terms-payment_metric-{here}", help="Any metric of the data map")
    typed["success"] = cols[1].selectbox("Success", ["threshold", "growth", "percentile"],
                                         index=["threshold", "growth", "percentile"].index(line["success"]),
                                         key=f"terms-success-{here}")
    typed["threshold"] = cols[2].text_input("Threshold", contract_terms.as_text(line["threshold"]), key=f"terms-threshold-{here}")
    with cols[3]:
        typed["outcome_window"] = choice("Outcome window", WINDOWS, line["outcome_window"], f"terms-outcome_window-{here}")
    with cols[4]:
        typed["from_window"] = choice("From window (growth)", WINDOWS, line["from_window"], f"terms-from_window-{here}")
    cols = st.columns(3)
    typed["outcome_per_student"] = cols[0].text_input("Outcome payment per student ($)",
                                                      contract_terms.as_text(line["outcome_per_student"]), key=f"terms-outcome_per_student-{here}")
    typed["enrolled_by"] = cols[1].text_input("Enrolled by (YYYY-MM-DD, or empty)", contract_terms.as_text(line["enrolled_by"]),
                                              key=f"terms-enrolled_by-{here}")
    typed["min_dosage_share"] = cols[2].text_input("Dosage standard in at least this share of weeks (0-1, or empty)",
                                                   contract_terms.as_text(line["min_dosage_share"]), key=f"terms-min_dosage_share-{here}")
    st.markdown(f"**The contract's own terms** (each line of {year})")
    cols = st.columns(3)
    typed["served_by"] = cols[0].selectbox("Served by", list(payments.SERVED_BY),
                                           index=list(payments.SERVED_BY).index(line["served_by"]),
                                           format_func=payments.SERVED_BY.get, key=f"terms-served_by-{here}")
    typed["served_min"] = cols[1].text_input("At least", contract_terms.as_text(line["served_min"]), key=f"terms-served_min-{here}")
    typed["base_per_student"] = cols[2].text_input("Base per student served ($)", contract_terms.as_text(line["base_per_student"]),
                                                   key=f"terms-base_per_student-{here}")
    cols = st.columns(4)
    typed["student_cap"] = cols[0].text_input("Student cap ($, or empty)", contract_terms.as_text(line["student_cap"]),
                                              key=f"terms-student_cap-{here}")
    typed["cap"] = cols[1].text_input("Contract cap ($, or empty)", contract_terms.as_text(line["cap"]), key=f"terms-cap-{here}")
    typed["max_sessions_per_day"] = cols[3].text_input(
        "Sessions a day at most (or empty)", contract_terms.as_text(line["max_sessions_per_day"]),
        key=f"terms-max_sessions_per_day-{here}",
        help="A student's attended sessions with the vendor in a day beyond this are flagged as implausible; empty: "
        f"the district's setting ({warehouse().settings.max_sessions_per_day}).")
    typed["base_schedule"] = cols[2].selectbox("Base paid", ["monthly", "quarterly"],
                                               index=["monthly", "quarterly"].index(line["base_schedule"]),
                                               key=f"terms-base_schedule-{here}")
    st.markdown("**The contract's dates** (every line of every school year of the contract)")
    cols = st.columns(3)
    typed["starts_on"] = cols[0].text_input("From (YYYY-MM-DD)", contract_terms.as_text(line["starts_on"]),
                                            key=f"terms-starts_on-{here}")
    typed["ends_on"] = cols[1].text_input("To (YYYY-MM-DD)", contract_terms.as_text(line["ends_on"]),
                                          key=f"terms-ends_on-{here}")
    # A contract whose lines hold for every year may give one of the years it reaches terms of its own.
    reached = contract_terms.years_reached(warehouse(), line) if year.school_year is None else []
    own_year = cols[2].selectbox(
        "Apply these terms to", ["", *reached], key=f"terms-own_year-{here}", disabled=len(reached) < 2,
        format_func=lambda y: f"school year {y} only (it gets terms of its own)" if y else "every school year",
        help="A contract reaching several school years may give one of them terms of its own: its lines then name "
        "their school year, each year keeping the terms it has, and this year taking these.",
    )
    note = st.text_input("Why this change", key=f"terms-note-{here}")
    if st.form_submit_button("Save a new version", type="primary", key="save-terms"):
        try:
            batch = contract_terms.edit(warehouse(), account(), year, metric, typed, note, own_year=own_year or None)
        except contract_terms.TermsError as error:
            st.error("Nothing saved:\n\n" + "\n".join(f"- {p}" for p in error.problems))
        else:
            changed = sorted(k for k, v in typed.items() if v != contract_terms.as_text(line[k]))
            audit("rate card edit", {"contract": str(year), "line": metric, "batch": batch, "fields": changed,
                                     "own_year": own_year or None})
            saved = f"school year {own_year} of {year.vendor_id}'s contract" if own_year else str(year)
            st.session_state["rate_cards_notice"] = f"Saved the terms of {saved} as batch {batch}."
            st.rerun()
