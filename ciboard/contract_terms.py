"""Rate-card terms edited by an administrator, every save a version kept for good.

The unit edited is one contract year's rate card: the lines of a vendor's contract (vendor,
starts_on) for a school year, or for every year where its lines name none. An edit changes one
line's terms (its payment metric, success rule, windows, threshold, outcome amount, eligibility),
the contract's own terms, which every line of a contract year shares (served rule, base, caps,
base schedule), and the contract's dates, which every line of every year shares. It may also give
one school year of an every-year contract terms of its own: the every-year lines become one set
per school year the contract's dates reach, and the edit applies to that year's. It loads the lines
it changes as a contract file would: through the contract kind's checks in ciboard.kinds and
ciboard.ingest, as a batch of its own, so an edit is refused for exactly what a file is refused
for, and lands whole or not at all. `contract_history` keeps every version of every line by its
batch; `contract_edits` (sql/migrations/012, 013) says who saved it, when and why, and from which
first day an edit moved the contract.

A statement names the batch whose terms it applied, and a closed statement keeps the terms it
was closed with (ciboard.statements freezes them in words), so an edit after a month closed
changes only what is computed from now on: what it changes in a closed month is an adjustment
in the vendor's next open month, as later data is, and the adjustment names the version.
"""

import csv
import hashlib
import io
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.accounts import Account
from ciboard.ingest import Loader, Submission
from ciboard.kinds import KINDS
from ciboard.warehouse import Warehouse

# A line's own terms, and the terms every line of a contract year shares (ingest refuses a
# contract year whose lines disagree on these).
LINE_TERMS = ("payment_metric", "success", "threshold", "outcome_window", "from_window", "outcome_per_student",
              "enrolled_by", "min_dosage_share")
CONTRACT_TERMS = ("served_by", "served_min", "base_per_student", "student_cap", "cap", "base_schedule",
                  "max_sessions_per_day")
# The contract's dates: every line of every school year of the contract has them.
DATES = ("starts_on", "ends_on")
TERMS = (*LINE_TERMS, *CONTRACT_TERMS, *DATES)
FILE_COLUMNS = tuple(column.name for column in KINDS["contracts"].columns)
LINE = ["vendor_id", "starts_on", "school_year", "payment_metric"]


class TermsError(ValueError):
    """An edit that cannot be saved; `problems` names the field of each and says why."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ContractYear:
    """The lines an edit loads together: a vendor's contract from `starts_on`, for `school_year`
    (None: the lines that hold for every year of the contract)."""

    vendor_id: str
    starts_on: date
    school_year: str | None

    def __str__(self) -> str:
        year = f"school year {self.school_year}" if self.school_year else "every school year"
        return f"{self.vendor_id}'s contract from {self.starts_on}, {year}"


def _readable(scope: Scope) -> str | None:
    """The vendor the scope is held to (None: the district's, every vendor). Rate cards are between
    the district and each vendor: a school account and a facilitator read none."""
    if scope.role not in ("analyst", "admin", "vendor", "evaluator"):
        raise ScopeError("rate cards are for the district's analysts and admins, and each vendor its own")
    return scope.vendor_id if scope.role == "vendor" else None


def lines(warehouse: Warehouse, scope: Scope) -> pd.DataFrame:
    """Every rate-card line in force, one row each with its terms and the batch that loaded them;
    a vendor reads its own."""
    own = _readable(scope)
    with warehouse.cursor() as cur:
        frame = cur.execute(
            f"""select {', '.join(FILE_COLUMNS)}, batch_id from contracts
            where ?::varchar is null or vendor_id = ?
            order by vendor_id, starts_on, school_year nulls first, payment_metric""",
            [own, own],
        ).df()
    for column in ("starts_on", "ends_on", "enrolled_by"):
        frame[column] = [None if pd.isna(d) else pd.Timestamp(d).date() for d in frame[column]]
    return frame


def history(warehouse: Warehouse, scope: Scope, year: ContractYear) -> pd.DataFrame:
    """Every version of the contract year's lines, newest first: the batch that loaded it (its
    version is the batch's place among those that touched the year), who saved it and why (an
    edit), or the file it came in, and its terms. A school year of its own also lists the
    every-year versions that held for it before, and a contract whose first day an edit moved
    lists its versions from before the move and after it, asked for by either day."""
    own = _readable(scope)
    if own is not None and own != year.vendor_id:
        raise ScopeError(f"this account sees only its own vendor, {own}")
    with warehouse.cursor() as cur:
        frame = cur.execute(
            f"""with recursive starts(starts_on) as (
                -- Every first day the contract has had, along its moves both ways; union, not
                -- union all, so a contract moved back to a day it had stops.
                select ?::date
                union
                select case when e.starts_on = s.starts_on then e.moved_from else e.starts_on end
                from contract_edits as e inner join starts as s on s.starts_on in (e.starts_on, e.moved_from)
                where e.vendor_id = ? and e.moved_from is not null
            )
            select dense_rank() over (order by h.batch_id) as version, h.batch_id,
                   coalesce(e.saved_by, 'file ' || s.file_name) as saved_by,
                   coalesce(e.saved_at, s.loaded_at) as saved_at, coalesce(e.note, '') as note,
                   e.payment_metric as edited_line, e.replaced_metric, e.moved_from, {', '.join('h.' + c for c in FILE_COLUMNS)}
            from contract_history as h
            left join submissions as s on s.batch_id = h.batch_id
            left join contract_edits as e on e.batch_id = h.batch_id
            where h.vendor_id = ? and h.starts_on in (select starts_on from starts)
              and (h.school_year is not distinct from ? or (?::varchar is not null and h.school_year is null))
            order by h.batch_id desc, h.school_year nulls first, h.payment_metric""",
            [year.starts_on, year.vendor_id, year.vendor_id, year.school_year, year.school_year],
        ).df()
    for column in ("starts_on", "ends_on", "enrolled_by", "moved_from"):
        frame[column] = [None if pd.isna(d) else pd.Timestamp(d).date() for d in frame[column]]
    return frame


def version_text(warehouse: Warehouse, batch: int, school_year: str | None = None) -> str:
    """The rate-card version a batch of terms is for a school year's lines (a batch that moved a
    contract's dates wrote every year's, and each year counts its own versions), in words:
    "version 3 by finance on 2026-07-15"."""
    with warehouse.cursor() as cur:
        found = cur.execute(
            "select vendor_id, starts_on, school_year from contract_history where batch_id = ?"
            " order by school_year is not distinct from ? desc, school_year nulls first limit 1",
            [batch, school_year],
        ).fetchone()
    if found is None:
        return f"batch {batch}"
    versions = history(warehouse, ANALYST, ContractYear(found[0], found[1], found[2]))
    mine = versions[versions["batch_id"] == batch].iloc[0]
    return f"version {mine['version']} by {mine['saved_by']} on {pd.Timestamp(mine['saved_at']):%Y-%m-%d}"


def edit(warehouse: Warehouse, who: Account, year: ContractYear, payment_metric: str, changes: dict, note: str,
         *, own_year: str | None = None, today: date | None = None) -> int:
    """Saves new terms for one line of a contract year (the contract's own terms for each line of
    the year, its dates for every line of every year) as a new version; returns its batch.
    `changes` maps term names to values as typed (text, numbers, dates; "" or None for none).
    `own_year` gives that school year of an every-year contract terms of its own, the edit's. Refused,
    with every problem naming its field, for anything a contract file would be refused for, and for
    an edit that changes nothing."""
    if not who.is_admin:
        raise PermissionError(f"only an administrator edits rate-card terms; {who.username} is {who.role}")
    problems = [f"field {name}: not a rate-card term; the terms are {', '.join(TERMS)}"
                for name in sorted(set(changes) - set(TERMS))]
    if not (note or "").strip():
        problems.append("note: say why the terms change (it is kept with the version)")
    if own_year and year.school_year:
        problems.append(f"field school_year ({own_year}): {year} has terms of its own already; edit those")
    if problems:
        raise TermsError(problems)
    saved_at = datetime.now()
    with warehouse.publish() as con:
        whole = con.execute(
            f"select {', '.join(FILE_COLUMNS)} from contracts where vendor_id = ? and starts_on = ?"
            " order by school_year nulls first, payment_metric",
            [year.vendor_id, year.starts_on],
        ).df().astype(object).to_dict("records")
        found = [line for line in whole if as_text(line["school_year"]) == as_text(year.school_year)]
        if not any(line["payment_metric"] == payment_metric for line in found):
            raise TermsError([f"{year}: has no line on {payment_metric}"])
        now = {"starts_on": year.starts_on, "ends_on": whole[0]["ends_on"]}
        dates = {name: changes[name] for name in DATES if name in changes and as_text(changes[name]) != as_text(now[name])}
        moved = as_text(dates.get("starts_on", year.starts_on)) != as_text(year.starts_on)
        if moved and con.execute(
            "select count(*) from contracts where vendor_id = ? and starts_on = try_cast(? as date)",
            [year.vendor_id, as_text(dates["starts_on"])],
        ).fetchone()[0]:
            raise TermsError([f"field starts_on ({as_text(dates['starts_on'])}): {year.vendor_id} has a contract from"
                              " that day already; a contract is known by its vendor and first day"])
        if own_year:
            whole = _each_year(con, whole, {**whole[0], **dates}, own_year)
            found = [line for line in whole if line["school_year"] == own_year]
        # What an edit writes: the year's lines, or every line of the contract when its dates move
        # or a year takes terms of its own (the lines of every year change then).
        rewrites_all = bool(dates) or bool(own_year)
        rewritten = whole if rewrites_all else found
        edited = next(line for line in found if line["payment_metric"] == payment_metric)
        shared = {k: v for k, v in changes.items() if k in CONTRACT_TERMS}
        of_year = {id(line) for line in found}
        written = [{**line, **dates, **(shared if id(line) in of_year else {}),
                    **({k: v for k, v in changes.items() if k in LINE_TERMS} if line is edited else {})}
                   for line in rewritten]
        metric = written[next(i for i, line in enumerate(rewritten) if line is edited)]["payment_metric"]
        if metric != payment_metric and metric in {line["payment_metric"] for line in found}:
            raise TermsError([f"field payment_metric: {year} has a line on {metric} already; edit that one"])
        if sorted(map(_cells, written)) == sorted(map(_cells, rewritten)):
            raise TermsError(["nothing changed: no version saved" + (
                f" (school year {own_year} would have the terms every year has; change one)" if own_year else "")])
        # Named as the file it stands for: the submission log lists it, and staging reads it by its suffix.
        name = (f"terms-edit-{year.vendor_id}-{year.starts_on}-{own_year or year.school_year or 'every-year'}"
                f"-{payment_metric}.csv")
        content = _as_csv(written)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "contracts.csv"
            path.write_text(content)
            # The lines rewritten go first (so a line on an old metric, or on the old dates, goes);
            # their versions stay in the history.
            con.execute(
                "delete from contracts where vendor_id = ? and starts_on = ? and (? or school_year is not distinct from ?)",
                [year.vendor_id, year.starts_on, rewrites_all, year.school_year],
            )
            loader = Loader(con, warehouse.settings, today or date.today(), lambda message: None)
            # The digest is the edit's own: saving terms a file or an earlier edit had is a new version.
            digest = hashlib.sha256(f"{content}{saved_at.isoformat()}{who.username}".encode()).hexdigest()
            outcome = loader.load(Submission(path, "contracts", by_district=True, file_name=name), digest, replace=True)
        if outcome.problems:
            raise TermsError(_said(outcome.problems))
        con.execute(
            "insert into contract_edits (batch_id, vendor_id, starts_on, school_year, payment_metric, replaced_metric,"
            " saved_by, saved_at, note, moved_from) values (?, ?, try_cast(? as date), ?, ?, ?, ?, ?, ?, ?)",
            [outcome.batch_id, year.vendor_id, as_text(written[0]["starts_on"]), own_year or year.school_year, metric,
             payment_metric if metric != payment_metric else None, who.username, saved_at, note.strip(),
             year.starts_on if moved else None],
        )
        loader.derive()  # a growth threshold decides met_growth_target: its students' facts are redone
    return outcome.batch_id


# The school years a contract's dates (ends_on, starts_on) reach.
_REACHED = ("select school_year from school_years where starts_on <= try_cast(? as date) and ends_on >= try_cast(? as date)"
            " order by starts_on")


def years_reached(warehouse: Warehouse, line: dict) -> list[str]:
    """The school years a rate-card line's contract dates reach: those one of them may be given
    terms of its own in, where its lines hold for every year."""
    with warehouse.cursor() as cur:
        return [y for (y,) in cur.execute(_REACHED, [as_text(line["ends_on"]), as_text(line["starts_on"])]).fetchall()]


def _each_year(con, every_year: list[dict], contract: dict, own_year: str) -> list[dict]:
    """An every-year contract's lines as one set per school year its dates reach (the dates as
    edited), so that `own_year` may have terms of its own."""
    if any(line["school_year"] is not None and not pd.isna(line["school_year"]) for line in every_year):
        raise TermsError([f"field school_year ({own_year}): the contract's lines name their school years already;"
                          " edit that year's"])
    years = [y for (y,) in con.execute(_REACHED, [as_text(contract["ends_on"]), as_text(contract["starts_on"])]).fetchall()]
    if own_year not in years:
        reach = ", ".join(years) or "none of the warehouse's school years"
        raise TermsError([f"field school_year ({own_year}): not a school year the contract's dates"
                          f" ({as_text(contract['starts_on'])} to {as_text(contract['ends_on'])}) reach; they reach {reach}"])
    return [{**line, "school_year": y} for y in years for line in every_year]


def _cells(line: dict) -> list[str]:
    return [as_text(line.get(column)) for column in FILE_COLUMNS]


def as_text(value) -> str:
    """A term as a contract file writes it: empty for none, dates ISO, numbers without a trailing .0."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.15g}"
    return str(value).strip()


def _as_csv(written: list[dict]) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(FILE_COLUMNS)
    out.writerows(_cells(line) for line in written)
    return buffer.getvalue()


def _said(found: list) -> list[str]:
    """A contract file's problems as an edit's: by field, each said once (a contract's own term
    is written on each of its lines)."""
    said = []
    for problem in found:
        what = f"field {problem.column}" if problem.column else "the terms"
        value = f" ({problem.value})" if problem.value not in (None, "") else ""
        text = f"{what}{value}: {problem.reason}"
        if text not in said:
            said.append(text)
    return said


def parse_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    """`field=value` pairs as the command line gives them; an empty value clears a term."""
    changes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise TermsError([f"{pair!r}: write field=value, e.g. threshold=55"])
        changes[name.strip()] = value.strip()
    return changes
