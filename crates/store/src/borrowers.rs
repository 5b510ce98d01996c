//! Borrowers as the store keeps them: sealed personal data, blind indexes to find them by
//! identifier, and the history of their contact and payment details.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::borrower::{BorrowerChange, BorrowerKind, ChangedField};
use lendcore_domain::reasons::Language;

use crate::StoreError;
use crate::sql::from_row;
use crate::time::{from_ms, to_ms};
use crate::unit_of_work::SqlUnitOfWork;

/// A borrower row. `personal` is sealed by the engine; the store never sees it in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBorrower {
    pub id: String,
    pub kind: BorrowerKind,
    pub personal: String,
    pub resident_index: Option<String>,
    pub credit_code_index: Option<String>,
    pub mobile_index: Option<String>,
    /// The language they are written to; `None`: the lender's default.
    pub language: Option<Language>,
    pub revision: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which blind index to look a borrower up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BorrowerIndex {
    ResidentId,
    CreditCode,
    Mobile,
}

#[async_trait]
pub trait BorrowerRepository {
    /// [`StoreError::Duplicate`] if another borrower has the same resident id or credit code.
    async fn insert_borrower(&mut self, borrower: &StoredBorrower) -> Result<(), StoreError>;

    /// Writes a borrower read at `read_revision`, with the changes to append to its history.
    async fn update_borrower(
        &mut self,
        borrower: &StoredBorrower,
        read_revision: i64,
        changes: &[BorrowerChange],
    ) -> Result<(), StoreError>;

    async fn find_borrower(&mut self, id: &str) -> Result<Option<StoredBorrower>, StoreError>;

    /// Borrowers whose blind index of that kind is `index`, oldest first.
    async fn find_borrowers_by(
        &mut self,
        kind: BorrowerIndex,
        index: &str,
    ) -> Result<Vec<StoredBorrower>, StoreError>;

    /// The change history, oldest first.
    async fn borrower_changes(&mut self, id: &str) -> Result<Vec<BorrowerChange>, StoreError>;
}

struct BorrowerRow {
    id: String,
    kind: String,
    personal: String,
    resident_index: Option<String>,
    credit_code_index: Option<String>,
    mobile_index: Option<String>,
    language: Option<String>,
    revision: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
}
from_row!(BorrowerRow {
    id,
    kind,
    personal,
    resident_index,
    credit_code_index,
    mobile_index,
    language,
    revision,
    created_at_ms,
    updated_at_ms
});

struct ChangeRow {
    borrower_id: String,
    seq: i64,
    field: String,
    before_value: Option<String>,
    after_value: String,
    actor: String,
    at_ms: i64,
}
from_row!(ChangeRow {
    borrower_id,
    seq,
    field,
    before_value,
    after_value,
    actor,
    at_ms
});

const SELECT: &str = "SELECT id, kind, personal, resident_index, credit_code_index, mobile_index, \
     language, revision, created_at_ms, updated_at_ms FROM borrowers";

#[async_trait]
impl BorrowerRepository for SqlUnitOfWork {
    async fn insert_borrower(&mut self, b: &StoredBorrower) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "INSERT INTO borrowers (id, kind, personal, resident_index, \
                    credit_code_index, mobile_index, revision, created_at_ms, \
                    updated_at_ms, language) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                    $10)",
            )
            .bind(&b.id)
            .bind(kind_str(b.kind))
            .bind(&b.personal)
            .bind(b.resident_index.as_deref())
            .bind(b.credit_code_index.as_deref())
            .bind(b.mobile_index.as_deref())
            .bind(b.revision)
            .bind(to_ms(b.created_at))
            .bind(to_ms(b.updated_at))
            .bind(b.language.map(Language::tag)),
        )
        .await?;
        Ok(())
    }

    async fn update_borrower(
        &mut self,
        b: &StoredBorrower,
        read_revision: i64,
        changes: &[BorrowerChange],
    ) -> Result<(), StoreError> {
        let updated = self
            .execute(
                self.sql(
                    "UPDATE borrowers SET personal = $1, mobile_index = $2, revision = \
                        $3, updated_at_ms = $4, language = $7 WHERE id = $5 AND revision = \
                        $6",
                )
                .bind(&b.personal)
                .bind(b.mobile_index.as_deref())
                .bind(b.revision)
                .bind(to_ms(b.updated_at))
                .bind(&b.id)
                .bind(read_revision)
                .bind(b.language.map(Language::tag)),
            )
            .await?;
        if updated != 1 {
            return Err(StoreError::Stale("borrower"));
        }
        for change in changes {
            self.execute(
                self.sql(
                    "INSERT INTO borrower_changes (borrower_id, seq, field, before_value, \
                        after_value, actor, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&change.borrower_id)
                .bind(change.seq)
                .bind(field_str(change.field))
                .bind(change.before.as_deref())
                .bind(&change.after)
                .bind(&change.actor)
                .bind(to_ms(change.at)),
            )
            .await?;
        }
        Ok(())
    }

    async fn find_borrower(&mut self, id: &str) -> Result<Option<StoredBorrower>, StoreError> {
        let sql = format!("{SELECT} WHERE id = $1");
        let row: Option<BorrowerRow> = self.fetch_optional(self.sql(&sql).bind(id)).await?;
        row.map(from_row).transpose()
    }

    async fn find_borrowers_by(
        &mut self,
        kind: BorrowerIndex,
        index: &str,
    ) -> Result<Vec<StoredBorrower>, StoreError> {
        let column = match kind {
            BorrowerIndex::ResidentId => "resident_index",
            BorrowerIndex::CreditCode => "credit_code_index",
            BorrowerIndex::Mobile => "mobile_index",
        };
        let sql = format!("{SELECT} WHERE {column} = $1 ORDER BY created_at_ms, id");
        let rows: Vec<BorrowerRow> = self.fetch_all(self.sql(&sql).bind(index)).await?;
        rows.into_iter().map(from_row).collect()
    }

    async fn borrower_changes(&mut self, id: &str) -> Result<Vec<BorrowerChange>, StoreError> {
        let rows: Vec<ChangeRow> = self
            .fetch_all(
                self.sql(
                    "SELECT borrower_id, seq, field, before_value, after_value, actor, \
                        at_ms FROM borrower_changes WHERE borrower_id = $1 ORDER BY seq",
                )
                .bind(id),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                const T: &str = "borrower_changes";
                Ok(BorrowerChange {
                    field: parse_field(&row.field)
                        .ok_or_else(|| StoreError::corrupt(T, format!("field {}", row.field)))?,
                    at: from_ms(T, row.at_ms)?,
                    borrower_id: row.borrower_id,
                    seq: row.seq,
                    before: row.before_value,
                    after: row.after_value,
                    actor: row.actor,
                })
            })
            .collect()
    }
}

fn kind_str(kind: BorrowerKind) -> &'static str {
    match kind {
        BorrowerKind::Individual => "individual",
        BorrowerKind::Enterprise => "enterprise",
    }
}

fn field_str(field: ChangedField) -> &'static str {
    match field {
        ChangedField::Mobile => "mobile",
        ChangedField::Address => "address",
        ChangedField::BankAccount => "bank_account",
    }
}

pub(crate) fn parse_field(s: &str) -> Option<ChangedField> {
    [
        ChangedField::Mobile,
        ChangedField::Address,
        ChangedField::BankAccount,
    ]
    .into_iter()
    .find(|f| field_str(*f) == s)
}

fn from_row(row: BorrowerRow) -> Result<StoredBorrower, StoreError> {
    const T: &str = "borrowers";
    let kind = [BorrowerKind::Individual, BorrowerKind::Enterprise]
        .into_iter()
        .find(|k| kind_str(*k) == row.kind)
        .ok_or_else(|| StoreError::corrupt(T, format!("kind {}", row.kind)))?;
    Ok(StoredBorrower {
        kind,
        created_at: from_ms(T, row.created_at_ms)?,
        updated_at: from_ms(T, row.updated_at_ms)?,
        id: row.id,
        personal: row.personal,
        resident_index: row.resident_index,
        credit_code_index: row.credit_code_index,
        mobile_index: row.mobile_index,
        // A language this build does not know (written by a newer one): the lender's default.
        language: row.language.as_deref().and_then(Language::from_tag),
        revision: row.revision,
    })
}
