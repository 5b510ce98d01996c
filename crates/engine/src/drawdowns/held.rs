//! A drawdown the credit policy's risk check held (`held_for_review`): an operator with the
//! risk role releases it, and its payout starts, or declines it with a reason, and the amount
//! held on the line is given back. Each step is audited and shows in the timeline with who
//! took it and what they wrote; the borrower is told either way. A hold nobody settles within
//! [`WAIT`] ends by itself (`policy.not_reviewed_in_time`), the amount given back: the
//! borrower is never left waiting.

use lendcore_domain::drawdown::{Drawdown, DrawdownStatus};
use lendcore_domain::reasons::{Category, Reason};
use lendcore_domain::topic::Topic;
use lendcore_domain::validation::Violations;
use lendcore_store::{BorrowerUnit, UnitOfWork};

use async_trait::async_trait;
use lendcore_store::{Job, NewJob};

use super::review::{finish, operator, parse_note};
use super::{DrawdownView, notify};
use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{Engine, EngineError};

/// Releases a held drawdown: the payout starts (after a maintenance window under way).
pub async fn release(
    engine: &Engine,
    id: &str,
    note: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let actor = operator()?;
    let note = parse_note(note)?;
    let now = engine.clock.now();
    let (mut uow, mut drawdown) = match open(engine, id, request, now).await? {
        Opened::Replayed(done) => return Ok(Outcome::Replayed(done)),
        Opened::Held(uow, drawdown) => (uow, drawdown),
    };
    // A line frozen, closed or expired since the hold pays nothing out: decline it instead.
    let line = uow
        .find_credit_line(&drawdown.line_id)
        .await?
        .ok_or_else(|| EngineError::Internal(format!("line of drawdown {id} is gone")))?;
    if let Some(reason) = line.view(now).blocked_by {
        return Err(EngineError::conflict(
            "conflict.line_blocked",
            format!(
                "the line no longer lends ({}); decline the drawdown instead",
                reason.code()
            ),
        ));
    }
    let held_until = crate::maintenance::held_until(uow.as_mut(), now).await?;
    let read = drawdown.revision;
    let next = drawdown
        .status
        .release(held_until)
        .map_err(|e| EngineError::conflict(e.code(), e.to_string()))?;
    let step = drawdown.move_to(next, now).by(&actor, Some(note.clone()));
    uow.update_drawdown(&drawdown, read, Some(&step)).await?;
    super::start_payout(uow.as_mut(), &drawdown, held_until, now).await?;
    super::announce_payout(uow.as_mut(), &drawdown, Topic::DrawdownReleased, held_until).await?;
    finish(
        uow,
        &actor,
        "drawdown.hold.released",
        serde_json::json!({ "note": note }),
        drawdown,
        request,
        now,
    )
    .await
}

/// Declines a held drawdown with `reason` (a risk or credit reason from the catalogue): the
/// amount held on the line is given back and the drawdown ends refused.
pub async fn decline(
    engine: &Engine,
    id: &str,
    reason: Reason,
    note: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<DrawdownView>, EngineError> {
    let actor = operator()?;
    let note = parse_note(note)?;
    match reason.entry().category {
        Category::Risk | Category::Credit => {}
        Category::System
        | Category::User
        | Category::Policy
        | Category::Network
        | Category::Identity
        | Category::Channel
        | Category::Link
        | Category::Closed => {
            return Err(Violations::single(
                "reason",
                "validation.reason_not_allowed",
                "a held drawdown is declined for a risk or credit reason",
            )
            .into());
        }
    }
    let now = engine.clock.now();
    let (mut uow, mut drawdown) = match open(engine, id, request, now).await? {
        Opened::Replayed(done) => return Ok(Outcome::Replayed(done)),
        Opened::Held(uow, drawdown) => (uow, drawdown),
    };
    let read = drawdown.revision;
    let next = drawdown
        .status
        .decline_held(reason)
        .map_err(|e| EngineError::conflict(e.code(), e.to_string()))?;
    let step = drawdown.move_to(next, now).by(&actor, Some(note.clone()));
    uow.update_drawdown(&drawdown, read, Some(&step)).await?;
    uow.release_hold(&drawdown.line_id, drawdown.amount_minor, now)
        .await?;
    notify(uow.as_mut(), &drawdown, Topic::DrawdownEnded, Some(reason)).await?;
    finish(
        uow,
        &actor,
        "drawdown.hold.declined",
        serde_json::json!({ "reason": reason, "note": note }),
        drawdown,
        request,
        now,
    )
    .await
}

/// A step on a held drawdown, begun: the answer a retried request got, or the unit of work
/// with the drawdown locked in it.
enum Opened {
    Replayed(DrawdownView),
    Held(Box<dyn BorrowerUnit>, Drawdown),
}

async fn open(
    engine: &Engine,
    id: &str,
    request: Option<&IdempotentRequest>,
    now: lendcore_domain::Timestamp,
) -> Result<Opened, EngineError> {
    let mut uow = super::review::begin_on(engine.store.as_ref(), id).await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        // Rolled back, as `idempotency::replayed` does: the answer may not be durable yet.
        uow.rollback().await?;
        return Ok(Opened::Replayed(done));
    }
    let drawdown = lock_held(uow.as_mut(), id).await?;
    Ok(Opened::Held(uow, drawdown))
}

/// The drawdown, locked in `uow` for the change, which must be held for review.
async fn lock_held(uow: &mut dyn BorrowerUnit, id: &str) -> Result<Drawdown, EngineError> {
    let drawdown = uow.lock_drawdown(id).await?.ok_or_else(|| {
        EngineError::not_found("not_found.drawdown", format!("no drawdown with id {id}"))
    })?;
    match drawdown.status {
        DrawdownStatus::HeldForReview { .. } => Ok(drawdown),
        DrawdownStatus::Quoted { .. }
        | DrawdownStatus::QueuedForMaintenance { .. }
        | DrawdownStatus::Disbursing
        | DrawdownStatus::ManualReview { .. }
        | DrawdownStatus::Active
        | DrawdownStatus::Expired { .. }
        | DrawdownStatus::Refused { .. }
        | DrawdownStatus::Failed { .. }
        | DrawdownStatus::Closed { .. } => Err(EngineError::conflict(
            "conflict.drawdown_state",
            format!(
                "drawdown {id} is {}; only one held for review is released or declined",
                drawdown.status.name()
            ),
        )),
    }
}

/// How long a hold waits for a person before it ends by itself: the borrower is told
/// "usually within one working day".
pub const WAIT: chrono::Duration = chrono::Duration::hours(24);

/// Queues the end of a hold nobody settles in time, in the confirmation's unit of work.
pub(crate) async fn expire_later(
    uow: &mut dyn UnitOfWork,
    drawdown: &Drawdown,
    now: lendcore_domain::Timestamp,
) -> Result<(), EngineError> {
    uow.enqueue_job(
        &NewJob {
            id: format!("hold-expiry:{}", drawdown.id),
            kind: kinds::HOLD_EXPIRY.to_owned(),
            payload: serde_json::json!({ "drawdown_id": drawdown.id }),
            run_at: now + WAIT,
            max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
        },
        now,
    )
    .await?;
    Ok(())
}

/// Ends a hold still waiting at its deadline: refused with `policy.not_reviewed_in_time`, the
/// amount given back, the borrower told, an error logged for the operators who let it lapse.
pub struct HoldExpiryHandler;

#[async_trait]
impl JobHandler for HoldExpiryHandler {
    fn kind(&self) -> &'static str {
        kinds::HOLD_EXPIRY
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let Some(id) = job.payload["drawdown_id"].as_str() else {
            return Err(JobFailure::permanent("malformed hold expiry job"));
        };
        let now = ctx.clock.now();
        let gone = || JobFailure::permanent(format!("drawdown {id} is gone"));
        let mut uow = crate::begin_for_id(ctx.store.as_ref(), id)
            .await?
            .ok_or_else(gone)?;
        let Some(mut drawdown) = uow.lock_drawdown(id).await? else {
            return Err(gone());
        };
        match drawdown.status {
            DrawdownStatus::HeldForReview { .. } => {}
            // Released or declined in time.
            DrawdownStatus::Quoted { .. }
            | DrawdownStatus::QueuedForMaintenance { .. }
            | DrawdownStatus::Disbursing
            | DrawdownStatus::ManualReview { .. }
            | DrawdownStatus::Active
            | DrawdownStatus::Expired { .. }
            | DrawdownStatus::Refused { .. }
            | DrawdownStatus::Failed { .. }
            | DrawdownStatus::Closed { .. } => return Ok(JobDone::Succeeded),
        }
        let reason = Reason::NotReviewedInTime;
        let read = drawdown.revision;
        let next = drawdown
            .status
            .decline_held(reason)
            .map_err(|e| JobFailure::permanent(e.to_string()))?;
        let step = drawdown.move_to(next, now);
        let written = async {
            uow.update_drawdown(&drawdown, read, Some(&step)).await?;
            uow.release_hold(&drawdown.line_id, drawdown.amount_minor, now)
                .await?;
            notify(uow.as_mut(), &drawdown, Topic::DrawdownEnded, Some(reason)).await?;
            crate::audit::record(
                uow.as_mut(),
                "system:lendcore",
                "drawdown.hold.expired",
                ("drawdown", &drawdown.id),
                serde_json::json!({ "waited_hours": WAIT.num_hours() }),
                now,
            )
            .await?;
            uow.complete_job(&ctx.lease, now).await?;
            Ok::<_, EngineError>(())
        }
        .await;
        written.map_err(|e| JobFailure::retryable(e.to_string()))?;
        uow.commit().await?;
        metrics::counter!("lendcore_drawdown_holds_expired_total").increment(1);
        tracing::error!(drawdown = %id, "a drawdown held for review was not settled in time; it was refused and its hold released");
        Ok(JobDone::CompletedWithEffects)
    }
}
