-- payments: one row per vendor contract and payment outcome (rate-card line): what the
-- contract has earned up to `as_of`. Base amount, total and cap belong to the contract,
-- so they repeat on each of its lines; add up outcome_amount, not amount_earned.
create or replace macro payments(scope_vendor := null, as_of := null) as table
with lines as (
    select
        c.*,
        least(c.ends_on, coalesce(as_of, c.ends_on)) as counted_until,
        m.aggregation,
        m.frequency,
        m.better
    from contracts as c
    inner join metrics as m on m.metric_id = c.payment_metric
    where scope_vendor is null or c.vendor_id = scope_vendor
),

contracts_in_scope as (
    select distinct vendor_id, starts_on, ends_on, counted_until, base_per_student, cap from lines
),

-- A student counts as served once they attend a session within the contract dates;
-- ingest keeps each student's first such session in contract_served.
served as (
    select c.vendor_id, c.starts_on, cs.student_key
    from contracts_in_scope as c
    inner join contract_served as cs
        on cs.vendor_id = c.vendor_id
        and cs.starts_on = c.starts_on
        and cs.first_attended_on <= c.counted_until
),

served_counts as (
    select vendor_id, starts_on, count(*) as students_served from served group by all
),

-- Window outcomes (SGP) pay on the latest result; weekly outcomes on the whole period.
student_outcomes as (
    select
        l.vendor_id,
        l.starts_on,
        l.payment_metric,
        f.student_key,
        case
            when any_value(l.frequency) = 'window' then arg_max(f.value, f.period_start)
            when any_value(l.aggregation) = 'rate' then sum(f.value) / nullif(sum(f.denominator), 0)
            else avg(f.value)
        end as outcome,
        any_value(l.threshold) as threshold,
        any_value(l.better) as better
    from lines as l
    inner join facts as f
        on f.vendor_id = l.vendor_id
        and f.metric_id = l.payment_metric
        and f.period_start between l.starts_on and l.counted_until
    inner join served as s
        on s.vendor_id = l.vendor_id and s.starts_on = l.starts_on and s.student_key = f.student_key
    group by l.vendor_id, l.starts_on, l.payment_metric, f.student_key
),

line_counts as (
    select
        vendor_id,
        starts_on,
        payment_metric,
        count(*) as students_eligible,
        count(*) filter (
            where (better = 'higher' and outcome >= threshold) or (better = 'lower' and outcome <= threshold)
        ) as students_successful
    from student_outcomes
    group by all
),

per_line as (
    select
        l.vendor_id,
        l.payment_metric,
        l.threshold,
        l.starts_on as contract_starts_on,
        l.ends_on as contract_ends_on,
        l.counted_until,
        coalesce(s.students_served, 0) as students_served,
        coalesce(c.students_eligible, 0) as students_eligible,
        coalesce(c.students_successful, 0) as students_successful,
        l.base_per_student,
        l.outcome_per_student,
        coalesce(s.students_served, 0) * l.base_per_student as base_amount,
        coalesce(c.students_successful, 0) * l.outcome_per_student as outcome_amount,
        l.cap
    from lines as l
    left join served_counts as s on s.vendor_id = l.vendor_id and s.starts_on = l.starts_on
    left join line_counts as c
        on c.vendor_id = l.vendor_id and c.starts_on = l.starts_on and c.payment_metric = l.payment_metric
),

with_totals as (
    select
        *,
        base_amount + sum(outcome_amount) over contract as amount_uncapped
    from per_line
    window contract as (partition by vendor_id, contract_starts_on)
)

select
    vendor_id,
    payment_metric,
    threshold,
    contract_starts_on,
    contract_ends_on,
    counted_until,
    students_served,
    students_eligible,
    students_successful,
    base_per_student,
    outcome_per_student,
    base_amount,
    outcome_amount,
    amount_uncapped,
    cap,
    case when cap is not null and amount_uncapped > cap then cap else amount_uncapped end as amount_earned,
    coalesce(cap is not null and amount_uncapped > cap, false) as cap_applied
from with_totals
order by vendor_id, contract_starts_on, payment_metric;
