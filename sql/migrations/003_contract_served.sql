-- Each student's first attended session within each contract: a student counts as served
-- from that date. Kept by ingest, so the payments view need not scan every session.
create table contract_served (
    vendor_id         varchar not null,
    starts_on         date not null,
    student_key       varchar not null,
    first_attended_on date not null
);

insert into contract_served
select c.vendor_id, c.starts_on, s.student_key, min(s.session_date)
from (select distinct vendor_id, starts_on, ends_on from contracts) as c
inner join sessions as s
    on s.vendor_id = c.vendor_id and s.session_date between c.starts_on and c.ends_on and s.attended_minutes > 0
group by all;
