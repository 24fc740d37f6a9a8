-- session_checks: one row per tutoring session and district-record check it fails, with the
-- reason and whether it counts toward payment. A session is (vendor, student, date, tutor), the
-- key sessions are loaded by, so a decision about a flag still finds it after a re-submission.
--   calendar: on a day a break or closure annotation closes the student's school
--   enrollment: outside the student's roster dates with the vendor, or in a week the district's
--     attendance has the student enrolled 0 days
--   attendance: in a week the district recorded the student with 0 days present
--   plausibility: more sessions that day than the vendor's contract allows (max_sessions_per_day,
--     else the setting max_per_day), more than max_minutes attended, or its
--     tutor in two places at once: another session of the tutor that day overlapping it in time
--     (start_time and scheduled minutes) at another school, or at another time (a group meets
--     together, so its students share a start); sessions sent without a start time are not placed
-- A flag counts when accepted, or when its check is in counted_checks and it was not rejected;
-- a session counts toward payment when every flag on it counts (payment_students reads this).
-- Decisions live in the app database: the query layer binds them as keys written
-- vendor|student|date|tutor|check (ciboard.session_checks.key).
create or replace macro session_checks(
    scope_vendor := null, start_date := null, end_date := null, max_per_day := 2, max_minutes := 120,
    counted_checks := [], accepted := [], rejected := []
) as table
with booked as (
    select s.vendor_id, s.student_key, s.session_date, s.tutor_id, s.scheduled_minutes, s.attended_minutes, s.starts_at
    from sessions as s
    where s.attended_minutes > 0
      and (scope_vendor is null or s.vendor_id = scope_vendor)
      and (start_date is null or s.session_date >= start_date)
      and (end_date is null or s.session_date <= end_date)
),

-- A school that is closed that day: a district-wide annotation, or one naming the student's
-- school or vendor.
calendar as (
    select
        b.*,
        'calendar' as check_name,
        'on ' || string_agg(distinct a.title || ' (' || a.kind || ')', ', ') as reason
    from booked as b
    left join students as st on st.student_key = b.student_key
    inner join annotations as a
        on a.kind in ('break', 'closure')
        and b.session_date between a.starts_on and a.ends_on
        and (a.vendor_id is null or a.vendor_id = b.vendor_id)
        and (a.school_id is null or a.school_id = st.school_id)
    group by all
),

rostered as (
    select
        b.*,
        'enrollment' as check_name,
        case
            when st.student_key is null or st.vendor_id is distinct from b.vendor_id then 'not on the vendor''s roster'
            when b.session_date < st.enrolled_on then 'before enrolling with the vendor on ' || st.enrolled_on
            else 'after leaving the vendor on ' || st.exited_on
        end as reason
    from booked as b
    left join students as st on st.student_key = b.student_key
    where st.student_key is null
       or st.vendor_id is distinct from b.vendor_id
       or b.session_date < st.enrolled_on
       or b.session_date > st.exited_on
),

school_weeks as (
    select
        b.*,
        a.days_enrolled,
        a.days_present
    from booked as b
    inner join school_attendance as a
        on a.student_key = b.student_key and a.week_start = date_trunc('week', b.session_date)::date
    where a.days_enrolled = 0 or a.days_present = 0
),

not_enrolled as (
    select * exclude (days_enrolled, days_present),
        'enrollment' as check_name,
        'the district''s attendance has the student enrolled 0 days that week' as reason
    from school_weeks
    where days_enrolled = 0
),

absent as (
    select * exclude (days_enrolled, days_present),
        'attendance' as check_name,
        'absent from school all week (0 of ' || days_enrolled || ' days present)' as reason
    from school_weeks
    where days_enrolled > 0 and days_present = 0
),

-- The sessions a day the vendor's contract in force that day allows (its school year's lines,
-- or its lines for every year), else the district's setting.
day_limits as (
    select d.vendor_id, d.session_date, coalesce(min(c.max_sessions_per_day), max_per_day) as most
    from (select distinct vendor_id, session_date from booked) as d
    left join school_years as y on d.session_date between y.starts_on and y.ends_on
    left join contracts as c
        on c.vendor_id = d.vendor_id and d.session_date between c.starts_on and c.ends_on
        and (c.school_year is null or c.school_year = y.school_year)
    group by all
),
-- Almost every student has one session a day, and a limit is at least 1 (the contract's and the
-- setting's checks say so): so the days with two or more are found first, grouped by one hash
-- of the day rather than by its three columns (at 3.2M attended sessions, 550 ms of CPU time
-- against 889). A collision only lets a day through to the exact count below.
shared_days as (
    select hash(vendor_id, student_key, session_date) as day_hash
    from booked
    group by day_hash
    having count(*) > 1
),
crowded_days as (
    select b.vendor_id, b.student_key, b.session_date, count(*) as sessions, any_value(l.most) as most
    from booked as b
    semi join shared_days as h on h.day_hash = hash(b.vendor_id, b.student_key, b.session_date)
    inner join day_limits as l using (vendor_id, session_date)
    group by b.vendor_id, b.student_key, b.session_date
    having count(*) > any_value(l.most)
),

-- Minutes of the day, not times: a session running past midnight must not wrap round to the morning.
placed as (
    select
        b.vendor_id, b.student_key, b.session_date, b.tutor_id, st.school_id, b.starts_at,
        hour(b.starts_at) * 60 + minute(b.starts_at) as from_minute,
        hour(b.starts_at) * 60 + minute(b.starts_at) + b.scheduled_minutes as to_minute
    from booked as b
    left join students as st on st.student_key = b.student_key
    where b.starts_at is not null
),

tutor_clashes as (
    select
        a.vendor_id, a.student_key, a.session_date, a.tutor_id,
        'tutor ' || a.tutor_id || ' in two places at once: also with '
            || array_to_string(list_sort(list(distinct o.student_key || ' at ' || coalesce(o.school_id, 'no school')
                || ' from ' || left(o.starts_at::varchar, 5))), ', ') as clash
    from placed as a
    inner join placed as o
        on o.vendor_id = a.vendor_id and o.tutor_id = a.tutor_id and o.session_date = a.session_date
        and o.student_key <> a.student_key
        and o.from_minute < a.to_minute and a.from_minute < o.to_minute
        and (o.school_id is distinct from a.school_id or o.starts_at <> a.starts_at)
    group by a.vendor_id, a.student_key, a.session_date, a.tutor_id
),

implausible as (
    select
        b.*,
        'plausibility' as check_name,
        concat_ws('; ',
            case when d.sessions is not null then d.sessions || ' sessions that day (at most ' || d.most || ')' end,
            case when b.attended_minutes > max_minutes
                then b.attended_minutes || ' minutes attended (at most ' || max_minutes || ')' end,
            t.clash
        ) as reason
    from booked as b
    left join crowded_days as d using (vendor_id, student_key, session_date)
    left join tutor_clashes as t using (vendor_id, student_key, session_date, tutor_id)
    where d.sessions is not null or b.attended_minutes > max_minutes or t.clash is not null
),

flags as (
    select * from calendar
    union all by name
    select * from rostered
    union all by name
    select * from not_enrolled
    union all by name
    select * from absent
    union all by name
    select * from implausible
),

-- Two reasons of one check on one session (off the roster and not enrolled that week) are one flag.
flagged as (
    select
        vendor_id, student_key, session_date, tutor_id, check_name,
        any_value(scheduled_minutes) as scheduled_minutes,
        any_value(attended_minutes) as attended_minutes,
        string_agg(reason, '; ' order by reason) as reason,
        concat_ws('|', vendor_id, student_key, session_date::varchar, tutor_id, check_name) as flag_key
    from flags
    group by vendor_id, student_key, session_date, tutor_id, check_name
),

decided as (
    select
        f.*,
        case
            when f.flag_key in (select unnest(accepted::varchar[])) then 'accepted'
            when f.flag_key in (select unnest(rejected::varchar[])) then 'rejected'
            else 'pending'
        end as decision
    from flagged as f
)

select
    vendor_id,
    student_key,
    session_date,
    tutor_id,
    check_name,
    reason,
    scheduled_minutes,
    attended_minutes,
    decision,
    decision = 'accepted' or (decision = 'pending' and list_contains(counted_checks::varchar[], check_name)) as counts,
    flag_key
from decided
order by vendor_id, check_name, session_date, student_key, tutor_id;
