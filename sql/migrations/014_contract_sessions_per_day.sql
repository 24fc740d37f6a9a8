-- Plausibility: "more sessions in a day than the contract allows". A contract may say how many
-- attended sessions a student may have with the vendor in a day; without it, the district's
-- max_sessions_per_day setting holds (sql/views/session_checks.sql).
alter table contracts add column max_sessions_per_day integer;
alter table contract_history add column max_sessions_per_day integer;
