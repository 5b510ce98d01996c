//! What operators do with jobs: look at them (dead-letter above all) and re-drive dead ones.

use lendcore_store::{Job, JobStatus};

use crate::{Engine, EngineError};

pub async fn list_jobs(
    engine: &Engine,
    status: JobStatus,
    limit: u32,
) -> Result<Vec<Job>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    Ok(uow.list_jobs(status, limit.clamp(1, 500)).await?)
}

/// Puts a dead job back in the queue with a fresh budget of attempts.
pub async fn redrive_job(engine: &Engine, id: &str) -> Result<Job, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
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
    uow.commit().await?;
    tracing::info!(job = %id, kind = %job.kind, "dead job re-driven");
    Ok(job)
}
