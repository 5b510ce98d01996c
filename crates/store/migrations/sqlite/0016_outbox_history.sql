-- Events written before notifications existed were never meant to be sent: without this, the
-- first start would deliver the whole history.
UPDATE outbox SET published_at_ms = created_at_ms WHERE published_at_ms IS NULL;
