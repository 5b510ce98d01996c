-- The tables a drawdown confirmation writes, shaped as lendcore's (crates/store/migrations/
-- sqlite): the same keys and secondary indexes per table, rows of about the same width, as
-- bench/pgbench/schema.sql is for PostgreSQL. Seeded with 60,000 credit lines and quoted
-- drawdowns (a reference runs at most 50,000 units, each on a line of its own). Issue #15's SQLite reference: what this machine does for the confirmation's work
-- alone, run by `lendcore loadtest drawdowns --report` (crates/lendcore/src/reference.rs).
CREATE TABLE bench_lines (
    id INTEGER PRIMARY KEY,
    borrower_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    limit_minor INTEGER NOT NULL,
    drawn_minor INTEGER NOT NULL,
    held_minor INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX bench_lines_by_borrower ON bench_lines (borrower_id, updated_at_ms);

CREATE TABLE bench_drawdowns (
    id INTEGER PRIMARY KEY,
    line_id INTEGER NOT NULL,
    borrower_id TEXT NOT NULL,
    state TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX bench_drawdowns_by_line ON bench_drawdowns (line_id, created_at_ms);
CREATE INDEX bench_drawdowns_to_close ON bench_drawdowns (state, id);
CREATE INDEX bench_drawdowns_by_borrower ON bench_drawdowns (borrower_id, created_at_ms);

CREATE TABLE bench_transitions (
    drawdown_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (drawdown_id, seq)
);

CREATE TABLE bench_entries (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL,
    kind TEXT NOT NULL,
    reverses INTEGER,
    at_ms INTEGER NOT NULL
);
CREATE INDEX bench_entries_by_reference ON bench_entries (reference, at_ms);
CREATE UNIQUE INDEX bench_entries_reversed_once ON bench_entries (reverses) WHERE reverses IS NOT NULL;

CREATE TABLE bench_postings (
    entry_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    account_kind TEXT NOT NULL,
    account_owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    layer TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    PRIMARY KEY (entry_id, n)
);
CREATE INDEX bench_postings_by_account ON bench_postings (account_kind, account_owner, currency, layer);

CREATE TABLE bench_jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    run_at_ms INTEGER NOT NULL,
    lease_expires_at_ms INTEGER,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX bench_jobs_due ON bench_jobs (run_at_ms) WHERE status = 'pending';
CREATE INDEX bench_jobs_leased ON bench_jobs (lease_expires_at_ms) WHERE status = 'running';
CREATE INDEX bench_jobs_by_status ON bench_jobs (status, updated_at_ms);
CREATE INDEX bench_jobs_by_kind ON bench_jobs (kind, id);

CREATE TABLE bench_outbox (
    id INTEGER PRIMARY KEY,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    published_at_ms INTEGER
);
CREATE INDEX bench_outbox_pending ON bench_outbox (created_at_ms) WHERE published_at_ms IS NULL;
CREATE INDEX bench_outbox_by_aggregate ON bench_outbox (aggregate_type, aggregate_id, created_at_ms);

CREATE TABLE bench_audit_pending (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE bench_idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX bench_idempotency_by_age ON bench_idempotency (created_at_ms);

WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60000)
INSERT INTO bench_lines SELECT x, 'b-' || x, 'CNY', 100000000, 0, 0, 1, 0 FROM n;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60000)
INSERT INTO bench_drawdowns SELECT x, x, 'b-' || x, 'quoted', 1, 0, 0, printf('%.1500c', 'x') FROM n;
