-- Student follow-up: what was done about each student on a follow-up list (persistently absent,
-- not growing, not yet served), as a dated log. One row per status change; rows are only ever
-- added (the triggers refuse any change or removal, whoever asks), so a student's history
-- stays whole through every later list, whether the student leaves one and comes back or not.
-- vendor_id and school_id are the student's when the entry was logged: whom the entry is for.
create table student_follow_ups (
    entry_id    integer primary key,
    student_key text not null,
    vendor_id   text not null,
    school_id   text not null,
    list        text not null check (list in ('absent', 'not_growing', 'not_yet_served')),
    status      text not null check (status in ('new', 'contacted', 're-engaged', 'substituted', 'dis-enrolled')),
    logged_on   text not null,  -- the day it happened, as the person logging says
    logged_by   text not null,
    note        text not null default '',
    logged_at   text not null   -- when it was written
);

create index student_follow_ups_by_student on student_follow_ups (student_key, logged_on, entry_id);
create index student_follow_ups_by_vendor on student_follow_ups (vendor_id, student_key);

create trigger student_follow_ups_never_change before update on student_follow_ups
begin
    select raise(abort, 'the follow-up log is only added to');
end;

create trigger student_follow_ups_stay before delete on student_follow_ups
begin
    select raise(abort, 'the follow-up log is only added to');
end;
