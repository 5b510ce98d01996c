//! Policy versions: authored by one person, activated by another (maker-checker), immutable
//! from the moment they are authored; the one in effect at an instant is the activated version
//! with the latest effective time not after it.

use serde::{Deserialize, Serialize};

use super::policy::PolicyDocument;
use crate::product::ProductCode;
use crate::validation::Violations;
use crate::{Timestamp, to_millis};

/// A policy's code, e.g. `consumer`: written like a product code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[a-z0-9][a-z0-9_-]{1,31}$", example = "consumer"))]
#[serde(try_from = "String", into = "String")]
pub struct PolicyCode(String);

impl PolicyCode {
    pub fn parse(s: &str) -> Result<Self, Violations> {
        ProductCode::parse(s)
            .map(|c| Self(c.as_str().to_owned()))
            .map_err(|_| {
                Violations::single(
                    "code",
                    "validation.invalid_policy_code",
                    "policy codes are 2-32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
                )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PolicyCode {
    type Error = Violations;
    fn try_from(s: String) -> Result<Self, Violations> {
        PolicyCode::parse(&s)
    }
}

impl From<PolicyCode> for String {
    fn from(code: PolicyCode) -> String {
        code.0
    }
}

impl std::fmt::Display for PolicyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A credit policy version, by code and number: what work in flight was begun under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyRef {
    pub code: String,
    pub version: u32,
}

/// Who activated a version, when, and from when it decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activation {
    pub by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub effective_from: Timestamp,
}

/// One version of a policy, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub code: PolicyCode,
    pub version: u32,
    pub document: PolicyDocument,
    /// SHA-256 of the document as stored: what a record's replay checks it ran on.
    pub sha256: String,
    pub authored_by: String,
    pub authored_at: Timestamp,
    pub activation: Option<Activation>,
}

/// Where a version stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Authored, waiting for a second person to activate it.
    Draft,
    /// Activated; decides from its effective time.
    Scheduled,
    /// The version new work is decided under.
    InEffect,
    /// Was in effect; a later one took over. Work begun under it still finishes under it.
    Superseded,
}

/// Why a version cannot be activated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    #[error("a version is activated by a second person, not by its author")]
    SameAuthor,
    #[error("version {0} was already activated")]
    AlreadyActivated(u32),
    #[error("a version takes effect now or later, not in the past")]
    EffectiveInPast,
}

impl ActivationError {
    pub fn code(&self) -> &'static str {
        match self {
            ActivationError::SameAuthor => "auth.four_eyes",
            ActivationError::AlreadyActivated(_) => "conflict.policy_activated",
            ActivationError::EffectiveInPast => "validation.effective_in_past",
        }
    }
}

impl PolicyVersion {
    pub fn author(
        code: PolicyCode,
        version: u32,
        document: PolicyDocument,
        sha256: String,
        by: &str,
        now: Timestamp,
    ) -> PolicyVersion {
        PolicyVersion {
            code,
            version,
            document,
            sha256,
            authored_by: by.to_owned(),
            authored_at: to_millis(now),
            activation: None,
        }
    }

    /// Activates the version from `effective_from` (now when not given). Its author may not.
    pub fn activate(
        &mut self,
        by: &str,
        effective_from: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), ActivationError> {
        if self.activation.is_some() {
            return Err(ActivationError::AlreadyActivated(self.version));
        }
        if by == self.authored_by {
            return Err(ActivationError::SameAuthor);
        }
        let now = to_millis(now);
        let effective_from = effective_from.map_or(now, to_millis);
        if effective_from < now {
            return Err(ActivationError::EffectiveInPast);
        }
        self.activation = Some(Activation {
            by: by.to_owned(),
            at: now,
            effective_from,
        });
        Ok(())
    }

    fn takes_effect(&self) -> Option<(Timestamp, Timestamp)> {
        self.activation.as_ref().map(|a| (a.effective_from, a.at))
    }
}

/// The version in effect at `at` among `versions` (of any policies): the activated one with
/// the latest effective time not after `at`, the later activation breaking a tie.
pub fn in_effect(versions: &[PolicyVersion], at: Timestamp) -> Option<&PolicyVersion> {
    versions
        .iter()
        .filter(|v| v.takes_effect().is_some_and(|(from, _)| from <= at))
        .max_by_key(|v| v.takes_effect())
}

/// Where `version` stands at `now`, `live` being the version in effect then (its code and
/// number).
pub fn status(
    version: &PolicyVersion,
    live: Option<(&PolicyCode, u32)>,
    now: Timestamp,
) -> VersionStatus {
    match version.takes_effect() {
        None => VersionStatus::Draft,
        Some((from, _)) if from > now => VersionStatus::Scheduled,
        Some(_) if live == Some((&version.code, version.version)) => VersionStatus::InEffect,
        Some(_) => VersionStatus::Superseded,
    }
}
