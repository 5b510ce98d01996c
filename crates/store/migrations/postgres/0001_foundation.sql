-- Foundation: products and their versions, durable jobs, idempotency keys, the outbox.
-- Instants are UTC epoch milliseconds (BIGINT; INTEGER on SQLite) on both stores, so ordering and
-- arithmetic agree. Every integer is BIGINT so both stores decode to the same Rust types.

CREATE TABLE products (
    id             TEXT PRIMARY KEY,
    code           TEXT COLLATE "C" NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('installment', 'revolving')),
    currency       TEXT NOT NULL,
    ends_at_ms     BIGINT,
    revision       BIGINT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);

CREATE TABLE product_versions (
    product_id         TEXT NOT NULL REFERENCES products (id),
    version            BIGINT NOT NULL,
    effective_from_ms  BIGINT NOT NULL,
    terms              TEXT NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    PRIMARY KEY (product_id, version)
);

CREATE TABLE jobs (
    id                   TEXT PRIMARY KEY,
    kind                 TEXT NOT NULL,
    payload              TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'dead')),
    attempts             BIGINT NOT NULL,
    max_attempts         BIGINT NOT NULL,
    run_at_ms            BIGINT NOT NULL,
    lease_owner          TEXT,
    lease_token          TEXT,
    lease_expires_at_ms  BIGINT,
    last_error           TEXT,
    created_at_ms        BIGINT NOT NULL,
    updated_at_ms        BIGINT NOT NULL,
    finished_at_ms       BIGINT
);
CREATE INDEX jobs_due ON jobs (run_at_ms) WHERE status = 'pending';
CREATE INDEX jobs_leased ON jobs (lease_expires_at_ms) WHERE status = 'running';
CREATE INDEX jobs_by_status ON jobs (status, updated_at_ms);

CREATE TABLE idempotency_keys (
    scope            TEXT NOT NULL,
    idem_key         TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    response         TEXT,
    created_at_ms    BIGINT NOT NULL,
    completed_at_ms  BIGINT,
    PRIMARY KEY (scope, idem_key)
);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    topic            TEXT NOT NULL,
    aggregate_type   TEXT NOT NULL,
    aggregate_id     TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    published_at_ms  BIGINT
);
CREATE INDEX outbox_pending ON outbox (created_at_ms) WHERE published_at_ms IS NULL;
CREATE INDEX outbox_by_aggregate ON outbox (aggregate_type, aggregate_id, created_at_ms);
