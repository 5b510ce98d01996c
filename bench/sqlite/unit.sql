-- One drawdown confirmation's writes, as bench/pgbench/drawdown.sql makes them on PostgreSQL:
-- the idempotency claim, the hold on the line, the drawdown's new state and its timeline step,
-- the pending ledger entry and its postings, the payout job, the outbox event, the audit entry
-- and the recorded answer. Parameters: :key (unique), :line (each line once, in order), :amount.
-- Statements are separated by a line holding only ";".
INSERT INTO bench_idempotency (scope, key, fingerprint, created_at_ms)
    VALUES ('loadtest', :key, 'fingerprint', 0)
;
UPDATE bench_lines SET held_minor = held_minor + :amount, revision = revision + 1, updated_at_ms = 1
    WHERE id = :line AND limit_minor - drawn_minor - held_minor >= :amount
;
UPDATE bench_drawdowns SET state = 'disbursing', revision = revision + 1, updated_at_ms = 1,
    body = printf('%.1500c', 'y') WHERE id = :line
;
INSERT INTO bench_transitions (drawdown_id, seq, state, at_ms)
    SELECT :line, coalesce(max(seq), 0) + 1, 'disbursing', 1 FROM bench_transitions WHERE drawdown_id = :line
;
INSERT INTO bench_entries (reference, kind, at_ms) VALUES ('drawdown:' || :line, 'pending', 1)
;
INSERT INTO bench_postings (entry_id, n, account_kind, account_owner, currency, layer, amount_minor)
    SELECT max(id), 1, 'receivable', 'b-' || :line, 'CNY', 'pending', :amount FROM bench_entries
    UNION ALL
    SELECT max(id), 2, 'clearing', 'b-' || :line, 'CNY', 'pending', -:amount FROM bench_entries
;
INSERT INTO bench_jobs (kind, payload, status, attempts, run_at_ms, updated_at_ms)
    VALUES ('payout.submit', '{"drawdown_id":"' || :line || '"}', 'pending', 0, 1, 1)
;
INSERT INTO bench_outbox (aggregate_type, aggregate_id, topic, payload, created_at_ms)
    VALUES ('drawdown', :line, 'drawdown.disbursing', printf('%.400c', 'z'), 1)
;
INSERT INTO bench_audit_pending (body) VALUES (printf('%.300c', 'a'))
;
UPDATE bench_idempotency SET response = printf('%.3500c', 'r') WHERE scope = 'loadtest' AND key = :key
;
