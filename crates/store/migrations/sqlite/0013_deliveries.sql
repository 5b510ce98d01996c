-- Deliveries of outbox events: to the lender's webhooks, and to borrowers by SMS and email.
-- One row per event, channel and target; every attempt is kept. Addresses are never stored in
-- clear: `target` is a webhook's id or a masked address, and the address is looked up (and
-- opened) when the message is sent.

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    topic           TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('webhook', 'sms', 'email')),
    target          TEXT NOT NULL,
    borrower_id     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL,
    last_error      TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
CREATE UNIQUE INDEX deliveries_once ON deliveries (event_id, channel, target);
CREATE INDEX deliveries_by_status ON deliveries (status, created_at_ms);

CREATE TABLE delivery_attempts (
    delivery_id  TEXT NOT NULL REFERENCES deliveries (id),
    attempt      INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('delivered', 'retryable', 'rejected')),
    detail       TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
