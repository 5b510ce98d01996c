//! Durable jobs. A job row is written in the same transaction as the change that needs it.
//! Workers lease due jobs for a while; a lease that runs out (the worker died) makes the job
//! available again. A failed attempt is rescheduled or, after the last one, parked as `dead`
//! until an operator re-drives it.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::pending::{Cell, PendingRows};
use crate::sql::from_row;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{PENDING_JOBS, SqlUnitOfWork};
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
    lease_token: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl Job {
    /// The lease this job is running under, if it is running.
    pub fn lease(&self) -> Option<Lease> {
        self.lease_token.as_ref().map(|token| Lease {
            job_id: self.id.clone(),
            token: token.clone(),
        })
    }
}

/// Proof of holding a job. The token is new with every lease and never reused, so a worker
/// whose lease expired cannot record anything about an attempt another worker has taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: String,
    pub token: String,
}

/// What a worker asks for when it leases jobs.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// Shown to operators: which worker holds the job.
    pub owner: &'a str,
    /// Unique to this call (a UUID); fences every job leased by it.
    pub token: &'a str,
    /// Only jobs of these kinds: the ones this worker can run.
    pub kinds: &'a [&'a str],
    pub limit: u32,
    pub now: Timestamp,
    pub until: Timestamp,
}

#[async_trait]
pub trait JobRepository {
    async fn enqueue_job(&mut self, job: &NewJob, now: Timestamp) -> Result<(), StoreError>;

    /// Dead-letters jobs of `kinds` whose lease expired during their final attempt (the worker
    /// died or hung on its last try) and returns them, so the caller can raise the alarm and
    /// hand their work to a person.
    async fn bury_expired_final_attempts(
        &mut self,
        now: Timestamp,
        kinds: &[&str],
    ) -> Result<Vec<Job>, StoreError>;

    /// Leases up to `limit` jobs of the requested kinds that are due, or whose lease has
    /// expired. On PostgreSQL concurrent callers skip each other's rows rather than wait.
    async fn lease_jobs(&mut self, request: &LeaseRequest<'_>) -> Result<Vec<Job>, StoreError>;

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

    /// Hands the job back unfinished, to run again at `run_at`, without using up an attempt:
    /// for work that waits on purpose (a maintenance window) or continues in slices (close of
    /// business). [`StoreError::LeaseLost`] if the lease is no longer held.
    async fn postpone_job(
        &mut self,
        lease: &Lease,
        run_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Adds `job` unless a job with its id exists already; `true` if it was added. Lets any
    /// number of processes schedule the same piece of work (the daily close of business) and
    /// have it exist once.
    async fn enqueue_job_once(&mut self, job: &NewJob, now: Timestamp) -> Result<bool, StoreError>;

    /// Makes pending jobs of `kind` due by `by` due now; returns how many. For work held back
    /// until a time that no longer holds (a cancelled maintenance window).
    async fn run_jobs_now(
        &mut self,
        kind: &str,
        by: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Puts a dead job back in the queue with a fresh budget of attempts. `false` if the job is
    /// not dead (or does not exist).
    async fn redrive_job(&mut self, id: &str, now: Timestamp) -> Result<bool, StoreError>;

    async fn find_job(&mut self, id: &str) -> Result<Option<Job>, StoreError>;

    /// The job of `kind` with the greatest id: for kinds whose ids sort in time order (the
    /// daily close of business, `cob:YYYY-MM-DD`), the latest.
    async fn latest_job_of_kind(&mut self, kind: &str) -> Result<Option<Job>, StoreError>;

    /// Deletes at most `limit` succeeded jobs of `kind` last updated before `before`: for kinds
    /// that run every minute and leave nothing a person needs; returns how many went.
    async fn delete_succeeded_jobs(
        &mut self,
        kind: &str,
        before: lendcore_domain::Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Most recently updated first.
    async fn list_jobs(&mut self, status: JobStatus, limit: u32) -> Result<Vec<Job>, StoreError>;
}

struct JobRow {
    id: String,
    kind: String,
    payload: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    run_at_ms: i64,
    lease_owner: Option<String>,
    lease_token: Option<String>,
    lease_expires_at_ms: Option<i64>,
    last_error: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
    finished_at_ms: Option<i64>,
}
from_row!(JobRow {
    id,
    kind,
    payload,
    status,
    attempts,
    max_attempts,
    run_at_ms,
    lease_owner,
    lease_token,
    lease_expires_at_ms,
    last_error,
    created_at_ms,
    updated_at_ms,
    finished_at_ms
});

const COLUMNS: &str = "id, kind, payload, status, attempts, max_attempts, run_at_ms, lease_owner, \
     lease_token, lease_expires_at_ms, last_error, created_at_ms, updated_at_ms, finished_at_ms";

/// Clears the lease columns; every statement that ends a lease uses it.
const END_LEASE: &str = "lease_owner = NULL, lease_token = NULL, lease_expires_at_ms = NULL";

const DUE: &str = "(status = 'pending' AND run_at_ms <= $1) \
     OR (status = 'running' AND lease_expires_at_ms <= $1)";

#[async_trait]
impl JobRepository for SqlUnitOfWork {
    async fn enqueue_job(&mut self, job: &NewJob, now: Timestamp) -> Result<(), StoreError> {
        self.pending[PENDING_JOBS].push(vec![
            Cell::Text(job.id.clone()),
            Cell::Text(job.kind.clone()),
            Cell::Text(job.payload.to_string()),
            Cell::Text("pending".to_owned()),
            Cell::Number(0),
            Cell::Number(i64::from(job.max_attempts.max(1))),
            Cell::Number(to_ms(job.run_at)),
            Cell::Number(to_ms(now)),
            Cell::Number(to_ms(now)),
        ]);
        Ok(())
    }

    async fn bury_expired_final_attempts(
        &mut self,
        now: Timestamp,
        kinds: &[&str],
    ) -> Result<Vec<Job>, StoreError> {
        self.flush_pending().await?;
        let sql = format!(
            "UPDATE jobs SET status = 'dead', {END_LEASE}, finished_at_ms = $1, updated_at_ms = $1, \
             last_error = 'lease expired during the final attempt (worker died or hung)' \
             WHERE status = 'running' AND lease_expires_at_ms <= $1 AND attempts >= max_attempts \
             AND kind IN ({}) RETURNING {COLUMNS}",
            self.listed(2)
        );
        let kinds = serde_json::to_string(kinds)
            .map_err(|e| StoreError::Config(format!("job kinds: {e}")))?;
        let rows: Vec<JobRow> = self
            .fetch_all(self.sql(&sql).bind(to_ms(now)).bind(&kinds))
            .await?;
        rows.into_iter().map(job_from_row).collect()
    }

    async fn lease_jobs(&mut self, request: &LeaseRequest<'_>) -> Result<Vec<Job>, StoreError> {
        self.flush_pending().await?;
        // SQLite has one writer, so the plain subquery cannot hand a job to two workers; on
        // PostgreSQL, SKIP LOCKED lets concurrent workers take disjoint batches without waiting.
        let kinds = self.listed(5);
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $2, \
             lease_token = $3, lease_expires_at_ms = $4, updated_at_ms = $1 \
             WHERE id IN (SELECT id FROM jobs WHERE ({DUE}) AND kind IN ({kinds}) \
             ORDER BY run_at_ms LIMIT $6 {lock}) \
             RETURNING {COLUMNS}"
        );
        let kinds = serde_json::to_string(request.kinds)
            .map_err(|e| StoreError::Config(format!("job kinds: {e}")))?;
        let rows: Vec<JobRow> = self
            .fetch_all(
                self.sql(&sql)
                    .bind(to_ms(request.now))
                    .bind(request.owner)
                    .bind(request.token)
                    .bind(to_ms(request.until))
                    .bind(&kinds)
                    .bind(i64::from(request.limit)),
            )
            .await?;
        let mut jobs = rows
            .into_iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|j| j.run_at);
        Ok(jobs)
    }

    async fn complete_job(&mut self, lease: &Lease, now: Timestamp) -> Result<(), StoreError> {
        self.flush_pending().await?;
        let sql = format!(
            "UPDATE jobs SET status = 'succeeded', {END_LEASE}, finished_at_ms = $1, \
             updated_at_ms = $1 WHERE id = $2 AND status = 'running' AND lease_token = $3"
        );
        let updated = self
            .execute(
                self.sql(&sql)
                    .bind(to_ms(now))
                    .bind(&lease.job_id)
                    .bind(&lease.token),
            )
            .await?;
        lease_held(updated, lease)
    }

    async fn fail_job(
        &mut self,
        lease: &Lease,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.flush_pending().await?;
        let (status, run_at, finished_at) = match retry_at {
            Some(at) => ("pending", Some(to_ms(at)), None),
            None => ("dead", None, Some(to_ms(now))),
        };
        let sql = format!(
            "UPDATE jobs SET status = $1, run_at_ms = COALESCE($2, run_at_ms), last_error = $3, \
             {END_LEASE}, finished_at_ms = $4, updated_at_ms = $5 \
             WHERE id = $6 AND status = 'running' AND lease_token = $7"
        );
        let updated = self
            .execute(
                self.sql(&sql)
                    .bind(status)
                    .bind(run_at)
                    .bind(error)
                    .bind(finished_at)
                    .bind(to_ms(now))
                    .bind(&lease.job_id)
                    .bind(&lease.token),
            )
            .await?;
        lease_held(updated, lease)
    }

    async fn postpone_job(
        &mut self,
        lease: &Lease,
        run_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.flush_pending().await?;
        let sql = format!(
            "UPDATE jobs SET status = 'pending', attempts = attempts - 1, run_at_ms = $1, \
             {END_LEASE}, updated_at_ms = $2 WHERE id = $3 AND status = 'running' AND lease_token = $4"
        );
        let updated = self
            .execute(
                self.sql(&sql)
                    .bind(to_ms(run_at))
                    .bind(to_ms(now))
                    .bind(&lease.job_id)
                    .bind(&lease.token),
            )
            .await?;
        lease_held(updated, lease)
    }

    async fn enqueue_job_once(&mut self, job: &NewJob, now: Timestamp) -> Result<bool, StoreError> {
        self.flush_pending().await?;
        let inserted = self
            .insert_job(job, now, "ON CONFLICT (id) DO NOTHING")
            .await?;
        Ok(inserted == 1)
    }

    async fn run_jobs_now(
        &mut self,
        kind: &str,
        by: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.flush_pending().await?;
        Ok(self
            .execute(
                self.sql(
                    "UPDATE jobs SET run_at_ms = $1, updated_at_ms = $1 WHERE status = \
                        'pending' AND kind = $2 AND run_at_ms > $1 AND run_at_ms <= $3",
                )
                .bind(to_ms(now))
                .bind(kind)
                .bind(to_ms(by)),
            )
            .await?)
    }

    async fn redrive_job(&mut self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.flush_pending().await?;
        let updated = self
            .execute(
                self.sql(
                    "UPDATE jobs SET status = 'pending', attempts = 0, run_at_ms = $1, \
                finished_at_ms = NULL, updated_at_ms = $1 WHERE id = $2 AND status = \
                'dead'",
                )
                .bind(to_ms(now))
                .bind(id),
            )
            .await?;
        Ok(updated == 1)
    }

    async fn find_job(&mut self, id: &str) -> Result<Option<Job>, StoreError> {
        self.flush_pending().await?;
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<JobRow> = self.fetch_optional(self.sql(&sql).bind(id)).await?;
        row.map(job_from_row).transpose()
    }

    async fn delete_succeeded_jobs(
        &mut self,
        kind: &str,
        before: lendcore_domain::Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.flush_pending().await?;
        // Through the index on (status, updated_at_ms); the kind narrows what it finds.
        self.execute(
            self.sql(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE status = \
                    'succeeded' AND updated_at_ms < $2 AND kind = $1 ORDER BY \
                    updated_at_ms LIMIT $3)",
            )
            .bind(kind)
            .bind(crate::time::to_ms(before))
            .bind(i64::from(limit)),
        )
        .await
    }

    async fn latest_job_of_kind(&mut self, kind: &str) -> Result<Option<Job>, StoreError> {
        self.flush_pending().await?;
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE kind = $1 ORDER BY id DESC LIMIT 1");
        let row: Option<JobRow> = self.fetch_optional(self.sql(&sql).bind(kind)).await?;
        row.map(job_from_row).transpose()
    }

    async fn list_jobs(&mut self, status: JobStatus, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.flush_pending().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = $1 ORDER BY updated_at_ms DESC, id LIMIT $2"
        );
        let rows: Vec<JobRow> = self
            .fetch_all(self.sql(&sql).bind(status.as_str()).bind(i64::from(limit)))
            .await?;
        rows.into_iter().map(job_from_row).collect()
    }
}

impl SqlUnitOfWork {
    /// Inserts a pending job, `then` being what to do about an existing id; returns the rows
    /// inserted.
    async fn insert_job(
        &mut self,
        job: &NewJob,
        now: Timestamp,
        then: &str,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at_ms, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, 'pending', 0, $4, $5, $6, $6) {then}"
        );
        self.execute(
            self.sql(&sql)
                .bind(&job.id)
                .bind(&job.kind)
                .bind(job.payload.to_string())
                .bind(i64::from(job.max_attempts.max(1)))
                .bind(to_ms(job.run_at))
                .bind(to_ms(now)),
        )
        .await
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
        lease_token: row.lease_token,
        last_error: row.last_error,
    })
}

/// Jobs queued by [`JobRepository::enqueue_job`], written when the unit of work commits.
pub(crate) const fn pending_rows() -> PendingRows {
    PendingRows::new(
        "jobs (id, kind, payload, status, attempts, max_attempts, run_at_ms, created_at_ms, \
         updated_at_ms)",
        9,
    )
}
