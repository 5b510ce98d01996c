//! Credit bureaus: a port, an HTTP client for a bureau speaking lendcore's protocol
//! (docs/BUREAU_PROTOCOL.md), and a sandbox bureau with scripted profiles for lenders' own
//! tests and the demo.
//!
//! A bureau that is down, slow past its deadline, or answering something unreadable never
//! fails silently: the answer is [`Inquiry::Unavailable`] with what happened, and the policy
//! says what a decision does without it.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Whom the lender asks about. Personal data: never in a log.
#[derive(Clone, Serialize)]
pub struct BureauSubject {
    /// The lender's reference for this inquiry (the decision's id), for the bureau's records.
    pub reference: String,
    pub name: String,
    pub resident_id: String,
}

impl std::fmt::Debug for BureauSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BureauSubject({}, personal data hidden)", self.reference)
    }
}

/// What a bureau knows of a borrower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BureauReport {
    /// Lenders with credit open to the borrower.
    pub lenders_open: i64,
    /// What the borrower owes all lenders, in minor units.
    pub exposure_minor: i64,
    /// Credit inquiries in the last three months.
    pub inquiries_3m: i64,
    /// The worst delinquency on file, in days past due; `None` with no repayment history.
    pub worst_delinquency_days: Option<i64>,
}

/// How an inquiry went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Inquiry {
    /// The bureau has a file on the borrower.
    Found(BureauReport),
    /// The bureau has no file: nobody has lent to this borrower.
    NoFile,
    /// No usable answer: down, slow past the deadline, refusing us, or unreadable.
    Unavailable { detail: String },
}

#[async_trait]
pub trait CreditBureau: Send + Sync {
    /// The bureau's name as records show it, e.g. `sandbox`.
    fn name(&self) -> &str;
    async fn inquire(&self, subject: &BureauSubject) -> Inquiry;
}

/// A bureau over HTTP: `POST {base_url}/v1/inquiries`.
pub struct HttpCreditBureau {
    name: String,
    url: String,
    api_key: String,
    http: reqwest::Client,
}

impl HttpCreditBureau {
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: String,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            name: name.to_owned(),
            url: format!("{}/v1/inquiries", base_url.trim_end_matches('/')),
            api_key,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                // A redirect would resend personal data somewhere nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    found: bool,
    #[serde(default)]
    lenders_open: Option<i64>,
    #[serde(default)]
    exposure_minor: Option<i64>,
    #[serde(default)]
    inquiries_3m: Option<i64>,
    #[serde(default)]
    worst_delinquency_days: Option<i64>,
}

impl Answer {
    fn read(self) -> Inquiry {
        if !self.found {
            return Inquiry::NoFile;
        }
        match (self.lenders_open, self.exposure_minor, self.inquiries_3m) {
            (Some(lenders_open), Some(exposure_minor), Some(inquiries_3m))
                if lenders_open >= 0
                    && exposure_minor >= 0
                    && inquiries_3m >= 0
                    && self.worst_delinquency_days.is_none_or(|d| d >= 0) =>
            {
                Inquiry::Found(BureauReport {
                    lenders_open,
                    exposure_minor,
                    inquiries_3m,
                    worst_delinquency_days: self.worst_delinquency_days,
                })
            }
            _ => Inquiry::Unavailable {
                detail: "the report lacks a figure or gives a negative one".to_owned(),
            },
        }
    }
}

#[async_trait]
impl CreditBureau for HttpCreditBureau {
    fn name(&self) -> &str {
        &self.name
    }

    async fn inquire(&self, subject: &BureauSubject) -> Inquiry {
        let sent = self
            .http
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .json(subject)
            .send()
            .await;
        let response = match sent {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                return Inquiry::Unavailable {
                    detail: format!("HTTP {}", r.status()),
                };
            }
            Err(e) if e.is_timeout() => {
                return Inquiry::Unavailable {
                    detail: "no answer before the deadline".to_owned(),
                };
            }
            Err(e) => {
                return Inquiry::Unavailable {
                    detail: e.to_string(),
                };
            }
        };
        match response.json::<Answer>().await {
            Ok(answer) => answer.read(),
            Err(e) => Inquiry::Unavailable {
                detail: format!("unreadable answer: {e}"),
            },
        }
    }
}

/// The sandbox bureau: profiles scripted by the applicant's name, so every path can be
/// rehearsed. A name containing `bureau-down` finds the bureau down, `bureau-slow` past its
/// deadline, `bureau-thin` with no file, `bureau-fair` with a middling report, `bureau-risky`
/// with many lenders, many inquiries and a serious delinquency. Everyone else has a clean
/// report: one lender, 5,000.00 owed, one inquiry, never late.
pub struct SandboxBureau;

impl SandboxBureau {
    /// The profile a name scripts, as the bureau would answer.
    pub fn profile(name: &str) -> Inquiry {
        let report = |lenders_open, exposure_minor, inquiries_3m, worst| {
            Inquiry::Found(BureauReport {
                lenders_open,
                exposure_minor,
                inquiries_3m,
                worst_delinquency_days: worst,
            })
        };
        if name.contains("bureau-down") {
            Inquiry::Unavailable {
                detail: "sandbox: the bureau is down".to_owned(),
            }
        } else if name.contains("bureau-slow") {
            Inquiry::Unavailable {
                detail: "no answer before the deadline".to_owned(),
            }
        } else if name.contains("bureau-thin") {
            Inquiry::NoFile
        } else if name.contains("bureau-risky") {
            report(7, 25_000_000, 12, Some(120))
        } else if name.contains("bureau-fair") {
            report(3, 4_000_000, 4, Some(10))
        } else {
            report(1, 500_000, 1, Some(0))
        }
    }
}

#[async_trait]
impl CreditBureau for SandboxBureau {
    fn name(&self) -> &str {
        "sandbox"
    }

    async fn inquire(&self, subject: &BureauSubject) -> Inquiry {
        SandboxBureau::profile(&subject.name)
    }
}
