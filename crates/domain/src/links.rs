//! What a signed link is for, and what a session opened from one may reach. Pure: the signing,
//! the records and the sessions are the engine's.

use serde::{Deserialize, Serialize};

/// What a session opened from a link may reach: the link's purpose, on its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkScope {
    pub purpose: Purpose,
    pub subject: String,
}

impl LinkScope {
    /// As sessions keep it: `purpose:subject`.
    pub fn to_stored(&self) -> String {
        format!("{}:{}", self.purpose.as_str(), self.subject)
    }

    pub fn from_stored(stored: &str) -> Option<LinkScope> {
        let (purpose, subject) = stored.split_once(':')?;
        Some(LinkScope {
            purpose: Purpose::parse(purpose)?,
            subject: subject.to_owned(),
        })
    }
}

/// What a link may be used for: a link for one purpose opens nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    ResumeApplication,
    SignContract,
    ViewLoan,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ResumeApplication => "resume_application",
            Purpose::SignContract => "sign_contract",
            Purpose::ViewLoan => "view_loan",
        }
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        [
            Purpose::ResumeApplication,
            Purpose::SignContract,
            Purpose::ViewLoan,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}
