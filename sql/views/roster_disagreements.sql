-- roster_disagreements: one row per student and group where a vendor's roster states something
-- other than the district's student records. The records decide a student's groups; what a
-- roster still sends is kept only to be listed here. Each roster is read against the record in
-- force on the day it was received (the earliest record, for a roster received before any).
create or replace macro roster_disagreements(scope_vendor := null) as table
with claims as (
    select c.student_key, s.vendor_id, c.field, c.value, c.mapped, log.file_name, log.received_at
    from roster_claims as c
    -- A student's current roster only: a later one supersedes what an earlier one said.
    inner join students as s on s.student_key = c.student_key and s.batch_id = c.batch_id
    inner join submissions as log on log.batch_id = c.batch_id
    where scope_vendor is null or s.vendor_id = scope_vendor
),

in_force as (
    select
        c.*,
        d.as_of,
        case c.field
            when 'school_id' then d.school_id
            when 'grade' then d.grade::varchar
            when 'race_ethnicity' then d.race_ethnicity
            when 'gender' then d.gender
            when 'econ_disadvantaged' then case when d.econ_disadvantaged then 'Yes' else 'No' end
            when 'english_learner' then case when d.english_learner then 'Yes' else 'No' end
            when 'special_education' then case when d.special_education then 'Yes' else 'No' end
            when 'baseline_band' then d.baseline_band
        end as district_value
    from claims as c
    inner join district_students as d using (student_key)
    qualify row_number() over (
        partition by c.student_key, c.field
        order by d.as_of > c.received_at::date, abs(date_diff('day', d.as_of, c.received_at::date))
    ) = 1
)

select
    vendor_id,
    student_key,
    field,
    value as roster_value,
    district_value,
    as_of as record_as_of,
    file_name,
    received_at
from in_force
where mapped is distinct from district_value
order by vendor_id, student_key, field;
