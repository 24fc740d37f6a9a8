-- The district's ledger: invoices its vendors sent and payments it made, per vendor and month.
-- Rows are only ever added: a correction is a new entry that supersedes an earlier one, or voids
-- it (no amount), with who, when and why; the triggers refuse any change or removal, so the trail
-- of what was recorded, and when, is whole.
create table ledger (
    entry_id     integer primary key,
    kind         text not null check (kind in ('invoice', 'payment')),
    vendor_id    text not null,
    period       text not null check (period glob '[0-9][0-9][0-9][0-9]-[01][0-9]'),
    reference    text not null check (reference <> ''),  -- the invoice number, or the payment's
    amount_cents integer check (amount_cents > 0),       -- cents, so sums are exact; null voids
    dated_on     text not null,                          -- the day the invoice came in, or was paid
    note         text not null default '',               -- for a correction, why
    corrects     integer unique references ledger (entry_id),  -- an entry is corrected once at most
    recorded_at  text not null,
    recorded_by  text not null,
    source       text not null,                          -- the page, or the file it came from
    check (amount_cents is not null or corrects is not null),
    check (corrects is null or note <> '')
);

create index ledger_by_vendor on ledger (vendor_id, period);

create trigger ledger_never_changes before update on ledger
begin
    select raise(abort, 'a ledger entry never changes: record a correction');
end;

create trigger ledger_stays before delete on ledger
begin
    select raise(abort, 'a ledger entry never changes: record a correction');
end;
