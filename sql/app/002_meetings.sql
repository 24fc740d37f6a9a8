-- The CI process: workgroups, their meetings, the commitments made there, root-cause
-- analyses and PDSA cycles. One row per record at its newest revision; lists and nested
-- records are JSON text. Every saved revision is also kept, whole, in `history`.
-- Nothing here is deleted: a commitment is dropped, not removed.

-- One row per workgroup: its purpose, members (JSON list of people with their party and
-- role), how often and how it meets, the decisions it makes, and the vendors it involves.
-- A vendor sees a workgroup only if its id is in vendor_ids.
create table workgroups (
    workgroup_id integer primary key,
    name text not null check (trim(name) <> ''),
    purpose text not null default '',
    members text not null default '[]',
    cadence text not null default '',
    format text not null default '',
    decisions text not null default '[]',
    vendor_ids text not null default '[]',
    revision integer not null check (revision >= 1),
    updated_at text not null,
    updated_by text not null
);

-- One row per meeting of a workgroup. The agenda is a JSON object of its four parts. A
-- finalised meeting holds the snapshot of what was on screen and the warehouse version it
-- was read from, and is read-only from then on (the triggers below hold that even for a
-- writer that skips ciboard.meetings).
create table meetings (
    meeting_id integer primary key,
    workgroup_id integer not null references workgroups (workgroup_id),
    held_on text not null,
    attendees text not null default '[]',
    agenda text not null default '{}',
    status text not null check (status in ('draft', 'final')),
    snapshot text,
    warehouse_version text,
    finalised_at text,
    finalised_by text,
    revision integer not null check (revision >= 1),
    updated_at text not null,
    updated_by text not null,
    check ((status = 'final') = (snapshot is not null and finalised_at is not null))
);
create index meetings_workgroup on meetings (workgroup_id, held_on);

create trigger meetings_final_is_read_only before update on meetings
when old.status = 'final'
begin
    select raise(abort, 'a finalised meeting is read-only');
end;

create trigger meetings_final_is_kept before delete on meetings
when old.status = 'final'
begin
    select raise(abort, 'a finalised meeting is kept');
end;

-- One row per commitment: which party (district, vendor or school, with the vendor's or
-- school's id) will do what, who owns it, by when, its status, the dated log of every status
-- change (JSON), and the metric and slice that should move if it works.
create table commitments (
    commitment_id integer primary key,
    meeting_id integer references meetings (meeting_id),
    made_on text not null,
    party text not null check (party in ('district', 'vendor', 'school')),
    party_id text check ((party = 'district') = (party_id is null)),
    owner text not null,
    action text not null check (trim(action) <> ''),
    due_on text,
    status text not null check (status in ('open', 'in_progress', 'done', 'dropped')),
    log text not null default '[]',
    metric_id text,
    slice text not null default '{}',
    revision integer not null check (revision >= 1),
    updated_at text not null,
    updated_by text not null
);
create index commitments_meeting on commitments (meeting_id);
create index commitments_party on commitments (party, party_id);

-- One row per PDSA cycle: the plan (change, prediction, the metric and slice that measure
-- it, the start date), what was observed, the study of prediction against data, and the act.
create table pdsa_cycles (
    pdsa_id integer primary key,
    meeting_id integer references meetings (meeting_id),
    title text not null check (trim(title) <> ''),
    metric_id text not null,
    slice text not null default '{}',
    change text not null default '',
    prediction text not null default '',
    start_on text not null,
    ends_on text,
    observations text not null default '[]',
    study text not null default '',
    act text check (act in ('adopt', 'adapt', 'abandon')),
    act_note text not null default '',
    revision integer not null check (revision >= 1),
    updated_at text not null,
    updated_by text not null
);

-- One row per root-cause analysis of a trend (a metric and slice): the whys in order, the
-- causes with whether the group controls them and their priority, the "How might we"
-- questions, the ideas with their themes, and the idea chosen, which became a PDSA cycle or
-- a commitment.
create table root_causes (
    root_cause_id integer primary key,
    meeting_id integer references meetings (meeting_id),
    metric_id text not null,
    slice text not null default '{}',
    problem text not null check (trim(problem) <> ''),
    whys text not null default '[]',
    causes text not null default '[]',
    hmw text not null default '[]',
    ideas text not null default '[]',
    chosen_idea integer,
    pdsa_id integer references pdsa_cycles (pdsa_id),
    commitment_id integer references commitments (commitment_id),
    revision integer not null check (revision >= 1),
    updated_at text not null,
    updated_by text not null
);

-- One row per saved revision of any record above, the record whole as JSON: who saved it
-- and when. The newest row of a record is its current state; older rows are what it was.
create table history (
    entity text not null check (entity in ('workgroup', 'meeting', 'commitment', 'pdsa', 'root_cause')),
    entity_id integer not null,
    revision integer not null,
    saved_by text not null,
    saved_at text not null,
    record text not null,
    primary key (entity, entity_id, revision)
);
