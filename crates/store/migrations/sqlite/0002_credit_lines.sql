-- Credit lines (额度) and their append-only limit-change log.
-- The line row holds the running figures; drawn + held <= limit is enforced by every write
-- (conditional updates) and by a CHECK, so no code path can overdraw a line. `state` is what
-- writes test; `status` carries its details (reason, by whom, until when) as JSON.

CREATE TABLE credit_lines (
    id               TEXT PRIMARY KEY,
    borrower_id      TEXT NOT NULL,
    currency         TEXT NOT NULL,
    limit_minor      INTEGER NOT NULL CHECK (limit_minor > 0),
    drawn_minor      INTEGER NOT NULL CHECK (drawn_minor >= 0),
    held_minor       INTEGER NOT NULL CHECK (held_minor >= 0),
    valid_from_ms    INTEGER NOT NULL,
    valid_until_ms   INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('active', 'frozen', 'closed')),
    status           TEXT NOT NULL,
    revision         INTEGER NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL,
    CHECK (drawn_minor + held_minor <= limit_minor)
);
CREATE INDEX credit_lines_by_borrower ON credit_lines (borrower_id, created_at_ms);

CREATE TABLE credit_line_events (
    line_id             TEXT NOT NULL REFERENCES credit_lines (id),
    seq                 INTEGER NOT NULL,
    borrower_id         TEXT NOT NULL,
    kind                TEXT NOT NULL,
    limit_before_minor  INTEGER NOT NULL,
    limit_after_minor   INTEGER NOT NULL,
    reason              TEXT,
    actor               TEXT NOT NULL,
    note                TEXT,
    at_ms               INTEGER NOT NULL,
    PRIMARY KEY (line_id, seq)
);
