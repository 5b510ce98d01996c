//! The figures operators watch on `/metrics` that live in the database rather than in one
//! process: job queues, the queues of work waiting for a person or for the audit sealer, and
//! applications under way by step.
//! Every process reports the same figures (Prometheus aggregates them with `max`).

use lendcore_domain::Timestamp;
pub use lendcore_store::APPLICATION_STEPS;
use lendcore_store::{JobFigures, QueueFigures};

use crate::{Engine, EngineError};

/// The figures as read at `at`.
#[derive(Debug, Clone)]
pub struct Figures {
    pub at: Timestamp,
    pub jobs: Vec<JobFigures>,
    pub queues: Vec<QueueFigures>,
    /// Applications under way by step (`queue` is the state).
    pub applications: Vec<QueueFigures>,
}

/// Reads the figures in one read transaction.
pub async fn figures(engine: &Engine) -> Result<Figures, EngineError> {
    let at = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    Ok(Figures {
        at,
        jobs: uow.job_figures(at).await?,
        queues: uow.queue_figures().await?,
        applications: uow.application_figures().await?,
    })
}
