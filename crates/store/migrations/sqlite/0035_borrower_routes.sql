-- Ids of credit lines and drawdowns now carry their borrower (`<borrower id>.<UUID>`, issue
-- #16), so a request names the borrower's rows before its first query. Ids minted before, and
-- the confirmation tokens of the last eight days' drawdowns (a retried confirmation is answered
-- from its idempotency key for a week), are routed through this table: filled here, and by
-- the triggers below for what a process of the previous build writes if it still runs (its ids
-- have no dot: they are bare UUIDs). Stop the previous build before migrating
-- (docs/OPERATIONS.md, "Upgrading").

CREATE TABLE legacy_routes (
    id           TEXT PRIMARY KEY,
    borrower_id  TEXT NOT NULL
);

INSERT INTO legacy_routes (id, borrower_id)
SELECT id, borrower_id FROM credit_lines
UNION ALL
SELECT id, borrower_id FROM drawdowns
UNION ALL
SELECT token_hash, borrower_id FROM drawdowns
WHERE created_at_ms > CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 8 * 86400000;

CREATE TRIGGER legacy_line_routes AFTER INSERT ON credit_lines
WHEN instr(NEW.id, '.') = 0
BEGIN
    INSERT INTO legacy_routes (id, borrower_id) VALUES (NEW.id, NEW.borrower_id);
END;

CREATE TRIGGER legacy_drawdown_routes AFTER INSERT ON drawdowns
WHEN instr(NEW.id, '.') = 0
BEGIN
    INSERT INTO legacy_routes (id, borrower_id) VALUES (NEW.id, NEW.borrower_id);
    INSERT INTO legacy_routes (id, borrower_id) VALUES (NEW.token_hash, NEW.borrower_id);
END;

-- A quote a process older than 0008 left in its drawdown's body moves to drawdown_quotes, as
-- 0008 moved the rest: every drawdown has its quote row from here on, so a write of a
-- drawdown no longer looks for one.
INSERT INTO drawdown_quotes (drawdown_id, borrower_id, quote)
SELECT d.id, d.borrower_id, json_extract(d.body, '$.quote') FROM drawdowns d
WHERE json_extract(d.body, '$.quote') IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM drawdown_quotes q WHERE q.drawdown_id = d.id);
UPDATE drawdowns SET body = json_remove(body, '$.quote')
WHERE json_extract(body, '$.quote') IS NOT NULL;
