-- Retention (issue 19): backend/retention.c deletes decided transactions and finished auctions
-- past their retention (ARCHITECTURE.md, "Retention").

-- How far gxp-db has applied the decisions, in terms a row can be compared with. Each pruning
-- pass records the oldest transaction still running on backend-db (snap_xmin: every older one
-- has ended, its commit record written) and then the WAL insert position (lsn). Once the slot of
-- gxp-db's subscription has confirmed lsn, every transaction older than snap_xmin has been
-- applied on gxp-db, in commit order, the decision trigger included: a decision row written by
-- such a transaction has been received and applied by gxp.
CREATE TABLE retention_marks (
    id         bigserial PRIMARY KEY,
    snap_xmin  xid8 NOT NULL,
    lsn        pg_lsn NOT NULL,
    taken_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The pruning's way to the oldest rows. B-trees on the creation time, not BRIN: the pruning
-- deletes the oldest rows and VACUUM hands their space to new ones, so a table that is pruned is
-- no longer in time order on disk, and a BRIN summary only ever widens: every range would soon
-- match "older than the retention" and each pass would read the whole table. A time-ordered
-- key is appended at the right edge of its B-tree (one hot leaf page, no random page splits).
-- Decisions (one per 2PC transaction): their creation time. coord_transactions needs none:
-- its decided rows go with their decision, by correlation id; only a free buy (its outcome in
-- its own row, no decision) is found by time, and only free buys enter that partial index.
CREATE INDEX transaction_outbox_created ON transaction_outbox (created_at);
CREATE INDEX coord_transactions_free_decided ON coord_transactions (created_at)
    WHERE outcome IS NOT NULL;
