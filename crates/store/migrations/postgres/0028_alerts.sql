-- Alerting is the operators' (DESIGN section 5: coordinator tables, no borrower's rows). Rules
-- are data: the document is the rule as written, validated before it is stored.
CREATE TABLE alert_rules (
    name           TEXT PRIMARY KEY,
    document       TEXT NOT NULL,
    revision       BIGINT NOT NULL,
    updated_by     TEXT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);

-- The signals rules count, by minute and label set (labels as sorted JSON), rolled up from
-- the audit chain: sealed, ordered by seq, the same for every process.
CREATE TABLE alert_counts (
    signal     TEXT NOT NULL,
    minute_ms  BIGINT NOT NULL,
    labels     TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (signal, minute_ms, labels)
);

-- Alerting's bookkeeping: how far the audit chain has been rolled up (`audit`: the last seq
-- counted), and steps done once (`defaults`: the default rules were put in place).
CREATE TABLE alert_marks (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);

-- An alert of one rule and group: pending, firing, or resolved. At most one open at a time
-- per rule and group, so an alert that lasts is one alert, told once.
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    rule            TEXT NOT NULL,
    grouping        TEXT NOT NULL,
    state           TEXT NOT NULL,
    body            TEXT NOT NULL,
    opened_at_ms    BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    resolved_at_ms  BIGINT
);
CREATE UNIQUE INDEX alerts_open ON alerts (rule, grouping) WHERE state <> 'resolved';
CREATE INDEX alerts_by_update ON alerts (updated_at_ms);
