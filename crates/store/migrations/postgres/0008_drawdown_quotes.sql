-- A drawdown's quote (its schedule, fees, APR) never changes once given, yet was rewritten with
-- every change to the drawdown. It moves to a table of its own, written once; the drawdown row
-- keeps what changes, small enough to rewrite cheaply (close of business rewrites every loan).

CREATE TABLE drawdown_quotes (
    drawdown_id  TEXT PRIMARY KEY REFERENCES drawdowns (id),
    borrower_id  TEXT NOT NULL,
    quote        TEXT NOT NULL
);
INSERT INTO drawdown_quotes (drawdown_id, borrower_id, quote)
SELECT id, borrower_id, (body::jsonb -> 'quote')::text FROM drawdowns;
UPDATE drawdowns SET body = (body::jsonb - 'quote')::text;
