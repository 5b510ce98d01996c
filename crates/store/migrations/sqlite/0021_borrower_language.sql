-- The language a borrower is written to (`en`, `zh-Hans`); NULL: the lender's default
-- (`notifications.language`).
ALTER TABLE borrowers ADD COLUMN language TEXT;
