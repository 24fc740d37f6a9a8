-- A workgroup's schedule (JSON: how often, on which weekday, from and to when, at what time),
-- from which its meeting calendar, missed meetings and .ics files are read. Null for a group
-- that keeps only its cadence as text.
alter table workgroups add column schedule text;
