-- A credit decision reads a borrower's newest drawdowns: an index by borrower and age gives
-- them in order (no sort, no lookup through the borrower's lines first) and keys drawdowns by
-- borrower as DESIGN section 5 asks. The index by line served only that read; it goes, so a
-- drawdown still carries the same number of indexes.
DROP INDEX drawdowns_by_line;
CREATE INDEX drawdowns_by_borrower ON drawdowns (borrower_id, created_at_ms);
