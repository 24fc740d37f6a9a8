"""Metrics without code: an administrator adds and edits the data map from a TOML file or the
Data map page, and every edit is a version kept for good.

Why TOML: a definition is paragraphs of text, which CSV mangles and JSON makes one escaped line;
TOML holds them as written, takes comments, nests a metric's targets under it, is read by the
standard library (tomllib), and is the format the import profiles use. One file is one metric:

    [metric]
    label = "Met typical growth in reading"
    kind = "payment outcome"          # payment outcome, process outcome or context
    ...
    [[targets]]                       # optional: a target for a school year, a vendor, or both
    school_year = "2025-26"
    vendor_id = "V3"
    target = 0.6
    [[gap_targets]]                   # optional: a gap to close, e.g. English learners to 3 points
    dimension = "english_learner"
    gap = 3

The warehouse's `metrics` table stays the current definition the views read; every save
appends a version to `metric_versions` (with its targets) through the warehouse's publish, so
pages see a new data version and a save lands whole or not at all.
"""

import math
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from ciboard.access import Scope
from ciboard.accounts import Account
from ciboard.warehouse import Warehouse

KINDS = ("payment outcome", "process outcome", "context")
AGGREGATIONS = ("mean", "median", "rate", "proportion")
BETTER = ("higher", "lower")
FREQUENCIES = ("weekly", "window")
TEXT_FIELDS = ("label", "unit", "definition", "instrument", "source", "timing", "accuracy")
# In the `metrics` table's column order, which the views and ingest read.
COLUMNS = ("metric_id", "label", "kind", "unit", "aggregation", "better", "frequency", "definition", "instrument",
           "source", "timing", "accuracy", "target", "submitted_as")
FIELDS = (*COLUMNS[1:], "derived_by", "note")
# What a contract's payment rests on: changing one of these would change what a closed month paid.
HOW_COMPUTED = ("aggregation", "frequency", "submitted_as")
GAP_DIMENSIONS = ("race_ethnicity", "gender", "econ_disadvantaged", "english_learner", "special_education", "grade",
                  "baseline_band", "school_id")
YES_NO_DIMENSIONS = ("econ_disadvantaged", "english_learner", "special_education")
METRIC_ID = re.compile(r"[a-z][a-z0-9_]{1,62}")
SEEDED_BY = "the data map as seeded or loaded"


class MetricError(ValueError):
    """Every problem with a metric file or edit, each naming the file, the key and the field."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class MetricInUse(MetricError):
    pass


@dataclass(frozen=True)
class MetricFile:
    """A metric file as read: the fields given, and its targets if the file has the key."""

    name: str
    fields: dict
    targets: list[dict] | None
    gap_targets: list[dict] | None


def read_toml(content: bytes | str, name: str) -> MetricFile:
    """Parses a metric file; a problem of form (not of meaning, which `save` checks against the
    warehouse) raises MetricError naming the file, key and field."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MetricError([f"{name}: not a TOML file: {error}"]) from None
    except UnicodeDecodeError:
        raise MetricError([f"{name}: not UTF-8 text"]) from None
    problems = []
    unknown = sorted(set(document) - {"metric", "targets", "gap_targets"})
    problems += [f"{name}: key [{key}]: unknown; a metric file has [metric], [[targets]] and [[gap_targets]]"
                 for key in unknown]
    fields = document.get("metric", {})
    if not isinstance(fields, dict):
        problems.append(f"{name}: key metric: must be a table, [metric]")
        fields = {}
    problems += [f"{name}: [metric] field {field}: unknown; the fields are id, {', '.join(FIELDS)}"
                 for field in sorted(set(fields) - {"id", *FIELDS})]
    targets = _list_of_tables(document, "targets", name, problems)
    gap_targets = _list_of_tables(document, "gap_targets", name, problems)
    if problems:
        raise MetricError(problems)
    return MetricFile(name, dict(fields), targets, gap_targets)


def _list_of_tables(document: dict, key: str, name: str, problems: list[str]) -> list[dict] | None:
    if key not in document:
        return None
    value = document[key]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problems.append(f"{name}: key {key}: must be tables, [[{key}]]")
        return None
    return value


# --- saving ---------------------------------------------------------------------------------


def add(warehouse: Warehouse, who: Account, given: MetricFile) -> int:
    """Adds the metric the file names by its [metric] id (or brings back a retired one under its
    old id); returns its version."""
    metric_id = given.fields.get("id")
    if not isinstance(metric_id, str) or not metric_id:
        _refuse_non_admin(who, "add")
        raise MetricError([f"{given.name}: [metric] field id: missing (the new metric's id, e.g. reading_growth)"])
    return _save(warehouse, who, metric_id, given, adding=True)


def edit(warehouse: Warehouse, who: Account, metric_id: str, given: MetricFile) -> int:
    """Saves a new version of a metric: the fields given replace the current ones, the rest are
    kept; targets and gap targets are replaced when the file has the key and kept otherwise."""
    return _save(warehouse, who, metric_id, given, adding=False)


def retire(warehouse: Warehouse, who: Account, metric_id: str, note: str) -> int:
    """Takes a metric out of the data map, only if nothing uses it: no contract line (today's or
    an earlier version's) pays on it and no value of it was ever loaded. Its history stays."""
    _refuse_non_admin(who, "retire")
    if not note.strip():
        raise MetricError([f"metric {metric_id}: say why it is retired (a note)"])
    with warehouse.publish() as con:
        current = _current(con, metric_id)
        if current is None:
            raise MetricError([f"metric {metric_id}: no such metric in the data map"])
        uses = _uses(con, metric_id)
        if uses:
            raise MetricInUse([f"metric {metric_id} cannot be retired: it is in use: {'; '.join(uses)}. "
                               "A metric is retired only if no contract pays on it and no value of it was loaded; "
                               "edit it instead."])
        version = _ensure_history(con, metric_id, current)
        targets, gaps = _in_force(con, metric_id)
        _append(con, metric_id, version + 1, {**current, "retired": True, "note": note.strip()}, who, targets, gaps)
        con.execute("delete from metrics where metric_id = ?", [metric_id])
    return version + 1


def _refuse_non_admin(who: Account, action: str) -> None:
    if not who.is_admin:
        raise PermissionError(f"only an administrator may {action} metrics; {who.username} is {who.role}")


def _save(warehouse: Warehouse, who: Account, metric_id: str, given: MetricFile, *, adding: bool) -> int:
    _refuse_non_admin(who, "add" if adding else "edit")
    name = given.name
    named = given.fields.get("id")
    if named is not None and named != metric_id:
        raise MetricError([f"{name}: [metric] field id: {named!r} is not the metric named, {metric_id!r}"])
    with warehouse.publish() as con:
        current = _current(con, metric_id)
        problems = []
        if adding and current is not None:
            problems.append(f"{name}: metric {metric_id}: already in the data map; edit it instead")
        if not adding and current is None:
            problems.append(f"{name}: metric {metric_id}: no such metric in the data map; add it instead")
        if adding and not METRIC_ID.fullmatch(metric_id):
            problems.append(f"{name}: [metric] field id: {metric_id!r} must be lower-case letters, digits and _,"
                            " starting with a letter")
        if problems:
            raise MetricError(problems)
        fields = {**(current or {}), **{k: v for k, v in given.fields.items() if k != "id"}}
        if "note" not in given.fields:
            fields["note"] = None
        if "derived_by" not in given.fields and current is not None:
            fields["derived_by"] = _latest_version(con, metric_id).get("derived_by")
        problems = _field_problems(con, name, fields, adding)
        old_targets, old_gaps = _in_force(con, metric_id) if current else ([], [])
        targets = old_targets if given.targets is None else _target_problems(con, name, given.targets, problems)
        gaps = old_gaps if given.gap_targets is None else _gap_problems(con, name, given.gap_targets, problems,
                                                                        fields.get("aggregation"))
        if current is not None:
            changed = [f for f in HOW_COMPUTED if fields.get(f) != current[f]]
            paid_by = _contract_lines(con, metric_id)
            if changed and paid_by:
                problems.append(f"{name}: [metric] field {', '.join(changed)}: cannot change how {metric_id} is "
                                f"computed while contracts pay on it ({paid_by}); add a new metric instead")
        if problems:
            raise MetricError(problems)
        version = _ensure_history(con, metric_id, current) if current else _last_version(con, metric_id)
        _append(con, metric_id, version + 1, {**fields, "retired": False}, who, targets, gaps)
        row = [metric_id if c == "metric_id" else fields[c] for c in COLUMNS]
        con.execute("delete from metrics where metric_id = ?", [metric_id])
        con.execute(f"insert into metrics ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})", row)
    return version + 1


def _field_problems(con, name: str, fields: dict, adding: bool) -> list[str]:
    where = f"{name}: [metric] field"
    problems = []
    required = ("label", "kind", "unit", "aggregation", "better", "frequency", "definition", "instrument", "source",
                "timing", "accuracy", "submitted_as")
    for field in required:
        value = fields.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"{where} {field}: missing" + (" (a new metric needs every field)" if adding else ""))
        elif not isinstance(value, str):
            problems.append(f"{where} {field}: {value!r} is not text")
    for field, allowed in (("kind", KINDS), ("aggregation", AGGREGATIONS), ("better", BETTER),
                           ("frequency", FREQUENCIES)):
        value = fields.get(field)
        if isinstance(value, str) and value.strip() and value not in allowed:
            problems.append(f"{where} {field}: {value!r} is not one of {', '.join(allowed)}")
    for field in ("derived_by", "note"):
        value = fields.get(field)
        if value is not None and not isinstance(value, str):
            problems.append(f"{where} {field}: {value!r} is not text")
    target = fields.get("target")
    if target is not None and not _is_number(target):
        problems.append(f"{where} target: {target!r} is not a number")
    elif target is not None and fields.get("aggregation") in ("rate", "proportion") and not 0 <= target <= 1:
        problems.append(f"{where} target: {target!r} is a share, between 0 and 1, for a {fields['aggregation']}")
    kind = fields.get("submitted_as")
    if isinstance(kind, str) and kind.strip():
        # The kinds of submission, and those of import profiles, whose metrics name them.
        known = [k for (k,) in con.execute(
            "select kind from submission_kinds union select submitted_as from metrics order by 1").fetchall()]
        if kind not in known:
            problems.append(f"{where} submitted_as: {kind!r} is not a kind of submission; the kinds are {', '.join(known)}")
    derived_by = fields.get("derived_by")
    if isinstance(derived_by, str) and derived_by.startswith("profile "):
        named = re.split(r"[\s:]", derived_by.removeprefix("profile ").strip(), maxsplit=1)[0]
        profiles = [n for (n,) in con.execute("select distinct name from import_profiles order by 1").fetchall()]
        if named not in profiles:
            problems.append(f"{where} derived_by: {named!r} is not an import profile; the profiles are "
                            f"{', '.join(profiles) or 'none yet (ciboard profile add)'}")
    return problems


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _target_problems(con, name: str, given: list[dict], problems: list[str]) -> list[dict]:
    years = {y for (y,) in con.execute("select school_year from school_years").fetchall()}
    vendors = {v for (v,) in con.execute("select vendor_id from vendors").fetchall()}
    targets, seen = [], set()
    for number, item in enumerate(given, start=1):
        where = f"{name}: [[targets]] {number} field"
        problems += [f"{where} {k}: unknown; the fields are school_year, vendor_id, target"
                     for k in sorted(set(item) - {"school_year", "vendor_id", "target"})]
        year, vendor, target = item.get("school_year"), item.get("vendor_id"), item.get("target")
        if year is not None and year not in years:
            problems.append(f"{where} school_year: {year!r} is not a school year of the warehouse ({', '.join(sorted(years))})")
        if vendor is not None and vendor not in vendors:
            problems.append(f"{where} vendor_id: {vendor!r} is not a vendor")
        if year is None and vendor is None:
            problems.append(f"{where} school_year: a target here needs a school year, a vendor or both "
                            "(the district's target for every year is the [metric] target)")
        if not _is_number(target):
            problems.append(f"{where} target: {'missing' if target is None else repr(target) + ' is not a number'}")
        if (year, vendor) in seen:
            problems.append(f"{where} school_year: a second target for {year or 'every year'} and {vendor or 'every vendor'}")
        seen.add((year, vendor))
        targets.append({"school_year": year, "vendor_id": vendor, "target": target})
    return targets


def _gap_problems(con, name: str, given: list[dict], problems: list[str], aggregation: str | None) -> list[dict]:
    years = {y for (y,) in con.execute("select school_year from school_years").fetchall()}
    gaps, seen = [], set()
    for number, item in enumerate(given, start=1):
        where = f"{name}: [[gap_targets]] {number} field"
        problems += [f"{where} {k}: unknown; the fields are dimension, group, reference, gap, school_year"
                     for k in sorted(set(item) - {"dimension", "group", "reference", "gap", "school_year"})]
        dimension, gap, year = item.get("dimension"), item.get("gap"), item.get("school_year")
        if dimension not in GAP_DIMENSIONS:
            problems.append(f"{where} dimension: {dimension!r} is not one of {', '.join(GAP_DIMENSIONS)}")
        yes_no = dimension in YES_NO_DIMENSIONS
        # A yes/no group's gap is the students in it against those not, as the Disparities page measures it.
        group = str(item.get("group", "yes" if yes_no else "")).strip()
        reference = str(item.get("reference", "no" if yes_no else "")).strip()
        if yes_no and (group.lower(), reference.lower()) != ("yes", "no"):
            problems.append(f"{where} group: a yes/no group's gap is 'yes' against 'no'; leave group and reference out")
        for field, value in (("group", group), ("reference", reference)):
            if not yes_no and not value:
                problems.append(f"{where} {field}: missing (a {dimension} gap names its group and its reference group)")
        if group and group == reference:
            problems.append(f"{where} reference: the same as the group")
        if not _is_number(gap) or gap < 0:
            problems.append(f"{where} gap: {'missing' if gap is None else repr(gap) + ' is not a number of 0 or more'}")
        elif aggregation in ("rate", "proportion") and gap > 1:
            problems.append(f"{where} gap: {gap!r} is more than the whole share; a gap on a {aggregation} is a "
                            f"fraction, 3 points is 0.03")
        if year is not None and year not in years:
            problems.append(f"{where} school_year: {year!r} is not a school year of the warehouse")
        key = (dimension, group.lower(), reference.lower(), year)
        if key in seen:
            problems.append(f"{where} dimension: a second gap target for {group} against {reference}")
        seen.add(key)
        gaps.append({"dimension": dimension, "group_value": group.lower() if yes_no else group,
                     "reference": reference.lower() if yes_no else reference, "gap": gap, "school_year": year})
    return gaps


def _current(con, metric_id: str) -> dict | None:
    rows = con.execute(f"select {', '.join(COLUMNS)} from metrics where metric_id = ?", [metric_id]).fetchall()
    return dict(zip(COLUMNS, rows[0])) if rows else None


def _last_version(con, metric_id: str) -> int:
    return con.execute("select coalesce(max(version), 0) from metric_versions where metric_id = ?",
                       [metric_id]).fetchall()[0][0]


def _latest_version(con, metric_id: str) -> dict:
    frame = con.execute("select * from metric_versions where metric_id = ? order by version desc limit 1",
                        [metric_id]).df()
    return {} if frame.empty else frame.iloc[0].to_dict()


def _ensure_history(con, metric_id: str, current: dict) -> int:
    """The current definition as a version of its own before the first edit, so the history
    shows what was changed; returns the latest version."""
    last = _last_version(con, metric_id)
    if last == 0:
        _append(con, metric_id, 1, {**current, "derived_by": None, "retired": False, "note": None},
                None, [], [], saved_at=datetime(1970, 1, 1))
        return 1
    return last


def _append(con, metric_id: str, version: int, fields: dict, who: Account | None, targets: list[dict],
            gaps: list[dict], saved_at: datetime | None = None) -> None:
    saved_by = SEEDED_BY if who is None else f"{who.username} ({who.display_name})"
    con.execute(
        f"""insert into metric_versions values ({', '.join('?' * 20)})""",
        [metric_id, version, *(fields[c] for c in COLUMNS[1:]), fields.get("derived_by"), fields["retired"],
         saved_by, saved_at or datetime.now(), fields.get("note")],
    )
    if targets:
        con.executemany("insert into metric_targets values (?, ?, ?, ?, ?)",
                        [[metric_id, version, t["school_year"], t["vendor_id"], t["target"]] for t in targets])
    if gaps:
        con.executemany(
            "insert into metric_gap_targets values (?, ?, ?, ?, ?, ?, ?)",
            [[metric_id, version, g["dimension"], g["group_value"], g["reference"], g["gap"], g["school_year"]]
             for g in gaps],
        )


def _in_force(con, metric_id: str) -> tuple[list[dict], list[dict]]:
    version = _last_version(con, metric_id)
    targets = con.execute(
        "select school_year, vendor_id, target from metric_targets where metric_id = ? and version = ?",
        [metric_id, version]).df().to_dict("records")
    gaps = con.execute(
        "select dimension, group_value, reference, gap, school_year from metric_gap_targets"
        " where metric_id = ? and version = ?", [metric_id, version]).df().to_dict("records")
    return [_no_nan(t) for t in targets], [_no_nan(g) for g in gaps]


def _no_nan(record: dict) -> dict:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}


def _contract_lines(con, metric_id: str) -> str:
    """The vendors and dates of every contract line, today's or an earlier version's, paying on the metric."""
    rows = con.execute(
        """select distinct vendor_id, starts_on, ends_on from (
            select vendor_id, starts_on, ends_on, payment_metric from contracts
            union all select vendor_id, starts_on, ends_on, payment_metric from contract_history)
        where payment_metric = ? order by all""",
        [metric_id],
    ).fetchall()
    return ", ".join(f"{v} {s:%Y-%m-%d} to {e:%Y-%m-%d}" for v, s, e in rows)


def _uses(con, metric_id: str) -> list[str]:
    uses = []
    paid_by = _contract_lines(con, metric_id)
    if paid_by:
        uses.append(f"contracts pay on it ({paid_by})")
    values = con.execute("select count(*) from facts where metric_id = ?", [metric_id]).fetchall()[0][0]
    if values:
        uses.append(f"{values:,} values of it are loaded")
    return uses


# --- reading --------------------------------------------------------------------------------


def history(warehouse: Warehouse, metric_id: str) -> pd.DataFrame:
    """Every saved version of a metric, newest first, with its targets in words; a metric never
    edited has its current definition only."""
    with warehouse.cursor() as cur:
        versions = cur.execute(
            "select * from metric_versions where metric_id = ? order by version desc", [metric_id]).df()
        if versions.empty:
            current = _current(cur, metric_id)
            if current is None:
                raise MetricError([f"metric {metric_id}: no such metric, now or in the data map's history"])
            return pd.DataFrame([{**current, "version": 1, "derived_by": None, "retired": False,
                                  "saved_by": SEEDED_BY, "saved_at": pd.NaT, "note": None,
                                  "targets": "", "gap_targets": ""}])
        targets = cur.execute("select * from metric_targets where metric_id = ?", [metric_id]).df()
        gaps = cur.execute("select * from metric_gap_targets where metric_id = ?", [metric_id]).df()
    versions["targets"] = [
        "; ".join(f"{_target_scope(t.school_year, t.vendor_id)} {t.target:g}"
                  for t in targets[targets["version"] == v].itertuples())
        for v in versions["version"]]
    versions["gap_targets"] = [
        "; ".join(gap_words(g._asdict()) for g in gaps[gaps["version"] == v].itertuples())
        for v in versions["version"]]
    versions.loc[versions["saved_by"] == SEEDED_BY, "saved_at"] = pd.NaT
    return versions


def _target_scope(year, vendor) -> str:
    year = None if year is None or year != year else year
    vendor = None if vendor is None or vendor != vendor else vendor
    return " ".join(filter(None, [year, f"vendor {vendor}" if vendor else None])) or "every year"


def gap_words(gap: dict, group_names: dict | None = None) -> str:
    """'english_learner yes to no within 3' as people say it: 'English learners: gap to the others at most 3'."""
    year = gap.get("school_year")
    year = f" in {year}" if year and year == year else ""
    if gap["dimension"] in YES_NO_DIMENSIONS:
        who = f"{gap['dimension'].replace('_', ' ')} (yes against no)"
    else:
        who = f"{gap['dimension'].replace('_', ' ')} {gap['group_value']} against {gap['reference']}"
    return f"{who}: gap at most {gap['gap']:g}{year}"


def targets(warehouse: Warehouse, scope: Scope, metric_id: str) -> pd.DataFrame:
    """The metric's targets in force: the district's, each school year's and vendor's, and the
    thresholds of the contract lines paying on it. A vendor sees the district's targets and its
    own only (its contract is its own business and so is every other vendor's)."""
    own = scope.vendor_id
    with warehouse.cursor() as cur:
        frame = cur.execute(
            """with latest as (select max(version) as version from metric_versions where metric_id = $metric)
            select 'every year' as school_year, 'every vendor' as vendor_id, target, 'data map' as set_by
            from metrics where metric_id = $metric and target is not null
            union all
            select coalesce(t.school_year, 'every year'), coalesce(t.vendor_id, 'every vendor'), t.target, 'data map'
            from metric_targets as t inner join latest using (version)
            where t.metric_id = $metric and ($vendor is null or t.vendor_id is null or t.vendor_id = $vendor)
            union all
            select y.school_year, c.vendor_id, c.threshold,
                   'contract ' || strftime(c.starts_on, '%Y-%m-%d') || ' to ' || strftime(c.ends_on, '%Y-%m-%d')
                   || ': a student succeeds at or beyond this'
            from contracts as c
            left join school_years as y on c.starts_on between y.starts_on and y.ends_on
            where c.payment_metric = $metric and ($vendor is null or c.vendor_id = $vendor)
            order by set_by desc, school_year, vendor_id""",
            {"metric": metric_id, "vendor": own},
        ).df()
    return frame


def target_for(warehouse: Warehouse, metric_id: str, school_year: str | None, vendor_id: str | None) -> float | None:
    """The target in force for one school year and vendor (None: across vendors): the most
    specific of the data map's, the vendor's in that year before the vendor's, before the year's,
    before the district's."""
    with warehouse.cursor() as cur:
        rows = cur.execute(
            """with latest as (select max(version) as version from metric_versions where metric_id = $metric)
            select t.target from metric_targets as t inner join latest using (version)
            where t.metric_id = $metric
              and (t.school_year is null or t.school_year = $year)
              and (t.vendor_id is null or t.vendor_id = $vendor)
            order by (t.vendor_id is not null) desc, (t.school_year is not null) desc
            limit 1""",
            {"metric": metric_id, "year": school_year, "vendor": vendor_id},
        ).fetchall()
        if rows:
            return rows[0][0]
        default = cur.execute("select target from metrics where metric_id = ?", [metric_id]).fetchall()
    return default[0][0] if default and default[0][0] is not None else None


def gap_targets(warehouse: Warehouse, metric_id: str, school_year: str | None = None) -> pd.DataFrame:
    """The gap targets in force for a metric: those of every year and of `school_year` (all of
    them without one)."""
    with warehouse.cursor() as cur:
        return cur.execute(
            """with latest as (select max(version) as version from metric_versions where metric_id = $metric)
            select g.dimension, g.group_value, g.reference, g.gap, g.school_year
            from metric_gap_targets as g inner join latest using (version)
            where g.metric_id = $metric and ($year is null or g.school_year is null or g.school_year = $year)
            order by g.dimension, g.school_year nulls first""",
            {"metric": metric_id, "year": school_year},
        ).df()


def uses(warehouse: Warehouse, metric_id: str) -> list[str]:
    """Why the metric cannot be retired, in words; empty if it can."""
    with warehouse.cursor() as cur:
        return _uses(cur, metric_id)


def as_toml(warehouse: Warehouse, metric_id: str) -> str:
    """The metric's current definition as a file `edit --from` takes back: a starting point to edit."""
    with warehouse.cursor() as cur:
        current = _current(cur, metric_id)
        if current is None:
            raise MetricError([f"metric {metric_id}: no such metric in the data map"])
        latest = _latest_version(cur, metric_id)
        targets, gaps = _in_force(cur, metric_id) if latest else ([], [])
    lines = ["[metric]", f"id = {_toml(metric_id)}"]
    for field in COLUMNS[1:]:
        if current[field] is not None:
            lines.append(f"{field} = {_toml(current[field])}")
    if latest.get("derived_by"):
        lines.append(f"derived_by = {_toml(latest['derived_by'])}")
    for target in targets:
        lines += ["", "[[targets]]"] + [f"{k} = {_toml(v)}" for k, v in target.items() if v is not None]
    for gap in gaps:
        group = {} if gap["dimension"] in YES_NO_DIMENSIONS else {"group": gap["group_value"], "reference": gap["reference"]}
        gap = {"dimension": gap["dimension"], **group, "gap": gap["gap"], "school_year": gap["school_year"]}
        lines += ["", "[[gap_targets]]"] + [f"{k} = {_toml(v)}" for k, v in gap.items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'
