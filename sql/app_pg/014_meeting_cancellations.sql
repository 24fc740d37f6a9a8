-- PostgreSQL's copy of sql/app/014_meeting_cancellations.sql: one cancelled occurrence of a
-- workgroup's schedule, only ever added to.
create table meeting_cancellations (
    workgroup_id integer not null references workgroups (workgroup_id),
    on_date      text not null,
    reason       text not null check (trim(reason) <> ''),
    cancelled_by text not null,
    cancelled_at text not null,
    primary key (workgroup_id, on_date)
);

create trigger meeting_cancellations_never_change before update or delete on meeting_cancellations
for each row execute function refuse('a cancelled meeting stays as it was recorded');
create trigger meeting_cancellations_not_truncated before truncate on meeting_cancellations
for each statement execute function refuse('a cancelled meeting stays as it was recorded');
