-- Retention (issue 19): gxp/retention.c deletes finalized transactions and their decisions past
-- GXP_RETENTION_S (ARCHITECTURE.md, "Retention").
--
-- 1. A prepare of a correlation id whose transaction is already finalized is refused (7), no
--    longer answered as an idempotent retry (1). A coordinator prepares an id only while it has
--    no decision for it, and a finalized transaction always has one there, so no coordinator that
--    remembers the id can meet this. One that no longer does — its retention (shorter than
--    gxp's) pruned the claim and the decision, and a client then sent the id again — would have
--    been told "prepared", decided 'succeeded' and committed a second buy whose decision gxp
--    then ignores as a duplicate: goods without payment. Refused, it fails cleanly.
-- 2. What the pruning took out of each balance's history, so that SPEC §5's ledger invariant
--    stays checkable: balance = net + Σ committed ADD − Σ committed SUBTRACT of the transactions
--    kept. Written only by the pruning (never on a buy's path; the balance row is not touched).
-- 3. Indexes for the pruning, none on a buy's path: gxp_transaction is found by its id (a
--    sequence, in creation order: the primary key serves); a decision with a transaction goes
--    with it (by correlation id, its primary key); only a decision that applied nothing (no
--    prepare, an invalid state) has no transaction, and only those enter this partial index.
CREATE OR REPLACE FUNCTION gxp_prepare(p_user bigint, p_type smallint, p_amount bigint, p_cid uuid,
                                       p_cts timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    PERFORM gxp_cid_lock(p_cid);
    SELECT user_id, type, amount, status INTO t FROM gxp_transaction WHERE correlation_id = p_cid;
    IF FOUND THEN
        IF t.status <> 0 THEN
            RETURN 7;
        END IF;
        IF t.user_id = p_user AND t.type = p_type AND t.amount = p_amount THEN
            RETURN 1;
        END IF;
        RETURN 5;
    END IF;
    PERFORM 1 FROM decision WHERE correlation_id = p_cid;
    IF FOUND THEN
        RETURN 4;
    END IF;
    IF p_type = 1 THEN
        UPDATE balance SET reserved = reserved + p_amount, version = version + 1,
                           updated_at = now()
         WHERE user_id = p_user AND balance - reserved >= p_amount;
        IF NOT FOUND THEN
            PERFORM 1 FROM balance WHERE user_id = p_user;
            RETURN CASE WHEN FOUND THEN 3 ELSE 2 END;
        END IF;
    ELSE
        UPDATE balance SET incoming = incoming + p_amount, version = version + 1,
                           updated_at = now()
         WHERE user_id = p_user AND balance + incoming + p_amount <= 4294967295;
        IF NOT FOUND THEN
            PERFORM 1 FROM balance WHERE user_id = p_user;
            RETURN CASE WHEN FOUND THEN 6 ELSE 2 END;
        END IF;
    END IF;
    INSERT INTO gxp_transaction (correlation_id, user_id, type, amount, correlation_ts)
    VALUES (p_cid, p_user, p_type, p_amount, p_cts);
    RETURN 0;
END $$;

CREATE TABLE balance_pruned (
    user_id       bigint PRIMARY KEY,
    net           bigint NOT NULL DEFAULT 0,  -- Σ committed ADD − Σ committed SUBTRACT pruned
    transactions  bigint NOT NULL DEFAULT 0   -- finalized transactions pruned
);

CREATE INDEX decision_unapplied_received ON decision (received_at) WHERE outcome <> 'applied';
