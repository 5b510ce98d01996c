-- The audit chain. A change writes its audit entry to audit_pending in its own transaction,
-- touching no shared row; a sealer then moves pending entries, in order, into audit_log, each
-- chained by SHA-256 to the one before, one sealer at a time. So concurrent writers never
-- contend on the chain's head, and the chain stays one valid sequence.

CREATE TABLE audit_pending (
    id            TEXT PRIMARY KEY,
    at_ms         INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    detail        TEXT NOT NULL
);

CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    at_ms         INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    detail        TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject_type, subject_id);
