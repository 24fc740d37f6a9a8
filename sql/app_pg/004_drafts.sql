-- PostgreSQL's copy of sql/app/004_drafts.sql: text typed into a record's form and not saved yet.
create table drafts (
    username text not null,
    entity text not null check (entity in ('workgroup', 'meeting', 'commitment', 'pdsa', 'root_cause')),
    entity_id integer not null,
    revision integer not null check (revision >= 1),
    texts text not null default '{}',
    saved_at text not null,
    primary key (username, entity, entity_id)
);
