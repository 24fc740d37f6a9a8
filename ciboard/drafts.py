"""Drafts: what someone typed into the form of a CI record (ciboard.meetings) and has not
saved, kept as their `Draft` of it so that a reload or a restart loses nothing: one per person
and record, read by no one else, never a revision. Saving the record removes the saver's draft.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from ciboard.access import Scope
from ciboard.appdb import AppDB
from ciboard.ci_access import district_only
from ciboard.meetings import PLURALS, TABLES, MeetingFinal, final_message, one_in


@dataclass(frozen=True)
class Draft:
    """What one person typed into a record's form and has not saved: each field's text as the
    form held it, the revision they typed over, and when it was last kept."""

    entity: str
    entity_id: int
    username: str
    revision: int
    texts: dict[str, str]
    saved_at: datetime


def keep_draft(
    db: AppDB, scope: Scope, entity: str, entity_id: int, texts: Mapping[str, str], *, by: str, revision: int,
    at: datetime | None = None,
) -> Draft:
    """Keeps `by`'s unsaved text of a record, replacing their earlier draft of it. `revision`
    is the revision their form opened at. Touches neither the record nor its history."""
    if entity not in TABLES:
        raise ValueError(f"unknown record kind {entity!r}; the kinds are {', '.join(TABLES)}")
    district_only(scope, PLURALS[entity])
    if not by or not str(by).strip():
        raise ValueError("a draft names whose it is")
    at = at or datetime.now(timezone.utc).replace(microsecond=0)
    texts = {str(name): str(text) for name, text in texts.items()}
    with db.transaction() as con:
        stored = one_in(con, entity, entity_id)
        if entity == "meeting" and stored.is_final:
            raise MeetingFinal(final_message(stored))
        con.execute(
            """insert into drafts (username, entity, entity_id, revision, texts, saved_at) values (?, ?, ?, ?, ?, ?)
               on conflict (username, entity, entity_id)
               do update set revision = excluded.revision, texts = excluded.texts, saved_at = excluded.saved_at""",
            [by, entity, entity_id, revision, json.dumps(texts), at.isoformat()],
        )
    return Draft(entity, entity_id, by, revision, texts, at)


def draft(db: AppDB, entity: str, entity_id: int, *, by: str) -> Draft | None:
    """`by`'s own unsaved text of a record, if they left any."""
    with db.connect() as con:
        row = con.execute(
            "select * from drafts where username = ? and entity = ? and entity_id = ?", [by, entity, entity_id]
        ).fetchone()
    if row is None:
        return None
    return Draft(row["entity"], row["entity_id"], row["username"], row["revision"], json.loads(row["texts"]),
                 datetime.fromisoformat(row["saved_at"]))


def discard_draft(db: AppDB, entity: str, entity_id: int, *, by: str) -> None:
    with db.transaction() as con:
        con.execute("delete from drafts where username = ? and entity = ? and entity_id = ?", [by, entity, entity_id])
