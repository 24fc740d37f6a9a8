-- series: one row per period (week, month or assessment window) of one metric.
create or replace macro series(
    metric,
    grain := 'week',
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
in_periods as (
    select
        case grain
            when 'week' then w.week_start
            when 'month' then w.month_start
            when 'window' then w.window_start
        end as period_start,
        scoped.student_key,
        scoped.value,
        scoped.denominator
    from scoped
    inner join calendar_weeks as w on w.week_start = scoped.period_start
),

aggregation as (
    select any_value(aggregation) as aggregation from metrics where metric_id = metric
),

per_period as (
    select
        in_periods.period_start,
        metric_value(aggregation.aggregation, in_periods.value, in_periods.denominator) as value,
        count(distinct in_periods.student_key) as n,
        sum(in_periods.value) as numerator,
        metric_denominator(aggregation.aggregation, in_periods.denominator) as denominator,
        stddev_samp(in_periods.value) as sd
    from in_periods, aggregation
    group by in_periods.period_start, aggregation.aggregation
)

select * from per_period order by period_start;
