-- Auctions as a durable saga (issue 16; backend/auction.c runs the requests, backend/saga.c the
-- steps). An auction runs for seconds to days: too long for a reservation on gxp (a PENDING
-- transaction past its timeout is resolved 'failed') and for any lock. So every step is a short
-- local or two-phase transaction of its own, written down here before and after it runs, and the
-- saga moves on by compensations (a refund) instead of holding anything.

-- The saga's gxp steps are distributed transactions like a buy: claimed here under their
-- correlation id, decided in transaction_outbox. bid: a bidder's GXP taken into escrow
-- (SUBTRACT); auction_refund: an outbid bid paid back (ADD); auction_payout: the winning amount
-- credited to the seller (ADD). For these three, item_id holds the auction's id.
ALTER TABLE coord_transactions DROP CONSTRAINT IF EXISTS coord_transactions_kind_check;
ALTER TABLE coord_transactions ADD CONSTRAINT coord_transactions_kind_check
    CHECK (kind IN ('buy', 'add_gxp', 'bid', 'auction_refund', 'auction_payout'));

CREATE TABLE auctions (
    id              bigserial PRIMARY KEY,
    seller_id       bigint NOT NULL REFERENCES users (id),
    user_item_id    bigint NOT NULL REFERENCES user_items (id), -- the unit came from (and may go back to) here
    item_id         bigint NOT NULL REFERENCES items (id),
    min_bid         bigint NOT NULL CHECK (min_bid BETWEEN 1 AND 2147483647),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'settled', 'cancelled')),
    ends_at         timestamptz NOT NULL,
    -- The leading bid, changed by each bid under optimistic locking (version).
    leading_bid_id  bigint,
    leading_user_id bigint,
    leading_amount  bigint,
    -- Where the unit went when the auction closed: the winner's user item, or the seller's.
    result_user_item_id bigint,
    correlation_id  uuid NOT NULL UNIQUE,   -- the creation's: names the saga and its events
    version         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    closed_at       timestamptz,
    CHECK ((leading_bid_id IS NULL) = (leading_amount IS NULL)
           AND (leading_bid_id IS NULL) = (leading_user_id IS NULL))
);
CREATE INDEX auctions_status ON auctions (status, id);

-- Every bid that committed: its GXP was taken (SUBTRACT committed with the bid's decision).
CREATE TABLE auction_bids (
    id              bigserial PRIMARY KEY,
    auction_id      bigint NOT NULL REFERENCES auctions (id),
    user_id         bigint NOT NULL REFERENCES users (id),
    amount          bigint NOT NULL CHECK (amount BETWEEN 1 AND 2147483647),
    correlation_id  uuid NOT NULL UNIQUE,   -- the bid's distributed transaction
    outbid_by       bigint REFERENCES auction_bids (id),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX auction_bids_auction ON auction_bids (auction_id, id);
ALTER TABLE auctions ADD CONSTRAINT auctions_leading_bid
    FOREIGN KEY (leading_bid_id) REFERENCES auction_bids (id);

-- The saga's log and its work queue: one row per step. Steps that a request ran (escrow of the
-- unit, a bid, a cancellation) are written 'done' by that request's own transaction; steps that
-- run later ('pending': the settlement at ends_at, refunds, the payout) are written by the
-- transaction that makes them necessary, and any backend replica runs them when due_at passes,
-- under a lease (lease_owner, lease_until: claimed with SKIP LOCKED; a dead replica's lease
-- expires). A gxp step's correlation_id is derived from the saga and the step (and the attempt,
-- which moves on only when the previous attempt's decision is 'failed'), so a retried step
-- prepares the same transaction on gxp and can be decided 'succeeded' once.
CREATE TABLE saga_steps (
    id              bigserial PRIMARY KEY,
    auction_id      bigint NOT NULL REFERENCES auctions (id),
    kind            text NOT NULL CHECK (kind IN ('escrow_item', 'bid', 'refund', 'settle',
                                                  'deliver', 'return_item', 'payout', 'cancel')),
    state           text NOT NULL CHECK (state IN ('pending', 'done', 'skipped')),
    bid_id          bigint REFERENCES auction_bids (id),
    user_id         bigint,                 -- whom the step pays or gives to
    amount          bigint,
    correlation_id  uuid,                   -- gxp steps: the current attempt's transaction
    attempts        integer NOT NULL DEFAULT 0,
    due_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_owner     uuid,
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    done_at         timestamptz
);
CREATE INDEX saga_steps_due ON saga_steps (due_at) WHERE state = 'pending';
CREATE INDEX saga_steps_auction ON saga_steps (auction_id, id);
-- One refund per outbid bid, one settlement and one payout per auction, whoever writes them.
-- One step of each kind per auction (per bid for bids and refunds), whoever writes it.
CREATE UNIQUE INDEX saga_steps_once ON saga_steps (auction_id, kind, coalesce(bid_id, 0));

-- The correlation id of attempt `attempt` of a gxp step (kind, ref: the bid it is about — the
-- outbid bid for a refund, the winning bid for the payout) of the saga named saga_cid. Derived, not drawn: whoever runs the step again
-- prepares the same transaction on gxp, which prepare and decision make exactly-once. Shaped as
-- a name-based UUID (version nibble 5, RFC 4122 variant).
CREATE FUNCTION saga_step_cid(saga_cid uuid, kind text, ref bigint, attempt integer)
RETURNS uuid LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT overlay(overlay(md5(saga_cid::text || '/' || kind || '/' || ref || '/' || attempt)
                           PLACING '5' FROM 13) PLACING '8' FROM 17)::uuid
$$;

-- ISO-8601 UTC with milliseconds, as every answer writes times (SPEC §2).
CREATE FUNCTION gf_iso(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
