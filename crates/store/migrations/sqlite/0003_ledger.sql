-- The double-entry ledger. Entries and their postings are only ever inserted: corrections are
-- reversing entries. Balances are sums of postings, so a busy account (a channel's settlement
-- account) is never one row that every transaction must lock: its postings just append.

CREATE TABLE ledger_entries (
    id           TEXT PRIMARY KEY,
    event        TEXT NOT NULL,
    layer        TEXT NOT NULL CHECK (layer IN ('pending', 'posted')),
    reference    TEXT NOT NULL,
    reverses     TEXT REFERENCES ledger_entries (id),
    at_ms        INTEGER NOT NULL
);
CREATE INDEX ledger_entries_by_reference ON ledger_entries (reference, at_ms);
CREATE UNIQUE INDEX ledger_entries_reversed_once ON ledger_entries (reverses) WHERE reverses IS NOT NULL;

CREATE TABLE ledger_postings (
    entry_id       TEXT NOT NULL REFERENCES ledger_entries (id),
    line_no        INTEGER NOT NULL,
    account_kind   TEXT NOT NULL,
    account_owner  TEXT NOT NULL,
    currency       TEXT NOT NULL,
    layer          TEXT NOT NULL,
    debit_minor    INTEGER NOT NULL CHECK (debit_minor >= 0),
    credit_minor   INTEGER NOT NULL CHECK (credit_minor >= 0),
    PRIMARY KEY (entry_id, line_no),
    CHECK ((debit_minor > 0 AND credit_minor = 0) OR (credit_minor > 0 AND debit_minor = 0))
);
CREATE INDEX ledger_postings_by_account ON ledger_postings (account_kind, account_owner, currency, layer);
