"""Plotly figures readable when screen-shared: large type, colour-blind-safe colours, the
better direction and the target always marked, and events on the time axis.

SPC colours follow NHS England's Making Data Count: blue for special-cause improvement,
orange for concern, grey for common cause, purple where no direction is better.
"""

import math
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Okabe & Ito (2008), distinguishable with every common colour-vision deficiency.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
POINT_COLOURS = {
    "common_cause": "#7B7D7D",
    "special_cause_improvement": "#1F77B4",
    "special_cause_concern": "#F28E2B",
    "special_cause_neutral_high": "#8E44AD",
    "special_cause_neutral_low": "#8E44AD",
}
POINT_NAMES = {
    "common_cause": "Common cause",
    "special_cause_improvement": "Improvement",
    "special_cause_concern": "Concern",
    "special_cause_neutral_high": "Special cause (high)",
    "special_cause_neutral_low": "Special cause (low)",
}
TARGET_COLOUR = "#009E73"
# A benchmark (all vendors, or all other vendors pooled) looks the same on every chart, and
# never takes a colour the points use for improvement or concern; other comparison lines
# (last year) are sky blue.
BENCHMARKS = ("All vendors", "All other vendors")
BENCHMARK_LINE = dict(color="#222222", width=2.5, dash="longdash")
COMPARISON_LINE = dict(color="#56B4E9", width=2)
SHUT_COLOUR = "#D0D0D0"
SHUT_NAME = "Break or closure: not compared"
SHUT_TEXT = "Break or closure: left out of the limits and the rules"
FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=16, color="#262730")
# On a screen shared in a meeting (presentation mode; ciboard.session sets it for each page run)
# no chart text is smaller than this, in pixels, and no chart taller than a 720-pixel screen
# leaves room for under the page's title and controls.
SHARED_SCREEN = ContextVar("shared_screen", default=False)
SHARED_SCREEN_FONT = 18
SHARED_SCREEN_HEIGHT = 350
EVENT_BANDS = ("break", "closure")


def is_share(metric: Mapping[str, Any]) -> bool:
    return metric["aggregation"] in ("rate", "proportion")


WHOLE_UNITS = ("minutes", "scale score points", "percentile (1-99)")


def tick_format(metric: Mapping[str, Any]) -> str:
    """An axis's tick and hover format: one more digit than the values are read in, trimmed when
    it is zero (d3's "~"), so a narrow range never labels two ticks alike (80%, 80.5%, 81%)."""
    return ".1~%" if is_share(metric) else ",.1~f" if metric["unit"] in WHOLE_UNITS else ",.2~f"


def format_value(value: float | None, metric: Mapping[str, Any]) -> str:
    if value is None or pd.isna(value):
        return "–"
    if is_share(metric):
        return f"{_unsigned_zero(value * 100, 1):.1f}%"
    if metric["aggregation"] == "median" or metric["unit"] in WHOLE_UNITS:
        return f"{_unsigned_zero(value, 0):,.0f}"
    return f"{_unsigned_zero(value, 2):,.2f}"


def in_sentence(label: str) -> str:
    """A metric's or group's label inside a sentence: 'Tutoring attendance rate' -> 'tutoring
    attendance rate', while 'SGP', 'English learner' and 'Student identity (SEL)' keep their
    capitals where they are names."""
    if label[1:2].isupper():
        return label
    first, _, rest = label.partition(" ")
    return label if first == "English" else label[0].lower() + label[1:]


def group_value(value: Any) -> str:
    """A student group's value as text: a yes/no group's "yes" or "no", never True or False
    (signals and gaps carry them as text, "True", once stored)."""
    text = str(value)
    return {"true": "yes", "false": "no"}.get(text.lower(), text)


def yes_no(frame: pd.DataFrame) -> pd.DataFrame:
    """A table as a person reads it in a download or an export: each yes/no column says Yes
    and No, as the pages do, never Python's True and False. A blank stays blank."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        known = values.dropna()
        if pd.api.types.is_bool_dtype(values) or (
            values.dtype == object and len(known) and known.map(lambda v: isinstance(v, (bool, np.bool_))).all()
        ):
            frame[column] = values.map(lambda v: v if pd.isna(v) else "Yes" if v else "No").astype(object)
    return frame


def _unsigned_zero(value: float, digits: int) -> float:
    """The value rounded as it will be written, with -0 made 0: a change that rounds to nothing
    is written without a sign."""
    return round(value, digits) + 0.0


def format_money(amount: float) -> str:
    """$2.35M, $16.8k or $950: a district's contracts run from thousands to millions."""
    if abs(amount) >= 1e6:
        return f"${amount / 1e6:,.2f}M"
    return f"${amount / 1e3:,.1f}k" if abs(amount) >= 1e3 else f"${amount:,.0f}"


def format_change(change: float | None, metric: Mapping[str, Any]) -> str:
    if change is None or pd.isna(change):
        return "–"
    if is_share(metric):
        points = _unsigned_zero(change * 100, 1)
        return f"{points:+.1f} pts" if points else "0.0 pts"
    # A 1-5 score moves in hundredths; minutes, scale points and percentiles in whole units.
    digits = 1 if metric["unit"] in WHOLE_UNITS else 2
    change = _unsigned_zero(change, digits)
    return f"{change:+,.{digits}f}" if change else f"{change:,.{digits}f}"


def better_note(metric: Mapping[str, Any]) -> str:
    return "↑ higher is better" if metric["better"] == "higher" else "↓ lower is better"


def layout(figure: go.Figure, *, title: str | None = None, height: int = 440, y_format: str | None = None) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        font=FONT,
        title=dict(text=title, font=dict(size=20)) if title else None,
        height=height,
        margin=dict(l=10, r=10, t=60 if title else 30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, font=dict(size=14)),
        hoverlabel=dict(font_size=15),
    )
    if y_format:
        figure.update_yaxes(tickformat=y_format)
    if SHARED_SCREEN.get():
        for_shared_screen(figure)
    return figure


def for_shared_screen(figure: go.Figure) -> go.Figure:
    """Every text of the figure at SHARED_SCREEN_FONT or larger, and the figure no taller than
    SHARED_SCREEN_HEIGHT."""
    def lift(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("font") and isinstance(value, dict) and isinstance(value.get("size"), (int, float)):
                    value["size"] = max(value["size"], SHARED_SCREEN_FONT)
                lift(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                lift(value)

    spec = figure.to_dict()
    lift(spec)
    spec["layout"].setdefault("hoverlabel", {}).setdefault("font", {})["size"] = max(
        spec["layout"]["hoverlabel"]["font"].get("size", 0), SHARED_SCREEN_FONT)
    figure.update_layout(spec["layout"], height=min(spec["layout"].get("height") or 450, SHARED_SCREEN_HEIGHT))
    # The legend in large type runs into the notes above the plot: it goes to the foot, below the axis's title.
    figure.update_layout(legend=dict(yref="container", y=0, yanchor="bottom"), margin_b=60)
    figure.update_xaxes(tickfont_size=SHARED_SCREEN_FONT)
    figure.update_yaxes(tickfont_size=SHARED_SCREEN_FONT)
    for trace, lifted in zip(figure.data, spec["data"]):
        trace.update({k: v for k, v in lifted.items() if k.endswith("font")})
        if "colorbar" in trace:  # its ticks and title would take the theme's small type
            trace.update(colorbar=dict(tickfont_size=SHARED_SCREEN_FONT, title_font_size=SHARED_SCREEN_FONT))
    return figure


def spc_figure(
    charted: pd.DataFrame,
    metric: Mapping[str, Any],
    *,
    events: pd.DataFrame | None = None,
    overlays: list[tuple[str, pd.DataFrame]] = (),
    second_axis: tuple[str, pd.DataFrame, Mapping[str, Any]] | None = None,
    title: str | None = None,
    height: int = 460,
    min_cell: int | None = None,
) -> go.Figure:
    """An SPC chart: the values, centre line, process limits, target, and every point that
    fired a rule in its colour with the rule named on hover. With `min_cell`, a point over
    fewer students is drawn hollow and says so (hidden points have no value to draw).

    `overlays` are (name, frame with period_start and value) lines on the same axis, e.g.
    last year or the district beside a vendor; `second_axis` is (name, frame, its metric)
    on a right-hand axis, e.g. school attendance beside tutoring attendance.
    """
    figure = go.Figure()
    x = charted["period_start"]
    hover_value = [format_value(v, metric) for v in charted["value"]]
    figure.add_trace(
        go.Scatter(x=x, y=charted["upper"], name="Process limits", mode="lines", line=dict(color="#A6A6A6", dash="dash", width=1.5, shape="hv" if "n" in charted else "linear"), hoverinfo="skip")
    )
    figure.add_trace(
        go.Scatter(x=x, y=charted["lower"], name="Lower limit", mode="lines", line=dict(color="#A6A6A6", dash="dash", width=1.5, shape="hv" if "n" in charted else "linear"), showlegend=False, hoverinfo="skip")
    )
    figure.add_trace(go.Scatter(x=x, y=charted["center"], name="Centre", mode="lines", line=dict(color="#595959", width=1.5), hoverinfo="skip"))
    target = metric.get("target")
    if target is not None and not pd.isna(target):
        figure.add_trace(
            go.Scatter(x=[x.min(), x.max()], y=[target, target], name=f"Target {format_value(target, metric)}", mode="lines", line=dict(color=TARGET_COLOUR, dash="dot", width=2.5), hoverinfo="skip")
        )
    _add_comparisons(figure, metric, overlays, None)
    # A break or closure week stays on the chart, greyed: it is out of the limits and the rules.
    shut = charted["excluded"].fillna(False).astype(bool).to_numpy() if "excluded" in charted else [False] * len(charted)
    rules = [SHUT_TEXT if out else text for text, out in zip(charted.apply(_rules_text, axis=1), shut)]
    students = pd.Series(charted.get("students", charted.get("n", pd.Series([None] * len(charted)))), dtype="float64").reset_index(drop=True)
    small = (students < min_cell).to_numpy() if min_cell else [False] * len(charted)
    colours = [SHUT_COLOUR if out else POINT_COLOURS.get(p, "#BBBBBB") for p, out in zip(charted["point_type"].fillna("common_cause"), shut)]
    counts = [
        "students hidden" if pd.isna(count) else f"{count:,.0f} students" + (f" (fewer than {min_cell}: read with care)" if few else "")
        for count, few in zip(students, small)
    ]
    figure.add_trace(
        go.Scatter(
            x=x,
            y=charted["value"],
            name=metric["label"],
            mode="lines+markers",
            line=dict(color="#404040", width=2),
            marker=dict(
                size=10, color=colours, symbol=["circle-open" if few else "circle" for few in small],
                line=dict(width=[2.5 if few else 0 for few in small], color=colours),
            ),
            customdata=list(zip(hover_value, counts, rules)),
            hovertemplate="%{x|%b %-d, %Y}<br><b>%{customdata[0]}</b> · %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
        )
    )
    if any(small):
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(size=10, symbol="circle-open", color="#404040", line=dict(width=2.5)), name=f"Fewer than {min_cell} students"))
    if any(shut):
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(size=10, color=SHUT_COLOUR), name=SHUT_NAME))
    for point_type in [p for p in POINT_NAMES if p != "common_cause"]:
        if (charted["point_type"] == point_type).any():
            figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(size=10, color=POINT_COLOURS[point_type]), name=POINT_NAMES[point_type]))
    _add_comparisons(figure, metric, (), second_axis)
    add_events(figure, events)
    if x.nunique() == 1:
        _one_period(figure, pd.Timestamp(x.iloc[0]))
    figure.add_annotation(text=better_note(metric), xref="paper", yref="paper", x=1, y=1.0, xanchor="right", yanchor="bottom", showarrow=False, font=dict(size=14, color="#595959"))
    figure.update_yaxes(title=dict(text=metric["label"], font=dict(size=14)))
    return layout(figure, title=title, height=height, y_format=tick_format(metric))


def window_figure(
    table: pd.DataFrame,
    metric: Mapping[str, Any],
    *,
    events: pd.DataFrame | None = None,
    overlays: list[tuple[str, pd.DataFrame]] = (),
    second_axis: tuple[str, pd.DataFrame, Mapping[str, Any]] | None = None,
    title: str | None = None,
    height: int = 460,
) -> go.Figure:
    """Three-a-year periods (signals.windows) as values with their 95% intervals, each step
    labelled with the change from the window before and its interval: no control limits,
    which three points cannot set. `overlays` and `second_axis` as for spc_figure."""
    figure = go.Figure()
    _add_comparisons(figure, metric, overlays, second_axis)
    x = table["period_start"]
    has_interval = table["low"].notna()
    figure.add_trace(
        go.Scatter(
            x=x, y=table["value"], name=metric["label"], mode="lines+markers",
            line=dict(color="#404040", width=2), marker=dict(size=12, color=PALETTE[0]),
            error_y=dict(type="data", symmetric=False, array=(table["high"] - table["value"]).where(has_interval, 0),
                         arrayminus=(table["value"] - table["low"]).where(has_interval, 0), thickness=2.5, width=8, color=PALETTE[0]),
            customdata=list(zip(
                [format_value(v, metric) for v in table["value"]],
                [f" (95% CI {format_value(lo, metric)} to {format_value(hi, metric)})" if pd.notna(lo) else "" for lo, hi in zip(table["low"], table["high"])],
                table["n"],
            )),
            hovertemplate="%{x|%b %Y} window<br><b>%{customdata[0]}</b>%{customdata[1]} · %{customdata[2]:,} students<extra></extra>",
        )
    )
    if has_interval.any():
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=PALETTE[0], width=2.5), name="95% interval"))
    target = metric.get("target")
    if target is not None and not pd.isna(target):
        figure.add_trace(
            go.Scatter(x=[x.min(), x.max()], y=[target, target], name=f"Target {format_value(target, metric)}", mode="lines", line=dict(color=TARGET_COLOUR, dash="dot", width=2.5), hoverinfo="skip")
        )
    for before, after in zip(table.iloc[:-1].to_dict("records"), table.iloc[1:].to_dict("records")):
        middle = pd.Timestamp(before["period_start"]) + (pd.Timestamp(after["period_start"]) - pd.Timestamp(before["period_start"])) / 2
        figure.add_annotation(
            x=middle, y=(before["value"] + after["value"]) / 2, text=window_change(after, metric), showarrow=False,
            yshift=28, font=dict(size=14, color="#404040"), bgcolor="rgba(255,255,255,0.85)",
        )
    add_events(figure, events)
    figure.add_annotation(text=better_note(metric), xref="paper", yref="paper", x=1, y=1.0, xanchor="right", yanchor="bottom", showarrow=False, font=dict(size=14, color="#595959"))
    figure.update_yaxes(title=dict(text=metric["label"], font=dict(size=14)))
    figure.update_xaxes(tickformat="%b %Y", tickvals=list(x))
    return layout(figure, title=title, height=height, y_format=tick_format(metric))


def _add_comparisons(figure: go.Figure, metric, overlays, second_axis) -> None:
    for name, frame in overlays:
        figure.add_trace(
            go.Scatter(x=frame["period_start"], y=frame["value"], name=name, mode="lines", line=BENCHMARK_LINE if name in BENCHMARKS else COMPARISON_LINE, hovertemplate=f"{name}<br>%{{x|%b %-d, %Y}}: %{{y:{tick_format(metric)}}}<extra></extra>")
        )
    if second_axis is not None:
        name, frame, other = second_axis
        figure.add_trace(
            go.Scatter(x=frame["period_start"], y=frame["value"], name=name, mode="lines+markers", yaxis="y2", line=dict(color=PALETTE[0], width=2), marker=dict(size=6), hovertemplate=f"{name}<br>%{{x|%b %-d, %Y}}: %{{y:{tick_format(other)}}}<extra></extra>")
        )
        figure.update_layout(yaxis2=dict(overlaying="y", side="right", tickformat=tick_format(other), title=dict(text=other["label"], font=dict(size=14)), showgrid=False))


def window_change(row: Mapping[str, Any], metric: Mapping[str, Any]) -> str:
    """A window's change from the one before, with its interval where it has one."""
    interval = (
        f" (95% CI {format_change(row['change_low'], metric)} to {format_change(row['change_high'], metric)})"
        if pd.notna(row["change_low"]) else ""
    )
    return f"{format_change(row['change'], metric)}{interval}"


def _one_period(figure: go.Figure, day: pd.Timestamp) -> None:
    """A chart of a single period (a district's first week of data) has no line to draw, and
    plotly would stretch its time axis to milliseconds: the limits and centre become dashes at
    the point, the target spans the axis, and the axis spans two weeks either side."""
    start, end = day - pd.Timedelta(days=14), day + pd.Timedelta(days=14)
    for name in ("Process limits", "Lower limit", "Centre"):
        figure.update_traces(selector=dict(name=name), mode="markers", marker=dict(symbol="line-ew-open", size=36, line=dict(width=2, color="#A6A6A6" if name != "Centre" else "#595959")))
    figure.update_traces(selector=lambda trace: (trace.name or "").startswith("Target "), x=[start, end])
    figure.update_xaxes(range=[start, end], tickformat="%b %-d, %Y", tick0=day, dtick=7 * 24 * 3600 * 1000)


def _rules_text(row: pd.Series) -> str:
    fired = [label for column, label in (("outside_limits", "outside the limits"), ("shift", "7 on one side of the centre"), ("trend", "7 rising or falling"), ("two_in_three", "2 of 3 near a limit")) if bool(row.get(column))]
    kind = POINT_NAMES.get(row.get("point_type"), "") if isinstance(row.get("point_type"), str) else ""
    return f"{kind}: {', '.join(fired)}" if fired else "Common cause"


# Labels closer than this in time would overlap at the top of a chart: the later one drops a row.
LABEL_SPACING = pd.Timedelta(days=50)
LABEL_ROWS = 3


def add_events(figure: go.Figure, events: pd.DataFrame | None) -> None:
    """Breaks and closures as shaded bands; program changes and other events as dotted lines.
    Breaks and lines are labelled at the top, a label close after another one row lower (so
    they do not overlap); a one-day closure is too narrow for a label. The legend names both."""
    if events is None or events.empty:
        return
    rows: list[pd.Timestamp | None] = [None] * LABEL_ROWS
    kinds = set()
    for event in events.sort_values("starts_on").to_dict(orient="records"):
        starts, ends = pd.Timestamp(event["starts_on"]), pd.Timestamp(event["ends_on"])
        band = event["kind"] in EVENT_BANDS
        kinds.add("band" if band else "line")
        if band:
            figure.add_vrect(x0=starts - pd.Timedelta(days=3), x1=ends + pd.Timedelta(days=3), fillcolor="#D9D9D9",
                             opacity=0.35, line_width=0, layer="below")
            if event["kind"] != "break":
                continue
            at, colour = starts - pd.Timedelta(days=3), "#595959"
        else:
            figure.add_vline(x=starts, line=dict(color="#CC79A7", width=2, dash="dot"))
            at, colour = starts, "#8E44AD"
        row = next((i for i, last in enumerate(rows) if last is None or at - last >= LABEL_SPACING), None)
        if row is None:  # every row is taken nearby: the oldest label's row is reused
            row = min(range(LABEL_ROWS), key=lambda i: rows[i])
        rows[row] = at
        figure.add_annotation(x=at, y=1 - 0.075 * row, yref="paper", text=event["title"], showarrow=False, xanchor="left",
                              yanchor="top", font=dict(size=12, color=colour), bgcolor="rgba(255,255,255,0.8)")
    if "band" in kinds:
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="Break or closure (shaded)",
                                    marker=dict(symbol="square", size=14, color="#D9D9D9")))
    if "line" in kinds:
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="Event or program change",
                                    line=dict(color="#CC79A7", width=2, dash="dot")))


def interval_figure(
    frame: pd.DataFrame,
    *,
    category: str,
    metric: Mapping[str, Any],
    reference: float | None = None,
    reference_label: str | None = None,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Each group's value with its confidence interval, as dots and whiskers; suppressed groups
    are named and marked, not plotted."""
    shown = frame[~frame.get("suppressed", False)] if "suppressed" in frame else frame
    hidden = frame[frame["suppressed"]] if "suppressed" in frame else frame.iloc[0:0]
    labels = shown[category].astype(str)
    # An analyst's small groups are drawn hollow: shown, but read with care.
    few = shown["small_cell"].fillna(False).astype(bool).tolist() if "small_cell" in shown else [False] * len(shown)
    figure = go.Figure(
        go.Scatter(
            x=shown["value"],
            y=labels,
            mode="markers",
            marker=dict(size=13, color=PALETTE[0], symbol=["circle-open" if f else "circle" for f in few], line=dict(width=[2.5 if f else 0 for f in few], color=PALETTE[0])),
            error_x=dict(type="data", symmetric=False, array=shown["high"] - shown["value"], arrayminus=shown["value"] - shown["low"], thickness=2.5, width=6, color=PALETTE[0]),
            customdata=list(zip([format_value(v, metric) for v in shown["value"]], [format_value(v, metric) for v in shown["low"]], [format_value(v, metric) for v in shown["high"]], shown["n"])),
            hovertemplate="<b>%{y}</b>: %{customdata[0]} (95% CI %{customdata[1]} to %{customdata[2]})<br>%{customdata[3]:,} students<extra></extra>",
            name=metric["label"],
            showlegend=False,
        )
    )
    if reference is not None and not pd.isna(reference):
        figure.add_vline(x=reference, line=dict(color="#595959", dash="dash", width=1.5), annotation_text=reference_label or "", annotation_position="top", annotation_font_size=13)
    for label in hidden[category].astype(str):
        figure.add_annotation(x=0, xref="paper", y=label, text=f"{label}: fewer than 10 students", showarrow=False, xanchor="left", font=dict(size=13, color="#7B7D7D"))
    if not hidden.empty:
        figure.update_yaxes(categoryarray=list(labels) + list(hidden[category].astype(str)))
    target = metric.get("target")
    if target is not None and not pd.isna(target):
        figure.add_vline(x=target, line=dict(color=TARGET_COLOUR, dash="dot", width=2.5), annotation_text="target", annotation_position="bottom", annotation_font_size=13)
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(tickformat=tick_format(metric), title=dict(text=f"{metric['label']} · {better_note(metric)}", font=dict(size=14)))
    return layout(figure, title=title, height=height or max(260, 46 * len(frame) + 120))


def funnel_figure(points: pd.DataFrame, limits: pd.DataFrame, overall: float, metric: Mapping[str, Any], *, label: str, title: str | None = None) -> go.Figure:
    """Each unit's value against its number of students, inside 95% and 99.8% funnel limits
    around the overall value: a point outside is more than chance would give."""
    figure = go.Figure()
    for level, dash, name in (("998", "dash", "99.8% limits"), ("95", "dot", "95% limits")):
        figure.add_trace(go.Scatter(x=limits["n"], y=limits[f"high_{level}"], mode="lines", line=dict(color="#7B7D7D", dash=dash, width=1.5), name=name, hoverinfo="skip"))
        figure.add_trace(go.Scatter(x=limits["n"], y=limits[f"low_{level}"], mode="lines", line=dict(color="#7B7D7D", dash=dash, width=1.5), showlegend=False, hoverinfo="skip"))
    figure.add_hline(y=overall, line=dict(color="#404040", width=1.5), annotation_text=f"overall {format_value(overall, metric)}", annotation_position="bottom right", annotation_font_size=13)
    figure.add_trace(
        go.Scatter(
            x=points["n"], y=points["value"], mode="markers+text", text=points[label], textposition="top center",
            marker=dict(size=14, color=PALETTE[0], line=dict(color="white", width=1)), name=metric["label"],
            textfont=dict(size=14),
            customdata=[format_value(v, metric) for v in points["value"]],
            hovertemplate="<b>%{text}</b>: %{customdata} · %{x:,} students<extra></extra>",
        )
    )
    figure.update_xaxes(title=dict(text="Students", font=dict(size=14)))
    figure.update_yaxes(title=dict(text=f"{metric['label']} · {better_note(metric)}", font=dict(size=14)))
    return layout(figure, title=title, height=480, y_format=tick_format(metric))


def heatmap_figure(
    gaps: pd.DataFrame, *, metric: Mapping[str, Any], min_cell: int, title: str | None = None, zlabel: str = "Gap"
) -> go.Figure:
    """Gaps crossed by two dimensions: `gaps` has one row per cell (`row`, `group`,
    `difference`, `diff_low`, `diff_high`, `suppressed`). Colour and colour bar are in the
    unit the cells are written in (points for shares). A gap whose interval holds zero is
    faded and marked "≈", since chance alone could give it; a suppressed cell is blank and
    says why."""
    scale = 100.0 if is_share(metric) else 1.0
    rows, columns = list(dict.fromkeys(gaps["row"])), list(dict.fromkeys(gaps["group"]))
    cells = gaps.set_index(["row", "group"])

    def grid(column: str) -> list[list[float]]:
        return [[float(cells[column].get((r, c), math.nan)) * scale for c in columns] for r in rows]

    values, lows, highs = grid("difference"), grid("diff_low"), grid("diff_high")
    within = [[not math.isnan(lo) and lo <= 0 <= hi for lo, hi in zip(*pair)] for pair in zip(lows, highs)]
    hidden = [[bool(cells["suppressed"].get((r, c), False)) for c in columns] for r in rows]
    unit = " pts" if is_share(metric) else ""
    digits = ".1f" if is_share(metric) or metric["unit"] in WHOLE_UNITS else ".2f"

    def text(r: int, c: int) -> str:
        value = values[r][c]
        if math.isnan(value):
            return f"fewer than {min_cell}" if hidden[r][c] else ""
        return f"{'≈ ' if within[r][c] else ''}{format_change(value / scale, metric)}"

    def hover(r: int, c: int) -> str:
        if math.isnan(lows[r][c]):
            return text(r, c)
        interval = f"{lows[r][c]:+{digits}}{unit} to {highs[r][c]:+{digits}}{unit}"
        return f"{text(r, c)} (95% CI {interval}, {'within' if within[r][c] else 'beyond'} chance)"

    labels = [[text(r, c) for c in range(len(columns))] for r in range(len(rows))]
    hovers = [[hover(r, c) for c in range(len(columns))] for r in range(len(rows))]
    flat = pd.Series([v for row in values for v in row], dtype=float)
    limit = float(flat.abs().max()) if flat.notna().any() and flat.abs().max() > 0 else 1.0
    x, y = [str(c) for c in columns], [str(r) for r in rows]
    figure = go.Figure(
        go.Heatmap(
            z=values, x=x, y=y, text=[[t if not w else "" for t, w in zip(*pair)] for pair in zip(labels, within)],
            texttemplate="%{text}", textfont=dict(size=14), colorscale="RdBu", zmid=0, zmin=-limit, zmax=limit,
            colorbar=dict(title=dict(text=f"{zlabel}{' (points)' if is_share(metric) else ''}"), ticksuffix=unit,
                          tickformat=",.0f" if limit >= 3 else ",.1f"),
            customdata=hovers, hovertemplate="%{y} · %{x}: %{customdata}<extra></extra>",
        )
    )
    if any(any(row) for row in within):
        # A translucent white layer over the cells within chance: their colour shows only faintly.
        figure.add_trace(go.Heatmap(
            z=[[1.0 if w else math.nan for w in row] for row in within], x=x, y=y,
            text=[[t if w else "" for t, w in zip(*pair)] for pair in zip(labels, within)], texttemplate="%{text}",
            textfont=dict(size=14, color="#5F6B7A"), colorscale=[[0, "rgba(255,255,255,0.78)"], [1, "rgba(255,255,255,0.78)"]],
            showscale=False, customdata=hovers, hovertemplate="%{y} · %{x}: %{customdata}<extra></extra>",
            name="within chance",
        ))
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(type="category")
    return layout(figure, title=title, height=max(300, 48 * len(rows) + 140))


def payments_figure(contracts: pd.DataFrame, *, category: str = "vendor", title: str | None = None) -> go.Figure:
    """Per vendor contract (a row of the payments view, named by its `category` column), what
    the rate card has earned so far against the contract's cap: the earned bar drawn over the
    cap's grey one."""
    names = list(contracts[category].astype(str))
    share = contracts["amount_earned"] / contracts["cap"]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(y=names, x=contracts["cap"], orientation="h", name="Cap", marker=dict(color="#E3E3E3"), hovertemplate="%{y}: cap $%{x:,.0f}<extra></extra>")
    )
    figure.add_trace(
        go.Bar(
            y=names, x=contracts["amount_earned"], orientation="h", name="Earned", marker=dict(color=PALETTE[0]),
            text=[f"{format_money(earned)} · " + (f"{part:.0%} of cap" if pd.notna(part) else "no cap")
                  for earned, part in zip(contracts["amount_earned"], share)],
            textposition="inside", insidetextanchor="start", textfont=dict(size=14, color="white"),
            hovertemplate="%{y}: earned $%{x:,.0f}<extra></extra>",
        )
    )
    figure.update_layout(barmode="overlay", bargap=0.35)
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(tickprefix="$", tickformat="~s", title=dict(text="Earned to date, against the contract cap", font=dict(size=14)))
    return layout(figure, title=title, height=max(240, 52 * len(contracts) + 110))


def gap_figure(
    frame: pd.DataFrame,
    *,
    metric: Mapping[str, Any],
    reference_label: str,
    category: str = "group",
    title: str | None = None,
    height: int | None = None,
    gap_target: float | None = None,
) -> go.Figure:
    """Each group's gap to a reference group (the output of stats.disparity.gaps) with its
    confidence interval, beside zero. A gap whose interval leaves out zero is coloured as a
    concern or an improvement by the metric's better direction; the rest are grey. Shares are
    drawn in percentage points. A gap target (the widest gap the data map allows, either way)
    is drawn as the target is on every chart."""
    scale = 100 if is_share(metric) else 1
    shown = frame[~frame["suppressed"] & frame["difference"].notna()]
    hidden = frame[frame["suppressed"] | frame["difference"].isna()]
    sign = 1 if metric["better"] == "higher" else -1
    colours = [
        "#595959" if is_reference
        else POINT_COLOURS["special_cause_concern"] if sign * high < 0
        else POINT_COLOURS["special_cause_improvement"] if sign * low > 0
        else POINT_COLOURS["common_cause"]
        for low, high, is_reference in zip(shown["diff_low"].fillna(-float("inf")), shown["diff_high"].fillna(float("inf")), shown["is_reference"])
    ]
    labels = shown[category].astype(str)
    figure = go.Figure(
        go.Scatter(
            x=shown["difference"] * scale,
            y=labels,
            mode="markers",
            marker=dict(size=13, color=colours, symbol=["diamond" if r else "circle" for r in shown["is_reference"]]),
            error_x=dict(
                type="data", symmetric=False, array=(shown["diff_high"] - shown["difference"]) * scale,
                arrayminus=(shown["difference"] - shown["diff_low"]) * scale, thickness=2.5, width=6, color="#7B7D7D",
            ),
            customdata=list(zip(
                ["reference group" if r else f"gap {format_change(d, metric)}" for d, r in zip(shown["difference"], shown["is_reference"])],
                ["" if r or pd.isna(lo) else f" (95% CI {format_change(lo, metric)} to {format_change(hi, metric)})" for lo, hi, r in zip(shown["diff_low"], shown["diff_high"], shown["is_reference"])],
                ["" if r else f" · ratio {ratio:.2f}" for ratio, r in zip(shown["ratio"], shown["is_reference"])],
                shown["n"],
            )),
            hovertemplate="<b>%{y}</b>: %{customdata[0]}%{customdata[1]}%{customdata[2]}<br>%{customdata[3]:,} students<extra></extra>",
            showlegend=False,
        )
    )
    figure.add_vline(x=0, line=dict(color="#404040", width=1.5), annotation_text="no gap", annotation_position="top", annotation_font_size=13)
    if gap_target is not None:
        for side in (-1, 1):
            figure.add_vline(x=side * gap_target * scale, line=dict(color=TARGET_COLOUR, dash="dot", width=2.5),
                             annotation_text="gap target", annotation_position="bottom", annotation_font_size=13)
    for label, suppressed in zip(hidden[category].astype(str), hidden["suppressed"]):
        text = f"{label}: fewer than 10 students" if suppressed else f"{label}: no gap (reference too small)"
        figure.add_annotation(x=0, xref="paper", y=label, text=text, showarrow=False, xanchor="left", font=dict(size=13, color="#7B7D7D"))
    figure.update_yaxes(autorange="reversed", type="category", categoryarray=list(frame[category].astype(str)), categoryorder="array")
    unit = " pts" if scale == 100 else ""
    figure.update_xaxes(
        ticksuffix=unit, tickformat="+,.0f" if scale == 100 else "+,.1f", zeroline=False,
        title=dict(text=f"Gap to {reference_label}{' (percentage points)' if scale == 100 else ''} · {better_note(metric)}", font=dict(size=14)),
    )
    return layout(figure, title=title, height=height or max(260, 46 * len(frame) + 120))


def gap_trend_figure(
    charted: pd.DataFrame,
    metric: Mapping[str, Any],
    *,
    label: str,
    events: pd.DataFrame | None = None,
    title: str | None = None,
    height: int = 420,
) -> go.Figure:
    """An XmR chart of a gap between two groups over time (`charted`: stats.spc.xmr's frame
    with period_start and students), against zero. A gap has no better direction of its own,
    so special causes are purple; shares are drawn in percentage points."""
    scale = 100 if is_share(metric) else 1
    drawn = charted.copy()
    for column in ("value", "center", "lower", "upper"):
        drawn[column] = drawn[column] * scale
    gap = {"label": label, "aggregation": "mean", "unit": "points" if scale == 100 else metric["unit"], "better": metric["better"], "target": None}
    figure = spc_figure(drawn, gap, events=events, title=title, height=height)
    # Shaded closures carry no label, which plotly would otherwise draw as "new text".
    figure.layout.annotations = [a for a in figure.layout.annotations if a.text and a.text != better_note(gap)]
    value_trace = next(t for t in figure.data if t.name == label)
    value_trace.customdata = [(format_change(v, metric), *rest[1:]) for v, rest in zip(charted["value"], value_trace.customdata)]
    figure.add_hline(y=0, line=dict(color="#404040", width=1), annotation_text="no gap", annotation_position="bottom left", annotation_font_size=13)
    figure.update_yaxes(ticksuffix=" pts" if scale == 100 else "", tickformat="+,.0f" if scale == 100 else "+,.1f", title=dict(text=f"Gap{' (points)' if scale == 100 else ''}", font=dict(size=14)))
    return for_shared_screen(figure) if SHARED_SCREEN.get() else figure


def scatter_figure(
    points: pd.DataFrame,
    *,
    x_metric: Mapping[str, Any],
    y_metric: Mapping[str, Any],
    colour: str | None = None,
    text: str | None = None,
    hover: str | None = None,
    title: str | None = None,
    height: int = 560,
) -> go.Figure:
    """One metric against another (`points` has x and y): many small translucent points for
    students, or points sized by their students (an `n` column) for groups. One colour per
    value of the `colour` column, in the frame's order; `text` labels each point on the chart
    and `hover` names it on hover."""
    figure = go.Figure()
    groups = list(points.groupby(colour, sort=False)) if colour else [(None, points)]
    sized = "n" in points
    largest = float(points["n"].max()) if sized and len(points) else 1.0
    for i, (name, rows) in enumerate(groups):
        figure.add_trace(
            go.Scatter(
                x=rows["x"], y=rows["y"], name=str(name) if name is not None else y_metric["label"],
                mode="markers+text" if text else "markers",
                text=rows[text] if text else None, textposition="top center", textfont=dict(size=13, color="#404040"),
                marker=dict(
                    color=PALETTE[i % len(PALETTE)],
                    size=(8 + 16 * (rows["n"] / largest) ** 0.5) if sized else 6,
                    opacity=0.85 if sized else 0.4, line=dict(width=1 if sized else 0, color="white"),
                ),
                customdata=list(zip(
                    [format_value(v, x_metric) for v in rows["x"]], [format_value(v, y_metric) for v in rows["y"]],
                    rows[hover] if hover else [""] * len(rows), rows["n"] if sized else [1] * len(rows),
                )),
                hovertemplate=(
                    ("<b>%{customdata[2]}</b><br>" if hover else "")
                    + f"{x_metric['label']}: %{{customdata[0]}}<br>{y_metric['label']}: %{{customdata[1]}}"
                    + ("<br>%{customdata[3]:,} students" if sized else "") + "<extra></extra>"
                ),
                showlegend=colour is not None,
            )
        )
    figure.update_xaxes(tickformat=tick_format(x_metric), title=dict(text=x_metric["label"], font=dict(size=15)))
    figure.update_yaxes(tickformat=tick_format(y_metric), title=dict(text=y_metric["label"], font=dict(size=15)))
    return layout(figure, title=title, height=height)


# Submission status: colour and shape together, so no status is told apart by colour alone.
STATUS_STYLE = {
    "on time": ("#56B4E9", "circle"),
    "late": ("#E69F00", "triangle-up"),
    "rejected": ("#D55E00", "square"),
    "missing": ("#000000", "x"),
}


def observed_expected_figure(frame: pd.DataFrame, *, category: str, metric: Mapping[str, Any], title: str | None = None) -> go.Figure:
    """Indirect standardisation per unit: what it would have had with the district's result in
    each of its strata (a hollow diamond), against what it had, with its interval (a dot)."""
    labels = frame[category].astype(str)
    low, high = frame["expected"] + frame["diff_low"], frame["expected"] + frame["diff_high"]
    figure = go.Figure()
    for i, row in enumerate(frame.itertuples()):
        figure.add_trace(go.Scatter(x=[row.expected, row.observed], y=[labels.iloc[i]] * 2, mode="lines", line=dict(color="#BBBBBB", width=3), showlegend=False, hoverinfo="skip"))
    figure.add_trace(
        go.Scatter(
            x=frame["expected"], y=labels, mode="markers", name="Expected for its students",
            marker=dict(symbol="diamond-open", size=15, color="#404040", line=dict(width=2.5)),
            customdata=[format_value(v, metric) for v in frame["expected"]],
            hovertemplate="<b>%{y}</b>: expected %{customdata}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=frame["observed"], y=labels, mode="markers", name="Observed (95% CI)",
            marker=dict(size=14, color=PALETTE[0]),
            error_x=dict(type="data", symmetric=False, array=high - frame["observed"], arrayminus=frame["observed"] - low, thickness=2.5, width=6, color=PALETTE[0]),
            customdata=list(zip([format_value(v, metric) for v in frame["observed"]], [format_change(v, metric) for v in frame["difference"]], frame["n"])),
            hovertemplate="<b>%{y}</b>: observed %{customdata[0]} (%{customdata[1]} against expected)<br>%{customdata[2]:,} students<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(tickformat=tick_format(metric), title=dict(text=f"{metric['label']} · {better_note(metric)}", font=dict(size=14)))
    return layout(figure, title=title, height=max(280, 52 * len(frame) + 130))


def status_shares_figure(shares: pd.DataFrame, *, category: str, title: str | None = None) -> go.Figure:
    """Per unit, the share of its expected submissions in each status, as one 100% bar."""
    labels = shares[category].astype(str)
    figure = go.Figure()
    for status, (colour, _) in STATUS_STYLE.items():
        if status not in shares:
            continue
        counts = shares[f"{status}_count"] if f"{status}_count" in shares else shares[status]
        figure.add_trace(
            go.Bar(
                x=shares[status], y=labels, orientation="h", name=status, marker=dict(color=colour),
                text=[f"{v:.0%}" if v >= 0.06 else "" for v in shares[status]], textposition="inside", insidetextanchor="middle",
                textfont=dict(size=14, color="white" if status in ("missing", "rejected") else "black"),
                customdata=counts, hovertemplate=f"<b>%{{y}}</b>: {status} %{{x:.0%}} (%{{customdata}} submissions)<extra></extra>",
            )
        )
    figure.update_layout(barmode="stack", legend_traceorder="normal")
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(tickformat=".0%", range=[0, 1], title=dict(text="Share of expected submissions", font=dict(size=14)))
    return layout(figure, title=title, height=max(240, 46 * len(shares) + 130))


def submission_timeline_figure(rows: pd.DataFrame, *, category: str, title: str | None = None) -> go.Figure:
    """One mark per unit and period, coloured and shaped by the submission's status."""
    figure = go.Figure()
    order = list(dict.fromkeys(rows[category].astype(str)))
    for status, (colour, symbol) in STATUS_STYLE.items():
        these = rows[rows["status"] == status]
        received = [f"received {r:%b %-d %H:%M}" if pd.notna(r) else "not received" for r in these["received_at"]]
        figure.add_trace(
            go.Scatter(
                x=pd.to_datetime(these["period_start"]), y=these[category].astype(str), mode="markers", name=f"{status} ({len(these)})",
                marker=dict(symbol=symbol, size=15 if status in ("on time",) else 17, color=colour, line=dict(width=1.5 if symbol != "x" else 0, color="white" if symbol != "x" else colour)),
                customdata=list(zip([f"{d:%b %-d}" for d in these["due_on"]], received)),
                hovertemplate=f"<b>%{{y}}</b> · week of %{{x|%b %-d, %Y}}<br>{status}: due %{{customdata[0]}}, %{{customdata[1]}}<extra></extra>",
            )
        )
    figure.update_yaxes(type="category", categoryorder="array", categoryarray=order, autorange="reversed")
    figure.update_xaxes(tickformat="%b %-d", title=dict(text="Period (week starting)", font=dict(size=14)))
    return layout(figure, title=title, height=max(260, 44 * len(order) + 150))


def coverage_figure(frame: pd.DataFrame, *, row: str, title: str | None = None) -> go.Figure:
    """Coverage (students with data / students enrolled) per row and week, dark where data is
    missing; blank cells are weeks with nothing to cover. Weeks are columns of equal width, so a
    break between them does not look like data."""
    matrix = frame.pivot(index=row, columns="period_start", values="coverage")
    enrolled = frame.pivot(index=row, columns="period_start", values="enrolled").reindex_like(matrix)
    with_data = frame.pivot(index=row, columns="period_start", values="with_data").reindex_like(matrix)
    weeks = [f"{pd.Timestamp(p):%b %-d}" for p in matrix.columns]
    hidden = (
        frame.pivot(index=row, columns="period_start", values="suppressed").reindex_like(matrix).fillna(False)
        if "suppressed" in frame.columns else pd.DataFrame(False, index=matrix.index, columns=matrix.columns)
    )
    text = [
        [
            ("hidden: too few students" if h else "not owed" if pd.isna(c) else f"{c:.0%}",
             f"{w:,.0f}" if pd.notna(w) else "–", f"{e:,.0f}" if pd.notna(e) else "–")
            for c, w, e, h in zip(cr, wr, er, hr)
        ]
        for cr, wr, er, hr in zip(matrix.to_numpy(), with_data.to_numpy(), enrolled.to_numpy(), hidden.to_numpy(dtype=bool))
    ]
    figure = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(dtype=float), x=weeks, y=[str(i) for i in matrix.index],
            zmin=0, zmax=1, colorscale=[[0, "#08306B"], [0.5, "#4292C6"], [0.8, "#C6DBEF"], [1, "#F7FBFF"]],
            xgap=2, ygap=2, customdata=text,
            hovertemplate="<b>%{y}</b> · week of %{x}<br>%{customdata[0]}: %{customdata[1]} of %{customdata[2]} students<extra></extra>",
            colorbar=dict(title=dict(text="Coverage", side="right"), tickformat=".0%"),
        )
    )
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(type="category", tickmode="array", tickvals=weeks[::4], ticktext=weeks[::4], title=dict(text="Week starting", font=dict(size=14)))
    return layout(figure, title=title, height=max(260, 40 * len(matrix) + 160))
