-- Champion and challenger. A challenge is reference data (a coordinator table): which policy
-- version challenges, for what share, in which mode. `running` is 1 while it runs and NULL
-- once it ended, so the unique constraint lets one challenge run at a time.
CREATE TABLE policy_challenges (
    id               TEXT PRIMARY KEY,
    code             TEXT NOT NULL,
    version          INTEGER NOT NULL,
    share_percent    INTEGER NOT NULL,
    mode             TEXT NOT NULL,
    started_by       TEXT NOT NULL,
    started_at_ms    INTEGER NOT NULL,
    ended_by         TEXT,
    ended_at_ms      INTEGER,
    running          INTEGER UNIQUE,
    FOREIGN KEY (code, version) REFERENCES credit_policy_versions (code, version)
);

-- Both sides of each decision a challenger took part in, a borrower's (DESIGN section 5):
-- keyed by borrower first. The full evaluations are in the decision record; these columns are
-- what the comparison counts by.
CREATE TABLE challenge_decisions (
    borrower_id          TEXT NOT NULL,
    decision_id          TEXT NOT NULL,
    challenge_id         TEXT NOT NULL,
    champion_code        TEXT NOT NULL,
    champion_version     INTEGER NOT NULL,
    champion_outcome     TEXT NOT NULL,
    champion_score       INTEGER,
    champion_reason      TEXT,
    challenger_outcome   TEXT NOT NULL,
    challenger_score     INTEGER,
    challenger_reason    TEXT,
    applied              TEXT NOT NULL,
    decided_at_ms        INTEGER NOT NULL,
    PRIMARY KEY (borrower_id, decision_id)
);
CREATE INDEX challenge_decisions_by_challenge ON challenge_decisions (challenge_id);
