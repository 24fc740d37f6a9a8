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
    select *
    from scoped_facts(
        metric,
        scope_vendor := scope_vendor,
        start_date := start_date,
        end_date := end_date,
        filters := filters,
        min_dosage_share := min_dosage_share
    )
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
        coalesce(dimension_value(by_dimension, scoped), '') as group_1,
        coalesce(dimension_value(by_dimension_2, scoped), '') as group_2,
        scoped.student_key,
        hash(scoped.student_key, k.secret) as record_key,
        scoped.value,
        scoped.denominator
    from scoped
    inner join calendar_weeks as w on w.week_start = scoped.period_start
    cross join privacy_key as k
    -- A student whose group is unknown (a district student has no vendor, and an assessment
    -- export says nothing of poverty or English learning) is in no group of that dimension.
    where (by_dimension is null or dimension_value(by_dimension, scoped) is not null)
      and (by_dimension_2 is null or dimension_value(by_dimension_2, scoped) is not null)
),

aggregation as (
    select any_value(aggregation) as aggregation from metrics where metric_id = metric
),

-- Facts are one per student and week, so a week's rows are its students. Only a longer
-- period needs a distinct count, which costs several times the rest of the query even
-- over no rows, so it sits in a branch of its own that a week's query leaves empty.
weekly as (
    select
        placed.period_start,
        placed.group_1,
        placed.group_2,
        metric_value(aggregation.aggregation, placed.value, placed.denominator) as value,
        count(*) as n,
        sum(placed.value) as numerator,
        metric_denominator(aggregation.aggregation, placed.denominator) as denominator,
        sample_sd(placed.value) as sd,
        bit_xor(placed.record_key) as cell_key
    from placed, aggregation
    where grain = 'week'
    group by placed.period_start, placed.group_1, placed.group_2, aggregation.aggregation
),

longer as (
    select
        placed.period_start,
        placed.group_1,
        placed.group_2,
        metric_value(aggregation.aggregation, placed.value, placed.denominator) as value,
        count(distinct placed.student_key) as n,
        sum(placed.value) as numerator,
        metric_denominator(aggregation.aggregation, placed.denominator) as denominator,
        sample_sd(placed.value) as sd,
        bit_xor(distinct placed.record_key) as cell_key
    from placed, aggregation
    where grain is distinct from 'week'
    group by placed.period_start, placed.group_1, placed.group_2, aggregation.aggregation
),

aggregated as (
    select * from weekly
    union all
    select * from longer
)

select * from aggregated order by group_1, group_2, period_start;
