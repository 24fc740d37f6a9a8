-- Facts in the order they are now written (warehouse.FACTS_ORDER: by metric, student, week). Every
-- view reads one metric, and a block of rows records its smallest and largest metric: a view
-- now skips the blocks of the other metrics, where before a block mixed a kind's metrics and a
-- view read up to all the facts. And it groups a metric's facts per student faster with each
-- student's weeks side by side. Written out as migration 015 wrote student_dosage, with the
-- same columns and constraints (migration 005 let a district student's groups be null).
create table facts_in_metric_order (
    metric_id          varchar not null,
    period_start       date not null,
    student_key        varchar not null,
    vendor_id          varchar,
    school_id          varchar not null,
    grade              integer not null,
    race_ethnicity     varchar not null,
    gender             varchar not null,
    econ_disadvantaged boolean,
    english_learner    boolean,
    special_education  boolean,
    baseline_band      varchar,
    value              double not null,
    denominator        double,
    batch_id           integer not null
);
insert into facts_in_metric_order select * from facts order by metric_id, student_key, period_start;
drop table facts;
alter table facts_in_metric_order rename to facts;
