-- student_values: one row per student with a value of `metric` over the dates, and of
-- metric_y where the student has one (y is null otherwise: a student no vendor tutors has
-- school attendance but no tutoring), each aggregated as its metric aggregates. Student rows:
-- analysts only.
create or replace macro student_values(
    metric,
    metric_y,
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
with both_metrics as (
    select f.*, m.aggregation
    from (
        select * from scoped_facts(metric, scope_vendor := scope_vendor, start_date := start_date,
            end_date := end_date, filters := filters, min_dosage_share := min_dosage_share)
        union all
        select * from scoped_facts(metric_y, scope_vendor := scope_vendor, start_date := start_date,
            end_date := end_date, filters := filters, min_dosage_share := min_dosage_share)
    ) as f
    inner join metrics as m using (metric_id)
),

per_student as (
    select
        student_key,
        metric_id,
        coalesce(any_value(vendor_id), 'not tutored') as vendor_id,  -- as the breakdowns name them
        any_value(school_id) as school_id,
        any_value(grade) as grade,
        any_value(race_ethnicity) as race_ethnicity,
        any_value(gender) as gender,
        any_value(econ_disadvantaged) as econ_disadvantaged,
        any_value(english_learner) as english_learner,
        any_value(special_education) as special_education,
        any_value(baseline_band) as baseline_band,
        metric_value(aggregation, value, denominator) as value
    from both_metrics
    group by student_key, metric_id, aggregation
)

select
    x.student_key, x.vendor_id, x.school_id, x.grade, x.race_ethnicity, x.gender,
    x.econ_disadvantaged, x.english_learner, x.special_education, x.baseline_band,
    x.value as x, y.value as y
from per_student as x
left join per_student as y on y.student_key = x.student_key and y.metric_id = metric_y
where x.metric_id = metric and metric <> metric_y
order by x.student_key;
