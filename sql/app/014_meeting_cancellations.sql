-- One cancelled occurrence of a workgroup's schedule: the date, why, who and when. Only ever
-- added to: the triggers refuse any change or removal, so what members were told stands (a
-- meeting can still be recorded another day, and the calendar shows it held).
create table meeting_cancellations (
    workgroup_id integer not null references workgroups (workgroup_id),
    on_date      text not null,
    reason       text not null check (trim(reason) <> ''),
    cancelled_by text not null,
    cancelled_at text not null,
    primary key (workgroup_id, on_date)
);

create trigger meeting_cancellations_keep_updates before update on meeting_cancellations
begin
    select raise(abort, 'a cancelled meeting stays as it was recorded');
end;

create trigger meeting_cancellations_keep_deletes before delete on meeting_cancellations
begin
    select raise(abort, 'a cancelled meeting stays as it was recorded');
end;
