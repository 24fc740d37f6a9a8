-- An account's calendar link: a calendar app subscribes to it and fetches the account's meetings
-- without signing in, so the link's token is the secret. It is kept only as its SHA-256, as a
-- password is kept hashed; making a new link replaces the row, and the old link stops working.
create table calendar_feeds (
    username     text primary key references users (username),
    token_sha256 text not null unique,
    made_at      text not null
);
