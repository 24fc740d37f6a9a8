-- PostgreSQL's copy of sql/app/005_secrets.sql: the server's own secrets, made at random.
create table secrets (
    name text primary key,
    value text not null
);
-- 64 hex digits, as SQLite's randomblob(32) gives; gen_random_uuid draws from the server's strong
-- random source (pgcrypto's gen_random_bytes would need an extension), 244 random bits in two.
insert into secrets (name, value) values ('letters', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
