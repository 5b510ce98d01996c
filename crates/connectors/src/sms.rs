//! Text messages: the SMS gateway port, its HTTP client, and the sandbox gateway lenders (and
//! the demo) run to see what would have been sent.
//!
//! The gateway protocol is lendcore's own, small enough to put in front of any provider:
//! `POST {base_url}/v1/messages` with `Authorization: Bearer {api_key}` and the JSON body
//! `{"to": "13812345678", "text": "…", "reference": "…"}`. A 2xx answer with `{"id": "…"}`
//! accepted the message; a 4xx refused it for good (the number or the text is wrong); a 5xx,
//! a timeout or a dropped connection is an outage, worth trying again. `reference` is unique per
//! message, so a gateway can drop a retried duplicate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// One message to one mainland mobile number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sms {
    pub to: String,
    pub text: String,
    /// Unique per message: the gateway's duplicate check, and our log's key.
    pub reference: String,
}

// The text may hold a one-time code: never in a log.
impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sms(reference {}, text hidden)", self.reference)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// The gateway refused this message; sending it again will not help.
    #[error("the gateway refused the message: {0}")]
    Rejected(String),
    /// The gateway could not be reached or failed; sending again later may work.
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait SmsGateway: Send + Sync {
    /// Sends one message; the gateway's id for it on success.
    async fn send(&self, sms: &Sms) -> Result<String, SmsError>;
}

#[derive(Debug, Clone)]
pub struct HttpSmsConfig {
    /// e.g. `https://sms.example/`; `v1/messages` is appended.
    pub base_url: String,
    /// Sent as a bearer token; never logged.
    pub api_key: String,
    pub timeout: Duration,
}

pub struct HttpSmsGateway {
    url: String,
    api_key: String,
    http: reqwest::Client,
}

impl HttpSmsGateway {
    pub fn new(config: HttpSmsConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(Self {
            url: format!("{}/v1/messages", config.base_url.trim_end_matches('/')),
            api_key: config.api_key,
            http,
        })
    }
}

#[derive(Deserialize)]
struct Accepted {
    id: String,
}

#[async_trait]
impl SmsGateway for HttpSmsGateway {
    async fn send(&self, sms: &Sms) -> Result<String, SmsError> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .json(sms)
            .send()
            .await
            .map_err(|e| SmsError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            let accepted: Accepted = response.json().await.map_err(|e| {
                SmsError::Unavailable(format!("accepted, but the answer is unreadable: {e}"))
            })?;
            return Ok(accepted.id);
        }
        // The gateway's words may repeat the number or the text (a code): only the status.
        let detail = format!("HTTP {status}");
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SmsError::Rejected(detail))
        } else {
            Err(SmsError::Unavailable(detail))
        }
    }
}

/// The sandbox gateway: speaks the protocol, keeps every message it accepts, and shows them at
/// `GET /v1/messages?to=…` (newest last). Numbers ending in `0000` are refused and numbers
/// ending in `9999` answer 503, so both failures can be rehearsed.
#[derive(Clone, Default)]
pub struct SandboxSms {
    api_key: Option<String>,
    inbox: Arc<Mutex<Vec<Sms>>>,
}

#[derive(Deserialize)]
struct InboxQuery {
    to: Option<String>,
}

impl SandboxSms {
    /// A sandbox that asks for `api_key` as its bearer token (any token when `None`).
    pub fn new(api_key: Option<String>) -> Self {
        Self {
            api_key,
            inbox: Arc::default(),
        }
    }

    /// Messages accepted so far, to `to` or to anyone, oldest first.
    pub fn messages(&self, to: Option<&str>) -> Vec<Sms> {
        let inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        inbox
            .iter()
            .filter(|m| to.is_none_or(|to| m.to == to))
            .cloned()
            .collect()
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        self.api_key
            .as_deref()
            .is_none_or(|expected| token == Some(expected))
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/messages", post(accept).get(list))
            .with_state(self.clone())
    }
}

async fn accept(
    State(sandbox): State<SandboxSms>,
    headers: HeaderMap,
    Json(sms): Json<Sms>,
) -> impl IntoResponse {
    if !sandbox.authorised(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "bad api key"})),
        );
    }
    if sms.to.ends_with("0000") {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"error": "number refused (sandbox rule: ends in 0000)"})),
        );
    }
    if sms.to.ends_with("9999") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "gateway down (sandbox rule: ends in 9999)"})),
        );
    }
    let id = format!("sandbox-{}", sms.reference);
    sandbox
        .inbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(sms);
    (StatusCode::ACCEPTED, Json(serde_json::json!({ "id": id })))
}

async fn list(
    State(sandbox): State<SandboxSms>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Result<Json<Vec<Sms>>, StatusCode> {
    if !sandbox.authorised(&headers) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    Ok(Json(sandbox.messages(query.to.as_deref())))
}
