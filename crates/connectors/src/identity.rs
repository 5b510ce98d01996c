//! Identity verification providers: a port, an HTTP client for a provider speaking lendcore's
//! protocol, and a sandbox provider with scripted outcomes for lenders' own tests.
//!
//! Protocol: `POST {base_url}/v1/checks` with `Authorization: Bearer {api_key}` and
//! `{"method": "bank_card" | "face", "reference": "…", "name": "…", "resident_id": "…",
//! "mobile": "…", "bank_account": "…", "evidence": {…}}`. A 200 answers
//! `{"result": "passed"}` or `{"result": "failed", "reason": "…"}`; anything else (5xx, a
//! timeout, no answer) means the method is unavailable now, and the borrower is offered another.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A way of checking that the applicant is who they say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A code sent to the registered mobile number (lendcore checks it itself).
    SmsOtp,
    /// The bank card is the applicant's (four-element check at the card's bank).
    BankCard,
    /// A liveness and face match against the identity card photo.
    Face,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::SmsOtp => "sms_otp",
            Method::BankCard => "bank_card",
            Method::Face => "face",
        }
    }
}

/// Who is checked. Personal data: never in a log.
#[derive(Clone, Serialize)]
pub struct Subject {
    pub reference: String,
    pub name: String,
    pub resident_id: String,
    pub mobile: String,
    pub bank_account: Option<String>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subject({}, personal data hidden)", self.reference)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Checked, and it does not match; `reason` as the provider put it.
    Failed {
        reason: String,
    },
    /// Could not check now, and nothing was checked (the provider is unreachable or down):
    /// offer another method.
    Unavailable {
        detail: String,
    },
    /// Asked, but no verdict came back (a timeout, a refused request, an answer that cannot be
    /// read): the check may have been made, and paid for. Offer another method.
    Inconclusive {
        detail: String,
    },
}

#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// The methods this provider offers.
    fn methods(&self) -> Vec<Method>;
    async fn check(
        &self,
        method: Method,
        subject: &Subject,
        evidence: &serde_json::Value,
    ) -> Verdict;
}

pub struct HttpIdentityProvider {
    url: String,
    api_key: String,
    methods: Vec<Method>,
    http: reqwest::Client,
}

impl HttpIdentityProvider {
    pub fn new(
        base_url: &str,
        api_key: String,
        methods: Vec<Method>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            url: format!("{}/v1/checks", base_url.trim_end_matches('/')),
            api_key,
            methods,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                // A redirect would resend personal data somewhere nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

#[derive(Serialize)]
struct CheckRequest<'a> {
    method: Method,
    #[serde(flatten)]
    subject: &'a Subject,
    evidence: &'a serde_json::Value,
}

#[derive(Deserialize)]
struct CheckAnswer {
    result: String,
    #[serde(default)]
    reason: Option<String>,
}

#[async_trait]
impl IdentityProvider for HttpIdentityProvider {
    fn methods(&self) -> Vec<Method> {
        self.methods.clone()
    }

    async fn check(
        &self,
        method: Method,
        subject: &Subject,
        evidence: &serde_json::Value,
    ) -> Verdict {
        let sent = self
            .http
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .json(&CheckRequest {
                method,
                subject,
                evidence,
            })
            .send()
            .await;
        let response = match sent {
            Ok(r) if r.status().is_success() => r,
            // Down, overloaded, throttling, or refusing our own credentials: nothing was
            // checked. (A 500 or a gateway timeout may have reached the provider, so it is
            // inconclusive.)
            Ok(r) if matches!(r.status().as_u16(), 401 | 403 | 429 | 502 | 503) => {
                return Verdict::Unavailable {
                    detail: format!("HTTP {}", r.status()),
                };
            }
            Ok(r) => {
                return Verdict::Inconclusive {
                    detail: format!("HTTP {}", r.status()),
                };
            }
            Err(e) if e.is_connect() => {
                return Verdict::Unavailable {
                    detail: e.to_string(),
                };
            }
            Err(e) => {
                return Verdict::Inconclusive {
                    detail: e.to_string(),
                };
            }
        };
        match response.json::<CheckAnswer>().await {
            Ok(a) if a.result == "passed" => Verdict::Passed,
            Ok(a) if a.result == "failed" => Verdict::Failed {
                reason: a.reason.unwrap_or_else(|| "no reason given".to_owned()),
            },
            Ok(a) => Verdict::Inconclusive {
                detail: format!("unknown result {:?}", a.result),
            },
            Err(e) => Verdict::Inconclusive {
                detail: format!("unreadable answer: {e}"),
            },
        }
    }
}

/// The sandbox provider: bank card and face checks, scripted by the applicant's name, so every
/// outcome can be rehearsed: a name containing `fail-bank` fails the bank card check,
/// `fail-face` the face check; `down-bank` and `down-face` make that method unavailable.
/// Everyone else passes.
pub struct SandboxIdentityProvider;

#[async_trait]
impl IdentityProvider for SandboxIdentityProvider {
    fn methods(&self) -> Vec<Method> {
        vec![Method::BankCard, Method::Face]
    }

    async fn check(
        &self,
        method: Method,
        subject: &Subject,
        _evidence: &serde_json::Value,
    ) -> Verdict {
        let tag = match method {
            Method::BankCard => "bank",
            Method::Face => "face",
            Method::SmsOtp => {
                return Verdict::Unavailable {
                    detail: "the sandbox does not send codes".to_owned(),
                };
            }
        };
        if subject.name.contains(&format!("down-{tag}")) {
            Verdict::Unavailable {
                detail: format!("sandbox: {tag} checks are down"),
            }
        } else if subject.name.contains(&format!("fail-{tag}")) {
            Verdict::Failed {
                reason: format!("sandbox: the {tag} check does not match"),
            }
        } else {
            Verdict::Passed
        }
    }
}
