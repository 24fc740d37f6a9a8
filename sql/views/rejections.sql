-- rejections: one row per problem of a rejected submission, with the file it was in.
create or replace macro rejections(scope_vendor := null, start_date := null, end_date := null) as table
select
    s.batch_id,
    s.vendor_id,
    s.kind,
    s.file_name,
    s.received_at,
    e.row_number,
    e.column_name,
    e.value,
    e.reason
from submissions as s
inner join submission_errors as e using (batch_id)
where s.status = 'rejected'
  and (scope_vendor is null or s.vendor_id = scope_vendor)
  and (start_date is null or s.received_at::date >= start_date)
  and (end_date is null or s.received_at::date <= end_date)
order by s.received_at desc, e.row_number, e.column_name;
