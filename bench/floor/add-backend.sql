-- pgbench script: ONE successful add-gxp (POST /user/gxp/add) on backend-db, statement for
-- statement as the backend runs it (backend/coordinator.c coord_add_gxp).
--
-- Variables (floor.sh passes them with -D): base, users (the user is base + random(1, users),
-- as bench/wrk/add_gxp.lua spreads adds over BENCH_USERS users), amount (1, as add_gxp.lua),
-- run and n (the correlation id of this client's n-th add is md5(run-client_id-n)::uuid:
-- add-gxp.sql prepares the same ids, see README.md).
--
-- statement                                       mirrors
-- 1 SELECT 1 FROM users WHERE id = user           backend/store.c store_user_exists (be_user_exists)
-- 2 INSERT INTO coord_transactions ... 'add_gxp'  backend/coordinator.c claim (be_claim; item_id NULL)
--   [gxp TransactionPrepare(ADD) happens here, on gxp-db: add-gxp.sql]
-- 3 INSERT INTO transaction_outbox (cid, 'succeeded')   coord_add_gxp (be_decide_add)
-- Each runs alone (autocommit) on a pooled connection (store_exec), as a prepared statement
-- there as here (-M prepared). The commit of 3 is the commit point; logical replication then
-- carries the row to gxp-db (see README.md for what that means for the floor).
--
-- Deviations, none of which adds a round trip: the correlation id (a UUID the backend makes in
-- C) is md5(run-client_id-n)::uuid, computed in statement 2, which returns it
-- (RETURNING ... \gset) for 3 as a text parameter; kind 'add_gxp' and item_id NULL are literals
-- instead of parameters; an unknown user (404 in the service) ends the script with an error.
\set uid :base + random(1, :users)
\set n :n + 1
\set found 0
-- 1. store_user_exists (be_user_exists)
SELECT 1 AS found FROM users WHERE id = :uid::bigint \aset
\if :found = 0
SELECT ('floor: no user ' || :uid::text || ': run the setup')::int;
\endif
-- 2. claim (be_claim)
INSERT INTO coord_transactions (correlation_id, kind, user_id, item_id, amount) VALUES (md5(:run::text || '-' || :client_id::text || '-' || :n::text)::uuid, 'add_gxp', :uid::bigint, NULL, :amount::bigint) RETURNING correlation_id AS cid \gset
-- 3. the decision: the commit point (be_decide_add)
INSERT INTO transaction_outbox (correlation_id, state) VALUES (:cid::uuid, 'succeeded');
