-- PostgreSQL's copy of sql/app/015_calendar_feeds.sql: an account's calendar link, its secret
-- token kept only as its SHA-256.
create table calendar_feeds (
    username     text primary key references users (username),
    token_sha256 text not null unique,
    made_at      text not null
);
