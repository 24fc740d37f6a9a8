-- absent_students: one row per student whose tutoring attendance over the last `weeks`
-- weeks up to end_date is below max_rate, for follow-up. Student rows: analysts only.
create or replace macro absent_students(
    max_rate,
    weeks := 4,
    scope_vendor := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[])
) as table
with last_week as (
    select coalesce(
        max(period_start) filter (where end_date is null or period_start <= end_date), null
    ) as week_start
    from facts
    where metric_id = 'tutoring_attendance_rate'
),

recent as (
    select f.*
    from scoped_facts('tutoring_attendance_rate', scope_vendor := scope_vendor, filters := filters) as f, last_week
    where f.period_start > last_week.week_start - 7 * weeks
      and f.period_start <= last_week.week_start
),

per_student as (
    select
        student_key,
        any_value(vendor_id) as vendor_id,
        any_value(school_id) as school_id,
        any_value(grade) as grade,
        sum(value)::integer as sessions_attended,
        sum(denominator)::integer as sessions_scheduled,
        sum(value) / nullif(sum(denominator), 0) as attendance_rate,
        count(*) as weeks_scheduled,
        max(period_start) filter (where value > 0) as last_week_attended
    from recent
    group by student_key
)

select *
from per_student
where attendance_rate < max_rate
order by attendance_rate, sessions_scheduled desc, student_key;
