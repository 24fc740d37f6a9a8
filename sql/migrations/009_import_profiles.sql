-- Import profiles (ciboard/profiles.py): how an assessment export maps to students, terms and
-- metrics, as TOML. Every version is kept with who added it and when; an import uses the latest.
create table import_profiles (
    name          varchar not null,
    version       integer not null,
    label         varchar not null,
    metric_prefix varchar not null,
    toml          varchar not null,
    sha256        varchar not null,
    added_by      varchar not null,
    added_at      timestamp not null,
    shipped       boolean not null,  -- recorded from the files that come with CI Board
    primary key (name, version)
);

-- A profile's student file as sent: the students tested in a term.
create table profile_students (
    kind           varchar not null,  -- the submission kind: '<metric_prefix>_students'
    student_key    varchar not null,
    term_name      varchar not null,
    school_year    varchar not null,
    window_name    varchar not null,
    school_id      varchar not null,
    grade          integer not null,
    race_ethnicity varchar not null,
    gender         varchar not null,
    batch_id       integer not null,
    primary key (kind, student_key, term_name)
);

-- A profile's results file as sent: one row per test event. `scores` holds the profile's
-- named scores, and each growth metric's expected gain as '<suffix>:<window>'.
create table profile_results (
    kind            varchar not null,  -- the submission kind: '<metric_prefix>_results'
    profile_version integer,           -- the version of the profile it was read with
    student_key     varchar not null,
    term_name       varchar not null,  -- the term as sent, or '<school year> <window>'
    school_year     varchar not null,
    window_name     varchar not null,
    subject         varchar not null,  -- as the export names it ('' for a file without subjects)
    subject_id      varchar not null,  -- as metric ids name it: 'science_general_science'
    test_id         varchar not null,  -- '' for a file without test ids
    test_date       date not null,
    preferred       boolean not null,  -- the test that counts where a student took several
    scores          map(varchar, double) not null,
    batch_id        integer not null
);

-- NWEA MAP Growth imports made before profiles move to the profile tables, which is where the
-- NWEA profile reads and writes them now; the growth targets keep their metric's name.
insert into profile_students
select 'nwea_students', student_key, term_name, school_year, window_name, school_id, grade, race_ethnicity, gender, batch_id
from nwea_students;

insert into profile_results
select 'nwea_results', null, student_key, term_name, school_year, window_name, scale, scale_id, test_id, test_date,
    growth_measure,
    map_from_entries(list_filter(
        [{'k': 'rit', 'v': rit}, {'k': 'percentile', 'v': percentile::double},
         {'k': 'met_typical_growth:winter', 'v': growth_to_winter}, {'k': 'met_typical_growth:spring', 'v': growth_to_spring}],
        lambda e: e.v is not null)),
    batch_id
from nwea_results;

drop table nwea_students;
drop table nwea_results;
