-- A borrower has at most one open application. `open_owner` is the owner while the application
-- is open and NULL once it has ended (the store writes it with the state: see
-- `ApplicationStatus::is_final`); a unique index on it settles two starts racing past the
-- engine's check. Where one owner already has two open applications (possible before this
-- check existed), only the newest holds the place; the others can still end as usual.
ALTER TABLE applications ADD COLUMN open_owner TEXT;
UPDATE applications SET open_owner = owner
 WHERE id IN (SELECT MAX(id) FROM applications
              WHERE state NOT IN ('declined', 'accepted', 'withdrawn', 'expired')
              GROUP BY owner);
CREATE UNIQUE INDEX applications_one_open_per_owner ON applications (open_owner);
