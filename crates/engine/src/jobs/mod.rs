//! The durable job runner. Jobs are at-least-once: a worker that dies mid-job leaves a lease
//! that expires, and another worker runs the job again. Handlers are therefore written to be
//! safe to repeat (they check state before acting, or derive ids from what they do).

mod admin;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;
use lendcore_domain::jobs::{AfterFailure, RetryPolicy};
use lendcore_store::{Job, Store, StoreError};
use tokio::sync::watch;

pub use admin::{JobView, list_jobs, redrive_job};

use crate::{Clock, EngineError};

/// Why an attempt failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub message: String,
    pub retryable: bool,
}

impl JobFailure {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry will fix (bad payload, missing data): dead-letter at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

impl From<StoreError> for JobFailure {
    fn from(err: StoreError) -> Self {
        JobFailure::retryable(err.to_string())
    }
}

/// What a handler may use: the store for its own units of work, and the clock.
pub struct JobContext {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The job kind this handler runs, e.g. `product.version_effective`.
    fn kind(&self) -> &'static str;
    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobFailure>;
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Names this worker in leases; unique per process.
    pub worker_id: String,
    /// How long a leased job is ours; an attempt running longer is cut off and retried.
    pub lease: Duration,
    /// Jobs leased and run concurrently per poll.
    pub batch: u32,
    /// Sleep between polls when there was nothing to do.
    pub idle_poll: StdDuration,
    /// Backoff between attempts; a job's own `max_attempts` bounds the attempts.
    pub retry: RetryPolicy,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", crate::new_id()),
            lease: Duration::seconds(60),
            batch: 8,
            idle_poll: StdDuration::from_millis(500),
            retry: RetryPolicy::default(),
        }
    }
}

pub struct JobRunner {
    ctx: Arc<JobContext>,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    config: RunnerConfig,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    pub succeeded: usize,
    pub retried: usize,
    pub dead_lettered: usize,
    /// Attempts whose lease another worker took over before they finished.
    pub lease_lost: usize,
}

impl PollReport {
    pub fn ran(&self) -> usize {
        self.succeeded + self.retried + self.dead_lettered + self.lease_lost
    }
}

impl JobRunner {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: RunnerConfig) -> Self {
        Self {
            ctx: Arc::new(JobContext { store, clock }),
            handlers: HashMap::new(),
            config,
        }
    }

    pub fn register(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    /// Leases one batch of due jobs, runs them concurrently and records each outcome.
    pub async fn poll_once(&self) -> Result<PollReport, EngineError> {
        let now = self.ctx.clock.now();
        let mut uow = self.ctx.store.begin().await?;
        let jobs = uow
            .lease_jobs(
                &self.config.worker_id,
                self.config.batch,
                now,
                now + self.config.lease,
            )
            .await?;
        uow.commit().await?;
        let outcomes =
            futures::future::join_all(jobs.into_iter().map(|job| self.attempt(job))).await;
        let mut report = PollReport::default();
        for outcome in outcomes {
            match outcome? {
                Recorded::Succeeded => report.succeeded += 1,
                Recorded::Retried => report.retried += 1,
                Recorded::DeadLettered => report.dead_lettered += 1,
                Recorded::LeaseLost => report.lease_lost += 1,
            }
        }
        Ok(report)
    }

    /// Polls until `shutdown` turns true; finishes the batch in hand before returning.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let idle = match self.poll_once().await {
                Ok(report) => report.ran() == 0,
                Err(err) => {
                    tracing::warn!(error = %err, "job poll failed; retrying after a pause");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.idle_poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    async fn attempt(&self, job: Job) -> Result<Recorded, EngineError> {
        let result = self.execute(&job).await;
        let Some(lease) = job.lease() else {
            return Err(EngineError::Internal(format!(
                "leased job {} has no lease",
                job.id
            )));
        };
        let now = self.ctx.clock.now();
        let mut uow = self.ctx.store.begin().await?;
        let recorded = match result {
            Ok(()) => uow
                .complete_job(&lease, now)
                .await
                .map(|()| Recorded::Succeeded),
            Err(failure) => {
                let policy = RetryPolicy {
                    max_attempts: job.max_attempts,
                    ..self.config.retry
                };
                let next = match failure.retryable {
                    true => policy.after_failure(job.attempts, rand::random::<f64>()),
                    false => AfterFailure::DeadLetter,
                };
                let (retry_at, recorded) = match next {
                    AfterFailure::RetryAfter(delay) => (Some(now + delay), Recorded::Retried),
                    AfterFailure::DeadLetter => (None, Recorded::DeadLettered),
                };
                if recorded == Recorded::DeadLettered {
                    metrics::counter!("lendcore_jobs_dead_lettered_total", "kind" => job.kind.clone())
                        .increment(1);
                    tracing::error!(job = %job.id, kind = %job.kind, attempts = job.attempts,
                        error = %failure.message, "job dead-lettered; an operator must re-drive it");
                } else {
                    tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempts,
                        error = %failure.message, "job attempt failed; will retry");
                }
                uow.fail_job(&lease, &failure.message, retry_at, now)
                    .await
                    .map(|()| recorded)
            }
        };
        match recorded {
            Ok(recorded) => {
                uow.commit().await?;
                metrics::counter!("lendcore_job_attempts_total", "kind" => job.kind.clone(),
                    "outcome" => recorded.as_str())
                .increment(1);
                Ok(recorded)
            }
            Err(StoreError::LeaseLost(_)) => {
                tracing::warn!(job = %job.id, "lease expired before the attempt finished; its outcome is dropped");
                Ok(Recorded::LeaseLost)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Runs the handler in its own task, so a panic or an overrun becomes a failed attempt.
    async fn execute(&self, job: &Job) -> Result<(), JobFailure> {
        let Some(handler) = self.handlers.get(job.kind.as_str()).cloned() else {
            // Another process (a newer version) may know this kind; retry rather than bury it.
            return Err(JobFailure::retryable(format!(
                "no handler for job kind {} in this process",
                job.kind
            )));
        };
        let ctx = Arc::clone(&self.ctx);
        let owned = job.clone();
        let task = tokio::spawn(async move { handler.run(&owned, &ctx).await });
        let budget = self
            .config
            .lease
            .to_std()
            .unwrap_or(StdDuration::from_secs(60));
        match tokio::time::timeout(budget, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(JobFailure::retryable(format!("handler panicked: {join}"))),
            Err(_) => Err(JobFailure::retryable(format!(
                "handler ran longer than its lease ({}s)",
                budget.as_secs()
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Succeeded,
    Retried,
    DeadLettered,
    LeaseLost,
}

impl Recorded {
    fn as_str(self) -> &'static str {
        match self {
            Recorded::Succeeded => "succeeded",
            Recorded::Retried => "retried",
            Recorded::DeadLettered => "dead_lettered",
            Recorded::LeaseLost => "lease_lost",
        }
    }
}
