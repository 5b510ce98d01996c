//! The HTTP channel client: lendcore's side of the channel protocol.

use std::time::Duration;

use async_trait::async_trait;
use lendcore_domain::money::Currency;
use lendcore_domain::reasons::Reason;
use reqwest::StatusCode;

use super::protocol::{ErrorBody, PayoutRequest, PayoutState, PayoutStatus};
use super::{PaymentChannel, Payout, QueryError, QueryOutcome, SubmitOutcome};

#[derive(Debug, Clone)]
pub struct HttpChannelConfig {
    pub id: String,
    /// e.g. `https://channel.example/` — the protocol's paths are appended.
    pub base_url: String,
    /// Sent as `X-Api-Key`; never logged.
    pub api_key: String,
    /// How long to wait for an answer before treating the outcome as unknown.
    pub timeout: Duration,
}

pub struct HttpChannel {
    config: HttpChannelConfig,
    http: reqwest::Client,
}

impl HttpChannel {
    pub fn new(config: HttpChannelConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(Self { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.config.base_url.trim_end_matches('/'), path)
    }
}

/// A failure code from the channel, as a reason from the catalogue; an unknown code is kept in
/// the detail and reported as the channel being unavailable, never dropped.
fn reason_of(code: Option<&str>) -> Reason {
    code.and_then(Reason::parse)
        .filter(|r| r.code().starts_with("channel."))
        .unwrap_or(Reason::ChannelUnavailable)
}

#[async_trait]
impl PaymentChannel for HttpChannel {
    fn id(&self) -> &str {
        &self.config.id
    }

    async fn submit(&self, payout: &Payout) -> SubmitOutcome {
        let body = PayoutRequest {
            reference: payout.reference.clone(),
            account: payout.account.clone(),
            amount_minor: payout.amount_minor,
            currency: payout.currency.code().to_owned(),
        };
        let sent = self
            .http
            .post(self.url("v1/payouts"))
            .header("idempotency-key", &payout.reference)
            .header("x-api-key", &self.config.api_key)
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) if err.is_connect() => {
                return SubmitOutcome::NotSent {
                    detail: format!("could not connect: {err}"),
                };
            }
            Err(err) => {
                return SubmitOutcome::Unknown {
                    detail: format!("no answer: {err}"),
                };
            }
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(err) => {
                return SubmitOutcome::Unknown {
                    detail: format!("answer cut off ({status}): {err}"),
                };
            }
        };
        if status.is_success() {
            return match serde_json::from_str::<PayoutState>(&text) {
                Ok(state) => SubmitOutcome::Accepted {
                    channel_reference: state.channel_reference,
                },
                Err(err) => SubmitOutcome::Unknown {
                    detail: format!("unreadable answer ({status}): {err}"),
                },
            };
        }
        // A 4xx is a definitive "not paid" — except a timeout, a throttle, and a conflict (the
        // channel holds another payout under this reference): those are resolved by asking.
        let definitive = status.is_client_error()
            && !matches!(
                status,
                StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS | StatusCode::CONFLICT
            );
        if definitive {
            let error = serde_json::from_str::<ErrorBody>(&text).ok();
            return SubmitOutcome::Rejected {
                reason: reason_of(error.as_ref().map(|e| e.code.as_str())),
                detail: error.map_or_else(
                    || format!("{status}: {text}"),
                    |e| format!("{}: {}", e.code, e.message),
                ),
            };
        }
        SubmitOutcome::Unknown {
            detail: format!("channel answered {status}"),
        }
    }

    async fn query(&self, reference: &str) -> Result<QueryOutcome, QueryError> {
        let response = self
            .http
            .get(self.url(&format!("v1/payouts/{reference}")))
            .header("x-api-key", &self.config.api_key)
            .send()
            .await
            .map_err(|e| QueryError(e.to_string()))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(QueryOutcome::NotFound);
        }
        if !status.is_success() {
            return Err(QueryError(format!("channel answered {status}")));
        }
        let state: PayoutState = response
            .json()
            .await
            .map_err(|e| QueryError(format!("unreadable answer: {e}")))?;
        Ok(match state.status {
            PayoutStatus::Pending => QueryOutcome::Pending,
            PayoutStatus::Succeeded => QueryOutcome::Succeeded {
                currency: Currency::parse(&state.currency)
                    .ok_or_else(|| QueryError(format!("unknown currency {}", state.currency)))?,
                channel_reference: state.channel_reference,
                amount_minor: state.amount_minor,
            },
            PayoutStatus::Failed => QueryOutcome::Failed {
                reason: reason_of(state.failure_code.as_deref()),
                detail: state.failure_code.unwrap_or_default(),
            },
        })
    }
}
