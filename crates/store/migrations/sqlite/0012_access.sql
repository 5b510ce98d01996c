-- Who may call lendcore. Secrets are never stored in clear: API keys and session tokens as
-- SHA-256 of the token (they are long and random), passwords as argon2 hashes, one-time codes
-- as keyed hashes, second-factor keys sealed by the engine.

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    scopes         TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    revoked_at_ms  INTEGER
);

CREATE TABLE operators (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('viewer', 'support', 'risk', 'ops', 'admin')),
    password_hash   TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    disabled_at_ms  INTEGER
);

-- A time-based second factor, for an operator (always) or a borrower (when they turn it on).
CREATE TABLE second_factors (
    owner           TEXT PRIMARY KEY,
    secret          TEXT NOT NULL,
    activated_at_ms INTEGER,
    last_step       INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    subject_type   TEXT NOT NULL CHECK (subject_type IN ('borrower', 'operator')),
    subject_id     TEXT NOT NULL,
    borrower_id    TEXT,
    stage          TEXT NOT NULL CHECK (stage IN ('active', 'second_factor')),
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    revoked_at_ms  INTEGER
);

CREATE TABLE otp_challenges (
    id             TEXT PRIMARY KEY,
    mobile_index   TEXT NOT NULL,
    code_hash      TEXT NOT NULL,
    client         TEXT NOT NULL,
    attempts       INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'used', 'exhausted')),
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL
);
CREATE INDEX otp_challenges_by_mobile ON otp_challenges (mobile_index, created_at_ms);
CREATE INDEX otp_challenges_by_client ON otp_challenges (client, created_at_ms);

-- Failed attempts (wrong codes, wrong passwords), counted per number, per client, per
-- username to slow down guessing.
CREATE TABLE auth_failures (
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
);
CREATE INDEX auth_failures_by_subject ON auth_failures (kind, subject, at_ms);
