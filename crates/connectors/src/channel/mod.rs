//! The payment channel port, the JSON protocol lendcore speaks with channels, an HTTP client for
//! it, and the sandbox channel that implements it with scripted faults.
//!
//! A payout is identified by our `reference`, sent as the `Idempotency-Key`: the channel pays
//! a reference at most once however often it is submitted. An answer we did not get is never
//! taken as a "no": it is resolved by asking (`query`), not by sending again under a new key.

mod http;
pub mod protocol;
pub mod sandbox;

use async_trait::async_trait;
use lendcore_domain::money::Currency;
use lendcore_domain::reasons::Reason;

pub use http::{HttpChannel, HttpChannelConfig};

/// Money to pay out to a borrower's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// Ours, unique per payout attempt chain; the channel's idempotency key.
    pub reference: String,
    /// The receiving account at the channel (a bank card number, a wallet id).
    pub account: String,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// What a submission came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// The channel took the payout; it may still succeed or fail later.
    Accepted { channel_reference: String },
    /// The channel refused it: nothing was or will be paid.
    Rejected { reason: Reason, detail: String },
    /// The request never reached the channel (connection refused): nothing was paid.
    NotSent { detail: String },
    /// The request was sent but no usable answer came back (timeout, 5xx, garbled): the payout
    /// may or may not exist. Resolve it with [`PaymentChannel::query`].
    Unknown { detail: String },
}

/// What the channel says about a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryOutcome {
    Succeeded {
        channel_reference: String,
        amount_minor: i64,
        currency: Currency,
    },
    Failed {
        reason: Reason,
        detail: String,
    },
    Pending,
    /// The channel has no payout with this reference: it was never accepted.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel query failed: {0}")]
pub struct QueryError(pub String);

#[async_trait]
pub trait PaymentChannel: Send + Sync {
    /// The channel's id in configuration and in ledger accounts.
    fn id(&self) -> &str;
    async fn submit(&self, payout: &Payout) -> SubmitOutcome;
    async fn query(&self, reference: &str) -> Result<QueryOutcome, QueryError>;
}
