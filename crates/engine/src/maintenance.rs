//! Maintenance windows: an operator schedules one; borrowers with work in flight get notice
//! ahead (a job at `starts_at - notice`); while one is in progress, confirmed drawdowns are held
//! and queued and payouts wait; afterwards everything continues. Nothing is closed by one.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::maintenance::{MaintenanceWindow, WindowError, WindowInput, WindowStatus};
use lendcore_domain::topic::Topic;
use lendcore_store::{Job, NewJob, OutboxEvent, UnitOfWork};
use serde::{Deserialize, Serialize};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{Engine, EngineError, new_id};

/// Drawdown states whose borrowers are told about a window: work that is not finished.
const IN_FLIGHT: [&str; 5] = [
    "quoted",
    "queued_for_maintenance",
    "held_for_review",
    "disbursing",
    "manual_review",
];
const PAGE: u32 = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowView {
    #[serde(flatten)]
    pub window: MaintenanceWindow,
    pub status: WindowStatus,
    /// When borrowers with work in flight are told.
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub notice_at: Timestamp,
}

fn view(engine: &Engine, window: MaintenanceWindow, now: Timestamp) -> WindowView {
    WindowView {
        status: window.status(now),
        notice_at: notice_at(engine, &window, now),
        window,
    }
}

fn notice_at(engine: &Engine, window: &MaintenanceWindow, now: Timestamp) -> Timestamp {
    (window.starts_at - engine.maintenance_notice).max(window.created_at.min(now))
}

pub async fn schedule(
    engine: &Engine,
    input: WindowInput,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<WindowView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let window = MaintenanceWindow::schedule(new_id(), input, now).map_err(window_error)?;
    uow.insert_maintenance_window(&window).await?;
    uow.enqueue_job(
        &NewJob {
            id: format!("maintenance-notice:{}", window.id),
            kind: kinds::MAINTENANCE_NOTICE.to_owned(),
            payload: serde_json::json!({ "window_id": window.id }),
            run_at: notice_at(engine, &window, now),
            max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
        },
        now,
    )
    .await?;
    let actor = window.created_by.clone();
    announce(
        uow.as_mut(),
        Topic::MaintenanceScheduled,
        &window,
        &actor,
        now,
    )
    .await?;
    let view = view(engine, window, now);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

/// Calls a window off; what it held back continues at once.
pub async fn cancel(
    engine: &Engine,
    id: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<WindowView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut window = uow
        .find_maintenance_window(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let read_revision = window.revision;
    window.cancel(now).map_err(window_error)?;
    uow.update_maintenance_window(&window, read_revision)
        .await?;
    // Payouts held back go now, whichever window they waited for (one that finds another
    // window in progress waits again); one waiting on backoff merely asks a little early.
    uow.run_jobs_now(kinds::DISBURSE, lendcore_domain::Timestamp::MAX_UTC, now)
        .await?;
    announce(
        uow.as_mut(),
        Topic::MaintenanceCancelled,
        &window,
        &crate::acting::current(),
        now,
    )
    .await?;
    let view = view(engine, window, now);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

pub async fn get(engine: &Engine, id: &str) -> Result<WindowView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let window = uow
        .find_maintenance_window(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(view(engine, window, now))
}

/// Windows still to come or in progress, and those that ended in the last week.
pub async fn list(engine: &Engine) -> Result<Vec<WindowView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let windows = uow
        .maintenance_windows_since(now - chrono::Duration::days(7), 200)
        .await?;
    Ok(windows.into_iter().map(|w| view(engine, w, now)).collect())
}

/// Until when work must wait at `now`; `None` when no window is in progress.
pub async fn held_until(
    uow: &mut dyn UnitOfWork,
    now: Timestamp,
) -> Result<Option<Timestamp>, lendcore_store::StoreError> {
    let open = uow.open_maintenance_windows(now).await?;
    Ok(lendcore_domain::maintenance::held_until(&open, now))
}

/// Tells every borrower with work in flight about a window, once, before it starts.
pub struct NoticeHandler;

#[async_trait]
impl JobHandler for NoticeHandler {
    fn kind(&self) -> &'static str {
        kinds::MAINTENANCE_NOTICE
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let id = job.payload["window_id"]
            .as_str()
            .ok_or_else(|| JobFailure::permanent("payload has no window_id"))?;
        let now = ctx.clock.now();
        let mut uow = ctx.store.begin().await?;
        let window = uow
            .find_maintenance_window(id)
            .await?
            .ok_or_else(|| JobFailure::permanent(format!("maintenance window {id} is gone")))?;
        match window.status(now) {
            WindowStatus::Scheduled | WindowStatus::InProgress => {}
            // Called off, or over before anyone could be told: nothing to say.
            WindowStatus::Cancelled | WindowStatus::Over => return Ok(JobDone::Succeeded),
        }
        let mut after = String::new();
        let mut told = 0;
        loop {
            let borrowers = uow
                .borrowers_with_drawdowns_in(&IN_FLIGHT, &after, PAGE)
                .await?;
            let Some(last) = borrowers.last().cloned() else {
                break;
            };
            for borrower in &borrowers {
                uow.append_outbox(&OutboxEvent {
                    id: new_id(),
                    topic: Topic::MaintenanceNotice.as_str().to_owned(),
                    aggregate_type: "borrower".to_owned(),
                    aggregate_id: borrower.clone(),
                    payload: serde_json::json!({
                        "borrower_id": borrower,
                        "window_id": window.id,
                        "starts_at": window.starts_at,
                        "ends_at": window.ends_at,
                        "message": window.message,
                        "reason": lendcore_domain::reasons::Reason::SystemMaintenance,
                        "next_action": lendcore_domain::reasons::Reason::SystemMaintenance.entry().next_action,
                    }),
                    created_at: now,
                    published_at: None,
                })
                .await?;
                told += 1;
            }
            after = last;
        }
        // The notices and the job's success commit together: each borrower is told once.
        uow.complete_job(&ctx.lease, now).await?;
        uow.commit().await?;
        tracing::info!(window = %window.id, borrowers = told, "maintenance notice queued");
        Ok(JobDone::CompletedWithEffects)
    }
}

async fn announce(
    uow: &mut dyn UnitOfWork,
    topic: Topic,
    window: &MaintenanceWindow,
    actor: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic: topic.as_str().to_owned(),
            aggregate_type: "maintenance_window".to_owned(),
            aggregate_id: window.id.clone(),
            payload: serde_json::to_value(window)
                .map_err(|e| EngineError::Internal(format!("window as JSON: {e}")))?,
            created_at: now,
            published_at: None,
        },
        actor,
    )
    .await?;
    Ok(())
}

fn not_found(id: &str) -> EngineError {
    EngineError::not_found(
        "not_found.maintenance_window",
        format!("no maintenance window with id {id}"),
    )
}

fn window_error(err: WindowError) -> EngineError {
    let code = err.code();
    match err {
        WindowError::Invalid(v) => EngineError::Invalid(v),
        WindowError::NotCancellable(_) => EngineError::conflict(code, err.to_string()),
    }
}
