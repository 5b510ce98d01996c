-- Incidents: trouble with the service as borrowers are told of it (DESIGN section 5: a
-- coordinator table, no borrower's rows). The document is the incident as JSON; the columns
-- beside it are what queries select by. An alert raises at most one open incident.
CREATE TABLE incidents (
    id             TEXT PRIMARY KEY,
    document       TEXT NOT NULL,
    alert_id       TEXT,
    started_at_ms  BIGINT NOT NULL,
    ended_at_ms    BIGINT,
    revision       BIGINT NOT NULL
);
CREATE UNIQUE INDEX incidents_open_by_alert ON incidents (alert_id)
    WHERE alert_id IS NOT NULL AND ended_at_ms IS NULL;
CREATE INDEX incidents_by_start ON incidents (started_at_ms);

-- Who was told of an incident, so its end reaches the same borrowers once: a borrower's rows,
-- keyed by borrower first.
CREATE TABLE incident_notices (
    borrower_id      TEXT NOT NULL,
    incident_id      TEXT NOT NULL,
    told_at_ms       BIGINT NOT NULL,
    end_told_at_ms   BIGINT,
    PRIMARY KEY (borrower_id, incident_id)
);
CREATE INDEX incident_notices_by_incident ON incident_notices (incident_id, borrower_id);
