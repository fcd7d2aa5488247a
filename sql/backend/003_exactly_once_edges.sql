-- Exactly once at the edges (issue 20).
--
-- Idempotency-Key: the claim names its owner, the correlation id of the attempt that holds it,
-- and when it was claimed. The work's local transaction stores the answer only while its
-- attempt still owns the key, so an answer exists iff the work committed, and a retry that
-- takes over an abandoned claim fences the old attempt off (backend/idempotency.c).
ALTER TABLE idempotency_keys ADD COLUMN owner uuid;
ALTER TABLE idempotency_keys ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();

-- The outcome of a free buy (cost 0), which has no decision in transaction_outbox because gxp
-- takes no part in it: set to 'succeeded' in the buy's local transaction, or to 'failed' by
-- whoever settles an abandoned attempt first (a resent correlation id). Written once.
ALTER TABLE coord_transactions ADD COLUMN outcome text CHECK (outcome IN ('failed', 'succeeded'));

-- Read-your-writes: a buy refused for lack of GXP looks for this user's recent add-gxp whose
-- decision is in but may not be finalized on gxp yet (backend/coordinator.c).
CREATE INDEX coord_transactions_add_gxp_user ON coord_transactions (user_id, created_at)
    WHERE kind = 'add_gxp';
