-- Credentials' leftovers are pruned once nothing needs them (engine/src/access/housekeeping.rs);
-- these find them without a scan. The codes' index also serves the hourly budget of codes.
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);
CREATE INDEX otp_challenges_by_time ON otp_challenges (created_at_ms);
CREATE INDEX auth_failures_by_time ON auth_failures (at_ms);
CREATE INDEX links_by_expiry ON links (expires_at_ms);
