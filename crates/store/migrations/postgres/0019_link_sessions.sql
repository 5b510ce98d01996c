-- A session opened from a link reaches only what the link opens: `scope` is the link's
-- `purpose:subject`; NULL for a session signed in with a code or a password.
ALTER TABLE sessions ADD COLUMN scope TEXT;

-- Sessions opened from links before scopes existed would keep a borrower's full rights for
-- thirty days: they end now (their owners sign in again). The audit names them.
UPDATE sessions SET expires_at_ms = created_at_ms
 WHERE subject_type = 'borrower' AND scope IS NULL
   AND ('session:' || id) IN (SELECT actor FROM audit_pending WHERE action = 'link.opened'
                              UNION SELECT actor FROM audit_log WHERE action = 'link.opened');

-- Links sent for one subject are counted, to limit how often a borrower is texted one.
CREATE INDEX links_by_subject ON links (subject, created_at_ms);
