-- Accounts: who may sign in, as what. A vendor account names its vendor; every other role
-- has none. Local sign-in keeps a salted scrypt hash; an OIDC account may have no password.
create table users (
    username text primary key check (username = lower(trim(username)) and username <> ''),
    display_name text not null,
    email text unique collate nocase,
    role text not null check (role in ('analyst', 'facilitator', 'admin', 'vendor')),
    vendor_id text check ((role = 'vendor') = (vendor_id is not null)),
    password_hash text,
    failed_attempts integer not null default 0,
    locked_until text,
    disabled_at text,
    created_at text not null,
    password_changed_at text
);

-- Who did what, when: sign-ins (and failed ones), downloads, exports, ingests, account changes.
create table audit_log (
    event_id integer primary key,
    at text not null,
    username text,
    role text,
    vendor_id text,
    action text not null,
    detail text not null default '',
    outcome text not null default 'ok'
);
create index audit_log_at on audit_log (at);

-- The demo's accounts and their passwords, shown on the sign-in page of the demo only.
-- Nothing but `ciboard demo` writes here, so a real district's database has no rows.
create table demo_credentials (
    username text primary key references users (username) on delete cascade,
    password text not null
);
