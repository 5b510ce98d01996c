-- Idempotency keys are kept a week (engine/src/access/housekeeping.rs); this finds the older.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_ms);
