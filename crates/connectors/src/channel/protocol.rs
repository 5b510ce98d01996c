//! The wire protocol between lendcore and a payment channel (see docs/CHANNEL_PROTOCOL.md).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequest {
    pub reference: String,
    pub account: String,
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    Pending,
    Succeeded,
    Failed,
}

/// A payout as the channel reports it: the answer to a submission, to a query, and the body of a
/// callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutState {
    pub reference: String,
    pub channel_reference: String,
    pub status: PayoutStatus,
    pub amount_minor: i64,
    pub currency: String,
    /// A reason code from lendcore's catalogue (`channel.account_invalid`, …) when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

pub const TIMESTAMP_HEADER: &str = "x-lendcore-timestamp";
pub const SIGNATURE_HEADER: &str = "x-lendcore-signature";

/// HMAC-SHA256 over `timestamp` + "." + `body`, hex-encoded.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a signature in constant time, and that the timestamp is within `tolerance_secs` of
/// `now` (a replayed old callback fails here).
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    signature_hex: &str,
    now: i64,
    tolerance_secs: i64,
) -> bool {
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return false;
    }
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_time() {
        let body = br#"{"reference":"p1"}"#;
        let sig = sign(b"secret", 1_700_000_000, body);
        assert!(verify(
            b"secret",
            1_700_000_000,
            body,
            &sig,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"other",
            1_700_000_000,
            body,
            &sig,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"secret",
            1_700_000_000,
            b"{}",
            &sig,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"secret",
            1_700_000_001,
            body,
            &sig,
            1_700_000_100,
            300
        ));
        assert!(
            !verify(b"secret", 1_700_000_000, body, &sig, 1_700_000_301, 300),
            "too old"
        );
        assert!(!verify(
            b"secret",
            1_700_000_000,
            body,
            "zz",
            1_700_000_000,
            300
        ));
        assert!(
            !verify(b"secret", i64::MIN, body, &sig, i64::MAX, 300),
            "a wild timestamp is refused, not an overflow"
        );
    }
}
