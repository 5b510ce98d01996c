//! The durable job runner. Jobs are at-least-once: a worker that dies mid-job leaves a lease
//! that expires, and another worker runs the job again. Handlers are therefore written to be
//! safe to repeat (they check state before acting), and a handler whose effect is a database
//! write completes the job in the same unit of work ([`JobDone::CompletedWithEffects`]), so the
//! effect commits exactly when the job's success does, and not at all if the lease was lost.

mod admin;
pub mod kinds;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;
use lendcore_domain::jobs::{AfterFailure, Backoff};
use lendcore_store::{Job, Lease, LeaseRequest, Store, StoreError};
use tokio::sync::watch;
use tokio::time::Instant;

pub use admin::{JobView, list_jobs, redrive_job};
pub use lendcore_store::JobStatus;

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

/// What a handler may use: the store for its own units of work, the clock, and the lease it
/// runs under (to complete the job inside its own unit of work).
pub struct JobContext {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub lease: Lease,
}

/// How a successful attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobDone {
    /// The runner records the success.
    Succeeded,
    /// The handler called `complete_job(&ctx.lease, …)` in the unit of work that wrote its
    /// effects, and committed it.
    CompletedWithEffects,
    /// Not finished, by design: run again at this time, without using up an attempt (a payout
    /// waiting out a maintenance window, close of business continuing in another slice).
    Postponed(lendcore_domain::Timestamp),
}

#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The job kind this handler runs, e.g. `product.version_effective`.
    fn kind(&self) -> &'static str;
    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure>;

    /// A job of this kind was dead-lettered: its attempts ran out, it failed for good, or its
    /// worker died during the last one. Runs right after, in a unit of work of its own on
    /// `store` (the borrower's, for a borrower's work), so whatever the job carried is left,
    /// at once, where a person is asked to settle it.
    async fn dead_lettered(
        &self,
        _store: &dyn Store,
        _job: &Job,
        _now: lendcore_domain::Timestamp,
    ) -> Result<(), EngineError> {
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Names this worker in leases; unique per process.
    pub worker_id: String,
    /// How long a leased job is ours. An attempt is cut off at four fifths of it, before the
    /// lease can pass to another worker, and retried.
    pub lease: Duration,
    /// Jobs leased and run concurrently per poll.
    pub batch: u32,
    /// Sleep between polls when there was nothing to do.
    pub idle_poll: StdDuration,
    /// Delay between attempts; each job's own `max_attempts` bounds the attempts.
    pub backoff: Backoff,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", crate::new_id()),
            lease: Duration::seconds(60),
            batch: 8,
            idle_poll: StdDuration::from_millis(500),
            backoff: Backoff::default(),
        }
    }
}

pub struct JobRunner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    config: RunnerConfig,
    /// Turns true when a shutdown's grace has run out: attempts still running stop their
    /// handlers and hand their jobs back.
    cut_off: watch::Sender<bool>,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    pub succeeded: usize,
    /// Attempts that handed their job back to run later, on purpose.
    pub postponed: usize,
    pub retried: usize,
    /// Jobs that used up their attempts, including those whose worker died on the last one.
    pub dead_lettered: usize,
    /// Attempts whose lease another worker took over before they finished.
    pub lease_lost: usize,
    /// Attempts stopped at shutdown and their jobs handed back.
    pub released: usize,
}

impl PollReport {
    pub fn ran(&self) -> usize {
        self.succeeded
            + self.postponed
            + self.retried
            + self.dead_lettered
            + self.lease_lost
            + self.released
    }
}

impl JobRunner {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: RunnerConfig) -> Self {
        Self {
            store,
            clock,
            handlers: HashMap::new(),
            config,
            cut_off: watch::channel(false).0,
        }
    }

    /// Adds the handler for one job kind; only kinds with a handler are leased.
    pub fn register(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    /// Leases one batch of due jobs, runs them concurrently and records each outcome.
    pub async fn poll_once(&self) -> Result<PollReport, EngineError> {
        let now = self.clock.now();
        let token = crate::new_id();
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        let mut uow = self.store.begin().await?;
        let buried = uow.bury_expired_final_attempts(now, &kinds).await?;
        let jobs = uow
            .lease_jobs(&LeaseRequest {
                owner: &self.config.worker_id,
                token: &token,
                kinds: &kinds,
                limit: self.config.batch,
                now,
                until: now + self.config.lease,
            })
            .await?;
        uow.commit().await?;
        let leased_at = Instant::now();
        for job in &buried {
            dead_lettered(job, "its worker died or hung during the final attempt");
            self.after_death(job, now).await;
        }
        let attempts = jobs.into_iter().map(|job| self.attempt(job, leased_at));
        let mut report = PollReport {
            dead_lettered: buried.len(),
            ..PollReport::default()
        };
        for outcome in futures::future::join_all(attempts).await {
            match outcome? {
                Recorded::Succeeded => report.succeeded += 1,
                Recorded::Postponed => report.postponed += 1,
                Recorded::Retried => report.retried += 1,
                Recorded::DeadLettered => report.dead_lettered += 1,
                Recorded::LeaseLost => report.lease_lost += 1,
                Recorded::Released => report.released += 1,
            }
        }
        Ok(report)
    }

    /// Polls until `shutdown` turns true. The batch in hand then has `grace` to finish; the
    /// attempts still running after it stop their handlers, wait for them to end, and hand
    /// their jobs back at once, so another process takes them now rather than when their leases
    /// run out. (A stopped attempt is as one whose process died: every handler is written to be
    /// run again.)
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>, grace: StdDuration) {
        while !*shutdown.borrow() {
            let poll = self.poll_once();
            tokio::pin!(poll);
            let polled = tokio::select! {
                polled = &mut poll => polled,
                () = stop_asked(&mut shutdown) => {
                    match tokio::time::timeout(grace, &mut poll).await {
                        Ok(polled) => polled,
                        Err(_) => {
                            self.cut_off.send_replace(true);
                            // Ends at once: each attempt left stops its handler, then hands
                            // its job back.
                            if let Err(err) = poll.await {
                                tracing::error!(error = %err, "shutting down: could not hand back \
                                    every job not finished; those pass on when their leases run out");
                            }
                            return;
                        }
                    }
                }
            };
            let idle = match polled {
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

    async fn attempt(&self, job: Job, leased_at: Instant) -> Result<Recorded, EngineError> {
        let Some(lease) = job.lease() else {
            return Err(EngineError::Internal(format!(
                "leased job {} has no lease",
                job.id
            )));
        };
        let result = match self.execute(&job, &lease, leased_at).await {
            Ran::Finished(result) => result,
            Ran::CutOff => {
                // Handed back: due now, for any worker, the interrupted attempt not counted.
                let now = self.clock.now();
                let mut uow = self.store.begin().await?;
                let released = match uow.postpone_job(&lease, now, now).await {
                    Ok(()) => uow.commit().await.map(|()| Recorded::Released),
                    Err(err) => Err(err),
                };
                tracing::warn!(job = %job.id, kind = %job.kind,
                    "shutting down: stopped a job not finished in time and handed it back");
                return match released {
                    Ok(recorded) => Ok(recorded),
                    Err(StoreError::LeaseLost(_)) => Ok(Recorded::LeaseLost),
                    Err(other) => Err(other.into()),
                };
            }
        };
        let now = self.clock.now();
        let recorded = match result {
            Ok(JobDone::CompletedWithEffects) => Ok(Recorded::Succeeded),
            Ok(JobDone::Succeeded) => {
                let mut uow = self.store.begin().await?;
                match uow.complete_job(&lease, now).await {
                    Ok(()) => uow.commit().await.map(|()| Recorded::Succeeded),
                    Err(err) => Err(err),
                }
            }
            Ok(JobDone::Postponed(until)) => {
                let mut uow = self.store.begin().await?;
                match uow.postpone_job(&lease, until.max(now), now).await {
                    Ok(()) => uow.commit().await.map(|()| Recorded::Postponed),
                    Err(err) => Err(err),
                }
            }
            Err(failure) => {
                let next = match failure.retryable {
                    true => self.config.backoff.after_failure(
                        job.attempts,
                        job.max_attempts,
                        rand::random::<f64>(),
                    ),
                    false => AfterFailure::DeadLetter,
                };
                let (retry_at, recorded) = match next {
                    AfterFailure::RetryAfter(delay) => (Some(now + delay), Recorded::Retried),
                    AfterFailure::DeadLetter => (None, Recorded::DeadLettered),
                };
                let mut uow = self.store.begin().await?;
                match uow.fail_job(&lease, &failure.message, retry_at, now).await {
                    Ok(()) => uow.commit().await.map(|()| {
                        match recorded {
                            Recorded::DeadLettered => dead_lettered(&job, &failure.message),
                            Recorded::Succeeded
                            | Recorded::Postponed
                            | Recorded::Retried
                            | Recorded::LeaseLost
                            | Recorded::Released => {
                                tracing::warn!(job = %job.id, kind = %job.kind,
                                    attempts = job.attempts, error = %failure.message,
                                    "job attempt failed; will retry");
                            }
                        }
                        recorded
                    }),
                    Err(err) => Err(err),
                }
            }
        };
        if matches!(recorded, Ok(Recorded::DeadLettered)) {
            self.after_death(&job, now).await;
        }
        match recorded {
            Ok(recorded) => {
                metrics::counter!("lendcore_job_attempts_total", "kind" => job.kind.clone(),
                    "outcome" => recorded.as_str())
                .increment(1);
                Ok(recorded)
            }
            Err(StoreError::LeaseLost(_)) => {
                tracing::warn!(job = %job.id, kind = %job.kind,
                    "lease expired before the attempt finished; its outcome is dropped");
                Ok(Recorded::LeaseLost)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Lets a dead job's handler leave its work with a person, in a unit of work of its own,
    /// so a failure there never holds up the other jobs: it is logged, and close of business
    /// sweeps payouts whose job is dead.
    async fn after_death(&self, job: &Job, now: lendcore_domain::Timestamp) {
        let Some(handler) = self.handlers.get(job.kind.as_str()) else {
            return;
        };
        if let Err(err) = handler.dead_lettered(self.store.as_ref(), job, now).await {
            tracing::error!(job = %job.id, kind = %job.kind, error = %err,
                "a dead job's work could not be handed to a person; close of business will");
        }
    }

    /// Runs the handler in its own task, so a panic or an overrun becomes a failed attempt. An
    /// overrunning handler is aborted before its lease can pass to another worker.
    async fn execute(&self, job: &Job, lease: &Lease, leased_at: Instant) -> Ran {
        let Some(handler) = self.handlers.get(job.kind.as_str()).cloned() else {
            // Only registered kinds are leased, so this is a bug, not a newer job kind.
            return Ran::Finished(Err(JobFailure::permanent(format!(
                "no handler for job kind {} in this process",
                job.kind
            ))));
        };
        let ctx = JobContext {
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            lease: lease.clone(),
        };
        let owned = job.clone();
        let mut task = tokio::spawn(async move { handler.run(&owned, &ctx).await });
        let lease_length = self
            .config
            .lease
            .to_std()
            .unwrap_or(StdDuration::from_secs(60));
        let deadline = leased_at + lease_length * 4 / 5;
        let mut cut_off = self.cut_off.subscribe();
        tokio::select! {
            ran = tokio::time::timeout_at(deadline, &mut task) => Ran::Finished(match ran {
                Ok(Ok(result)) => result,
                Ok(Err(join)) => Err(JobFailure::retryable(format!("handler panicked: {join}"))),
                Err(_) => {
                    task.abort();
                    Err(JobFailure::retryable(format!(
                        "handler was still running at four fifths of its {}s lease; aborted",
                        lease_length.as_secs()
                    )))
                }
            }),
            () = stop_asked(&mut cut_off) => {
                task.abort();
                // Waited for, so nothing of it runs once its job is handed back; one that
                // finished meanwhile counts as finished.
                match (&mut task).await {
                    Ok(result) => Ran::Finished(result),
                    Err(_) => Ran::CutOff,
                }
            }
        }
    }
}

fn dead_lettered(job: &Job, why: &str) {
    metrics::counter!("lendcore_jobs_dead_lettered_total", "kind" => job.kind.clone()).increment(1);
    tracing::error!(job = %job.id, kind = %job.kind, attempts = job.attempts, error = %why,
        "job dead-lettered; an operator must re-drive it (POST /v1/jobs/{{id}}/redrive)");
}

/// How an attempt's handler ended.
enum Ran {
    Finished(Result<JobDone, JobFailure>),
    /// Stopped at shutdown, its grace run out.
    CutOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Succeeded,
    Postponed,
    Retried,
    DeadLettered,
    LeaseLost,
    /// Handed back at shutdown.
    Released,
}

impl Recorded {
    fn as_str(self) -> &'static str {
        match self {
            Recorded::Succeeded => "succeeded",
            Recorded::Postponed => "postponed",
            Recorded::Retried => "retried",
            Recorded::DeadLettered => "dead_lettered",
            Recorded::LeaseLost => "lease_lost",
            Recorded::Released => "released",
        }
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stop_asked(shutdown: &mut watch::Receiver<bool>) {
    // The guard it returns is dropped here, never held across the caller's awaits.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
