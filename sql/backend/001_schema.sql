-- backend-db: the core data, the coordinator's decisions (replicated to gxp-db) and the
-- answers kept for Idempotency-Key retries. Rows that concurrent requests update carry a
-- version: an update names the version it read (optimistic locking).

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (octet_length(name) BETWEEN 1 AND 255),
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE items (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
    cost        bigint NOT NULL CHECK (cost BETWEEN 0 AND 2147483647),
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The stock of an item on sale: one row per item.
CREATE TABLE marketplace_items (
    id          bigserial PRIMARY KEY,
    item_id     bigint NOT NULL UNIQUE REFERENCES items (id),
    count       bigint NOT NULL CHECK (count >= 0),
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_items (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    item_id     bigint NOT NULL REFERENCES items (id),
    count       bigint NOT NULL CHECK (count >= 0),
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, item_id)
);

-- Each distributed transaction the coordinator starts, claimed under its correlation id
-- before anything else: an id a client sends (X-Correlation-Id) names one transaction at
-- most, so a reused id can never touch, decide or answer for another request's transaction.
CREATE TABLE coord_transactions (
    correlation_id  uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('buy', 'add_gxp')),
    user_id         bigint NOT NULL,
    item_id         bigint,
    amount          bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The decision of each distributed transaction, written once (INSERT, never upsert) in the
-- coordinator's commit, carried to gxp-db by the publication below.
CREATE TABLE transaction_outbox (
    correlation_id  uuid PRIMARY KEY,
    state           text NOT NULL CHECK (state IN ('failed', 'succeeded')),
    is_finalized    boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'transaction_outbox_pub') THEN
        CREATE PUBLICATION transaction_outbox_pub FOR TABLE transaction_outbox;
    END IF;
END $$;

-- Idempotency-Key: the first answer to a POST, replayed to retries with the same key and
-- the same request; status NULL while the first request is still running.
CREATE TABLE idempotency_keys (
    key           text PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 255),
    request_hash  text NOT NULL,
    status        integer,
    content_type  text,
    body          text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
