//! A drawdown the credit policy's risk check held (`held_for_review`): an operator with the
//! risk role releases it, and its payout starts, or declines it with a reason, and the amount
//! held on the line is given back. Each step is audited and shows in the timeline with who
//! took it and what they wrote; the borrower is told either way.

use lendcore_domain::drawdown::{Drawdown, DrawdownStatus};
use lendcore_domain::reasons::{Category, Reason};
use lendcore_domain::topic::Topic;
use lendcore_domain::validation::Violations;
use lendcore_store::UnitOfWork;

use super::review::{finish, operator, parse_note};
use super::{DrawdownView, notify};
use crate::idempotency::{self, IdempotentRequest, Outcome};
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
    Held(Box<dyn UnitOfWork>, Drawdown),
}

async fn open(
    engine: &Engine,
    id: &str,
    request: Option<&IdempotentRequest>,
    now: lendcore_domain::Timestamp,
) -> Result<Opened, EngineError> {
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return Ok(Opened::Replayed(done));
    }
    let drawdown = lock_held(uow.as_mut(), id).await?;
    Ok(Opened::Held(uow, drawdown))
}

/// The drawdown, locked in `uow` for the change, which must be held for review.
async fn lock_held(uow: &mut dyn UnitOfWork, id: &str) -> Result<Drawdown, EngineError> {
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
