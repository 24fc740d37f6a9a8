"""The query layer: the one place that reads the warehouse. Pages, the CLI and notebooks call `run`.

Every call takes a scope. The scope's vendor is bound into the SQL of every view (see
sql/views/scoped_facts.sql), and for every scope but the analyst's small cells are hidden and
every count and sum carries cell-key noise here (ciboard.privacy), so no caller can forget
either. Parameter names and values are
checked against closed lists; values reach SQL only as bound parameters.

One view reads other vendors' facts for a vendor: `peers`, the pooled benchmark. It returns
no vendor id, and hides any period fewer than two other vendors stand behind.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from ciboard import payments, privacy, session_checks, statements
from ciboard.appdb import AppDB
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.stats import compare
from ciboard.warehouse import Warehouse

DIMENSIONS = (
    "vendor_id",
    "school_id",
    "grade",
    "race_ethnicity",
    "gender",
    "econ_disadvantaged",
    "english_learner",
    "special_education",
    "baseline_band",
)
# The vendor value of the students in the district's records whom no vendor tutors: analysts,
# facilitators and schools filter and break down by it; a vendor never reaches them but pooled,
# in the matched comparison (the `matched` view).
NOT_TUTORED = "not tutored"
BOOLEAN_DIMENSIONS = ("econ_disadvantaged", "english_learner", "special_education")
GRAINS = ("week", "month", "window")
FILTERS = ("start", "end", "min_dosage_share", *DIMENSIONS)
DATE_COLUMNS = (
    "period_start",
    "period_end",
    "due_on",
    "contract_starts_on",
    "contract_ends_on",
    "contract_from",
    "contract_to",
    "counted_until",
    "starts_on",
    "ends_on",
    "last_week_attended",
    "window_start",
    "served_on",
    "enrolled_on",
    "enrolled_by",
    "outcome_known_on",
    "outcome_due",
    "first_as_of",
    "last_as_of",
    "record_as_of",
    "session_date",
)


@dataclass(frozen=True)
class View:
    name: str
    description: str
    params: tuple[str, ...]
    required: tuple[str, ...] = ()
    students: bool = False  # rows are students: analysts (and evaluators, pseudonymised) only
    roles: tuple[str, ...] = ("analyst", "facilitator", "admin", "vendor", "evaluator", "school")


VIEWS = {
    view.name: view
    for view in (
        View(
            "series",
            "one metric over time at a grain (week, month or assessment window): period_start, value, n",
            ("metric", "grain", *FILTERS),
            ("metric",),
        ),
        View(
            "breakdown",
            "one metric by one or two dimensions: a column per dimension, then value, n",
            ("metric", "by", "by2", *FILTERS),
            ("metric", "by"),
        ),
        View("vendors", "one metric per vendor: vendor_id, value, n", ("metric", *FILTERS), ("metric",)),
        View(
            "panel",
            "one metric over time per value of one or two dimensions: period_start, a column per dimension, value, n",
            ("metric", "grain", "by", "by2", *FILTERS),
            ("metric", "by"),
        ),
        View("choices", "per dimension, the values the filter bar offers, with labels and students", ()),
        View(
            "events",
            "annotations a chart of one metric and slice should mark: dated events, breaks, program changes",
            ("start", "end", "metric", "vendor_id", "school_id"),
        ),
        View("rejections", "every problem of every rejected submission, with its file", ("start", "end")),
        View(
            "coverage",
            "per weekly metric and week: students enrolled, students with data, coverage",
            ("start", "end", "vendor_id", "school_id", "grade"),
        ),
        View(
            "absent_students",
            "students below max_rate tutoring attendance over the last `weeks` weeks up to `end`"
            " (follow-up: analysts, and a vendor its own)",
            ("max_rate", "weeks", "end", *DIMENSIONS),
            ("max_rate",),
            students=True,
        ),
        View(
            "not_growing",
            "students below the growth target at the latest assessment window up to `end` who had attended"
            " tutoring by then (follow-up: analysts, and a vendor its own)",
            ("end", *DIMENSIONS),
            students=True,
        ),
        View(
            "not_yet_served",
            "students on a roster at least `weeks` weeks by `end`, not exited, with no attended session"
            " (follow-up: analysts, and a vendor its own)",
            ("weeks", "end", *DIMENSIONS),
            students=True,
        ),
        View(
            "followed_student",
            "the student `student_id` if the scope may follow it up: student_key, vendor_id, school_id",
            ("student_id",),
            ("student_id",),
            students=True,
        ),
        View(
            "follow_up_counts",
            "per follow-up list (absent, not_growing, not_yet_served), its students up to `end`; small counts"
            " hidden from scopes that may not see the students",
            ("max_rate", "weeks", "unserved_weeks", "end", *DIMENSIONS),
            ("max_rate",),
        ),
        View(
            "student_values",
            "per student, a metric and metric_y over the dates (analysts only)",
            ("metric", "metric_y", *FILTERS),
            ("metric", "metric_y"),
            students=True,
        ),
        View(
            "payments",
            "per vendor contract and payment outcome, what the rate card has earned up to `end`: payments"
            " due by then under its terms (ciboard.payments), after caps",
            ("end",),
        ),
        # A statement lists students by the ids their vendor sent: its own vendor reads its own,
        # the district's analysts and admins read every vendor's.
        View(
            "statement",
            "a vendor's payment statement for a month (period YYYY-MM): per student and rate-card line, served,"
            " eligible or why not, successful, base and outcome amounts due that month, caps applied",
            ("vendor_id", "period"),
            ("period",),
            roles=("analyst", "admin", "vendor", "evaluator"),
        ),
        View(
            "session_checks",
            "attended sessions that fail a check against the district's records (calendar, enrollment,"
            " attendance, plausibility): per session and check, the reason, the decision and whether it counts"
            " toward payment (analysts, and a vendor its own)",
            ("start", "end", "vendor_id", "check"),
            students=True,
        ),
        View(
            "session_check_counts",
            "per vendor and check, the flagged sessions and their students, pending, accepted and rejected;"
            " small counts hidden from scopes that may not see the sessions",
            ("start", "end", "vendor_id", "check"),
        ),
        View(
            "quality",
            "per vendor, submission kind and period: due date, received at, status, rows",
            ("start", "end"),
        ),
        View(
            "submission_log",
            "every file received, newest first: what it covered, whether it landed, was rejected or replaced,"
            " on time or late, and whether a vendor's file falls outside every contract of the vendor",
            ("start", "end"),
        ),
        View(
            "student_records",
            "one row: students and records in the district's student records, their first and last as_of,"
            " rostered students without a record (groups from their vendor), students whose roster disagrees",
            (),
        ),
        View(
            "roster_disagreements",
            "per student and group where a vendor's roster differs from the district's student records (analysts only)",
            (),
            students=True,
        ),
        View(
            "matched",
            "per vendor (and period, with a grain), a metric against the students no vendor tutors of the same"
            " school, grade and baseline band, weighted to the vendor's mix: vendor_id, n, observed, expected,"
            " difference, diff_low, diff_high, unmatched, reference_n (students behind the expected value)",
            ("metric", "grain", *FILTERS),
            ("metric",),
        ),
        View(
            "peers",
            "one metric over time for all other vendors pooled, as a benchmark for the vendor in"
            " vendor_id (a vendor's own): period_start, value",
            ("metric", "grain", *FILTERS),
            ("metric",),
        ),
    )
}
# Views whose rows are students someone should act on: shared with every scope that follows
# students up (Scope.follows_up_students), each within its own scope.
FOLLOW_UP = ("absent_students", "not_growing", "not_yet_served", "followed_student")
# Views of students' rows a vendor reads for its own students, as the follow-up lists: its
# flagged sessions are its own to correct.
OWN_STUDENTS = (*FOLLOW_UP, "session_checks")
# What a school account reads: its own schools' numbers across vendors (a vendor's beside the
# others' at its schools too) and its own schools' follow-up lists. A vendor's submissions,
# payments and flagged sessions are between the vendor and the district.
SCHOOL_VIEWS = (
    "series", "breakdown", "vendors", "panel", "peers", "matched", "choices", "events", "coverage", "follow_up_counts", *FOLLOW_UP,
)
# Views that bind the school scope as a parameter of their own: they take no filters.
SCHOOL_SCOPED = ("choices", "followed_student")
# Columns that name a student: an evaluator reads them as its own pseudonyms.
STUDENT_COLUMNS = privacy.STUDENT_COLUMNS
# Views whose text echoes what a file said, student ids among it: an evaluator reads every
# district student id in that text as its pseudonym too.
ECHOED_TEXT = {"rejections": ("value", "reason"), "session_checks": ("flag_key",)}
# A word of text that could be a student id.
_WORD = re.compile(r"[A-Za-z0-9_.-]+")
# Views that count service: they read the district's decisions about flagged sessions.
CHECKED = ("payments", "statement", "session_checks", "session_check_counts")
# Views whose rows are cells over students, small ones hidden by ciboard.privacy.
CELLS = ("series", "breakdown", "vendors", "panel")


class QueryError(ValueError):
    """A request the query layer cannot answer; the message says what would be valid."""


def readable(scope: Scope, view: str) -> bool:
    """Whether `run` lets the scope read the view at all: pages leave out what it refuses."""
    spec = VIEWS[view]
    if spec.students and not scope.sees_students and not (view in OWN_STUDENTS and scope.follows_up_students):
        return False
    return scope.role in spec.roles and (scope.role != "school" or view in SCHOOL_VIEWS)


def run(
    warehouse: Warehouse,
    view: str,
    scope: Scope,
    params: Mapping[str, Any] | None = None,
    *,
    today: date | None = None,
) -> pd.DataFrame:
    """Runs a view as a scope. The frame's attrs carry the warehouse version it was read from."""
    spec, given = _checked(view, scope, params)
    version = warehouse.version()
    min_cell = warehouse.settings.min_cell_size
    with warehouse.cursor(version) as cur:
        metrics = dict(cur.execute("select metric_id, aggregation from metrics").fetchall())
        bound = _bind(spec, given, scope, set(metrics), today or date.today(), min_cell)
        if view in CHECKED:
            bound.update(_service_checks(warehouse))
        period = bound.pop("period", None)
        frame = cur.execute(SQL[view], bound).df()
    frame = _shape(view, frame, given)
    if view == "payments":
        frame = payments.summary(frame, bound["end"])
    if view == "statement":
        terms = payments.terms(frame, period)
        frame, totals = payments.statement(frame, period)
        frame.attrs["left_out"] = _left_out(warehouse, version, bound, frame)
        lines = _adjustments(warehouse, version, scope, bound, period)
        totals = payments.adjusted(totals, lines)
        if scope.pseudonymises:
            lines = pseudonymised(lines, scope, warehouse)
        frame.attrs["adjustments"] = lines.to_dict(orient="list")
        frame.attrs["terms"] = terms.to_dict(orient="list")
        frame.attrs["totals"] = totals.to_dict(orient="list")
        frame.attrs["period"] = payments.label(period)
        frame.attrs["vendor_id"] = bound["scope_vendor"] or bound["vendor"]
        frame.attrs["read_as"] = str(scope)
    hide = scope.suppresses_small_cells
    if view in CELLS:
        frame = _protected(view, frame, given, scope, metrics[bound["metric"]], min_cell)
    if hide and view == "peers":
        frame = privacy.perturb(frame, metrics[bound["metric"]], min_cell=min_cell)
    if view == "peers":
        frame = privacy.benchmark_pool(frame, scope, min_cell)
    if view == "matched":
        frame = _matched(frame, metrics[bound["metric"]], hide, min_cell, by_period=bound["grain"] is not None)
    if view == "coverage":
        frame = privacy.coverage(frame, hide, min_cell)
    if view == "follow_up_counts":
        frame = privacy.follow_up_counts(frame, scope.protects_follow_up_counts, min_cell)
    if view == "session_check_counts":
        frame = privacy.session_check_counts(frame, not scope.follows_up_students, min_cell)
    frame = frame.drop(columns=[c for c in frame.columns if c == "cell_key"])
    if scope.pseudonymises:
        frame = pseudonymised(frame, scope, warehouse)
        if view in ECHOED_TEXT:
            frame = _pseudonymised_text(frame, ECHOED_TEXT[view], scope, warehouse, version)
    frame.attrs["version"] = version
    return frame


def _checked(view: str, scope: Scope, params: Mapping[str, Any] | None) -> tuple[View, dict[str, Any]]:
    """The view and the parameters given, once the view, the parameters' names and the scope's
    right to read it are checked (their values are checked as `_bind` binds them)."""
    if view not in VIEWS:
        raise QueryError(f"unknown view {view!r}; the views are {', '.join(VIEWS)}")
    spec = VIEWS[view]
    # An empty value is no value: an empty filter (a list, or the tuple a cache key makes of it) filters nothing.
    given = {k: v for k, v in (params or {}).items() if not (v is None or v == "" or v == [] or v == ())}
    if view == "statement" and scope.role == "vendor":
        given.setdefault("vendor_id", scope.vendor_id)  # a vendor's statement is its own
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        raise QueryError(
            f"unknown parameter(s) {', '.join(unknown)} for view {view}; it takes {', '.join(spec.params)}"
        )
    missing = [p for p in spec.required if p not in given]
    if missing:
        raise QueryError(f"view {view} needs {', '.join(missing)}")
    if spec.students and not scope.sees_students and not (view in OWN_STUDENTS and scope.follows_up_students):
        raise ScopeError(f"{view} lists students, which only analysts may see")
    if scope.role not in spec.roles:
        raise ScopeError(f"{view} lists students: the district's analysts and admins, and the vendor itself, may read it")
    if scope.role == "school" and view not in SCHOOL_VIEWS:
        raise ScopeError(f"{view} is between the district and its vendors; a school account reads {', '.join(SCHOOL_VIEWS)}")
    return spec, given


def _protected(view: str, frame: pd.DataFrame, given: dict[str, Any], scope: Scope, aggregation: str,
               min_cell: int) -> pd.DataFrame:
    """A frame of cells (a view of CELLS) as the scope may see it: small cells flagged, and for a
    scope that hides, hidden with their complements and every count and sum noised (ciboard.privacy)."""
    frame = privacy.suppress(
        frame,
        min_cell=min_cell,
        hide=scope.suppresses_small_cells,
        by=_adding_up(view, given),
        per=("period_start",) if view == "panel" else (),
    )
    if scope.suppresses_small_cells:
        frame = privacy.perturb(frame, aggregation, min_cell=min_cell)
    return frame


def panels(
    warehouse: Warehouse,
    scope: Scope,
    params: Mapping[str, Any],
    groupings: list[tuple[str, ...]],
) -> list[pd.DataFrame]:
    """Weekly panels of one metric for several groupings at once: for each grouping (no
    dimension, one, or two), the frame `run` gives for the series (no dimension) or the panel
    by them, with the same checks, scope, suppression and noise, from one pass over the facts
    (`group by grouping sets`) where `run` would read them once per grouping. The signals chart
    18 groupings of every weekly metric (9 for a vendor): one pass takes under half the time.

    `params` are the series' (a metric and filters); the grain can only be the week."""
    return _in_one_pass(warehouse, scope, params, ["panel" if grouping else "series" for grouping in groupings], groupings)


def breakdowns(
    warehouse: Warehouse,
    scope: Scope,
    params: Mapping[str, Any],
    groupings: list[tuple[str, ...]],
) -> list[pd.DataFrame]:
    """Breakdowns of one metric over the dates by several groupings (one dimension or two) at
    once: for each, the frame `run` gives for the breakdown, as `panels` gives panels. The gaps
    of a meeting break a metric down by six dimensions over two ranges of dates.

    A median needs each group's values rather than sums: its breakdowns are run one at a time."""
    if any(not grouping for grouping in groupings):
        raise QueryError("view breakdown needs by")
    return _in_one_pass(warehouse, scope, params, ["breakdown"] * len(groupings), groupings)


def _in_one_pass(warehouse: Warehouse, scope: Scope, params: Mapping[str, Any], views: list[str],
                 groupings: list[tuple[str, ...]]) -> list[pd.DataFrame]:
    """`panels` and `breakdowns`: each grouping read as `run` reads its view (of `views`), every
    request checked as `run` checks it."""
    if not groupings:
        return []
    asked = [{**params, **dict(zip(("by", "by2"), grouping))} for grouping in groupings]
    checked = [_checked(view, scope, p)[1] for view, p in zip(views, asked)]
    weekly = views[0] != "breakdown"
    version = warehouse.version()
    min_cell = warehouse.settings.min_cell_size
    with warehouse.cursor(version) as cur:
        metrics = dict(cur.execute("select metric_id, aggregation from metrics").fetchall())
        bound = [_bind(VIEWS[view], each, scope, set(metrics), date.today(), min_cell) for view, each in zip(views, checked)]
        if weekly and bound[0]["grain"] != "week":
            raise QueryError(f"panels are weekly; the grain {bound[0]['grain']!r} is read one grouping at a time with run")
        dimensions = [d for d in DIMENSIONS if any(d in grouping for grouping in groupings)]
        # The groupings differ in their dimensions only: the rest is bound once.
        shared = {k: v for k, v in bound[0].items() if k not in ("grain", "by", "by2")}
        # A median over more than a week needs each group's values, not sums per student.
        one_pass = weekly or metrics[shared["metric"]] != "median"
        cells = cur.execute(_panels_sql(dimensions, groupings, weekly=weekly), shared).df() if one_pass else None
    if cells is None:
        return [run(warehouse, view, scope, each) for view, each in zip(views, asked)]
    found = []
    for view, frame, each in zip(views, _grouped(cells, len(groupings)), checked):
        frame = frame.drop(columns=["group_1", "group_2"] if view == "series" else ["period_start"] if view == "breakdown" else [])
        frame = _protected(view, _shape(view, frame, each), each, scope, metrics[shared["metric"]], min_cell)
        frame = frame.drop(columns="cell_key")
        frame.attrs["version"] = version
        found.append(frame)
    return found


def _panels_sql(dimensions: list[str], groupings: list[tuple[str, ...]], *, weekly: bool) -> str:
    """The statement of `panels` (`weekly`) and `breakdowns`: a row per grouping, group (and
    week), each grouping's rows together in the order of `groupings` and ordered as the panel
    view orders its own. The names are checked against DIMENSIONS; the values are bound."""
    if not set(dimensions) <= set(DIMENSIONS):  # `_in_one_pass` checked them; the text must never hold another
        raise QueryError(f"unknown dimensions {sorted(set(dimensions) - set(DIMENSIONS))}")
    # grouping() sets a bit for each dimension a set leaves out, the first dimension's highest.
    ids = [sum(1 << (len(dimensions) - 1 - i) for i, d in enumerate(dimensions) if d not in g) for g in groupings]

    def by_grouping(values: list[str]) -> str:
        return "case grouping_id " + " ".join(f"when {i} then {v}" for i, v in zip(ids, values)) + " end"

    groups = [by_grouping([g[position] if len(g) > position else "''" for g in groupings]) for position in (0, 1)]
    grouping_id = f"grouping({', '.join(dimensions)})" if dimensions else "0"
    listed = "".join(d + ", " for d in dimensions)
    if weekly:
        # Facts are one per student and week, so a week's rows are its students.
        sets = ", ".join("(" + ", ".join(("period_start", "aggregation", *g)) + ")" for g in groupings)
        cells = f"""
            select
                {grouping_id} as grouping_id,
                period_start,
                {listed}
                metric_value(aggregation, value, denominator) as value,
                count(*) as n,
                sum(value) as numerator,
                metric_denominator(aggregation, denominator) as denominator,
                sample_sd(mean_value) as sd,
                bit_xor(student_hash) as cell_key
            from weekly_facts($metric, {_FILTER_ARGS})
            group by grouping sets ({sets})"""
    else:
        # As the panel's one period: summed per student and group first, so a group's rows are its students.
        sets = ", ".join("(" + ", ".join(("student_key", "student_hash", "aggregation", *g)) + ")" for g in groupings)
        cells = f"""
            with per_student as (
                select
                    {grouping_id} as grouping_id,
                    {listed}
                    aggregation,
                    student_hash,
                    count(*) as facts,
                    sum(value) as total,
                    sum(denominator) as denominator,
                    count(mean_value) as mean_values,
                    sum((mean_value * 1e9)::hugeint)::decimal(38, 0) as scaled_total,
                    sum((mean_value * 1e9)::hugeint * (mean_value * 1e9)::hugeint)::decimal(38, 0) as scaled_squares
                from weekly_facts($metric, {_FILTER_ARGS})
                group by grouping sets ({sets})
            )
            select
                grouping_id,
                null::date as period_start,
                {listed}
                case aggregation when 'rate' then sum(total) / nullif(sum(denominator), 0) else sum(total) / sum(facts) end
                    as value,
                count(*) as n,
                sum(total) as numerator,
                case aggregation when 'rate' then sum(denominator) else sum(facts) end as denominator,
                sample_sd_from_sums(sum(mean_values), sum(scaled_total)::hugeint, sum(scaled_squares)::hugeint) as sd,
                bit_xor(student_hash) as cell_key
            from per_student
            group by grouping_id, {listed}aggregation"""
    return f"""
        with cells as ({cells}
        )
        select {by_grouping([str(i) for i in range(len(groupings))])} as grouping, period_start,
            {groups[0]} as group_1, {groups[1]} as group_2, value, n, numerator, denominator, sd, cell_key
        from cells
        -- A student whose group is unknown is in no group of the dimension, as in the panel.
        where group_1 is not null and group_2 is not null
        order by grouping, group_1, group_2, period_start
    """


def _grouped(cells: pd.DataFrame, count: int) -> list[pd.DataFrame]:
    """The rows of the `panels` statement, one frame per grouping, as the panel view gives
    them (group_1 and group_2 '' where the grouping has no dimension)."""
    ends = np.searchsorted(cells["grouping"].to_numpy(), np.arange(count + 1))
    cells = cells.drop(columns="grouping")
    return [cells.iloc[start:end].reset_index(drop=True) for start, end in zip(ends[:-1], ends[1:])]


def _pseudonymised_text(
    frame: pd.DataFrame, columns: tuple[str, ...], scope: Scope, warehouse: Warehouse, version: str
) -> pd.DataFrame:
    """Every word of the text columns that is a district student id, as the evaluator's pseudonym."""
    with warehouse.cursor(version) as cur:
        students = {k for (k,) in cur.execute("select student_key from students").fetchall()}
    key = privacy.pseudonym_key(AppDB.of(warehouse.settings))

    def rewritten(text):
        if not isinstance(text, str):
            return text
        return _WORD.sub(
            lambda m: privacy.pseudonym(key, scope.evaluator, m.group()) if m.group() in students else m.group(), text
        )

    frame = frame.copy()
    for column in columns:
        if column in frame.columns:
            frame[column] = frame[column].map(rewritten)
    return frame


def pseudonymised(frame: pd.DataFrame, scope: Scope, warehouse: Warehouse) -> pd.DataFrame:
    """The frame with every student id an evaluator's pseudonym of it (ciboard.privacy.pseudonym)."""
    if not any(c in frame.columns for c in STUDENT_COLUMNS):
        return frame
    return privacy.pseudonymised(frame, privacy.pseudonym_key(AppDB.of(warehouse.settings)), scope.evaluator)


# Static SQL per view: every value is a bound parameter.
_FILTER_ARGS = (
    "scope_vendor := $scope_vendor, start_date := $start, end_date := $end,"
    " filters := $filters::map(varchar, varchar[]), min_dosage_share := $min_dosage_share"
)
_CHECK_ARGS = (
    "max_per_day := $max_per_day, max_minutes := $max_minutes, counted_checks := $counted_checks::varchar[],"
    " accepted := $accepted::varchar[], rejected := $rejected::varchar[]"
)
_FLAGS = (
    "select * from session_checks(scope_vendor := $scope_vendor, start_date := $start, end_date := $end,"
    f" {_CHECK_ARGS}) where ($vendors::varchar[] is null or list_contains($vendors::varchar[], vendor_id))"
    " and ($check::varchar is null or check_name = $check::varchar)"
)
SQL = {
    "series": f"select * from series($metric, grain := $grain, {_FILTER_ARGS})",
    "breakdown": f"select * from breakdown($metric, $by, by_dimension_2 := $by2, {_FILTER_ARGS})",
    "vendors": f"select * from vendors($metric, {_FILTER_ARGS})",
    "panel": (
        f"select * from panel($metric, grain := $grain, by_dimension := $by, by_dimension_2 := $by2, {_FILTER_ARGS})"
    ),
    "payments": f"select * from payment_students(scope_vendor := $scope_vendor, as_of := $end, {_CHECK_ARGS})",
    # The scope's vendor, else the one asked for: a statement is one vendor's.
    "statement": (
        f"select * from payment_students(scope_vendor := coalesce($scope_vendor, $vendor), as_of := $end, {_CHECK_ARGS})"
    ),
    "session_checks": _FLAGS,
    # The sessions a statement's service leaves out: a session counts only when every flag on it does.
    "left_out": (
        "select count(*) filter (where not counted) as sessions,"
        " count(*) filter (where not counted and awaiting) as pending"
        " from (select student_key, session_date, tutor_id, bool_and(counts) as counted,"
        " bool_or(not counts and decision = 'pending') as awaiting"
        " from session_checks(scope_vendor := coalesce($scope_vendor, $vendor), start_date := $start, end_date := $end,"
        f" {_CHECK_ARGS}) group by all)"
    ),
    "session_check_counts": (
        f"select vendor_id, check_name, count(*) as sessions, count(distinct student_key) as students,"
        f" count(*) filter (where decision = 'pending') as pending, count(*) filter (where decision = 'accepted')"
        f" as accepted, count(*) filter (where decision = 'rejected') as rejected,"
        f" count(*) filter (where not counts) as not_counted from ({_FLAGS}) group by all order by all"
    ),
    "choices": "select * from choices(scope_vendor := $scope_vendor, scope_schools := $scope_schools::varchar[])",
    "events": (
        "select * from events(scope_vendor := $scope_vendor, start_date := $start, end_date := $end,"
        " metric := $metric, filters := $filters::map(varchar, varchar[]))"
    ),
    "rejections": "select * from rejections(scope_vendor := $scope_vendor, start_date := $start, end_date := $end)",
    "coverage": (
        "select * from coverage(scope_vendor := $scope_vendor, start_date := $start, end_date := $end,"
        " filters := $filters::map(varchar, varchar[]))"
    ),
    "absent_students": (
        "select * from absent_students($max_rate, weeks := $weeks, scope_vendor := $scope_vendor,"
        " end_date := $end, filters := $filters::map(varchar, varchar[]))"
    ),
    "not_growing": (
        "select * from not_growing(scope_vendor := $scope_vendor, end_date := $end,"
        " filters := $filters::map(varchar, varchar[]))"
    ),
    "not_yet_served": (
        "select * from not_yet_served(weeks := $weeks, scope_vendor := $scope_vendor, end_date := $end,"
        " filters := $filters::map(varchar, varchar[]))"
    ),
    "followed_student": (
        "select * from followed_student($student_id, scope_vendor := $scope_vendor,"
        " scope_schools := $scope_schools::varchar[])"
    ),
    "follow_up_counts": (
        "select * from follow_up_counts($max_rate, weeks := $weeks, unserved_weeks := $unserved_weeks,"
        " scope_vendor := $scope_vendor, end_date := $end, filters := $filters::map(varchar, varchar[]))"
    ),
    "student_values": (
        f"select * from student_values($metric, $metric_y, {_FILTER_ARGS})"
    ),
    "quality": (
        "select * from quality(scope_vendor := $scope_vendor, start_date := $start, end_date := $end, as_of := $today)"
    ),
    "submission_log": "select * from submission_log(scope_vendor := $scope_vendor, start_date := $start, end_date := $end)",
    "student_records": "select * from student_records(scope_vendor := $scope_vendor)",
    "roster_disagreements": "select * from roster_disagreements(scope_vendor := $scope_vendor)",
    "matched": f"select * from matched_cells($metric, grain := $grain, {_FILTER_ARGS})",
    "peers": (
        "select * from peers($metric, grain := $grain, own_vendor := $own_vendor, start_date := $start,"
        " end_date := $end, filters := $filters::map(varchar, varchar[]), min_dosage_share := $min_dosage_share,"
        " min_cell := $min_cell)"
    ),
}


def _bind(
    spec: View, given: dict[str, Any], scope: Scope, metrics: set[str], today: date, min_cell: int
) -> dict[str, Any]:
    if scope.role == "vendor":
        asked = given.get("vendor_id")
        if asked is not None and _as_list(asked) != [scope.vendor_id]:
            raise ScopeError(f"this account sees only its own vendor, {scope.vendor_id}")
    if scope.role == "school" and "school_id" in given:
        if set(_filter_values("school_id", given["school_id"])) - set(scope.school_ids):
            raise ScopeError("this account sees only its own schools, " + ", ".join(scope.school_ids))
    bound: dict[str, Any] = {"scope_vendor": scope.vendor_id if scope.role == "vendor" else None}
    if spec.name == "peers":
        # The benchmark reads every vendor's facts, so no scope vendor is bound: the vendor it
        # is for is left out instead, and the vendor filter names that vendor, not the peers.
        bound = {"own_vendor": _benchmarked(given, scope), "min_cell": min_cell}
        given = {k: v for k, v in given.items() if k != "vendor_id"}
    for name in ("metric", "metric_y"):
        if name in spec.params:
            if name not in spec.required and given.get(name) is None:
                bound[name] = None
                continue
            metric = str(given[name])
            if metric not in metrics:
                raise QueryError(f"unknown metric {metric!r}; the metrics are {', '.join(sorted(metrics))}")
            bound[name] = metric
    if "max_rate" in spec.params:
        bound["max_rate"] = _as_number("max_rate", given["max_rate"], 0, 1)
    for name, default in (("weeks", 4), ("unserved_weeks", 3)):
        if name in spec.params:
            bound[name] = int(_as_number(name, given.get(name, default), 1, 60))
    if "student_id" in spec.params:
        bound["student_id"] = str(given["student_id"])
    if spec.name == "matched" and "grain" not in given:
        bound["grain"] = None  # one period: the whole range of dates
    elif "grain" in spec.params:
        grain = str(given.get("grain", "week"))
        if grain not in GRAINS:
            raise QueryError(f"unknown grain {grain!r}; the grains are {', '.join(GRAINS)}")
        bound["grain"] = grain
    for name in ("by", "by2"):
        if name in spec.params:
            dimension = given.get(name)
            if dimension is not None and dimension not in DIMENSIONS:
                raise QueryError(f"unknown dimension {dimension!r} for {name}; the dimensions are {', '.join(DIMENSIONS)}")
            bound[name] = dimension
    if "by" in spec.params and bound.get("by") == bound.get("by2"):
        raise QueryError("by and by2 must name different dimensions")
    for name in ("start", "end"):
        if name in spec.params:
            bound[name] = _as_date(name, given.get(name))
    if "start" in spec.params and "end" in spec.params and bound["start"] and bound["end"]:
        if bound["start"] > bound["end"]:
            raise QueryError(f"start {bound['start']} is after end {bound['end']}")
    if "min_dosage_share" in spec.params:
        share = given.get("min_dosage_share")
        bound["min_dosage_share"] = None if share is None else _as_number("min_dosage_share", share, 0, 1)
    if spec.name in SCHOOL_SCOPED:
        bound["scope_schools"] = list(scope.school_ids) or None
    if any(d in spec.params for d in DIMENSIONS):
        filters = {d: _filter_values(d, given[d]) for d in DIMENSIONS if d in given}
        if scope.role == "school":
            # The school scope rides on the school filter every filtered view applies: the
            # schools asked for, all of them the account's own, else all the account's own.
            filters["school_id"] = filters.get("school_id") or list(scope.school_ids)
        bound["filters"] = {"key": list(filters), "value": list(filters.values())}
    if spec.name == "quality":
        bound["today"] = today
    if "check" in spec.params:
        check = given.get("check")
        if check is not None and check not in session_checks.CHECKS:
            raise QueryError(f"unknown check {check!r}; the checks are {', '.join(session_checks.CHECKS)}")
        bound["check"] = check
        bound["vendors"] = [str(v) for v in _as_list(given["vendor_id"])] if "vendor_id" in given else None
        del bound["filters"]  # the vendors are bound as a list of their own
    if spec.name == "statement":
        vendors = _as_list(given.get("vendor_id", []))
        if len(vendors) != 1:
            raise QueryError("a statement is one vendor's: give exactly one vendor_id")
        try:
            bound["period"] = payments.period_of(given["period"])
        except payments.PeriodError as error:
            raise QueryError(str(error)) from None
        bound["vendor"] = str(vendors[0])
        del bound["filters"]  # the vendor names the statement; it filters nothing
        bound["end"] = payments.period_end(bound["period"])
    return bound


def statement_totals(warehouse: Warehouse, scope: Scope, vendor_id: str, periods: list[str]) -> dict[str, pd.DataFrame]:
    """Each month's statement totals, its adjustments included: a closed month's as it froze, an
    open month's as `run(..., "statement")` gives them in attrs["totals"]; for several months of
    one vendor at once (the reconciliation): one
    warehouse version, one read of the district's decisions and of the closed statements, and
    none of what only a statement's page shows (its terms, the sessions the checks left out).
    Totals name no student, so no pseudonyms are needed."""
    spec = VIEWS["statement"]
    if scope.role not in spec.roles:
        raise ScopeError("statement lists students: the district's analysts and admins, and the vendor itself, may read it")
    version = warehouse.version()
    checks = _service_checks(warehouse)
    reader = ANALYST if scope.pseudonymises else scope
    db = AppDB.of(warehouse.settings)
    found = {}
    with warehouse.cursor(version) as cur:
        metrics = {m for (m,) in cur.execute("select metric_id from metrics").fetchall()}
        bound = [{**_bind(spec, {"vendor_id": vendor_id, "period": p}, scope, metrics, date.today(), 0), **checks}
                 for p in periods]
        vendor = (bound[0]["scope_vendor"] or bound[0]["vendor"]) if bound else vendor_id
        closed = {m: statements.read(db, reader, vendor, m) for m in statements.closed_months(db, vendor)}
        for month, params in zip(periods, bound):
            period = params.pop("period")
            if payments.label(period) in closed:
                # What later data changes in a closed month is carried into the next open one.
                frozen = closed[payments.label(period)].totals
                found[month] = frozen if "adjustments" in frozen else frozen.assign(adjustments=0.0)
                continue
            students = _shape("statement", cur.execute(SQL["statement"], params).df(), {})
            _, totals = payments.statement(students, period)
            lines = _adjustments(warehouse, version, scope, params, period, closed)
            found[month] = payments.adjusted(totals, lines)
    return found


def _adjustments(warehouse: Warehouse, version: str, scope: Scope, bound: dict[str, Any], period: date,
                 closed: dict[str, "statements.Closed"] | None = None) -> pd.DataFrame:
    """The adjustment lines of a vendor's month: as frozen if the month is closed, else what the
    data now changes in the closed months right before it (ciboard.payments.adjustments).
    `closed` is the vendor's closed statements, read here if not given."""
    db = AppDB.of(warehouse.settings)
    vendor = bound["scope_vendor"] or bound["vendor"]
    # Read by student as frozen, to compare with the live data: an evaluator's lines are
    # pseudonymised once, when run gives them.
    reader = ANALYST if scope.pseudonymises else scope
    if closed is None:
        closed = {m: statements.read(db, reader, vendor, m) for m in statements.closed_months(db, vendor)}
    if payments.label(period) in closed:
        return closed[payments.label(period)].adjustments
    live, new_terms = {}, {}
    for month in payments.carried_into(list(closed), period):
        # Each month as its own statement computed it: service and results counted up to its end.
        first = payments.period_of(month)
        with warehouse.cursor(version) as cur:
            students = _shape("statement", cur.execute(SQL["statement"], {**bound, "end": payments.period_end(first)}).df(), {})
        live[month] = payments.statement(students, first)
        changed = payments.changed_terms(closed[month].terms, payments.terms(students, first))
        if changed:
            new_terms[month] = _terms_versions(warehouse, students, changed)
    return payments.adjustments({m: (c.rows, c.totals, c.adjustments) for m, c in closed.items()}, live, period, new_terms)


def _terms_versions(warehouse: Warehouse, students: pd.DataFrame, contracts: set[tuple]) -> dict[tuple, str]:
    """Each contract's rate-card version in force now, in words ("version 3 by finance on
    2026-07-15"); a contract no longer in force (its dates moved) names its vendor's newest."""
    from ciboard import contract_terms  # it loads contract files through ingest, which this module need not load

    lines = students.drop_duplicates(payments.CONTRACT).set_index(payments.CONTRACT)[["terms_batch", "contract_year"]]
    said = {}
    for vendor, starts_on in contracts:
        mine = lines[lines.index.get_level_values(0) == vendor].sort_values("terms_batch")
        line = lines.loc[(vendor, starts_on)] if (vendor, starts_on) in lines.index else (mine.iloc[-1] if len(mine) else None)
        said[(vendor, starts_on)] = (
            contract_terms.version_text(warehouse, int(line["terms_batch"]),
                                        None if pd.isna(line["contract_year"]) else line["contract_year"])
            if line is not None else "no line of this contract is in force now")
    return said


def _left_out(warehouse: Warehouse, version: str, bound: dict[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """How many of the vendor's attended sessions in the statement's contracts, up to the month's
    end, the district-record checks leave out of its service, and how many of those await a decision."""
    if rows.empty:
        return {"sessions": 0, "pending": 0, "start": None, "end": bound["end"]}
    start = min(rows["contract_starts_on"])
    params = {k: bound[k] for k in ("scope_vendor", "vendor", "end", *_service_checks(warehouse))}
    with warehouse.cursor(version) as cur:
        sessions, pending = cur.execute(SQL["left_out"], {**params, "start": start}).fetchall()[0]
    return {"sessions": int(sessions), "pending": int(pending), "start": start, "end": bound["end"]}


def _service_checks(warehouse: Warehouse) -> dict[str, Any]:
    """The district's settings and decisions for the session checks, from the settings and the
    app database, never from the caller: what counts toward payment is not a parameter."""
    settings = warehouse.settings
    decided = session_checks.decided(AppDB.of(settings))
    return {
        "max_per_day": settings.max_sessions_per_day,
        "max_minutes": settings.max_session_minutes,
        "counted_checks": list(settings.session_checks_counted),
        "accepted": decided["accepted"],
        "rejected": decided["rejected"],
    }


def service_checks_key(warehouse: Warehouse) -> str:
    """Changes whenever what the session checks let count changes (a setting or a decision):
    what a reading of the CHECKED views is kept under."""
    text = json.dumps(_service_checks(warehouse), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _benchmarked(given: dict[str, Any], scope: Scope) -> str:
    """The vendor a benchmark is for: a vendor's own, or the one vendor anyone else names."""
    if scope.role == "vendor":
        return scope.vendor_id
    asked = _as_list(given.get("vendor_id", []))
    if len(asked) != 1:
        raise QueryError("peers benchmarks one vendor: give exactly one vendor_id")
    return str(asked[0])


def _as_number(name: str, value: Any, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise QueryError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}") from None
    if not low <= number <= high:
        raise QueryError(f"{name} must be from {low:g} to {high:g}, not {number:g}")
    return number


def _as_list(value: Any) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, set)):
        return list(value)
    return [value]


def _filter_values(dimension: str, value: Any) -> list[str]:
    values = _as_list(value)
    if dimension in BOOLEAN_DIMENSIONS:
        return [_as_bool(dimension, v) for v in values]
    if dimension == "grade":
        try:
            return [str(int(v)) for v in values]
        except (TypeError, ValueError):
            raise QueryError(f"grade must be whole numbers, not {value!r}") from None
    return [str(v) for v in values]


def _as_bool(name: str, value: Any) -> str:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "t"):
        return "true"
    if text in ("false", "0", "no", "n", "f"):
        return "false"
    raise QueryError(f"{name} must be true or false, not {value!r}")


def _as_date(name: str, value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise QueryError(f"{name} must be an ISO date (YYYY-MM-DD), not {value!r}") from None


def _shape(view: str, frame: pd.DataFrame, given: dict[str, Any]) -> pd.DataFrame:
    """Names breakdown columns after their dimensions and gives dimensions their own types."""
    if view in ("breakdown", "panel"):
        frame = frame.rename(columns={"group_1": given["by"]})
        if given.get("by2"):
            frame = frame.rename(columns={"group_2": given["by2"]})
        else:
            frame = frame.drop(columns="group_2")
    for dimension in DIMENSIONS:
        if dimension in frame.columns:
            if dimension in BOOLEAN_DIMENSIONS and frame[dimension].dtype != bool:
                # Grouped dimensions come back as text; a student's own flags are already booleans.
                frame[dimension] = frame[dimension].map({"true": True, "false": False, True: True, False: False})
            elif dimension == "grade":
                frame[dimension] = frame[dimension].astype("Int64")
    for column in frame.columns:
        if column in DATE_COLUMNS:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def _adding_up(view: str, given: dict[str, Any]) -> tuple[str, ...]:
    """The dimensions along which a view's cells add up to totals a reader can see."""
    if view == "vendors":
        return ("vendor_id",)
    if view in ("breakdown", "panel"):
        return tuple(given[name] for name in ("by", "by2") if given.get(name))
    return ()  # a series: each period is its own total


MATCHED_COLUMNS = (
    "vendor_id", "n", "observed", "expected", "difference", "diff_low", "diff_high", "unmatched", "reference_n",
    "suppressed",
)


def _matched(frame: pd.DataFrame, aggregation: str, hide: bool, min_cell: int, by_period: bool) -> pd.DataFrame:
    """Each vendor's students against the students no vendor tutors, stratum by stratum (school,
    grade, baseline band), by ciboard.stats.compare.observed_expected with those students as the
    reference. For a scope that hides, the not-tutored strata of fewer than `min_cell` students
    take no part, a vendor with fewer than `min_cell` matched students, or matched against fewer,
    is hidden, and the observed and expected values and counts carry the cell-key noise of the
    students behind them (so no two filters subtract to a few students' values): the comparison
    is a pooled benchmark, never rows. The noise goes on the pooled values, not on the strata,
    whose few students each it would swamp."""
    columns = (["period_start"] if by_period else []) + list(MATCHED_COLUMNS)
    if aggregation == "median" or frame.empty:
        return pd.DataFrame(columns=columns)
    strata = ["school_id", "grade", "baseline_band"]
    if hide:
        frame = frame[(frame["side"] == "vendor") | (frame["n"] >= min_cell)]
    cells = frame.assign(mean=frame["value"], sd=frame["sd"].fillna(0.0))
    found = []
    for period, rows in cells.groupby("period_start", dropna=False, sort=True) if by_period else [(None, cells)]:
        units = rows[rows["side"] == "vendor"]
        reference = rows[rows["side"] == NOT_TUTORED]
        if units.empty or reference.empty:
            continue
        result = compare.observed_expected(
            units[["vendor_id", *strata, "mean", "sd", "n"]], by="vendor_id", adjust_for=strata,
            reference=reference[[*strata, "mean", "sd", "n"]],
        )
        # Judged on the true counts: the noisy ones never read below `min_cell`.
        result["suppressed"] = hide & ((result["n"] < min_cell) | (result["reference_n"] < min_cell)).to_numpy(dtype=bool)
        if hide:
            result = privacy.noisy_comparison(result, units, reference, strata, min_cell)
        if by_period:
            result.insert(0, "period_start", period)
        found.append(result)
    if not found:
        return pd.DataFrame(columns=columns)
    result = pd.concat(found, ignore_index=True).sort_values([*(["period_start"] if by_period else []), "vendor_id"])
    measures = ["observed", "expected", "difference", "diff_low", "diff_high", "reference_n"]
    result.loc[result["suppressed"], measures] = np.nan
    for count in ("n", "unmatched", "reference_n"):
        result[count] = result[count].round().astype("Int64")
    result.loc[result["suppressed"], ["n", "unmatched"]] = pd.NA
    return result[columns].reset_index(drop=True)


def data_map(warehouse: Warehouse) -> pd.DataFrame:
    """The shared metric definitions, one row per metric."""
    with warehouse.cursor() as cur:
        return cur.execute("select * exclude (submitted_as) from metrics order by kind, metric_id").df()
