-- Two more roles. A school account reads its own schools, named in user_schools; an evaluator
-- reads what an analyst reads, with every student id replaced by its own pseudonym (HMAC-SHA256
-- under the `pseudonyms` secret below, of the evaluator's account and the student id), so no
-- evaluator can turn a pseudonym back into a student, nor join its files with another's.
-- SQLite cannot change a check constraint in place: the table is rebuilt as its guide says
-- (the migration runs with foreign keys off, and checks them before it commits).
create table users_with_new_roles (
    username text primary key check (username = lower(trim(username)) and username <> ''),
    display_name text not null,
    email text unique collate nocase,
    role text not null check (role in ('analyst', 'facilitator', 'admin', 'vendor', 'school', 'evaluator')),
    vendor_id text check ((role = 'vendor') = (vendor_id is not null)),
    password_hash text,
    disabled_at text,
    created_at text not null,
    password_changed_at text
);

insert into users_with_new_roles
select username, display_name, email, role, vendor_id, password_hash, disabled_at, created_at, password_changed_at
from users;

drop table users;

alter table users_with_new_roles rename to users;

-- The schools a school account reads. A school account has at least one (ciboard.accounts
-- writes an account and its schools in one transaction); no other account has any.
create table user_schools (
    username text not null references users (username) on delete cascade,
    school_id text not null,
    primary key (username, school_id)
);

create trigger user_schools_only_for_schools before insert on user_schools
when (select role from users where username = new.username) is not 'school'
begin
    select raise(abort, 'only a school account has schools');
end;

insert into secrets (name, value) values ('pseudonyms', lower(hex(randomblob(32))));
