-- Maintenance windows operators announce; payouts and confirmed drawdowns wait them out.

CREATE TABLE maintenance_windows (
    id               TEXT PRIMARY KEY,
    starts_at_ms     INTEGER NOT NULL,
    ends_at_ms       INTEGER NOT NULL,
    message          TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    cancelled_at_ms  INTEGER,
    revision         INTEGER NOT NULL,
    CHECK (ends_at_ms > starts_at_ms)
);
CREATE INDEX maintenance_windows_by_end ON maintenance_windows (ends_at_ms);
