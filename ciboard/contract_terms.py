"""Rate-card terms edited by an administrator, every save a version kept for good.

The unit edited is one contract year's rate card: the lines of a vendor's contract (vendor,
starts_on) for a school year, or for every year where its lines name none. An edit changes one
line's terms (its payment metric, success rule, windows, threshold, outcome amount, eligibility)
and the contract's own terms, which every line of a contract year shares (served rule, base,
caps, base schedule), and loads the year's lines as a contract file would: through the contract
kind's checks in ciboard.kinds and ciboard.ingest, as a batch of its own, so an edit is refused
for exactly what a file is refused for, and lands whole or not at all. `contract_history` keeps
every version of every line by its batch; `contract_edits` (sql/migrations/012) says who saved
it, when and why.

A statement names the batch whose terms it applied, and a closed statement keeps the terms it
was closed with (ciboard.statements freezes them in words), so an edit after a month closed
changes only what is computed from now on: what it changes in a closed month is an adjustment
in the vendor's next open month, as later data is.
"""

import csv
import hashlib
import io
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
from ciboard.ingest import Loader, Submission
from ciboard.kinds import KINDS
from ciboard.warehouse import Warehouse

# A line's own terms, and the terms every line of a contract year shares (ingest refuses a
# contract year whose lines disagree on these).
LINE_TERMS = ("payment_metric", "success", "threshold", "outcome_window", "from_window", "outcome_per_student",
              "enrolled_by", "min_dosage_share")
CONTRACT_TERMS = ("served_by", "served_min", "base_per_student", "student_cap", "cap", "base_schedule")
TERMS = (*LINE_TERMS, *CONTRACT_TERMS)
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
    edit), or the file it came in, and its terms."""
    own = _readable(scope)
    if own is not None and own != year.vendor_id:
        raise ScopeError(f"this account sees only its own vendor, {own}")
    with warehouse.cursor() as cur:
        frame = cur.execute(
            f"""select dense_rank() over (order by h.batch_id) as version, h.batch_id,
                   coalesce(e.saved_by, 'file ' || s.file_name) as saved_by,
                   coalesce(e.saved_at, s.loaded_at) as saved_at, coalesce(e.note, '') as note,
                   e.payment_metric as edited_line, e.replaced_metric, {', '.join('h.' + c for c in FILE_COLUMNS)}
            from contract_history as h
            left join submissions as s on s.batch_id = h.batch_id
            left join contract_edits as e on e.batch_id = h.batch_id
            where h.vendor_id = ? and h.starts_on = ? and h.school_year is not distinct from ?
            order by h.batch_id desc, h.payment_metric""",
            [year.vendor_id, year.starts_on, year.school_year],
        ).df()
    for column in ("starts_on", "ends_on", "enrolled_by"):
        frame[column] = [None if pd.isna(d) else pd.Timestamp(d).date() for d in frame[column]]
    return frame


def edit(warehouse: Warehouse, who: Account, year: ContractYear, payment_metric: str, changes: dict, note: str,
         *, today: date | None = None) -> int:
    """Saves new terms for one line of a contract year (and the contract's own terms, for each of
    its lines) as a new version; returns its batch. `changes` maps term names to values as typed
    (text, numbers, dates; "" or None for none). Refused, with every problem naming its field, for
    anything a contract file would be refused for, and for an edit that changes nothing."""
    if not who.is_admin:
        raise PermissionError(f"only an administrator edits rate-card terms; {who.username} is {who.role}")
    problems = [f"field {name}: not a rate-card term; the terms are {', '.join(TERMS)}"
                for name in sorted(set(changes) - set(TERMS))]
    if not (note or "").strip():
        problems.append("note: say why the terms change (it is kept with the version)")
    if problems:
        raise TermsError(problems)
    saved_at = datetime.now()
    with warehouse.publish() as con:
        current = con.execute(
            f"select {', '.join(FILE_COLUMNS)} from contracts where vendor_id = ? and starts_on = ?"
            " and school_year is not distinct from ? order by payment_metric",
            [year.vendor_id, year.starts_on, year.school_year],
        ).df().astype(object)
        found = current.to_dict("records")
        edited = next((line for line in found if line["payment_metric"] == payment_metric), None)
        if edited is None:
            raise TermsError([f"{year}: has no line on {payment_metric}"])
        shared = {k: v for k, v in changes.items() if k in CONTRACT_TERMS}
        written = [{**line, **shared, **(changes if line is edited else {})} for line in found]
        metric = written[found.index(edited)]["payment_metric"]
        if metric != payment_metric and metric in {line["payment_metric"] for line in found}:
            raise TermsError([f"field payment_metric: {year} has a line on {metric} already; edit that one"])
        if [_cells(line) for line in written] == [_cells(line) for line in found]:
            raise TermsError(["nothing changed: no version saved"])
        # Named as the file it stands for: the submission log lists it, and staging reads it by its suffix.
        name = f"terms-edit-{year.vendor_id}-{year.starts_on}-{year.school_year or 'every-year'}-{payment_metric}.csv"
        content = _as_csv(written)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "contracts.csv"
            path.write_text(content)
            if metric != payment_metric:  # the line on the old metric goes; its versions stay in the history
                con.execute(
                    "delete from contracts where vendor_id = ? and starts_on = ? and school_year is not distinct from ?"
                    " and payment_metric = ?",
                    [year.vendor_id, year.starts_on, year.school_year, payment_metric],
                )
            loader = Loader(con, warehouse.settings, today or date.today(), lambda message: None)
            # The digest is the edit's own: saving terms a file or an earlier edit had is a new version.
            digest = hashlib.sha256(f"{content}{saved_at.isoformat()}{who.username}".encode()).hexdigest()
            outcome = loader.load(Submission(path, "contracts", by_district=True, file_name=name), digest, replace=True)
        if outcome.problems:
            raise TermsError(_said(outcome.problems))
        con.execute(
            "insert into contract_edits values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [outcome.batch_id, year.vendor_id, year.starts_on, year.school_year, metric,
             payment_metric if metric != payment_metric else None, who.username, saved_at, note.strip()],
        )
        loader.derive()  # a growth threshold decides met_growth_target: its students' facts are redone
    return outcome.batch_id


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
