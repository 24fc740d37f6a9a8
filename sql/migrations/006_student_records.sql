-- The district's student records are the source of truth for a student's groups. Each file
-- describes its students as of a date; a later date adds a version and never rewrites an
-- earlier one, so a fact can take the groups in force on its own date (ciboard/ingest.py).
create table district_students (
    student_key        varchar not null,
    as_of              date not null,  -- the date the record describes
    school_id          varchar not null,
    grade              integer not null,
    race_ethnicity     varchar not null,
    gender             varchar not null,
    econ_disadvantaged boolean not null,
    english_learner    boolean not null,
    special_education  boolean not null,
    baseline_band      varchar,  -- unknown where the district's file has no band
    batch_id           integer not null
);

-- What a vendor's roster said of a student's groups, as sent (`value`) and as the dashboard
-- names it (`mapped`, null for a spelling the table lacks). Once the district's records are
-- loaded these decide nothing: they are kept to show where the vendor and the district disagree.
create table roster_claims (
    student_key varchar not null,
    batch_id    integer not null,
    field       varchar not null,
    value       varchar not null,
    mapped      varchar
);

-- The count date (setting group_count_date) the facts' groups were last taken at; null: each
-- fact's own date. When the setting changes, the next ingest regroups every fact.
create table group_rule (count_date varchar);
insert into group_rule values (null);

-- A vendor's roster may say when a student left its program.
alter table students add column exited_on date;

-- Reference data like the schools: a record describes its date and is due on no schedule, so
-- Data quality does not judge it late (its own section says what the records hold and since when).
insert into submission_kinds values
('students', 'reference', 'once', 0, 'The district''s student records: school, grade and groups of every student, as of a date.');
