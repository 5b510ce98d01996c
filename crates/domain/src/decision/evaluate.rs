//! Deciding: a compiled policy applied to features in memory. Deterministic, so a recorded
//! decision evaluated again from its inputs gives the same answer.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::features::{Feature, Features, Value};
use super::policy::{BandOutcome, BureauFallback, HitPolicy, Policy, RuleOutcome};
use super::{Stage, Warning};
use crate::reasons::Reason;

/// The most reasons a decision gives, the ones that weighed most first (adverse-action style).
pub const MAX_REASONS: usize = 4;
/// Offered limits are whole multiples of this many minor units (rounded down).
pub const LIMIT_STEP_MINOR: i64 = 100;

/// Whether the bureau answered the inquiry a decision made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BureauStatus {
    Answered,
    /// Down, slow past its deadline, or answering nonsense: its features are missing.
    Unavailable,
    /// The decision does not ask the bureau (the policy reads none of its features).
    NotAsked,
}

/// What the decision did about the bureau.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "bureau", rename_all = "snake_case")]
pub enum BureauUse {
    Answered,
    NotAsked,
    /// Unavailable; the policy referred the application to a person.
    UnavailableReferred,
    /// Unavailable; decided without its features, the limit capped.
    UnavailableDecidedWithout {
        limit_cap_minor: i64,
    },
}

/// The terms an approval offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferTerms {
    pub limit_minor: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_tier: Option<String>,
    pub valid_days: u32,
}

/// What was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Application: an offer.
    Approve(OfferTerms),
    /// Application: to an underwriter.
    Refer,
    RequestDocuments,
    /// Application or drawdown.
    Decline,
    /// Drawdown: nothing stands in the way.
    Pass,
    /// Drawdown: held for an operator.
    Hold,
    /// Line review: nothing changes.
    Keep,
    Freeze,
    Unfreeze,
    Decrease {
        percent: u32,
    },
    Increase {
        percent: u32,
    },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Approve(_) => "approve",
            Outcome::Refer => "refer",
            Outcome::RequestDocuments => "request_documents",
            Outcome::Decline => "decline",
            Outcome::Pass => "pass",
            Outcome::Hold => "hold",
            Outcome::Keep => "keep",
            Outcome::Freeze => "freeze",
            Outcome::Unfreeze => "unfreeze",
            Outcome::Decrease { .. } => "decrease",
            Outcome::Increase { .. } => "increase",
        }
    }
}

/// A row of a table whose conditions held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiredRule {
    pub table: String,
    /// Counted from 1, as people read a table.
    pub row: u32,
    pub outcome: RuleOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<Warning>,
    /// For `decrease` and `increase`: by how many percent of the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
}

/// One characteristic's part of the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoredCharacteristic {
    pub feature: String,
    /// The bin the value fell in, counted from 1.
    pub bin: u32,
    pub points: i64,
    /// The most this characteristic gives: what it cost is the difference.
    pub max_points: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Score {
    pub scorecard: String,
    pub value: i64,
    pub characteristics: Vec<ScoredCharacteristic>,
}

/// A reason given, and what in the policy gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explained {
    pub reason: Reason,
    /// e.g. `table overdue, row 1` or `monthly_income_minor: 5 of 40 points`.
    pub because: String,
}

/// A decision: the outcome and everything that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evaluation {
    pub stage: Stage,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub fired: Vec<FiredRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    /// The band the score fell in, counted from 1, when a band decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<u32>,
    /// At most four, the weightiest first.
    pub reasons: Vec<Reason>,
    pub explanation: Vec<Explained>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    #[serde(flatten)]
    pub bureau: BureauUse,
}

impl Policy {
    /// Decides at `stage` on `features`. `bureau` says whether the bureau answered; its
    /// features are missing unless it did.
    pub fn decide(&self, stage: Stage, features: &Features, bureau: BureauStatus) -> Evaluation {
        let fired = self.fire(stage, features);
        // A borrower is told of a warning, not of how many rules gave it.
        let mut warnings: Vec<Warning> = Vec::new();
        for warning in fired.iter().filter_map(|f| f.warning) {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        let mut evaluation = match stage {
            Stage::Application => self.decide_application(features, bureau, fired),
            Stage::Drawdown => {
                let outcome = if has(&fired, RuleOutcome::Decline) {
                    Outcome::Decline
                } else if has(&fired, RuleOutcome::Hold) {
                    Outcome::Hold
                } else {
                    Outcome::Pass
                };
                self.plain(stage, outcome, fired, bureau)
            }
            Stage::LineReview => {
                let percent = |o: RuleOutcome| {
                    fired
                        .iter()
                        .filter(move |f| f.outcome == o)
                        .map(|f| self.row(stage, f).map_or(0, |r| r.percent))
                };
                let outcome = if has(&fired, RuleOutcome::Freeze) {
                    Outcome::Freeze
                } else if let Some(p) = percent(RuleOutcome::Decrease).max() {
                    Outcome::Decrease { percent: p }
                } else if has(&fired, RuleOutcome::Unfreeze) {
                    Outcome::Unfreeze
                } else if let Some(p) = percent(RuleOutcome::Increase).min() {
                    Outcome::Increase { percent: p }
                } else {
                    Outcome::Keep
                };
                self.plain(stage, outcome, fired, bureau)
            }
        };
        evaluation.warnings = warnings;
        evaluation
    }

    pub(crate) fn row(&self, stage: Stage, fired: &FiredRule) -> Option<&super::policy::Row> {
        self.tables[stage.index()]
            .iter()
            .find(|t| t.name == fired.table)
            .and_then(|t| t.rows.get(fired.row as usize - 1))
    }

    fn fire(&self, stage: Stage, features: &Features) -> Vec<FiredRule> {
        let mut fired = Vec::new();
        for table in &self.tables[stage.index()] {
            for (i, row) in table.rows.iter().enumerate() {
                if row.matches(features) {
                    fired.push(FiredRule {
                        table: table.name.clone(),
                        row: i as u32 + 1,
                        outcome: row.outcome,
                        reason: row.reason,
                        warning: row.warning,
                        percent: match row.outcome {
                            RuleOutcome::Decrease | RuleOutcome::Increase => Some(row.percent),
                            RuleOutcome::Decline
                            | RuleOutcome::Refer
                            | RuleOutcome::RequestDocuments
                            | RuleOutcome::Hold
                            | RuleOutcome::Warn
                            | RuleOutcome::Freeze
                            | RuleOutcome::Unfreeze => None,
                        },
                    });
                    if table.hit == HitPolicy::First {
                        break;
                    }
                }
            }
        }
        fired
    }

    /// A drawdown check or a line review: the reasons are those of the rows that decided.
    fn plain(
        &self,
        stage: Stage,
        outcome: Outcome,
        fired: Vec<FiredRule>,
        bureau: BureauStatus,
    ) -> Evaluation {
        let deciding = deciding_rule(&outcome);
        let explanation = explain_rules(&fired, deciding);
        Evaluation {
            stage,
            outcome,
            fired,
            score: None,
            band: None,
            reasons: reasons_of(&explanation),
            explanation,
            warnings: Vec::new(),
            bureau: match bureau {
                BureauStatus::Answered => BureauUse::Answered,
                BureauStatus::Unavailable | BureauStatus::NotAsked => BureauUse::NotAsked,
            },
        }
    }

    fn decide_application(
        &self,
        features: &Features,
        bureau: BureauStatus,
        fired: Vec<FiredRule>,
    ) -> Evaluation {
        let score = self.score(features);
        let bureau_use = match (bureau, &self.document.bureau_unavailable) {
            (BureauStatus::Answered, _) => BureauUse::Answered,
            (BureauStatus::NotAsked, _) => BureauUse::NotAsked,
            (BureauStatus::Unavailable, BureauFallback::Refer) => BureauUse::UnavailableReferred,
            (BureauStatus::Unavailable, BureauFallback::DecideWithout { limit_cap_minor }) => {
                BureauUse::UnavailableDecidedWithout {
                    limit_cap_minor: *limit_cap_minor,
                }
            }
        };
        let knocked_out = [
            (RuleOutcome::Decline, Outcome::Decline),
            (RuleOutcome::RequestDocuments, Outcome::RequestDocuments),
            (RuleOutcome::Refer, Outcome::Refer),
        ]
        .into_iter()
        .find(|(rule, _)| has(&fired, *rule));
        let mut explanation = Vec::new();
        let mut band = None;
        let outcome = match knocked_out {
            Some((rule, outcome)) => {
                explanation = explain_rules(&fired, Some(rule));
                outcome
            }
            None if bureau_use == BureauUse::UnavailableReferred => Outcome::Refer,
            None => {
                let chosen = self
                    .bands
                    .iter()
                    .find(|b| b.lo <= score.value && score.value <= b.hi)
                    .expect("validation proves the bands cover every score");
                band = Some(chosen.number);
                let terms = &chosen.input;
                if let Some(reason) = terms.reason {
                    explanation.push(Explained {
                        reason,
                        because: format!("score {} in band {}", score.value, chosen.number),
                    });
                }
                match terms.outcome {
                    BandOutcome::Approve => self.offer(features, terms, &bureau_use),
                    BandOutcome::Refer => Outcome::Refer,
                    BandOutcome::RequestDocuments => Outcome::RequestDocuments,
                    BandOutcome::Decline => Outcome::Decline,
                }
            }
        };
        if matches!(
            outcome,
            Outcome::Decline | Outcome::Refer | Outcome::RequestDocuments
        ) {
            self.explain_costliest(&score, &mut explanation);
        }
        Evaluation {
            stage: Stage::Application,
            outcome,
            fired,
            score: Some(score),
            band,
            reasons: reasons_of(&explanation),
            explanation,
            warnings: Vec::new(),
            bureau: bureau_use,
        }
    }

    fn score(&self, features: &Features) -> Score {
        let mut value = 0i64;
        let characteristics = self
            .characteristics
            .iter()
            .map(|c| {
                let got = features.get(c.feature);
                let (bin, points) = c
                    .bins
                    .iter()
                    .enumerate()
                    .find(|(_, (test, _))| test.admits(got))
                    .map_or((0, 0), |(i, (_, p))| (i as u32 + 1, *p));
                value = value.saturating_add(points);
                ScoredCharacteristic {
                    feature: c.feature.name().to_owned(),
                    bin,
                    points,
                    max_points: c.max_points,
                }
            })
            .collect();
        Score {
            scorecard: self.document.scorecard.id.clone(),
            value,
            characteristics,
        }
    }

    /// The characteristics that cost the most points, most first (ties in scorecard order).
    /// Adds the characteristics that cost the most points (most first, ties in scorecard
    /// order) to `explanation`, a reason at most once, until it holds [`MAX_REASONS`]; only
    /// the ones kept are written out.
    fn explain_costliest(&self, score: &Score, explanation: &mut Vec<Explained>) {
        let mut lost: Vec<(i64, usize)> = score
            .characteristics
            .iter()
            .enumerate()
            .map(|(i, c)| (c.max_points - c.points, i))
            .filter(|(cost, _)| *cost > 0)
            .collect();
        lost.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, i) in lost {
            if explanation.len() >= MAX_REASONS {
                break;
            }
            let reason = self.characteristics[i].reason;
            if explanation.iter().any(|e| e.reason == reason) {
                continue;
            }
            let scored = &score.characteristics[i];
            explanation.push(Explained {
                reason,
                because: format!(
                    "{}: {} of {} points",
                    scored.feature, scored.points, scored.max_points
                ),
            });
        }
    }

    fn offer(
        &self,
        features: &Features,
        band: &super::policy::BandInput,
        bureau: &BureauUse,
    ) -> Outcome {
        let mut limit = band.limit_minor.unwrap_or(0);
        if let Some(Value::Number(requested)) = features.get(Feature::RequestedLimitMinor) {
            limit = limit.min(*requested);
        }
        if let (Some(multiple), Some(Value::Number(income))) = (
            band.income_multiple,
            features.get(Feature::MonthlyIncomeMinor),
        ) {
            let by_income = Decimal::from(*income)
                .checked_mul(multiple)
                .and_then(|d| d.floor().to_i64())
                .unwrap_or(i64::MAX);
            limit = limit.min(by_income);
        }
        if let BureauUse::UnavailableDecidedWithout { limit_cap_minor } = bureau {
            limit = limit.min(*limit_cap_minor);
        }
        limit -= limit.rem_euclid(LIMIT_STEP_MINOR);
        if limit < LIMIT_STEP_MINOR {
            // Nothing worth a line: a person looks at it rather than a zero offer.
            return Outcome::Refer;
        }
        Outcome::Approve(OfferTerms {
            limit_minor: limit,
            currency: self.currency.code().to_owned(),
            rate_tier: band.rate_tier.clone(),
            valid_days: band.valid_days.unwrap_or(365),
        })
    }
}

fn has(fired: &[FiredRule], outcome: RuleOutcome) -> bool {
    fired.iter().any(|f| f.outcome == outcome)
}

/// The row outcome that produced a decision outcome, whose rows give its reasons.
fn deciding_rule(outcome: &Outcome) -> Option<RuleOutcome> {
    match outcome {
        Outcome::Decline => Some(RuleOutcome::Decline),
        Outcome::Refer => Some(RuleOutcome::Refer),
        Outcome::RequestDocuments => Some(RuleOutcome::RequestDocuments),
        Outcome::Hold => Some(RuleOutcome::Hold),
        Outcome::Freeze => Some(RuleOutcome::Freeze),
        Outcome::Unfreeze => Some(RuleOutcome::Unfreeze),
        Outcome::Decrease { .. } => Some(RuleOutcome::Decrease),
        Outcome::Increase { .. } => Some(RuleOutcome::Increase),
        Outcome::Approve(_) | Outcome::Pass | Outcome::Keep => None,
    }
}

fn explain_rules(fired: &[FiredRule], deciding: Option<RuleOutcome>) -> Vec<Explained> {
    distinct(
        fired
            .iter()
            .filter(|f| Some(f.outcome) == deciding)
            .filter_map(|f| {
                f.reason.map(|reason| Explained {
                    reason,
                    because: format!("table {}, row {}", f.table, f.row),
                })
            })
            .collect(),
    )
}

/// The first explanation of each reason, at most [`MAX_REASONS`] of them, in order.
fn distinct(explanation: Vec<Explained>) -> Vec<Explained> {
    let mut kept: Vec<Explained> = Vec::new();
    for e in explanation {
        if kept.len() < MAX_REASONS && !kept.iter().any(|k| k.reason == e.reason) {
            kept.push(e);
        }
    }
    kept
}

fn reasons_of(explanation: &[Explained]) -> Vec<Reason> {
    explanation.iter().map(|e| e.reason).collect()
}
