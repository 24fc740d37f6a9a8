-- PostgreSQL's copy of sql/app/007_workgroup_schedules.sql: a workgroup's schedule (JSON).
alter table workgroups add column schedule text;
