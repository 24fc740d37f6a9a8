"""Overview: where we stand on every outcome, what the contracts have earned, what has changed
since the last meeting, and whether the data is in."""

from datetime import date, timedelta
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from ciboard import charts, ci_ui, meeting_calendar, signal_store, signals, statements
from ciboard.access import Scope
from ciboard.calendar import window_of
from ciboard.dashboard import (
    being_prepared, chart_footer, disguised, freeze, metrics, min_cell, query, reads, scope, vendor_ids, version, warehouse,
)
from ciboard.filters import MULTI, YES_NO, narrow_filters, trend_params
from ciboard.session import app_db
from ciboard.stats import spc

# Making Data Count's icons, as words in their colours: blue is improvement, orange concern,
# grey common cause, purple a special cause where no direction is better.
VARIATION = {
    "common_cause": ("gray", "●", "Common cause"),
    "improvement_high": ("blue", "▲", "Improvement (high)"),
    "improvement_low": ("blue", "▼", "Improvement (low)"),
    "concern_high": ("orange", "▲", "Concern (high)"),
    "concern_low": ("orange", "▼", "Concern (low)"),
    "neutral_high": ("violet", "▲", "Special cause (high)"),
    "neutral_low": ("violet", "▼", "Special cause (low)"),
}
ASSURANCE = {
    "consistent_pass": ("blue", "✔", "Consistently passing"),
    "consistent_fail": ("orange", "✘", "Consistently failing"),
    "hit_or_miss": ("gray", "◐", "Hit or miss"),
}
ICONS = {words: (colour, symbol, words) for colour, symbol, words in (*VARIATION.values(), *ASSURANCE.values())}
TOO_FEW = "Too few points to chart"
SIGNALS_SHOWN = 15
NEXT_MEETINGS_SHOWN = 4
VENDOR_KINDS = ("sessions", "survey")  # the weekly files each vendor submits

filters = st.session_state["filters"]
# A signal's Trend button (below) narrows the filter bar in its callback; the switch happens here,
# before anything is computed again for the narrowed filters.
if "overview-trend" in st.session_state:
    # Only the metric: the filter bar writes its own values back into the address (and
    # switch_page refuses to set or clear parameters bound to widgets).
    st.switch_page("app_pages/trends.py", query_params={"metric": st.session_state.pop("overview-trend")})
who = filters.describe()
catalogue = metrics()
vendor_names = filters.labels.get("vendor_id", {})
chosen_vendors = filters.chosen.get("vendor_id") or []
# A vendor reads its own numbers beside all other vendors pooled, never beside one of them.
benchmarked = scope().role == "vendor"


def badge(words: str | None) -> str:
    if not isinstance(words, str):  # no target, so no assurance
        return ""
    colour, symbol, words = ICONS.get(words, ("gray", "", words))
    return f":{colour}-badge[{symbol} {words}]".replace("[ ", "[")


def period_name(day, grain: str) -> str:
    return f"{window_of(day, warehouse().settings)} window" if grain == "window" else f"week of {day:%b %-d}"


def vendor_name(vendor_id: str) -> str:
    return filters.label("vendor_id", vendor_id)


st.title("Overview")
st.caption(
    "Where we stand: each outcome's latest value against its target, and whether it moved beyond the "
    "variation to expect (statistical process control, shown as NHS *Making Data Count* icons); what the "
    "contracts have earned; the signals since the last meeting; and whether the data is in."
)
st.markdown(f"#### :material/groups: For {who}")

# --- Where each outcome stands ---------------------------------------------------------------
# Each outcome at its own grain: weekly metrics by week, assessment metrics by window.
outcomes = {m: row for m, row in catalogue.items() if row["kind"] in ("payment outcome", "process outcome")}
rows, sparklines = [], {}
events = query("events", start=filters.start.isoformat(), end=filters.end.isoformat())
held = {"vendors": chosen_vendors or None, "schools": filters.chosen.get("school_id") or None}
for metric_id, metric in outcomes.items():
    grain = "week" if metric["frequency"] == "weekly" else "window"
    series = query("series", metric=metric_id, grain=grain, **filters.params())
    present = series.dropna(subset=["value"])
    target = None if pd.isna(metric["target"]) else float(metric["target"])
    row = {
        "kind": metric["kind"], "metric_id": metric_id, "metric": metric["label"], "unit": metric["unit"],
        "better": metric["better"], "grain": grain, "period_start": None, "value": None, "target": target,
        "previous_period": None, "change_from_previous": None, "baseline_period": None, "change_from_baseline": None,
        "variation": None, "assurance": None, "students": None, "all_other_vendors": None,
        "hidden": not series.empty and bool(series["suppressed"].all()),
    }
    if not present.empty:
        latest, first = present.iloc[-1], present.iloc[0]
        row.update(period_start=latest["period_start"], value=latest["value"], students=int(latest["n"]), variation=TOO_FEW)
        if len(present) > 1:
            previous = present.iloc[-2]
            row.update(
                previous_period=previous["period_start"], change_from_previous=latest["value"] - previous["value"],
                baseline_period=first["period_start"], change_from_baseline=latest["value"] - first["value"],
            )
        if grain == "week" and len(present) >= signals.MIN_POINTS:
            charted = signals.chart(series, metric, closed=signals.closures(events, metric_id, **held))
            icons = spc.summary(charted, direction=signals.DIRECTION[metric["better"]], target=target)
            row["variation"] = VARIATION[icons["variation"]][2]
            row["assurance"] = ASSURANCE[icons["assurance"]][2] if icons["assurance"] else None
        if benchmarked:
            peers = query("peers", metric=metric_id, grain=grain, **filters.params())
            same = peers[(peers["period_start"] == latest["period_start"]) & peers["value"].notna()]
            row["all_other_vendors"] = same["value"].iloc[0] if not same.empty else None
    rows.append(row)
    sparklines[metric_id] = list(present["value"])
table = pd.DataFrame(rows)


def tile(row: dict) -> None:
    metric = outcomes[row["metric_id"]]
    with st.container(border=True, height="stretch"):
        # A row out of the table: an outcome without data has NaN, not None, in its number columns.
        moved = pd.notna(row["previous_period"])
        st.metric(
            metric["label"],
            charts.format_value(row["value"], metric),
            delta=charts.format_change(row["change_from_previous"], metric) if moved else None,
            delta_description=f"vs {period_name(row['previous_period'], row['grain'])}" if moved else None,
            # The SPC colour, not red/green: a change from last period alone is not a signal.
            delta_color=ICONS.get(row["variation"], ("gray",))[0],
            chart_data=sparklines[row["metric_id"]] if len(sparklines[row["metric_id"]]) > 1 else None,
            help=f"{metric['definition']}  \n{charts.better_note(metric)}",
        )
        if pd.isna(row["value"]):
            st.caption(f"Fewer than {min_cell()} students in every period: hidden." if row["hidden"] else "No data for these filters.")
            return
        st.markdown(f"{badge(row['variation'])} {badge(row['assurance'])}")
        baseline = (
            f"{charts.format_change(row['change_from_baseline'], metric)} since the {period_name(row['baseline_period'], row['grain'])}"
            if moved else "no earlier period in these dates"
        )
        peers = ""
        if benchmarked:
            peers = (
                f"  \nAll other vendors: **{charts.format_value(row['all_other_vendors'], metric)}**"
                if pd.notna(row["all_other_vendors"]) else "  \nAll other vendors: too few to show"
            )
        st.caption(
            f"**Target {charts.format_value(row['target'], metric)}** · {period_name(row['period_start'], row['grain'])} · "
            f"{int(row['students']):,} students  \n{baseline}{peers}"
        )
        st.page_link("app_pages/trends.py", label="Trend", icon=":material/show_chart:", query_params=trend_params(metric, filters))


def tiles(kind: str, per_row: int) -> None:
    shown = table[table["kind"] == kind].to_dict(orient="records")
    for start in range(0, len(shown), per_row):
        for column, row in zip(st.columns(per_row), shown[start : start + per_row]):
            with column:
                tile(row)


paid, money = st.columns(2, gap="medium")
with paid:
    st.subheader("Payment outcomes")
    tiles("payment outcome", per_row=2)

with money:
    st.subheader("Payments to date")
    counted_to = {"end": filters.end.isoformat()}
    preparing_payments = reads("payments") and being_prepared("payments", **counted_to)
    lines = query("payments", **counted_to) if reads("payments") and not preparing_payments else None
    if lines is not None and chosen_vendors:
        lines = lines[lines["vendor_id"].isin(chosen_vendors)]
    if preparing_payments:
        ci_ui.wait_for(
            lambda: not being_prepared("payments", **counted_to),
            "The payments are being prepared for this version of the data: they appear here by themselves in a moment.",
        )
    elif lines is None:
        st.info("Payments are between the district and each vendor: a school account does not see them.")
    elif lines.empty:
        st.info("No contract in scope.")
    else:
        # Served, earned and cap belong to a contract and repeat on each of its payment-outcome lines.
        contracts = lines.drop_duplicates(["vendor_id", "contract_starts_on"])
        earned = contracts["amount_earned"].sum()
        # A contract may have no cap: the share of caps is of the capped contracts' earnings.
        capped = contracts[contracts["cap"].notna()]
        cap = capped["cap"].sum()
        uncapped = len(contracts) - len(capped)
        numbers = st.columns(3)
        numbers[0].metric(
            "Earned", charts.format_money(earned),
            delta=(f"{capped['amount_earned'].sum() / cap:.0%} of {charts.format_money(cap)} in caps" if cap else "no cap")
            + (f"; {uncapped} uncapped" if uncapped and cap else ""),
            delta_color="gray", delta_arrow="off",
            help=f"${earned:,.0f} of ${cap:,.0f} in caps: a base payment per student served plus an outcome payment per "
            "successful student, capped per contract where the contract sets a cap.",
        )
        numbers[1].metric("Students served", f"{contracts['students_served'].sum():,}", help="Students who attended a session within the contract dates.")
        numbers[2].metric(
            "Students successful", f"{lines['students_successful'].sum():,}",
            help="Served students who met a payment outcome's threshold, counted once per outcome.",
        )
        st.plotly_chart(charts.payments_figure(contracts.assign(vendor=contracts["vendor_id"].map(vendor_name))), width="stretch", key="payments")
        st.caption(
            f"Counted until {contracts['counted_until'].max():%b %-d, %Y}, for "
            f"{', '.join(vendor_names.get(v, v) for v in chosen_vendors) if chosen_vendors else 'every contract in scope'}. "
            "Payments follow the contracts, so of the filters only the vendor and the end date apply."
        )
        closed = statements.standing(app_db(), scope(), until=filters.end, vendors=chosen_vendors)
        st.markdown(statements.standing_text(closed, earned))

st.subheader("Process outcomes")
tiles("process outcome", per_row=4)

with st.expander("The outcomes as a table"):
    st.dataframe(
        pd.DataFrame({
            "Outcome": table["metric"],
            "Kind": table["kind"],
            "Latest": [period_name(p, g) if pd.notna(p) else "–" for p, g in zip(table["period_start"], table["grain"])],
            "Value": [charts.format_value(v, outcomes[m]) for v, m in zip(table["value"], table["metric_id"])],
            "Target": [charts.format_value(v, outcomes[m]) for v, m in zip(table["target"], table["metric_id"])],
            "Change from previous": [charts.format_change(v, outcomes[m]) for v, m in zip(table["change_from_previous"], table["metric_id"])],
            "Change from baseline": [charts.format_change(v, outcomes[m]) for v, m in zip(table["change_from_baseline"], table["metric_id"])],
            "Variation": table["variation"],
            "Assurance": table["assurance"],
            "Students": table["students"],
        }),
        hide_index=True, width="stretch",
    )
chart_footer(table, None, name="overview-outcomes", who=f"Latest week of weekly outcomes, latest assessment window of the rest · {who}")

# --- The next meetings, and what is overdue before them -------------------------------------
today = date.today()
coming = meeting_calendar.next_meetings(app_db(), scope(), today)[:NEXT_MEETINGS_SHOWN]
if coming:
    st.subheader("Next meetings")
for upcoming in coming:
    day = "Today" if upcoming.slot.on == today else f"{upcoming.slot.on:%a %b %-d}"
    line = f"**{day}** {upcoming.group.schedule.at:%H:%M} · {upcoming.group.name}"
    if overdue := upcoming.overdue:
        owed = ", ".join(f"{o.commitment.owner} (due {o.commitment.due_on:%b %-d})" for o in overdue)
        line += f" · :orange[{len(overdue)} overdue commitment{'s' * (len(overdue) > 1)}]: {owed}"
    if waiting := len(upcoming.due) - len(upcoming.overdue):
        line += f" · {waiting} more due before it"
    st.markdown(ci_ui.say(line))
if coming:
    st.page_link("app_pages/commitments.py", label="Commitments", icon=":material/task_alt:")

# --- What changed since the last meeting -----------------------------------------------------
st.subheader("What changed since the last meeting")
weekly = table[(table["grain"] == "week") & table["period_start"].notna()]
data_end = weekly["period_start"].max() if not weekly.empty else filters.end
picker, chooser, _ = st.columns([1, 2, 1])
since = picker.date_input(
    "Last meeting", value=max(filters.start, min(filters.end, data_end - timedelta(days=28))),
    min_value=filters.start, max_value=filters.end, key="since", bind="query-params", format="YYYY-MM-DD",
    help="Signals in the weeks from this date on: a point beyond the process limits, 7 in a row on one side of the "
    "centre or rising or falling, or 2 of 3 near a limit; on every weekly metric for everyone, each vendor, each "
    "student group and each group within each vendor.",
)


@st.cache_data(show_spinner="Charting every weekly metric for every vendor and student group…", max_entries=64)
def find_signals(version: str, scope_text: str, params: tuple, since, dimensions: tuple[str, ...]) -> pd.DataFrame:
    # Straight from the query layer (many views per call), so vendor ids go in and come out as such.
    # Charted here, a set the server would have prepared is kept for the next reader of the version.
    chosen = dict(params)
    return signal_store.signals_of(
        warehouse(), Scope.parse(scope_text), start=chosen.pop("start"), end=chosen.pop("end"), since=since,
        dimensions=dimensions, filters=chosen,
    )


params = filters.params()
if "vendor_id" in params:
    params["vendor_id"] = vendor_ids(params["vendor_id"])
# A dimension the filters pin to one value has one group, which is everyone.
dimensions = tuple(d for d in signals.GROUP_DIMENSIONS if len(filters.chosen.get(d, [])) != 1)
asked = {"start": params["start"], "end": params["end"], "filters": {k: v for k, v in params.items() if k not in ("start", "end")}}
# The signals this version's server prepared in the background, where they answer these filters.
found = signal_store.stored(warehouse(), scope(), since=since, dimensions=dimensions, **asked)
preparing = found is None and signal_store.being_prepared(warehouse(), scope(), **asked)
if preparing:
    found = pd.DataFrame(columns=signals.SIGNAL_COLUMNS)
elif found is None:
    found = find_signals(version(), str(scope()), freeze(params), since, dimensions)
# Lists of weeks, rules and folded slices are no text to disguise: the note names no vendor.
listed = ["weeks", "rule_set", "folded"]
found = disguised(found.drop(columns=listed)).join(found[listed])
weekly_metrics = [m for m, row in catalogue.items() if row["frequency"] == "weekly"]
only = chooser.multiselect(
    "Metrics", weekly_metrics, format_func=lambda m: catalogue[m]["label"], placeholder="Every weekly metric",
    key="signal_metrics", bind="query-params",
)
if only:
    found = found[found["metric_id"].isin(only)].reset_index(drop=True)
dimension_names = {dimension: name for dimension, (_, name) in {**MULTI, **YES_NO}.items()}


def slice_name(signal: dict) -> str:
    parts = [vendor_name(signal["vendor_id"])] if pd.notna(signal["vendor_id"]) else []
    if pd.notna(signal["dimension"]):
        parts.append(group_name(signal["dimension"], signal["group"]))
    return " · ".join(parts) or filters.everyone[0].upper() + filters.everyone[1:]


def group_name(dimension: str, group) -> str:
    value = str(group)
    value = value.lower() if value in ("True", "False") else value
    return f"{dimension_names[dimension]}: {filters.labels.get(dimension, {}).get(value, value)}"


def folded_note(signal: dict) -> str:
    """The vendors and groups whose signals only repeat this one: vendors counted (their ids
    are not disguised in the list), groups named by group alone."""
    folded = signal.get("folded")
    if not isinstance(folded, list) or not folded:
        return ""
    vendors = sum(1 for g in folded if g["dimension"] is None)
    names = [group_name(g["dimension"], g["group"]) for g in folded if g["dimension"] is not None]
    parts = [f"+{vendors} vendor{'s' if vendors > 1 else ''}"] if vendors else []
    if names:
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        parts.append(f"+{len(names)} group{'s' if len(names) > 1 else ''} ({shown})")
    return ", ".join(parts)


def signal_kind(signal: dict) -> str:
    if signal["point_type"].startswith("special_cause_neutral_"):
        return VARIATION[signal["point_type"].removeprefix("special_cause_")][2]
    kind = {"special_cause_concern": "concern", "special_cause_improvement": "improvement"}[signal["point_type"]]
    return VARIATION[f"{kind}_{'high' if signal['value'] > signal['center'] else 'low'}"][2]


def slice_of(signal: dict) -> dict:
    """The chart that signalled, as filters: its vendor and its group."""
    return {"vendor_id": signal["vendor_id"], **({signal["dimension"]: signal["group"]} if pd.notna(signal["dimension"]) else {})}


def open_trend(signal: dict) -> None:
    narrow_filters(**slice_of(signal))
    st.session_state["overview-trend"] = signal["label"]


charted_weeks = max((len(sparklines[m]) for m, row in outcomes.items() if row["frequency"] == "weekly"), default=0)
if preparing:
    ci_ui.wait_for(
        lambda: not signal_store.being_prepared(warehouse(), scope(), **asked),
        "The signals are being prepared for this version of the data: they appear here by themselves in a moment. "
        "Everything else on this page is up to date.",
    )
elif found.empty and charted_weeks < signals.MIN_POINTS:
    weeks = "No weekly data" if charted_weeks == 0 else f"Only {charted_weeks} week{'s' if charted_weeks > 1 else ''} of data"
    st.info(
        f"{weeks} in these dates: control limits need {signals.MIN_POINTS} weeks, so nothing can signal yet.",
        icon=":material/hourglass_empty:",
    )
elif found.empty:
    st.success(f"No special-cause signal since {since:%b %-d, %Y}: every chart shows common-cause variation.", icon=":material/check:")
else:
    concerns = int((found["point_type"] == "special_cause_concern").sum())
    st.markdown(
        f"**{len(found)} signals** since {since:%b %-d, %Y}: **{concerns} concerns**, then {len(found) - concerns} "
        "improvements and other changes; the whole district's and vendors' first, then one group's, each by how "
        "far past the centre line its latest signal lies. A group whose signal only repeats its vendor's or the "
        "district's (the same rules, weeks and side) is folded under it as *+N groups*. Weeks of a break or "
        "closure never signal."
    )
    records = found.to_dict(orient="records")
    widths = [1.5, 1.8, 2.8, 0.8, 1.9, 1.9, 0.9, 1.1]
    for column, name in zip(st.columns(widths), ["Signal", "Metric", "Slice", "Week", "Value vs centre", "Rules", "Students"]):
        column.markdown(f"**{name}**")
    for i, signal in enumerate(records[:SIGNALS_SHOWN]):
        metric = catalogue[signal["metric_id"]]
        cells = st.columns(widths, vertical_alignment="center")
        cells[0].markdown(badge(signal_kind(signal)))
        cells[1].markdown(signal["label"])
        note = folded_note(signal)
        cells[2].markdown(slice_name(signal) + (f"  \n:gray[:small[{note}]]" if note else ""))
        cells[3].markdown(f"{signal['period_start']:%b %-d}")
        cells[4].markdown(
            f"**{charts.format_value(signal['value'], metric)}** vs {charts.format_value(signal['center'], metric)}  \n"
            f":gray[:small[limits {charts.format_value(signal['lower'], metric)} – {charts.format_value(signal['upper'], metric)}]]"
        )
        cells[5].markdown(signal["rules"])
        cells[6].markdown(f"{signal['n']:,}")
        # A button, not a page link: the filter bar keeps its own values over a link's.
        cells[7].button("Trend", key=f"trend-{i}", icon=":material/show_chart:", on_click=open_trend, args=(signal,))
    if len(records) > SIGNALS_SHOWN:
        rest = records[SIGNALS_SHOWN:]
        with st.expander(f"The other {len(rest)} signals"):
            st.dataframe(
                pd.DataFrame({
                    "Signal": [signal_kind(s) for s in rest],
                    "Metric": [s["label"] for s in rest],
                    "Slice": [slice_name(s) for s in rest],
                    "Also in": [folded_note(s) for s in rest],
                    "Week": [s["period_start"] for s in rest],
                    "Value": [charts.format_value(s["value"], catalogue[s["metric_id"]]) for s in rest],
                    "Centre": [charts.format_value(s["center"], catalogue[s["metric_id"]]) for s in rest],
                    "Rules": [s["rules"] for s in rest],
                    "Students": [s["n"] for s in rest],
                    # Opens a new tab, whose filters come from the link; relative, so it holds under any base path.
                    "Trend": ["trends?" + urlencode(trend_params(catalogue[s["metric_id"]], filters, **slice_of(s)), doseq=True) for s in rest],
                }),
                hide_index=True, width="stretch",
                column_config={"Trend": st.column_config.LinkColumn("Trend", display_text="Open trend")},
            )
    chart_footer(
        found.drop(columns=["weeks", "side", "rule_set"]).assign(folded=found["folded"].map(len)), None, name="overview-signals",
        who=f"Signals since {since:%b %-d, %Y} · {who}",
    )

# --- Is the data in? -------------------------------------------------------------------------
st.subheader("Data freshness")
if not reads("quality"):
    st.info("Vendors' submissions are between the district and each vendor: a school account does not see them.")
else:
    quality = query("quality", start=filters.start.isoformat(), end=filters.end.isoformat())
    submitted = quality[quality["vendor_id"].notna() & quality["kind"].isin(VENDOR_KINDS)]
    if chosen_vendors:
        submitted = submitted[submitted["vendor_id"].isin(chosen_vendors)]
    freshness = (
        submitted[submitted["received_at"].notna()]
        .pivot_table(index="vendor_id", columns="kind", values="period_start", aggfunc="max")
        .reindex(columns=list(VENDOR_KINDS))
        .join(pd.crosstab(submitted["vendor_id"], submitted["status"]).reindex(columns=["late", "missing", "rejected"], fill_value=0), how="outer")
        .fillna({"late": 0, "missing": 0, "rejected": 0})
        .reset_index()
    )
    freshness.insert(1, "vendor", freshness["vendor_id"].map(vendor_name))
    district_files = quality[quality["vendor_id"].isna() & quality["received_at"].notna()].groupby("kind")["period_start"].max()
    table_side, totals = st.columns([3, 1], gap="medium")
    with table_side:
        st.dataframe(
            freshness.drop(columns="vendor_id"),
            hide_index=True, width="stretch",
            column_config={
                "vendor": st.column_config.TextColumn("Vendor"),
                "sessions": st.column_config.DateColumn("Sessions through", format="MMM D, YYYY", help="The latest week of sessions received"),
                "survey": st.column_config.DateColumn("Surveys through", format="MMM D, YYYY", help="The latest week of surveys received"),
                "late": st.column_config.NumberColumn("Late", format="%d", help="Weekly files received after their due date"),
                "missing": st.column_config.NumberColumn("Missing", format="%d", help="Weekly files past due and never received"),
                "rejected": st.column_config.NumberColumn("Rejected", format="%d", help="Weekly files past due whose only upload was rejected"),
            },
        )
        st.caption(
            f"Weekly vendor files due between {filters.start:%b %-d, %Y} and {filters.end:%b %-d, %Y}. District files: "
            + (", ".join(f"{kind.replace('_', ' ')} through {day:%b %-d, %Y}" for kind, day in district_files.items()) or "none yet")
            + "."
        )
    with totals:
        st.metric("Late", f"{int(freshness['late'].sum()):,}", help="Weekly files received after their due date.")
        st.metric("Missing or rejected", f"{int(freshness['missing'].sum() + freshness['rejected'].sum()):,}", help="Weekly files past due with no accepted file.")
        st.page_link("app_pages/data_quality.py", label="Data quality", icon=":material/fact_check:")
