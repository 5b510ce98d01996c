-- Signed links as issued: the token itself is never stored (it is signed, and carries its
-- nonce); this row says whose the link is, whether it may be used once, and what became of it.

CREATE TABLE links (
    nonce          TEXT PRIMARY KEY,
    purpose        TEXT NOT NULL,
    subject        TEXT NOT NULL,
    owner          TEXT NOT NULL,
    borrower_id    TEXT,
    single_use     BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    used_at_ms     BIGINT,
    renewed_by     TEXT,
    created_at_ms  BIGINT NOT NULL
);
