"""The meeting packet (ciboard.packet) written out: as one self-contained HTML file (its charts
carry their own plotly.js and need no internet) and as Markdown, each chart told in words.
"""

import html
import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any

import pandas as pd
from plotly.offline import get_plotlyjs

from ciboard import charts, ci_records, privacy, signals
from ciboard.access import Scope, whose_students
from ciboard.ci_records import Commitment, PdsaCycle, RootCause
from ciboard.letters import Letters
from ciboard.movements import Movement
from ciboard.packet import (
    CHART_HEIGHT,
    Breakdown,
    Chart,
    CommitmentItem,
    Packet,
    PdsaItem,
    group_name,
    name_of,
    sorted_filters,
    whose,
)
from ciboard.warehouse import data_version


def _signal_who(signal: dict, names: dict, scope: Scope) -> str:
    parts = []
    if scope.role != "vendor" and signal.get("vendor_id"):
        parts.append(name_of("vendor_id", signal["vendor_id"], names))
    if signal.get("dimension"):
        parts.append(group_name(signal["dimension"], signal["group"], names))
    return " · ".join(parts) or whose_students(scope, lambda d, v: name_of(d, v, names))


def _party(c: Commitment, names: dict) -> str:
    if c.party == "district":
        return "District"
    return f"{c.party.title()}: {name_of('vendor_id' if c.party == 'vendor' else 'school_id', c.party_id, names)}"


def _value(value: Any, metric: dict, hidden: str) -> str:
    return hidden if value is None or pd.isna(value) else charts.format_value(value, metric)


def chart_lines(chart: Chart, packet: Packet) -> list[str]:
    """A chart in words: the latest week, centre and limits, and its special-cause weeks."""
    if chart.charted is None:
        return [chart.note]
    metric, rows = chart.metric, chart.charted
    last = rows.iloc[-1]
    lines = []
    if last["suppressed"] or pd.isna(last["value"]):
        lines.append(f"The latest week ({last['period_start']}) is hidden: {packet.hidden} students.")
    else:
        lines.append(
            f"Latest week ({last['period_start']}): {charts.format_value(last['value'], metric)}, "
            f"{int(last['students']):,} students."
        )
    lines.append(
        f"Centre {charts.format_value(last['center'], metric)}, process limits "
        f"{charts.format_value(last['lower'], metric)} to {charts.format_value(last['upper'], metric)}"
        + (f"; target {charts.format_value(metric['target'], metric)}" if not pd.isna(metric.get("target")) else "")
        + f" ({charts.better_note(metric)})."
    )
    since = date.fromisoformat(packet.prefill.since) if packet.prefill else None
    recent = rows[rows["period_start"] >= since] if since else rows
    special = recent[recent["point_type"].fillna("common_cause") != "common_cause"]
    when = f"since {since}" if since else "this year"
    if special.empty:
        lines.append(f"No special-cause week {when}: the weeks vary within the limits.")
    else:
        kinds = special["point_type"].map(charts.POINT_NAMES).value_counts()
        lines.append(
            f"{len(special)} special-cause week(s) {when} ("
            + ", ".join(f"{n} {kind.lower()}" for kind, n in kinds.items())
            + f"); the latest, the week of {special['period_start'].iloc[-1]}: {signals.rules_fired(special.iloc[-1])}."
        )
    if chart.note:
        lines.append(chart.note)
    return lines


def _signal_rows(chart: Chart, packet: Packet) -> list[list[str]]:
    m = chart.metric
    return [
        [_signal_who(s, packet.names, packet.scope), s["period_start"], charts.POINT_NAMES.get(s["point_type"], ""),
         _value(s.get("value"), m, packet.hidden), _value(s.get("center"), m, packet.hidden),
         f"{_value(s.get('lower'), m, packet.hidden)} to {_value(s.get('upper'), m, packet.hidden)}",
         s.get("rules") or ""]
        for s in chart.signals
    ]


SIGNAL_HEADERS = ["Students", "Week of", "Signal", "Value", "Centre", "Limits", "Rules"]
GAP_HEADERS = ["Metric", "Group", "Compared with", "Gap then", "Gap now", "Change (95% CI)", "Moved"]
LATE_HEADERS = ["Vendor", "Data", "Period", "Due", "Received", "Status", "Rows rejected"]
BREAKDOWN_HEADERS = ["Key group", "Group", "Value", "Students"]
LOG_HEADERS = ["On", "Status", "By", "Note"]
PEOPLE_HEADERS = ["Name", "Organisation", "Role"]
OBSERVATION_HEADERS = ["On", "Observation", "By"]


def _gap_rows(packet: Packet) -> list[list[str]]:
    rows = []
    for g in packet.prefill.gaps if packet.prefill else []:
        m = packet.metrics[g["metric_id"]]
        if g.get("hidden"):
            then = now = change = packet.hidden
        else:
            then = f"{charts.format_change(g['gap_then'], m)} ({g['then_start']} to {g['then_end']})"
            now = f"{charts.format_change(g['gap_now'], m)} ({g['now_start']} to {g['now_end']})"
            change = (f"{charts.format_change(g['change'], m)} ({charts.format_change(g['change_low'], m)} to "
                      f"{charts.format_change(g['change_high'], m)})")
        moved = g["direction"] + (", reversed" if g.get("reversed") else "")
        rows.append([g["label"], group_name(g["dimension"], g["group"], packet.names),
                     group_name(g["dimension"], g["reference"], packet.names), then, now, change, moved])
    return rows


def _late_rows(packet: Packet) -> list[list[str]]:
    return [
        [name_of("vendor_id", r["vendor_id"], packet.names) if r.get("vendor_id") else "District",
         str(r["kind"]).replace("_", " "), f"{r['period_start']} to {r['period_end']}", r.get("due_on") or "",
         r.get("received_at") or "not received", r["status"],
         "" if r.get("rows_rejected") is None else str(r["rows_rejected"])]
        for r in (packet.prefill.late_or_missing if packet.prefill else [])
    ]


def _breakdown_rows(breakdown: Breakdown, packet: Packet) -> list[list[str]]:
    table = privacy.for_export(breakdown.table, packet.min_cell)
    return [
        [r["dimension"].replace("_", " "), group_name(r["dimension"], r["group"], packet.names).split(": ", 1)[-1],
         r["value"] if isinstance(r["value"], str) else _value(r["value"], breakdown.metric, packet.hidden),
         r["n"] if isinstance(r["n"], str) else ("" if pd.isna(r["n"]) else f"{int(r['n']):,}")]
        for r in table.to_dict("records")
    ]


def _commitment_facts(item: CommitmentItem, packet: Packet) -> list[tuple[str, str]]:
    c = item.commitment
    status = ci_records.STATUS_LABELS.get(item.status, item.status)
    facts = [
        ("Party", _party(c, packet.names)),
        ("Owner", c.owner),
        ("Made on", c.made_on.isoformat()),
        ("Due", c.due_on.isoformat() if c.due_on else "no date"),
        (f"Status on {item.as_of}", status + (f", overdue by {item.days_overdue} days" if item.overdue else "")),
    ]
    if c.metric_id:
        facts.append(("Measured on", _measured(c.metric_id, c.slice, packet)))
    if item.movement is not None:
        facts.append(("Since it was made", _moved(item.movement, packet)))
    return facts


def _measured(metric_id: str, slice: ci_records.Slice, packet: Packet) -> str:
    metric = packet.metrics.get(metric_id, {"label": metric_id})
    return f"{metric['label']}, {whose(sorted_filters(slice.filters(), packet.scope), packet.names, packet.scope)}"


def _moved(movement: Movement, packet: Packet) -> str:
    metric = packet.metrics.get(movement.metric_id)
    return movement.sentence(metric) if metric and movement.status == "ok" else movement.note


def _people_rows(people: list[ci_records.Person]) -> list[list[str]]:
    return [[p.name, p.organisation, p.role] for p in people]


def _observation_rows(p: PdsaCycle) -> list[list[str]]:
    return [[o.on.isoformat(), o.text, o.by] for o in p.observations]


def _log_rows(c: Commitment) -> list[list[str]]:
    return [[e.on.isoformat(), ci_records.STATUS_LABELS.get(e.status, e.status), e.by, e.note] for e in c.log]


def _heading(packet: Packet) -> tuple[str, list[str]]:
    m, g = packet.meeting, packet.workgroup
    title = f"{g.name}, meeting of {m.held_on:%A %-d %B %Y}"
    reader = (f"the district ({packet.scope})" if packet.scope.role != "vendor"
              else name_of("vendor_id", packet.scope.vendor_id, packet.names))
    status = (f"Final: finalised {m.finalised_at:%Y-%m-%d} by {m.finalised_by}; its numbers are those the meeting saw"
              if m.is_final else "Draft: the numbers are read afresh from the latest data")
    lines = [
        status + ".",
        f"Prepared for {reader} on {packet.prepared_at:%Y-%m-%d %H:%M} UTC.",
        *packet.notes,
    ]
    return title, lines


def _is_chosen(r: RootCause, idea: ci_records.Idea) -> bool:
    return r.chosen_idea is not None and idea is r.ideas[r.chosen_idea]


def _chosen(r: RootCause) -> str:
    if r.chosen_idea is None:
        return ""
    text = r.ideas[r.chosen_idea].text
    if r.pdsa_id is not None:
        return f"{text} (tested as a PDSA cycle)"
    return f"{text} (a commitment)" if r.commitment_id is not None else text


def _pdsa_facts(item: PdsaItem, packet: Packet) -> list[tuple[str, str]]:
    p = item.cycle
    facts = [
        ("Stage", p.stage.title()),
        ("Measured on", _measured(p.metric_id, p.slice, packet)),
        ("Runs", f"{p.start_on} to {p.ends_on or 'open'}"),
        ("Plan: the change", p.change),
        ("Plan: the prediction", p.prediction),
        ("Study", p.study or "not yet written"),
    ]
    if item.study is not None:
        when = ("as the meeting saw it" if item.frozen
                else f"computed {packet.prepared_at:%Y-%m-%d} from {data_version(packet.warehouse_version)}")
        facts.append((f"Before and after ({when})", _moved(item.study, packet)))
    act = ci_records.ACT_LABELS[p.act] + (f": {p.act_note}" if p.act_note else "") if p.act else "not yet decided"
    facts.append(("Act", act))
    return facts


def filename(packet: Packet, fmt: str) -> str:
    """meeting-<date>-<workgroup>.html or .md"""
    name = packet.letters.text(packet.workgroup.name) if packet.letters else packet.workgroup.name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
    return f"meeting-{packet.meeting.held_on.isoformat()}-{slug}.{'md' if fmt in ('md', 'markdown') else fmt}"


# --- writing -------------------------------------------------------------------------

# The letters of the packet being written: every piece of text goes through _escape or md_text,
# which read vendors and their people through them.
_WRITING: ContextVar[Letters | None] = ContextVar("packet_letters", default=None)


@contextmanager
def _writing(packet: Packet):
    token = _WRITING.set(packet.letters)
    try:
        yield
    finally:
        _WRITING.reset(token)


def _shown(value: Any) -> str:
    text = "" if value is None else str(value)
    shown = _WRITING.get()
    return shown.text(text) if shown else text


# --- HTML -----------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Arial, sans-serif; color: #262730; line-height: 1.45;
       max-width: 62rem; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; } h2 { border-bottom: 2px solid #262730; padding-bottom: .2rem;
     margin-top: 2.2rem; } h3 { margin-top: 1.6rem; } h4 { margin: 1.2rem 0 .4rem; }
.muted, .questions { color: #595959; font-size: .92rem; } .questions { margin: .2rem 0 .8rem; }
.note { white-space: pre-wrap; background: #F4F5F7; border-left: 4px solid #0072B2; padding: .6rem .8rem; }
.empty { color: #7B7D7D; font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #D0D3D9; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #F0F2F6; } dl { display: grid; grid-template-columns: 13rem 1fr; gap: .2rem .8rem; }
dt { font-weight: 600; } dd { margin: 0; } .record { border: 1px solid #D0D3D9; border-radius: 6px;
     padding: .4rem 1rem .8rem; margin: .8rem 0; break-inside: avoid; }
.overdue { color: #B03A2E; font-weight: 600; } .chart { break-inside: avoid; margin-bottom: 1.5rem; }
@media print { body { max-width: none; margin: 0; } h2 { break-before: page; } h2.first { break-before: avoid; }
               a { color: inherit; text-decoration: none; } }
"""


def to_html(packet: Packet) -> str:
    """The packet as one HTML file that needs nothing else: styles and plotly.js inline."""
    with _writing(packet):
        return _to_html(packet)


def _to_html(packet: Packet) -> str:
    e = _escape
    title, lines = _heading(packet)
    g, m = packet.workgroup, packet.meeting
    out = [f"<header><h1>{e(title)}</h1>", *[f'<p class="muted">{e(line)}</p>' for line in lines], "</header>"]

    out.append('<h2 class="first">The workgroup</h2>')
    out.append(_dl([("Purpose", g.purpose), ("Cadence", g.cadence), ("Format", g.format)]))
    if g.decisions:
        out.append("<h4>What it decides</h4><ul>" + "".join(f"<li>{e(d)}</li>" for d in g.decisions) + "</ul>")
    out.append("<h4>Members</h4>" + html_table(PEOPLE_HEADERS, _people_rows(g.members)))
    out.append("<h4>Attendees</h4>" + html_table(PEOPLE_HEADERS, _people_rows(m.attendees)))

    for number, part in enumerate(ci_records.AGENDA, 1):
        out.append(f"<h2>{number}. {e(part.title)}</h2>")
        out.append('<ul class="questions">' + "".join(f"<li>{e(q)}</li>" for q in part.questions) + "</ul>")
        text = (m.agenda.get(part.key) or "").strip()
        out.append(f'<div class="note">{e(text)}</div>' if text else '<p class="empty">No notes.</p>')
        if part.key == "outcomes_data":
            out.append(_html_outcomes(packet))
        if part.key == "next_steps":
            out.append(_html_next_steps(packet))

    figures = [c.figure for c in packet.charts if c.figure is not None]
    library = f'<script type="text/javascript">{get_plotlyjs()}</script>' if figures else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{e(title)}</title>"
        f"<style>{CSS}</style>{library}</head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )


def _html_outcomes(packet: Packet) -> str:
    e = _escape
    out = []
    if packet.summary:
        out.append("<h3>What the data says</h3><ul>" + "".join(f"<li>{e(s)}</li>" for s in packet.summary) + "</ul>")
    late = _late_rows(packet)
    if late:
        out.append("<h3>Data late, missing or rejected</h3>" + html_table(LATE_HEADERS, late))
    out.append("<h3>Outcome charts</h3>")
    if not packet.charts:
        out.append('<p class="empty">No metric signals, and no record of this meeting is measured on one.</p>')
    for chart in packet.charts:
        out.append(f'<div class="chart"><h4>{e(chart.title)}</h4>')
        out.append(f'<p class="muted">In this packet for: {e(", ".join(chart.reasons))}{e(packet.redrawn)}.</p>')
        if chart.figure is not None:
            out.append(chart.figure.to_html(full_html=False, include_plotlyjs=False, default_height=f"{CHART_HEIGHT}px",
                                            config={"displaylogo": False, "responsive": True}))
        out.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in chart_lines(chart, packet)) + "</ul>")
        if chart.signals:
            out.append("<p><strong>The meeting's signals on these students</strong></p>"
                       + html_table(SIGNAL_HEADERS, _signal_rows(chart, packet)))
        out.append("</div>")
    out.append("<h3>Disparities</h3>")
    gaps = _gap_rows(packet)
    out.append(
        "<p>Gaps between student groups that widened or narrowed beyond chance since the last meeting:</p>"
        + html_table(GAP_HEADERS, gaps) if gaps else
        '<p class="empty">No gap between student groups widened or narrowed beyond chance since the last meeting.</p>'
    )
    for b in packet.breakdowns:
        out.append(f"<h4>{e(b.metric['label'])} by key group, {b.start} to {b.end}{e(packet.redrawn)}</h4>"
                   + html_table(BREAKDOWN_HEADERS, _breakdown_rows(b, packet)))
    out.append("<h3>Commitments carried forward</h3>")
    out.append("".join(_html_commitment(item, packet) for item in packet.carried)
               or '<p class="empty">No open commitment from earlier meetings.</p>')
    return "\n".join(out)


def _html_next_steps(packet: Packet) -> str:
    e = _escape
    out = ["<h3>Commitments made at this meeting</h3>",
           "".join(_html_commitment(item, packet) for item in packet.made)
           or '<p class="empty">No commitment was made at this meeting.</p>',
           "<h3>Root-cause analyses</h3>"]
    if not packet.root_causes:
        out.append('<p class="empty">No root-cause analysis at this meeting.</p>')
    for r in packet.root_causes:
        metric = packet.metrics.get(r.metric_id, {"label": r.metric_id})
        who = whose(sorted_filters(r.slice.filters(), packet.scope), packet.names, packet.scope)
        out.append(f'<div class="record"><h4>{e(r.problem)}</h4><p class="muted">{e(metric["label"])}, {e(who)}</p>')
        out.append("<p><strong>Five whys</strong></p><ol>" + "".join(f"<li>{e(w)}</li>" for w in r.whys) + "</ol>")
        out.append("<p><strong>Causes within reach</strong>, in priority order</p><ol>"
                   + "".join(f"<li>{e(c.text)}</li>" for c in r.within_reach) + "</ol>")
        beyond = [c for c in r.causes if not c.controllable]
        if beyond:
            out.append("<p><strong>Set aside</strong> (beyond anyone here)</p><ul>"
                       + "".join(f"<li>{e(c.text)}</li>" for c in beyond) + "</ul>")
        if r.hmw:
            out.append("<p><strong>How might we</strong></p><ul>"
                       + "".join(f"<li>{e(h)}</li>" for h in r.hmw) + "</ul>")
        for theme, ideas in r.themes.items():
            out.append(f"<p><strong>Ideas: {e(theme)}</strong></p><ul>" + "".join(
                f"<li>{e(i.text)}{' <strong>(chosen)</strong>' if _is_chosen(r, i) else ''}</li>"
                for i in ideas) + "</ul>")
        if r.chosen_idea is not None:
            out.append(f"<p><strong>Chosen idea:</strong> {e(_chosen(r))}</p>")
        out.append("</div>")
    out.append("<h3>PDSA cycles</h3>")
    if not packet.pdsa:
        out.append('<p class="empty">No PDSA cycle under way or begun at this meeting.</p>')
    for item in packet.pdsa:
        out.append(f'<div class="record"><h4>{e(item.cycle.title)}</h4>' + _dl(_pdsa_facts(item, packet)))
        if item.cycle.observations:
            out.append("<p><strong>Do: what happened</strong></p>" + html_table(
                OBSERVATION_HEADERS, _observation_rows(item.cycle)))
        out.append("</div>")
    return "\n".join(out)


def _html_commitment(item: CommitmentItem, packet: Packet) -> str:
    e = _escape
    flag = ' <span class="overdue">overdue</span>' if item.overdue else ""
    return (
        f'<div class="record"><h4>{e(item.commitment.action)}{flag}</h4>' + _dl(_commitment_facts(item, packet))
        + "<p><strong>Status log</strong></p>" + html_table(LOG_HEADERS, _log_rows(item.commitment)) + "</div>"
    )


def _escape(value: Any) -> str:
    return html.escape(_shown(value))


def _dl(facts: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{_escape(k)}</dt><dd>{_escape(v) or '–'}</dd>" for k, v in facts) + "</dl>"


def html_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A table of text, every cell escaped; "None." for no rows."""
    if not rows:
        return '<p class="empty">None.</p>'
    head = "".join(f"<th>{_escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- Markdown -------------------------------------------------------------------------

MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "&#91;", "]": "&#93;", "|": "&#124;", "$": "&#36;"}


def to_markdown(packet: Packet) -> str:
    """The packet as Markdown: the same content, each chart told in words."""
    with _writing(packet):
        return _to_markdown(packet)


def _to_markdown(packet: Packet) -> str:
    title, lines = _heading(packet)
    g, m = packet.workgroup, packet.meeting
    out = [f"# {md_text(title)}", "", *[f"_{md_text(line)}_  " for line in lines], ""]
    out += ["## The workgroup", "", *_md_facts([("Purpose", g.purpose), ("Cadence", g.cadence), ("Format", g.format)])]
    if g.decisions:
        out += ["", "What it decides:", "", *[f"- {md_text(d)}" for d in g.decisions]]
    out += ["", "### Members", "", *md_table(PEOPLE_HEADERS, _people_rows(g.members))]
    out += ["", "### Attendees", "", *md_table(PEOPLE_HEADERS, _people_rows(m.attendees))]
    for number, part in enumerate(ci_records.AGENDA, 1):
        out += ["", f"## {number}. {part.title}", "", *[f"- _{md_text(q)}_" for q in part.questions], ""]
        text = (m.agenda.get(part.key) or "").strip()
        out += [f"> {md_text(line)}" if line.strip() else ">" for line in text.splitlines()] if text else ["_No notes._"]
        if part.key == "outcomes_data":
            out += _md_outcomes(packet)
        if part.key == "next_steps":
            out += _md_next_steps(packet)
    return "\n".join(out).rstrip() + "\n"


def _md_outcomes(packet: Packet) -> list[str]:
    out = []
    if packet.summary:
        out += ["", "### What the data says", "", *[f"- {md_text(s)}" for s in packet.summary]]
    late = _late_rows(packet)
    if late:
        out += ["", "### Data late, missing or rejected", "", *md_table(LATE_HEADERS, late)]
    out += ["", "### Outcome charts"]
    if not packet.charts:
        out += ["", "_No metric signals, and no record of this meeting is measured on one._"]
    for chart in packet.charts:
        why = f"_In this packet for: {md_text(', '.join(chart.reasons))}{md_text(packet.redrawn)}._"
        out += ["", f"#### {md_text(chart.title)}", "", why, ""]
        out += [f"- {md_text(line)}" for line in chart_lines(chart, packet)]
        if chart.signals:
            out += ["", "The meeting's signals on these students:", "",
                    *md_table(SIGNAL_HEADERS, _signal_rows(chart, packet))]
    out += ["", "### Disparities", ""]
    gaps = _gap_rows(packet)
    if gaps:
        out += ["Gaps between student groups that widened or narrowed beyond chance since the last meeting:", "",
                *md_table(GAP_HEADERS, gaps)]
    else:
        out += ["_No gap between student groups widened or narrowed beyond chance since the last meeting._"]
    for b in packet.breakdowns:
        out += ["", f"#### {md_text(b.metric['label'])} by key group, {b.start} to {b.end}{md_text(packet.redrawn)}", "",
                *md_table(BREAKDOWN_HEADERS, _breakdown_rows(b, packet))]
    out += ["", "### Commitments carried forward"]
    out += ([line for item in packet.carried for line in _md_commitment(item, packet)]
            or ["", "_No open commitment from earlier meetings._"])
    return out


def _md_next_steps(packet: Packet) -> list[str]:
    out = ["", "### Commitments made at this meeting"]
    out += ([line for item in packet.made for line in _md_commitment(item, packet)]
            or ["", "_No commitment was made at this meeting._"])
    out += ["", "### Root-cause analyses"]
    if not packet.root_causes:
        out += ["", "_No root-cause analysis at this meeting._"]
    for r in packet.root_causes:
        metric = packet.metrics.get(r.metric_id, {"label": r.metric_id})
        who = whose(sorted_filters(r.slice.filters(), packet.scope), packet.names, packet.scope)
        out += ["", f"#### {md_text(r.problem)}", "", f"_{md_text(metric['label'])}, {md_text(who)}_", "", "Five whys:", ""]
        out += [f"{i}. {md_text(w)}" for i, w in enumerate(r.whys, 1)]
        out += ["", "Causes within reach, in priority order:", "",
                *[f"{i}. {md_text(c.text)}" for i, c in enumerate(r.within_reach, 1)]]
        beyond = [c for c in r.causes if not c.controllable]
        if beyond:
            out += ["", "Set aside (beyond anyone here):", "", *[f"- {md_text(c.text)}" for c in beyond]]
        if r.hmw:
            out += ["", "How might we:", "", *[f"- {md_text(h)}" for h in r.hmw]]
        for theme, ideas in r.themes.items():
            out += ["", f"Ideas: {md_text(theme)}", ""]
            out += [f"- {md_text(i.text)}{' **(chosen)**' if _is_chosen(r, i) else ''}" for i in ideas]
        if r.chosen_idea is not None:
            out += ["", f"**Chosen idea:** {md_text(_chosen(r))}"]
    out += ["", "### PDSA cycles"]
    if not packet.pdsa:
        out += ["", "_No PDSA cycle under way or begun at this meeting._"]
    for item in packet.pdsa:
        out += ["", f"#### {md_text(item.cycle.title)}", "", *_md_facts(_pdsa_facts(item, packet))]
        if item.cycle.observations:
            out += ["", "Do, what happened:", "", *md_table(OBSERVATION_HEADERS, _observation_rows(item.cycle))]
    return out


def _md_commitment(item: CommitmentItem, packet: Packet) -> list[str]:
    flag = " **(overdue)**" if item.overdue else ""
    return ["", f"#### {md_text(item.commitment.action)}{flag}", "", *_md_facts(_commitment_facts(item, packet)), "",
            "Status log:", "", *md_table(LOG_HEADERS, _log_rows(item.commitment))]


def md_text(value: Any) -> str:
    """Text as Markdown shows it: no markup, HTML, image, link or math of its own, and
    entities (`&lt;`) read as typed. Stricter than safe_text.markdown, which keeps the writer's
    own formatting: the packet shows notes as they were typed, as its HTML does. Characters that
    could start HTML, a link or an image, a table cell or math are written as entities: a URL in
    the text becomes a link that swallows a backslash escape right after it."""
    text = _shown(value)
    text = re.sub(r"([\\`*_#])", r"\\\1", text)
    text = "".join(MD_ENTITIES.get(char, char) for char in text)
    return " ".join(text.split())


def _md_facts(facts: list[tuple[str, str]]) -> list[str]:
    return [f"- **{md_text(k)}:** {md_text(v) or '–'}" for k, v in facts]


def md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table's lines, every cell through `md_text`; "_None._" for no rows."""
    if not rows:
        return ["_None._"]
    return [
        "| " + " | ".join(md_text(h) for h in headers) + " |",
        "|" + "---|" * len(headers),
        *["| " + " | ".join(md_text(v) for v in row) + " |" for row in rows],
    ]
