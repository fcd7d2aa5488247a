-- The GXP ledger: one balance per user, one transaction per correlation id, and the
-- decisions received from the coordinator. Amounts are bigint here so that sums never
-- overflow; the API limits them to uint32 and the checks below keep them there.

CREATE TABLE balance (
    user_id     bigint PRIMARY KEY CHECK (user_id BETWEEN 1 AND 4294967295),
    balance     bigint NOT NULL DEFAULT 0,
    reserved    bigint NOT NULL DEFAULT 0,  -- Σ amount of PENDING SUBTRACT transactions
    incoming    bigint NOT NULL DEFAULT 0,  -- Σ amount of PENDING ADD transactions
    version     bigint NOT NULL DEFAULT 0,  -- bumped by every change of the row
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT balance_reserved_covered CHECK (reserved >= 0 AND reserved <= balance),
    CONSTRAINT balance_fits_uint32 CHECK (balance + incoming <= 4294967295),
    CONSTRAINT balance_incoming_nonneg CHECK (incoming >= 0)
);

-- type: 0 ADD, 1 SUBTRACT; status: 0 PENDING, 1 ABORTED, 2 COMMITTED (the proto enums).
CREATE TABLE gxp_transaction (
    id                    bigserial PRIMARY KEY,
    correlation_id        uuid NOT NULL UNIQUE,
    user_id               bigint NOT NULL REFERENCES balance (user_id),
    type                  smallint NOT NULL CHECK (type IN (0, 1)),
    amount                bigint NOT NULL CHECK (amount BETWEEN 1 AND 4294967295),
    status                smallint NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),
    correlation_ts        timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    finalized_at          timestamptz,
    resolve_attempts      integer NOT NULL DEFAULT 0,
    next_resolve_at       timestamptz
);
-- The resolver's scan: PENDING transactions by age.
CREATE INDEX gxp_transaction_pending ON gxp_transaction (created_at) WHERE status = 0;

-- Decisions as gxp received them, one per correlation id, never changed afterwards.
-- outcome: what applying it did (applied, no_prepare, invalid_state, error).
CREATE TABLE decision (
    correlation_id  uuid PRIMARY KEY,
    state           text NOT NULL,
    source          text NOT NULL,           -- replication | resolver
    outcome         text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);

-- gxp-db's replica of backend-db's transaction_outbox, filled ONLY by the subscription
-- transaction_outbox_sub (never written here). Columns are lax on purpose: a row that
-- fails a constraint here would stall replication and every later decision.
CREATE TABLE transaction_outbox (
    correlation_id  uuid PRIMARY KEY,
    state           text,
    is_finalized    boolean,
    created_at      timestamptz
);

-- Advisory lock key of a correlation id: prepare and finalize of one id never interleave.
CREATE FUNCTION gxp_cid_lock(p_cid uuid) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(hashtextextended(p_cid::text, 7077)) $$;

-- TransactionPrepare in one round trip. Returns:
--   0 prepared, 1 already prepared with the same arguments (idempotent retry),
--   2 no balance for the user, 3 insufficient funds, 4 a decision already exists,
--   5 the correlation id was prepared with other arguments, 6 the balance would overflow.
CREATE FUNCTION gxp_prepare(p_user bigint, p_type smallint, p_amount bigint, p_cid uuid,
                            p_cts timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    PERFORM gxp_cid_lock(p_cid);
    SELECT user_id, type, amount INTO t FROM gxp_transaction WHERE correlation_id = p_cid;
    IF FOUND THEN
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

-- Applies one decision exactly once: records it (a second decision for the same id is
-- ignored), then moves the matching PENDING transaction to COMMITTED or ABORTED and the
-- balance with it. Returns the outcome recorded.
CREATE FUNCTION gxp_apply_decision(p_cid uuid, p_state text, p_source text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    v_outcome text;
    v_prev text;
BEGIN
    PERFORM gxp_cid_lock(p_cid);
    SELECT outcome INTO v_prev FROM decision WHERE correlation_id = p_cid;
    -- A decision is applied once. Only one that failed to apply (outcome 'error: ...',
    -- recorded by the trigger) is tried again, by the resolver or a re-sent row.
    IF FOUND AND v_prev NOT LIKE 'error%' THEN
        RETURN 'duplicate';
    END IF;
    IF p_state IS DISTINCT FROM 'succeeded' AND p_state IS DISTINCT FROM 'failed' THEN
        v_outcome := 'invalid_state';
    ELSE
        UPDATE gxp_transaction
           SET status = CASE WHEN p_state = 'succeeded' THEN 2 ELSE 1 END,
               updated_at = now(), finalized_at = now()
         WHERE correlation_id = p_cid AND status = 0
        RETURNING user_id, type, amount INTO t;
        IF NOT FOUND THEN
            v_outcome := 'no_prepare';
        ELSE
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
    END IF;
    INSERT INTO decision (correlation_id, state, source, outcome)
    VALUES (p_cid, coalesce(left(p_state, 32), '<null>'), p_source, v_outcome)
    ON CONFLICT (correlation_id) DO UPDATE
        SET state = EXCLUDED.state, source = EXCLUDED.source, outcome = EXCLUDED.outcome,
            received_at = now();
    PERFORM pg_notify('gxp_finalized', p_cid::text);
    RETURN v_outcome;
END $$;

-- Fires in the logical replication apply worker for every decision row that arrives
-- (ENABLE ALWAYS below; replicated rows do not fire ordinary triggers). It must never
-- raise: a failing row would stop replication of every later decision. So the work runs
-- in a subtransaction, and a failure is recorded and left for an operator (and for the
-- resolver, which tries again). The apply worker runs with an empty search_path, hence SET.
CREATE FUNCTION gxp_on_decision() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_catalog AS $$
BEGIN
    IF NEW.correlation_id IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM gxp_apply_decision(NEW.correlation_id, NEW.state, 'replication');
    EXCEPTION WHEN OTHERS THEN
        BEGIN
            RAISE WARNING 'gxp: decision % could not be applied: % (%)',
                NEW.correlation_id, SQLERRM, SQLSTATE;
            INSERT INTO decision (correlation_id, state, source, outcome)
            VALUES (NEW.correlation_id, coalesce(left(NEW.state, 32), '<null>'), 'replication',
                    'error: ' || left(SQLERRM, 200))
            ON CONFLICT (correlation_id) DO NOTHING;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'gxp: decision % could not be recorded: %', NEW.correlation_id, SQLERRM;
        END;
    END;
    RETURN NULL;
END $$;

CREATE TRIGGER transaction_outbox_finalize
    AFTER INSERT OR UPDATE OF state ON transaction_outbox
    FOR EACH ROW EXECUTE FUNCTION gxp_on_decision();
ALTER TABLE transaction_outbox ENABLE ALWAYS TRIGGER transaction_outbox_finalize;
