-- Audit events (AdminActionEvent, issue 18): an operator's change may concern no user (an item
-- created or changed), so user_id may be NULL. The CHECK stays: a user id, when there is one,
-- is a uint32 of the events (a CHECK passes on NULL). GET /eventlog/events shows a user only
-- the events of its own user_id, so events without one are for admins only.
ALTER TABLE event ALTER COLUMN user_id DROP NOT NULL;

-- message_id is the event's identity, stored once per event name: the AMQP message_id (the
-- correlation id, SPEC §4) for every event but AdminActionEvent, whose own eventId names it
-- (a client may reuse its correlation id for several changes; each is one audit record).
COMMENT ON COLUMN event.message_id IS
    'the event''s identity: the AMQP message_id (= correlation id); AdminActionEvent: its eventId';
