-- breakdown: one row per value of one dimension (or per pair of values of two) of one metric.
create or replace macro breakdown(
    metric,
    by_dimension,
    by_dimension_2 := null,
    scope_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null
) as table
select group_1, group_2, value, n, numerator, denominator, sd, cell_key
from panel(
    metric,
    by_dimension := by_dimension,
    by_dimension_2 := by_dimension_2,
    scope_vendor := scope_vendor,
    start_date := start_date,
    end_date := end_date,
    filters := filters,
    min_dosage_share := min_dosage_share
)
order by group_1, group_2;
