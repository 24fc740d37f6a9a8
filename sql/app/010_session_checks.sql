-- Decisions about sessions the service checks flagged (sql/views/session_checks.sql): an analyst
-- or admin accepts a flag (the session counts toward payment) or rejects it, with a reason. One
-- row per flag and decision; rows are only ever added (the triggers refuse any change or removal),
-- and a flag's latest decision is the one in force, so every earlier one stays readable.
-- flag_key is the view's: vendor|student|date|tutor|check.
create table session_check_decisions (
    decision_id integer primary key,
    flag_key    text not null,
    vendor_id   text not null,
    check_name  text not null check (check_name in ('calendar', 'enrollment', 'attendance', 'plausibility')),
    decision    text not null check (decision in ('accepted', 'rejected')),
    reason      text not null check (length(trim(reason)) > 0),
    decided_by  text not null,
    decided_at  text not null
);

create index session_check_decisions_by_flag on session_check_decisions (flag_key, decision_id);

create trigger session_check_decisions_never_change before update on session_check_decisions
begin
    select raise(abort, 'decisions about flagged sessions are only added to');
end;

create trigger session_check_decisions_stay before delete on session_check_decisions
begin
    select raise(abort, 'decisions about flagged sessions are only added to');
end;
