-- Failed sign-ins, one row per user name × client address: how many since the address last
-- succeeded (a day without a failure forgets them) and until when that address must wait
-- before trying that name again. The name is as typed, account or not, so a name that has no
-- account is slowed exactly like one that has. The address is '' where the server does not
-- know it. This replaces the lock on the account, which anyone could set off for everyone.
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
