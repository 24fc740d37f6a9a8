-- Per metric, school year, student and groups: the count and sums of the student's facts over
-- the year's calendar weeks (ciboard.derivations.STUDENT_YEAR_SUMS, which each ingest runs for
-- the students it touched). A view over whole school years reads these, about one row per
-- student, instead of a row per student and week. Filled here as that query filled it when
-- this migration was written.
create table student_year_sums (
    metric_id          varchar not null,
    school_year        varchar not null,
    student_key        varchar not null,
    vendor_id          varchar,
    school_id          varchar not null,
    grade              integer not null,
    race_ethnicity     varchar not null,
    gender             varchar not null,
    econ_disadvantaged boolean,
    english_learner    boolean,
    special_education  boolean,
    baseline_band      varchar,
    facts              bigint not null,
    total              double not null,
    denominator        double,
    -- Exact integer sums, as DECIMAL(38,0): DuckLake writes a HUGEINT to Parquet as a double.
    scaled_total       decimal(38, 0),
    scaled_squares     decimal(38, 0)
);
insert into student_year_sums
select
    f.metric_id, w.school_year, f.student_key, f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
    f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band,
    count(*) as facts,
    sum(f.value) as total,
    sum(f.denominator) as denominator,
    sum(case when abs(f.value) < 1e9 then (f.value * 1e9)::hugeint end) as scaled_total,
    sum(case when abs(f.value) < 1e9 then (f.value * 1e9)::hugeint * (f.value * 1e9)::hugeint end) as scaled_squares
from facts as f
inner join calendar_weeks as w on w.week_start = f.period_start
group by all
order by 1, 2, 3;
