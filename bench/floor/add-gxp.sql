-- pgbench script: what gxp does on gxp-db for ONE successful add-gxp (POST /user/gxp/add), on
-- the request path. Its finalization is finalize-gxp.sql's.
--
-- Variables (floor.sh passes them with -D): base, users (the user is base + random(1, users),
-- as on backend-db), amount (1, as bench/wrk/add_gxp.lua adds), cts (the correlation
-- timestamp, epoch microseconds), run and n (this client's last id: the correlation id of its
-- n-th request is md5(run-client_id-n)::uuid, as in add-backend.sql), window and pause
-- (pacing, below).
--
-- statement                                          mirrors
-- 1 SELECT gxp_prepare(user, 0 = ADD, amount, cid, cts)
--      gxp/ledger.c transaction_prepare (statement gxp_prepare, sent alone through
--      lib/src/db_pipeline.c: one implicit transaction) -> sql/gxp/001_ledger.sql gxp_prepare:
--      advisory lock(cid); SELECT gxp_transaction; SELECT decision; UPDATE balance
--      incoming += amount WHERE balance + incoming + amount <= 4294967295;
--      INSERT gxp_transaction PENDING.
--   [then the backend commits its decision 'succeeded' on backend-db (add-backend.sql), and
--    gxp-db finalizes it (finalize-gxp.sql)]
--
-- Pacing: in the real system gxp prepares at the rate the backend decides. So that this side
-- does not run ahead of the backend side (taking CPU the real system would not give it, and
-- leaving PENDING transactions behind), id n is prepared only once the backend side's decision
-- for id n - window of the same client has been replicated here (an index probe of the
-- replicated transaction_outbox, in the same statement); until then the statement answers -1
-- and the client sleeps, 0.1 ms doubling up to 20 ms (polling costs CPU too). floor.sh sets
-- window to the head start plus max(4, 64 / clients) ids, and to 2^62 (no pacing) without
-- replication. A script
-- run is a prepare or a wait: floor.sh counts the prepares from the database.
--
-- Deviations: the pacing probe; the correlation id is md5(run-client_id-n)::uuid computed in
-- SQL (gxp gets it as a text parameter); a prepare answer other than 0 (NOT_FOUND /
-- OUT_OF_RANGE in the service) ends the script with an error, except 4 (a decision exists: the
-- backend side decided this id before it was prepared here), which floor.sh counts.
\set uid :base + random(1, :users)
\set next :n + 1
\set type 0
-- 1. TransactionPrepare(ADD) (gxp_prepare), once the backend side is close enough
SELECT CASE WHEN :next::bigint <= :window::bigint OR EXISTS (SELECT 1 FROM transaction_outbox WHERE correlation_id = md5(:run::text || '-' || :client_id::text || '-' || (:next::bigint - :window::bigint)::text)::uuid) THEN gxp_prepare(:uid::bigint, :type::smallint, :amount::bigint, md5(:run::text || '-' || :client_id::text || '-' || :next::text)::uuid, 'epoch'::timestamptz + :cts::bigint * interval '1 microsecond') ELSE -1 END AS code \gset
\if :code = -1
\set pause least(:pause * 2, 20000)
\sleep :pause us
\else
\set pause 50
\set n :next
\if :code != 0 and :code != 4
SELECT ('floor: gxp_prepare answered ' || :code::text || ' for user ' || :uid::text || ' (0 = prepared): run the setup')::int;
\endif
\endif
