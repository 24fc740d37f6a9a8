"""Who is asking: the scope every query runs in, fixed at sign-in."""

from dataclasses import dataclass

ROLES = ("analyst", "facilitator", "admin", "vendor")
"""analyst: every number and student rows. facilitator and admin: every vendor, no student
rows, small cells suppressed. vendor: its own vendor only, small cells suppressed."""


class ScopeError(PermissionError):
    """A request outside the caller's scope. Its message never names another vendor."""


@dataclass(frozen=True)
class Scope:
    role: str
    vendor_id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; the roles are {', '.join(ROLES)}")
        if (self.role == "vendor") != (self.vendor_id is not None):
            raise ValueError("a vendor scope needs a vendor id, and only a vendor scope has one")

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """'analyst', 'facilitator' or 'vendor:V1'."""
        role, _, vendor = text.strip().partition(":")
        if role == "vendor" and not vendor:
            raise ValueError("a vendor scope is written vendor:ID, e.g. vendor:V1")
        return cls(role, vendor or None)

    @property
    def suppresses_small_cells(self) -> bool:
        return self.role != "analyst"

    @property
    def sees_students(self) -> bool:
        return self.role == "analyst"

    @property
    def follows_up_students(self) -> bool:
        """Reads the follow-up lists by student and logs what was done: whoever can act on
        them. A vendor's lists hold its own students (the query layer binds its vendor id);
        a school role would join here with its schools bound the same way."""
        return self.role in ("analyst", "vendor")

    def __str__(self) -> str:
        return f"vendor:{self.vendor_id}" if self.vendor_id else self.role


ANALYST = Scope("analyst")
