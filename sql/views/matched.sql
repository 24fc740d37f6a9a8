-- matched_cells: one row per period, side (a vendor's students, or the students no vendor
-- tutors), vendor, school, grade and baseline band, of one metric: the cells the matched
-- comparison weighs (ciboard.stats.compare.observed_expected with a reference).
-- Students are the unit: each student's facts in a period are pooled first, so n counts
-- students and sd is the spread of students' own values, whatever the metric's repeats.
-- The tutored side is read in the caller's scope (a vendor's own students). The not-tutored
-- side is read across every vendor's scope, as the peers benchmark is, with the same filters
-- but the vendor one; the query layer pools it and hides it as a benchmark, never as rows.
-- The dosage filter is about tutoring, so it applies to the tutored side only.
create or replace macro matched_cells(
    metric,
    grain := null,
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
with tutored as (
    select *
    from scoped_facts(
        metric,
        scope_vendor := scope_vendor,
        start_date := start_date,
        end_date := end_date,
        filters := filters,
        min_dosage_share := min_dosage_share
    )
    where vendor_id is not null
),

not_tutored as (
    select *
    from scoped_facts(
        metric,
        start_date := start_date,
        end_date := end_date,
        filters := map_concat(filters, map {'vendor_id': ['not tutored']})
    )
),

sides as (
    select 'vendor' as side, * from tutored
    union all
    select 'not tutored' as side, * from not_tutored
),

aggregation as (
    select any_value(aggregation) as aggregation from metrics where metric_id = metric
),

per_student as (
    select
        case grain
            when 'week' then w.week_start
            when 'month' then w.month_start
            when 'window' then w.window_start
        end as period_start,
        s.side,
        coalesce(s.vendor_id, 'not tutored') as vendor_id,
        s.school_id,
        s.grade,
        -- A district without bands still matches on school and grade.
        coalesce(s.baseline_band, 'unknown') as baseline_band,
        s.student_key,
        sum(s.value) as numerator,
        case any_value(a.aggregation) when 'rate' then sum(s.denominator) else count(*) end as denominator,
        any_value(hash(s.student_key, k.secret)) as record_key
    from sides as s
    inner join calendar_weeks as w on w.week_start = s.period_start
    cross join privacy_key as k
    cross join aggregation as a
    group by all
)

select
    period_start,
    side,
    vendor_id,
    school_id,
    grade,
    baseline_band,
    count(*) as n,
    sum(numerator) as numerator,
    sum(denominator) as denominator,
    sum(numerator) / nullif(sum(denominator), 0) as value,
    stddev_samp(numerator / nullif(denominator, 0)) as sd,
    bit_xor(record_key) as cell_key
from per_student
group by all
order by all;
