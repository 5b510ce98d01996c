//! The sandbox channel: a real HTTP server speaking the channel protocol, for lenders to
//! rehearse failures and for our tests. What it does is scripted by the receiving account:
//! `acct-1` is paid at once; `acct-1~MODE` misbehaves as MODE says:
//!
//! | MODE | behaviour |
//! |---|---|
//! | `reject:CODE` | refuses with 422 and the reason code, pays nothing |
//! | `5xx` | answers 500 and pays nothing |
//! | `5xx-after-accept` | pays, then answers 500 |
//! | `timeout` | pays, then answers only after the configured hang (past the client's timeout) |
//! | `lost-answer` | pays, then sends an empty, unreadable answer |
//! | `delayed:N` | accepts; `pending` for N queries, then `succeeded` |
//! | `fail-later:CODE` | accepts; then reports `failed` with the code |
//! | `duplicate-callback` | pays and sends its callback twice |
//! | `pays-less:N` | pays N minor units less than asked, and says so (an integrity fault) |
//! | `seq:M1,M2,…` | the first submit for the account behaves as M1, the next as M2, and so on; the last repeats |
//!
//! A reference is paid at most once: the same request again gets the same answer, a different
//! one under the same reference gets 409.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::protocol::{self, ErrorBody, PayoutRequest, PayoutState, PayoutStatus};

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// How long the `timeout` mode hangs before answering.
    pub hang: Duration,
    /// Where to send signed callbacks, and the shared secret, if anywhere.
    pub callback: Option<Callback>,
}

#[derive(Debug, Clone)]
pub struct Callback {
    pub url: String,
    pub secret: Vec<u8>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            hang: Duration::from_secs(30),
            callback: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Record {
    request: PayoutRequest,
    state: PayoutState,
    /// Queries still to answer `pending` before the final status shows.
    pending_queries: u32,
    final_status: PayoutStatus,
}

pub struct Sandbox {
    config: SandboxConfig,
    payouts: Mutex<HashMap<String, Record>>,
    /// Submits seen per account, for `seq:` scripts.
    submits: Mutex<HashMap<String, usize>>,
    http: reqwest::Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Pay,
    Reject(String),
    ServerError,
    ServerErrorAfterAccept,
    Timeout,
    LostAnswer,
    Delayed(u32),
    FailLater(String),
    DuplicateCallback,
    PaysLess(i64),
}

/// The mode of the `nth` submit (from 0) for `account`.
fn mode_of_submit(account: &str, nth: usize) -> Mode {
    match account.split_once('~').map(|(_, m)| m.split_once(':')) {
        Some(Some(("seq", steps))) => {
            let steps: Vec<&str> = steps.split(',').collect();
            let step = steps[nth.min(steps.len() - 1)];
            parse_mode(step)
        }
        _ => mode_of(account),
    }
}

fn mode_of(account: &str) -> Mode {
    let Some((_, mode)) = account.split_once('~') else {
        return Mode::Pay;
    };
    parse_mode(mode)
}

fn parse_mode(mode: &str) -> Mode {
    match mode.split_once(':') {
        Some(("reject", code)) => Mode::Reject(code.to_owned()),
        Some(("delayed", n)) => Mode::Delayed(n.parse().unwrap_or(1)),
        Some(("fail-later", code)) => Mode::FailLater(code.to_owned()),
        Some(("pays-less", n)) => Mode::PaysLess(n.parse().unwrap_or(1)),
        _ => match mode {
            "5xx" => Mode::ServerError,
            "5xx-after-accept" => Mode::ServerErrorAfterAccept,
            "timeout" => Mode::Timeout,
            "lost-answer" => Mode::LostAnswer,
            "duplicate-callback" => Mode::DuplicateCallback,
            _ => Mode::Pay,
        },
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            payouts: Mutex::new(HashMap::new()),
            submits: Mutex::new(HashMap::new()),
            http: reqwest::Client::new(),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/payouts", post(submit))
            .route("/v1/payouts/{reference}", get(query))
            .with_state(Arc::clone(self))
    }

    /// Whether the sandbox accepted a payout under `reference` (it keeps one per reference).
    pub fn accepted(&self, reference: &str) -> bool {
        self.records().contains_key(reference)
    }

    /// What the sandbox paid (or, for a delayed payout, will report paid) under `reference`;
    /// `None` when it pays nothing under it. How tests reconcile lendcore's books with the
    /// channel's.
    pub fn paid_minor(&self, reference: &str) -> Option<i64> {
        self.records()
            .get(reference)
            .filter(|r| r.final_status == PayoutStatus::Succeeded)
            .map(|r| r.state.amount_minor)
    }

    /// How many references the sandbox has accepted a payout under.
    pub fn accepted_count(&self) -> usize {
        self.records().len()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.payouts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send_callback(self: &Arc<Self>, state: PayoutState, times: usize) {
        let Some(callback) = self.config.callback.clone() else {
            return;
        };
        let http = self.http.clone();
        tokio::spawn(async move {
            let body = serde_json::to_vec(&state).unwrap_or_default();
            for _ in 0..times {
                let timestamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let signature = protocol::sign(&callback.secret, timestamp, &body);
                let sent = http
                    .post(&callback.url)
                    .header("content-type", "application/json")
                    .header(protocol::TIMESTAMP_HEADER, timestamp)
                    .header(protocol::SIGNATURE_HEADER, signature)
                    .body(body.clone())
                    .send()
                    .await;
                if let Err(err) = sent {
                    tracing::warn!(reference = %state.reference, error = %err, "sandbox callback failed");
                }
            }
        });
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            code: code.to_owned(),
            message: message.to_owned(),
        }),
    )
        .into_response()
}

/// A submit under a reference the sandbox holds: the same request gets the same answer,
/// another one under it a 409.
fn again(existing: &Record, request: &PayoutRequest) -> Response {
    if existing.request == *request {
        (StatusCode::OK, Json(existing.state.clone())).into_response()
    } else {
        error(
            StatusCode::CONFLICT,
            "channel.idempotency_conflict",
            "this reference was used for another payout",
        )
    }
}

async fn submit(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Json(request): Json<PayoutRequest>,
) -> Response {
    if headers.get("x-api-key").is_none_or(|k| k.is_empty()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "channel.unauthorised",
            "X-Api-Key is required",
        );
    }
    if request.amount_minor <= 0 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "channel.invalid_amount",
            "amount must be positive",
        );
    }
    // A reference it already holds is answered with its payout (or 409 for another request),
    // before any scripted fault: a channel that paid never refuses the same payout later.
    if let Some(existing) = sandbox.records().get(&request.reference) {
        return again(existing, &request);
    }
    let mode = {
        let mut submits = sandbox.submits.lock().unwrap_or_else(|e| e.into_inner());
        let seen = submits.entry(request.account.clone()).or_insert(0);
        *seen += 1;
        mode_of_submit(&request.account, *seen - 1)
    };
    if let Mode::Reject(code) = &mode {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            "refused by the sandbox, as scripted",
        );
    }
    if mode == Mode::ServerError {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "channel.unavailable",
            "scripted 500",
        );
    }
    let (pending_queries, final_status, failure_code) = match &mode {
        Mode::Delayed(n) => (*n, PayoutStatus::Succeeded, None),
        Mode::FailLater(code) => (0, PayoutStatus::Failed, Some(code.clone())),
        Mode::Pay
        | Mode::Reject(_)
        | Mode::ServerError
        | Mode::ServerErrorAfterAccept
        | Mode::Timeout
        | Mode::LostAnswer
        | Mode::DuplicateCallback
        | Mode::PaysLess(_) => (0, PayoutStatus::Succeeded, None),
    };
    let paid_minor = match &mode {
        Mode::PaysLess(n) => request.amount_minor - n,
        Mode::Pay
        | Mode::Reject(_)
        | Mode::ServerError
        | Mode::ServerErrorAfterAccept
        | Mode::Timeout
        | Mode::LostAnswer
        | Mode::Delayed(_)
        | Mode::FailLater(_)
        | Mode::DuplicateCallback => request.amount_minor,
    };
    let status_now = if pending_queries > 0 || final_status == PayoutStatus::Failed {
        PayoutStatus::Pending
    } else {
        final_status
    };
    let state = PayoutState {
        reference: request.reference.clone(),
        channel_reference: format!("sbx-{}", request.reference),
        status: status_now,
        amount_minor: paid_minor,
        currency: request.currency.clone(),
        failure_code: None,
    };
    {
        // Check and insert under one guard: two submits of one reference pay once.
        let mut records = sandbox.records();
        match records.entry(request.reference.clone()) {
            std::collections::hash_map::Entry::Occupied(existing) => {
                return again(existing.get(), &request);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Record {
                    request,
                    state: state.clone(),
                    pending_queries,
                    final_status,
                });
            }
        }
    }
    let mut final_state = state.clone();
    final_state.status = final_status;
    final_state.failure_code = failure_code;
    if final_state.status == PayoutStatus::Succeeded && pending_queries == 0 {
        let times = if mode == Mode::DuplicateCallback {
            2
        } else {
            1
        };
        sandbox.send_callback(final_state, times);
    }
    match mode {
        Mode::ServerErrorAfterAccept => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "channel.unavailable",
            "scripted 500 after paying",
        ),
        Mode::Timeout => {
            tokio::time::sleep(sandbox.config.hang).await;
            (StatusCode::OK, Json(state)).into_response()
        }
        Mode::LostAnswer => (StatusCode::OK, "").into_response(),
        Mode::Pay
        | Mode::Reject(_)
        | Mode::ServerError
        | Mode::Delayed(_)
        | Mode::FailLater(_)
        | Mode::DuplicateCallback
        | Mode::PaysLess(_) => (StatusCode::OK, Json(state)).into_response(),
    }
}

async fn query(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    if headers.get("x-api-key").is_none_or(|k| k.is_empty()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "channel.unauthorised",
            "X-Api-Key is required",
        );
    }
    let mut records = sandbox.records();
    let Some(record) = records.get_mut(&reference) else {
        return error(
            StatusCode::NOT_FOUND,
            "channel.not_found",
            "no payout with this reference",
        );
    };
    if record.pending_queries > 0 {
        record.pending_queries -= 1;
        return (StatusCode::OK, Json(record.state.clone())).into_response();
    }
    record.state.status = record.final_status;
    if record.final_status == PayoutStatus::Failed {
        record.state.failure_code = match mode_of(&record.request.account) {
            Mode::FailLater(code) => Some(code),
            Mode::Pay
            | Mode::Reject(_)
            | Mode::ServerError
            | Mode::ServerErrorAfterAccept
            | Mode::Timeout
            | Mode::LostAnswer
            | Mode::Delayed(_)
            | Mode::DuplicateCallback
            | Mode::PaysLess(_) => None,
        };
    }
    (StatusCode::OK, Json(record.state.clone())).into_response()
}
