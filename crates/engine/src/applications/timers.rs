//! Each waiting state's deadline: a reminder before it, and the expiry at it. Timers are jobs
//! with fixed ids per state and deadline, set when the state is entered; a save that moves the
//! deadline sets none, and the old timer, firing early, sets the timers for the new deadline.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::application::Application;
use lendcore_domain::topic::Topic;
use lendcore_store::{Job, NewJob, OutboxEvent, StoreError, UnitOfWork};

use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{EngineError, new_id};

/// Sets the reminder and the expiry of the state the application waits in, if it waits.
pub(super) async fn schedule(
    uow: &mut dyn UnitOfWork,
    app: &Application,
    now: Timestamp,
) -> Result<(), EngineError> {
    let (Some(deadline), Some(wait)) = (app.deadline, app.status.wait()) else {
        return Ok(());
    };
    let state = app.status.name();
    let remind_at = deadline - wait.remind_before;
    for (kind, at) in [("reminder", remind_at), ("expiry", deadline)] {
        if kind == "reminder" && remind_at <= now {
            continue;
        }
        uow.enqueue_job_once(
            &NewJob {
                id: format!(
                    "application:{}:{state}:{}:{kind}",
                    app.id,
                    deadline.timestamp_millis()
                ),
                kind: kinds::APPLICATION_TIMER.to_owned(),
                payload: serde_json::json!({
                    "application_id": app.id,
                    "state": state,
                    "deadline_ms": deadline.timestamp_millis(),
                    "kind": kind,
                }),
                run_at: at,
                max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

pub struct TimerHandler;

#[async_trait]
impl JobHandler for TimerHandler {
    fn kind(&self) -> &'static str {
        kinds::APPLICATION_TIMER
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let p = &job.payload;
        let (Some(id), Some(state), Some(deadline), Some(kind)) = (
            p["application_id"].as_str(),
            p["state"].as_str(),
            p["deadline_ms"]
                .as_i64()
                .and_then(chrono::DateTime::from_timestamp_millis),
            p["kind"].as_str(),
        ) else {
            return Err(JobFailure::permanent("malformed application timer"));
        };
        let now = ctx.clock.now();
        let mut uow = ctx.store.begin().await?;
        let Some((mut app, _)) = uow.find_application(id).await? else {
            return Err(JobFailure::permanent(format!(
                "application {id} does not exist"
            )));
        };
        let same_state = app.status.name() == state;
        if same_state && app.deadline.is_some_and(|d| d > deadline) {
            // Saved since: the wait was extended. Timers for the new deadline take over.
            schedule(uow.as_mut(), &app, now)
                .await
                .map_err(|e| JobFailure::retryable(e.to_string()))?;
            uow.complete_job(&ctx.lease, now).await?;
            uow.commit().await?;
            return Ok(JobDone::CompletedWithEffects);
        }
        if !(same_state && app.deadline == Some(deadline)) {
            return Ok(JobDone::Succeeded);
        }
        match kind {
            "reminder" => {
                if state == "referred" {
                    tracing::warn!(application = %id, %deadline, "an application waits for an underwriter's decision; it expires at its deadline");
                    metrics::counter!("lendcore_applications_decision_due_total").increment(1);
                }
                crate::audit::announce(
                    uow.as_mut(),
                    OutboxEvent {
                        id: new_id(),
                        topic: Topic::ApplicationReminder.as_str().to_owned(),
                        aggregate_type: "application".to_owned(),
                        aggregate_id: app.id.clone(),
                        payload: serde_json::json!({
                            "application_id": app.id,
                            "borrower_id": app.borrower_id,
                            "state": state,
                            "deadline": deadline,
                        }),
                        created_at: now,
                        published_at: None,
                    },
                    crate::audit::SYSTEM,
                )
                .await
                .map_err(|e| JobFailure::retryable(e.to_string()))?;
            }
            "expiry" => {
                let read = app.revision;
                if app.expire(state, deadline, now) {
                    app.revision += 1;
                    match uow.update_application(&app, None, read).await {
                        Err(StoreError::Stale(_)) => {
                            return Err(JobFailure::retryable("the application changed meanwhile"));
                        }
                        other => other?,
                    }
                    super::announce(uow.as_mut(), &app, now)
                        .await
                        .map_err(|e| JobFailure::retryable(e.to_string()))?;
                }
            }
            other => return Err(JobFailure::permanent(format!("unknown timer {other}"))),
        }
        uow.complete_job(&ctx.lease, now).await?;
        uow.commit().await?;
        Ok(JobDone::CompletedWithEffects)
    }
}
