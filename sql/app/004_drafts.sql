-- Text typed into a record's form and not saved yet (meeting notes as they stood a few
-- seconds ago), so that a reload or a restart of the server does not lose it. One row per
-- person per record: it is theirs alone to read, and it is not a revision, so it never
-- reaches `history` and does not move the record's revision. Saving the record, or
-- discarding the draft, deletes the row.
create table drafts (
    username text not null,
    entity text not null check (entity in ('workgroup', 'meeting', 'commitment', 'pdsa', 'root_cause')),
    entity_id integer not null,
    -- the revision the text was typed over: restoring it and saving names this revision, so a
    -- save by someone else since shows both versions instead of being overwritten
    revision integer not null check (revision >= 1),
    texts text not null default '{}',
    saved_at text not null,
    primary key (username, entity, entity_id)
);
