-- Metrics without code: every edit of the data map is a version kept for good. `metrics` stays
-- the current definition the views read (labels, directions, aggregation); these tables say who
-- changed it, when and from what, and hold the targets a single number cannot. Only
-- ciboard.metric_edits writes them, appending through the warehouse's publish, so a version once
-- published never changes (DuckDB has no triggers; the versioned files are the guard).

-- One row per saved definition of a metric, numbered from 1; the current one is the latest,
-- and a retired metric's last version says so. A metric seeded or loaded before its first edit
-- gets that definition as its version 1, saved by the data map itself.
create table metric_versions (
    metric_id    varchar not null,
    version      integer not null,
    label        varchar not null,
    kind         varchar not null,
    unit         varchar not null,
    aggregation  varchar not null,
    better       varchar not null,
    frequency    varchar not null,
    definition   varchar not null,
    instrument   varchar not null,
    source       varchar not null,
    timing       varchar not null,
    accuracy     varchar not null,
    target       double,
    submitted_as varchar not null,
    derived_by   varchar,           -- how the values are made: a kind's derivation or an import profile's
    retired      boolean not null,
    saved_by     varchar not null,  -- the account, or the command line's operator
    saved_at     timestamp not null,
    note         varchar,           -- why, as the editor said it
    primary key (metric_id, version)
);

-- Targets beyond the district's default: for a school year, for a vendor, or both. A vendor's
-- contract threshold is read from its rate card, not copied here. Saved with the metric's version
-- that set them; the targets in force are those of the latest version.
create table metric_targets (
    metric_id   varchar not null,
    version     integer not null,
    school_year varchar,   -- null: every school year
    vendor_id   varchar,   -- null: every vendor
    target      double not null
);

-- A gap to close: the group's gap to its reference group on this metric should be no wider than
-- `gap` (in the metric's unit), e.g. English learners to 3 points of the others.
create table metric_gap_targets (
    metric_id   varchar not null,
    version     integer not null,
    dimension   varchar not null,
    group_value varchar not null,
    reference   varchar not null,
    gap         double not null,
    school_year varchar    -- null: every school year
);
