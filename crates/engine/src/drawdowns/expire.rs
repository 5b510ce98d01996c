//! A quote nobody confirmed ends at its expiry, with its reason and a notification, never by
//! silently lapsing.

use async_trait::async_trait;
use lendcore_domain::topic::Topic;
use lendcore_store::Job;

use super::notify;
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use lendcore_domain::drawdown::DrawdownStatus;

pub struct ExpireHandler;

#[async_trait]
impl JobHandler for ExpireHandler {
    fn kind(&self) -> &'static str {
        kinds::EXPIRE_QUOTE
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let id = job.payload["drawdown_id"]
            .as_str()
            .ok_or_else(|| JobFailure::permanent("payload has no drawdown_id"))?;
        let now = ctx.clock.now();
        let gone = || JobFailure::permanent(format!("drawdown {id} is gone"));
        let mut uow = crate::begin_for_id(ctx.store.as_ref(), id)
            .await?
            .ok_or_else(gone)?;
        let Some(mut drawdown) = uow.lock_drawdown(id).await? else {
            return Err(gone());
        };
        let next = match &drawdown.status {
            DrawdownStatus::Quoted { .. } => drawdown
                .status
                .expire(now)
                .map_err(|e| JobFailure::retryable(format!("not yet: {e}")))?,
            // Confirmed (or ended) before its time: nothing to expire.
            DrawdownStatus::QueuedForMaintenance { .. }
            | DrawdownStatus::HeldForReview { .. }
            | DrawdownStatus::Disbursing
            | DrawdownStatus::ManualReview { .. }
            | DrawdownStatus::Active
            | DrawdownStatus::Expired { .. }
            | DrawdownStatus::Refused { .. }
            | DrawdownStatus::Failed { .. }
            | DrawdownStatus::Closed { .. } => return Ok(JobDone::Succeeded),
        };
        let read_revision = drawdown.revision;
        let reason = next.terminal_reason();
        let step = drawdown.move_to(next, now);
        uow.update_drawdown(&drawdown, read_revision, Some(&step))
            .await?;
        notify(uow.as_mut(), &drawdown, Topic::DrawdownEnded, reason)
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        uow.complete_job(&ctx.lease, now).await?;
        uow.commit().await?;
        Ok(JobDone::CompletedWithEffects)
    }
}
