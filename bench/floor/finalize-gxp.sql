-- pgbench script, run beside buy-gxp.sql / add-gxp.sql by `finalizers` clients (floor.sh:
-- FLOOR_FINALIZERS, 2): the finalization of the decisions 'succeeded' on gxp-db, one decision
-- per transaction, as gxp-db's replication apply worker does it.
--
-- Variables (floor.sh passes them with -D): base, users (the floor's users, whose PENDING
-- transactions are finalized), finalizers (client k takes the transactions with id % finalizers
-- = k).
--
-- statement                                          mirrors
-- 1 SELECT gxp_apply_decision(cid, 'succeeded', 'replication') for the oldest PENDING floor
--   transaction: SELECT decision; SELECT gxp_transaction FOR UPDATE; UPDATE it -> COMMITTED;
--   UPDATE balance (SUBTRACT: balance -= amount, reserved -= amount; ADD: balance += amount,
--   incoming -= amount); INSERT decision 'applied'; pg_notify.
--      In the real system: the subscription's apply worker (one process) inserts the
--      replicated transaction_outbox row; its ENABLE ALWAYS trigger (sql/gxp/001_ledger.sql
--      gxp_on_decision) calls gxp_apply_decision(cid, state, 'replication') in a
--      subtransaction of the apply transaction, with synchronous_commit off.
--
-- Deviations: the id comes from an index scan of the PENDING transactions
-- (gxp_transaction_pending, oldest first) instead of the replication stream; no replica row,
-- no subtransaction; the commit is synchronous; and the apply worker is one process that pays
-- no network round trip per decision, where a pgbench client does: two clients by default
-- (see README.md). When nothing is PENDING a client sleeps, 0.1 ms doubling up to 5 ms
-- (polling costs CPU too). Decisions that replication carries from backend-db for the same
-- ids are applied by the real apply worker if they come first; this script then finds the
-- id no longer PENDING.
\set found 0
SELECT 1 AS found, gxp_apply_decision(correlation_id, 'succeeded', 'replication') AS outcome FROM gxp_transaction WHERE status = 0 AND user_id BETWEEN :base::bigint + 1 AND :base::bigint + :users::bigint AND id % :finalizers::bigint = :client_id::bigint ORDER BY created_at LIMIT 1 \aset
\if :found = 0
\set pause least(:pause * 2, 5000)
\sleep :pause us
\else
\set pause 50
\endif
