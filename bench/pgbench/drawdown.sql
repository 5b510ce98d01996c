-- One drawdown confirmation's writes, as lendcore makes them (crates/engine/src/drawdowns):
-- the idempotency claim, the hold on the line, the drawdown's new state and its timeline step,
-- the pending ledger entry and its postings, the payout job, the outbox event, the audit entry
-- and the recorded answer. Run by bench/pgbench/run.sh. As in `lendcore loadtest drawdowns`,
-- each line and drawdown is confirmed once, in the order they were created.
\set amount random(100, 100000)
SELECT nextval('bench_keys') AS line \gset
BEGIN;
INSERT INTO bench_idempotency (scope, key, fingerprint, created_at_ms)
    VALUES ('loadtest', 'key-' || :line, 'fingerprint', 0);
UPDATE bench_lines SET held_minor = held_minor + :amount, revision = revision + 1, updated_at_ms = 1
    WHERE id = :line AND limit_minor - drawn_minor - held_minor >= :amount;
UPDATE bench_drawdowns SET state = 'disbursing', revision = revision + 1, updated_at_ms = 1,
    body = repeat('y', 1500) WHERE id = :line;
INSERT INTO bench_transitions (drawdown_id, seq, state, at_ms)
    SELECT :line, coalesce(max(seq), 0) + 1, 'disbursing', 1 FROM bench_transitions WHERE drawdown_id = :line;
WITH entry AS (
    INSERT INTO bench_entries (reference, kind, at_ms) VALUES ('drawdown:' || :line, 'pending', 1)
    RETURNING id
)
INSERT INTO bench_postings (entry_id, n, account_kind, account_owner, currency, layer, amount_minor)
    SELECT id, n, kind, 'b-' || :line, 'CNY', 'pending', amount
    FROM entry, (VALUES (1, 'receivable', :amount::bigint), (2, 'clearing', -(:amount::bigint))) AS p (n, kind, amount);
INSERT INTO bench_jobs (kind, payload, status, attempts, run_at_ms, updated_at_ms)
    VALUES ('payout.submit', '{"drawdown_id":"' || :line || '"}', 'pending', 0, 1, 1);
INSERT INTO bench_outbox (aggregate_type, aggregate_id, topic, payload, created_at_ms)
    VALUES ('drawdown', :line, 'drawdown.disbursing', repeat('z', 400), 1);
INSERT INTO bench_audit_pending (body) VALUES (repeat('a', 300));
UPDATE bench_idempotency SET response = repeat('r', 3500)
    WHERE scope = 'loadtest' AND key = 'key-' || :line;
COMMIT;
