-- PostgreSQL's copy of sql/app/003_sign_in_throttle.sql: failed sign-ins per user name and address.
create table sign_in_failures (
    username text not null,
    address text not null,
    failures integer not null check (failures >= 1),
    last_failed_at text not null,
    waits_until text,
    primary key (username, address)
);

alter table users drop column failed_attempts;
alter table users drop column locked_until;
