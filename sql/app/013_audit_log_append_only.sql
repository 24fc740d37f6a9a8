-- The audit log is only added to: the triggers refuse any change or removal, whoever asks, so
-- who did what, and when, stays as it was written.
create trigger audit_log_never_changes before update on audit_log
begin
    select raise(abort, 'the audit log is only added to');
end;

create trigger audit_log_stays before delete on audit_log
begin
    select raise(abort, 'the audit log is only added to');
end;
