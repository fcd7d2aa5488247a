-- gxp_apply_decision, reworked for two faults that 001 had under volume:
--
-- 1. It took gxp_cid_lock (a transaction-level advisory lock) for every decision. The
--    replication apply worker applies a whole backend transaction in one local transaction, so
--    a backend transaction carrying N decisions held N advisory locks to its end: with ~50,000
--    the shared lock table overflowed ("out of shared memory"), the apply transaction failed,
--    and the worker retried it — and failed — for ever, stopping every later decision.
--    Now a decision for a prepared transaction needs no advisory lock: the transaction's row
--    lock (FOR UPDATE) is enough, and row locks take no lock-table slot. Only a decision for a
--    correlation id with no prepared transaction takes the advisory lock, to exclude a
--    prepare of that id still in flight (gxp_prepare takes the same lock), exactly as before.
-- 2. `UPDATE ... WHERE correlation_id = $1 AND status = 0` could be planned on the partial
--    index gxp_transaction_pending (status = 0), a scan of every PENDING transaction per
--    decision: under a backlog finalization slowed as the backlog grew. The row is now found
--    by correlation id alone (its unique index) and updated by id.
--
-- Outcomes and effects are unchanged: applied, no_prepare, invalid_state, duplicate.
CREATE OR REPLACE FUNCTION gxp_apply_decision(p_cid uuid, p_state text, p_source text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    v_found boolean;
    v_locked boolean := false;
    v_outcome text;
    v_prev text;
BEGIN
    LOOP
        -- A decision is applied once. Only one that failed to apply (outcome 'error: ...',
        -- recorded by the trigger) is tried again, by the resolver or a re-sent row.
        SELECT outcome INTO v_prev FROM decision WHERE correlation_id = p_cid;
        IF FOUND AND v_prev NOT LIKE 'error%' THEN
            RETURN 'duplicate';
        END IF;
        SELECT id, user_id, type, amount, status INTO t
          FROM gxp_transaction WHERE correlation_id = p_cid FOR UPDATE;
        v_found := FOUND;
        EXIT WHEN v_found OR v_locked;
        -- No prepared transaction: take the id's lock, so that a prepare in flight either
        -- commits first (and is found on the second pass) or sees this decision and refuses.
        PERFORM gxp_cid_lock(p_cid);
        v_locked := true;
    END LOOP;

    IF v_found AND t.status <> 0 THEN
        -- Finalized by a concurrent application of the same decision, which committed while
        -- this one waited for the row (finalizing and recording happen in one transaction).
        RETURN 'duplicate';
    END IF;
    IF p_state IS DISTINCT FROM 'succeeded' AND p_state IS DISTINCT FROM 'failed' THEN
        v_outcome := 'invalid_state';
    ELSIF NOT v_found THEN
        v_outcome := 'no_prepare';
    ELSE
        UPDATE gxp_transaction
           SET status = CASE WHEN p_state = 'succeeded' THEN 2 ELSE 1 END,
               updated_at = now(), finalized_at = now()
         WHERE id = t.id;
        IF t.type = 1 THEN
            UPDATE balance
               SET balance = balance - CASE WHEN p_state = 'succeeded' THEN t.amount ELSE 0 END,
                   reserved = reserved - t.amount,
                   version = version + 1, updated_at = now()
             WHERE user_id = t.user_id;
        ELSE
            UPDATE balance
               SET balance = balance + CASE WHEN p_state = 'succeeded' THEN t.amount ELSE 0 END,
                   incoming = incoming - t.amount,
                   version = version + 1, updated_at = now()
             WHERE user_id = t.user_id;
        END IF;
        v_outcome := 'applied';
    END IF;
    INSERT INTO decision (correlation_id, state, source, outcome)
    VALUES (p_cid, coalesce(left(p_state, 32), '<null>'), p_source, v_outcome)
    ON CONFLICT (correlation_id) DO UPDATE
        SET state = EXCLUDED.state, source = EXCLUDED.source, outcome = EXCLUDED.outcome,
            received_at = now();
    PERFORM pg_notify('gxp_finalized', p_cid::text);
    RETURN v_outcome;
END $$;
