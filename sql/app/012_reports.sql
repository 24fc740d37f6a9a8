-- Contract reports: one row per report and version, its narrative as a log of revisions, the
-- numbers frozen when it was reviewed (with the warehouse version they came from, pinned), and
-- its workflow as a log of state changes. Every table is only ever added to: the triggers refuse
-- any change or removal, whoever asks, so what a released report said is kept as it was.
create table reports (
    report_id    integer primary key,
    school_year  text not null,
    period       text not null,  -- '2025-26' (the year), '2025-26 Q2' or '2025-10'
    version      integer not null check (version >= 1),
    corrects     integer unique references reports (report_id),  -- the released version this one corrects
    what_changed text not null default '',
    created_by   text not null,
    created_at   text not null,
    unique (school_year, period, version),
    check ((corrects is null) = (version = 1)),
    check (corrects is null or what_changed <> '')
);

create table report_texts (
    text_id    integer primary key,
    report_id  integer not null references reports (report_id),
    section    text not null,
    body       text not null,
    written_by text not null,
    written_at text not null
);

create table report_snapshots (
    snapshot_id       integer primary key,
    report_id         integer not null references reports (report_id),
    warehouse_version text not null,
    computed_at       text not null,
    district          text not null,  -- JSON: the copy for the board and schools
    public            text not null   -- JSON: the copy for vendors and the public, strictest protection
);

create table report_events (
    event_id    integer primary key,
    report_id   integer not null references reports (report_id),
    state       text not null check (state in ('draft', 'reviewed', 'approved', 'released')),
    by_user     text not null,
    at          text not null,
    note        text not null default '',
    snapshot_id integer references report_snapshots (snapshot_id),
    audiences   text not null default ''  -- for a release: comma-separated, of board, vendors, schools, public
);

create index report_events_by_report on report_events (report_id, event_id);
create index report_texts_by_report on report_texts (report_id, section, text_id);

-- A released report is final: nothing more happens to it (a correction is a new report).
create trigger report_events_after_release before insert on report_events
when (select state from report_events where report_id = new.report_id order by event_id desc limit 1) = 'released'
begin
    select raise(abort, 'a released report never changes: make a corrected version');
end;

-- The narrative is written while the report is a draft, and only then.
create trigger report_texts_only_in_draft before insert on report_texts
when coalesce((select state from report_events where report_id = new.report_id order by event_id desc limit 1), 'draft') <> 'draft'
begin
    select raise(abort, 'a report is written while it is a draft: return it to draft first');
end;

create trigger reports_never_change before update on reports
begin
    select raise(abort, 'a report record never changes');
end;

create trigger reports_stay before delete on reports
begin
    select raise(abort, 'a report record never changes');
end;

create trigger report_texts_never_change before update on report_texts
begin
    select raise(abort, 'a report text is only added to');
end;

create trigger report_texts_stay before delete on report_texts
begin
    select raise(abort, 'a report text is only added to');
end;

create trigger report_snapshots_never_change before update on report_snapshots
begin
    select raise(abort, 'a report snapshot never changes');
end;

create trigger report_snapshots_stay before delete on report_snapshots
begin
    select raise(abort, 'a report snapshot never changes');
end;

create trigger report_events_never_change before update on report_events
begin
    select raise(abort, 'the report workflow log is only added to');
end;

create trigger report_events_stay before delete on report_events
begin
    select raise(abort, 'the report workflow log is only added to');
end;
