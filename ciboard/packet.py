"""The meeting packet: one meeting's agenda, outcome charts and their signals, disparities,
commitments, root-cause analyses and PDSA cycles, gathered for one reader; ciboard.packet_files
writes it out as HTML and Markdown.

A packet holds what its reader's scope may see: every record comes through the meeting
store's scoped reads and every number through the query layer, so a vendor's packet is its
own slice, and small cells are hidden for everyone but analysts.

A finalised meeting's numbers (signals, gaps, late data, how each commitment's metric moved,
the PDSA cycles under way) are its frozen snapshot, never recomputed: the packet shows what
was on screen. Its charts and breakdown tables are drawn, up to the meeting's date, from the
warehouse version the meeting pinned; if that version is gone they are drawn afresh and say
which version they come from.
"""

import json
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ciboard import charts, ci_records, followup, letters, meetings, movements, signals
from ciboard.access import Scope, whose_students
from ciboard.appdb import AppDB
from ciboard.ci_records import Commitment, Meeting, PdsaCycle, RootCause, Workgroup
from ciboard.followup import Prefill
from ciboard.letters import Letters
from ciboard.movements import Movement
from ciboard.queries import DIMENSIONS, NOT_TUTORED, data_map, run
from ciboard.warehouse import VersionGone, Warehouse, data_version

# Breakdown tables by every key group, for this many of the meeting's metrics.
BREAKDOWN_METRICS = 2
CHART_HEIGHT = 420


@dataclass(frozen=True)
class Chart:
    """An SPC chart of one metric for one slice, and the meeting's signals on its students."""

    metric: dict
    filters: dict[str, list[str]]
    title: str
    reasons: list[str]  # why it is in the packet: signals, a commitment, a PDSA cycle, an analysis
    charted: pd.DataFrame | None  # the chart's weeks; None when there are too few to chart
    figure: go.Figure | None
    signals: list[dict]
    note: str = ""


@dataclass(frozen=True)
class Breakdown:
    """One metric over the meeting's look-back, by each key student group."""

    metric: dict
    start: date
    end: date
    table: pd.DataFrame  # dimension, group, value, n; hidden cells read why (privacy.for_export)


@dataclass(frozen=True)
class CommitmentItem:
    commitment: Commitment
    status: str
    overdue: bool
    days_overdue: int
    as_of: date
    movement: Movement | None = None


@dataclass(frozen=True)
class PdsaItem:
    cycle: PdsaCycle
    study: Movement | None
    frozen: bool  # the study as the meeting saw it, or computed when the packet was made


@dataclass(frozen=True)
class Packet:
    scope: Scope
    workgroup: Workgroup
    meeting: Meeting
    frozen: bool  # the numbers come from the finalised meeting's snapshot
    prefill: Prefill | None  # None when the scope may not see the meeting's numbers
    summary: list[str]
    charts: list[Chart]
    breakdowns: list[Breakdown]
    carried: list[CommitmentItem]
    made: list[CommitmentItem]
    root_causes: list[RootCause]
    pdsa: list[PdsaItem]
    metrics: dict[str, dict]
    names: dict[str, dict[str, str]]  # vendor_id and school_id: value -> name, as the scope sees them
    warehouse_version: str  # what the charts and breakdowns were read from
    min_cell: int
    prepared_at: datetime
    notes: list[str] = field(default_factory=list)
    drawn_afresh: bool = False  # a finalised meeting's charts read from a later version: its own is gone
    letters: Letters | None = None  # a lettered packet: vendors and their people as the meeting's screen shows them

    @property
    def hidden(self) -> str:
        return f"fewer than {self.min_cell}"

    @property
    def redrawn(self) -> str:
        """Said of charts and breakdowns read from a later warehouse than the finalised meeting's."""
        if not self.drawn_afresh:
            return ""
        return f" (drawn afresh from {data_version(self.warehouse_version)})"


# --- gathering ------------------------------------------------------------------------


def build(
    warehouse: Warehouse, db: AppDB, scope: Scope, meeting_id: int, *, now: datetime | None = None,
    lettered: bool = False,
) -> Packet:
    """Everything one meeting's packet holds, as `scope` may see it (ScopeError for a vendor
    asking for a meeting of a workgroup it is not in). `lettered`: with vendors as the letters the
    meeting draws, the same as its screen (ciboard.letters), and their people as their staff."""
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    meeting = meetings.meeting(db, scope, meeting_id)
    group = meetings.workgroup(db, scope, meeting.workgroup_id)
    # Drawn over the vendors the screen letters now, even for minutes pinned to an older version;
    # students no vendor tutors are no vendor and get no letter, as on the screen (ciboard.dashboard).
    vendors = {v: name for v, name in _names(warehouse, scope).get("vendor_id", {}).items() if v != NOT_TUTORED}
    shown = letters.for_meeting(db, letters.meeting_key(meeting.id), vendors) if lettered else None
    # Finalised minutes pinned the version their numbers came from: draw everything from it (on
    # a lake, a file version moved in is read as the snapshot it became). If it is gone, they
    # are drawn afresh from the current one, and the packet says so below.
    drawn_afresh = bool(meeting.is_final and meeting.warehouse_version)
    if drawn_afresh:
        with suppress(VersionGone):
            warehouse = warehouse.at(meeting.warehouse_version)
            drawn_afresh = False
    catalogue = data_map(warehouse).set_index("metric_id")
    metrics = {m: {"metric_id": m, **row} for m, row in catalogue.to_dict("index").items()}
    min_cell = warehouse.settings.min_cell_size
    notes = []

    if meeting.is_final:
        prefill = followup.frozen_prefill(warehouse, db, scope, meeting)
        if prefill is None:
            notes.append("The numbers of this meeting cover several vendors: they are shown to district staff only.")
    else:
        prefill = followup.outcomes_prefill(warehouse, db, scope, group.id, meeting.held_on)
    since = date.fromisoformat(prefill.since) if prefill else meetings.look_back_from(
        db, scope, group.id, meeting.held_on)[0]
    primary = sorted_filters(prefill.filters if prefill else {}, scope)
    if not primary and scope.role != "vendor" and group.vendor_ids:
        primary = {"vendor_id": sorted(group.vendor_ids)}

    carried = [_commitment_item(item, meeting.held_on) for item in (prefill.commitments if prefill else [])]
    carried = [c for c in carried if c.commitment.meeting_id != meeting.id]
    today = now.date()
    made = [
        CommitmentItem(c, c.status_on(today) or c.status, c.is_overdue_on(today),
                       (today - c.due_on).days if c.is_overdue_on(today) else 0, today)
        for c in meetings.commitments(db, scope, meeting_id=meeting.id)
    ]
    analyses = meetings.root_causes(db, scope, meeting_id=meeting.id)
    pdsa = [
        PdsaItem(ci_records.from_json(PdsaCycle, item["cycle"]), _movement(item["study"]), meeting.is_final)
        for item in (prefill.pdsa if prefill else [])
    ]
    listed = {item.cycle.id for item in pdsa}
    begun = {r.pdsa_id for r in analyses if r.pdsa_id is not None}
    pdsa += [
        PdsaItem(cycle, movements.pdsa_study(warehouse, scope, cycle), False)
        for cycle in meetings.pdsa_cycles(db, scope)
        if cycle.id not in listed and (cycle.meeting_id == meeting.id or cycle.id in begun)
    ]

    names = _names(warehouse, scope)
    wanted = _charts_wanted(prefill, primary, carried + made, pdsa, analyses, scope)
    drawn = [
        _chart(warehouse, db, scope, metrics[metric_id], filters, reasons, since, meeting.held_on, prefill, names, shown)
        for metric_id, filters, reasons in wanted
    ]
    breakdowns = _breakdowns(warehouse, scope, metrics, wanted, prefill, primary, since, meeting.held_on)
    version = warehouse.version()
    if drawn_afresh:
        notes.append(
            f"The meeting's numbers are those it saw, from {data_version(meeting.warehouse_version)}, which is no "
            f"longer kept. Charts and breakdowns are drawn from {data_version(version)}, up to the meeting's date: "
            "data loaded since may make them differ."
        )
    return Packet(
        scope=scope, workgroup=group, meeting=meeting, frozen=meeting.is_final, prefill=prefill,
        summary=followup.summary(prefill, warehouse) if prefill else [],
        charts=drawn, breakdowns=breakdowns, carried=carried, made=made, root_causes=analyses, pdsa=pdsa,
        metrics=metrics, names=names, warehouse_version=version, min_cell=min_cell, prepared_at=now, notes=notes,
        drawn_afresh=drawn_afresh,
        letters=shown,
    )


def _movement(data: dict | None) -> Movement | None:
    return Movement.from_dict(data) if data else None


def _commitment_item(item: dict, held_on: date) -> CommitmentItem:
    return CommitmentItem(
        ci_records.from_json(Commitment, item["commitment"]), item["status"], item["overdue"], item["days_overdue"],
        held_on, _movement(item["movement"]),
    )


def sorted_filters(filters: dict, scope: Scope) -> dict[str, list[str]]:
    """Filters as sorted lists of text; a vendor's own id goes without saying."""
    found = {}
    for name, values in (filters or {}).items():
        values = values if isinstance(values, (list, tuple)) else [values]
        values = sorted(str(v) for v in values if v is not None)
        if values and not (scope.role == "vendor" and name == "vendor_id"):
            found[name] = values
    return {name: found[name] for name in DIMENSIONS if name in found}


def _charts_wanted(prefill, primary, commitments, pdsa, analyses, scope) -> list[tuple[str, dict, list[str]]]:
    """(metric, filters, reasons) per chart: each metric with a signal, for the meeting's
    slice, then each metric a commitment, PDSA cycle or analysis is measured on, for its slice."""
    wanted: dict[tuple, tuple[str, dict, list[str]]] = {}

    def add(metric_id, filters, reason):
        key = (metric_id, json.dumps(filters, sort_keys=True))
        reasons = wanted.setdefault(key, (metric_id, filters, []))[2]
        if reason not in reasons:
            reasons.append(reason)

    for s in prefill.signals if prefill else []:
        add(s["metric_id"], primary, "signals")
    for item in commitments:
        if item.commitment.metric_id:
            add(item.commitment.metric_id, sorted_filters(item.commitment.slice.filters(), scope), "commitment")
    for item in pdsa:
        add(item.cycle.metric_id, sorted_filters(item.cycle.slice.filters(), scope), "PDSA cycle")
    for analysis in analyses:
        add(analysis.metric_id, sorted_filters(analysis.slice.filters(), scope), "root-cause analysis")
    return list(wanted.values())


def _chart(warehouse, db, scope, metric, filters, reasons, since, held_on, prefill, names, shown) -> Chart:
    title = f"{metric['label']}: {whose(filters, names, scope)}"
    mine = [s for s in (prefill.signals if prefill else []) if s["metric_id"] == metric["metric_id"]
            and _within(s, filters)]
    if metric["frequency"] != "weekly":
        note = "Assessment windows come three times a year: too few points for a control chart."
        return Chart(metric, filters, title, reasons, None, None, mine, note)
    start = _school_year_start(warehouse, scope, held_on)
    series = run(warehouse, "series", scope, {
        "metric": metric["metric_id"], "grain": "week", "start": start, "end": held_on, **filters,
    })
    if series["value"].notna().sum() < signals.MIN_POINTS:
        note = f"Fewer than {signals.MIN_POINTS} weeks with data that this account may see: too few to chart."
        return Chart(metric, filters, title, reasons, None, None, mine, note)
    events = run(warehouse, "events", scope, {
        "start": start, "end": held_on, "metric": metric["metric_id"],
        "vendor_id": filters.get("vendor_id"), "school_id": filters.get("school_id"),
    })
    charted = signals.chart(series, metric, closed=signals.closures(events, metric["metric_id"]))
    charted["suppressed"] = series["suppressed"].to_numpy()
    marks = meetings.pdsa_marks(db, scope, metric["metric_id"], filters)
    marks = marks[marks["starts_on"] <= held_on]
    events = pd.concat([events, marks[events.columns]], ignore_index=True) if len(marks) else events
    figure = charts.spc_figure(
        charted, metric, events=shown.frame(events) if shown else events,
        height=CHART_HEIGHT, min_cell=warehouse.settings.min_cell_size if not scope.suppresses_small_cells else None,
    )
    hidden = int(charted["suppressed"].sum())
    note = (f"{hidden} week(s) over fewer than {warehouse.settings.min_cell_size} students are hidden and not drawn."
            if hidden else "")
    return Chart(metric, filters, title, reasons, charted, figure, mine, note)


def _within(signal: dict, filters: dict) -> bool:
    """Whether a signal is on some of the chart's students: every group the chart fixes, the
    signal's chart fixes too (a vendor's chart takes the signals of its groups)."""
    own = {"vendor_id": signal.get("vendor_id")}
    if signal.get("dimension"):
        own[signal["dimension"]] = signal.get("group")
    for name, values in filters.items():
        if own.get(name) is None and name == "vendor_id":
            continue
        if str(own.get(name)).lower() not in {v.lower() for v in values}:
            return False
    return True


def _breakdowns(warehouse, scope, metrics, wanted, prefill, primary, since, held_on) -> list[Breakdown]:
    """The meeting's first metrics (those its records are measured on, else those whose gaps
    moved, else those that signal) by every key student group, over the look-back."""
    chosen = [m for m, _, reasons in wanted if reasons != ["signals"]]
    chosen += [g["metric_id"] for g in (prefill.gaps if prefill else [])]
    chosen += [m for m, _, _ in wanted]
    found = []
    for metric_id in list(dict.fromkeys(chosen))[:BREAKDOWN_METRICS]:
        rows = []
        cells_by = followup.group_cells(warehouse, scope, metrics[metric_id], followup.KEY_GROUPS, (since, held_on), primary)
        for dimension, cells in cells_by.items():
            cells = cells[cells[dimension].notna()]
            rows.append(cells.rename(columns={dimension: "group"}).assign(dimension=dimension)[
                ["dimension", "group", "value", "n", "suppressed"]])
        table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        if not table.empty:
            table["group"] = table["group"].astype(str)
            found.append(Breakdown(metrics[metric_id], since, held_on, table))
    return found


def _names(warehouse: Warehouse, scope: Scope) -> dict[str, dict[str, str]]:
    choices = run(warehouse, "choices", scope)
    return {
        dimension: dict(zip(rows["value"].astype(str), rows["label"].astype(str)))
        for dimension, rows in choices[choices["dimension"].isin(["vendor_id", "school_id"])].groupby("dimension")
    }


def _school_year_start(warehouse: Warehouse, scope: Scope, day: date) -> date | None:
    years = run(warehouse, "choices", scope).query("dimension == 'school_year'")
    holding = years[(years["starts_on"] <= day) & (years["ends_on"] >= day)]
    return holding["starts_on"].iloc[0] if not holding.empty else None


# --- words ----------------------------------------------------------------------------


def name_of(dimension: str, value: Any, names: dict) -> str:
    value = str(value)
    label = names.get(dimension, {}).get(value)
    return f"{label} ({value})" if label and label != value else value


def group_name(dimension: str, value: Any, names: dict) -> str:
    if dimension in ("vendor_id", "school_id"):
        return name_of(dimension, value, names)
    return f"{dimension.replace('_', ' ')}: {charts.group_value(value)}"


def whose(filters: dict, names: dict, scope: Scope) -> str:
    """Whose students a chart or record is about, in words."""
    parts = []
    if scope.role == "vendor":
        parts.append(name_of("vendor_id", scope.vendor_id, names))
    for name, values in filters.items():
        parts.append(", ".join(group_name(name, v, names) for v in values))
    return " · ".join(parts) or whose_students(scope, lambda d, v: name_of(d, v, names))
