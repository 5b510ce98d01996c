//! Support cases and their messages: a borrower's rows, read and written by borrower in every
//! statement but support's queue (a deliberate read across borrowers, for operators).

use async_trait::async_trait;
use lendcore_domain::case::{Case, CaseMessage, CaseStatus, SubjectKind};

use crate::StoreError;
use crate::time::to_ms;
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

#[async_trait]
pub trait CaseRepository {
    async fn insert_case(&mut self, case: &Case) -> Result<(), StoreError>;

    /// Replaces the case stored at `read_revision`; false when it changed meanwhile.
    async fn update_case(&mut self, case: &Case, read_revision: i64) -> Result<bool, StoreError>;

    async fn find_case(&mut self, borrower_id: &str, id: &str) -> Result<Option<Case>, StoreError>;

    /// A borrower's cases, latest opened first; `about` narrows to one subject.
    async fn cases_of(
        &mut self,
        borrower_id: &str,
        about: Option<(SubjectKind, &str)>,
        limit: u32,
    ) -> Result<Vec<Case>, StoreError>;

    /// Support's queue across borrowers: cases in `status`, soonest deadline first for those
    /// waiting for support, latest opened first for the rest.
    async fn case_queue(&mut self, status: CaseStatus, limit: u32)
    -> Result<Vec<Case>, StoreError>;

    async fn append_case_message(
        &mut self,
        borrower_id: &str,
        case_id: &str,
        message: &CaseMessage,
    ) -> Result<(), StoreError>;

    /// A case's messages, oldest first.
    async fn case_messages(
        &mut self,
        borrower_id: &str,
        case_id: &str,
    ) -> Result<Vec<CaseMessage>, StoreError>;
}

const T: &str = "support_cases";

fn to_json<V: serde::Serialize>(value: &V) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::corrupt(T, e))
}

fn cases(rows: Vec<String>) -> Result<Vec<Case>, StoreError> {
    rows.iter()
        .map(|d| serde_json::from_str(d).map_err(|e| StoreError::corrupt(T, e)))
        .collect()
}

#[async_trait]
impl CaseRepository for SqlUnitOfWork {
    async fn insert_case(&mut self, case: &Case) -> Result<(), StoreError> {
        let document = to_json(case)?;
        on_tx!(self, c => sqlx::query(
            "INSERT INTO support_cases (borrower_id, id, subject_type, subject_id, status, \
             respond_by_ms, opened_at_ms, revision, document) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&case.borrower_id)
        .bind(&case.id)
        .bind(case.subject.kind.as_str())
        .bind(&case.subject.id)
        .bind(case.status.as_str())
        .bind(case.respond_by.map(to_ms))
        .bind(to_ms(case.opened_at))
        .bind(case.revision)
        .bind(&document)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn update_case(&mut self, case: &Case, read_revision: i64) -> Result<bool, StoreError> {
        let document = to_json(case)?;
        let done = on_tx!(self, c => sqlx::query(
            "UPDATE support_cases SET status = $1, respond_by_ms = $2, revision = $3, \
             document = $4 WHERE borrower_id = $5 AND id = $6 AND revision = $7",
        )
        .bind(case.status.as_str())
        .bind(case.respond_by.map(to_ms))
        .bind(case.revision)
        .bind(&document)
        .bind(&case.borrower_id)
        .bind(&case.id)
        .bind(read_revision)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    async fn find_case(&mut self, borrower_id: &str, id: &str) -> Result<Option<Case>, StoreError> {
        let row: Option<String> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT document FROM support_cases WHERE borrower_id = $1 AND id = $2",
        )
        .bind(borrower_id)
        .bind(id)
        .fetch_optional(c)
        .await)?;
        Ok(cases(row.into_iter().collect())?.pop())
    }

    async fn cases_of(
        &mut self,
        borrower_id: &str,
        about: Option<(SubjectKind, &str)>,
        limit: u32,
    ) -> Result<Vec<Case>, StoreError> {
        let rows: Vec<String> = match about {
            None => on_tx!(self, c => sqlx::query_scalar(
                "SELECT document FROM support_cases WHERE borrower_id = $1 \
                 ORDER BY opened_at_ms DESC, id DESC LIMIT $2",
            )
            .bind(borrower_id)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?,
            Some((kind, id)) => on_tx!(self, c => sqlx::query_scalar(
                "SELECT document FROM support_cases WHERE borrower_id = $1 \
                 AND subject_type = $2 AND subject_id = $3 \
                 ORDER BY opened_at_ms DESC, id DESC LIMIT $4",
            )
            .bind(borrower_id)
            .bind(kind.as_str())
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?,
        };
        cases(rows)
    }

    async fn case_queue(
        &mut self,
        status: CaseStatus,
        limit: u32,
    ) -> Result<Vec<Case>, StoreError> {
        // Each order has an index: deadlines for what waits for support, else the newest.
        let order = match status {
            CaseStatus::WaitingForSupport => "respond_by_ms, id",
            CaseStatus::WaitingForBorrower | CaseStatus::Resolved => "opened_at_ms DESC, id",
        };
        let sql = format!(
            "SELECT document FROM support_cases WHERE status = $1 ORDER BY {order} LIMIT $2"
        );
        let rows: Vec<String> = on_tx!(self, c => sqlx::query_scalar(&sql)
        .bind(status.as_str())
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?;
        cases(rows)
    }

    async fn append_case_message(
        &mut self,
        borrower_id: &str,
        case_id: &str,
        message: &CaseMessage,
    ) -> Result<(), StoreError> {
        let document = to_json(message)?;
        on_tx!(self, c => sqlx::query(
            "INSERT INTO support_case_messages (borrower_id, case_id, seq, document) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(borrower_id)
        .bind(case_id)
        .bind(message.seq)
        .bind(&document)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn case_messages(
        &mut self,
        borrower_id: &str,
        case_id: &str,
    ) -> Result<Vec<CaseMessage>, StoreError> {
        let rows: Vec<String> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT document FROM support_case_messages WHERE borrower_id = $1 AND case_id = $2 \
             ORDER BY seq",
        )
        .bind(borrower_id)
        .bind(case_id)
        .fetch_all(c)
        .await)?;
        rows.iter()
            .map(|d| serde_json::from_str(d).map_err(|e| StoreError::corrupt(T, e)))
            .collect()
    }
}
