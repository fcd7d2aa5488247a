-- Events leaving the backend (SPEC §4). Each row is written in the SAME local transaction as
-- the business change it announces, so an event exists iff its change committed. The relay
-- (backend/relay.c) publishes pending rows to RabbitMQ and marks a row published only after
-- the broker confirmed it; a returned (unroutable) or refused row waits next_attempt_at and
-- is published again. Published rows are pruned after a retention period.
CREATE TABLE event_outbox (
    id               bigserial PRIMARY KEY,
    event_name       text NOT NULL CHECK (octet_length(event_name) BETWEEN 1 AND 255),
    correlation_id   uuid NOT NULL,
    payload          bytea NOT NULL,                  -- the protobuf encoding of the event
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts         integer NOT NULL DEFAULT 0,      -- publications that were not confirmed
    next_attempt_at  timestamptz,                     -- after a failed attempt: not before
    published_at     timestamptz                      -- when the broker confirmed it
);
-- One event per buy needs no index here: the buy claimed its correlation id in
-- coord_transactions (primary key) before it could write one, and eventlog stores each
-- (event_name, correlation id) once whatever arrives.
CREATE INDEX event_outbox_pending ON event_outbox (id) WHERE published_at IS NULL;
CREATE INDEX event_outbox_published ON event_outbox (published_at) WHERE published_at IS NOT NULL;
