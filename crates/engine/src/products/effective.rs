//! When a scheduled version takes effect, lenders' systems (and later borrowers with offers
//! under the old terms) must hear of it. A delayed job, written with the version, announces it.

use async_trait::async_trait;
use lendcore_domain::product::{Product, ProductCode, ProductVersion};
use lendcore_domain::topic::Topic;
use lendcore_store::{Job, NewJob, OutboxEvent};
use serde::{Deserialize, Serialize};

use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    code: ProductCode,
    version: u32,
    /// The time the job was scheduled for; a replaced version that moved schedules a new job.
    effective_from: lendcore_domain::Timestamp,
}

pub(super) fn job(product: &Product, version: &ProductVersion) -> NewJob {
    let payload = Payload {
        code: product.code.clone(),
        version: version.version,
        effective_from: version.effective_from,
    };
    super::new_job(
        kinds::VERSION_EFFECTIVE,
        serde_json::to_value(payload).unwrap_or_default(),
        version.effective_from,
    )
}

/// Appends `product.version_effective` to the outbox, when the version it was scheduled for is
/// still scheduled for that time, and completes the job in the same unit of work: the event is
/// written exactly once. The event id is derived from what it announces, so even two jobs for
/// the same version (a replacement that kept the time) announce it once.
pub struct VersionEffectiveHandler;

#[async_trait]
impl JobHandler for VersionEffectiveHandler {
    fn kind(&self) -> &'static str {
        kinds::VERSION_EFFECTIVE
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let payload: Payload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::permanent(format!("bad payload: {e}")))?;
        let mut uow = ctx.store.begin().await.map_err(JobFailure::from)?;
        let Some(product) = uow
            .find_product(&payload.code)
            .await
            .map_err(JobFailure::from)?
        else {
            return Err(JobFailure::permanent(format!(
                "product {} is gone",
                payload.code
            )));
        };
        let still_scheduled = product
            .versions
            .iter()
            .any(|v| v.version == payload.version && v.effective_from == payload.effective_from);
        if !still_scheduled {
            // The version was replaced with another time; its own job announces it.
            return Ok(JobDone::Succeeded);
        }
        let event = OutboxEvent {
            id: format!(
                "{}:{}:{}:{}",
                kinds::VERSION_EFFECTIVE,
                product.id,
                payload.version,
                payload.effective_from.timestamp_millis()
            ),
            topic: Topic::ProductVersionEffective.as_str().to_owned(),
            aggregate_type: "product".to_owned(),
            aggregate_id: product.id.clone(),
            payload: serde_json::json!({
                "code": product.code,
                "version": payload.version,
                "effective_from": payload.effective_from,
            }),
            created_at: ctx.clock.now(),
            published_at: None,
        };
        if !uow
            .append_outbox_once(&event)
            .await
            .map_err(JobFailure::from)?
        {
            // Announced already by the job of an identical earlier version of it.
            return Ok(JobDone::Succeeded);
        }
        crate::audit::record_event(uow.as_mut(), &event, crate::audit::SYSTEM)
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        uow.complete_job(&ctx.lease, ctx.clock.now())
            .await
            .map_err(JobFailure::from)?;
        uow.commit().await.map_err(JobFailure::from)?;
        Ok(JobDone::CompletedWithEffects)
    }
}
