-- Drawdowns, the steps of their lives (the timeline) and every call made to a payment channel.

CREATE TABLE drawdowns (
    id                 TEXT PRIMARY KEY,
    line_id            TEXT NOT NULL REFERENCES credit_lines (id),
    borrower_id        TEXT NOT NULL,
    state              TEXT NOT NULL,
    body               TEXT NOT NULL,
    token_hash         TEXT NOT NULL UNIQUE,
    revision           BIGINT NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL
);
CREATE INDEX drawdowns_by_line ON drawdowns (line_id, created_at_ms);
CREATE INDEX drawdowns_by_state ON drawdowns (state, updated_at_ms);

CREATE TABLE drawdown_transitions (
    drawdown_id   TEXT NOT NULL REFERENCES drawdowns (id),
    seq           BIGINT NOT NULL,
    borrower_id   TEXT NOT NULL,
    from_state    TEXT NOT NULL,
    to_state      TEXT NOT NULL,
    reason        TEXT,
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (drawdown_id, seq)
);

CREATE TABLE payout_attempts (
    drawdown_id   TEXT NOT NULL REFERENCES drawdowns (id),
    attempt       BIGINT NOT NULL,
    borrower_id   TEXT NOT NULL,
    channel_id    TEXT NOT NULL,
    reference     TEXT NOT NULL,
    action        TEXT NOT NULL,
    outcome       TEXT,
    detail        TEXT,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms   BIGINT,
    PRIMARY KEY (drawdown_id, attempt)
);
