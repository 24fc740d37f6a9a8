-- PostgreSQL's copy of sql/app/011_school_and_evaluator_roles.sql: school and evaluator accounts.
-- PostgreSQL changes a check constraint in place, where SQLite rebuilds the table.
alter table users drop constraint users_role_check;
alter table users add constraint users_role_check
    check (role in ('analyst', 'facilitator', 'admin', 'vendor', 'school', 'evaluator'));

create table user_schools (
    username text not null references users (username) on delete cascade,
    school_id text not null,
    primary key (username, school_id)
);

create function user_schools_only_for_schools() returns trigger language plpgsql as $$
begin
    if (select role from users where username = new.username) is distinct from 'school' then
        raise exception using message = 'only a school account has schools', errcode = 'integrity_constraint_violation';
    end if;
    return new;
end
$$;

create trigger user_schools_only_for_schools before insert on user_schools
for each row execute function user_schools_only_for_schools();

insert into secrets (name, value) values ('pseudonyms', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
