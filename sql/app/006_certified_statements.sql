-- A vendor's statement for a month, closed by an admin: every number as it stood, and the
-- warehouse version it was computed from (pinned). Rows are only ever added: the triggers
-- refuse any change or removal, whoever asks, so a certified statement never changes.
create table closed_statements (
    statement_id      integer primary key,
    vendor_id         text not null,
    period            text not null,  -- YYYY-MM
    warehouse_version text not null,
    closed_at         text not null,
    closed_by         text not null,
    frozen            text not null,  -- JSON: the rows, totals and terms as computed
    unique (vendor_id, period)
);

create table statement_signoffs (
    statement_id integer not null references closed_statements (statement_id),
    party        text not null check (party in ('district', 'vendor')),
    signed_by    text not null,
    signed_at    text not null,
    note         text not null default '',
    primary key (statement_id, party)
);

create trigger closed_statements_never_change before update on closed_statements
begin
    select raise(abort, 'a closed statement never changes');
end;

create trigger closed_statements_stay before delete on closed_statements
begin
    select raise(abort, 'a closed statement never changes');
end;

create trigger signoffs_never_change before update on statement_signoffs
begin
    select raise(abort, 'a sign-off never changes');
end;

create trigger signoffs_stay before delete on statement_signoffs
begin
    select raise(abort, 'a sign-off never changes');
end;
