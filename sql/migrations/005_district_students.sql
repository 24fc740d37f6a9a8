-- District students: students the district's own files bring (an NWEA MAP export) whom no
-- vendor has rostered. They have no vendor, and their export says nothing of poverty,
-- English learning, special education or baseline band, so those are unknown (null) rather
-- than guessed. A vendor scope binds its own vendor id, so no vendor ever sees them; a
-- breakdown by a group leaves out the students whose group is unknown.
alter table students alter column vendor_id drop not null;
alter table students alter column econ_disadvantaged drop not null;
alter table students alter column english_learner drop not null;
alter table students alter column special_education drop not null;
alter table students alter column baseline_band drop not null;
alter table facts alter column vendor_id drop not null;
alter table facts alter column econ_disadvantaged drop not null;
alter table facts alter column english_learner drop not null;
alter table facts alter column special_education drop not null;
alter table facts alter column baseline_band drop not null;

-- NWEA MAP Growth exports as sent (see ciboard/nwea.py for the columns they come from).
create table nwea_students (
    student_key    varchar not null,
    term_name      varchar not null,
    school_year    varchar not null,
    window_name    varchar not null,
    school_id      varchar not null,
    grade          integer not null,
    race_ethnicity varchar not null,
    gender         varchar not null,
    batch_id       integer not null,
    primary key (student_key, term_name)
);

create table nwea_results (
    student_key       varchar not null,
    term_name         varchar not null,
    school_year       varchar not null,
    window_name       varchar not null,
    scale             varchar not null,  -- as NWEA names it: 'Science - General Science'
    scale_id          varchar not null,  -- as metric ids name it: 'science_general_science'
    test_id           varchar not null,
    test_date         date not null,
    rit               double not null,
    percentile        integer not null,
    growth_measure    boolean not null,
    growth_to_winter  double,  -- expected RIT growth fall to winter, as the fall test states it
    growth_to_spring  double,
    batch_id          integer not null
);

insert into submission_kinds values
('nwea_students', 'district', 'window', 14, 'NWEA MAP Growth StudentsBySchool file: the students tested in a term.'),
('nwea_results', 'district', 'window', 14, 'NWEA MAP Growth AssessmentResults file: one row per test event.');
