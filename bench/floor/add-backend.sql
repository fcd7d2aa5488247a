-- pgbench script: ONE successful add-gxp (POST /user/gxp/add) on backend-db, statement for
-- statement as the backend runs it (backend/coordinator.c coord_add_gxp).
--
-- Variables (floor.sh passes them with -D): base, users (the user is base + random(1, users),
-- as bench/wrk/add_gxp.lua spreads adds over BENCH_USERS users), amount (1, as add_gxp.lua),
-- run and n (the correlation id of this client's n-th add is md5(run-client_id-n)::uuid:
-- add-gxp.sql prepares the same ids, see README.md).
--
-- statement                                       mirrors
-- 1 WITH chk AS (SELECT user found), claim AS (INSERT INTO coord_transactions ... 'add_gxp'
--   ... WHERE found ON CONFLICT DO NOTHING) SELECT ...
--                                               backend/coordinator.c add_check_and_claim
--                                               (be_add_check_claim)
--   [gxp TransactionPrepare(ADD) happens here, on gxp-db: add-gxp.sql]
-- 2 INSERT INTO transaction_outbox (cid, 'succeeded')   coord_add_gxp (be_decide_add)
-- Each runs alone (autocommit) on a pooled connection (store_exec), as a prepared statement
-- there as here (-M prepared). The commit of 2 is the commit point; logical replication then
-- carries the row to gxp-db (see README.md for what that means for the floor).
--
-- Deviations, none of which adds a round trip: the correlation id (a UUID the backend makes in
-- C) is md5(run-client_id-n)::uuid, computed in statement 1, which returns it
-- (RETURNING ... \gset) for 2 as a text parameter; kind 'add_gxp' is a literal
-- instead of a parameter; an unknown user (404 in the service) ends the script with an error.
\set uid :base + random(1, :users)
\set n :n + 1
-- 1. the check and the claim, one statement (be_add_check_claim)
WITH chk AS (SELECT EXISTS (SELECT 1 FROM users WHERE id = :uid::bigint) AS user_found), claim AS (INSERT INTO coord_transactions (correlation_id, kind, user_id, amount) SELECT md5(:run::text || '-' || :client_id::text || '-' || :n::text)::uuid, 'add_gxp', :uid::bigint, :amount::bigint FROM chk WHERE chk.user_found ON CONFLICT (correlation_id) DO NOTHING RETURNING correlation_id) SELECT chk.user_found::int AS found, (SELECT count(*) FROM claim) AS claimed, coalesce((SELECT correlation_id::text FROM claim), '') AS cid FROM chk \gset
\if :found = 0 or :claimed = 0
SELECT ('floor: no user ' || :uid::text || ' (run the setup), or the id was claimed already')::int;
\endif
-- 2. the decision: the commit point (be_decide_add)
INSERT INTO transaction_outbox (correlation_id, state) VALUES (:cid::uuid, 'succeeded');
