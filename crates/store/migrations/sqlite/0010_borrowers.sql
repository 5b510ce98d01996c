-- Borrowers. Personal data is sealed by the engine (AES-256-GCM) before it reaches the
-- database; identifiers that must be found again are kept as keyed hashes (blind indexes).
-- The change history of contact and payment details keeps masked values only.

CREATE TABLE borrowers (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('individual', 'enterprise')),
    personal           TEXT NOT NULL,
    resident_index     TEXT UNIQUE,
    credit_code_index  TEXT UNIQUE,
    mobile_index       TEXT,
    revision           INTEGER NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL
);
CREATE INDEX borrowers_by_mobile ON borrowers (mobile_index);

CREATE TABLE borrower_changes (
    borrower_id  TEXT NOT NULL REFERENCES borrowers (id),
    seq          INTEGER NOT NULL,
    field        TEXT NOT NULL,
    before_value TEXT,
    after_value  TEXT NOT NULL,
    actor        TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    PRIMARY KEY (borrower_id, seq)
);
