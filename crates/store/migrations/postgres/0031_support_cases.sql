-- Support cases and their messages: a borrower's (DESIGN section 5), keyed by borrower first
-- and read by borrower in every statement but support's queue. The document is the case as
-- JSON; the columns beside it are what queries select by.
CREATE TABLE support_cases (
    borrower_id    TEXT NOT NULL,
    id             TEXT NOT NULL,
    subject_type   TEXT NOT NULL,
    subject_id     TEXT NOT NULL,
    status         TEXT NOT NULL,
    respond_by_ms  BIGINT,
    opened_at_ms   BIGINT NOT NULL,
    revision       BIGINT NOT NULL,
    document       TEXT NOT NULL,
    PRIMARY KEY (borrower_id, id)
);
CREATE INDEX support_cases_by_subject ON support_cases (borrower_id, subject_type, subject_id);
-- Support's queue across borrowers: what waits, soonest deadline first.
CREATE INDEX support_cases_queue ON support_cases (status, respond_by_ms);

CREATE TABLE support_case_messages (
    borrower_id  TEXT NOT NULL,
    case_id      TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    document     TEXT NOT NULL,
    PRIMARY KEY (borrower_id, case_id, seq)
);
