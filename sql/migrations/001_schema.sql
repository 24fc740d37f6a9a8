-- The warehouse: reference tables, raw submissions as they arrived, tidy facts derived
-- from them, and the log of every submission. Only ingest writes here.

create table school_years (
    school_year varchar primary key,  -- '2025-26'
    starts_on   date not null,
    ends_on     date not null
);

-- One row per Monday-starting week; the series view maps weeks to months and windows here.
create table calendar_weeks (
    week_start   date primary key,
    school_year  varchar not null,
    week_of_year integer not null,
    month_start  date not null,
    window_name  varchar not null,
    window_start date not null
);

-- The data map: one row per metric, the shared definition every chart shows.
create table metrics (
    metric_id   varchar primary key,
    label       varchar not null,
    kind        varchar not null check (kind in ('payment outcome', 'process outcome', 'context')),
    unit        varchar not null,
    aggregation varchar not null check (aggregation in ('mean', 'median', 'rate', 'proportion')),
    better      varchar not null check (better in ('higher', 'lower')),
    frequency   varchar not null check (frequency in ('weekly', 'window')),
    definition  varchar not null,
    instrument  varchar not null,
    source      varchar not null,
    timing      varchar not null,
    accuracy    varchar not null,
    target      double,
    submitted_as varchar not null  -- the submission kind its facts come from
);

-- What each kind of submission is, who sends it and when it is due.
create table submission_kinds (
    kind       varchar primary key,
    source     varchar not null check (source in ('vendor', 'district', 'reference')),
    cadence    varchar not null check (cadence in ('weekly', 'window', 'once')),
    due_days   integer not null,  -- days after the end of the period covered
    description varchar not null
);

create table vendors (
    vendor_id varchar primary key,
    name      varchar not null,
    batch_id  integer not null
);

create table schools (
    school_id varchar primary key,
    name      varchar not null,
    batch_id  integer not null
);

-- One row per rate-card line: a payment outcome of a vendor's contract. Base amount and
-- cap belong to the contract (vendor, starts_on, ends_on) and are equal on all its lines.
create table contracts (
    vendor_id           varchar not null,
    payment_metric      varchar not null,
    threshold           double not null,
    base_per_student    decimal(12, 2) not null,
    outcome_per_student decimal(12, 2) not null,
    cap                 decimal(14, 2),
    starts_on           date not null,
    ends_on             date not null,
    batch_id            integer not null
);

create table students (
    student_key        varchar primary key,  -- pseudonymous id as the district issues it; no names
    vendor_id          varchar not null,
    school_id          varchar not null,
    grade              integer not null,
    race_ethnicity     varchar not null,
    gender             varchar not null,
    econ_disadvantaged boolean not null,
    english_learner    boolean not null,
    special_education  boolean not null,
    baseline_band      varchar not null,
    enrolled_on        date not null,
    batch_id           integer not null
);

create table sessions (
    student_key       varchar not null,
    vendor_id         varchar not null,
    session_date      date not null,
    tutor_id          varchar not null,
    group_size        integer not null,
    scheduled_minutes integer not null,
    attended_minutes  integer not null,
    batch_id          integer not null
);

create table school_attendance (
    student_key   varchar not null,
    week_start    date not null,
    days_enrolled integer not null,
    days_present  integer not null,
    batch_id      integer not null
);

create table assessments (
    student_key  varchar not null,
    school_year  varchar not null,
    window_name  varchar not null,
    test_date    date not null,
    scaled_score double not null,
    sgp          integer,
    proficient   boolean not null,
    batch_id     integer not null
);

create table survey_responses (
    student_key   varchar not null,
    vendor_id     varchar not null,
    response_date date not null,
    item          varchar not null,
    score         integer not null,
    batch_id      integer not null
);

-- Dated events drawn on trend charts; a null scope column means "everyone".
create table annotations (
    starts_on   date not null,
    ends_on     date not null,
    kind        varchar not null check (kind in ('break', 'closure', 'program change', 'external', 'data')),
    title       varchar not null,
    description varchar,
    vendor_id   varchar,
    school_id   varchar,
    metric_id   varchar,
    batch_id    integer not null
);

-- Tidy facts: one row per student x metric x week. Student dimensions are copied in at
-- ingest so that every view is a single scan; a roster correction rewrites them.
create table facts (
    metric_id          varchar not null,
    period_start       date not null,
    student_key        varchar not null,
    vendor_id          varchar not null,
    school_id          varchar not null,
    grade              integer not null,
    race_ethnicity     varchar not null,
    gender             varchar not null,
    econ_disadvantaged boolean not null,
    english_learner    boolean not null,
    special_education  boolean not null,
    baseline_band      varchar not null,
    value              double not null,
    denominator        double,
    batch_id           integer not null
);

-- Share of a student's tutoring weeks that met the dosage definition; the dosage filter reads it.
create table student_dosage (
    student_key varchar primary key,
    weeks       integer not null,
    weeks_met   integer not null,
    share_met   double not null
);

create table submissions (
    batch_id          integer primary key,
    kind              varchar not null,
    vendor_id         varchar,  -- null for district and reference data
    file_name         varchar not null,
    content_sha256    varchar not null,
    period_start      date,
    period_end        date,
    due_on            date,
    received_at       timestamp not null,
    loaded_at         timestamp not null,
    rows_received     bigint not null,
    rows_accepted     bigint not null,
    rows_rejected     bigint not null,
    status            varchar not null check (status in ('accepted', 'rejected', 'replaced')),
    replaces_batch_id integer
);

create table submission_errors (
    batch_id    integer not null,
    row_number  bigint,
    column_name varchar,
    value       varchar,
    reason      varchar not null
);
