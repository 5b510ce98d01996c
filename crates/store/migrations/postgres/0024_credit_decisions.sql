-- Credit policies are reference data (DESIGN §5): every node holds all of them. A version's
-- document never changes once activated; the version in effect at an instant is the activated
-- one with the latest effective time not after it.
CREATE TABLE credit_policies (
    code           TEXT PRIMARY KEY,
    created_by     TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

CREATE TABLE credit_policy_versions (
    code               TEXT NOT NULL REFERENCES credit_policies (code),
    version            BIGINT NOT NULL,
    document           TEXT NOT NULL,
    sha256             TEXT NOT NULL,
    authored_by        TEXT NOT NULL,
    authored_at_ms     BIGINT NOT NULL,
    activated_by       TEXT,
    activated_at_ms    BIGINT,
    effective_from_ms  BIGINT,
    PRIMARY KEY (code, version)
);
CREATE INDEX credit_policy_versions_by_effect ON credit_policy_versions (effective_from_ms, activated_at_ms);

-- A borrower's decisions, keyed by the borrower first: the input snapshot, the features, the
-- policy version and everything the evaluation found, kept as it was (never updated).
CREATE TABLE credit_decisions (
    borrower_id     TEXT NOT NULL,
    id              TEXT NOT NULL,
    stage           TEXT NOT NULL,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    policy_code     TEXT NOT NULL,
    policy_version  BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    record          TEXT NOT NULL,
    decided_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (borrower_id, id)
);
CREATE INDEX credit_decisions_by_subject ON credit_decisions (borrower_id, subject_type, subject_id, decided_at_ms);
