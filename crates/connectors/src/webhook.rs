//! Signed outgoing webhooks to the lender's systems (docs/WEBHOOKS.md).
//!
//! Each request carries the event as JSON and four headers: `Lendcore-Event-Id` (unique per
//! event: the receiver's duplicate check, since a delivery may arrive more than once),
//! `Lendcore-Event-Type`, `Lendcore-Timestamp` (Unix seconds when this attempt was signed) and
//! `Lendcore-Signature: v1=<hex>`, the HMAC-SHA256 under the endpoint's secret of
//! `{timestamp}.{body}`. A receiver recomputes it over the raw body, compares in constant time,
//! and refuses a timestamp more than five minutes from its clock, so a captured request cannot
//! be replayed later.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A lender's endpoint and the topics it subscribes to.
#[derive(Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub secret: Vec<u8>,
    /// `*` for every topic, `drawdown.*` for a family, or an exact topic.
    pub topics: Vec<String>,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebhookEndpoint({} → {}, secret hidden)",
            self.id, self.url
        )
    }
}

impl WebhookEndpoint {
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.topics
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => topic.starts_with(prefix),
                None => pattern == topic,
            })
    }
}

/// `v1=` and the hex HMAC-SHA256 of `{timestamp}.{body}` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The receiver refused it (a 4xx other than 408 or 429): another attempt will not help
    /// until someone fixes the receiver.
    #[error("the receiver refused it: {0}")]
    Rejected(String),
    /// Timeout, connection failure, 408, 429 or 5xx: worth another attempt.
    #[error("the receiver is unavailable: {0}")]
    Unavailable(String),
}

pub struct WebhookClient {
    http: reqwest::Client,
}

impl WebhookClient {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirect would resend the signed body somewhere the lender did not configure.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http })
    }

    /// Posts `body` (the event's JSON) to the endpoint, signed at `timestamp`; the HTTP status
    /// on success.
    pub async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        event_id: &str,
        topic: &str,
        body: Vec<u8>,
        timestamp: i64,
    ) -> Result<u16, WebhookError> {
        let signature = signature(&endpoint.secret, timestamp, &body);
        let response = self
            .http
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("lendcore-event-id", event_id)
            .header("lendcore-event-type", topic)
            .header("lendcore-timestamp", timestamp.to_string())
            .header("lendcore-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| WebhookError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let text = response.text().await.unwrap_or_default();
        let detail = format!("{status}: {}", text.chars().take(200).collect::<String>());
        let retryable = status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status.is_redirection();
        if retryable {
            Err(WebhookError::Unavailable(detail))
        } else {
            Err(WebhookError::Rejected(detail))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_match_exactly_by_family_or_all() {
        let endpoint = |topics: &[&str]| WebhookEndpoint {
            id: "e".into(),
            url: "http://x".into(),
            secret: vec![1],
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        assert!(endpoint(&["*"]).subscribes_to("loan.repaid"));
        assert!(endpoint(&["drawdown.*"]).subscribes_to("drawdown.ended"));
        assert!(!endpoint(&["drawdown.*"]).subscribes_to("loan.repaid"));
        assert!(endpoint(&["loan.repaid"]).subscribes_to("loan.repaid"));
        assert!(!endpoint(&["loan.repaid"]).subscribes_to("loan.repaid_twice"));
        assert!(!format!("{:?}", endpoint(&["*"])).contains('1'));
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = signature(b"s", 1_700_000_000, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_ne!(a, signature(b"s", 1_700_000_001, b"{}"));
        assert_ne!(a, signature(b"s", 1_700_000_000, b"{ }"));
        assert_ne!(a, signature(b"t", 1_700_000_000, b"{}"));
    }
}
