-- PostgreSQL's copy of sql/app/013_audit_log_append_only.sql: the audit log is only added to.
create trigger audit_log_never_changes before update or delete on audit_log
for each row execute function refuse('the audit log is only added to');
create trigger audit_log_not_truncated before truncate on audit_log
for each statement execute function refuse('the audit log is only added to');
