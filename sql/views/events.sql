-- events: one row per annotation a chart of this scope should mark, within the dates.
-- A vendor sees district-wide events and its own, never another vendor's.
create or replace macro events(scope_vendor := null, start_date := null, end_date := null) as table
select starts_on, ends_on, kind, title, description, vendor_id, school_id, metric_id
from annotations
where (scope_vendor is null or vendor_id is null or vendor_id = scope_vendor)
  and (start_date is null or ends_on >= start_date)
  and (end_date is null or starts_on <= end_date)
order by starts_on, title;
