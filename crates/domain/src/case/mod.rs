//! Support cases: "get help" as a next step that leads somewhere. A borrower (or support on
//! their behalf) opens a case about an application, a drawdown, a loan or a line, usually from
//! the refusal or failure it names; support owes an answer by a deadline, is reminded before
//! it and alerted when it passes; the borrower is told of each answer. A borrower's: every
//! case and message is keyed by borrower.

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::reasons::Reason;
use crate::validation::{Collector, Violations};

/// What a case is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Application,
    Drawdown,
    Loan,
    CreditLine,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Application => "application",
            SubjectKind::Drawdown => "drawdown",
            SubjectKind::Loan => "loan",
            SubjectKind::CreditLine => "credit_line",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: SubjectKind,
    pub id: String,
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = CaseStatus))]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Support owes an answer, by `respond_by`.
    WaitingForSupport,
    /// Support answered; the borrower may write again.
    WaitingForBorrower,
    /// Settled. The borrower may reopen it for a while by writing again.
    Resolved,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::WaitingForSupport => "waiting_for_support",
            CaseStatus::WaitingForBorrower => "waiting_for_borrower",
            CaseStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        [
            CaseStatus::WaitingForSupport,
            CaseStatus::WaitingForBorrower,
            CaseStatus::Resolved,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Case {
    pub id: String,
    pub borrower_id: String,
    pub subject: Subject,
    /// The refusal or failure the case is about, when it was opened from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub status: CaseStatus,
    /// Who opened it: `borrower:{id}`, or the support operator on the borrower's behalf.
    pub opened_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub opened_at: Timestamp,
    /// When support must answer by, while it waits for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub respond_by: Option<Timestamp>,
    /// When the deadline passed unanswered; cleared by the next answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub overdue_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub resolved_at: Option<Timestamp>,
    /// Messages so far, internal notes included; the next one's number is this plus one.
    pub messages: i64,
    pub revision: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Author {
    Borrower,
    /// Support, as the operator (or the lender's back-end) that wrote it.
    Support {
        actor: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseMessage {
    /// 1 for the first message of the case, then one more each time.
    pub seq: i64,
    pub author: Author,
    pub body: String,
    /// A note between support staff, never shown or sent to the borrower.
    pub internal: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
}

/// A case as it is opened: by its borrower, or by support on their behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    pub id: String,
    pub borrower_id: String,
    pub subject: Subject,
    pub reason: Option<Reason>,
    pub author: Author,
    /// The first message: what the borrower needs.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Invalid(#[from] Violations),
    #[error("the case is resolved: reopen it by writing to it, or open a new one")]
    Resolved,
    #[error("the case was resolved too long ago to reopen: open a new one")]
    TooOldToReopen,
}

impl CaseError {
    pub fn code(&self) -> &'static str {
        match self {
            CaseError::Invalid(v) => v.first().code,
            CaseError::Resolved => "conflict.case_resolved",
            CaseError::TooOldToReopen => "conflict.case_closed",
        }
    }
}

pub const MAX_BODY_CHARS: usize = 2_000;
/// A resolved case reopens when its borrower writes to it within this many days.
pub const REOPEN_DAYS: i64 = 14;

/// A message's text: trimmed, 1 to [`MAX_BODY_CHARS`] characters, line breaks and tabs the
/// only control characters.
pub fn body(raw: &str) -> Result<String, Violations> {
    let text = raw.trim();
    let mut found = Collector::default();
    if text.is_empty()
        || text.chars().count() > MAX_BODY_CHARS
        || text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        found.add(
            "body",
            "validation.invalid_text",
            format!("1-{MAX_BODY_CHARS} characters"),
        );
    }
    found.finish(Some(text.to_owned()))
}

impl Case {
    /// A new case and its first message, waiting for support's answer by `now + respond_within`.
    pub fn open(
        input: NewCase,
        now: Timestamp,
        respond_within: chrono::Duration,
    ) -> Result<(Case, CaseMessage), CaseError> {
        let text = body(&input.text)?;
        let opened_by = match &input.author {
            Author::Borrower => format!("borrower:{}", input.borrower_id),
            Author::Support { actor } => actor.clone(),
        };
        let case = Case {
            id: input.id,
            borrower_id: input.borrower_id,
            subject: input.subject,
            reason: input.reason,
            status: CaseStatus::WaitingForSupport,
            opened_by,
            opened_at: now,
            respond_by: Some(now + respond_within),
            overdue_since: None,
            resolved_at: None,
            messages: 1,
            revision: 1,
            updated_at: now,
        };
        let message = CaseMessage {
            seq: 1,
            author: input.author,
            body: text,
            internal: false,
            at: now,
        };
        Ok((case, message))
    }

    fn next(
        &mut self,
        author: Author,
        text: String,
        internal: bool,
        now: Timestamp,
    ) -> CaseMessage {
        self.messages += 1;
        self.revision += 1;
        self.updated_at = now;
        CaseMessage {
            seq: self.messages,
            author,
            body: text,
            internal,
            at: now,
        }
    }

    /// The borrower writes: support owes an answer again (by the deadline already running, if
    /// one is); a resolved case reopens within [`REOPEN_DAYS`].
    pub fn borrower_writes(
        &mut self,
        text: &str,
        now: Timestamp,
        respond_within: chrono::Duration,
    ) -> Result<CaseMessage, CaseError> {
        let text = body(text)?;
        match self.status {
            CaseStatus::WaitingForSupport => {}
            CaseStatus::WaitingForBorrower => {
                self.respond_by = Some(now + respond_within);
            }
            CaseStatus::Resolved => {
                if self
                    .resolved_at
                    .is_some_and(|at| now - at > chrono::Duration::days(REOPEN_DAYS))
                {
                    return Err(CaseError::TooOldToReopen);
                }
                self.resolved_at = None;
                self.respond_by = Some(now + respond_within);
            }
        }
        self.status = CaseStatus::WaitingForSupport;
        Ok(self.next(Author::Borrower, text, false, now))
    }

    /// Support answers the borrower (the deadline is met), or adds an internal note (nothing
    /// changes for the borrower).
    pub fn support_writes(
        &mut self,
        actor: &str,
        text: &str,
        internal: bool,
        now: Timestamp,
    ) -> Result<CaseMessage, CaseError> {
        let text = body(text)?;
        match self.status {
            CaseStatus::WaitingForSupport | CaseStatus::WaitingForBorrower => {}
            CaseStatus::Resolved if internal => {}
            CaseStatus::Resolved => return Err(CaseError::Resolved),
        }
        if !internal {
            self.status = CaseStatus::WaitingForBorrower;
            self.respond_by = None;
            self.overdue_since = None;
        }
        let author = Author::Support {
            actor: actor.to_owned(),
        };
        Ok(self.next(author, text, internal, now))
    }

    /// Support settles the case, saying how to the borrower.
    pub fn resolve(
        &mut self,
        actor: &str,
        text: &str,
        now: Timestamp,
    ) -> Result<CaseMessage, CaseError> {
        let text = body(text)?;
        match self.status {
            CaseStatus::WaitingForSupport | CaseStatus::WaitingForBorrower => {}
            CaseStatus::Resolved => return Err(CaseError::Resolved),
        }
        self.status = CaseStatus::Resolved;
        self.respond_by = None;
        self.overdue_since = None;
        self.resolved_at = Some(now);
        let author = Author::Support {
            actor: actor.to_owned(),
        };
        Ok(self.next(author, text, false, now))
    }

    /// Marks the case overdue when support has not answered by `deadline` (the one a reminder
    /// was scheduled for: a later answer and a new question make a new deadline); true when
    /// it just became overdue.
    pub fn fall_due(&mut self, deadline: Timestamp, now: Timestamp) -> bool {
        let missed = match self.status {
            CaseStatus::WaitingForSupport => {
                self.respond_by == Some(deadline) && deadline <= now && self.overdue_since.is_none()
            }
            CaseStatus::WaitingForBorrower | CaseStatus::Resolved => false,
        };
        if missed {
            self.overdue_since = Some(now);
            self.revision += 1;
            self.updated_at = now;
        }
        missed
    }

    /// Whether support still owes the answer due at `deadline`.
    pub fn still_due(&self, deadline: Timestamp) -> bool {
        match self.status {
            CaseStatus::WaitingForSupport => self.respond_by == Some(deadline),
            CaseStatus::WaitingForBorrower | CaseStatus::Resolved => false,
        }
    }
}
