-- Credit lines and drawdowns are keyed by borrower (issue #16, docs/SCALING.md): their primary
-- keys and foreign keys lead with borrower_id, the column a distributed database spreads them
-- by, and every statement on them names the borrower. Their ids now carry it
-- (`<borrower id>.<UUID>`), so a request names the borrower's rows before its first query. Ids
-- minted before, and the confirmation tokens of the last eight days' drawdowns (a retried
-- confirmation is answered from its idempotency key for a week), are routed through
-- legacy_routes: filled here, and by the triggers below for what a process of the previous
-- build writes if it still runs (its ids have no dot: they are bare UUIDs).
--
-- Not additive: the previous build reads by id alone, which the new keys do not serve, and
-- building them locks these tables. Stop the previous build, migrate, then start this one
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
WHERE created_at_ms > (extract(epoch FROM now()) * 1000)::bigint - 8 * 86400000;

CREATE FUNCTION legacy_route() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO legacy_routes (id, borrower_id) VALUES (NEW.id, NEW.borrower_id);
    IF TG_TABLE_NAME = 'drawdowns' THEN
        INSERT INTO legacy_routes (id, borrower_id) VALUES (NEW.token_hash, NEW.borrower_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER legacy_line_routes AFTER INSERT ON credit_lines
    FOR EACH ROW WHEN (position('.' IN NEW.id) = 0) EXECUTE FUNCTION legacy_route();
CREATE TRIGGER legacy_drawdown_routes AFTER INSERT ON drawdowns
    FOR EACH ROW WHEN (position('.' IN NEW.id) = 0) EXECUTE FUNCTION legacy_route();

ALTER TABLE credit_line_events DROP CONSTRAINT credit_line_events_line_id_fkey;
ALTER TABLE drawdowns DROP CONSTRAINT drawdowns_line_id_fkey;
ALTER TABLE drawdown_quotes DROP CONSTRAINT drawdown_quotes_drawdown_id_fkey;
ALTER TABLE drawdown_transitions DROP CONSTRAINT drawdown_transitions_drawdown_id_fkey;
ALTER TABLE payout_attempts DROP CONSTRAINT payout_attempts_drawdown_id_fkey;

ALTER TABLE credit_lines DROP CONSTRAINT credit_lines_pkey;
ALTER TABLE credit_lines ADD PRIMARY KEY (borrower_id, id);
-- The daily review walks open lines by id, across borrowers (store/src/book.rs).
CREATE INDEX credit_lines_by_id ON credit_lines (id);

ALTER TABLE drawdowns DROP CONSTRAINT drawdowns_pkey;
ALTER TABLE drawdowns ADD PRIMARY KEY (borrower_id, id);
ALTER TABLE drawdowns DROP CONSTRAINT drawdowns_token_hash_key;
CREATE UNIQUE INDEX drawdowns_by_token ON drawdowns (borrower_id, token_hash);
ALTER TABLE drawdowns ADD FOREIGN KEY (borrower_id, line_id)
    REFERENCES credit_lines (borrower_id, id);

ALTER TABLE credit_line_events DROP CONSTRAINT credit_line_events_pkey;
ALTER TABLE credit_line_events ADD PRIMARY KEY (borrower_id, line_id, seq);
ALTER TABLE credit_line_events ADD FOREIGN KEY (borrower_id, line_id)
    REFERENCES credit_lines (borrower_id, id);

ALTER TABLE drawdown_quotes DROP CONSTRAINT drawdown_quotes_pkey;
ALTER TABLE drawdown_quotes ADD PRIMARY KEY (borrower_id, drawdown_id);
ALTER TABLE drawdown_quotes ADD FOREIGN KEY (borrower_id, drawdown_id)
    REFERENCES drawdowns (borrower_id, id);

ALTER TABLE drawdown_transitions DROP CONSTRAINT drawdown_transitions_pkey;
ALTER TABLE drawdown_transitions ADD PRIMARY KEY (borrower_id, drawdown_id, seq);
ALTER TABLE drawdown_transitions ADD FOREIGN KEY (borrower_id, drawdown_id)
    REFERENCES drawdowns (borrower_id, id);

ALTER TABLE payout_attempts DROP CONSTRAINT payout_attempts_pkey;
ALTER TABLE payout_attempts ADD PRIMARY KEY (borrower_id, drawdown_id, attempt);
ALTER TABLE payout_attempts ADD FOREIGN KEY (borrower_id, drawdown_id)
    REFERENCES drawdowns (borrower_id, id);

-- A quote a process older than 0008 left in its drawdown's body moves to drawdown_quotes, as
-- 0008 moved the rest: every drawdown has its quote row from here on, so a write of a
-- drawdown no longer looks for one (a correlated check a distributed database would run on
-- every write).
INSERT INTO drawdown_quotes (drawdown_id, borrower_id, quote)
SELECT d.id, d.borrower_id, (d.body::jsonb -> 'quote')::text FROM drawdowns d
WHERE d.body::jsonb ? 'quote'
  AND NOT EXISTS (SELECT 1 FROM drawdown_quotes q
                  WHERE q.borrower_id = d.borrower_id AND q.drawdown_id = d.id);
UPDATE drawdowns SET body = (body::jsonb - 'quote')::text WHERE body::jsonb ? 'quote';
