-- An applicant who is not registered as a borrower yet is reached at the number they signed in
-- with, read from their application when the message is sent.
ALTER TABLE deliveries ADD COLUMN application_id TEXT;
