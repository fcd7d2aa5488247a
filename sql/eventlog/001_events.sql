-- The event log: one row per event received from the broker, stored once however often it
-- was delivered (the broker delivers at least once). Filled only by the consumer; read by
-- GET /eventlog/events.

CREATE TABLE event (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_name      text NOT NULL,          -- the message name, e.g. BuyItemEvent
    message_id      uuid NOT NULL,          -- the AMQP message_id (the correlation id, SPEC §4)
    user_id         bigint NOT NULL CHECK (user_id BETWEEN 1 AND 4294967295),
    text            text NOT NULL,          -- for humans: "user 1 bought item 2 (user item 3)"
    correlation_id  uuid NOT NULL,
    data            jsonb NOT NULL,         -- the decoded fields of the message
    occurred_at     timestamptz NOT NULL,   -- when the publisher says it happened
    stored_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A redelivered message is the same event: INSERT ... ON CONFLICT DO NOTHING skips it.
    CONSTRAINT event_once UNIQUE (event_name, message_id)
);

-- Keyset paging of one user's events, newest first (backwards) or after an id (forwards).
CREATE INDEX event_user_id ON event (user_id, id);
-- Every event of one correlation id (one request across the services).
CREATE INDEX event_correlation_id ON event (correlation_id, id);
