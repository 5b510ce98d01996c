-- A few of the records each count was made of ("drawdown:ID"), the latest rolled up, so an
-- alert can point at examples of what it counts.
ALTER TABLE alert_counts ADD COLUMN examples TEXT NOT NULL DEFAULT '[]';
