//! The figures operators watch on `/metrics` that live in the database rather than in one
//! process: job queues and the queues of work waiting for a person or for the audit sealer.
//! Every process reports the same figures (Prometheus aggregates them with `max`).

use lendcore_domain::Timestamp;
use lendcore_store::{JobFigures, QueueFigures};

use crate::{Engine, EngineError};

/// The figures as read at `at`.
#[derive(Debug, Clone)]
pub struct Figures {
    pub at: Timestamp,
    pub jobs: Vec<JobFigures>,
    pub queues: Vec<QueueFigures>,
}

/// Reads the figures in one read transaction.
pub async fn figures(engine: &Engine) -> Result<Figures, EngineError> {
    let at = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    Ok(Figures {
        at,
        jobs: uow.job_figures(at).await?,
        queues: uow.queue_figures().await?,
    })
}
