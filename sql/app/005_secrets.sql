-- One row per secret the server keeps for itself, made at random when the database is made.
-- `letters` keys the shuffle that gives each meeting its own "Vendor A, B, C" (ciboard.letters):
-- without it, the vendor ids and a meeting's number would tell anyone the letters.
create table secrets (
    name text primary key,
    value text not null
);
insert into secrets (name, value) values ('letters', lower(hex(randomblob(32))));
