-- breakdown: one row per value of one dimension (or per pair of values of two) of one metric.
create or replace macro breakdown(
    metric,
    by_dimension,
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
    ) as f
),

grouped as (
    select
        dimension_value(by_dimension, scoped) as group_1,
        -- A constant when there is no second dimension, so one query serves both shapes.
        coalesce(dimension_value(by_dimension_2, scoped), '') as group_2,
        scoped.student_key,
        scoped.value,
        scoped.denominator
    from scoped
),

aggregation as (
    select any_value(aggregation) as aggregation from metrics where metric_id = metric
),

per_group as (
    select
        grouped.group_1,
        grouped.group_2,
        metric_value(aggregation.aggregation, grouped.value, grouped.denominator) as value,
        count(distinct grouped.student_key) as n,
        sum(grouped.value) as numerator,
        metric_denominator(aggregation.aggregation, grouped.denominator) as denominator,
        stddev_samp(grouped.value) as sd
    from grouped, aggregation
    group by grouped.group_1, grouped.group_2, aggregation.aggregation
)

select * from per_group order by group_1, group_2;
