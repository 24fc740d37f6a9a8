-- Contract dates are edited on the Rate cards page too (ciboard.contract_terms). An edit that
-- moves a contract's first day moves the key its lines are kept by; this says from which day, so
-- the history of the contract follows it across the move.
alter table contract_edits add column moved_from date;  -- the contract's first day before this edit; null: not moved
