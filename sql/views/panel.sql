-- panel: one row per period and per value of up to two dimensions, of one metric. The
-- other views are slices of it: series has no dimension, breakdown no period.
-- A null grain gives one period (null) for the whole range; a null dimension one group ('').
-- cell_key identifies the set of students behind a row (ciboard.privacy keys its noise on
-- it): the same students always give the same key, any other set an unrelated one.
create or replace macro panel(
    metric,
    grain := null,
    by_dimension := null,
    by_dimension_2 := null,
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
with scoped as (
    select
        f.period_start,
        f.student_key,
        f.value,
        f.denominator,
        dimension_value(by_dimension, f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
            f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as group_1,
        dimension_value(by_dimension_2, f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
            f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as group_2
    from scoped_facts(
        metric,
        scope_vendor := scope_vendor,
        start_date := start_date,
        end_date := end_date,
        filters := filters,
        min_dosage_share := min_dosage_share
    ) as f
),

aggregation as (
    select any_value(aggregation) as aggregation from metrics where metric_id = metric
),

-- For one period (a null grain), the school years every week of which the dates hold: a student's
-- facts of such a year are summed already, in student_year_sums, about a row per student where
-- the facts hold one per student and week. Not for a median, which needs the facts themselves.
summed_years as (
    select w.school_year
    from calendar_weeks as w, aggregation
    where grain is null and aggregation.aggregation <> 'median'
    group by w.school_year
    having (start_date is null or min(w.week_start) >= start_date)
       and (end_date is null or max(w.week_start) <= end_date)
),

-- The weeks whose facts are read. With none (a whole school year, the pages' default), the
-- facts are not read at all.
weeks as (
    select * from calendar_weeks where school_year not in (select school_year from summed_years)
),

-- Facts are weekly; months and windows are looked up in the calendar, not computed, so
-- a window is whatever the school year's calendar says it is.
placed as (
    select
        case grain
            when 'week' then w.week_start
            when 'month' then w.month_start
            when 'window' then w.window_start
        end as period_start,
        coalesce(scoped.group_1, '') as group_1,
        coalesce(scoped.group_2, '') as group_2,
        scoped.student_key,
        scoped.value,
        scoped.denominator,
        -- The spread of single values (sd) is what an interval of a mean needs; a rate's and a
        -- proportion's come from their counts, and it costs a third of a breakdown.
        case when aggregation.aggregation = 'mean' then scoped.value end as mean_value
    from scoped
    inner join weeks as w on w.week_start = scoped.period_start
    cross join aggregation
    -- A student whose group is unknown (a district student has no vendor, and an assessment
    -- export says nothing of poverty or English learning) is in no group of that dimension.
    where (by_dimension is null or scoped.group_1 is not null)
      and (by_dimension_2 is null or scoped.group_2 is not null)
),

-- Facts are one per student and week, so a week's rows are its students.
weekly as (
    select
        placed.period_start,
        placed.group_1,
        placed.group_2,
        metric_value(aggregation.aggregation, placed.value, placed.denominator) as value,
        count(*) as n,
        sum(placed.value) as numerator,
        metric_denominator(aggregation.aggregation, placed.denominator) as denominator,
        sample_sd(placed.mean_value) as sd,
        bit_xor(hash(placed.student_key, k.secret)) as cell_key
    from placed, aggregation, privacy_key as k
    where grain = 'week'
    group by placed.period_start, placed.group_1, placed.group_2, aggregation.aggregation
),

-- The sums of the summed years, in the same groups, scope and filters as the facts.
summed as (
    select
        null::date as period_start,
        coalesce(dimension_value(by_dimension, s.vendor_id, s.school_id, s.grade, s.race_ethnicity, s.gender,
            s.econ_disadvantaged, s.english_learner, s.special_education, s.baseline_band), '') as group_1,
        coalesce(dimension_value(by_dimension_2, s.vendor_id, s.school_id, s.grade, s.race_ethnicity, s.gender,
            s.econ_disadvantaged, s.english_learner, s.special_education, s.baseline_band), '') as group_2,
        s.student_key,
        s.facts,
        s.total,
        s.denominator,
        case when aggregation.aggregation = 'mean' then s.facts else 0 end as mean_values,
        case when aggregation.aggregation = 'mean' then s.scaled_total end as scaled_total,
        case when aggregation.aggregation = 'mean' then s.scaled_squares end as scaled_squares
    from student_year_sums as s, aggregation
    where s.metric_id = metric
      and s.school_year in (select school_year from summed_years)
      and in_scope(scope_vendor, filters, min_dosage_share, s.student_key, s.vendor_id, s.school_id, s.grade,
          s.race_ethnicity, s.gender, s.econ_disadvantaged, s.english_learner, s.special_education, s.baseline_band)
      and (by_dimension is null or dimension_value(by_dimension, s.vendor_id, s.school_id, s.grade, s.race_ethnicity,
          s.gender, s.econ_disadvantaged, s.english_learner, s.special_education, s.baseline_band) is not null)
      and (by_dimension_2 is null or dimension_value(by_dimension_2, s.vendor_id, s.school_id, s.grade,
          s.race_ethnicity, s.gender, s.econ_disadvantaged, s.english_learner, s.special_education, s.baseline_band)
          is not null)
),

-- A longer period holds several facts of a student. Summed per student first, its rows are
-- its students again, which costs half what counting distinct students in one step does.
-- Every aggregate but the median can be summed so; a median needs the facts themselves.
-- For one period, the facts of the dates that hold part of a school year are summed with the
-- sums of the years they hold whole, in one pass: a student may have rows of both.
-- The exact sums go on as DECIMAL(38,0), the type they are stored in: DuckDB casts a HUGEINT to
-- it in a fiftieth of the time it takes back, so they are cast back once per group, in `longer`.
per_student as (
    select
        placed.period_start,
        placed.group_1,
        placed.group_2,
        placed.student_key,
        count(*) as facts,
        sum(placed.value) as total,
        sum(placed.denominator) as denominator,
        count(placed.mean_value) as mean_values,
        sum((placed.mean_value * 1e9)::hugeint)::decimal(38, 0) as scaled_total,
        sum((placed.mean_value * 1e9)::hugeint * (placed.mean_value * 1e9)::hugeint)::decimal(38, 0) as scaled_squares
    from placed, aggregation
    where grain is not null and grain <> 'week' and aggregation.aggregation <> 'median'
    group by placed.period_start, placed.group_1, placed.group_2, placed.student_key
    union all
    select
        period_start,
        group_1,
        group_2,
        student_key,
        sum(facts) as facts,
        sum(total) as total,
        sum(denominator) as denominator,
        sum(mean_values) as mean_values,
        sum(scaled_total) as scaled_total,
        sum(scaled_squares) as scaled_squares
    from (
        select
            placed.period_start,
            placed.group_1,
            placed.group_2,
            placed.student_key,
            1 as facts,
            placed.value as total,
            placed.denominator,
            (placed.mean_value is not null)::integer as mean_values,
            (placed.mean_value * 1e9)::hugeint::decimal(38, 0) as scaled_total,
            ((placed.mean_value * 1e9)::hugeint * (placed.mean_value * 1e9)::hugeint)::decimal(38, 0) as scaled_squares
        from placed, aggregation
        where grain is null and aggregation.aggregation <> 'median'
        union all
        select * from summed
    )
    group by period_start, group_1, group_2, student_key
),

longer as (
    select
        per_student.period_start,
        per_student.group_1,
        per_student.group_2,
        case aggregation.aggregation
            when 'rate' then sum(per_student.total) / nullif(sum(per_student.denominator), 0)
            else sum(per_student.total) / sum(per_student.facts)
        end as value,
        count(*) as n,
        sum(per_student.total) as numerator,
        case aggregation.aggregation when 'rate' then sum(per_student.denominator) else sum(per_student.facts) end
            as denominator,
        sample_sd_from_sums(sum(per_student.mean_values), sum(per_student.scaled_total)::hugeint,
            sum(per_student.scaled_squares)::hugeint) as sd,
        bit_xor(hash(per_student.student_key, k.secret)) as cell_key
    from per_student, aggregation, privacy_key as k
    group by per_student.period_start, per_student.group_1, per_student.group_2, aggregation.aggregation
),

-- Counting distinct students costs several times the rest of the query even over no rows,
-- so it sits in a branch that only a median over a longer period reaches.
longer_median as (
    select
        placed.period_start,
        placed.group_1,
        placed.group_2,
        median(placed.value) as value,
        count(distinct placed.student_key) as n,
        sum(placed.value) as numerator,
        count(*) as denominator,
        sample_sd(placed.mean_value) as sd,
        bit_xor(distinct hash(placed.student_key, k.secret)) as cell_key
    from placed, aggregation, privacy_key as k
    where grain is distinct from 'week' and aggregation.aggregation = 'median'
    group by placed.period_start, placed.group_1, placed.group_2
),

aggregated as (
    select * from weekly
    union all
    select * from longer
    union all
    select * from longer_median
)

select * from aggregated order by group_1, group_2, period_start;
