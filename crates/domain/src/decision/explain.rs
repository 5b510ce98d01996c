//! What decided an outcome, as the borrower may be told it: the rule of the policy (named only
//! when its reason is one the catalogue shows borrowers), the score band, the bureau's silence,
//! or a person; and that in a sentence in the borrower's language.

use serde::{Deserialize, Serialize};

use super::evaluate::{BureauUse, Evaluation, Outcome};
use super::policy::{Policy, RuleOutcome};
use super::versions::PolicyRef;
use crate::reasons::Language;

/// Which part of the policy, or who, settled an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DecidedBy {
    /// A rule of the policy. Its table and row are given only when its reason is one the
    /// borrower may see; a risk rule whose exact cause the catalogue hides is not named.
    Rule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        row: Option<u32>,
    },
    /// The score fell in a band of the policy: its number of how many, and the scores it spans.
    ScoreBand {
        band: u32,
        of: u32,
        min_score: i64,
        max_score: i64,
    },
    /// The bureau did not answer and the policy sends such applications to a person.
    BureauUnavailable,
    /// A person (an underwriter, a risk operator) decided after the policy asked them to.
    Person,
}

/// What decided an outcome a borrower sees, for the views that show it (an application's
/// status, a drawdown, a credit line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decider {
    pub decided_by: DecidedBy,
    /// The policy version that decided, or that asked a person to.
    pub policy: PolicyRef,
    /// The decision record (`/v1/borrowers/{borrower_id}/decisions/{decision_id}`).
    pub decision_id: String,
    /// What decided, in a sentence in the reader's language.
    pub text: String,
}

impl Decider {
    pub fn new(
        decided_by: DecidedBy,
        policy: PolicyRef,
        decision_id: String,
        language: Language,
    ) -> Decider {
        Decider {
            text: decided_by.describe(&policy, language),
            decided_by,
            policy,
            decision_id,
        }
    }
}

impl Policy {
    /// What settled `evaluation`'s outcome: the band its score fell in, or the first rule that
    /// fired with that outcome. `None` when nothing stood in the way (an approval has its band;
    /// a drawdown that passes or a line kept as it is has nothing to name).
    pub fn decided_by(&self, evaluation: &Evaluation) -> Option<DecidedBy> {
        if let Some(number) = evaluation.band
            && let Some(band) = self.bands.iter().find(|b| b.number == number)
        {
            return Some(DecidedBy::ScoreBand {
                band: number,
                of: u32::try_from(self.bands.len()).unwrap_or(u32::MAX),
                // Open ends are the scores the scorecard can give.
                min_score: band.lo.max(self.min_score),
                max_score: band.hi.min(self.max_score),
            });
        }
        // A change of limit is the percentage of one rule (the largest cut, the smallest
        // raise): that rule decided, not merely the first that fired.
        let (settled_by, percent) = match evaluation.outcome {
            Outcome::Decline => (RuleOutcome::Decline, None),
            Outcome::Refer => (RuleOutcome::Refer, None),
            Outcome::RequestDocuments => (RuleOutcome::RequestDocuments, None),
            Outcome::Hold => (RuleOutcome::Hold, None),
            Outcome::Freeze => (RuleOutcome::Freeze, None),
            Outcome::Unfreeze => (RuleOutcome::Unfreeze, None),
            Outcome::Decrease { percent } => (RuleOutcome::Decrease, Some(percent)),
            Outcome::Increase { percent } => (RuleOutcome::Increase, Some(percent)),
            Outcome::Approve(_) | Outcome::Pass | Outcome::Keep => return None,
        };
        let deciding = evaluation.fired.iter().find(|f| {
            f.outcome == settled_by
                && percent.is_none_or(|p| {
                    self.row(evaluation.stage, f)
                        .is_some_and(|r| r.percent == p)
                })
        });
        match deciding {
            Some(rule) => {
                let shown = rule.reason.is_none_or(|r| r.entry().borrower_visible);
                Some(DecidedBy::Rule {
                    table: shown.then(|| rule.table.clone()),
                    row: shown.then_some(rule.row),
                })
            }
            None if evaluation.bureau == BureauUse::UnavailableReferred => {
                Some(DecidedBy::BureauUnavailable)
            }
            None => None,
        }
    }
}

impl DecidedBy {
    /// The sentence a borrower reads, in `language`; `policy` is the version that decided.
    pub fn describe(&self, policy: &PolicyRef, language: Language) -> String {
        let (code, version) = (&policy.code, policy.version);
        match (self, language) {
            (
                DecidedBy::Rule {
                    table: Some(table),
                    row: Some(row),
                },
                Language::En,
            ) => format!(
                "Decided by rule {row} of the “{table}” table of our credit policy \
                 ({code}, version {version})."
            ),
            (
                DecidedBy::Rule {
                    table: Some(table),
                    row: Some(row),
                },
                Language::ZhHans,
            ) => format!("由我们的信用政策（{code}，第{version}版）“{table}”表第{row}条规则决定。"),
            (DecidedBy::Rule { .. }, Language::En) => {
                format!("Decided by a risk rule of our credit policy ({code}, version {version}).")
            }
            (DecidedBy::Rule { .. }, Language::ZhHans) => {
                format!("由我们的信用政策（{code}，第{version}版）中的一条风控规则决定。")
            }
            (
                DecidedBy::ScoreBand {
                    band,
                    of,
                    min_score,
                    max_score,
                },
                Language::En,
            ) => format!(
                "Decided by your credit score: it is in band {band} of {of} of our credit policy \
                 ({code}, version {version}), the band for scores {min_score} to {max_score}."
            ),
            (
                DecidedBy::ScoreBand {
                    band,
                    of,
                    min_score,
                    max_score,
                },
                Language::ZhHans,
            ) => format!(
                "由您的信用评分决定：评分位于我们的信用政策（{code}，第{version}版）\
                 {of}个分段中的第{band}段（{min_score}至{max_score}分）。"
            ),
            (DecidedBy::BureauUnavailable, Language::En) => {
                "The credit bureau did not answer in time, so a person on our credit team decides."
                    .to_owned()
            }
            (DecidedBy::BureauUnavailable, Language::ZhHans) => {
                "征信机构未能及时答复，因此由我们信贷团队的工作人员审核决定。".to_owned()
            }
            (DecidedBy::Person, Language::En) => {
                "Decided by a person on our credit team, who reviewed it.".to_owned()
            }
            (DecidedBy::Person, Language::ZhHans) => {
                "由我们信贷团队的工作人员审核后决定。".to_owned()
            }
        }
    }
}
