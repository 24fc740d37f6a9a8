"""The contract report: per school year and period (a month, a quarter, the year), for the board,
the funder or the public, what the contracts achieved against their targets, what they earned
and how much of it is certified, the gaps between student groups with their intervals, whether
data came in on time, and what the CI meetings committed and whether it moved the numbers;
with the district's own text beside the numbers.

A report goes draft -> reviewed (by someone other than its author) -> approved (by an admin
other than its author) -> released to chosen audiences. Its numbers are computed when it is
reviewed, from one warehouse version which is pinned, and frozen as two copies: the district's
(small cells hidden as for any non-analyst) for the board and schools, and the public copy for
vendors and the public, with the stricter `public_min_cell_size`, no commitment's wording or
owner, and no student named. What was reviewed is what is approved and released; a released
report never changes, and a correction is a new version that says what changed. Every state
change is audited, and sql/app/012_reports.sql refuses any change or removal of what was written.

The numbers come from the query layer and the machinery the pages use: the payment views and
certified statements (ciboard.statements), the gap intervals of ciboard.followup and
ciboard.stats.disparity, the quality view Data quality reads, and the movement of commitments'
metrics the meetings show (ciboard.movements.metric_movement).
"""

import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape as html_escape
from typing import Any

import pandas as pd
from plotly.offline import get_plotlyjs

from ciboard import accounts, charts, followup, meetings, movements, queries, statements
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.packet_files import CSS as PACKET_CSS
from ciboard.packet_files import html_table, md_table, md_text
from ciboard.warehouse import Warehouse, data_version

SECTIONS = {
    "summary": "Summary",
    "outcomes": "Outcomes and payments",
    "equity": "Equity",
    "next_steps": "What comes next",
}
AUDIENCES = ("board", "vendors", "schools", "evaluators", "public")
# Outside the district: the copy with the strictest protection.
PUBLIC_AUDIENCES = ("vendors", "public")
# An evaluator reads student ids only as its own pseudonyms, so a report's text released to
# evaluators names no student either.
NAMING_NO_STUDENT = (*PUBLIC_AUDIENCES, "evaluators")
READERS = {"facilitator": "board", "school": "schools", "evaluator": "evaluators", "vendor": "vendors"}
STATES = ("draft", "reviewed", "approved", "released")
HEADLINE_METRICS = ("tutoring_attendance_rate", "dosage_met", "met_growth_target", "school_attendance_rate")
GAP_METRICS = ("tutoring_attendance_rate", "met_growth_target")
GAP_DIMENSIONS = {
    "econ_disadvantaged": "Economically disadvantaged",
    "english_learner": "English learner",
    "special_education": "Special education",
    "race_ethnicity": "Race/ethnicity",
}
# The district reads its scope's numbers: small cells hidden, as for every non-analyst.
REPORT_SCOPE = Scope("admin")


class ReportError(ValueError):
    """A report step that cannot be taken; the message says why."""


# --- periods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    school_year: str
    label: str  # '2025-26', '2025-26 Q2' or '2025-10'
    start: date
    end: date

    @property
    def kind(self) -> str:
        return "year" if self.label == self.school_year else "quarter" if " Q" in self.label else "month"


def period_of(warehouse: Warehouse, school_year: str, period: str) -> Period:
    """'year' (or the school year itself), 'Q1' to 'Q4' (three months each from the year's start)
    or a month 'YYYY-MM' within the school year."""
    years = queries.run(warehouse, "choices", REPORT_SCOPE).query("dimension == 'school_year'")
    year = years[years["value"].astype(str) == school_year]
    if year.empty:
        known = ", ".join(years["value"].astype(str)) or "none"
        raise ReportError(f"no school year {school_year!r} in the warehouse; the school years are {known}")
    starts, ends = year["starts_on"].iloc[0], year["ends_on"].iloc[0]
    text = (period or "year").strip()
    if text in ("year", school_year):
        return Period(school_year, school_year, starts, ends)
    quarter = re.fullmatch(r"[Qq]([1-4])", text)
    if quarter:
        first = _months_after(starts.replace(day=1), 3 * (int(quarter[1]) - 1))
        last = min(_months_after(first, 3) - timedelta(days=1), ends)
        return Period(school_year, f"{school_year} Q{quarter[1]}", max(first, starts), last)
    month = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if month and 1 <= int(month[2]) <= 12:
        first = date(int(month[1]), int(month[2]), 1)
        last = _months_after(first, 1) - timedelta(days=1)
        if last < starts or first > ends:
            raise ReportError(f"month {text} is outside school year {school_year} ({starts} to {ends})")
        return Period(school_year, text, max(first, starts), min(last, ends))
    raise ReportError(f"period {text!r}: write 'year', a quarter 'Q1' to 'Q4', or a month such as 2025-10")


def _months_after(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# --- the numbers --------------------------------------------------------------------------


def compute(warehouse: Warehouse, db: AppDB, period: Period, *, public: bool) -> dict:
    """The report's numbers for the period, read from `warehouse` (pinned to a version by the
    caller) in the district's scope; the public copy is computed from a warehouse whose settings
    carry the public minimum cell size, and leaves out the wording of commitments."""
    metrics = {m["metric_id"]: m for m in queries.data_map(warehouse).to_dict("records")}
    min_cell = warehouse.settings.min_cell_size
    contracts = queries.run(warehouse, "payments", REPORT_SCOPE, {"end": period.end})
    return {
        "copy": "public" if public else "district",
        "period": {"school_year": period.school_year, "label": period.label, "kind": period.kind,
                   "start": period.start.isoformat(), "end": period.end.isoformat()},
        "warehouse_version": warehouse.version(),
        "computed_at": datetime.now().isoformat(timespec="seconds"),
        "min_cell": min_cell,
        "metrics": {m: movements.json_value(metrics[m]) for m in (*HEADLINE_METRICS, *GAP_METRICS) if m in metrics},
        "outcomes": _outcomes(warehouse, period, metrics),
        "targets": _targets(contracts, period, min_cell),
        "payments": _payments(warehouse, db, period, contracts),
        "gaps": _gaps(warehouse, period, metrics),
        "timeliness": _timeliness(warehouse, period),
        "commitments": _commitments(warehouse, db, period, metrics, public=public),
    }


def _outcomes(warehouse: Warehouse, period: Period, metrics: dict) -> list[dict]:
    """Per headline metric, each vendor's value and the district's, pooled from the cells shown."""
    rows = []
    for metric_id in HEADLINE_METRICS:
        if metric_id not in metrics:
            continue
        cells = queries.run(warehouse, "vendors", REPORT_SCOPE,
                            {"metric": metric_id, "start": period.start, "end": period.end})
        # A report is of the vendors' outcomes: students no vendor tutors are no vendor's, nor in "All vendors".
        cells = cells[cells["vendor_id"] != queries.NOT_TUTORED]
        if cells.empty:
            continue  # no data of this kind in the period (assessments come three times a year)
        shown = cells[~cells["suppressed"].astype(bool)]
        label = metrics[metric_id]["label"]
        for cell in cells.to_dict("records"):
            rows.append({"metric_id": metric_id, "metric": label, "who": cell["vendor_id"],
                         "value": cell["value"], "students": cell["n"]})
        pooled = shown["numerator"].sum() / shown["denominator"].sum() if shown["denominator"].sum() else None
        rows.append({"metric_id": metric_id, "metric": label, "who": "All vendors",
                     "value": pooled, "students": shown["n"].sum() if len(shown) else None})
    return followup.json_records(pd.DataFrame(rows, columns=["metric_id", "metric", "who", "value", "students"]))


def _targets(lines: pd.DataFrame, period: Period, min_cell: int) -> list[dict]:
    """Per vendor contract and payment outcome (the payments view up to the period's end): the
    target and how many students met it, once the outcome is known."""
    rows = []
    for line in lines.to_dict("records"):
        served, eligible, met = line["students_served"], line["students_eligible"], line["students_successful"]
        known = line["outcome_due"] <= period.end
        # Counts of students, small ones hidden: the met and not-met counts subtract from each other.
        hidden = known and min(met, eligible - met) < min_cell
        rows.append({
            "vendor_id": line["vendor_id"], "payment_metric": line["payment_metric"], "target": line["threshold"],
            "students_served": served if served >= min_cell else None,
            "students_eligible": eligible if known and eligible >= min_cell else None,
            "students_met": met if known and not hidden else None,
            "share_met": met / eligible if known and not hidden and eligible else None,
            "outcome_known": line["outcome_due"].isoformat() if known else f"due {line['outcome_due']}",
        })
    return followup.json_records(pd.DataFrame(rows))


def _payments(warehouse: Warehouse, db: AppDB, period: Period, lines: pd.DataFrame) -> list[dict]:
    """Per vendor: earned in the period and up to its end (`lines`, the payments view up to it), and
    of that how much is certified (closed and signed off by both), closed awaiting sign-off, or
    provisional."""
    def earned(lines: pd.DataFrame) -> pd.Series:
        if lines.empty:
            return pd.Series(dtype=float)
        # amount_earned belongs to the contract and repeats on each of its lines.
        contracts = lines.drop_duplicates(["vendor_id", "contract_starts_on"])
        return contracts.groupby("vendor_id")["amount_earned"].sum()

    to_date = earned(lines)
    before = earned(queries.run(warehouse, "payments", REPORT_SCOPE, {"end": period.start - timedelta(days=1)}))
    # Earned to date runs from each contract's first day, a year before this one's included: so
    # do the closed months it is split by.
    closed = statements.standing(db, REPORT_SCOPE, until=period.end)
    rows = []
    for vendor, total in to_date.items():
        own = closed[closed["vendor_id"] == vendor]
        certified = float(own.loc[own["certified"], "total"].sum())
        awaiting = float(own.loc[~own["certified"], "total"].sum())
        rows.append({
            "vendor_id": vendor, "earned_in_period": round(float(total - before.get(vendor, 0.0)), 2),
            "earned_to_date": round(float(total), 2), "certified": round(certified, 2),
            "closed_awaiting_signoff": round(awaiting, 2),
            # Negative when later data or terms take back more from closed months than open ones earn.
            "provisional": round(float(total) - certified - awaiting, 2),
        })
    return followup.json_records(pd.DataFrame(rows))


def _gaps(warehouse: Warehouse, period: Period, metrics: dict) -> list[dict]:
    """Per gap metric and key group, each group against its reference (for a yes/no group the
    students not in it, otherwise the largest), with 95% intervals."""
    rows = []
    for metric_id in GAP_METRICS:
        if metric_id not in metrics:
            continue
        metric = metrics[metric_id]
        cells = followup.group_cells(warehouse, REPORT_SCOPE, metric, list(GAP_DIMENSIONS), (period.start, period.end), {})
        for dimension, name in GAP_DIMENSIONS.items():
            reference = "False" if dimension in queries.BOOLEAN_DIMENSIONS else None
            gaps = followup.group_gaps(warehouse, metric, dimension, cells[dimension], None, reference=reference)
            if gaps is None:
                continue
            base = gaps[gaps["is_reference"]]
            base_label = _group(dimension, base["group"].iloc[0]) if len(base) else ""
            for gap in gaps.to_dict("records"):
                beyond = gap["diff_low"] is not None and not pd.isna(gap["diff_low"]) and (
                    gap["diff_low"] > 0 or gap["diff_high"] < 0)
                rows.append({
                    "metric_id": metric_id, "metric": metric["label"], "dimension": name,
                    "group": _group(dimension, gap["group"]), "compared_with": base_label,
                    "value": gap["value"], "low": gap["low"], "high": gap["high"], "students": gap["n"],
                    "gap": None if gap["is_reference"] else gap["difference"],
                    "gap_low": None if gap["is_reference"] else gap["diff_low"],
                    "gap_high": None if gap["is_reference"] else gap["diff_high"],
                    "is_reference": bool(gap["is_reference"]), "beyond_chance": bool(beyond),
                })
    return followup.json_records(pd.DataFrame(rows))


def _group(dimension: str, value: Any) -> str:
    if dimension in queries.BOOLEAN_DIMENSIONS:
        return f"{GAP_DIMENSIONS[dimension]}: {'yes' if str(value) == 'True' else 'no'}"
    return str(value)


def _timeliness(warehouse: Warehouse, period: Period) -> list[dict]:
    """Per vendor and kind of data, the files due in the period by status, as Data quality counts them."""
    due = queries.run(warehouse, "quality", REPORT_SCOPE, {"start": period.start, "end": period.end})
    if due.empty:
        return []
    counts = due.pivot_table(index=["vendor_id", "kind"], columns="status", values="period_start",
                             aggfunc="count", fill_value=0).reset_index()
    for status in ("on time", "late", "missing", "rejected"):
        if status not in counts:
            counts[status] = 0
    counts["due"] = counts[[c for c in counts.columns if c not in ("vendor_id", "kind")]].sum(axis=1)
    counts["share_on_time"] = counts["on time"] / counts["due"]
    counts = counts[["vendor_id", "kind", "due", "on time", "late", "missing", "rejected", "share_on_time"]]
    return followup.json_records(counts.rename(columns={"on time": "on_time"}))


def _commitments(warehouse: Warehouse, db: AppDB, period: Period, metrics: dict, *, public: bool) -> list[dict]:
    """The commitments the CI meetings made in the period, their status at its end, and how the
    metric each is measured on moved from the day it was made to the period's end."""
    rows = []
    for c in meetings.commitments(db, REPORT_SCOPE):
        if not period.start <= c.made_on <= period.end:
            continue
        moved = ""
        if c.metric_id and c.metric_id in metrics:
            movement = movements.metric_movement(warehouse, REPORT_SCOPE, c.metric_id, c.slice, c.made_on, period.end)
            moved = movement.sentence(metrics[c.metric_id])
            verdict = movement.verdict if movement.status == "ok" else "not enough data"
        else:
            verdict = "not measured"
        rows.append({
            "vendor_id": c.slice.vendor_id or (c.party_id if c.party == "vendor" else None),
            "made_on": c.made_on.isoformat(), "party": c.party,
            "action": None if public else c.action, "owner": None if public else c.owner,
            "due_on": c.due_on.isoformat() if c.due_on else None, "status": c.status_on(period.end),
            "metric": metrics[c.metric_id]["label"] if c.metric_id in metrics else None,
            "verdict": verdict, "moved": moved,
        })
    return rows


# --- the store ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    state: str
    by: str
    at: str
    note: str
    snapshot_id: int | None
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    report_id: int
    school_year: str
    period: str
    version: int
    corrects: int | None
    what_changed: str
    created_by: str
    created_at: str
    texts: dict[str, str]
    events: tuple[Event, ...]
    snapshot: dict | None = field(default=None, repr=False)  # {'warehouse_version', 'district', 'public'}

    @property
    def state(self) -> str:
        return self.events[-1].state

    @property
    def audiences(self) -> tuple[str, ...]:
        return self.events[-1].audiences if self.state == "released" else ()

    @property
    def reviewer(self) -> str | None:
        """Who reviewed the numbers now frozen; None for a draft."""
        if self.state == "draft":
            return None
        return next(e.by for e in reversed(self.events) if e.state == "reviewed")

    @property
    def title(self) -> str:
        version = f", version {self.version}" if self.version > 1 else ""
        return f"Contract report {self.period}{version}"

    def record(self) -> str:
        return f"report-{self.report_id}"


def create(db: AppDB, warehouse: Warehouse, who: Account, school_year: str, period: str) -> Report:
    """A new draft for the period; one report per period, corrected by new versions."""
    _district_staff(who, "drafts a report")
    found = period_of(warehouse, school_year, period)
    with db.transaction() as con:
        exists = con.execute("select report_id from reports where school_year = ? and period = ?",
                             [found.school_year, found.label]).fetchone()
        if exists:
            raise ReportError(f"a report for {found.label} exists already (report {exists[0]}): open it, "
                              "or correct its released version")
        [report_id] = con.execute(
            "insert into reports (school_year, period, version, created_by, created_at) values (?, ?, 1, ?, ?)"
            " returning report_id",
            [found.school_year, found.label, who.username, _now()],
        ).fetchone()
        _event(con, report_id, "draft", who, "drafted")
    accounts.audit(db, who, "report draft", {"report": report_id, "period": found.label})
    return read(db, who.scope, report_id)


def write(db: AppDB, who: Account, report_id: int, texts: dict[str, str]) -> Report:
    """Saves the narrative sections that changed; a draft's only."""
    _district_staff(who, "writes a report")
    unknown = sorted(set(texts) - set(SECTIONS))
    if unknown:
        raise ReportError(f"unknown section(s) {', '.join(unknown)}; the sections are {', '.join(SECTIONS)}")
    report = read(db, who.scope, report_id)
    _must_be(report, "draft", "written")
    changed = {s: body.strip() for s, body in texts.items() if body.strip() != report.texts.get(s, "")}
    if changed:
        with db.transaction() as con:
            for section, body in changed.items():
                con.execute("insert into report_texts (report_id, section, body, written_by, written_at)"
                            " values (?, ?, ?, ?, ?)", [report_id, section, body, who.username, _now()])
        accounts.audit(db, who, "report write", {"report": report_id, "sections": sorted(changed)})
    return read(db, who.scope, report_id)


def review(db: AppDB, warehouse: Warehouse, who: Account, report_id: int, note: str = "") -> Report:
    """The named reviewer's check: the numbers are computed now, from the current warehouse
    version (pinned), and frozen; what is approved and released is exactly this."""
    _district_staff(who, "reviews a report")
    report = read(db, who.scope, report_id)
    _must_be(report, "draft", "reviewed")
    if who.username == report.created_by:
        raise ReportError("a report is reviewed by someone other than its author")
    version = warehouse.version()
    # Pinned before the record names it: a record never names a version that may go.
    warehouse.pin(version, report.record())
    pinned = warehouse.at(version)
    public = public_warehouse(warehouse).at(version)
    try:
        period = period_of(pinned, report.school_year, period_text(report))
        district_copy = compute(pinned, db, period, public=False)
        public_copy = compute(public, db, period, public=True)
        with db.transaction() as con:
            _must_be(_state(con, report_id), "draft", "reviewed")
            snapshot_id = con.execute(
                "insert into report_snapshots (report_id, warehouse_version, computed_at, district, public)"
                " values (?, ?, ?, ?, ?) returning snapshot_id",
                [report_id, version, _now(), json.dumps(district_copy), json.dumps(public_copy)],
            ).fetchone()[0]
            _event(con, report_id, "reviewed", who, note, snapshot_id=snapshot_id)
    except BaseException:
        # Nothing frozen (a failure, or a review by someone else meanwhile): nothing holds the version.
        warehouse.release(version, report.record())
        raise
    finally:
        pinned.close()
        public.close()
    accounts.audit(db, who, "report review", {"report": report_id, "version": version})
    return read(db, who.scope, report_id)


def public_warehouse(warehouse: Warehouse) -> Warehouse:
    """The same warehouse read with the public minimum cell size: every hiding and noise of the
    query layer at the stricter threshold."""
    settings = warehouse.settings
    return Warehouse(settings.model_copy(update={"min_cell_size": max(settings.public_min_cell_size, settings.min_cell_size)}))


def preview(warehouse: Warehouse, db: AppDB, school_year: str, period: str, *, public: bool) -> tuple[Report, dict]:
    """A report for the period as the data stands, stored nowhere: what a draft would show."""
    found = period_of(warehouse, school_year, period)
    store = public_warehouse(warehouse) if public else warehouse
    try:
        content = compute(store, db, found, public=public)
    finally:
        if public:
            store.close()
    drafted = Event("draft", "the command line", _now(), "preview, not stored", None, ())
    report = Report(report_id=0, school_year=found.school_year, period=found.label, version=1, corrects=None,
                    what_changed="", created_by="the command line", created_at=_now(), texts={}, events=(drafted,))
    return report, content


def approve(db: AppDB, who: Account, report_id: int, note: str = "") -> Report:
    if who.role != "admin":
        raise ScopeError("an admin approves a report")
    report = read(db, who.scope, report_id)
    _must_be(report, "reviewed", "approved")
    if who.username == report.created_by:
        raise ReportError("a report is approved by someone other than its author")
    with db.transaction() as con:
        _must_be(_state(con, report_id), "reviewed", "approved")
        _event(con, report_id, "approved", who, note, snapshot_id=report.events[-1].snapshot_id)
    accounts.audit(db, who, "report approve", {"report": report_id})
    return read(db, who.scope, report_id)


def release(db: AppDB, warehouse: Warehouse, who: Account, report_id: int, audiences: list[str], note: str = "") -> Report:
    """Releases an approved report to the audiences; from then on it never changes."""
    if who.role != "admin":
        raise ScopeError("an admin releases a report")
    chosen = tuple(a for a in AUDIENCES if a in audiences)
    unknown = sorted(set(audiences) - set(AUDIENCES))
    if unknown or not chosen:
        raise ReportError(f"release to one or more of {', '.join(AUDIENCES)}" + (f", not {', '.join(unknown)}" if unknown else ""))
    report = read(db, who.scope, report_id)
    _must_be(report, "approved", "released")
    if any(a in NAMING_NO_STUDENT for a in chosen):
        named = students_named(warehouse, report)
        if named:
            raise ReportError(f"the report's text names {len(named)} student id(s) ({', '.join(sorted(named)[:3])}): "
                              "a report for vendors, evaluators or the public names no student; return it to draft "
                              "and rewrite")
    with db.transaction() as con:
        _must_be(_state(con, report_id), "approved", "released")
        _event(con, report_id, "released", who, note, snapshot_id=report.events[-1].snapshot_id,
               audiences=",".join(chosen))
    accounts.audit(db, who, "report release", {"report": report_id, "audiences": list(chosen)})
    return read(db, who.scope, report_id)


def reopen(db: AppDB, warehouse: Warehouse, who: Account, report_id: int, note: str) -> Report:
    """A reviewed or approved report back to draft, saying why; its numbers are computed again
    at the next review."""
    _district_staff(who, "returns a report to draft")
    if not note.strip():
        raise ReportError("say why the report goes back to draft")
    report = read(db, who.scope, report_id)
    if report.state not in ("reviewed", "approved"):
        raise ReportError(f"a {report.state} report cannot go back to draft"
                          + (": make a corrected version" if report.state == "released" else ""))
    with db.transaction() as con:
        if _state(con, report_id) not in ("reviewed", "approved"):
            raise ReportError(f"report {report_id} changed meanwhile: it is {_state(con, report_id)} now")
        _event(con, report_id, "draft", who, note.strip())
    warehouse.release(report.snapshot["warehouse_version"], report.record())
    accounts.audit(db, who, "report reopen", {"report": report_id, "why": note.strip()})
    return read(db, who.scope, report_id)


def correct(db: AppDB, who: Account, report_id: int, what_changed: str) -> Report:
    """A new draft version of a released report, starting from its text, saying what changed."""
    _district_staff(who, "corrects a report")
    if not what_changed.strip():
        raise ReportError("a correction says what changed")
    report = read(db, who.scope, report_id)
    if report.state != "released":
        raise ReportError("only a released report is corrected; change a draft directly")
    with db.transaction() as con:
        later = con.execute("select report_id from reports where corrects = ?", [report_id]).fetchone()
        if later:
            raise ReportError(f"report {report_id} is corrected already by report {later[0]}: correct that one")
        new_id = con.execute(
            "insert into reports (school_year, period, version, corrects, what_changed, created_by, created_at)"
            " values (?, ?, ?, ?, ?, ?, ?) returning report_id",
            [report.school_year, report.period, report.version + 1, report_id, what_changed.strip(), who.username, _now()],
        ).fetchone()[0]
        _event(con, new_id, "draft", who, f"correction of version {report.version}")
        for section, body in report.texts.items():
            con.execute("insert into report_texts (report_id, section, body, written_by, written_at) values (?, ?, ?, ?, ?)",
                        [new_id, section, body, who.username, _now()])
    accounts.audit(db, who, "report correct", {"report": new_id, "corrects": report_id})
    return read(db, who.scope, new_id)


def read(db: AppDB, scope: Scope, report_id: int) -> Report:
    """A report as the scope may read it: the district's staff any, a facilitator one released to
    the board, a vendor one released to vendors (its public copy only)."""
    with db.connect() as con:
        row = con.execute("select * from reports where report_id = ?", [report_id]).fetchone()
        if row is None:
            raise ReportError(f"no report {report_id}")
        texts = {r["section"]: r["body"] for r in con.execute(
            "select section, body from report_texts where report_id = ? order by text_id", [report_id])}
        events = tuple(Event(r["state"], r["by_user"], r["at"], r["note"], r["snapshot_id"],
                             tuple(a for a in r["audiences"].split(",") if a))
                       for r in con.execute("select * from report_events where report_id = ? order by event_id", [report_id]))
        snapshot_id = events[-1].snapshot_id
        snap = con.execute("select * from report_snapshots where snapshot_id = ?", [snapshot_id]).fetchone() if snapshot_id else None
    report = Report(
        report_id=row["report_id"], school_year=row["school_year"], period=row["period"], version=row["version"],
        corrects=row["corrects"], what_changed=row["what_changed"], created_by=row["created_by"],
        created_at=row["created_at"], texts=texts, events=events,
        snapshot={"warehouse_version": snap["warehouse_version"], "district": json.loads(snap["district"]),
                  "public": json.loads(snap["public"])} if snap else None,
    )
    if not _may_read(scope, report):
        raise ScopeError(f"report {report_id} is not released to this account")
    if scope.role == "vendor" and report.snapshot:
        report = Report(**{**report.__dict__, "snapshot": {**report.snapshot, "district": None}})
    return report


def listing(db: AppDB, scope: Scope) -> list[Report]:
    """The reports the scope may read, newest period and version first."""
    with db.connect() as con:
        ids = [r[0] for r in con.execute("select report_id from reports order by school_year desc, period desc, version desc")]
    found = []
    for report_id in ids:
        try:
            found.append(read(db, scope, report_id))
        except ScopeError:
            continue
    return found


def copy_for(report: Report, scope: Scope, audience: str | None = None) -> dict:
    """The frozen numbers a reader gets: the public copy for vendors and the public, the
    district's for the board and schools (and the district's own staff)."""
    if report.snapshot is None:
        raise ReportError("the report's numbers are frozen when it is reviewed; a draft shows them live")
    if scope.role == "vendor":
        return own_rows(report.snapshot["public"], scope.vendor_id)
    if audience in PUBLIC_AUDIENCES:
        return report.snapshot["public"]
    return report.snapshot["district"]


def own_rows(content: dict, vendor_id: str) -> dict:
    """A vendor's reading of the public copy: its own rows and the district's, never another
    vendor's (as on every page), whatever the district released."""
    mine = dict(content)
    mine["outcomes"] = [r for r in content["outcomes"] if r["who"] in (vendor_id, "All vendors")]
    for key in ("targets", "payments", "timeliness", "commitments"):
        mine[key] = [r for r in content[key] if r.get("vendor_id") in (vendor_id, None)]
    return mine


def students_named(warehouse: Warehouse, report: Report) -> set[str]:
    """Student ids in the report's text (the district's narrative), checked against every student
    with school attendance or tutoring in its school year."""
    words = set(re.findall(r"[A-Za-z0-9_-]+", " ".join(report.texts.values())))
    if not words:
        return set()
    year = period_of(warehouse, report.school_year, "year")
    keys: set[str] = set()
    for metric, other in (("school_attendance_rate", "tutoring_attendance_rate"), ("tutoring_attendance_rate", "school_attendance_rate")):
        students = queries.run(warehouse, "student_values", ANALYST,
                               {"metric": metric, "metric_y": other, "start": year.start, "end": year.end})
        keys |= set(students["student_key"].astype(str)) if "student_key" in students else set()
    return words & keys


def _may_read(scope: Scope, report: Report) -> bool:
    if scope.role in ("analyst", "admin"):
        return True
    return report.state == "released" and READERS.get(scope.role) in report.audiences


def _district_staff(who: Account, what: str) -> None:
    if who.role not in ("analyst", "admin"):
        raise ScopeError(f"the district's analysts and admins draft, write and review reports, not who {what}")


def _must_be(report_or_state: Report | str, state: str, step: str) -> None:
    now = report_or_state if isinstance(report_or_state, str) else report_or_state.state
    if now != state:
        raise ReportError(f"a {now} report cannot be {step}; only a {state} one")


def _state(con, report_id: int) -> str:
    return con.execute("select state from report_events where report_id = ? order by event_id desc limit 1",
                       [report_id]).fetchone()[0]


def _event(con, report_id: int, state: str, who: Account, note: str, *, snapshot_id: int | None = None,
           audiences: str = "") -> None:
    con.execute("insert into report_events (report_id, state, by_user, at, note, snapshot_id, audiences)"
                " values (?, ?, ?, ?, ?, ?, ?)", [report_id, state, who.username, _now(), note.strip(), snapshot_id, audiences])


def period_text(report: Report) -> str:
    return report.period.removeprefix(report.school_year).strip() or "year"


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


# --- the files ----------------------------------------------------------------------------

PRINT_CSS = """
.report-meta { color: #595959; } .warning { border-left: 4px solid #B03A2E; padding: .4rem .8rem; background: #FBEEEE; }
@media print { @page { size: A4; margin: 16mm 14mm; } h2 { break-before: auto; } table, .chart { break-inside: avoid; }
               .js-plotly-plot .modebar { display: none !important; } thead { display: table-header-group; } }
"""


def tables(content: dict) -> list[tuple[str, str, pd.DataFrame]]:
    """The report's tables as (sheet name, title, frame of raw values): what the workbook holds
    and what the HTML and Markdown show, formatted."""
    def frame(key: str, columns: dict[str, str]) -> pd.DataFrame:
        rows = pd.DataFrame(content.get(key) or [], columns=list(columns))
        return rows[list(columns)].rename(columns=columns)

    # The public copy holds no commitment's wording or owner: free text may name anyone.
    commitments = {"made_on": "Made on", "party": "Party", "owner": "Owner", "action": "Action", "due_on": "Due",
                   "status": "Status at period end", "metric": "Measured on", "moved": "How it moved"}
    if content["copy"] == "public":
        commitments = {k: v for k, v in commitments.items() if k not in ("owner", "action")}
    return [
        ("Outcomes", "Outcomes by vendor", frame("outcomes", {
            "metric": "Metric", "who": "Vendor", "value": "Value", "students": "Students"})),
        ("Targets", "Contract targets: students who met the payment outcome", frame("targets", {
            "vendor_id": "Vendor", "payment_metric": "Outcome", "target": "Target", "students_served": "Served",
            "students_eligible": "Eligible", "students_met": "Met target", "share_met": "Share met",
            "outcome_known": "Outcome known"})),
        ("Payments", "Payments: earned, certified and provisional", frame("payments", {
            "vendor_id": "Vendor", "earned_in_period": "Earned in period", "earned_to_date": "Earned to date",
            "certified": "Certified", "closed_awaiting_signoff": "Closed, awaiting sign-off",
            "provisional": "Provisional"})),
        ("Equity gaps", "Gaps between student groups (95% intervals)", frame("gaps", {
            "metric": "Metric", "group": "Group", "compared_with": "Compared with", "value": "Value", "low": "Low",
            "high": "High", "students": "Students", "gap": "Gap", "gap_low": "Gap low", "gap_high": "Gap high",
            "beyond_chance": "Beyond chance"})),
        ("Timeliness", "Data timeliness: files due in the period", frame("timeliness", {
            "vendor_id": "Vendor", "kind": "Data", "due": "Due", "on_time": "On time", "late": "Late",
            "missing": "Missing", "rejected": "Rejected", "share_on_time": "Share on time"})),
        ("Commitments", "What the CI meetings committed, and whether it moved the numbers",
         frame("commitments", commitments)),
    ]


def shown_table(content: dict, sheet: str, table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """A table's cells as text: shares as percentages, money in dollars, a hidden value said so."""
    hidden = f"fewer than {content['min_cell']}"
    metrics = {m["label"]: m for m in content.get("metrics", {}).values()}
    rows = []
    for row in table.to_dict("records"):
        metric = metrics.get(row.get("Metric"))
        # An outcome not known yet has no count to hide: it says so.
        pending = sheet == "Targets" and str(row.get("Outcome known", "")).startswith("due")
        cells = []
        for column, value in row.items():
            if pending and column in ("Eligible", "Met target", "Share met"):
                cells.append("not yet known")
            elif isinstance(value, bool):
                cells.append("Yes" if value else "No")
            elif value is None or (isinstance(value, float) and pd.isna(value)):
                cells.append(hidden if column in ("Value", "Students", "Served", "Eligible", "Met target", "Share met") else "–")
            elif sheet == "Payments" and column != "Vendor":
                cells.append(f"${value:,.2f}")
            elif column.startswith("Share"):
                cells.append(f"{value * 100:.1f}%")
            elif metric and column in ("Value", "Low", "High"):
                cells.append(charts.format_value(value, metric))
            elif metric and column.startswith("Gap"):
                cells.append(charts.format_change(value, metric))
            elif isinstance(value, float) and value == round(value):
                cells.append(f"{value:,.0f}")
            else:
                cells.append(str(value))
        rows.append(cells)
    headers = list(table.columns)
    return headers, rows


def _heading(report: Report, content: dict) -> tuple[str, list[str]]:
    p = content["period"]
    audience = "vendors and the public" if content["copy"] == "public" else "the board and schools"
    state = report.state + (f" to {', '.join(report.audiences)}" if report.audiences else "")
    lines = [
        f"{p['start']} to {p['end']} · school year {p['school_year']} · {state}",
        f"Numbers from {data_version(content['warehouse_version'])}, computed {content['computed_at']}"
        f" · copy for {audience}: values over fewer than {content['min_cell']} students hidden",
    ]
    if report.reviewer:
        approved = next((e for e in reversed(report.events) if e.state == "approved"), None)
        lines.append(f"Reviewed by {report.reviewer}" + (f" · approved by {approved.by}" if approved else ""))
    if report.corrects:
        lines.append(f"Corrects version {report.version - 1}. What changed: {report.what_changed}")
    return report.title, lines


def _figures(content: dict) -> list[tuple[str, Any]]:
    gaps = pd.DataFrame(content.get("gaps") or [])
    found = []
    if gaps.empty:
        return found
    for (metric_id, dimension), rows in gaps.groupby(["metric_id", "dimension"], sort=False):
        metric = content["metrics"][metric_id]
        rows = rows.assign(suppressed=rows["value"].isna(), n=rows["students"])
        base = rows[rows["is_reference"]]
        figure = charts.interval_figure(
            rows, category="group", metric=metric, reference=base["value"].iloc[0] if len(base) else None,
            reference_label=base["group"].iloc[0] if len(base) else None)
        found.append((f"{metric['label']} by {charts.in_sentence(dimension)}", figure))
    return found


def to_html(report: Report, content: dict) -> str:
    """One HTML file that needs nothing else (styles and plotly.js inline), print-ready."""
    e = html_escape
    title, lines = _heading(report, content)
    out = [f"<header><h1>{e(title)}</h1>", *[f'<p class="report-meta">{e(line)}</p>' for line in lines], "</header>"]
    text = report.texts
    out.append('<h2 class="first">Summary</h2>' + _html_text(text.get("summary")))
    by_sheet = {sheet: (title, table) for sheet, title, table in tables(content)}
    out.append("<h2>Outcomes and payments</h2>" + _html_text(text.get("outcomes")))
    for sheet in ("Outcomes", "Targets", "Payments"):
        out.append(_html_section(content, sheet, *by_sheet[sheet]))
    out.append("<h2>Equity</h2>" + _html_text(text.get("equity")))
    out.append(_html_section(content, "Equity gaps", *by_sheet["Equity gaps"]))
    for number, (name, figure) in enumerate(_figures(content), 1):
        # A fixed id per chart: the same report gives the same file, byte for byte.
        out.append(f'<div class="chart"><h4>{e(name)}</h4>' + figure.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"gap-chart-{number}",
            config={"displaylogo": False, "responsive": True}) + "</div>")
    out.append("<h2>Data timeliness</h2>" + _html_section(content, "Timeliness", *by_sheet["Timeliness"]))
    out.append("<h2>Continuous improvement</h2>" + _html_section(content, "Commitments", *by_sheet["Commitments"]))
    out.append("<h2>What comes next</h2>" + _html_text(text.get("next_steps")))
    library = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{e(title)}</title>"
        f"<style>{PACKET_CSS}{PRINT_CSS}</style>{library}</head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )


def _html_section(content: dict, sheet: str, title: str, table: pd.DataFrame) -> str:
    headers, rows = shown_table(content, sheet, table)
    return f"<h3>{html_escape(title)}</h3>" + html_table(headers, rows)


def _html_text(body: str | None) -> str:
    body = (body or "").strip()
    return f'<div class="note">{html_escape(body)}</div>' if body else '<p class="empty">No text.</p>'


def to_markdown(report: Report, content: dict) -> str:
    title, lines = _heading(report, content)
    out = [f"# {md_text(title)}", "", *[f"_{md_text(line)}_  " for line in lines], ""]
    by_sheet = {sheet: (title, table) for sheet, title, table in tables(content)}

    def text(section: str) -> list[str]:
        body = (report.texts.get(section) or "").strip()
        return ["", *([f"> {md_text(line)}" if line.strip() else ">" for line in body.splitlines()] or ["_No text._"])]

    def section(sheet: str) -> list[str]:
        headers, rows = shown_table(content, sheet, by_sheet[sheet][1])
        return ["", f"### {md_text(by_sheet[sheet][0])}", "", *md_table(headers, rows)]

    out += ["## Summary", *text("summary"), "", "## Outcomes and payments", *text("outcomes")]
    for sheet in ("Outcomes", "Targets", "Payments"):
        out += section(sheet)
    out += ["", "## Equity", *text("equity"), *section("Equity gaps")]
    out += ["", "## Data timeliness", *section("Timeliness")]
    out += ["", "## Continuous improvement", *section("Commitments")]
    out += ["", "## What comes next", *text("next_steps")]
    return "\n".join(out).rstrip() + "\n"


def to_xlsx(report: Report, content: dict) -> bytes:
    """The tables as a workbook, one sheet each, raw values (a hidden one empty), and a sheet
    saying what the report is."""
    title, lines = _heading(report, content)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame({"Report": [title, *lines]}).to_excel(writer, sheet_name="About", index=False)
        for sheet, _, table in tables(content):
            table.to_excel(writer, sheet_name=sheet, index=False)
    return buffer.getvalue()


def filename(report: Report, content: dict, fmt: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", report.period.lower()).strip("-")
    return f"contract-report-{slug}-v{report.version}-{content['copy']}.{fmt}"
