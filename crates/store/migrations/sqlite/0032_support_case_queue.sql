-- Support's queue of cases no longer waiting for support (answered, resolved) is read newest
-- opened first; the deadline index serves only the cases that wait.
CREATE INDEX support_cases_by_opening ON support_cases (status, opened_at_ms);
