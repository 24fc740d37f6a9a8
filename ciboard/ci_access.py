"""Who sees and may change which CI record (ciboard.ci_records): the rules the meeting store
(ciboard.meetings) applies to every read and save. Rules on a scope and records only: no database.

Analysts, facilitators and admins read and write everything. A vendor sees the workgroups that
involve it (with other vendors' people left out), their meetings, and the commitments that name
it: its own, and the district's or a school's commitments about its own students (slice vendor =
its id). It may change the status of its own commitments and nothing else. It sees root-cause
analyses and PDSA cycles about its own students only. A meeting of a workgroup of several
vendors shows its agenda to each of them, but its frozen numbers only to district staff.
"""

from dataclasses import replace

from ciboard.access import Scope, ScopeError, require_writer
from ciboard.ci_records import Commitment, Meeting, Person, Slice, Workgroup

# A party's account (a vendor's or a school's) takes part where its party does; district
# staff see every record.
PARTY_ROLES = ("vendor", "school")


def is_party(scope: Scope) -> bool:
    return scope.role in PARTY_ROLES


def _own_party(scope: Scope, party: str, party_id: str | None) -> bool:
    """Whether (party, party_id) is the scope's own vendor or one of its own schools."""
    if scope.role == "vendor":
        return party == "vendor" and party_id == scope.vendor_id
    if scope.role == "school":
        return party == "school" and party_id in scope.school_ids
    return False


def sees_workgroup(scope: Scope, group: Workgroup) -> bool:
    if scope.role == "school":
        return any(_own_party(scope, p.party, p.party_id) for p in group.members)
    return scope.role != "vendor" or scope.vendor_id in group.vendor_ids


def workgroup_as_seen(scope: Scope, group: Workgroup) -> Workgroup:
    """A vendor sees its own people and the district's and schools', not other vendors'; a
    school sees the district's and the vendors' people and its own, not other schools'."""
    if scope.role == "vendor":
        return replace(group, members=_people_seen(scope, group.members), vendor_ids=[scope.vendor_id])
    if scope.role == "school":
        return replace(group, members=_people_seen(scope, group.members))
    return group


def _people_seen(scope: Scope, people: list[Person]) -> list[Person]:
    others = "vendor" if scope.role == "vendor" else "school"
    return [p for p in people if p.party != others or _own_party(scope, p.party, p.party_id)]


def meeting_as_seen(scope: Scope, found: Meeting, group: Workgroup) -> Meeting:
    if not is_party(scope):
        return found
    # The numbers of a meeting of several vendors cover them all, and a workgroup's numbers
    # cover every school it reads: district staff only, but for a vendor's own workgroup.
    own_numbers = scope.role == "vendor" and group.vendor_ids == [scope.vendor_id]
    return replace(found, attendees=_people_seen(scope, found.attendees),
                   snapshot=found.snapshot if own_numbers else None)


def sees_commitment(scope: Scope, c: Commitment) -> bool:
    if scope.role == "school":
        return _own_party(scope, c.party, c.party_id) or (c.party != "school" and c.slice.school_id in scope.school_ids)
    if scope.role != "vendor":
        return True
    if c.party == "vendor":
        return c.party_id == scope.vendor_id
    return c.slice.vendor_id == scope.vendor_id


def sees_slice(scope: Scope, s: Slice) -> bool:
    if scope.role == "school":
        return s.school_id in scope.school_ids
    return scope.role != "vendor" or s.vendor_id == scope.vendor_id


def may_update_commitment(scope: Scope, c: Commitment) -> None:
    require_writer(scope, "commitments")
    if is_party(scope) and not _own_party(scope, c.party, c.party_id):
        raise ScopeError(f"a {scope.role} account can update only its own {scope.role}'s commitments")


def district_only(scope: Scope, what: str) -> None:
    require_writer(scope, what)
    if is_party(scope):
        raise ScopeError(
            f"{what} are written by district staff; a {scope.role} account can update its own commitments"
        )


def visible_versions(scope: Scope, entity: str, versions: list, group: Workgroup | None) -> list:
    """Of a record's saved revisions (ciboard.meetings.Version), those the scope could see, each as
    it would have seen it; a meeting's are seen through its workgroup, `group`."""
    if entity == "workgroup":
        return [replace(v, record=workgroup_as_seen(scope, v.record)) for v in versions if sees_workgroup(scope, v.record)]
    if entity == "meeting":
        if not sees_workgroup(scope, group):
            return []
        return [replace(v, record=meeting_as_seen(scope, v.record, group)) for v in versions]
    if entity == "commitment":
        return [v for v in versions if sees_commitment(scope, v.record)]
    return [v for v in versions if sees_slice(scope, v.record.slice)]
