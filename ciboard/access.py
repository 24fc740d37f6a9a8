"""Who is asking: the scope every query runs in, fixed at sign-in."""

from dataclasses import dataclass

ROLES = ("analyst", "facilitator", "admin", "vendor", "school", "evaluator")
"""analyst: every number and student rows. facilitator and admin: every vendor, no student
rows, small cells suppressed. vendor: its own vendor only, small cells suppressed. school: its
own schools only, across vendors, small cells suppressed, its own schools' follow-up lists.
evaluator: what an analyst reads, read-only, with every student id pseudonymised for it."""


class ScopeError(PermissionError):
    """A request outside the caller's scope. Its message never names another vendor or school."""


@dataclass(frozen=True)
class Scope:
    role: str
    vendor_id: str | None = None
    school_ids: tuple[str, ...] = ()
    # The evaluator's account: its pseudonyms are its own, so two evaluators cannot join theirs.
    evaluator: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; the roles are {', '.join(ROLES)}")
        if (self.role == "vendor") != (self.vendor_id is not None):
            raise ValueError("a vendor scope needs a vendor id, and only a vendor scope has one")
        if (self.role == "school") != bool(self.school_ids):
            raise ValueError("a school scope needs at least one school id, and only a school scope has any")
        if (self.role == "evaluator") != bool(self.evaluator):
            raise ValueError("an evaluator scope needs the evaluator's account, and only an evaluator scope has one")
        object.__setattr__(self, "school_ids", tuple(sorted(set(self.school_ids))))

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """'analyst', 'facilitator', 'vendor:V1', 'school:S01,S02' or 'evaluator:ACCOUNT'."""
        role, _, rest = text.strip().partition(":")
        if role == "vendor" and not rest:
            raise ValueError("a vendor scope is written vendor:ID, e.g. vendor:V1")
        if role == "school":
            schools = tuple(s.strip() for s in rest.split(",") if s.strip())
            if not schools:
                raise ValueError("a school scope is written school:ID[,ID...], e.g. school:S01")
            return cls("school", school_ids=schools)
        if role == "evaluator":
            if not rest:
                raise ValueError("an evaluator scope is written evaluator:ACCOUNT, e.g. evaluator:evaluator")
            return cls("evaluator", evaluator=rest)
        return cls(role, rest or None)

    @property
    def suppresses_small_cells(self) -> bool:
        return self.role not in ("analyst", "evaluator")

    @property
    def sees_students(self) -> bool:
        """Reads rows of students: an evaluator reads them under its own pseudonyms."""
        return self.role in ("analyst", "evaluator")

    @property
    def pseudonymises(self) -> bool:
        return self.role == "evaluator"

    @property
    def writes(self) -> bool:
        """May record anything at all: an evaluator only reads."""
        return self.role != "evaluator"

    @property
    def follows_up_students(self) -> bool:
        """Reads the follow-up lists by student and logs what was done: whoever can act on
        them. A vendor's lists hold its own students (the query layer binds its vendor id), a
        school's its own schools' (the query layer binds its school ids)."""
        return self.role in ("analyst", "vendor", "school")

    @property
    def protects_follow_up_counts(self) -> bool:
        """Reads how many students a follow-up list holds but not who: small counts hidden, the
        others with noise, as every count of students it reads."""
        return self.suppresses_small_cells and not self.follows_up_students

    @property
    def reads_follow_up(self) -> bool:
        """Reads the follow-up lists by student and their statuses: whoever follows students up,
        and an evaluator, read-only and under its own pseudonyms."""
        return self.follows_up_students or self.pseudonymises

    def __str__(self) -> str:
        if self.vendor_id:
            return f"vendor:{self.vendor_id}"
        if self.school_ids:
            return "school:" + ",".join(self.school_ids)
        if self.evaluator:
            return f"evaluator:{self.evaluator}"
        return self.role


def whose_students(scope: Scope, name) -> str:
    """Whose students the scope's numbers are about when nothing narrows them: "all students"
    for the district, a vendor's or a school account's own otherwise. `name(dimension, value)`
    reads an id as the page shows it (a vendor as its letter while presenting with letters)."""
    if scope.role == "vendor":
        return f"students of {name('vendor_id', scope.vendor_id)}"
    if scope.role == "school":
        return "students at " + ", ".join(name("school_id", school) for school in scope.school_ids)
    return "all students"


def require_writer(scope: Scope, what: str) -> None:
    """Refuses any write by a read-only scope: every function that records something calls it."""
    if not scope.writes:
        raise ScopeError(f"an evaluator account reads only; it cannot record {what}")


ANALYST = Scope("analyst")
