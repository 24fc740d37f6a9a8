"""Vendors: every vendor on the same metric, compared fairly; what each has earned and how
timely its data is; then one vendor's profile."""

import math

import numpy as np
import pandas as pd
import streamlit as st

from ciboard import charts, comparisons, statements
from ciboard.dashboard import (
    chart_footer, keep_vendor_choice, metric_picker, metrics, min_cell, query, reads, scope, warehouse,
)
from ciboard.filters import MULTI, YES_NO, narrow_filters
from ciboard.queries import NOT_TUTORED
from ciboard.session import app_db
from ciboard.signals import chart
from ciboard.stats import compare, disparity, intervals

filters = st.session_state["filters"]
if going := st.session_state.pop("vendors-open", None):
    # The filter bar puts its own values back into the address; query_params=None would refuse to clear them.
    st.switch_page(going, query_params={})
catalogue = metrics()
# A vendor sees its own students, beside all other vendors pooled and never one of them.
own_only = scope().role == "vendor"


def vendor_label(vendor_id: str) -> str:
    return filters.label("vendor_id", vendor_id)


st.title("Vendors")
st.caption(
    "Your program on every metric, beside all other vendors pooled into one anonymous benchmark: your value with "
    "its uncertainty, what your contract has earned, how timely your data is, and your profile over time."
    if own_only else
    "Every vendor on the same metric, compared fairly: each value with its uncertainty, a funnel plot that "
    "shows which differences are more than chance, and a comparison that allows for the students each vendor "
    "serves. Below: what each contract has earned, how timely each vendor's data is, and one vendor's profile."
)

metric = metric_picker()
share = charts.is_share(metric)
scope_note = f"{metric['label']} · {filters.describe()}"

vendors = query("vendors", metric=metric["metric_id"], **filters.params())
hidden = not vendors.empty and vendors["n"].isna().all()
# Students no vendor tutors are a vendor value of their own: their comparison is below, matched.
vendors = vendors[(vendors["n"] > 0) & (vendors["vendor_id"] != NOT_TUTORED)].reset_index(drop=True)
vendors.insert(1, "vendor", vendors["vendor_id"].map(vendor_label))


# Students are the unit of every interval, funnel and adjusted comparison on this page, by the
# rules in ciboard.comparisons.
median = metric["aggregation"] == "median"
repeated = comparisons.is_repeated(metric, vendors)
per_student = None
if comparisons.needs_students(metric, vendors) and scope().sees_students:
    per_student = query(
        "student_values", metric=metric["metric_id"], metric_y=comparisons.partner_metric(metric["metric_id"]),
        **filters.params(),
    )
if median:
    method = "SGP is a median: it has no interval, funnel or adjustment here. For those, choose *Met growth target*."
else:
    method = comparisons.method_note(metric, repeated, per_student is not None)


def stats_inputs(cells: pd.DataFrame, keys: list[str], students: pd.DataFrame | None = per_student) -> tuple[str, pd.DataFrame]:
    return comparisons.stats_inputs(cells, metric, keys, students)


def with_intervals(kind: str, rows: pd.DataFrame) -> pd.DataFrame:
    if median:
        return rows.assign(low=math.nan, high=math.nan)
    bounds = [
        (math.nan, math.nan) if pd.isna(r["value"]) or not r["n"]
        else intervals.wilson(r["k"], r["n"]) if kind == "proportion" else intervals.mean_t(r["mean"], r["sd"], r["n"])
        for r in rows.to_dict(orient="records")
    ]
    return rows.assign(low=[b[0] for b in bounds], high=[b[1] for b in bounds])


if vendors.empty:
    # Payments and timeliness do not depend on the metric, so they follow whatever it holds.
    if hidden:
        st.info(f"{'Your value is' if own_only else 'Every vendor is'} hidden: fewer than {min_cell()} students with these filters.")
    else:
        st.info(f"{'No' if own_only else 'No vendor has'} data for {charts.in_sentence(metric['label'])} with these filters.")
else:
    kind, vendors = stats_inputs(vendors, ["vendor_id"])
    vendors = with_intervals(kind, vendors)
    # The value of all vendors shown together, pooled the way the metric aggregates (sum over sum);
    # medians do not pool.
    shown = vendors[vendors["value"].notna()]
    overall = None if median or shown.empty else shown["numerator"].sum() / shown["denominator"].sum()

    overall_text = f" · all vendors shown: **{charts.format_value(overall, metric)}**" if overall is not None else ""
    target_text = f" · target {charts.format_value(metric['target'], metric)}" if pd.notna(metric.get("target")) else ""
    if len(shown) > 1:
        best = shown.sort_values("value", ascending=metric["better"] != "higher").iloc[0]
        worst = shown.sort_values("value", ascending=metric["better"] == "higher").iloc[0]
        st.markdown(
            f"**{metric['label']}**: best {best['vendor']} (**{charts.format_value(best['value'], metric)}**), "
            f"last {worst['vendor']} (**{charts.format_value(worst['value'], metric)}**){overall_text}{target_text}"
        )

    if own_only:
        # One vendor's own students: nothing to set side by side, funnel or adjust. Its comparison
        # is all other vendors pooled, in the profile below.
        if shown.empty:
            st.info(f"Your value is hidden: fewer than {min_cell()} students with these filters.")
        else:
            mine = shown.iloc[0]
            interval = (
                f" (95% CI {charts.format_value(mine['low'], metric)} – {charts.format_value(mine['high'], metric)})"
                if pd.notna(mine["low"]) else ""
            )
            st.markdown(
                f"**{metric['label']}** for your **{int(mine['n']):,} students**: **{charts.format_value(mine['value'], metric)}**"
                f"{interval}{target_text}. All other vendors, pooled, are beside you in the profile below."
            )
            st.caption(method)
            chart_footer(
                vendors[["vendor_id", "vendor", "value", "low", "high", "n", "numerator", "denominator", "suppressed"]],
                metric, name=f"vendors-{metric['metric_id']}", who=f"{scope_note} · your students",
                students=int(mine["n"]),
            )
    else:
        st.subheader("Side by side")
        st.plotly_chart(
            charts.interval_figure(
                vendors, category="vendor", metric=metric, reference=overall,
                reference_label=f"all vendors {charts.format_value(overall, metric)}" if overall is not None else None,
            ),
            width="stretch", key="side-by-side",
        )
        st.caption(("Dots are each vendor's median. " if median else "Dots are each vendor's value, whiskers its 95% confidence interval. ") + method)
        side_by_side = vendors[["vendor_id", "vendor", "value", "low", "high", "n", "numerator", "denominator", "suppressed"]]
        chart_footer(
            side_by_side, metric, name=f"vendors-{metric['metric_id']}", who=f"{scope_note} · per vendor",
            students=int(vendors["n"].sum()),
        )

        # Tables show shares in percent; their CSVs keep the proportions the charts plot.
        scale = 100 if share else 1
        decimals = 1 if share else 0 if median or metric["unit"] in ("minutes", "scale score points") else 2
        value_format = f"%.{decimals}f" + ("%%" if share else "")
        change_format = f"%+.{decimals}f" + (" pts" if share else "")
        table = vendors[["vendor_id", "vendor", "value", "low", "high", "n"]]


        def open_profile() -> None:
            rows = st.session_state["vendor-table"].selection.rows
            if rows:
                st.session_state["profile"] = table["vendor_id"].iloc[rows[0]]


        st.dataframe(
            table.assign(**{c: table[c] * scale for c in ("value", "low", "high")}),
            hide_index=True, width="stretch", key="vendor-table", on_select=open_profile, selection_mode="single-row",
            column_order=["vendor", "value", "n"] if median else ["vendor", "value", "low", "high", "n"],
            column_config={
                "vendor": st.column_config.TextColumn("Vendor", width="large"),
                "value": st.column_config.NumberColumn(metric["label"], format=value_format),
                "low": st.column_config.NumberColumn("95% CI from", format=value_format),
                "high": st.column_config.NumberColumn("to", format=value_format),
                "n": st.column_config.NumberColumn("Students", format="localized"),
            },
        )
        st.caption("Click a row to open that vendor's profile at the bottom of the page.")

        comparable = len(shown) >= 2 and not median

        st.subheader("Funnel plot: more than chance?")
        if not comparable:
            st.info(
                "A funnel plot needs at least two vendors and a metric that pools (SGP is a median: choose *Met growth "
                "target* instead)."
            )
        else:
            # The same unit and spread as the intervals, around the pooled value of all vendors shown.
            # As a mean, one student's spread is the vendors' pooled within-vendor SD.
            sizes = np.unique(np.geomspace(max(10, shown["n"].min() * 0.3), shown["n"].max() * 1.2, 120).round())
            spread = math.sqrt((shown["sd"] ** 2 * shown["n"]).sum() / shown["n"].sum()) if kind == "mean" else None

            def funnel(n) -> pd.DataFrame:
                if kind == "proportion":
                    return compare.funnel_limits(overall, n)
                bounds = {level: [intervals.mean_t(overall, spread, size, level) for size in n] for level in (0.95, 0.998)}
                return pd.DataFrame({
                    "n": list(n),
                    "low_95": [b[0] for b in bounds[0.95]], "high_95": [b[1] for b in bounds[0.95]],
                    "low_998": [b[0] for b in bounds[0.998]], "high_998": [b[1] for b in bounds[0.998]],
                })

            limits = funnel(sizes)
            points = shown[["vendor_id", "vendor", "value", "n"]].reset_index(drop=True)
            at_points = funnel(points["n"].to_numpy(dtype=float)).drop(columns="n")
            points = pd.concat([points, at_points], axis=1)
            points["position"] = np.select(
                [points["value"] > points["high_998"], points["value"] < points["low_998"],
                 points["value"] > points["high_95"], points["value"] < points["low_95"]],
                ["above 99.8% limit", "below 99.8% limit", "above 95% limit", "below 95% limit"],
                "within the limits",
            )
            points["label"] = points["vendor_id"]
            st.plotly_chart(charts.funnel_figure(points, limits, overall, metric, label="label"), width="stretch", key="funnel")
            if (points["position"] == "within the limits").all():
                st.markdown("Every vendor is **within the 95% limits**: the differences between them are what chance alone would give.")
            else:
                st.markdown(
                    " · ".join(
                        f"**{position.capitalize()}**: {', '.join(points.loc[points['position'] == position, 'vendor_id'])}"
                        for position in ("above 99.8% limit", "above 95% limit", "within the limits", "below 95% limit", "below 99.8% limit")
                        if (points["position"] == position).any()
                    )
                    + ". Beyond the 99.8% limits chance is very unlikely; beyond 95%, worth a question."
                )
            st.caption(
                "Each dot is a vendor: its value against its number of students. The funnel is the range a vendor of that "
                f"size would fall in by chance if its true value were the overall {charts.format_value(overall, metric)}: "
                "95% of the time inside the dotted lines, 99.8% inside the dashed ones. Students are the unit: "
                + ("binomial limits at the overall share with students as n" if kind == "proportion" else
                   "the overall value ± t × the spread of "
                   + ("students' own values" if per_student is not None else "single observations") + " / √students")
                + (", which is wider than needed: a vendor outside is different for real, one inside may still differ."
                   if repeated and per_student is None else ".")
            )
            chart_footer(
                points.drop(columns="label"), metric, name=f"funnel-{metric['metric_id']}",
                who=f"{scope_note} · limits around all vendors shown", students=int(points["n"].sum()),
            )

        st.subheader("Adjusted for the students each vendor serves")
        if comparable:
            cells = query("breakdown", metric=metric["metric_id"], by="vendor_id", by2="baseline_band", **filters.params())
            cells = cells[cells["value"].notna() & (cells["n"] > 0) & (cells["vendor_id"] != NOT_TUTORED)]
        if not comparable:
            st.info("The adjusted comparison needs at least two vendors and a metric that pools.")
        elif cells.empty:
            st.info(f"Every vendor has fewer than {min_cell()} students in each baseline band with these filters: hidden.")
        else:
            # Students are the unit here too, with the same spread as the intervals above.
            cell_kind, strata = stats_inputs(cells, ["vendor_id", "baseline_band"])
            measures = ["k", "n"] if cell_kind == "proportion" else ["mean", "sd", "n"]
            adjusted = compare.observed_expected(strata[["vendor_id", "baseline_band", *measures]], by="vendor_id", adjust_for="baseline_band")
            adjusted.insert(1, "vendor", adjusted["vendor_id"].map(vendor_label))
            st.markdown(
                "Vendors serve different students: one that takes more students who started far below grade level would "
                "look worse on raw numbers through no fault of its own. So for each vendor we ask what its result **would "
                "have been if each of its students had done as well as the district's average student in the same baseline "
                "band**: that is its *expected* value. Observed above expected means its students did better than similar "
                "students elsewhere. (This is *indirect standardisation*.)"
            )
            st.plotly_chart(charts.observed_expected_figure(adjusted, category="vendor", metric=metric), width="stretch", key="adjusted")
            # Each interval in one column, so the table reads whole at 1440 px beside the sidebar.
            st.dataframe(
                pd.DataFrame({
                    "Vendor": adjusted["vendor"],
                    "Students": [f"{n:,.0f}" for n in adjusted["n"]],
                    "Observed": [charts.format_value(v, metric) for v in adjusted["observed"]],
                    "Expected": [charts.format_value(v, metric) for v in adjusted["expected"]],
                    "Observed − expected": [charts.format_change(v, metric) for v in adjusted["difference"]],
                    "95% CI": [
                        "" if pd.isna(low) else f"{charts.format_change(low, metric)} to {charts.format_change(high, metric)}"
                        for low, high in zip(adjusted["diff_low"], adjusted["diff_high"])
                    ],
                    "Ratio (95% CI)": [
                        "" if pd.isna(r) else f"{r:.3f}" + ("" if pd.isna(low) else f" ({low:.3f}–{high:.3f})")
                        for r, low, high in zip(adjusted["ratio"], adjusted["ratio_low"], adjusted["ratio_high"])
                    ],
                }),
                hide_index=True, width="stretch", key="adjusted-table",
                column_config={"Vendor": st.column_config.TextColumn(width="medium")},
            )
            st.caption(
                "Expected uses the district's result in each baseline band (well below, below, near, above), weighted by the "
                "vendor's own students in each band; the interval is the observed value's, built as above. Here every student "
                "counts once, so observed can differ slightly from the pooled value above. The district includes the vendor "
                "itself, which pulls a large vendor's ratio towards 1."
            )
            chart_footer(
                adjusted, metric, name=f"adjusted-{metric['metric_id']}", who=f"{scope_note} · adjusted for baseline band",
                students=int(adjusted["n"].sum()),
            )


st.subheader("Against students without tutoring")
if median:
    st.info("SGP is a median: the matched comparison is on *Met growth target*.")
else:
    matched = query("matched", metric=metric["metric_id"], **filters.params())
    matched = matched[matched["expected"].notna()].reset_index(drop=True)
    if matched.empty:
        st.info(
            "No students without tutoring to match with these filters: the district's student records hold none at "
            "these schools, grades and baseline bands" + ("" if own_only else f", or fewer than {min_cell()} in each") + "."
        )
    else:
        matched.insert(1, "vendor", matched["vendor_id"].map(vendor_label))
        st.markdown(
            "Each vendor's students against students in the district's records whom no vendor tutors, **of the same "
            "school, grade and baseline band**, weighted to the vendor's own mix: the *expected* value is what its "
            "students would have had at the results of untutored students like them. Observed above expected is "
            "growth (or attendance) beyond what the school gave them without tutoring."
        )
        st.plotly_chart(charts.observed_expected_figure(matched, category="vendor", metric=metric), width="stretch", key="matched")
        st.dataframe(
            pd.DataFrame({
                "Vendor": matched["vendor"],
                "Students matched": [f"{n:,.0f}" for n in matched["n"]],
                "Without a match": [f"{n:,.0f}" for n in matched["unmatched"]],
                "Observed": [charts.format_value(v, metric) for v in matched["observed"]],
                "Expected without tutoring": [charts.format_value(v, metric) for v in matched["expected"]],
                "Untutored students behind it": [f"{n:,.0f}" for n in matched["reference_n"]],
                "Observed − expected": [charts.format_change(v, metric) for v in matched["difference"]],
                "95% CI": [
                    f"{charts.format_change(low, metric)} to {charts.format_change(high, metric)}"
                    for low, high in zip(matched["diff_low"], matched["diff_high"])
                ],
            }),
            hide_index=True, width="stretch", key="matched-table",
        )
        st.caption(
            "Students are the unit: each student's weeks are pooled first, and the interval joins the uncertainty of "
            "the vendor's value and of the untutored students' values it is weighted from. Students at a school, grade "
            "and band with no untutored student"
            + ("" if scope().role == "analyst" else f" (or fewer than {min_cell()})")
            + " cannot be matched and are left out. **Limits:** tutored students were chosen for a reason (a teacher's "
            "referral, a low score, a family's request); matching on school, grade and baseline band allows for what "
            "the records hold, not for why a student was chosen, so read a difference as a strong hint, not a proof."
        )
        chart_footer(
            matched, metric, name=f"matched-{metric['metric_id']}", who=f"{scope_note} · against untutored students, matched",
            students=int(matched["n"].sum()),
        )


st.subheader("Payments earned so far")
payments = query("payments", end=filters.end.isoformat()) if reads("payments") else None
if payments is None:
    st.info("Payments are between the district and each vendor: a school account does not see them.")
elif payments.empty:
    st.info("No contract in scope.")
else:
    payments.insert(1, "vendor", payments["vendor_id"].map(vendor_label))
    payments["pays_for"] = [
        f"{catalogue[m]['label'] if m in catalogue else m} {'≥' if catalogue.get(m, {}).get('better', 'higher') == 'higher' else '≤'} {t:g}"
        + (f" in {w}" if isinstance(w, str) and w else "")
        for m, t, w in zip(payments["payment_metric"], payments["threshold"], payments["outcome_window"])
    ]
    payments["outcome_status"] = [
        f"due {due:%b %Y}" if due > filters.end else f"counted ({due:%b %Y})" for due in payments["outcome_due"]
    ]
    # Base, total and cap belong to a contract and repeat on each of its rate-card lines.
    contracts = payments.groupby(["vendor_id", "contract_starts_on"], as_index=False, sort=False).agg(
        vendor=("vendor", "first"), contract_ends_on=("contract_ends_on", "first"), counted_until=("counted_until", "first"),
        students_served=("students_served", "first"), base_amount=("base_amount", "first"),
        outcome_amount=("outcome_amount", "sum"), amount_uncapped=("amount_uncapped", "first"), cap=("cap", "first"),
        amount_earned=("amount_earned", "first"), cap_applied=("cap_applied", "first"),
    )
    if contracts["vendor_id"].duplicated().any():
        contracts["vendor"] = contracts["vendor"] + contracts["contract_starts_on"].map(lambda d: f" (from {d:%b %Y})")
    capped = contracts[contracts["cap_applied"]]
    st.markdown(
        f"**${contracts['amount_earned'].sum():,.0f}** earned across {len(contracts)} contract(s) up to "
        f"{contracts['counted_until'].max():%b %-d, %Y}"
        + (f"; the cap binds for **{', '.join(capped['vendor'])}**." if not capped.empty else "; no cap binds.")
    )
    st.plotly_chart(charts.payments_figure(contracts), width="stretch", key="payments")
    # Which of it is certified: the statements closed and signed off up to the end of the dates.
    closed = statements.standing(app_db(), scope(), until=filters.end)
    split = statements.standing_by_vendor(closed, contracts.groupby("vendor_id")["amount_earned"].sum())
    st.markdown(statements.standing_text(closed[closed["vendor_id"].isin(split.index)], split["earned"].sum()))
    st.dataframe(
        split.reset_index().assign(vendor=lambda f: f["vendor_id"].map(vendor_label)), hide_index=True, width="stretch",
        key="payments-standing", column_order=["vendor", "earned", "certified", "awaiting_signoff", "provisional"],
        column_config={
            "vendor": st.column_config.TextColumn("Vendor", width="medium"),
            "earned": st.column_config.NumberColumn("Earned", format="dollar"),
            "certified": st.column_config.NumberColumn(
                "Certified", format="dollar", help="Months closed and signed off by the district and the vendor: never changes"),
            "awaiting_signoff": st.column_config.NumberColumn(
                "Closed, awaiting sign-off", format="dollar", help="Months closed (frozen) that one party has yet to sign off"),
            "provisional": st.column_config.NumberColumn(
                "Provisional", format="dollar",
                help="From months not closed, and what later data or new terms change in closed months (carried into "
                     "the next open month): moves when data arrives"),
        },
    )
    st.dataframe(
        payments, hide_index=True, width="stretch",
        column_order=["vendor", "pays_for", "outcome_status", "students_served", "students_eligible", "students_successful",
                      "base_amount", "outcome_amount", "amount_uncapped", "cap", "amount_earned", "cap_applied"],
        column_config={
            "vendor": st.column_config.TextColumn("Vendor", width="medium"),
            "pays_for": st.column_config.TextColumn("Pays for", help="The payment outcome and the threshold a student must reach"),
            "outcome_status": st.column_config.TextColumn(
                "Outcome", help="An outcome is paid in the month after the last window it needs closes; until then nothing is earned for it"
            ),
            "students_served": st.column_config.NumberColumn("Served", format="localized"),
            "students_eligible": st.column_config.NumberColumn("Eligible", format="localized", help="Served students with an outcome to judge"),
            "students_successful": st.column_config.NumberColumn("Successful", format="localized", help="Eligible students who reached the threshold"),
            "base_amount": st.column_config.NumberColumn("Base", format="$%,d"),
            "outcome_amount": st.column_config.NumberColumn("Outcome", format="$%,d"),
            "amount_uncapped": st.column_config.NumberColumn("Before cap", format="$%,d"),
            "cap": st.column_config.NumberColumn("Cap", format="$%,d"),
            "amount_earned": st.column_config.NumberColumn("Earned", format="$%,d"),
            "cap_applied": st.column_config.CheckboxColumn("Cap binds"),
        },
    )
    st.caption(
        "Per contract and rate-card line, under its terms: a base amount per student served (the contract's served "
        "rule), plus an outcome amount per eligible student who reached the threshold in the line's window, after "
        "the per-student and contract caps. Counted as due up to the end of the selected dates: an outcome whose "
        "window has not closed has earned nothing yet. The student filters do not apply to payments."
    )
    if scope().role != "facilitator":
        st.page_link("app_pages/payments.py", label="Each student's standing, month by month: Payments", icon=":material/payments:")
    chart_footer(
        payments.drop(columns=["vendor"]), None, name="payments",
        who=f"Every contract in scope, counted up to the end of the selected dates ({filters.end:%b %-d, %Y}) or of the contract",
        students=int(contracts["students_served"].sum()),
    )

st.subheader("Data timeliness")
quality = query("quality", start=filters.start.isoformat(), end=filters.end.isoformat()) if reads("quality") else None
submitted = None if quality is None else quality[quality["vendor_id"].notna()]
if submitted is None:
    st.info("Vendors' submissions are between the district and each vendor: a school account does not see them.")
elif submitted.empty:
    st.info("No vendor submissions were due in these dates.")
else:
    counts = pd.crosstab(submitted["vendor_id"], submitted["status"])
    statuses = [s for s in charts.STATUS_STYLE if s in counts]
    timeliness = counts[statuses].div(counts.sum(axis=1), axis=0)
    timeliness = pd.concat([timeliness, counts[statuses].add_suffix("_count")], axis=1).reset_index()
    timeliness["expected"] = counts.sum(axis=1).to_numpy()
    timeliness.insert(1, "vendor", timeliness["vendor_id"].map(vendor_label))
    st.plotly_chart(charts.status_shares_figure(timeliness, category="vendor"), width="stretch", key="timeliness")
    st.caption(
        "Share of each vendor's expected submissions (weekly session logs and exit tickets, rosters) that came on time, "
        "late, were rejected and never replaced, or never came. A corrected file does not make a week late."
    )
    chart_footer(
        timeliness, None, name="timeliness",
        who=f"Vendor submissions for periods from {filters.start:%b %-d, %Y} to {filters.end:%b %-d, %Y}, as due by today",
    )
    st.page_link("app_pages/data_quality.py", label="Every submission, rejected rows and coverage: Data quality", icon=":material/fact_check:")

options = list(vendors["vendor_id"])
if not options:
    st.stop()  # the profile follows the metric chosen above, which has no data
if own_only:
    st.header("Your profile")
    choice = options[0]
else:
    st.header("Vendor profile")
    keep_vendor_choice("profile", vendor_label)
    choice = st.selectbox(
        "Vendor", options, index=0 if len(options) == 1 else None, format_func=vendor_label, key="profile",
        bind="query-params", placeholder="Choose a vendor, or click one in the table above",
    )
    if choice is None:
        st.stop()

st.subheader(vendor_label(choice))


def open_with_vendor(page: str) -> None:
    # A page link's query parameters do not move a filter this session already holds.
    narrow_filters(vendor_id=choice)
    st.session_state["vendors-open"] = page


own = {**filters.params(), "vendor_id": [choice]}


def against_peers(metric_id: str, row: dict) -> dict:
    """A vendor's latest month (or assessment window) beside all other vendors' in the same one:
    the benchmark comes by period, so the tile does too."""
    grain = "month" if row["frequency"] == "weekly" else "window"
    mine = query("series", metric=metric_id, grain=grain, **filters.params()).dropna(subset=["value"])
    peers = query("peers", metric=metric_id, grain=grain, **filters.params()).dropna(subset=["value"])
    both = mine.merge(peers[["period_start", "value"]], on="period_start", suffixes=("", "_peers"))
    if both.empty:
        latest = mine.iloc[-1] if not mine.empty else None
        return {"period_start": None if latest is None else latest["period_start"],
                "value": math.nan if latest is None else latest["value"], "all_other_vendors": math.nan,
                "students": 0 if latest is None else int(latest["n"])}
    latest = both.iloc[-1]
    return {"period_start": latest["period_start"], "value": latest["value"], "all_other_vendors": latest["value_peers"],
            "students": int(latest["n"])}


# Key metrics: the payment and process outcomes, each against all vendors shown (a vendor: its
# latest period against all other vendors pooled).
rows = []
for metric_id, row in catalogue.items():
    if row["kind"] == "context":
        continue
    if own_only:
        found = against_peers(metric_id, row)
        rows.append({"metric_id": metric_id, "label": row["label"], **found,
                     "difference": found["value"] - found["all_other_vendors"], "target": row["target"]})
        continue
    every = query("vendors", metric=metric_id, **filters.params())
    every = every[every["vendor_id"] != NOT_TUTORED]
    mine = every[every["vendor_id"] == choice]
    value = mine["value"].iloc[0] if not mine.empty else math.nan
    pooled = every.dropna(subset=["numerator"])
    others = (pooled["numerator"].sum() / pooled["denominator"].sum()
              if row["aggregation"] != "median" and len(pooled) > 1 else math.nan)
    rows.append({"metric_id": metric_id, "label": row["label"], "value": value, "all_vendors": others,
                 "difference": value - others, "target": row["target"],
                 "students": int(mine["n"].iloc[0]) if not mine.empty and pd.notna(mine["n"].iloc[0]) else 0})
key_metrics = pd.DataFrame(rows)


def compared_with(row: dict) -> str:
    if not own_only:
        return "vs all vendors"
    when = row["period_start"]
    period = "" if when is None or pd.isna(when) else (
        f" in {when:%b %Y}" if catalogue[row["metric_id"]]["frequency"] == "weekly" else f", window of {when:%b %Y}"
    )
    return f"vs all other vendors{period}"


tiles = st.columns(5)
for i, row in enumerate(key_metrics.to_dict(orient="records")):
    entry = catalogue[row["metric_id"]]
    # Scores of 1 to 5 move in hundredths; one decimal would show most differences as 0.0.
    small = not charts.is_share(entry) and entry["unit"].startswith("score")
    delta = None if pd.isna(row["difference"]) else f"{row['difference']:+.2f}" if small else charts.format_change(row["difference"], entry)
    level = delta is not None and delta.lstrip("+-").rstrip(" pts") in ("0.0", "0.00", "0")
    tiles[i % 5].metric(
        row["label"], charts.format_value(row["value"], entry), delta=delta.lstrip("+-") if level else delta,
        delta_color="off" if level else "normal" if entry["better"] == "higher" else "inverse",
        delta_arrow="off" if level else "auto",
        delta_description=compared_with(row) if delta else "all other vendors: too few to show" if own_only else "median: no pooled value",
        help=f"{entry['definition']} Target {charts.format_value(row['target'], entry)}.", border=True, height=140,
    )
if own_only:
    st.caption(
        "Your latest month of each weekly metric (latest assessment window of the others) against all other vendors' "
        f"students pooled in the same period, shown where at least two other vendors and {min_cell()} students stand behind it."
    )
chart_footer(key_metrics, None, name=f"profile-{choice}-metrics", who=f"{vendor_label(choice)} · {filters.describe()}")

st.markdown(f"**{metric['label']} over time**")
grain = "week" if metric["frequency"] == "weekly" else "window"
series = query("series", metric=metric["metric_id"], grain=grain, **own)
if series["value"].notna().sum() < 2:
    st.info("Too few periods to chart.")
else:
    if own_only:
        benchmark = [("All other vendors", query("peers", metric=metric["metric_id"], grain=grain, **filters.params()))]
    else:
        # Every vendor's students: the district's untutored students are no vendor's.
        everyone = query("series", metric=metric["metric_id"], grain=grain, **{**filters.params(), "vendor_id": options})
        benchmark = [("All vendors", everyone)] if len(options) > 1 else []
    charted = chart(series, metric)
    trend = charts.spc_figure(charted, metric, overlays=benchmark, height=380, min_cell=min_cell())
    st.plotly_chart(trend, width="stretch", key="profile-trend")
    st.button(
        "Open in Trends" if own_only else f"Open in Trends with {vendor_label(choice)} as the filter",
        icon=":material/show_chart:", type="tertiary",
        on_click=open_with_vendor, args=("app_pages/trends.py",), key="to-trends",
    )
    chart_footer(
        charted.assign(**series[["small_cell", "suppressed"]].reset_index(drop=True)), metric, name=f"profile-{choice}-trend", who=f"{metric['label']} by {grain} · {vendor_label(choice)} · {filters.describe()}",
        students=None if series["n"].isna().all() else int(series["n"].max()),
    )

st.markdown(f"**{'Your' if own_only else 'Its'} largest gaps in {charts.in_sentence(metric['label'])}**")
if metric["aggregation"] == "median":
    st.info("SGP is a median: gaps with intervals are on *Met growth target*.")
else:
    group_names = {d: name for d, (_, name) in {**MULTI, **YES_NO}.items()}
    school_names = filters.labels.get("school_id", {})

    def group_label(dimension: str, value) -> str:
        if dimension in YES_NO:
            return "yes" if value else "no"
        if dimension == "school_id":
            return school_names.get(value, value)
        return f"grade {value}" if dimension == "grade" else str(value)

    mine = per_student[per_student["vendor_id"] == choice] if per_student is not None else None
    found = []
    for dimension in ("baseline_band", "grade", "school_id", "race_ethnicity", "gender", "econ_disadvantaged",
                      "english_learner", "special_education"):
        cells = query("breakdown", metric=metric["metric_id"], by=dimension, **own)
        cells = cells[cells["value"].notna()]
        if len(cells) < 2:
            continue
        group_kind, groups = stats_inputs(cells, [dimension], students=mine)
        measures = ["k", "n"] if group_kind == "proportion" else ["mean", "sd", "n"]
        gaps = disparity.gaps(
            groups.rename(columns={dimension: "group"})[["group", *measures]], kind=group_kind,
            min_cell=warehouse().settings.min_cell_size,
        )
        reference = gaps.loc[gaps["is_reference"], "group"].iloc[0]
        gaps = gaps[~gaps["is_reference"] & gaps["difference"].notna()]
        if gaps.empty:
            continue
        # The largest gap is the one surely largest: the end of its interval nearest to no gap
        # (0 where it spans none), not the raw difference, which a group of a dozen students wins.
        gaps = gaps.assign(at_least=np.where(gaps["diff_low"] * gaps["diff_high"] > 0, np.minimum(gaps["diff_low"].abs(), gaps["diff_high"].abs()), 0.0))
        widest = gaps.sort_values(["at_least", "difference"], key=abs, ascending=False).iloc[0]
        found.append({
            "gap": f"{group_names[dimension]}: {group_label(dimension, widest['group'])} vs {group_label(dimension, reference)}",
            "dimension": dimension, "group": widest["group"], "reference": reference,
            "value": widest["difference"], "low": widest["diff_low"], "high": widest["diff_high"], "n": widest["n"],
            "at_least": widest["at_least"],
        })
    if not found:
        st.info("No group is large enough to compare.")
    else:
        gaps = pd.DataFrame(found).sort_values(["at_least", "value"], key=abs, ascending=False).reset_index(drop=True)
        gap_metric = {**metric, "label": f"Gap in {charts.in_sentence(metric['label'])}", "target": None}
        st.plotly_chart(
            charts.interval_figure(gaps, category="gap", metric=gap_metric, reference=0, reference_label="no gap"),
            width="stretch", key="profile-gaps",
        )
        st.caption(
            "For each way of grouping this vendor's students, the group whose gap to the largest group (the reference) is "
            "surely largest, i.e. whose 95% interval ends furthest from no gap. Intervals are built as in the "
            "comparison above, students as the unit. Groups under the small-cell size are left out."
        )
        st.button(
            "All groups on Disparities" if own_only else f"All groups on Disparities with {vendor_label(choice)} as the filter",
            icon=":material/balance:", type="tertiary",
            on_click=open_with_vendor, args=("app_pages/disparities.py",), key="to-disparities",
        )
        chart_footer(gaps, metric, name=f"profile-{choice}-gaps", who=f"{vendor_label(choice)} · {filters.describe()}")
