//! Journal entries and their postings, insert-only. An entry's postings are written with it in
//! one unit of work; balances are computed from postings.

use async_trait::async_trait;
use lendcore_domain::ledger::{Account, AccountKind, EntryEvent, JournalEntry, Layer, Posting};
use lendcore_domain::money::Currency;

use crate::StoreError;
use crate::sql::from_row;
use crate::time::{from_ms, to_ms};
use crate::unit_of_work::SqlUnitOfWork;

#[async_trait]
pub trait LedgerRepository {
    /// Appends an entry (already balanced by the domain). An entry that reverses one already
    /// reversed is [`StoreError::Duplicate`].
    async fn post_entry(&mut self, entry: &JournalEntry) -> Result<(), StoreError>;

    /// Appends several entries at once, as [`LedgerRepository::post_entry`] does one.
    async fn post_entries(&mut self, entries: &[JournalEntry]) -> Result<(), StoreError>;

    /// Every entry about one reference (a loan), oldest first, with its postings.
    async fn entries_for(&mut self, reference: &str) -> Result<Vec<JournalEntry>, StoreError>;

    /// Debit minus credit of `account` in `layer`.
    async fn account_balance(&mut self, account: &Account, layer: Layer)
    -> Result<i64, StoreError>;

    /// Ids of entries whose postings do not balance per currency: always none, checked after
    /// every test and by operators' audits.
    async fn unbalanced_entries(&mut self) -> Result<Vec<String>, StoreError>;
}

/// Rows per multi-row statement: well under both databases' limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

const ENTRIES: &str = "INSERT INTO ledger_entries (id, event, layer, reference, reverses, at_ms)";
const POSTINGS: &str = "INSERT INTO ledger_postings (entry_id, line_no, account_kind, \
                        account_owner, currency, layer, debit_minor, credit_minor)";

/// Binds entries' six columns, row after row, in the order of [`ENTRIES`]. A macro: one shape of
/// statement takes the postings' values after them.
macro_rules! bind_entries {
    ($query:expr, $entries:expr) => {{
        let mut query = $query;
        for entry in $entries {
            query = query
                .bind(&entry.id)
                .bind(event_str(entry.event))
                .bind(layer_str(entry.layer))
                .bind(&entry.reference)
                .bind(entry.reverses.as_deref())
                .bind(to_ms(entry.at));
        }
        query
    }};
}

/// Binds postings' eight columns, row after row, in the order of [`POSTINGS`].
macro_rules! bind_postings {
    ($query:expr, $postings:expr) => {{
        let mut query = $query;
        for (entry, line_no, posting) in $postings {
            query = query
                .bind(&entry.id)
                .bind(*line_no as i64)
                .bind(posting.account.kind.as_str())
                .bind(&posting.account.owner)
                .bind(posting.account.currency.code())
                .bind(layer_str(entry.layer))
                .bind(posting.debit_minor)
                .bind(posting.credit_minor);
        }
        query
    }};
}

struct EntryRow {
    id: String,
    event: String,
    layer: String,
    reference: String,
    reverses: Option<String>,
    at_ms: i64,
}
from_row!(EntryRow {
    id,
    event,
    layer,
    reference,
    reverses,
    at_ms
});

struct PostingRow {
    entry_id: String,
    account_kind: String,
    account_owner: String,
    currency: String,
    debit_minor: i64,
    credit_minor: i64,
}
from_row!(PostingRow {
    entry_id,
    account_kind,
    account_owner,
    currency,
    debit_minor,
    credit_minor
});

#[async_trait]
impl LedgerRepository for SqlUnitOfWork {
    async fn post_entry(&mut self, entry: &JournalEntry) -> Result<(), StoreError> {
        self.post_entries(std::slice::from_ref(entry)).await
    }

    async fn post_entries(&mut self, entries: &[JournalEntry]) -> Result<(), StoreError> {
        let postings: Vec<(&JournalEntry, usize, &Posting)> = entries
            .iter()
            .flat_map(|e| e.postings.iter().enumerate().map(move |(n, p)| (e, n, p)))
            .collect();
        if self.backend() == crate::Backend::Postgres
            && !postings.is_empty()
            && entries.len() <= ROWS_PER_STATEMENT
            && postings.len() <= ROWS_PER_STATEMENT
        {
            // One round trip: the entries in a data-modifying CTE, the postings in the
            // statement around it (their foreign keys are checked at its end, both rows in).
            let sql = format!(
                "WITH entries AS ({ENTRIES} VALUES {}) {POSTINGS} VALUES {}",
                crate::placeholders_from(self.backend(), 0, entries.len(), 6),
                crate::placeholders_from(self.backend(), entries.len() * 6, postings.len(), 8)
            );
            self.execute(bind_postings!(
                bind_entries!(self.sql(&sql), entries),
                &postings
            ))
            .await?;
            return Ok(());
        }
        // Many rows per statement: close of business posts a batch of loans' entries at once.
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "{ENTRIES} VALUES {}",
                crate::placeholders(self.backend(), chunk.len(), 6)
            );
            self.execute(bind_entries!(self.sql(&sql), chunk)).await?;
        }
        for chunk in postings.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "{POSTINGS} VALUES {}",
                crate::placeholders(self.backend(), chunk.len(), 8)
            );
            self.execute(bind_postings!(self.sql(&sql), chunk)).await?;
        }
        Ok(())
    }

    async fn entries_for(&mut self, reference: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let rows: Vec<EntryRow> = self
            .fetch_all(
                self.sql(
                    "SELECT id, event, layer, reference, reverses, at_ms FROM \
                        ledger_entries WHERE reference = $1 ORDER BY at_ms, id",
                )
                .bind(reference),
            )
            .await?;
        let postings: Vec<PostingRow> = self
            .fetch_all(
                self.sql(
                    "SELECT p.entry_id, p.account_kind, p.account_owner, p.currency, \
                p.debit_minor, p.credit_minor FROM ledger_postings p JOIN \
                ledger_entries e ON e.id = p.entry_id WHERE e.reference = $1 ORDER \
                BY p.entry_id, p.line_no",
                )
                .bind(reference),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let mine = postings
                    .iter()
                    .filter(|p| p.entry_id == row.id)
                    .map(posting_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                entry_from_row(row, mine)
            })
            .collect()
    }

    async fn account_balance(
        &mut self,
        account: &Account,
        layer: Layer,
    ) -> Result<i64, StoreError> {
        let balance: Option<i64> = self
            .fetch_one::<(_,)>(
                self.sql(
                    "SELECT CAST(SUM(debit_minor - credit_minor) AS BIGINT) FROM \
                        ledger_postings WHERE account_kind = $1 AND account_owner = $2 AND \
                        currency = $3 AND layer = $4",
                )
                .bind(account.kind.as_str())
                .bind(&account.owner)
                .bind(account.currency.code())
                .bind(layer_str(layer)),
            )
            .await
            .map(|(v,)| v)?;
        Ok(balance.unwrap_or(0))
    }

    async fn unbalanced_entries(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .fetch_all::<(_,)>(self.sql(
                "SELECT entry_id FROM ledger_postings GROUP BY entry_id, currency \
                    HAVING SUM(debit_minor) <> SUM(credit_minor) ORDER BY entry_id",
            ))
            .await
            .map(|v| v.into_iter().map(|(v,)| v).collect())?)
    }
}

fn layer_str(layer: Layer) -> &'static str {
    match layer {
        Layer::Pending => "pending",
        Layer::Posted => "posted",
    }
}

fn event_str(event: EntryEvent) -> &'static str {
    match event {
        EntryEvent::Disburse => "disburse",
        EntryEvent::AccrueInterest => "accrue_interest",
        EntryEvent::ChargeFee => "charge_fee",
        EntryEvent::ChargePenalty => "charge_penalty",
        EntryEvent::Repay => "repay",
        EntryEvent::Waive => "waive",
        EntryEvent::WriteOff => "write_off",
        EntryEvent::Reverse => "reverse",
    }
}

fn posting_from_row(row: &PostingRow) -> Result<Posting, StoreError> {
    const T: &str = "ledger_postings";
    Ok(Posting {
        account: Account {
            kind: AccountKind::parse(&row.account_kind).ok_or_else(|| {
                StoreError::corrupt(T, format!("account kind {}", row.account_kind))
            })?,
            owner: row.account_owner.clone(),
            currency: Currency::parse(&row.currency)
                .ok_or_else(|| StoreError::corrupt(T, format!("currency {}", row.currency)))?,
        },
        debit_minor: row.debit_minor,
        credit_minor: row.credit_minor,
    })
}

fn entry_from_row(row: EntryRow, postings: Vec<Posting>) -> Result<JournalEntry, StoreError> {
    const T: &str = "ledger_entries";
    Ok(JournalEntry {
        event: named(T, &row.event)?,
        layer: named(T, &row.layer)?,
        at: from_ms(T, row.at_ms)?,
        id: row.id,
        reference: row.reference,
        reverses: row.reverses,
        postings,
    })
}

/// A snake_case enum stored by its serde name.
fn named<E: serde::de::DeserializeOwned>(table: &'static str, name: &str) -> Result<E, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|e| StoreError::corrupt(table, format!("{name}: {e}")))
}
