-- Rate-card terms edited by an administrator (the Rate cards page, `ciboard contracts edit`). An
-- edit loads the contract year's lines as a contract file would, through the same checks, as a
-- batch of its own; contract_history keeps every version of every line by that batch. This table
-- says who saved the batch, when and why, and which line the edit was of (a changed payment
-- metric replaces the line on the old one). Only ciboard.contract_terms writes it, in the same
-- publish as the lines, so a version once published never changes.
create table contract_edits (
    batch_id        integer not null,  -- the lines' batch in contract_history and submissions
    vendor_id       varchar not null,
    starts_on       date not null,     -- the contract's first day, as its lines key it
    school_year     varchar,           -- the year whose terms were edited; null: every year
    payment_metric  varchar not null,  -- the line edited, as saved
    replaced_metric varchar,           -- its payment metric before, when the edit changed it
    saved_by        varchar not null,  -- the account, or the command line's operator
    saved_at        timestamp not null,
    note            varchar not null   -- why, as the editor said it
);
