-- The price tier a credit line was granted in (from its offer): drawdowns on the line pay the
-- product's rate for that tier. Lines granted before tiers existed have none.
ALTER TABLE credit_lines ADD COLUMN rate_tier TEXT;
