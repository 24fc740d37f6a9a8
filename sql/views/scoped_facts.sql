-- scoped_facts: one row per fact of one metric that the caller's scope and filters allow.
-- Every view reads facts through here (and panel their sums per student and school year through
-- in_scope, below), so the vendor scope cannot be left out: a vendor scope binds its own vendor
-- id, and no filter can widen it.
-- `filters` maps a dimension name to the values allowed, as text ('true', '3', 'Hispanic');
-- the query layer checks the names against its closed list before binding them.
create or replace macro scoped_facts(
    metric,
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
select f.*
from facts as f
where f.metric_id = metric
  and (start_date is null or f.period_start >= start_date)
  and (end_date is null or f.period_start <= end_date)
  and in_scope(scope_vendor, filters, min_dosage_share, f.student_key, f.vendor_id, f.school_id, f.grade,
      f.race_ethnicity, f.gender, f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band);

-- Whether a row of a student with these groups is in the caller's scope and filters: the rows of
-- facts, and of student_year_sums (which panel reads for whole school years).
create or replace macro in_scope(
    scope_vendor, filters, min_dosage_share, student_key, vendor_id, school_id, grade, race_ethnicity, gender,
    econ_disadvantaged, english_learner, special_education, baseline_band
) as
    (scope_vendor is null or vendor_id = scope_vendor)
    -- Students in the district's records whom no vendor tutors are the vendor value 'not tutored';
    -- a vendor scope never reaches them, its own vendor id being bound above.
    and (filters['vendor_id'] is null or list_contains(filters['vendor_id'], coalesce(vendor_id, 'not tutored')))
    and (filters['school_id'] is null or list_contains(filters['school_id'], school_id))
    and (filters['grade'] is null or list_contains(filters['grade'], grade::varchar))
    and (filters['race_ethnicity'] is null or list_contains(filters['race_ethnicity'], race_ethnicity))
    and (filters['gender'] is null or list_contains(filters['gender'], gender))
    and (filters['econ_disadvantaged'] is null or list_contains(filters['econ_disadvantaged'], econ_disadvantaged::varchar))
    and (filters['english_learner'] is null or list_contains(filters['english_learner'], english_learner::varchar))
    and (filters['special_education'] is null or list_contains(filters['special_education'], special_education::varchar))
    and (filters['baseline_band'] is null or list_contains(filters['baseline_band'], baseline_band))
    -- Outcomes can be read for just the students who got the tutoring the contract asks for.
    and (
        min_dosage_share is null
        or student_key in (select d.student_key from student_dosage as d where d.share_met >= min_dosage_share)
    );

-- The dimension a breakdown groups by, as text; names outside the closed list give null.
-- It takes the columns one by one: given the row, DuckDB would pack every column of it
-- into a struct per fact, which doubled the time of a breakdown.
create or replace macro dimension_value(
    name, vendor_id, school_id, grade, race_ethnicity, gender,
    econ_disadvantaged, english_learner, special_education, baseline_band
) as
    case name
        when 'vendor_id' then coalesce(vendor_id, 'not tutored')
        when 'school_id' then school_id
        when 'grade' then grade::varchar
        when 'race_ethnicity' then race_ethnicity
        when 'gender' then gender
        when 'econ_disadvantaged' then econ_disadvantaged::varchar
        when 'english_learner' then english_learner::varchar
        when 'special_education' then special_education::varchar
        when 'baseline_band' then baseline_band
    end;

-- How a metric's facts aggregate, from the data map: a pooled rate is sum/sum, a mean
-- and a proportion (of 0/1 values) are plain averages, a median (growth percentiles) is
-- the median. Numerator and denominator are what a p-chart or an interval needs; for a
-- mean or a median the denominator counts observations.
-- A case evaluates every aggregate in it; the filters keep the ones not needed (a median
-- is costly) from seeing any rows.
create or replace macro metric_value(aggregation, value, denominator) as
    case aggregation
        when 'rate' then sum(value) filter (where aggregation = 'rate') / nullif(sum(denominator), 0)
        when 'median' then median(value) filter (where aggregation = 'median')
        else avg(value) filter (where aggregation not in ('rate', 'median'))
    end;

create or replace macro metric_denominator(aggregation, denominator) as
    case aggregation when 'rate' then sum(denominator) else count(*) end;

-- The sample standard deviation (n - 1), the same to the last digit on every run.
-- stddev_samp, like any sum of doubles, adds in whatever order the threads finish, so its
-- last digits change from run to run, and a number on a page or in a packet must not.
-- Values are summed as exact integers instead (units of 1e-9, which the sums hold for
-- n * value^2 < 1.7e20) in any order. The squared deviations
-- sum(x - mean)^2 = squares - total^2 / n are taken apart around the integer part q of the
-- mean (total = n * q + r): squares - n*q^2 - 2*q*r is exact, and only r^2 / n < n is
-- left to floating point, so there is no cancellation however far the mean is from zero.
create or replace macro sample_sd_from_sums(n, total, squares) as
    case when n >= 2 then
        sqrt(greatest(0,
            (squares - n * (total // n) * (total // n) - 2 * (total // n) * (total - n * (total // n)))::double
            - (total - n * (total // n))::double * (total - n * (total // n))::double / n
        ) / (n - 1)) / 1e9
    end;

create or replace macro sample_sd(x) as
    sample_sd_from_sums(
        count(x),
        sum((x * 1e9)::hugeint),
        sum((x * 1e9)::hugeint * (x * 1e9)::hugeint)
    );
