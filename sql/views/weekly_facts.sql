-- weekly_facts: one row per fact of one metric in the scope and filters, with its week and
-- every dimension as text (dimension_value) and its student's cell-key hash: what a panel
-- aggregates. The query layer groups it by several groupings in one pass (queries.panels and
-- breakdowns), where the signals and the gaps would run the panel once per grouping.
create or replace macro weekly_facts(
    metric,
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
with aggregation as (
    select any_value(aggregation) as aggregation from metrics where metric_id = metric
)

select
    w.week_start as period_start,
    aggregation.aggregation,
    f.student_key,
    hash(f.student_key, k.secret) as student_hash,
    f.value,
    f.denominator,
    -- As in panel: only a mean's interval needs the spread of single values.
    case when aggregation.aggregation = 'mean' then f.value end as mean_value,
    dimension_value('vendor_id', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as vendor_id,
    dimension_value('school_id', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as school_id,
    dimension_value('grade', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as grade,
    dimension_value('race_ethnicity', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as race_ethnicity,
    dimension_value('gender', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as gender,
    dimension_value('econ_disadvantaged', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as econ_disadvantaged,
    dimension_value('english_learner', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as english_learner,
    dimension_value('special_education', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as special_education,
    dimension_value('baseline_band', f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
        f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as baseline_band
from scoped_facts(
    metric,
    scope_vendor := scope_vendor,
    start_date := start_date,
    end_date := end_date,
    filters := filters,
    min_dosage_share := min_dosage_share
) as f
inner join calendar_weeks as w on w.week_start = f.period_start
cross join aggregation
cross join privacy_key as k;
