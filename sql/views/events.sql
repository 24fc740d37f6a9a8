-- events: one row per annotation a chart of this scope and slice should mark, within the dates.
-- A vendor sees district-wide events and its own, never another vendor's. An event tied to a
-- vendor, school or metric belongs only on charts that hold it: V1's schedule change says
-- nothing about V3's chart, nor about a metric it did not touch.
create or replace macro events(
    scope_vendor := null,
    start_date := null,
    end_date := null,
    metric := null,
    filters := map{}::map(varchar, varchar[])
) as table
select starts_on, ends_on, kind, title, description, vendor_id, school_id, metric_id
from annotations
where (scope_vendor is null or vendor_id is null or vendor_id = scope_vendor)
  and (start_date is null or ends_on >= start_date)
  and (end_date is null or starts_on <= end_date)
  and (metric is null or metric_id is null or metric_id = metric)
  and (vendor_id is null or filters['vendor_id'] is null or list_contains(filters['vendor_id'], vendor_id))
  and (school_id is null or filters['school_id'] is null or list_contains(filters['school_id'], school_id))
order by starts_on, title;
