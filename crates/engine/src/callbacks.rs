//! Callbacks from payment channels. A callback must be signed by the channel with its secret
//! and timestamped within five minutes; anything else is refused and does nothing. Even a
//! verified callback is only a hint: it changes nothing by itself; it makes the payout job ask
//! the channel now, and the channel's answer to that query is what counts. The answer to the
//! caller says nothing about the drawdown.

use lendcore_connectors::channel::protocol::{self, PayoutState};
/// The headers a channel signs its callbacks with (docs/CHANNEL_PROTOCOL.md).
pub use lendcore_connectors::channel::protocol::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use lendcore_domain::drawdown::DrawdownStatus;
use lendcore_domain::validation::Violations;
use lendcore_store::NewJob;
use serde::{Deserialize, Serialize};

use crate::jobs::kinds;
use crate::{Engine, EngineError};

/// How far a callback's timestamp may be from our clock.
const TOLERANCE_SECS: i64 = 300;

/// The answer to a verified callback: the same whatever the drawdown's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallbackReceipt {
    /// Always `true`: the callback was verified and taken.
    pub received: bool,
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
            "channel callback refused: no secret configured, or a missing, bad or stale signature"
        );
        return Err(EngineError::Unauthenticated {
            code: "auth.bad_signature",
            message: "the callback's signature or timestamp does not check out".to_owned(),
        });
    }
    let state: PayoutState = serde_json::from_slice(body).map_err(|e| {
        Violations::single(
            "",
            "validation.malformed_json",
            format!("not a payout state: {e}"),
        )
    })?;
    let drawdown_id = drawdown_of(&state.reference, channel_id);
    // Looked up in a read-only snapshot: a flood of callbacks must not hold the writer.
    let disbursing = match crate::read_for_id(engine.store.as_ref(), drawdown_id).await? {
        Some(mut read) => matches!(
            read.find_drawdown(drawdown_id).await?.map(|d| d.status),
            Some(DrawdownStatus::Disbursing)
        ),
        None => false,
    };
    if !disbursing {
        return Ok(CallbackReceipt { received: true });
    }
    let mut uow = engine.store.begin().await?;
    // One extra payout run per drawdown per minute at most, however many callbacks arrive.
    let job = NewJob {
        id: format!("callback:{drawdown_id}:{}", now.timestamp() / 60),
        kind: kinds::DISBURSE.to_owned(),
        payload: serde_json::json!({ "drawdown_id": drawdown_id, "hint": true }),
        run_at: now,
        // A worker that dies mid-query leaves it to another; a query that fails succeeds
        // anyway (the payout's own job asks), so these never pile up dead.
        max_attempts: 3,
    };
    // Scheduled already this minute, there is nothing to commit.
    if uow.enqueue_job_once(&job, now).await? {
        uow.commit().await?;
    }
    Ok(CallbackReceipt { received: true })
}

/// The drawdown a payout reference (`<drawdown id>:<channel id>`, as the payout job makes it)
/// is about. A drawdown id may hold a `:` itself (a lender's borrower id can), so only the
/// channel's own suffix is cut off; a reference without it names no drawdown (`""`).
fn drawdown_of<'r>(reference: &'r str, channel_id: &str) -> &'r str {
    reference
        .strip_suffix(channel_id)
        .and_then(|rest| rest.strip_suffix(':'))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::drawdown_of;

    #[test]
    fn a_reference_names_its_drawdown_whatever_the_borrower_id_holds() {
        let id = "lender:7.0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6f";
        assert_eq!(drawdown_of(&format!("{id}:sandbox"), "sandbox"), id);
        assert_eq!(drawdown_of("d-1:sandbox", "sandbox"), "d-1");
        assert_eq!(
            drawdown_of("d-1:other", "sandbox"),
            "",
            "another channel's reference"
        );
        assert_eq!(drawdown_of("sandbox", "sandbox"), "");
    }
}
