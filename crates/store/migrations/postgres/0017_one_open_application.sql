-- A borrower has at most one open application: the engine checks first, and this index settles
-- two starts racing past that check.
CREATE UNIQUE INDEX applications_one_open_per_owner ON applications (owner)
    WHERE state NOT IN ('declined', 'accepted', 'withdrawn', 'expired');
