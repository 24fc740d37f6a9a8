-- The follow-up lists beside absent_students: students someone should act on, in the caller's
-- scope. A vendor scope binds its own vendor id, as in scoped_facts; the roster list reads
-- students through scoped_students, the one place its scope is applied.

-- scoped_students: one row per rostered student the scope and filters allow.
create or replace macro scoped_students(
    scope_vendor := null,
    filters := map{}::map(varchar, varchar[])
) as table
select s.*
from students as s
where (scope_vendor is null or s.vendor_id = scope_vendor)
  and (filters['vendor_id'] is null or list_contains(filters['vendor_id'], s.vendor_id))
  and (filters['school_id'] is null or list_contains(filters['school_id'], s.school_id))
  and (filters['grade'] is null or list_contains(filters['grade'], s.grade::varchar))
  and (filters['race_ethnicity'] is null or list_contains(filters['race_ethnicity'], s.race_ethnicity))
  and (filters['gender'] is null or list_contains(filters['gender'], s.gender))
  and (filters['econ_disadvantaged'] is null or list_contains(filters['econ_disadvantaged'], s.econ_disadvantaged::varchar))
  and (filters['english_learner'] is null or list_contains(filters['english_learner'], s.english_learner::varchar))
  and (filters['special_education'] is null or list_contains(filters['special_education'], s.special_education::varchar))
  and (filters['baseline_band'] is null or list_contains(filters['baseline_band'], s.baseline_band));

-- not_growing: one row per student below the growth target at the latest assessment window
-- up to end_date who had attended tutoring by then. The target is the one met_growth_target
-- was derived with at ingest: the contract's SGP threshold, else the district's.
create or replace macro not_growing(
    scope_vendor := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[])
) as table
with latest_window as (
    select max(period_start) as window_start
    from facts
    where metric_id = 'met_growth_target' and (end_date is null or period_start <= end_date)
),

missed as (
    select f.student_key, f.vendor_id, f.school_id, f.grade, f.period_start as window_start
    from scoped_facts('met_growth_target', scope_vendor := scope_vendor, filters := filters) as f, latest_window as w
    where f.period_start = w.window_start and f.value = 0
),

sgp as (
    select student_key, value as sgp
    from facts, latest_window as w
    where metric_id = 'sgp' and period_start = w.window_start
),

-- Served: a session attended on or before the day the list is read.
served as (
    select student_key, min(session_date) as served_on
    from sessions
    where attended_minutes > 0 and (end_date is null or session_date <= end_date)
      and (scope_vendor is null or vendor_id = scope_vendor)
    group by student_key
)

select m.student_key, m.vendor_id, m.school_id, m.grade, m.window_start, g.sgp::integer as sgp, s.served_on
from missed as m
inner join served as s using (student_key)
left join sgp as g using (student_key)
order by g.sgp nulls first, m.student_key;

-- not_yet_served: one row per student on a roster for at least `weeks` weeks by end_date, not
-- exited by then, with no attended session up to end_date.
create or replace macro not_yet_served(
    weeks := 3,
    scope_vendor := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[])
) as table
with until as (
    select coalesce(end_date, (select max(session_date) from sessions)) as day
),

attended as (
    select distinct student_key
    from sessions, until
    where attended_minutes > 0 and session_date <= until.day
)

select
    s.student_key,
    s.vendor_id,
    s.school_id,
    s.grade,
    s.enrolled_on,
    ((until.day - s.enrolled_on) // 7)::integer as weeks_on_roster
from scoped_students(scope_vendor := scope_vendor, filters := filters) as s, until
where s.vendor_id is not null  -- a student no vendor has rostered (not tutored) waits for no session
  and s.enrolled_on <= until.day - 7 * weeks
  and (s.exited_on is null or s.exited_on > until.day)
  and s.student_key not in (select student_key from attended)
order by s.enrolled_on, s.student_key;

-- follow_up_counts: one row per list, how many students it holds in the scope. The query layer
-- hides a small count from a scope that may not see the students themselves, and puts the
-- cell-key noise on the others (cell_key: the students' record keys combined, as in panel).
create or replace macro follow_up_counts(
    max_rate,
    weeks := 4,
    unserved_weeks := 3,
    scope_vendor := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[])
) as table
select 'absent' as list, count(*) as students, bit_xor(hash(a.student_key, k.secret)) as cell_key
from absent_students(max_rate, weeks := weeks, scope_vendor := scope_vendor, end_date := end_date, filters := filters) as a
cross join privacy_key as k
union all
select 'not_growing', count(*), bit_xor(hash(g.student_key, k.secret))
from not_growing(scope_vendor := scope_vendor, end_date := end_date, filters := filters) as g
cross join privacy_key as k
union all
select 'not_yet_served', count(*), bit_xor(hash(u.student_key, k.secret))
from not_yet_served(weeks := unserved_weeks, scope_vendor := scope_vendor, end_date := end_date, filters := filters) as u
cross join privacy_key as k;

-- followed_student: the one student asked for, if the scope may follow it up.
create or replace macro followed_student(student, scope_vendor := null, scope_schools := null) as table
select student_key, vendor_id, school_id
from scoped_students(scope_vendor := scope_vendor)
where student_key = student
  and (scope_schools is null or list_contains(scope_schools, school_id));
