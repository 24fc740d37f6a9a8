-- Multi-year contracts: a rate-card line may name the school year whose terms it holds. A
-- contract whose lines name no year applies the same terms in every school year its dates reach;
-- either way each school year of a contract is judged on its own (service, windows, one outcome
-- per student, caps), as a contract year.
alter table contracts add column school_year varchar;
alter table contract_history add column school_year varchar;

-- A session may say when it started (its vendor's clock, HH:MM): with its scheduled minutes that
-- places it in the day, so a tutor booked at two schools at once is found. Sessions sent without
-- a time are not checked for it.
alter table sessions add column starts_at time;
