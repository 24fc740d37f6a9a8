-- student_records: one row saying where students' groups come from. `students` = 0: the district
-- has sent no student records, and every group comes from a vendor's roster. Otherwise the
-- records decide, except for rostered students they do not have (`rostered_without_record`,
-- whose groups still come from their vendor). Counts of rostered students are the scope's own.
create or replace macro student_records(scope_vendor := null) as table
select
    (select count(distinct student_key) from district_students) as students,
    (select count(*) from district_students) as records,
    (select min(as_of) from district_students) as first_as_of,
    (select max(as_of) from district_students) as last_as_of,
    (
        select count(*) from students as s
        where s.vendor_id is not null
          and (scope_vendor is null or s.vendor_id = scope_vendor)
          and s.student_key not in (select student_key from district_students)
    ) as rostered_without_record,
    (
        select count(distinct student_key) from roster_disagreements(scope_vendor := scope_vendor)
    ) as students_disagreeing;
