-- A session opened from a link reaches only what the link opens: `scope` is the link's
-- `purpose:subject`; NULL for a session signed in with a code or a password.
ALTER TABLE sessions ADD COLUMN scope TEXT;

-- Links sent for one subject are counted, to limit how often a borrower is texted one.
CREATE INDEX links_by_subject ON links (subject, created_at_ms);
