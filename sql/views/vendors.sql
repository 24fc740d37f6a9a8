-- vendors: one row per vendor of one metric over a date range.
create or replace macro vendors(
    metric,
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
select
    group_1 as vendor_id,
    value,
    n,
    numerator,
    denominator,
    sd,
    cell_key
from breakdown(
    metric,
    'vendor_id',
    scope_vendor := scope_vendor,
    start_date := start_date,
    end_date := end_date,
    filters := filters,
    min_dosage_share := min_dosage_share
)
order by vendor_id;
