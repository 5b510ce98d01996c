//! Durable jobs. A job row is written in the same transaction as the change that needs it.
//! Workers lease due jobs for a while; a lease that runs out (the worker died) makes the job
//! available again. A failed attempt is rescheduled or, after the last one, parked as `dead`
//! until an operator re-drives it.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};
use crate::{Backend, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(JobStatus::Pending),
            "running" => Some(JobStatus::Running),
            "succeeded" => Some(JobStatus::Succeeded),
            "dead" => Some(JobStatus::Dead),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub run_at: Timestamp,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: JobStatus,
    /// Attempts started so far, the running one included.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: Timestamp,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl Job {
    /// The lease this job is running under, if it is running.
    pub fn lease(&self) -> Option<Lease> {
        self.lease_owner.as_ref().map(|owner| Lease {
            job_id: self.id.clone(),
            owner: owner.clone(),
            attempt: self.attempts,
        })
    }
}

/// Proof of holding a job: its owner and the attempt number, which changes with every lease,
/// so a worker whose lease expired cannot finish an attempt another worker has taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: String,
    pub owner: String,
    pub attempt: u32,
}

#[async_trait]
pub trait JobRepository {
    async fn enqueue_job(&mut self, job: &NewJob, now: Timestamp) -> Result<(), StoreError>;

    /// Leases up to `limit` jobs that are due, or whose lease has expired, to `owner` until
    /// `lease_until`. Jobs whose expired lease was their last attempt go to dead-letter instead.
    /// On PostgreSQL concurrent callers skip each other's rows rather than wait.
    async fn lease_jobs(
        &mut self,
        owner: &str,
        limit: u32,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<Job>, StoreError>;

    /// Marks the attempt a success. [`StoreError::LeaseLost`] if the lease is no longer held.
    async fn complete_job(&mut self, lease: &Lease, now: Timestamp) -> Result<(), StoreError>;

    /// Records a failed attempt: retried at `retry_at`, or dead-lettered when it is `None`.
    async fn fail_job(
        &mut self,
        lease: &Lease,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Puts a dead job back in the queue with a fresh budget of attempts. `false` if the job is
    /// not dead (or does not exist).
    async fn redrive_job(&mut self, id: &str, now: Timestamp) -> Result<bool, StoreError>;

    async fn find_job(&mut self, id: &str) -> Result<Option<Job>, StoreError>;

    /// Most recently updated first.
    async fn list_jobs(&mut self, status: JobStatus, limit: u32) -> Result<Vec<Job>, StoreError>;
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    kind: String,
    payload: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    run_at_ms: i64,
    lease_owner: Option<String>,
    lease_expires_at_ms: Option<i64>,
    last_error: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
    finished_at_ms: Option<i64>,
}

const COLUMNS: &str = "id, kind, payload, status, attempts, max_attempts, run_at_ms, lease_owner, \
     lease_expires_at_ms, last_error, created_at_ms, updated_at_ms, finished_at_ms";

/// Dead-letters jobs whose final attempt's lease ran out: their worker died on the last try.
const BURY_EXPIRED: &str = "UPDATE jobs SET status = 'dead', lease_owner = NULL, \
     lease_expires_at_ms = NULL, finished_at_ms = $1, updated_at_ms = $1, \
     last_error = 'lease expired during the final attempt (worker died or hung)' \
     WHERE status = 'running' AND lease_expires_at_ms <= $1 AND attempts >= max_attempts";

const DUE: &str = "(status = 'pending' AND run_at_ms <= $1) \
     OR (status = 'running' AND lease_expires_at_ms <= $1)";

#[async_trait]
impl JobRepository for SqlUnitOfWork {
    async fn enqueue_job(&mut self, job: &NewJob, now: Timestamp) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at_ms, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, 'pending', 0, $4, $5, $6, $6)",
        )
        .bind(&job.id)
        .bind(&job.kind)
        .bind(job.payload.to_string())
        .bind(i64::from(job.max_attempts.max(1)))
        .bind(to_ms(job.run_at))
        .bind(to_ms(now))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn lease_jobs(
        &mut self,
        owner: &str,
        limit: u32,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<Job>, StoreError> {
        on_tx!(self, c => sqlx::query(BURY_EXPIRED).bind(to_ms(now)).execute(c).await.map(drop))?;
        // SQLite has one writer, so the plain subquery cannot hand a job to two workers; on
        // PostgreSQL, SKIP LOCKED lets concurrent workers take disjoint batches without waiting.
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $2, \
             lease_expires_at_ms = $3, updated_at_ms = $1 \
             WHERE id IN (SELECT id FROM jobs WHERE {DUE} ORDER BY run_at_ms LIMIT $4 {lock}) \
             RETURNING {COLUMNS}"
        );
        let rows: Vec<JobRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(to_ms(now))
            .bind(owner)
            .bind(to_ms(lease_until))
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?;
        let mut jobs = rows
            .into_iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|j| j.run_at);
        Ok(jobs)
    }

    async fn complete_job(&mut self, lease: &Lease, now: Timestamp) -> Result<(), StoreError> {
        let updated = on_tx!(self, c => sqlx::query(
            "UPDATE jobs SET status = 'succeeded', lease_owner = NULL, lease_expires_at_ms = NULL, \
             finished_at_ms = $1, updated_at_ms = $1 \
             WHERE id = $2 AND status = 'running' AND lease_owner = $3 AND attempts = $4",
        )
        .bind(to_ms(now))
        .bind(&lease.job_id)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        lease_held(updated, lease)
    }

    async fn fail_job(
        &mut self,
        lease: &Lease,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (status, run_at, finished_at) = match retry_at {
            Some(at) => ("pending", Some(to_ms(at)), None),
            None => ("dead", None, Some(to_ms(now))),
        };
        let updated = on_tx!(self, c => sqlx::query(
            "UPDATE jobs SET status = $1, run_at_ms = COALESCE($2, run_at_ms), last_error = $3, \
             lease_owner = NULL, lease_expires_at_ms = NULL, finished_at_ms = $4, updated_at_ms = $5 \
             WHERE id = $6 AND status = 'running' AND lease_owner = $7 AND attempts = $8",
        )
        .bind(status)
        .bind(run_at)
        .bind(error)
        .bind(finished_at)
        .bind(to_ms(now))
        .bind(&lease.job_id)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        lease_held(updated, lease)
    }

    async fn redrive_job(&mut self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let updated = on_tx!(self, c => sqlx::query(
            "UPDATE jobs SET status = 'pending', attempts = 0, run_at_ms = $1, finished_at_ms = NULL, \
             updated_at_ms = $1 WHERE id = $2 AND status = 'dead'",
        )
        .bind(to_ms(now))
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(updated == 1)
    }

    async fn find_job(&mut self, id: &str) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<JobRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(c)
            .await)?;
        row.map(job_from_row).transpose()
    }

    async fn list_jobs(&mut self, status: JobStatus, limit: u32) -> Result<Vec<Job>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = $1 ORDER BY updated_at_ms DESC, id LIMIT $2"
        );
        let rows: Vec<JobRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(status.as_str())
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?;
        rows.into_iter().map(job_from_row).collect()
    }
}

fn lease_held(updated: u64, lease: &Lease) -> Result<(), StoreError> {
    if updated == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost(lease.job_id.clone()))
    }
}

fn job_from_row(row: JobRow) -> Result<Job, StoreError> {
    const T: &str = "jobs";
    let count = |n: i64| u32::try_from(n).map_err(|e| StoreError::corrupt(T, e));
    Ok(Job {
        status: JobStatus::parse(&row.status)
            .ok_or_else(|| StoreError::corrupt(T, format!("unknown status {}", row.status)))?,
        payload: serde_json::from_str(&row.payload).map_err(|e| StoreError::corrupt(T, e))?,
        attempts: count(row.attempts)?,
        max_attempts: count(row.max_attempts)?,
        run_at: from_ms(T, row.run_at_ms)?,
        lease_expires_at: from_opt_ms(T, row.lease_expires_at_ms)?,
        created_at: from_ms(T, row.created_at_ms)?,
        updated_at: from_ms(T, row.updated_at_ms)?,
        finished_at: from_opt_ms(T, row.finished_at_ms)?,
        id: row.id,
        kind: row.kind,
        lease_owner: row.lease_owner,
        last_error: row.last_error,
    })
}
