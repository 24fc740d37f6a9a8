-- series: one row per period (week, month or assessment window) of one metric.
create or replace macro series(
    metric,
    grain := 'week',
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
select period_start, value, n, numerator, denominator, sd, cell_key
from panel(
    metric,
    grain := grain,
    scope_vendor := scope_vendor,
    start_date := start_date,
    end_date := end_date,
    filters := filters,
    min_dosage_share := min_dosage_share
)
order by period_start;
