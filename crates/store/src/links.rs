//! Issued links: whose, single-use or not, used, renewed.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::StoreError;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLink {
    pub nonce: String,
    pub purpose: String,
    pub subject: String,
    /// The blind index of the mobile number it was issued to.
    pub owner: String,
    pub borrower_id: Option<String>,
    pub single_use: bool,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The nonce of the link that replaced it.
    pub renewed_by: Option<String>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait LinkRepository {
    async fn insert_link(&mut self, link: &StoredLink) -> Result<(), StoreError>;
    async fn find_link(&mut self, nonce: &str) -> Result<Option<StoredLink>, StoreError>;
    /// Marks a link used; false if it was used or renewed already (a single-use link opens
    /// once, and a renewed one never).
    async fn use_link(&mut self, nonce: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Records the link that replaced this one; false if it was renewed already.
    async fn renew_link(&mut self, nonce: &str, by: &str) -> Result<bool, StoreError>;
    /// Forgets a link that never reached its owner.
    async fn delete_link(&mut self, nonce: &str) -> Result<(), StoreError>;
    /// When links for `purpose` on `subject` were issued since `since`.
    async fn links_issued_since(
        &mut self,
        purpose: &str,
        subject: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError>;
}

#[derive(sqlx::FromRow)]
struct Row {
    nonce: String,
    purpose: String,
    subject: String,
    owner: String,
    borrower_id: Option<String>,
    single_use: i64,
    expires_at_ms: i64,
    used_at_ms: Option<i64>,
    renewed_by: Option<String>,
    created_at_ms: i64,
}

#[async_trait]
impl LinkRepository for SqlUnitOfWork {
    async fn insert_link(&mut self, l: &StoredLink) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO links (nonce, purpose, subject, owner, borrower_id, single_use, \
             expires_at_ms, used_at_ms, renewed_by, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&l.nonce)
        .bind(&l.purpose)
        .bind(&l.subject)
        .bind(&l.owner)
        .bind(l.borrower_id.as_deref())
        .bind(i64::from(l.single_use))
        .bind(to_ms(l.expires_at))
        .bind(l.used_at.map(to_ms))
        .bind(l.renewed_by.as_deref())
        .bind(to_ms(l.created_at))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn find_link(&mut self, nonce: &str) -> Result<Option<StoredLink>, StoreError> {
        let row: Option<Row> = on_tx!(self, c => sqlx::query_as(
            "SELECT nonce, purpose, subject, owner, borrower_id, single_use, expires_at_ms, \
             used_at_ms, renewed_by, created_at_ms FROM links WHERE nonce = $1",
        )
        .bind(nonce)
        .fetch_optional(c)
        .await)?;
        row.map(|r| {
            const T: &str = "links";
            Ok(StoredLink {
                single_use: r.single_use != 0,
                expires_at: from_ms(T, r.expires_at_ms)?,
                used_at: from_opt_ms(T, r.used_at_ms)?,
                created_at: from_ms(T, r.created_at_ms)?,
                nonce: r.nonce,
                purpose: r.purpose,
                subject: r.subject,
                owner: r.owner,
                borrower_id: r.borrower_id,
                renewed_by: r.renewed_by,
            })
        })
        .transpose()
    }

    async fn use_link(&mut self, nonce: &str, at: Timestamp) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE links SET used_at_ms = $1 WHERE nonce = $2 AND used_at_ms IS NULL \
             AND renewed_by IS NULL",
        )
        .bind(to_ms(at))
        .bind(nonce)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn delete_link(&mut self, nonce: &str) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query("DELETE FROM links WHERE nonce = $1")
            .bind(nonce)
            .execute(c)
            .await
            .map(drop))?;
        Ok(())
    }

    async fn links_issued_since(
        &mut self,
        purpose: &str,
        subject: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let rows: Vec<(i64,)> = on_tx!(self, c => sqlx::query_as(
            "SELECT created_at_ms FROM links WHERE subject = $1 AND purpose = $2 \
             AND created_at_ms > $3 ORDER BY created_at_ms",
        )
        .bind(subject)
        .bind(purpose)
        .bind(to_ms(since))
        .fetch_all(c)
        .await)?;
        rows.into_iter().map(|(ms,)| from_ms("links", ms)).collect()
    }

    async fn renew_link(&mut self, nonce: &str, by: &str) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE links SET renewed_by = $1 WHERE nonce = $2 AND renewed_by IS NULL",
        )
        .bind(by)
        .bind(nonce)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
