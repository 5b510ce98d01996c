//! The audit chain's storage: entries pending (written by each change in its own unit of work)
//! and the sealed log (written by the sealer, one at a time, in order).

use async_trait::async_trait;
use lendcore_domain::audit::{AuditEntry, AuditRecord};

use crate::pending::{Cell, PendingRows};
use crate::sql::from_row;
use crate::time::{from_ms, to_ms};
use crate::unit_of_work::{PENDING_AUDIT, SqlUnitOfWork};
use crate::{Backend, StoreError};

#[async_trait]
pub trait AuditRepository {
    /// Records what happened, in the caller's unit of work; the sealer chains it later.
    async fn append_audit(&mut self, id: &str, entry: &AuditEntry) -> Result<(), StoreError>;

    /// For the sealer: takes the chain for this unit of work (so two sealers never chain at
    /// once), then returns the last sealed record's (seq, hash), if any, and up to `limit`
    /// pending entries, oldest first, with their ids. Nothing pending when another sealer
    /// holds the chain: it is sealing them.
    async fn claim_pending_audit(
        &mut self,
        limit: u32,
    ) -> Result<(Option<(i64, String)>, Vec<(String, AuditEntry)>), StoreError>;

    /// For the sealer: writes sealed records and removes the entries they came from.
    async fn seal_audit(
        &mut self,
        records: &[AuditRecord],
        pending_ids: &[String],
    ) -> Result<(), StoreError>;

    /// Sealed records with `seq` above `after`, in order, at most `limit`.
    async fn audit_records(
        &mut self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    async fn pending_audit_count(&mut self) -> Result<u64, StoreError>;
}

struct PendingRow {
    id: String,
    at_ms: i64,
    actor: String,
    action: String,
    subject_type: String,
    subject_id: String,
    detail: String,
}
from_row!(PendingRow {
    id,
    at_ms,
    actor,
    action,
    subject_type,
    subject_id,
    detail
});

struct RecordRow {
    seq: i64,
    at_ms: i64,
    actor: String,
    action: String,
    subject_type: String,
    subject_id: String,
    detail: String,
    prev_hash: String,
    hash: String,
}
from_row!(RecordRow {
    seq,
    at_ms,
    actor,
    action,
    subject_type,
    subject_id,
    detail,
    prev_hash,
    hash
});

/// The advisory lock that makes one sealer at a time on PostgreSQL, per schema: advisory locks
/// are the whole database's, and the chains of two installations (or two test schemas) sharing
/// one must not make either's sealer step aside for the other's.
const SEALER_LOCK: &str = "audit-sealer";

#[async_trait]
impl AuditRepository for SqlUnitOfWork {
    async fn append_audit(&mut self, id: &str, entry: &AuditEntry) -> Result<(), StoreError> {
        self.pending[PENDING_AUDIT].push(vec![
            Cell::Text(id.to_owned()),
            Cell::Number(to_ms(entry.at)),
            Cell::Text(entry.actor.clone()),
            Cell::Text(entry.action.clone()),
            Cell::Text(entry.subject_type.clone()),
            Cell::Text(entry.subject_id.clone()),
            Cell::Text(entry.detail.clone()),
        ]);
        Ok(())
    }

    async fn claim_pending_audit(
        &mut self,
        limit: u32,
    ) -> Result<(Option<(i64, String)>, Vec<(String, AuditEntry)>), StoreError> {
        self.flush_pending().await?;
        if self.backend() == Backend::Postgres {
            let taken: bool = self
                .fetch_one::<(_,)>(
                    self.sql(
                        "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':' || \
                            $1))",
                    )
                    .bind(SEALER_LOCK),
                )
                .await
                .map(|(v,)| v)?;
            if !taken {
                return Ok((None, Vec::new()));
            }
        }
        let head: Option<(i64, String)> = self
            .fetch_optional(self.sql("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"))
            .await?;
        let rows: Vec<PendingRow> = self
            .fetch_all(
                self.sql(
                    "SELECT id, at_ms, actor, action, subject_type, subject_id, detail \
                FROM audit_pending ORDER BY id LIMIT $1",
                )
                .bind(i64::from(limit)),
            )
            .await?;
        let pending = rows
            .into_iter()
            .map(|row| {
                const T: &str = "audit_pending";
                Ok((
                    row.id,
                    AuditEntry {
                        at: from_ms(T, row.at_ms)?,
                        actor: row.actor,
                        action: row.action,
                        subject_type: row.subject_type,
                        subject_id: row.subject_id,
                        detail: row.detail,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((head, pending))
    }

    async fn seal_audit(
        &mut self,
        records: &[AuditRecord],
        pending_ids: &[String],
    ) -> Result<(), StoreError> {
        // The records in as few statements as the databases allow and the entries sealed in one,
        // not two round trips a record: sealing runs beside the requests on the same database.
        let mut sealed = PendingRows::new(
            "audit_log (seq, at_ms, actor, action, subject_type, subject_id, detail, \
             prev_hash, hash)",
            9,
        );
        for record in records {
            sealed.push(vec![
                Cell::Number(record.seq),
                Cell::Number(to_ms(record.entry.at)),
                Cell::Text(record.entry.actor.clone()),
                Cell::Text(record.entry.action.clone()),
                Cell::Text(record.entry.subject_type.clone()),
                Cell::Text(record.entry.subject_id.clone()),
                Cell::Text(record.entry.detail.clone()),
                Cell::Text(record.prev_hash.clone()),
                Cell::Text(record.hash.clone()),
            ]);
        }
        self.insert_rows(sealed).await?;
        let ids = serde_json::to_string(pending_ids)
            .map_err(|e| StoreError::Database(format!("audit entry ids: {e}")))?;
        let sql = format!("DELETE FROM audit_pending WHERE id IN ({})", self.listed(1));
        let deleted = self.execute(self.sql(&sql).bind(&ids)).await?;
        // Sealed by someone else meanwhile: this seal must not commit a second copy.
        if deleted != pending_ids.len() as u64 {
            return Err(StoreError::Stale("audit entry"));
        }
        Ok(())
    }

    async fn audit_records(
        &mut self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<RecordRow> = self
            .fetch_all(
                self.sql(
                    "SELECT seq, at_ms, actor, action, subject_type, subject_id, detail, \
                prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit)),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                const T: &str = "audit_log";
                Ok(AuditRecord {
                    seq: row.seq,
                    entry: AuditEntry {
                        at: from_ms(T, row.at_ms)?,
                        actor: row.actor,
                        action: row.action,
                        subject_type: row.subject_type,
                        subject_id: row.subject_id,
                        detail: row.detail,
                    },
                    prev_hash: row.prev_hash,
                    hash: row.hash,
                })
            })
            .collect()
    }

    async fn pending_audit_count(&mut self) -> Result<u64, StoreError> {
        self.flush_pending().await?;
        let count: i64 = self
            .fetch_one::<(_,)>(self.sql("SELECT COUNT(*) FROM audit_pending"))
            .await
            .map(|(v,)| v)?;
        u64::try_from(count).map_err(|e| StoreError::corrupt("audit_pending", e))
    }
}

/// Where audit entries wait for their unit of work to commit.
pub(crate) const fn pending_rows() -> PendingRows {
    PendingRows::new(
        "audit_pending (id, at_ms, actor, action, subject_type, subject_id, detail)",
        7,
    )
}
