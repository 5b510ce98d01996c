-- The tables a drawdown confirmation writes, shaped as lendcore's (crates/store/migrations/
-- postgres): the same keys and the same secondary indexes per table, rows of about the same
-- width. Seeded with 300,000 (more than a 20-second run confirms) credit lines and quoted drawdowns. Issue #15's PostgreSQL
-- reference: what this machine's PostgreSQL does for the confirmation's work alone.
DROP TABLE IF EXISTS bench_lines, bench_drawdowns, bench_transitions, bench_entries,
    bench_postings, bench_jobs, bench_outbox, bench_audit_pending, bench_idempotency;
DROP SEQUENCE IF EXISTS bench_keys;

CREATE TABLE bench_lines (
    id BIGINT PRIMARY KEY,
    borrower_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    limit_minor BIGINT NOT NULL,
    drawn_minor BIGINT NOT NULL,
    held_minor BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX bench_lines_by_borrower ON bench_lines (borrower_id, updated_at_ms);

CREATE TABLE bench_drawdowns (
    id BIGINT PRIMARY KEY,
    line_id BIGINT NOT NULL,
    borrower_id TEXT NOT NULL,
    state TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX bench_drawdowns_by_line ON bench_drawdowns (line_id, created_at_ms);
CREATE INDEX bench_drawdowns_to_close ON bench_drawdowns (state, id);
CREATE INDEX bench_drawdowns_by_borrower ON bench_drawdowns (borrower_id, created_at_ms);

CREATE TABLE bench_transitions (
    drawdown_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (drawdown_id, seq)
);

CREATE TABLE bench_entries (
    id BIGSERIAL PRIMARY KEY,
    reference TEXT NOT NULL,
    kind TEXT NOT NULL,
    reverses BIGINT,
    at_ms BIGINT NOT NULL
);
CREATE INDEX bench_entries_by_reference ON bench_entries (reference, at_ms);
CREATE UNIQUE INDEX bench_entries_reversed_once ON bench_entries (reverses) WHERE reverses IS NOT NULL;

CREATE TABLE bench_postings (
    entry_id BIGINT NOT NULL,
    n INTEGER NOT NULL,
    account_kind TEXT NOT NULL,
    account_owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    layer TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    PRIMARY KEY (entry_id, n)
);
CREATE INDEX bench_postings_by_account ON bench_postings (account_kind, account_owner, currency, layer);

CREATE TABLE bench_jobs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    run_at_ms BIGINT NOT NULL,
    lease_expires_at_ms BIGINT,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX bench_jobs_due ON bench_jobs (run_at_ms) WHERE status = 'pending';
CREATE INDEX bench_jobs_leased ON bench_jobs (lease_expires_at_ms) WHERE status = 'running';
CREATE INDEX bench_jobs_by_status ON bench_jobs (status, updated_at_ms);
CREATE INDEX bench_jobs_by_kind ON bench_jobs (kind, id);

CREATE TABLE bench_outbox (
    id BIGSERIAL PRIMARY KEY,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    published_at_ms BIGINT
);
CREATE INDEX bench_outbox_pending ON bench_outbox (created_at_ms) WHERE published_at_ms IS NULL;
CREATE INDEX bench_outbox_by_aggregate ON bench_outbox (aggregate_type, aggregate_id, created_at_ms);

CREATE TABLE bench_audit_pending (
    id BIGSERIAL PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE bench_idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response TEXT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX bench_idempotency_by_age ON bench_idempotency (created_at_ms);
-- Idempotency keys, unique across pgbench's clients.
CREATE SEQUENCE bench_keys;

INSERT INTO bench_lines
SELECT n, 'b-' || n, 'CNY', 100000000, 0, 0, 1, 0 FROM generate_series(1, 300000) AS n;
INSERT INTO bench_drawdowns
SELECT n, n, 'b-' || n, 'quoted', 1, 0, 0, repeat('x', 1500) FROM generate_series(1, 300000) AS n;
VACUUM ANALYZE;
