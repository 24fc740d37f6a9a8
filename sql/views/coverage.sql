-- coverage: one row per weekly metric and week: students enrolled that week, students with
-- a value, and the share covered. A gap here is missing data, not a low outcome.
-- The two keys identify the students behind each count, for ciboard.privacy's noise.
create or replace macro coverage(
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[])
) as table
with weeks as (
    select w.week_start
    from calendar_weeks as w
    -- Only weeks that have any data: breaks and weeks not yet reported are not gaps.
    where w.week_start in (select distinct period_start from facts)
      and (start_date is null or w.week_start >= start_date)
      and (end_date is null or w.week_start <= end_date)
),

enrolled as (
    select w.week_start, count(*) as enrolled, bit_xor(hash(s.student_key, k.secret)) as enrolled_key
    from weeks as w
    -- A student is enrolled from the week of enrolled_on through the week of exited_on.
    inner join students as s on s.enrolled_on <= w.week_start + 6 and (s.exited_on is null or s.exited_on >= w.week_start)
    cross join privacy_key as k
    -- Coverage is of the tutoring program: a district student no vendor serves is not enrolled in it.
    where s.vendor_id is not null
      and (scope_vendor is null or s.vendor_id = scope_vendor)
      and (filters['vendor_id'] is null or list_contains(filters['vendor_id'], s.vendor_id))
      and (filters['school_id'] is null or list_contains(filters['school_id'], s.school_id))
      and (filters['grade'] is null or list_contains(filters['grade'], s.grade::varchar))
    group by w.week_start
),

weekly_metrics as (
    select metric_id from metrics where frequency = 'weekly'
),

-- Only data of students enrolled by that week counts: the district has school attendance
-- for students before their tutoring starts, which is not coverage of the program.
covered as (
    select
        f.metric_id,
        f.period_start as week_start,
        count(*) as with_data,
        bit_xor(hash(f.student_key, k.secret)) as with_data_key
    from facts as f
    inner join students as s on s.student_key = f.student_key and s.enrolled_on <= f.period_start + 6
    cross join privacy_key as k
    where f.metric_id in (select metric_id from weekly_metrics)
      and f.vendor_id is not null  -- students no vendor tutors are in no program to cover
      and (scope_vendor is null or f.vendor_id = scope_vendor)
      and (start_date is null or f.period_start >= start_date)
      and (end_date is null or f.period_start <= end_date)
      and (filters['vendor_id'] is null or list_contains(filters['vendor_id'], f.vendor_id))
      and (filters['school_id'] is null or list_contains(filters['school_id'], f.school_id))
      and (filters['grade'] is null or list_contains(filters['grade'], f.grade::varchar))
    group by all
)

select
    m.metric_id,
    e.week_start as period_start,
    e.enrolled,
    coalesce(c.with_data, 0) as with_data,
    coalesce(c.with_data, 0) / nullif(e.enrolled, 0) as coverage,
    e.enrolled_key,
    coalesce(c.with_data_key, 0) as with_data_key
from enrolled as e
cross join weekly_metrics as m
left join covered as c on c.metric_id = m.metric_id and c.week_start = e.week_start
order by m.metric_id, e.week_start;
