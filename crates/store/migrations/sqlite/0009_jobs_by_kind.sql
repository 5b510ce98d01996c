-- The scheduler looks up the latest job of a kind (the daily close of business) every half
-- minute in every process; the job table only grows, so that must be an index lookup.

CREATE INDEX jobs_by_kind ON jobs (kind, id);
