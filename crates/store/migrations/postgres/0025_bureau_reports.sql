-- The latest credit bureau answer about each borrower, kept from the application decision that
-- asked, so drawdown checks and line reviews read it without asking again. A borrower's row.
CREATE TABLE bureau_reports (
    borrower_id   TEXT PRIMARY KEY,
    bureau        TEXT NOT NULL,
    inquiry       TEXT NOT NULL,
    asked_at_ms   BIGINT NOT NULL
);
