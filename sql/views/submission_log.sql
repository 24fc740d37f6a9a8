-- submission_log: every file received, newest first. What it covered, whether it landed, was
-- rejected or later replaced, whether it came after its due date, and whether it is a vendor's
-- weekly file (sessions, exit tickets) for dates no contract of that vendor reaches (its rows
-- count toward no payment, and no schedule of quality expects it, so this is where it shows).
create or replace macro submission_log(scope_vendor := null, start_date := null, end_date := null) as table
with logged as (
    select
        s.batch_id,
        s.received_at,
        s.vendor_id,
        s.kind,
        s.file_name,
        s.period_start,
        s.period_end,
        s.due_on,
        s.status,
        s.rows_accepted,
        s.rows_rejected,
        s.replaces_batch_id,
        later.batch_id as replaced_by,
        -- Only a landed file's rows can count or not. Only the weekly feeds are dated activity a
        -- contract pays for: a roster's dates are when its students enrolled, which may come
        -- before the contract starts.
        s.status = 'accepted'
            and coalesce(k.source = 'vendor' and k.cadence = 'weekly', false)
            and s.vendor_id is not null
            and s.period_start is not null
            and not exists (
                select 1
                from contracts as c
                where c.vendor_id = s.vendor_id
                  and c.starts_on <= coalesce(s.period_end, s.period_start)
                  and c.ends_on >= s.period_start
            ) as outside_contract
    from submissions as s
    left join submission_kinds as k on k.kind = s.kind
    left join submissions as later on later.replaces_batch_id = s.batch_id and later.status <> 'rejected'
    where (scope_vendor is null or s.vendor_id = scope_vendor)
      -- A file about the dates asked for, or received in them: today's upload of an older week shows.
      and (
          s.received_at::date between coalesce(start_date, date '0001-01-01') and coalesce(end_date, date '9999-12-31')
          or (s.period_start <= coalesce(end_date, date '9999-12-31')
              and coalesce(s.period_end, s.period_start) >= coalesce(start_date, date '0001-01-01'))
      )
)

-- A file no contract expects is neither on time nor late.
select
    * exclude (outside_contract),
    case
        when outside_contract or due_on is null then null
        when received_at::date > due_on then 'late'
        else 'on time'
    end as timeliness,
    outside_contract
from logged
order by received_at desc, batch_id desc;
