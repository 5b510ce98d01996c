//! What operators do with jobs: look at them (dead-letter above all) and re-drive dead ones.

use lendcore_domain::Timestamp;
use lendcore_store::{Job, JobStatus};
use serde::{Deserialize, Serialize};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Engine, EngineError};

/// A job as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    pub id: String,
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
    /// `pending`, `running`, `succeeded` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    /// When the job is (or was) due.
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub run_at: Timestamp,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub finished_at: Option<Timestamp>,
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        JobView {
            status: job.status.as_str().to_owned(),
            id: job.id,
            kind: job.kind,
            payload: job.payload,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            run_at: job.run_at,
            lease_owner: job.lease_owner,
            last_error: job.last_error,
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
        }
    }
}

pub async fn list_jobs(
    engine: &Engine,
    status: JobStatus,
    limit: u32,
) -> Result<Vec<JobView>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let jobs = uow.list_jobs(status, limit.clamp(1, 500)).await?;
    Ok(jobs.into_iter().map(JobView::from).collect())
}

/// Puts a dead job back in the queue with a fresh budget of attempts.
pub async fn redrive_job(
    engine: &Engine,
    id: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<JobView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let Some(job) = uow.find_job(id).await? else {
        return Err(EngineError::not_found(
            "not_found.job",
            format!("no job with id {id}"),
        ));
    };
    let redriven = match job.status {
        JobStatus::Dead => uow.redrive_job(id, now).await?,
        JobStatus::Pending | JobStatus::Running | JobStatus::Succeeded => false,
    };
    if !redriven {
        return Err(EngineError::conflict(
            "conflict.job_not_dead",
            format!(
                "job {id} is {}; only dead jobs can be re-driven",
                job.status.as_str()
            ),
        ));
    }
    let job = uow
        .find_job(id)
        .await?
        .ok_or_else(|| EngineError::Internal(format!("job {id} vanished during re-drive")))?;
    let view = JobView::from(job);
    crate::audit::record(
        uow.as_mut(),
        &crate::acting::current(),
        "job.redriven",
        ("job", id),
        serde_json::json!({ "kind": view.kind }),
        now,
    )
    .await?;
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    tracing::info!(job = %id, kind = %view.kind, "dead job re-driven");
    Ok(Outcome::Fresh(view))
}
