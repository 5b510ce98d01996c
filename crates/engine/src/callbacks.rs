//! Callbacks from payment channels. A callback is only ever a hint: verified or not, it changes
//! nothing by itself; it makes the payout job ask the channel now, and the channel's answer to
//! that query is what counts. So a forged or replayed callback can at most cause a query.

use lendcore_connectors::channel::protocol::{self, PayoutState};
use lendcore_domain::drawdown::DrawdownStatus;
use lendcore_domain::validation::Violations;
use lendcore_store::{NewJob, StoreError};
use serde::{Deserialize, Serialize};

use crate::drawdowns::DISBURSE_JOB;
use crate::{Engine, EngineError};

/// How far a callback's timestamp may be from our clock.
const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallbackReceipt {
    /// Whether the signature and timestamp checked out (logged and counted either way).
    pub verified: bool,
    /// `query_scheduled` when the payout will be asked about now, `ignored` when there is
    /// nothing in flight to settle.
    pub action: String,
}

pub async fn receive(
    engine: &Engine,
    channel_id: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<CallbackReceipt, EngineError> {
    if !engine.channels.iter().any(|c| c.id() == channel_id) {
        return Err(EngineError::not_found(
            "not_found.channel",
            format!("no channel {channel_id}"),
        ));
    }
    let now = engine.clock.now();
    let verified = match (
        engine.callback_secrets.get(channel_id),
        timestamp.and_then(|t| t.parse::<i64>().ok()),
        signature,
    ) {
        (Some(secret), Some(ts), Some(sig)) => {
            protocol::verify(secret, ts, body, sig, now.timestamp(), TOLERANCE_SECS)
        }
        _ => false,
    };
    metrics::counter!("lendcore_channel_callbacks_total", "channel" => channel_id.to_owned(),
        "verified" => if verified { "yes" } else { "no" })
    .increment(1);
    if !verified {
        tracing::warn!(
            channel = channel_id,
            "unverified channel callback: it only schedules a query"
        );
    }
    let state: PayoutState = serde_json::from_slice(body).map_err(|e| {
        Violations::single(
            "",
            "validation.malformed_json",
            format!("not a payout state: {e}"),
        )
    })?;
    let drawdown_id = state.reference.split(':').next().unwrap_or_default();
    // Looked up in a read-only snapshot: a flood of callbacks must not hold the writer.
    let disbursing = {
        let mut read = engine.store.begin_read().await?;
        matches!(
            read.find_drawdown(drawdown_id).await?.map(|d| d.status),
            Some(DrawdownStatus::Disbursing)
        )
    };
    if !disbursing {
        return Ok(CallbackReceipt {
            verified,
            action: "ignored".to_owned(),
        });
    }
    let mut uow = engine.store.begin().await?;
    // One extra payout run per drawdown per minute at most, however many callbacks arrive.
    let job = NewJob {
        id: format!("callback:{drawdown_id}:{}", now.timestamp() / 60),
        kind: DISBURSE_JOB.to_owned(),
        payload: serde_json::json!({ "drawdown_id": drawdown_id, "hint": true }),
        run_at: now,
        max_attempts: 1,
    };
    match uow.enqueue_job(&job, now).await {
        Ok(()) => uow.commit().await?,
        // Scheduled already this minute; the failed insert leaves nothing to commit.
        Err(StoreError::Duplicate(_)) => {}
        Err(other) => return Err(other.into()),
    }
    Ok(CallbackReceipt {
        verified,
        action: "query_scheduled".to_owned(),
    })
}
