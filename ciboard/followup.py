"""Did the action move the data? The numbers a CI meeting reads against its records: the
outcomes-data part of the agenda, prefilled, with how each open commitment's and PDSA cycle's
metric moved (ciboard.movements).

Every number comes through the query layer in the caller's scope, so a vendor's prefill
holds its own students only, and small cells stay hidden from everyone but analysts.
Results are plain JSON values (ISO dates, None for a missing number), so the snapshot a
finalised meeting keeps is exactly what the meeting saw.
"""

import copy
import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from ciboard import ci_records, comparisons, meetings, signal_store, signals, student_lists
from ciboard.access import Scope
from ciboard.appdb import AppDB
from ciboard.charts import format_change, format_value, group_value, in_sentence
from ciboard.ci_records import Commitment, Slice
from ciboard.movements import (
    BEFORE_WEEKS,
    Movement,
    json_value,
    metric_movement,
    metric_of,
    number,
    school_year_start,
    tested_windows,
)
from ciboard.queries import BOOLEAN_DIMENSIONS, DIMENSIONS, breakdowns, data_map, run
from ciboard.stats import compare, disparity
from ciboard.warehouse import VersionGone, Warehouse

# The groups whose gaps a meeting checks every time: the disaggregations the CI guide asks for.
KEY_GROUPS = ("race_ethnicity", "gender", "econ_disadvantaged", "english_learner", "special_education", "baseline_band")
GAP_KINDS = ("payment outcome", "process outcome")
# A meeting reads the strongest signals first; the rest are a "show all" away.
TOP_SIGNALS = 10
LATE_STATUSES = ("late", "missing", "rejected")


@dataclass(frozen=True)
class Prefill:
    """The outcomes-data part of a meeting's agenda, as JSON values."""

    workgroup_id: int
    held_on: str
    since: str
    previous_meeting_id: int | None
    filters: dict
    warehouse_version: str
    signals: list[dict] = field(default_factory=list)
    signal_counts: dict = field(default_factory=dict)
    gaps: list[dict] = field(default_factory=list)
    late_or_missing: list[dict] = field(default_factory=list)
    commitments: list[dict] = field(default_factory=list)
    pdsa: list[dict] = field(default_factory=list)
    # Per follow-up list (ciboard.student_lists), its students now and at the previous meeting:
    # counts only, never student ids, so a packet can carry them to anyone at the table.
    follow_up: dict = field(default_factory=dict)
    # The server was still preparing this version's signals (ciboard.signal_store): a screen
    # shows the rest meanwhile, and nothing freezes a prefill without its signals.
    signals_pending: bool = False
    # The same for the other parts it prepares: "gaps", "movements" (of commitments and cycles).
    preparing: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """Whether a part is still being prepared: such a prefill is shown, never frozen."""
        return self.signals_pending or bool(self.preparing)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Prefill":
        return cls(**data)


def outcomes_prefill(
    warehouse: Warehouse,
    db: AppDB,
    scope: Scope,
    workgroup_id: int,
    held_on: date,
    filters: Mapping[str, Any] | None = None,
    *,
    wait: bool = True,
) -> Prefill:
    """What the outcomes-data part of a meeting opens with: the control-chart signals since
    the workgroup's previous meeting (or the last eight weeks), the gaps between student
    groups that widened or narrowed since then, late, missing and rejected submissions, every
    open commitment with how its metric moved since it was made, and the PDSA cycles under way.

    `filters` are the filter bar's dimension filters (dates are the meeting's). A workgroup
    of vendors reads only those vendors' students. Without `wait`, what the server is still
    preparing for this version (signals, gaps, movements) is left out and the prefill says so
    (`signals_pending`, `preparing`).
    """
    group = meetings.workgroup(db, scope, workgroup_id)
    since, previous = meetings.look_back_from(db, scope, workgroup_id, held_on)
    narrowed = {k: v for k, v in (filters or {}).items() if k in DIMENSIONS and v not in (None, "", [])}
    if group.vendor_ids and "vendor_id" not in narrowed and scope.role != "vendor":
        narrowed["vendor_id"] = list(group.vendor_ids)
    start = school_year_start(warehouse, scope, held_on)
    found = _signals(warehouse, scope, start, held_on, since, narrowed, wait)
    pending = found is None
    # What the server is preparing for this version is shown once it is ready, not computed here
    # beside it: on two cores that would double the wait for both.
    gaps = signal_store.gaps_of(warehouse, scope, since, held_on, narrowed, remembered_gap_changes, wait=wait)
    reviewed, cycles = meetings.under_review(db, scope, workgroup_id, held_on, narrowed.get("vendor_id") or ())
    movements_pending = []

    def moved(metric_id: str | None, slice: Slice, start: date) -> dict | None:
        if not metric_id:
            return None
        found = movement_stored(warehouse, scope, metric_id, slice, start, held_on, wait=wait)
        if found is not None:
            return found
        movements_pending.append(metric_id)
        return Movement(
            metric_id=metric_id, label=metric_of(warehouse, metric_id)["label"], slice=json_value(asdict(slice)),
            since=start.isoformat(), until=held_on.isoformat(), status="being prepared",
            note="Being prepared for this version of the data: shown here in a moment.",
        ).to_dict()

    found = pd.DataFrame(columns=signals.SIGNAL_COLUMNS) if pending else found
    counts = found["point_type"].value_counts().to_dict() if not found.empty else {}
    return Prefill(
        workgroup_id=workgroup_id,
        held_on=held_on.isoformat(),
        since=since.isoformat(),
        previous_meeting_id=previous.id if previous else None,
        filters=json_value(narrowed),
        warehouse_version=warehouse.version(),
        signals=json_records(found),
        signal_counts={str(k): int(v) for k, v in counts.items()},
        gaps=gaps if gaps is not None else [],
        late_or_missing=_late_or_missing(warehouse, scope, since, held_on, narrowed),
        commitments=[_commitment_item(item, moved(item.commitment.metric_id, item.commitment.slice, item.commitment.made_on))
                     for item in reviewed],
        pdsa=[{"cycle": ci_records.as_json(cycle), "stage": cycle.stage, "study": moved(cycle.metric_id, cycle.slice, cycle.start_on)}
              for cycle in cycles],
        follow_up=follow_up_counts(warehouse, scope, since, held_on, narrowed),
        signals_pending=pending,
        preparing=[part for part, waiting in (("gaps", gaps is None), ("movements", bool(movements_pending))) if waiting],
    )


def movement_stored(warehouse: Warehouse, scope: Scope, metric_id: str, slice: Slice | None, since: date,
                    until: date | None, *, wait: bool = True) -> dict | None:
    """`metric_movement(...).to_dict()`, from the one the server stored for this version where
    it has. While the server prepares it: with `wait`, waiting is sooner than computing it again
    beside it; without, None."""
    slice = slice or Slice()
    return signal_store.movement_of(warehouse, scope, metric_id, asdict(slice), since, until,
                                    lambda: metric_movement(warehouse, scope, metric_id, slice, since, until).to_dict(),
                                    wait=wait)


def movement(warehouse: Warehouse, scope: Scope, metric_id: str, slice: Mapping[str, Any], since: date,
             until: date | None) -> dict:
    """`metric_movement` as a dict, for `signal_store.prepare` (the slice as a dict)."""
    return metric_movement(warehouse, scope, metric_id, Slice(**slice), since, until).to_dict()



def follow_up_counts(
    warehouse: Warehouse, scope: Scope, since: date, until: date, filters: Mapping[str, Any] | None = None
) -> dict:
    """Each follow-up list's students on `until` and on `since` (the previous meeting), in the
    scope: None where the scope may not see so small a count."""
    now = student_lists.counts(warehouse, scope, until, filters)
    then = student_lists.counts(warehouse, scope, since, filters)
    return {key: {"now": now.get(key), "then": then.get(key)} for key in student_lists.LISTS}


def frozen_prefill(warehouse: Warehouse, db: AppDB, scope: Scope, meeting: ci_records.Meeting) -> Prefill | None:
    """A finalised meeting's snapshot, as the scope may see it, on its screen and in its packet.
    The meeting store gives a vendor the numbers of its own workgroups only; within them, a
    vendor keeps its own records and rows. A snapshot an analyst froze can hold small cells:
    others read them hidden. Its follow-up counts are exact then, and a count carries its noise
    from the students behind it, which the snapshot does not keep: a reader who may not see the
    students reads them counted again in its own scope from `warehouse`, the version the meeting
    pinned; where that is gone, with the small ones hidden."""
    if not meeting.snapshot:
        return None
    min_cell = warehouse.settings.min_cell_size
    data = copy.deepcopy(meeting.snapshot["prefill"])
    if scope.role == "vendor":
        own = (None, scope.vendor_id)
        seen_commitments = {c.id for c in meetings.commitments(db, scope)}
        seen_cycles = {p.id for p in meetings.pdsa_cycles(db, scope)}
        data["signals"] = [s for s in data["signals"] if s.get("vendor_id") in own]
        data["late_or_missing"] = [r for r in data["late_or_missing"] if r.get("vendor_id") in own]
        data["commitments"] = [c for c in data["commitments"] if c["commitment"]["id"] in seen_commitments]
        data["pdsa"] = [p for p in data["pdsa"] if p["cycle"]["id"] in seen_cycles]
        # Follow-up counts pool the workgroup's vendors: a vendor keeps them only when they are its own.
        if data["filters"].get("vendor_id") not in ([scope.vendor_id], scope.vendor_id):
            data["follow_up"] = {}
        data["filters"] = {k: v for k, v in data["filters"].items() if k != "vendor_id"}
    if data.get("follow_up") and scope.protects_follow_up_counts:
        if warehouse.version() == meeting.warehouse_version:
            data["follow_up"] = follow_up_counts(warehouse, scope, date.fromisoformat(data["since"]),
                                                 date.fromisoformat(data["held_on"]), data["filters"])
        else:
            # The students behind the counts are gone with their version: the small ones hidden.
            data["follow_up"] = {key: {when: n if n is None or n >= min_cell else None for when, n in moved.items()}
                                 for key, moved in data["follow_up"].items()}
    if scope.suppresses_small_cells:
        data["signals"] = [_hide_small(s, s.get("n"), min_cell, ("value", "center", "lower", "upper", "strength", "n"))
                           for s in data["signals"]]
        data["gaps"] = [_hide_small(g, g.get("n_now"), min_cell, ("gap_then", "gap_now", "value_now", "n_now",
                                                                    "change", "change_low", "change_high"))
                        for g in data["gaps"]]
        for item in data["commitments"]:
            item["movement"] = _hide_small_movement(item["movement"], min_cell)
        for item in data["pdsa"]:
            item["study"] = _hide_small_movement(item["study"], min_cell)
    return Prefill.from_dict(data)


def _hide_small(row: dict, n: Any, min_cell: int, measures: tuple[str, ...]) -> dict:
    if n is None or n >= min_cell:
        return row
    return {**row, **{m: None for m in measures}, "hidden": True}


def _hide_small_movement(movement: dict | None, min_cell: int) -> dict | None:
    if not movement or movement.get("status") != "ok":
        return movement
    if all(movement[p]["students"] >= min_cell for p in ("before", "after")):
        return movement
    return {**movement, "status": "hidden", "before": None, "after": None, "difference": None, "low": None,
            "high": None, "verdict": "", "signal": None,
            "note": f"Hidden: fewer than {min_cell} students stand behind one of the two periods."}


def _signals(warehouse, scope, start, end, since, filters, wait) -> pd.DataFrame | None:
    read_as, narrowed = signal_store.meeting_reading(scope, filters)
    found = signal_store.signals_of(warehouse, read_as, start=start, end=end, since=since, filters=narrowed, wait=wait)
    vendors = filters.get("vendor_id") or []
    if found is None or len(vendors) != 1 or read_as.role == "vendor":
        return found
    # Filtered to one vendor, the district's charts are that vendor's: each chart once.
    found["vendor_id"] = found["vendor_id"].fillna(vendors[0])
    return found.drop_duplicates(["metric_id", "vendor_id", "dimension", "group"]).reset_index(drop=True)


def snapshot(prefill: Prefill, filters: Mapping[str, Any] | None = None) -> dict:
    """What `meetings.finalise` freezes: the prefill and the filters on screen."""
    return {"prefill": prefill.to_dict(), "filters": json_value(dict(filters if filters is not None else prefill.filters))}


def finalise(
    warehouse: Warehouse,
    db: AppDB,
    scope: Scope,
    meeting_id: int,
    frozen: Mapping[str, Any] | None,
    *,
    by: str,
    revision: int | None = None,
    at: datetime | None = None,
) -> ci_records.Meeting:
    """Freezes a meeting's minutes with the numbers on screen (`frozen`, from `snapshot`) and
    pins the warehouse version those numbers were read from, so its packet is drawn from that
    version whatever is loaded later. A version deleted meanwhile cannot be pinned: the packet
    is then drawn afresh and says so."""
    version = ((frozen or {}).get("prefill") or {}).get("warehouse_version") or warehouse.version()
    record = f"meeting-{meeting_id}"
    try:
        warehouse.pin(version, record)
        pinned = True
    except VersionGone:
        pinned = False
    try:
        return meetings.finalise(db, scope, meeting_id, frozen, warehouse_version=version, by=by,
                                 revision=revision, at=at)
    except BaseException:
        if pinned:
            warehouse.release(version, record)
        raise


def remembered_gap_changes(
    warehouse: Warehouse, scope: Scope, since: date, until: date, filters: Mapping[str, Any] | None = None
) -> list[dict]:
    """`gap_changes`, computed once per data version and reading in this process: a meeting's
    prefill is drawn again whenever a commitment changes (its cache keys on them), and the
    hundred breakdowns behind the gaps do not move without new data."""
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in (filters or {}).items()))
    return copy.deepcopy(_gap_changes_of(warehouse, warehouse.version(), scope, since, until, frozen))


@functools.lru_cache(maxsize=64)
def _gap_changes_of(warehouse: Warehouse, version: str, scope: Scope, since: date, until: date, filters: tuple) -> list[dict]:
    return gap_changes(warehouse, scope, since, until, {k: list(v) if isinstance(v, tuple) else v for k, v in filters})


def gap_changes(
    warehouse: Warehouse, scope: Scope, since: date, until: date, filters: Mapping[str, Any] | None = None
) -> list[dict]:
    """Gaps between student groups that widened or narrowed beyond chance since `since`.

    For each payment and process metric and each key group dimension, a group's gap to the
    reference group (the largest one) is measured over the eight weeks with data before
    `since` (for assessments, the last window before) and over the weeks since (the latest
    window since). A gap moved when the interval of its change leaves out zero; that
    interval joins the two gaps' own intervals (each with students as the unit) as
    Newcombe joins two proportions', so it is wider than needed, never narrower.
    """
    filters = dict(filters or {})
    catalogue = data_map(warehouse)
    chosen = catalogue[catalogue["kind"].isin(GAP_KINDS) & (catalogue["aggregation"] != "median")]
    changes = []
    for metric in chosen.to_dict("records"):
        ranges = _gap_ranges(warehouse, scope, metric, since, until, filters)
        if ranges is None:
            continue
        spreads = [_student_rows(warehouse, scope, metric, dates, filters) for dates in ranges]
        cells_then, cells_now = (group_cells(warehouse, scope, metric, KEY_GROUPS, dates, filters) for dates in ranges)
        for dimension in KEY_GROUPS:
            now = group_gaps(warehouse, metric, dimension, cells_now.get(dimension), spreads[1])
            if now is None:
                continue
            reference = now.loc[now["is_reference"], "group"].iloc[0]
            then = group_gaps(warehouse, metric, dimension, cells_then.get(dimension), spreads[0], reference=reference)
            if then is None:
                continue
            merged = now.merge(then, on="group", suffixes=("", "_then"))
            for row in merged[~merged["is_reference"]].to_dict("records"):
                moved = gap_change(
                    (row["difference"], row["diff_low"], row["diff_high"]),
                    (row["difference_then"], row["diff_low_then"], row["diff_high_then"]),
                )
                if moved is not None:
                    changes.append({
                        "metric_id": metric["metric_id"], "label": metric["label"], "dimension": dimension,
                        "group": str(row["group"]), "reference": str(reference),
                        "then_start": ranges[0][0].isoformat(), "then_end": ranges[0][1].isoformat(),
                        "now_start": ranges[1][0].isoformat(), "now_end": ranges[1][1].isoformat(),
                        "gap_then": number(row["difference_then"]), "gap_now": number(row["difference"]),
                        "value_now": number(row["value"]), "n_now": int(row["n"]),
                        **moved,
                        "worse_off_now": bool((row["difference"] < 0) == (metric["better"] == "higher")),
                    })
    return sorted(changes, key=lambda c: -abs(c["change"]))


def _gap_ranges(warehouse, scope, metric, since, until, filters):
    """The two date ranges gaps are compared over, before and since `since`, as
    metric_movement chooses them; None when either has no data."""
    if metric["frequency"] == "weekly":
        series = run(warehouse, "series", scope, {"metric": metric["metric_id"], "end": until, **filters})
        earlier = series[series["period_start"] < since].tail(BEFORE_WEEKS)
        later = series[series["period_start"] >= since]
        if earlier.empty or later.empty:
            return None
        return (earlier["period_start"].min(), since - timedelta(days=1)), (since, until)
    windows = tested_windows(warehouse, scope, metric, filters, until)
    earlier = [(w["tested_from"], w["tested_to"]) for w in windows if w["tested_to"] < since]
    later = [(w["tested_from"], w["tested_to"]) for w in windows if w["tested_from"] >= since]
    return (earlier[-1], later[-1]) if earlier and later else None


def _student_rows(warehouse, scope, metric, dates, filters) -> pd.DataFrame | None:
    """Students' own values over the dates, for the spread of a repeated metric (analysts)."""
    if not scope.sees_students or (metric["aggregation"] not in ("rate", "proportion", "mean")):
        return None
    return run(warehouse, "student_values", scope, {
        "metric": metric["metric_id"], "metric_y": comparisons.partner_metric(metric["metric_id"]),
        "start": dates[0], "end": dates[1], **filters,
    })


def group_cells(warehouse, scope, metric, dimensions, dates, filters) -> dict[str, pd.DataFrame]:
    """Each of the `dimensions`' breakdown of the metric over the dates, as the scope may see it,
    read in one pass (queries.breakdowns); a dimension the filters hold is left out: its groups
    are the ones chosen, not the district's. `metric` is its data-map row."""
    wanted = [d for d in dimensions if d not in filters]
    params = {"metric": metric["metric_id"], "start": dates[0], "end": dates[1], **filters}
    return dict(zip(wanted, breakdowns(warehouse, scope, params, [(d,) for d in wanted])))


def group_gaps(warehouse, metric, dimension, cells, students, reference=None):
    """Each group of `dimension` against `reference` (by default the largest), with 95% intervals
    (ciboard.stats.disparity), from its breakdown `cells` (`group_cells`, hidden cells and all);
    None without cells (a filtered dimension) or where fewer than two groups are shown."""
    if cells is None:
        return None
    # Hidden cells (small, or hidden to protect one) take no part in a gap.
    cells = cells[cells[dimension].notna() & ~cells["suppressed"]].reset_index(drop=True)
    cells["n"] = cells["n"].astype(int)
    if len(cells) < 2:
        return None
    if not comparisons.needs_students(metric, cells):
        students = None
    elif students is not None:
        students = students.assign(**{dimension: students[dimension].astype(str)})
        cells = cells.assign(**{dimension: cells[dimension].astype(str)})
    kind, inputs = comparisons.stats_inputs(cells, metric, [dimension], students)
    inputs = inputs.assign(group=inputs[dimension].astype(str))
    if reference is not None and reference not in set(inputs["group"]):
        return None
    return disparity.gaps(inputs, reference=reference, min_cell=warehouse.settings.min_cell_size, kind=kind)


def gap_change(now: tuple[float, float, float], then: tuple[float, float, float]) -> dict | None:
    """How a gap moved, from (gap, low, high) now and then: the change with an interval that
    joins the two gaps' intervals (MOVER, as Newcombe's joins two proportions'). None when
    either gap is hidden or the interval holds zero: the gap is where it was, as far as
    chance can tell."""
    if any(pd.isna(v) for v in (*now, *then)):
        return None
    gap, old = now[0], then[0]
    change, low, high = compare.difference_in_differences(now, then)
    if low <= 0 <= high:
        return None
    return {
        "change": number(change), "change_low": number(low), "change_high": number(high),
        "direction": "widened" if abs(gap) > abs(old) else "narrowed",
        "reversed": bool(gap * old < 0),
    }


def _late_or_missing(warehouse, scope, since, held_on, filters) -> list[dict]:
    rows = run(warehouse, "quality", scope, {"start": since, "end": held_on}, today=held_on)
    rows = rows[rows["status"].isin(LATE_STATUSES)]
    vendors = (filters or {}).get("vendor_id")
    if vendors:
        rows = rows[rows["vendor_id"].isin(vendors if isinstance(vendors, (list, tuple)) else [vendors])]
    columns = ["vendor_id", "kind", "period_start", "period_end", "due_on", "received_at", "status", "rows_rejected"]
    return json_records(rows[columns])


def _commitment_item(item: meetings.OpenCommitment, movement: dict | None) -> dict:
    c: Commitment = item.commitment
    return {
        "commitment": ci_records.as_json(c), "status": item.status, "overdue": item.overdue,
        "days_overdue": item.days_overdue, "movement": movement,
    }


def summary(prefill: Prefill, warehouse: Warehouse) -> list[str]:
    """The prefill as short sentences, for the agenda text and the meeting packet."""
    catalogue = data_map(warehouse).set_index("metric_id")

    def metric(metric_id):
        return {"metric_id": metric_id, **catalogue.loc[metric_id].to_dict()}

    lines = []
    counts = prefill.signal_counts
    # A metric with no better direction signals high or low, neither concern nor improvement.
    neutral = {side: counts.get(f"special_cause_neutral_{side}", 0) for side in ("high", "low")}
    if prefill.signals_pending:
        lines.append(f"Since {prefill.since}: the control-chart signals are being prepared for this version of the data.")
    else:
        lines.append(
            f"Since {prefill.since}: {counts.get('special_cause_concern', 0)} control-chart signals of concern and "
            f"{counts.get('special_cause_improvement', 0)} of improvement"
            + (f"; {neutral['high']} high and {neutral['low']} low where no direction is better." if any(neutral.values()) else ".")
        )
    # Among the first lines: a meeting screen shows only a few.
    if prefill.follow_up:
        lines.append("Students to follow up: " + "; ".join(
            f"{in_sentence(student_lists.LISTS[key])} {_count(moved['now'])} (was {_count(moved['then'])} on {prefill.since})"
            for key, moved in prefill.follow_up.items()
        ) + ".")
    for s in prefill.signals[:5]:
        slice_parts = [s["vendor_id"]] if s.get("vendor_id") else []
        if s.get("dimension"):
            slice_parts.append(f"{s['dimension'].replace('_', ' ')}: {group_value(s['group'])}")
        who = ", ".join(slice_parts)
        folded = len(s.get("folded") or [])  # vendors and groups alike
        lines.append(
            f"{s['label']}{f' ({who})' if who else ''}: {format_value(s['value'], metric(s['metric_id']))} "
            f"in the week of {s['period_start']}, {s['rules']}"
            + (f"; the same in {folded} more vendor or group chart{'s' if folded > 1 else ''} within it." if folded else ".")
        )
    if "gaps" in prefill.preparing:
        lines.append("The gaps between student groups are being prepared for this version of the data.")
    for g in prefill.gaps[:5]:
        m = metric(g["metric_id"])
        dimension = g["dimension"].replace("_", " ")
        # "yes and no (english learner)" would not say who is behind.
        pair = (f"{dimension}: {group_value(g['group'])} and {dimension}: {group_value(g['reference'])}"
                if g["dimension"] in BOOLEAN_DIMENSIONS else f"{g['group']} and {g['reference']} ({dimension})")
        lines.append(
            f"{g['label']}: the gap between {pair} "
            f"{g['direction']}, from {format_change(g['gap_then'], m)} to {format_change(g['gap_now'], m)}."
        )
    late = pd.Series([r["status"] for r in prefill.late_or_missing], dtype=object).value_counts().to_dict()
    if late:
        lines.append("Submissions: " + ", ".join(f"{n} {status}" for status, n in sorted(late.items())) + ".")
    overdue = sum(1 for c in prefill.commitments if c["overdue"])
    lines.append(f"{len(prefill.commitments)} open commitments carried forward, {overdue} overdue.")
    for item in prefill.commitments:
        c, movement = item["commitment"], item["movement"]
        if movement:
            moved = Movement.from_dict(movement)
            beyond = f" Beyond its comparison: {moved.did_sentence(metric(c['metric_id']))}" if moved.did is not None else ""
            lines.append(f"{c['action']} ({c['owner']}): {moved.sentence(metric(c['metric_id']))}{beyond}")
    return lines



# --- plumbing -------------------------------------------------------------------------


def _count(students: int | None) -> str:
    return "too few to show" if students is None else f"{students:,}"



def json_records(frame: pd.DataFrame) -> list[dict]:
    """A frame's rows as dicts of plain JSON values (`json_value`), as snapshots store them."""
    return [json_value(row) for row in frame.to_dict("records")]
