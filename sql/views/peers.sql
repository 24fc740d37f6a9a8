-- peers: one row per period of one metric, pooled over every vendor but `own_vendor`: the
-- benchmark a vendor sees beside its own series, without any other vendor's name.
-- Peers are all the other vendors whatever vendor filter was asked for; the other filters apply.
-- `vendors` counts the other vendors with at least `min_cell` students in the period: a pool
-- that one vendor fills would be that vendor's own numbers, so the query layer hides it.
create or replace macro peers(
    metric,
    grain := 'week',
    own_vendor := null,
    start_date := null,
    end_date := null,
    filters := map{}::map(varchar, varchar[]),
    min_dosage_share := null,
    min_cell := 10
) as table
with others as (
    select map_concat(
        filters,
        -- An empty list when there is no other vendor: a missing key would mean every vendor.
        map {'vendor_id': coalesce(list(vendor_id order by vendor_id), [])::varchar[]}
    ) as peer_filters
    from vendors
    where vendor_id is distinct from own_vendor
),

pooled as (
    select *
    from series(
        metric,
        grain := grain,
        start_date := start_date,
        end_date := end_date,
        filters := (select peer_filters from others),
        min_dosage_share := min_dosage_share
    )
),

per_vendor as (
    select
        period_start,
        count(*) filter (where n >= min_cell) as vendors
    from panel(
        metric,
        grain := grain,
        by_dimension := 'vendor_id',
        start_date := start_date,
        end_date := end_date,
        filters := (select peer_filters from others),
        min_dosage_share := min_dosage_share
    )
    group by period_start
)

select
    pooled.period_start,
    pooled.value,
    pooled.n,
    pooled.numerator,
    pooled.denominator,
    pooled.sd,
    pooled.cell_key,
    coalesce(per_vendor.vendors, 0) as vendors
from pooled
left join per_vendor on per_vendor.period_start = pooled.period_start
order by pooled.period_start;
