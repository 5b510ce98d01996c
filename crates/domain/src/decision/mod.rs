//! Credit decisions as data: a policy (knock-out decision tables, a scorecard, score bands) is
//! written as JSON, validated with every problem reported at once, and compiled once into an
//! evaluator that decides on features in memory. Nothing here reads a database or a bureau:
//! the engine loads the features and keeps the record.
//!
//! The stages a policy decides at:
//! - `application`: knock-out tables, then the scorecard and its bands: approve (limit, rate
//!   tier, validity), refer to a person, request documents, or decline;
//! - `drawdown`: the risk check at quote and confirmation: pass, hold for review, or decline;
//! - `line_review`: the daily review of a line: keep, increase, decrease, freeze or unfreeze.
//!
//! At every stage a rule may warn the borrower instead, before a threshold bites.

mod challenge;
mod evaluate;
mod explain;
mod features;
pub mod jdm;
mod policy;
mod sets;
mod versions;

pub use challenge::{Challenge, ChallengeError, ChallengeMode, Side};
pub use evaluate::{
    BureauStatus, BureauUse, Evaluation, Explained, FiredRule, OfferTerms, Outcome, Score,
    ScoredCharacteristic,
};
pub use explain::{DecidedBy, Decider};
pub use features::{
    Feature, FeatureDefinition, FeatureError, FeatureSource, FeatureType, Features, Value,
};
pub use policy::{
    BandInput, BandOutcome, BinInput, BureauFallback, CellInput, CharacteristicInput, HitPolicy,
    Policy, PolicyDocument, RuleInput, RuleOutcome, ScorecardInput, TableInput,
};
pub use versions::{
    Activation, ActivationError, PolicyCode, PolicyRef, PolicyVersion, VersionStatus, in_effect,
    status,
};

use serde::{Deserialize, Serialize};

/// The policy `lendcore demo` loads and a small consumer lender may start from
/// (docs/POLICY.md explains it).
pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.json");

/// Where in the flow a decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Application,
    Drawdown,
    LineReview,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Application => "application",
            Stage::Drawdown => "drawdown",
            Stage::LineReview => "line_review",
        }
    }

    fn index(self) -> usize {
        match self {
            Stage::Application => 0,
            Stage::Drawdown => 1,
            Stage::LineReview => 2,
        }
    }
}

/// What a borrower is warned of before a rule bites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// Most of the limit is in use.
    UtilisationHigh,
    /// An installment falls due in a few days.
    InstallmentDueSoon,
    /// What the borrower owes everywhere is close to what the lender allows.
    ExposureNearCap,
    /// The line expires soon.
    LineExpiringSoon,
}

impl Warning {
    pub fn as_str(self) -> &'static str {
        match self {
            Warning::UtilisationHigh => "utilisation_high",
            Warning::InstallmentDueSoon => "installment_due_soon",
            Warning::ExposureNearCap => "exposure_near_cap",
            Warning::LineExpiringSoon => "line_expiring_soon",
        }
    }
}

#[cfg(test)]
mod tests;
