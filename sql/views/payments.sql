-- payment_students: one row per rate-card line and student on its vendor's roster: what the
-- line's rules read, counted up to `as_of` (service within the contract dates, enrolment,
-- dosage, the results in the windows the outcome needs). ciboard.payments applies the rules
-- and the money; nothing here decides who is paid. Only sessions that pass the district-record
-- checks, or whose flags count (session_checks), are service: a session on a snow day earns nothing.
--
-- A contract is judged per contract year: each school year its dates reach, from the later of
-- the contract's and the year's start to the earlier of their ends. starts_on and ends_on below
-- are that year's (a contract within one school year keeps its own dates); the contract's whole
-- dates are contract_from and contract_to. A line naming a school_year holds that year's terms,
-- a line naming none the terms of every year. So a student is served, judged and capped once per
-- contract year, on that year's windows.
create or replace macro payment_students(
    scope_vendor := null, as_of := null, max_per_day := 2, max_minutes := 120,
    counted_checks := [], accepted := [], rejected := []
) as table
with contract_years as (
    select
        c.* exclude (starts_on, ends_on, school_year),
        c.starts_on as contract_from,
        c.ends_on as contract_to,
        greatest(c.starts_on, coalesce(y.starts_on, c.starts_on)) as starts_on,
        least(c.ends_on, coalesce(y.ends_on, c.ends_on)) as ends_on,
        y.school_year
    from contracts as c
    left join school_years as y
        on y.starts_on <= c.ends_on and y.ends_on >= c.starts_on
        and (c.school_year is null or c.school_year = y.school_year)
    where scope_vendor is null or c.vendor_id = scope_vendor
),

lines as (
    select
        c.*,
        least(c.ends_on, coalesce(as_of, c.ends_on)) as counted_until,
        m.frequency,
        m.aggregation,
        m.better
    from contract_years as c
    inner join metrics as m on m.metric_id = c.payment_metric
),

contract_terms as (
    select distinct vendor_id, starts_on, counted_until, served_by, served_min from lines
),

not_counted as (
    select distinct vendor_id, student_key, session_date, tutor_id
    from session_checks(
        scope_vendor := scope_vendor, end_date := as_of, max_per_day := max_per_day, max_minutes := max_minutes,
        counted_checks := counted_checks, accepted := accepted, rejected := rejected
    )
    where not counts
),

booked as (
    select c.vendor_id, c.starts_on, s.student_key, s.session_date, s.attended_minutes
    from contract_terms as c
    inner join sessions as s
        on s.vendor_id = c.vendor_id and s.session_date between c.starts_on and c.counted_until
    anti join not_counted as n
        on n.vendor_id = s.vendor_id and n.student_key = s.student_key
        and n.session_date = s.session_date and n.tutor_id = s.tutor_id
),

-- A week meets the dosage standard with three attended sessions of 30 minutes or more (as
-- dosage_met does); it counts from the day of its third such session.
dosage_weeks as (
    select vendor_id, starts_on, student_key, list_sort(list(session_date))[3] as met_on
    from booked
    where attended_minutes >= 30
    group by vendor_id, starts_on, student_key, date_trunc('week', session_date)
    having count(*) >= 3
),

-- The day a student met the contract's served rule: the N-th attended session, the N-th week
-- meeting the dosage standard, or (for minutes, the one rule that needs a running total) the
-- session whose minutes reach N. Aggregates, not a window over every session, where they can.
attended as (
    select
        vendor_id,
        starts_on,
        student_key,
        count(*) filter (where attended_minutes > 0) as sessions_attended,
        sum(attended_minutes) as minutes_attended,
        count(distinct date_trunc('week', session_date)) as weeks_tutored,
        list_sort(list(session_date) filter (where attended_minutes > 0)) as attended_days
    from booked
    group by all
),

met_weeks as (
    select vendor_id, starts_on, student_key, count(*) as dosage_weeks, list_sort(list(met_on)) as met_days
    from dosage_weeks
    group by all
),

minutes_reached as (
    select vendor_id, starts_on, student_key, min(session_date) filter (where so_far >= served_min) as reached_on
    from (
        select
            b.*,
            c.served_min,
            sum(b.attended_minutes) over (
                partition by b.vendor_id, b.starts_on, b.student_key order by b.session_date rows unbounded preceding
            ) as so_far
        from booked as b
        inner join contract_terms as c using (vendor_id, starts_on)
        where c.served_by = 'minutes' and b.attended_minutes > 0
    )
    group by all
),

service as (
    select
        a.vendor_id,
        a.starts_on,
        a.student_key,
        a.sessions_attended,
        a.minutes_attended,
        a.weeks_tutored,
        coalesce(w.dosage_weeks, 0) as dosage_weeks,
        case c.served_by
            when 'sessions' then a.attended_days[ceil(c.served_min)::integer]
            when 'dosage_weeks' then w.met_days[ceil(c.served_min)::integer]
            else m.reached_on
        end as served_on
    from attended as a
    inner join contract_terms as c using (vendor_id, starts_on)
    left join met_weeks as w using (vendor_id, starts_on, student_key)
    left join minutes_reached as m using (vendor_id, starts_on, student_key)
),

windows as (
    select school_year, window_name, min(week_start) as window_starts_on, max(week_start) + 6 as window_ends_on
    from calendar_weeks
    group by all
),

-- A result in a named window: the student's latest in that window of the contract's school year.
window_results as (
    select l.vendor_id, l.starts_on, l.payment_metric, f.student_key, w.window_name, arg_max(f.value, f.period_start) as value
    from lines as l
    inner join facts as f on f.vendor_id = l.vendor_id and f.metric_id = l.payment_metric
    inner join calendar_weeks as w on w.week_start = f.period_start and w.school_year = l.school_year
    where l.outcome_window is not null
      and w.window_name in (l.outcome_window, l.from_window)
      and f.period_start <= l.counted_until
    group by all
),

-- A line with no named window keeps the older meaning: a window metric's latest result in the
-- contract dates; a weekly metric over the whole contract (pooled if a rate).
latest_results as (
    select
        l.vendor_id,
        l.starts_on,
        l.payment_metric,
        f.student_key,
        case
            when any_value(l.frequency) = 'window' then arg_max(f.value, f.period_start)
            when any_value(l.aggregation) = 'rate' then sum(f.value) / nullif(sum(f.denominator), 0)
            else avg(f.value)
        end as value
    from lines as l
    inner join facts as f
        on f.vendor_id = l.vendor_id
        and f.metric_id = l.payment_metric
        and f.period_start between l.starts_on and l.counted_until
    where l.outcome_window is null
    group by all
)

select
    l.vendor_id,
    l.payment_metric,
    l.threshold,
    l.starts_on as contract_starts_on,
    l.ends_on as contract_ends_on,
    l.school_year as contract_year,
    l.contract_from,
    l.contract_to,
    l.counted_until,
    l.batch_id as terms_batch,
    l.served_by,
    l.served_min,
    l.success,
    l.outcome_window,
    l.from_window,
    l.enrolled_by,
    l.min_dosage_share,
    l.base_per_student::double as base_per_student,
    l.outcome_per_student::double as outcome_per_student,
    l.student_cap::double as student_cap,
    l.cap::double as cap,
    l.base_schedule,
    l.max_sessions_per_day,
    l.better,
    -- The outcome can be judged once the last window it needs has closed (or the contract has ended).
    least(coalesce(ow.window_ends_on, l.ends_on), l.ends_on) as outcome_known_on,
    st.student_key as student_id,
    st.enrolled_on,
    coalesce(sv.sessions_attended, 0) as sessions_attended,
    coalesce(sv.minutes_attended, 0) as minutes_attended,
    coalesce(sv.dosage_weeks, 0) as dosage_weeks,
    coalesce(sv.weeks_tutored, 0) as weeks_tutored,
    sv.served_on,
    coalesce(wr.value, lr.value) as outcome_value,
    fr.value as from_value
from lines as l
-- A line with no student yet still shows, as one row without a student.
left join students as st on st.vendor_id = l.vendor_id and st.enrolled_on <= l.ends_on
left join service as sv on sv.vendor_id = l.vendor_id and sv.starts_on = l.starts_on and sv.student_key = st.student_key
left join windows as ow on ow.school_year = l.school_year and ow.window_name = l.outcome_window
left join window_results as wr
    on wr.vendor_id = l.vendor_id and wr.starts_on = l.starts_on and wr.payment_metric = l.payment_metric
    and wr.student_key = st.student_key and wr.window_name = l.outcome_window
left join window_results as fr
    on fr.vendor_id = l.vendor_id and fr.starts_on = l.starts_on and fr.payment_metric = l.payment_metric
    and fr.student_key = st.student_key and fr.window_name = l.from_window
left join latest_results as lr
    on lr.vendor_id = l.vendor_id and lr.starts_on = l.starts_on and lr.payment_metric = l.payment_metric
    and lr.student_key = st.student_key
order by l.vendor_id, l.starts_on, l.payment_metric, st.student_key;
