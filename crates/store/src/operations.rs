//! What operators watch, read from the database so that every process reports the same: the
//! job queues and the queues of work waiting for a person (or for the audit sealer). Each is
//! an aggregate over an index on state, cheap enough for every scrape of `/metrics`.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::StoreError;
use crate::time::{from_opt_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

/// Jobs of one kind in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFigures {
    pub kind: String,
    /// `pending`, `running` or `dead`.
    pub status: String,
    pub count: i64,
    /// For pending jobs: when the longest-waiting one that is due now fell due.
    pub oldest_due: Option<Timestamp>,
}

/// Work waiting in one queue: how much, and since when the oldest has waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFigures {
    /// `applications_referred`, `drawdowns_held`, `payouts_manual_review`,
    /// `support_cases_waiting` or `audit_unsealed`.
    pub queue: String,
    pub count: i64,
    pub oldest: Option<Timestamp>,
}

#[async_trait]
pub trait OperationsRepository {
    /// Jobs pending, running and dead, by kind; kinds with none are left out.
    async fn job_figures(&mut self, now: Timestamp) -> Result<Vec<JobFigures>, StoreError>;

    /// Every waiting queue, each named even when empty.
    async fn queue_figures(&mut self) -> Result<Vec<QueueFigures>, StoreError>;

    /// Applications still under way, by the step they are at (`queue` is the state), and
    /// since when the longest at it has not moved; steps with none are left out. The closed
    /// states grow for ever and are counted by their events instead.
    async fn application_figures(&mut self) -> Result<Vec<QueueFigures>, StoreError>;
}

/// The states of an application under way, as stored.
pub const APPLICATION_STEPS: [&str; 7] = [
    "draft",
    "submitted",
    "verifying",
    "assessing",
    "referred",
    "info_requested",
    "approved",
];

#[derive(sqlx::FromRow)]
struct JobRow {
    kind: String,
    status: String,
    count: i64,
    oldest_due_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct QueueRow {
    queue: String,
    count: i64,
    oldest_ms: Option<i64>,
}

#[async_trait]
impl OperationsRepository for SqlUnitOfWork {
    async fn job_figures(&mut self, now: Timestamp) -> Result<Vec<JobFigures>, StoreError> {
        self.flush_pending().await?;
        let rows: Vec<JobRow> = on_tx!(self, c => sqlx::query_as(
            "SELECT kind, status, COUNT(*) AS count, \
               MIN(CASE WHEN status = 'pending' AND run_at_ms <= $1 THEN run_at_ms END) \
                 AS oldest_due_ms \
             FROM jobs WHERE status IN ('pending', 'running', 'dead') \
             GROUP BY kind, status ORDER BY kind, status",
        )
        .bind(to_ms(now))
        .fetch_all(c)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(JobFigures {
                    oldest_due: from_opt_ms("jobs", r.oldest_due_ms)?,
                    kind: r.kind,
                    status: r.status,
                    count: r.count,
                })
            })
            .collect()
    }

    async fn queue_figures(&mut self) -> Result<Vec<QueueFigures>, StoreError> {
        self.flush_pending().await?;
        let rows: Vec<QueueRow> = on_tx!(self, c => sqlx::query_as(
            "/* across borrowers: queues */ SELECT 'applications_referred' AS queue, COUNT(*) AS count, \
               MIN(updated_at_ms) AS oldest_ms FROM applications WHERE state = 'referred' \
             UNION ALL \
             SELECT 'drawdowns_held', COUNT(*), MIN(updated_at_ms) \
               FROM drawdowns WHERE state = 'held_for_review' \
             UNION ALL \
             SELECT 'payouts_manual_review', COUNT(*), MIN(updated_at_ms) \
               FROM drawdowns WHERE state = 'manual_review' \
             UNION ALL \
             SELECT 'support_cases_waiting', COUNT(*), MIN(opened_at_ms) \
               FROM support_cases WHERE status = 'waiting_for_support' \
             UNION ALL \
             SELECT 'audit_unsealed', COUNT(*), MIN(at_ms) FROM audit_pending",
        )
        .fetch_all(c)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(QueueFigures {
                    oldest: from_opt_ms("queues", r.oldest_ms)?,
                    queue: r.queue,
                    count: r.count,
                })
            })
            .collect()
    }

    async fn application_figures(&mut self) -> Result<Vec<QueueFigures>, StoreError> {
        let steps = APPLICATION_STEPS
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT state AS queue, COUNT(*) AS count, MIN(updated_at_ms) AS oldest_ms \
             FROM applications WHERE state IN ({steps}) GROUP BY state"
        );
        let rows: Vec<QueueRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .fetch_all(c)
            .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(QueueFigures {
                    oldest: from_opt_ms("applications", r.oldest_ms)?,
                    queue: r.queue,
                    count: r.count,
                })
            })
            .collect()
    }
}
