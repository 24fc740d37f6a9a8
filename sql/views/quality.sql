-- quality: one row per vendor, submission kind and period: when it was due, when it came,
-- and whether it was on time, late, missing or rejected.
create or replace macro quality(scope_vendor := null, start_date := null, end_date := null, as_of := null) as table
with contract_spans as (
    select vendor_id, min(starts_on) as starts_on, max(ends_on) as ends_on
    from contracts
    group by vendor_id
),

-- Every weekly vendor submission a contract asks for, once its due date has passed. Weeks
-- a break annotation covers (Monday to Friday) ask for nothing.
expected as (
    select
        c.vendor_id,
        k.kind,
        w.week_start as period_start,
        w.week_start + 6 as period_end,
        w.week_start + 6 + k.due_days as due_on
    from contract_spans as c
    inner join submission_kinds as k on k.source = 'vendor' and k.cadence = 'weekly'
    inner join calendar_weeks as w on w.week_start between c.starts_on and c.ends_on
    where w.week_start + 6 + k.due_days < coalesce(as_of, current_date)
      and not exists (
          select 1
          from annotations as a
          where a.kind = 'break'
            and a.starts_on <= w.week_start
            and a.ends_on >= w.week_start + 4
            and (a.vendor_id is null or a.vendor_id = c.vendor_id)
      )
),

-- The first accepted file covering a week decides timeliness; a later correction does not
-- make a week late.
expected_status as (
    select
        e.vendor_id,
        e.kind,
        e.period_start,
        e.period_end,
        e.due_on,
        min(s.received_at) filter (where s.status in ('accepted', 'replaced')) as received_at,
        bool_or(s.status = 'rejected') as had_rejection,
        sum(s.rows_accepted) filter (where s.status = 'accepted') as rows_accepted,
        sum(s.rows_rejected) filter (where s.status = 'rejected') as rows_rejected,
        max(s.batch_id) filter (where s.status = 'accepted') as batch_id
    from expected as e
    left join submissions as s
        on s.vendor_id = e.vendor_id
        and s.kind = e.kind
        and s.period_start <= e.period_end
        and s.period_end >= e.period_start
    group by all
),

expected_rows as (
    select
        vendor_id,
        kind,
        period_start,
        period_end,
        due_on,
        received_at,
        case
            when received_at is null and had_rejection then 'rejected'
            when received_at is null then 'missing'
            when received_at::date > due_on then 'late'
            else 'on time'
        end as status,
        coalesce(rows_accepted, 0) as rows_accepted,
        coalesce(rows_rejected, 0) as rows_rejected,
        batch_id
    from expected_status
),

-- Submissions on no weekly schedule (rosters, district files) are judged on their own due date.
logged_rows as (
    select
        s.vendor_id,
        s.kind,
        s.period_start,
        s.period_end,
        s.due_on,
        s.received_at,
        case
            when s.status = 'rejected' then 'rejected'
            when s.received_at::date > s.due_on then 'late'
            else 'on time'
        end as status,
        s.rows_accepted,
        s.rows_rejected,
        s.batch_id
    from submissions as s
    inner join submission_kinds as k on k.kind = s.kind
    where k.source <> 'reference'
      and not (k.source = 'vendor' and k.cadence = 'weekly')
      and s.status <> 'replaced'
),

all_rows as (
    select * from expected_rows
    union all
    select * from logged_rows
)

select *
from all_rows
where (scope_vendor is null or vendor_id = scope_vendor)
  and (start_date is null or period_start >= start_date)
  and (end_date is null or period_start <= end_date)
order by vendor_id nulls first, kind, period_start;
