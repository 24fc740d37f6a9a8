-- The secret behind the cell keys of ciboard.privacy: each student's record key is a hash
-- of their id with this secret, so nobody who knows student ids (a vendor knows its own)
-- can work out a cell's key and with it the noise added to the cell.
create table privacy_key as
select md5(gen_random_uuid()::varchar) || md5(gen_random_uuid()::varchar) as secret;
