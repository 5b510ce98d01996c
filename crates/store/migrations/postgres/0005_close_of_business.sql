-- The business date close of business last finished for each loan, beside its body, so a run
-- (or the next slice of one) pages only through loans still to close for its date.

ALTER TABLE drawdowns ADD COLUMN closed_through TEXT;
UPDATE drawdowns SET closed_through = (body::jsonb -> 'servicing' ->> 'last_close');
CREATE INDEX drawdowns_to_close ON drawdowns (state, id);
