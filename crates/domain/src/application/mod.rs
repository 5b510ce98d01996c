//! A credit application's life, as a state machine in which every wait has a deadline and
//! every end a reason:
//!
//! ```text
//! draft → submitted → verifying → assessing → approved → accepted      (the credit policy
//!                                           ↘ declined                 decides an application
//!                                           ↘ info_requested → referred  being assessed; an
//!                                           ↘ referred → approved | declined | info_requested
//! any open state → withdrawn (the borrower) | expired (its deadline passed)   underwriter, a
//! ```                                                                          referred one)
//!
//! The form is saved on every step (a refresh or a lost connection loses nothing); it holds
//! personal data, so the engine seals it and this module only parses and checks it.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::reasons::Reason;
use crate::validation::{Collector, Violations};

/// Who moves an application on by itself (timers, the referral to an underwriter).
const SYSTEM: &str = "system:lendcore";

/// Where an application stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// Being filled in by the borrower, saved at every step.
    Draft,
    Submitted,
    /// Waiting for the borrower to verify their identity.
    Verifying,
    /// Identity verified; the decision is being prepared.
    Assessing,
    /// Waiting for an underwriter's decision.
    Referred,
    /// The underwriter asked the borrower for more; `reasons` say what.
    InfoRequested {
        reasons: Vec<Reason>,
    },
    /// An offer the borrower may accept before the deadline.
    Approved,
    Declined {
        reasons: Vec<Reason>,
    },
    /// The borrower accepted the offer: the credit line is granted.
    Accepted,
    Withdrawn {
        reason: Reason,
    },
    Expired {
        reason: Reason,
    },
}

impl ApplicationStatus {
    pub fn name(&self) -> &'static str {
        match self {
            ApplicationStatus::Draft => "draft",
            ApplicationStatus::Submitted => "submitted",
            ApplicationStatus::Verifying => "verifying",
            ApplicationStatus::Assessing => "assessing",
            ApplicationStatus::Referred => "referred",
            ApplicationStatus::InfoRequested { .. } => "info_requested",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Declined { .. } => "declined",
            ApplicationStatus::Accepted => "accepted",
            ApplicationStatus::Withdrawn { .. } => "withdrawn",
            ApplicationStatus::Expired { .. } => "expired",
        }
    }

    /// The reasons an ending (or a request for information) gives; none for the others.
    pub fn reasons(&self) -> Vec<Reason> {
        match self {
            ApplicationStatus::InfoRequested { reasons }
            | ApplicationStatus::Declined { reasons } => reasons.clone(),
            ApplicationStatus::Withdrawn { reason } | ApplicationStatus::Expired { reason } => {
                vec![*reason]
            }
            ApplicationStatus::Draft
            | ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Assessing
            | ApplicationStatus::Referred
            | ApplicationStatus::Approved
            | ApplicationStatus::Accepted => Vec::new(),
        }
    }

    /// How long this state waits before it expires, and how long before that the reminder
    /// goes out; `None` for states that do not wait (passing and final ones).
    pub fn wait(&self) -> Option<Wait> {
        let days = chrono::Duration::days;
        match self {
            ApplicationStatus::Draft => Some(Wait::new(days(30), days(3), Reason::UserAbandoned)),
            ApplicationStatus::Verifying => Some(Wait::new(days(7), days(1), Reason::NotVerified)),
            ApplicationStatus::InfoRequested { .. } => {
                Some(Wait::new(days(14), days(2), Reason::UserAbandoned))
            }
            ApplicationStatus::Referred => {
                Some(Wait::new(days(10), days(2), Reason::NotDecidedInTime))
            }
            ApplicationStatus::Approved => Some(Wait::new(days(14), days(2), Reason::OfferExpired)),
            ApplicationStatus::Submitted
            | ApplicationStatus::Assessing
            | ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted
            | ApplicationStatus::Withdrawn { .. }
            | ApplicationStatus::Expired { .. } => None,
        }
    }

    pub fn is_final(&self) -> bool {
        match self {
            ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted
            | ApplicationStatus::Withdrawn { .. }
            | ApplicationStatus::Expired { .. } => true,
            ApplicationStatus::Draft
            | ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Assessing
            | ApplicationStatus::Referred
            | ApplicationStatus::InfoRequested { .. }
            | ApplicationStatus::Approved => false,
        }
    }
}

/// A waiting state's deadline rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub lasts: chrono::Duration,
    pub remind_before: chrono::Duration,
    /// Why it ends if nobody moves it on.
    pub expiry_reason: Reason,
}

impl Wait {
    const fn new(lasts: chrono::Duration, remind_before: chrono::Duration, why: Reason) -> Self {
        Self {
            lasts,
            remind_before,
            expiry_reason: why,
        }
    }
}

/// What the underwriter offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Offer {
    pub limit_minor: i64,
    pub currency: String,
    /// How long the line is valid once accepted.
    pub valid_days: u32,
    /// The price tier the credit policy gave, when a policy decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_tier: Option<String>,
}

/// One step of an application's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    pub state: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Application {
    pub id: String,
    /// The blind index of the verified mobile number that owns it.
    #[serde(skip_serializing)]
    #[serde(default)]
    pub owner: String,
    /// Set once submitted: the borrower it was registered as.
    pub borrower_id: Option<String>,
    #[serde(flatten)]
    pub status: ApplicationStatus,
    /// When the current wait ends (and the application expires unless it moves on).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub deadline: Option<Timestamp>,
    pub offer: Option<Offer>,
    /// The credit line granted on acceptance.
    pub line_id: Option<String>,
    /// The method that verified the applicant, once one did.
    pub verified_by: Option<String>,
    /// Every identity check tried, passed or not, with its reason.
    #[serde(default)]
    pub checks: Vec<IdentityCheck>,
    /// The credit policy version in effect when it was submitted: it is decided under that
    /// version, even if another takes effect meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
    /// The automated decision made on it, once one was (`/v1/applications/{id}/decision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    pub history: Vec<Step>,
    /// Moves on every save and step; a save must name the revision it read.
    pub revision: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

pub use crate::decision::PolicyRef;

/// What the credit policy decided on an application being assessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    Approve(Offer),
    Decline(Vec<Reason>),
    /// The borrower is asked for documents; a person reviews what they send.
    RequestDocuments(Vec<Reason>),
    /// To an underwriter; the note says why (a rule, a band, a bureau that did not answer).
    Refer(String),
}

/// One identity check and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityCheck {
    pub method: String,
    pub outcome: CheckOutcome,
    pub reason: Option<Reason>,
    /// What the provider said, for operators.
    pub detail: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
}

/// How an identity check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Sent to the provider, no answer recorded yet (or the process stopped before it was).
    Started,
    Passed,
    Failed,
    /// The method was down or not offered: nothing was checked.
    Unavailable,
    /// The provider was asked and gave no verdict: it may have checked.
    Inconclusive,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Started => "started",
            CheckOutcome::Passed => "passed",
            CheckOutcome::Failed => "failed",
            CheckOutcome::Unavailable => "unavailable",
            CheckOutcome::Inconclusive => "inconclusive",
        }
    }

    /// Whether the check may have been made (and paid for): an unavailable method checked
    /// nothing, so it does not use up the borrower's tries.
    pub fn counts_as_a_try(self) -> bool {
        match self {
            CheckOutcome::Started
            | CheckOutcome::Passed
            | CheckOutcome::Failed
            | CheckOutcome::Inconclusive => true,
            CheckOutcome::Unavailable => false,
        }
    }
}

/// Why a step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationError {
    #[error("the application is {state}; {wanted}")]
    WrongState { state: &'static str, wanted: String },
    #[error(transparent)]
    Invalid(#[from] Violations),
}

impl ApplicationError {
    pub fn code(&self) -> &'static str {
        match self {
            ApplicationError::WrongState { .. } => "conflict.application_state",
            ApplicationError::Invalid(v) => v.first().code,
        }
    }
}

/// What an underwriter decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve(Offer),
    Decline(Vec<Reason>),
    RequestInfo(Vec<Reason>),
}

/// Who acted, as a borrower reads it, when it was the lender's people or systems.
pub const LENDER: &str = "lender";

impl Application {
    /// The application as its borrower may see it: the exact cause of a risk decision
    /// replaced by a general reason ([`Reason::for_borrower`]) in its state, history and
    /// checks; the lender's people named as the lender; notes only where they were written to
    /// the borrower (a request for information); what a provider said left to operators.
    pub fn as_shown_to_borrower(mut self) -> Application {
        let shown = |reasons: &mut Vec<Reason>| {
            for reason in reasons.iter_mut() {
                *reason = reason.for_borrower();
            }
        };
        match &mut self.status {
            ApplicationStatus::InfoRequested { reasons }
            | ApplicationStatus::Declined { reasons } => shown(reasons),
            ApplicationStatus::Withdrawn { reason } | ApplicationStatus::Expired { reason } => {
                *reason = reason.for_borrower();
            }
            ApplicationStatus::Draft
            | ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Assessing
            | ApplicationStatus::Referred
            | ApplicationStatus::Approved
            | ApplicationStatus::Accepted => {}
        }
        for step in &mut self.history {
            shown(&mut step.reasons);
            if !(step.actor.starts_with("borrower:") || step.actor.starts_with("session:")) {
                step.actor = LENDER.to_owned();
            }
            if step.state != "info_requested" {
                step.note = None;
            }
        }
        for check in &mut self.checks {
            check.reason = check.reason.map(Reason::for_borrower);
            check.detail = None;
        }
        self
    }

    pub fn start(id: String, owner: String, actor: &str, now: Timestamp) -> Application {
        let mut application = Application {
            id,
            owner,
            borrower_id: None,
            status: ApplicationStatus::Draft,
            deadline: None,
            offer: None,
            line_id: None,
            verified_by: None,
            checks: Vec::new(),
            policy: None,
            decision_id: None,
            history: Vec::new(),
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        application.enter(ApplicationStatus::Draft, actor, None, now);
        application
    }

    fn enter(
        &mut self,
        status: ApplicationStatus,
        actor: &str,
        note: Option<String>,
        now: Timestamp,
    ) {
        self.history.push(Step {
            state: status.name().to_owned(),
            reasons: status.reasons(),
            actor: actor.to_owned(),
            note,
            at: now,
        });
        self.deadline = status.wait().map(|w| now + w.lasts);
        self.status = status;
        self.updated_at = now;
    }

    fn wrong(&self, wanted: &str) -> ApplicationError {
        ApplicationError::WrongState {
            state: self.status.name(),
            wanted: wanted.to_owned(),
        }
    }

    /// A step of the form was saved: a draft (or one answering a request for information)
    /// waits again from now.
    pub fn saved(&mut self, now: Timestamp) -> Result<(), ApplicationError> {
        match &self.status {
            ApplicationStatus::Draft | ApplicationStatus::InfoRequested { .. } => {
                self.deadline = self.status.wait().map(|w| now + w.lasts);
                self.updated_at = now;
                Ok(())
            }
            ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Assessing
            | ApplicationStatus::Referred
            | ApplicationStatus::Approved
            | ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted
            | ApplicationStatus::Withdrawn { .. }
            | ApplicationStatus::Expired { .. } => {
                Err(self.wrong("only a draft, or one asked for more information, is edited"))
            }
        }
    }

    /// Submits a complete draft (it then waits for identity verification), or sends answered
    /// information back to the underwriter. Submitting what was already submitted is not an
    /// error: the caller gets the application as it is (`false`).
    /// `policy` is the credit policy version in effect now, the one it will be decided under.
    pub fn submit(
        &mut self,
        borrower_id: String,
        policy: Option<PolicyRef>,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, ApplicationError> {
        match &self.status {
            ApplicationStatus::Draft => {
                self.borrower_id = Some(borrower_id);
                self.policy = policy;
                self.enter(ApplicationStatus::Submitted, actor, None, now);
                self.enter(ApplicationStatus::Verifying, actor, None, now);
                Ok(true)
            }
            ApplicationStatus::InfoRequested { .. } => {
                self.enter(ApplicationStatus::Referred, actor, None, now);
                Ok(true)
            }
            ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Assessing
            | ApplicationStatus::Referred
            | ApplicationStatus::Approved
            | ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted => Ok(false),
            ApplicationStatus::Withdrawn { .. } | ApplicationStatus::Expired { .. } => {
                Err(self.wrong("it has ended; start a new application"))
            }
        }
    }

    /// Identity verified: the credit policy assesses it next ([`Application::assessed`]).
    pub fn verified(
        &mut self,
        method: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), ApplicationError> {
        match &self.status {
            ApplicationStatus::Verifying => {
                self.verified_by = Some(method.to_owned());
                self.enter(ApplicationStatus::Assessing, actor, None, now);
                Ok(())
            }
            ApplicationStatus::Draft
            | ApplicationStatus::Submitted
            | ApplicationStatus::Assessing
            | ApplicationStatus::Referred
            | ApplicationStatus::InfoRequested { .. }
            | ApplicationStatus::Approved
            | ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted
            | ApplicationStatus::Withdrawn { .. }
            | ApplicationStatus::Expired { .. } => {
                Err(self.wrong("only an application waiting for verification is verified"))
            }
        }
    }

    /// The credit policy's decision (recorded as `decision_id`), on an application being
    /// assessed.
    pub fn assessed(
        &mut self,
        assessment: Assessment,
        decision_id: Option<String>,
        now: Timestamp,
    ) -> Result<(), ApplicationError> {
        match &self.status {
            ApplicationStatus::Assessing => {}
            ApplicationStatus::Draft
            | ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Referred
            | ApplicationStatus::InfoRequested { .. }
            | ApplicationStatus::Approved
            | ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted
            | ApplicationStatus::Withdrawn { .. }
            | ApplicationStatus::Expired { .. } => {
                return Err(self.wrong("only an application being assessed is assessed"));
            }
        }
        let (status, note) = match assessment {
            Assessment::Approve(offer) => {
                check_offer(&offer)?;
                self.offer = Some(offer);
                (ApplicationStatus::Approved, None)
            }
            Assessment::Decline(reasons) => (
                ApplicationStatus::Declined {
                    reasons: decision_reasons(reasons, "reasons")?,
                },
                None,
            ),
            Assessment::RequestDocuments(reasons) => (
                ApplicationStatus::InfoRequested {
                    reasons: decision_reasons(reasons, "reasons")?,
                },
                None,
            ),
            Assessment::Refer(note) => (ApplicationStatus::Referred, Some(note)),
        };
        self.decision_id = decision_id;
        self.enter(status, SYSTEM, note, now);
        Ok(())
    }

    pub fn decide(
        &mut self,
        decision: Decision,
        actor: &str,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<(), ApplicationError> {
        match &self.status {
            ApplicationStatus::Referred => {}
            ApplicationStatus::Draft
            | ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Assessing
            | ApplicationStatus::InfoRequested { .. }
            | ApplicationStatus::Approved
            | ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted
            | ApplicationStatus::Withdrawn { .. }
            | ApplicationStatus::Expired { .. } => {
                return Err(self.wrong("only a referred application is decided"));
            }
        }
        let status = match decision {
            Decision::Approve(offer) => {
                check_offer(&offer)?;
                self.offer = Some(offer);
                ApplicationStatus::Approved
            }
            Decision::Decline(reasons) => ApplicationStatus::Declined {
                reasons: decision_reasons(reasons, "reasons")?,
            },
            Decision::RequestInfo(reasons) => ApplicationStatus::InfoRequested {
                reasons: decision_reasons(reasons, "reasons")?,
            },
        };
        self.enter(status, actor, note, now);
        Ok(())
    }

    /// The borrower accepts the offer; the caller grants the line and records its id.
    pub fn accept(
        &mut self,
        line_id: String,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), ApplicationError> {
        match &self.status {
            ApplicationStatus::Approved => {
                self.line_id = Some(line_id);
                self.enter(ApplicationStatus::Accepted, actor, None, now);
                Ok(())
            }
            ApplicationStatus::Draft
            | ApplicationStatus::Submitted
            | ApplicationStatus::Verifying
            | ApplicationStatus::Assessing
            | ApplicationStatus::Referred
            | ApplicationStatus::InfoRequested { .. }
            | ApplicationStatus::Declined { .. }
            | ApplicationStatus::Accepted
            | ApplicationStatus::Withdrawn { .. }
            | ApplicationStatus::Expired { .. } => {
                Err(self.wrong("only an approved application is accepted"))
            }
        }
    }

    pub fn withdraw(&mut self, actor: &str, now: Timestamp) -> Result<(), ApplicationError> {
        if self.status.is_final() {
            return Err(self.wrong("it has already ended"));
        }
        self.enter(
            ApplicationStatus::Withdrawn {
                reason: Reason::UserCancelled,
            },
            actor,
            None,
            now,
        );
        Ok(())
    }

    /// The deadline `deadline` of the state `state` passed: expires if the application still
    /// waits there (`false` if it moved on, or was given a new deadline).
    pub fn expire(&mut self, state: &str, deadline: Timestamp, now: Timestamp) -> bool {
        let waiting_here =
            self.status.name() == state && self.deadline == Some(deadline) && deadline <= now;
        match self.status.wait() {
            Some(wait) if waiting_here => {
                self.enter(
                    ApplicationStatus::Expired {
                        reason: wait.expiry_reason,
                    },
                    SYSTEM,
                    None,
                    now,
                );
                true
            }
            Some(_) | None => false,
        }
    }
}

fn check_offer(offer: &Offer) -> Result<(), Violations> {
    let mut found = Collector::default();
    if !(1..=10_000_000_000).contains(&offer.limit_minor) {
        found.add(
            "limit_minor",
            "validation.amount_out_of_range",
            "the limit must be positive",
        );
    }
    if crate::money::Currency::parse(&offer.currency).is_none() {
        found.add(
            "currency",
            "validation.invalid_currency",
            "an ISO 4217 code, e.g. CNY",
        );
    }
    if !(1..=3650).contains(&offer.valid_days) {
        found.add(
            "valid_days",
            "validation.invalid_validity",
            "valid_days must be 1-3650",
        );
    }
    found.finish(Some(()))
}

fn decision_reasons(reasons: Vec<Reason>, field: &str) -> Result<Vec<Reason>, Violations> {
    if reasons.is_empty() {
        return Err(Violations::single(
            field,
            "validation.reason_required",
            "name at least one reason code",
        ));
    }
    Ok(reasons)
}

/// The form as the borrower fills it in; every field optional until submission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Form {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_id: Option<String>,
    /// The mobile number signed in with: a submission must name that same number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_limit_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_income_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

impl Form {
    /// This step's answers over the saved ones: a field sent replaces it, a field left out is
    /// kept.
    pub fn merge(&mut self, step: Form) {
        macro_rules! take {
            ($($f:ident),*) => {$( if step.$f.is_some() { self.$f = step.$f; } )*};
        }
        take!(
            name,
            resident_id,
            mobile,
            email,
            address,
            bank_account,
            requested_limit_minor,
            monthly_income_minor,
            employer,
            purpose
        );
    }

    /// Checks what is there, so a wrong answer is told at the step it was given.
    pub fn check_step(&self) -> Result<(), Violations> {
        let mut found = Collector::default();
        for (field, value, max) in [
            ("name", &self.name, 100),
            ("employer", &self.employer, 200),
            ("purpose", &self.purpose, 500),
            ("address", &self.address, 300),
        ] {
            if let Some(v) = value
                && (v.trim().is_empty()
                    || v.chars().count() > max
                    || v.chars().any(char::is_control))
            {
                found.add(
                    field,
                    "validation.invalid_text",
                    format!("1-{max} characters, no control characters"),
                );
            }
        }
        for (field, value) in [
            ("requested_limit_minor", self.requested_limit_minor),
            ("monthly_income_minor", self.monthly_income_minor),
        ] {
            if let Some(v) = value
                && !(0..=10_000_000_000).contains(&v)
            {
                found.add(
                    field,
                    "validation.amount_out_of_range",
                    "an amount in minor units, 0 to 10,000,000,000",
                );
            }
        }
        found.finish(Some(()))
    }

    /// Names every missing answer a submission needs.
    pub fn check_complete(&self) -> Result<(), Violations> {
        self.check_step()?;
        let mut found = Collector::default();
        let missing = [
            ("name", self.name.is_none()),
            ("resident_id", self.resident_id.is_none()),
            ("mobile", self.mobile.is_none()),
            (
                "requested_limit_minor",
                self.requested_limit_minor.is_none(),
            ),
            ("monthly_income_minor", self.monthly_income_minor.is_none()),
            ("bank_account", self.bank_account.is_none()),
        ];
        for (field, absent) in missing {
            if absent {
                found.add(
                    field,
                    "validation.missing_field",
                    "needed to submit the application",
                );
            }
        }
        found.finish(Some(()))
    }
}

#[cfg(test)]
mod tests;
