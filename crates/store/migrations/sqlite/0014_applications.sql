-- Credit applications. `doc` is the application as JSON (states, history, offer: no personal
-- data); `form` is what the borrower typed in, sealed by the engine. Documents are sealed too,
-- with the SHA-256 of their clear content to check them by.

CREATE TABLE applications (
    id             TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    borrower_id    TEXT,
    state          TEXT NOT NULL,
    doc            TEXT NOT NULL,
    form           TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL
);
CREATE INDEX applications_by_owner ON applications (owner, created_at_ms);
CREATE INDEX applications_by_state ON applications (state, updated_at_ms);

CREATE TABLE application_documents (
    id              TEXT PRIMARY KEY,
    application_id  TEXT NOT NULL REFERENCES applications (id),
    name            TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    content         TEXT NOT NULL,
    uploaded_by     TEXT NOT NULL,
    uploaded_at_ms  INTEGER NOT NULL
);
CREATE INDEX application_documents_by_application ON application_documents (application_id, uploaded_at_ms);
