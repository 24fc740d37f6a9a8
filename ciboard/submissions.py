"""What goes into an ingest and what comes out: a submitted file, and for each file whether it
landed, was rejected (with every problem, naming file, row and column) or would replace an
earlier file's rows, week by week. The pages and the command line tell senders from these.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from ciboard.kinds import Problem


@dataclass(frozen=True)
class Submission:
    path: Path
    kind: str
    vendor_id: str | None = None
    received_at: datetime | None = None
    # Sent by the district (the command line, an administrator), which is told about every
    # vendor; a file with a vendor id and not this is the vendor's own.
    by_district: bool = False
    file_name: str | None = None  # the name its sender gave it, where the file on disk has another

    @property
    def name(self) -> str:
        return self.file_name or self.path.name

    @property
    def sent_by_vendor(self) -> bool:
        return self.vendor_id is not None and not self.by_district


@dataclass(frozen=True)
class WeekChange:
    """A week of a file that replaces an earlier one: its rows in the earlier file and in the new one."""

    week_start: date
    rows_before: int
    rows_after: int
    removed: int  # rows of the earlier file whose key the new file does not have
    added: int  # rows of the new file whose key the earlier file did not have


@dataclass
class Outcome:
    file: str
    kind: str
    status: str  # accepted | rejected | unchanged | not loaded (and checked, between checking and loading)
    batch_id: int | None = None
    vendor_id: str | None = None
    rows: int = 0
    period: tuple[date, date] | None = None
    replaced_batch_id: int | None = None
    problems: list[Problem] = field(default_factory=list)
    changes: list[WeekChange] = field(default_factory=list)  # week by week, when it replaces a file

    @property
    def removes_rows(self) -> bool:
        return any(change.removed for change in self.changes)


class IngestRejected(Exception):
    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        self.problems = [p for o in outcomes for p in o.problems]
        rejected = [o.file for o in outcomes if o.status == "rejected"]
        super().__init__(
            f"{len(rejected)} file(s) rejected with {len(self.problems)} problem(s); nothing was loaded: "
            + ", ".join(rejected)
        )


class ReplaceUnconfirmed(Exception):
    """Files that would replace an earlier file and remove rows of it. Nothing was loaded or
    logged; send them again with replace=True to go ahead."""

    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        super().__init__(
            "; ".join(replacement(o) for o in outcomes if o.removes_rows)
            + "; nothing was loaded until the replacement is confirmed"
        )


def replacement(outcome: Outcome) -> str:
    """One line: what a replacing file takes away and brings."""
    before = sum(c.rows_before for c in outcome.changes)
    removed = sum(c.removed for c in outcome.changes)
    added = sum(c.added for c in outcome.changes)
    first, last = outcome.period or (None, None)
    return (
        f"{outcome.file} replaces submission {outcome.replaced_batch_id} ({outcome.kind}, {first} to {last}):"
        f" {removed:,} of its {before:,} rows would be removed and {added:,} added"
    )


def week_lines(outcome: Outcome) -> list[str]:
    """The replacement week by week, as the command line prints it."""
    return [
        f"week of {c.week_start}: {c.rows_before:,} rows now, {c.rows_after:,} in {outcome.file}"
        f" ({c.removed:,} removed, {c.added:,} added)"
        for c in outcome.changes
    ]
