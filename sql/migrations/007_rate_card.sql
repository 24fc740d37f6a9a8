-- Rate-card terms on each contract line. A contract file without these columns loads with
-- the meaning payments had before them, stated here as defaults: served after one attended
-- session, success judged on the student's latest result in the contract dates (no named
-- window), no eligibility rule beyond being served and having a result, base paid monthly.
alter table contracts add column served_by varchar default 'sessions';
alter table contracts add column served_min double default 1;
alter table contracts add column success varchar default 'threshold';
alter table contracts add column outcome_window varchar;
alter table contracts add column from_window varchar;
alter table contracts add column enrolled_by date;
alter table contracts add column min_dosage_share double;
alter table contracts add column student_cap decimal(12, 2);
alter table contracts add column base_schedule varchar default 'monthly';

-- Every version of every contract line ever loaded, by the batch that loaded it: a statement
-- names the batch whose terms it applied, and the terms it replaced stay readable.
create table contract_history as select * from contracts;

-- The payments view reads the served rule from the sessions themselves now (each contract has
-- its own), so the first-session table ingest kept for it goes.
drop table contract_served;
