-- choices: one row per value of each dimension within the scope, with its label and the
-- number of students; the filter bar offers exactly these. School years come too, with
-- their dates, and students = 0 for a year with no data yet. A school scope binds its
-- schools, as a vendor scope its vendor.
create or replace macro choices(scope_vendor := null, scope_schools := null) as table
with mine as (
    select s.*, v.name as vendor_name, k.name as school_name
    from students as s
    left join vendors as v using (vendor_id)
    left join schools as k using (school_id)
    where (scope_vendor is null or s.vendor_id = scope_vendor)
      and (scope_schools is null or list_contains(scope_schools, s.school_id))
),

yes_no as (
    select * from (values (true, 'Yes'), (false, 'No')) as t(flag, label)
),

found as (
    -- The district's students no vendor tutors are a vendor value of their own (ciboard.queries.NOT_TUTORED).
    select 'vendor_id' as dimension, coalesce(vendor_id, 'not tutored') as value,
        coalesce(any_value(vendor_name), 'Not tutored') as label, count(*) as students
    from mine group by vendor_id
    union all
    select 'school_id', school_id, any_value(school_name), count(*) from mine group by school_id
    union all
    select 'grade', grade::varchar, 'Grade ' || grade, count(*) from mine group by grade
    union all
    select 'race_ethnicity', race_ethnicity, race_ethnicity, count(*) from mine group by race_ethnicity
    union all
    select 'gender', gender, gender, count(*) from mine group by gender
    union all
    select 'econ_disadvantaged', econ_disadvantaged::varchar, any_value(y.label), count(*)
    from mine inner join yes_no as y on y.flag = mine.econ_disadvantaged group by econ_disadvantaged
    union all
    select 'english_learner', english_learner::varchar, any_value(y.label), count(*)
    from mine inner join yes_no as y on y.flag = mine.english_learner group by english_learner
    union all
    select 'special_education', special_education::varchar, any_value(y.label), count(*)
    from mine inner join yes_no as y on y.flag = mine.special_education group by special_education
    union all
    select 'baseline_band', baseline_band, baseline_band, count(*) from mine group by baseline_band
),

years as (
    select
        'school_year' as dimension,
        y.school_year as value,
        y.school_year as label,
        (select count(distinct student_key) from facts as f
         where f.period_start between y.starts_on and y.ends_on
           and (scope_vendor is null or f.vendor_id = scope_vendor)
           and (scope_schools is null or list_contains(scope_schools, f.school_id))) as students,
        y.starts_on,
        y.ends_on
    from school_years as y
),

-- An unknown value (a district student's vendor or English learning) is nothing to choose.
offered as (
    select *, null::date as starts_on, null::date as ends_on from found where value is not null
    union all
    select * from years
)

-- Sorted outside the union: DuckDB 1.5 orders a union by its output columns only, not by
-- expressions of them.
select * from offered
order by
    dimension,
    starts_on,
    -- Bands read from lowest to highest, grades numerically, everything else by label.
    case value when 'well below' then 1 when 'below' then 2 when 'near' then 3 when 'above' then 4 end,
    try_cast(value as integer),
    label;
