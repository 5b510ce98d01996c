//! A policy as risk writes it (JSON), its validation, and the compiled form decisions run on.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Stage;
use super::Warning;
use super::features::{Feature, FeatureType, Value};
use super::sets::{Boxed, Example, Set, Values, remainder};
use crate::money::Currency;
use crate::reasons::Reason;
use crate::validation::{Collector, Violations};

const MAX_NAME_CHARS: usize = 64;
const MAX_TABLES: usize = 100;
const MAX_ROWS: usize = 500;
const MAX_CHARACTERISTICS: usize = 100;
const MAX_BINS: usize = 50;
const MAX_BANDS: usize = 50;
const MAX_TEXTS: usize = 200;
const MAX_TEXT_CHARS: usize = 64;
/// How many pieces the search for rows nobody reaches and for gaps may split a table into
/// before it gives up on that table (and says so).
const SEARCH_BUDGET: usize = 20_000;
/// The most a limit may be, in minor units (as for offers).
const MAX_LIMIT_MINOR: i64 = 10_000_000_000;
/// The most months of income a limit may be.
const MAX_INCOME_MULTIPLE: u32 = 120;

/// A policy document, as uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// The currency of every amount in the policy (limits, caps).
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Knock-out and risk rules, each table at one stage.
    #[serde(default)]
    pub tables: Vec<TableInput>,
    pub scorecard: ScorecardInput,
    /// Score bands, each mapping a range of scores to an outcome; together they cover every
    /// score the scorecard can give.
    pub bands: Vec<BandInput>,
    /// What an application decision does when the bureau does not answer.
    pub bureau_unavailable: BureauFallback,
}

/// A decision table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TableInput {
    pub name: String,
    pub stage: Stage,
    pub hit: HitPolicy,
    /// Every input must match some row: validation reports the inputs none covers.
    #[serde(default)]
    pub complete: bool,
    pub rules: Vec<RuleInput>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HitPolicy {
    /// The first row that matches fires; rows after it are not looked at.
    First,
    /// Every row that matches fires.
    Collect,
}

/// One row: conditions over features (all must hold; a feature not named matches anything),
/// and what follows when they do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    #[serde(default)]
    pub when: BTreeMap<String, CellInput>,
    pub outcome: RuleOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// For `warn`: what the borrower is warned of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<Warning>,
    /// For `decrease` and `increase`: by how many percent of the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// For people reading the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A condition on one feature. Numbers: `min`/`max` (included), `above`/`below` (excluded);
/// text: `in` or `not_in`; flags: `is`. `missing: true` alone matches only a missing value,
/// beside another condition it also admits one. `{}` matches anything, missing included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CellInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<i64>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<bool>,
}

impl CellInput {
    /// Whether the cell takes `value` as a policy compiles it, the feature's kind being the one
    /// the cell's conditions name: for tools that apply a policy's parts to columns that are
    /// not lendcore features (`lendcore score apply`). A cell that names two kinds, or both
    /// bounds of one side, takes nothing (a policy refuses it); other checks a policy makes
    /// (against the feature's range, an empty `in`) are not made here.
    pub fn takes(&self, value: Option<&Value>) -> bool {
        let ambiguous = (self.min.is_some() && self.above.is_some())
            || (self.max.is_some() && self.below.is_some());
        if ambiguous {
            return false;
        }
        let or_missing = self.missing == Some(true);
        let numeric = self.min.is_some()
            || self.max.is_some()
            || self.above.is_some()
            || self.below.is_some();
        let test = match (numeric, &self.one_of, &self.not_in, self.is) {
            (false, None, None, None) if or_missing => Test::Missing,
            (false, None, None, None) => Test::Any,
            (true, None, None, None) => {
                let (lo, hi) = self.bounds();
                Test::Range { lo, hi, or_missing }
            }
            (false, Some(items), None, None) => Test::OneOf {
                items: items.clone(),
                or_missing,
            },
            (false, None, Some(items), None) => Test::NoneOf {
                items: items.clone(),
                or_missing,
            },
            (false, None, None, Some(flag)) => Test::Is { flag, or_missing },
            _ => return false,
        };
        test.admits(value)
    }

    /// The lowest and highest number the bounds take, both included.
    fn bounds(&self) -> (i64, i64) {
        let lo = self
            .min
            .into_iter()
            .chain(self.above.map(|a| a.saturating_add(1)))
            .max()
            .unwrap_or(i64::MIN);
        let hi = self
            .max
            .into_iter()
            .chain(self.below.map(|b| b.saturating_sub(1)))
            .min()
            .unwrap_or(i64::MAX);
        (lo, hi)
    }
}

/// What a row decides; which ones a table may use depends on its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    /// Application, drawdown.
    Decline,
    /// Application: to an underwriter.
    Refer,
    /// Application: the borrower is asked for documents.
    RequestDocuments,
    /// Drawdown: held until an operator releases or declines it.
    Hold,
    /// Any stage: the borrower is warned; nothing is refused.
    Warn,
    /// Line review.
    Freeze,
    Unfreeze,
    Decrease,
    Increase,
}

impl RuleOutcome {
    fn allowed_at(self, stage: Stage) -> bool {
        match self {
            RuleOutcome::Warn => true,
            RuleOutcome::Decline => matches!(stage, Stage::Application | Stage::Drawdown),
            RuleOutcome::Refer | RuleOutcome::RequestDocuments => stage == Stage::Application,
            RuleOutcome::Hold => stage == Stage::Drawdown,
            RuleOutcome::Freeze
            | RuleOutcome::Unfreeze
            | RuleOutcome::Decrease
            | RuleOutcome::Increase => stage == Stage::LineReview,
        }
    }

    /// Whether the borrower must be told why (a catalogue reason).
    fn needs_reason(self) -> bool {
        match self {
            RuleOutcome::Decline
            | RuleOutcome::Refer
            | RuleOutcome::RequestDocuments
            | RuleOutcome::Hold
            | RuleOutcome::Freeze
            | RuleOutcome::Decrease => true,
            RuleOutcome::Warn | RuleOutcome::Unfreeze | RuleOutcome::Increase => false,
        }
    }
}

/// Characteristics, their bins and points, and the scale the points are on (points to double
/// the odds, and the points at which the odds of good are `base_odds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScorecardInput {
    /// The scorecard's own name and version, e.g. `consumer-2026-12`, kept in every record.
    pub id: String,
    pub base_points: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub base_odds: Decimal,
    pub pdo: i64,
    pub characteristics: Vec<CharacteristicInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CharacteristicInput {
    pub feature: String,
    /// Given when this characteristic costs the applicant points (adverse action).
    pub reason: Reason,
    /// Together they cover every value the feature can take, missing included where it may be
    /// missing, without overlap.
    pub bins: Vec<BinInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BinInput {
    #[serde(default)]
    pub when: CellInput,
    pub points: i64,
}

/// Scores from `min_score` to `max_score` (both included; an end left out is open).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BandInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_score: Option<i64>,
    pub outcome: BandOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Approve: the most this band lends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_minor: Option<i64>,
    /// Approve: the limit is at most this many months of declared income.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub income_multiple: Option<Decimal>,
    /// Approve: the price tier, named as the lender's products name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_tier: Option<String>,
    /// Approve: how long the line is valid once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BandOutcome {
    Approve,
    Refer,
    RequestDocuments,
    Decline,
}

/// When the bureau does not answer: refer the application to a person, or decide without the
/// bureau's features under a lower limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum BureauFallback {
    Refer,
    DecideWithout { limit_cap_minor: i64 },
}

/// A condition compiled for evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Any,
    Missing,
    Range {
        lo: i64,
        hi: i64,
        or_missing: bool,
    },
    OneOf {
        items: Vec<String>,
        or_missing: bool,
    },
    NoneOf {
        items: Vec<String>,
        or_missing: bool,
    },
    Is {
        flag: bool,
        or_missing: bool,
    },
}

impl Test {
    #[inline]
    pub(crate) fn admits(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Test::Any, _) => true,
            (Test::Missing, v) => v.is_none(),
            (
                Test::Range { or_missing, .. }
                | Test::OneOf { or_missing, .. }
                | Test::NoneOf { or_missing, .. }
                | Test::Is { or_missing, .. },
                None,
            ) => *or_missing,
            (Test::Range { lo, hi, .. }, Some(Value::Number(n))) => lo <= n && n <= hi,
            (Test::OneOf { items, .. }, Some(Value::Text(t))) => items.iter().any(|i| i == t),
            (Test::NoneOf { items, .. }, Some(Value::Text(t))) => !items.iter().any(|i| i == t),
            (Test::Is { flag, .. }, Some(Value::Flag(f))) => flag == f,
            (
                Test::Range { .. } | Test::OneOf { .. } | Test::NoneOf { .. } | Test::Is { .. },
                Some(_),
            ) => false,
        }
    }

    /// The values it admits, for validation.
    fn set(&self, feature: Feature) -> Set {
        let full = Set::full(feature);
        let texts = |except: bool, items: &[String], missing: bool| Set {
            missing,
            values: Values::Texts {
                except,
                items: items.iter().cloned().collect(),
            },
        };
        match self {
            Test::Any => full,
            Test::Missing => Set {
                missing: true,
                values: full.minus(&full).values,
            },
            Test::Range { lo, hi, or_missing } => Set {
                missing: *or_missing,
                ..Set::numbers(*lo, *hi)
            }
            .intersect(&full),
            Test::OneOf { items, or_missing } => texts(false, items, *or_missing),
            Test::NoneOf { items, or_missing } => texts(true, items, *or_missing),
            Test::Is { flag, or_missing } => Set {
                missing: *or_missing,
                values: Values::Flags {
                    yes: *flag,
                    no: !*flag,
                },
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub tests: Vec<(Feature, Test)>,
    pub outcome: RuleOutcome,
    pub reason: Option<Reason>,
    pub warning: Option<Warning>,
    pub percent: u32,
}

impl Row {
    #[inline]
    pub(crate) fn matches(&self, features: &super::Features) -> bool {
        self.tests
            .iter()
            .all(|(feature, test)| test.admits(features.get(*feature)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub name: String,
    pub hit: HitPolicy,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Characteristic {
    pub feature: Feature,
    pub reason: Reason,
    pub bins: Vec<(Test, i64)>,
    pub max_points: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Band {
    /// Its place in the document, counted from 1, as records name it.
    pub number: u32,
    pub lo: i64,
    pub hi: i64,
    pub input: BandInput,
}

/// A validated policy, compiled: the evaluator decisions run on. Built once per version.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) document: PolicyDocument,
    pub(crate) currency: Currency,
    pub(crate) tables: [Vec<Table>; 3],
    pub(crate) characteristics: Vec<Characteristic>,
    pub(crate) bands: Vec<Band>,
    pub(crate) min_score: i64,
    pub(crate) max_score: i64,
    /// What each stage reads, worked out once: every decision asks.
    read: [BTreeSet<Feature>; 3],
}

impl Policy {
    /// Validates a document and compiles it; every problem is reported at once.
    pub fn compile(document: PolicyDocument) -> Result<Policy, Violations> {
        let mut found = Collector::default();
        let currency = Currency::parse(&document.currency);
        if currency.is_none() {
            found.add(
                "currency",
                "validation.invalid_currency",
                "an ISO 4217 code, e.g. CNY",
            );
        }
        if let Some(d) = &document.description
            && d.chars().count() > 2000
        {
            found.add(
                "description",
                "policy.too_large",
                "a description is at most 2,000 characters",
            );
        }
        let mut tables: [Vec<Table>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        if document.tables.len() > MAX_TABLES {
            found.add(
                "tables",
                "policy.too_large",
                format!("at most {MAX_TABLES} tables"),
            );
        }
        let mut names = BTreeSet::new();
        for (i, table) in document.tables.iter().enumerate() {
            let at = format!("tables[{i}]");
            if !names.insert((table.stage, table.name.as_str())) {
                found.add(
                    format!("{at}.name"),
                    "policy.duplicate_name",
                    format!(
                        "another {} table is named {:?}",
                        table.stage.as_str(),
                        table.name
                    ),
                );
            }
            if let Some(compiled) = compile_table(table, &at, &mut found) {
                tables[table.stage.index()].push(compiled);
            }
        }
        let characteristics = compile_scorecard(&document.scorecard, &mut found);
        let (min_score, max_score) = characteristics.iter().fold((0i64, 0i64), |(lo, hi), c| {
            let min = c.bins.iter().map(|(_, p)| *p).min().unwrap_or(0);
            (lo.saturating_add(min), hi.saturating_add(c.max_points))
        });
        let bands = compile_bands(&document.bands, (min_score, max_score), &mut found);
        if let BureauFallback::DecideWithout { limit_cap_minor } = document.bureau_unavailable
            && !(1..=MAX_LIMIT_MINOR).contains(&limit_cap_minor)
        {
            found.add(
                "bureau_unavailable.limit_cap_minor",
                "validation.amount_out_of_range",
                "the cap must be a positive amount in minor units",
            );
        }
        let read = [Stage::Application, Stage::Drawdown, Stage::LineReview]
            .map(|stage| reads(&tables, &characteristics, stage));
        let compiled = currency.map(|currency| Policy {
            document: document.clone(),
            currency,
            tables,
            characteristics,
            bands,
            min_score,
            max_score,
            read,
        });
        found.finish(compiled)
    }

    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// The lowest and highest score the scorecard can give.
    pub fn score_range(&self) -> (i64, i64) {
        (self.min_score, self.max_score)
    }

    /// The features any part of the policy reads at `stage`: the ones worth loading.
    pub fn features_read(&self, stage: Stage) -> &BTreeSet<Feature> {
        &self.read[stage.index()]
    }
}

fn reads(
    tables: &[Vec<Table>; 3],
    characteristics: &[Characteristic],
    stage: Stage,
) -> BTreeSet<Feature> {
    let mut read: BTreeSet<Feature> = tables[stage.index()]
        .iter()
        .flat_map(|t| t.rows.iter().flat_map(|r| r.tests.iter().map(|(f, _)| *f)))
        .collect();
    if stage == Stage::Application {
        read.extend(characteristics.iter().map(|c| c.feature));
    }
    read
}

fn check_name(name: &str, field: &str, found: &mut Collector) {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        found.add(
            field,
            "validation.invalid_text",
            format!("1-{MAX_NAME_CHARS} characters, no control characters"),
        );
    }
}

fn compile_table(table: &TableInput, at: &str, found: &mut Collector) -> Option<Table> {
    check_name(&table.name, &format!("{at}.name"), found);
    if table.rules.is_empty() {
        found.add(
            format!("{at}.rules"),
            "policy.empty_table",
            "a table needs at least one row",
        );
    }
    if table.rules.len() > MAX_ROWS {
        found.add(
            format!("{at}.rules"),
            "policy.too_large",
            format!("at most {MAX_ROWS} rows"),
        );
        return None;
    }
    let mut rows = Vec::new();
    let mut clean = true;
    for (r, rule) in table.rules.iter().enumerate() {
        let at = format!("{at}.rules[{r}]");
        match compile_rule(rule, table.stage, &at, found) {
            Some(row) => rows.push(row),
            None => clean = false,
        }
    }
    if !clean {
        return None;
    }
    check_reach(table, &rows, at, found);
    Some(Table {
        name: table.name.clone(),
        hit: table.hit,
        rows,
    })
}

fn compile_rule(rule: &RuleInput, stage: Stage, at: &str, found: &mut Collector) -> Option<Row> {
    let mut clean = true;
    let mut tests = Vec::new();
    for (name, cell) in &rule.when {
        let field = format!("{at}.when.{name}");
        let Some(feature) = Feature::parse(name) else {
            found.add(
                field,
                "policy.unknown_feature",
                format!("{name:?} is not a feature; GET /v1/features lists them"),
            );
            clean = false;
            continue;
        };
        if !feature.is_known_at(stage) {
            found.add(
                field.clone(),
                "policy.feature_not_at_stage",
                format!(
                    "{name} is not known when deciding at the {} stage",
                    stage.as_str()
                ),
            );
            clean = false;
        }
        match compile_cell(cell, feature, &field, found) {
            Some(Test::Any) => {}
            Some(test) => tests.push((feature, test)),
            None => clean = false,
        }
    }
    if !rule.outcome.allowed_at(stage) {
        found.add(
            format!("{at}.outcome"),
            "policy.outcome_not_at_stage",
            format!(
                "{:?} is not an outcome of the {} stage",
                rule.outcome,
                stage.as_str()
            )
            .to_lowercase(),
        );
        clean = false;
    }
    if rule.outcome.needs_reason() && rule.reason.is_none() {
        found.add(
            format!("{at}.reason"),
            "policy.reason_required",
            "this outcome must name a catalogue reason the borrower is told",
        );
        clean = false;
    }
    if rule.outcome == RuleOutcome::Warn && rule.warning.is_none() {
        found.add(
            format!("{at}.warning"),
            "policy.warning_required",
            "a warning must say what the borrower is warned of",
        );
        clean = false;
    }
    let percent = match (rule.outcome, rule.percent) {
        (RuleOutcome::Decrease | RuleOutcome::Increase, Some(p)) if (1..=100).contains(&p) => p,
        (RuleOutcome::Decrease | RuleOutcome::Increase, _) => {
            found.add(
                format!("{at}.percent"),
                "policy.percent_required",
                "a change of limit gives percent, 1-100",
            );
            clean = false;
            0
        }
        (_, Some(_)) => {
            found.add(
                format!("{at}.percent"),
                "policy.percent_unexpected",
                "only decrease and increase take a percent",
            );
            clean = false;
            0
        }
        (_, None) => 0,
    };
    if let Some(note) = &rule.note
        && note.chars().count() > 500
    {
        found.add(
            format!("{at}.note"),
            "validation.invalid_text",
            "a note is at most 500 characters",
        );
    }
    clean.then_some(Row {
        tests,
        outcome: rule.outcome,
        reason: rule.reason,
        warning: rule.warning,
        percent,
    })
}

fn compile_cell(
    cell: &CellInput,
    feature: Feature,
    at: &str,
    found: &mut Collector,
) -> Option<Test> {
    let definition = feature.definition();
    let or_missing = cell.missing == Some(true);
    if or_missing && !definition.may_be_missing {
        found.add(
            format!("{at}.missing"),
            "policy.never_missing",
            format!("{} is never missing", definition.name),
        );
        return None;
    }
    let numeric =
        cell.min.is_some() || cell.max.is_some() || cell.above.is_some() || cell.below.is_some();
    let texts = cell.one_of.is_some() || cell.not_in.is_some();
    let flag = cell.is.is_some();
    let kinds = [numeric, texts, flag].iter().filter(|k| **k).count();
    let wanted = match definition.kind {
        FeatureType::Number => numeric,
        FeatureType::Text => texts,
        FeatureType::Flag => flag,
    };
    if kinds > 1 || (kinds == 1 && !wanted) {
        found.add(
            at,
            "policy.type_mismatch",
            format!(
                "{} is a {}: use {}",
                definition.name,
                format!("{:?}", definition.kind).to_lowercase(),
                match definition.kind {
                    FeatureType::Number => "min, max, above or below",
                    FeatureType::Text => "in or not_in",
                    FeatureType::Flag => "is",
                }
            ),
        );
        return None;
    }
    if kinds == 0 {
        return Some(if or_missing { Test::Missing } else { Test::Any });
    }
    match definition.kind {
        FeatureType::Number => {
            let (lo, hi) = cell.bounds();
            if (cell.min.is_some() && cell.above.is_some())
                || (cell.max.is_some() && cell.below.is_some())
            {
                found.add(
                    at,
                    "policy.ambiguous_condition",
                    "give min or above, and max or below, not both",
                );
                return None;
            }
            let (flo, fhi) = definition.range.unwrap_or((i64::MIN, i64::MAX));
            if lo > hi || hi < flo || lo > fhi {
                found.add(
                    at,
                    "policy.unreachable_row",
                    format!(
                        "no value of {} is in this range ({flo}..={fhi} are possible)",
                        definition.name
                    ),
                );
                return None;
            }
            Some(Test::Range { lo, hi, or_missing })
        }
        FeatureType::Text => {
            let (items, negate) = match (&cell.one_of, &cell.not_in) {
                (Some(items), None) => (items, false),
                (None, Some(items)) => (items, true),
                (Some(_), Some(_)) | (None, None) => {
                    found.add(
                        at,
                        "policy.ambiguous_condition",
                        "give in or not_in, not both",
                    );
                    return None;
                }
            };
            if items.len() > MAX_TEXTS
                || items
                    .iter()
                    .any(|t| t.is_empty() || t.chars().count() > MAX_TEXT_CHARS)
            {
                found.add(
                    at,
                    "policy.too_large",
                    format!("at most {MAX_TEXTS} values, each 1-{MAX_TEXT_CHARS} characters"),
                );
                return None;
            }
            if items.is_empty() && !negate {
                found.add(
                    at,
                    "policy.unreachable_row",
                    "an empty `in` matches nothing",
                );
                return None;
            }
            let items = items.clone();
            Some(if negate {
                Test::NoneOf { items, or_missing }
            } else {
                Test::OneOf { items, or_missing }
            })
        }
        FeatureType::Flag => Some(Test::Is {
            flag: cell.is.unwrap_or(true),
            or_missing,
        }),
    }
}

/// The features a table reads, in a fixed order, and each row's box over them.
fn boxes(rows: &[Row]) -> (Vec<Feature>, Vec<Boxed>) {
    let features: Vec<Feature> = rows
        .iter()
        .flat_map(|r| r.tests.iter().map(|(f, _)| *f))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let boxes = rows
        .iter()
        .map(|row| Boxed {
            sets: features
                .iter()
                .map(|f| {
                    row.tests
                        .iter()
                        .find(|(g, _)| g == f)
                        .map_or_else(|| Set::full(*f), |(_, t)| t.set(*f))
                })
                .collect(),
        })
        .collect();
    (features, boxes)
}

/// Rows no input reaches (under `first`, rows wholly covered by rows above them), and for a
/// `complete` table the inputs no row covers.
fn check_reach(table: &TableInput, rows: &[Row], at: &str, found: &mut Collector) {
    let (features, boxes) = boxes(rows);
    for (r, boxed) in boxes.iter().enumerate() {
        if boxed.is_empty() {
            found.add(
                format!("{at}.rules[{r}]"),
                "policy.unreachable_row",
                "no input can meet every condition of this row",
            );
            continue;
        }
        if table.hit == HitPolicy::First && r > 0 {
            let above: Vec<&Boxed> = boxes[..r].iter().collect();
            if remainder(boxed, &above, SEARCH_BUDGET).is_some_and(|left| left.is_empty()) {
                found.add(
                    format!("{at}.rules[{r}]"),
                    "policy.unreachable_row",
                    "every input this row matches is taken by a row above it (hit policy first)",
                );
            }
        }
    }
    if table.complete {
        let everything = Boxed {
            sets: features.iter().map(|f| Set::full(*f)).collect(),
        };
        let all: Vec<&Boxed> = boxes.iter().collect();
        match remainder(&everything, &all, SEARCH_BUDGET) {
            Some(left) if !left.is_empty() => found.add(
                format!("{at}.rules"),
                "policy.gap",
                format!(
                    "no row covers {} (the table is marked complete)",
                    Example {
                        features: &features,
                        boxed: &left[0],
                    }
                ),
            ),
            Some(_) => {}
            None => found.add(
                format!("{at}.rules"),
                "policy.too_complex",
                "the table is too intricate to prove complete; split it",
            ),
        }
    }
}

fn compile_scorecard(card: &ScorecardInput, found: &mut Collector) -> Vec<Characteristic> {
    check_name(&card.id, "scorecard.id", found);
    if card.pdo <= 0 {
        found.add(
            "scorecard.pdo",
            "policy.invalid_scale",
            "points to double the odds must be positive",
        );
    }
    if card.base_odds <= Decimal::ZERO {
        found.add(
            "scorecard.base_odds",
            "policy.invalid_scale",
            "the base odds must be positive",
        );
    }
    if card.characteristics.is_empty() || card.characteristics.len() > MAX_CHARACTERISTICS {
        found.add(
            "scorecard.characteristics",
            "policy.too_large",
            format!("1-{MAX_CHARACTERISTICS} characteristics"),
        );
        return Vec::new();
    }
    let mut seen = BTreeSet::new();
    let mut compiled = Vec::new();
    for (c, characteristic) in card.characteristics.iter().enumerate() {
        let at = format!("scorecard.characteristics[{c}]");
        let Some(feature) = Feature::parse(&characteristic.feature) else {
            found.add(
                format!("{at}.feature"),
                "policy.unknown_feature",
                format!(
                    "{:?} is not a feature; GET /v1/features lists them",
                    characteristic.feature
                ),
            );
            continue;
        };
        if !feature.is_known_at(Stage::Application) {
            found.add(
                format!("{at}.feature"),
                "policy.feature_not_at_stage",
                format!(
                    "{} is not known when an application is decided",
                    feature.name()
                ),
            );
        }
        if !seen.insert(feature) {
            found.add(
                format!("{at}.feature"),
                "policy.duplicate_name",
                format!("{} is scored twice", feature.name()),
            );
        }
        if characteristic.bins.is_empty() || characteristic.bins.len() > MAX_BINS {
            found.add(
                format!("{at}.bins"),
                "policy.too_large",
                format!("1-{MAX_BINS} bins"),
            );
            continue;
        }
        let mut bins = Vec::new();
        for (b, bin) in characteristic.bins.iter().enumerate() {
            let field = format!("{at}.bins[{b}].when");
            if let Some(test) = compile_cell(&bin.when, feature, &field, found) {
                if bin.points.unsigned_abs() > 100_000 {
                    found.add(
                        format!("{at}.bins[{b}].points"),
                        "policy.invalid_scale",
                        "points are at most 100,000 either way",
                    );
                }
                bins.push((test, bin.points));
            }
        }
        if bins.len() != characteristic.bins.len() {
            continue;
        }
        let sets: Vec<Set> = bins.iter().map(|(t, _)| t.set(feature)).collect();
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                if !sets[i].intersect(&sets[j]).is_empty() {
                    found.add(
                        format!("{at}.bins[{j}]"),
                        "policy.overlap",
                        format!("bin {j} overlaps bin {i}: a value would score twice"),
                    );
                }
            }
        }
        let mut left = Set::full(feature);
        for set in &sets {
            left = left.minus(set);
        }
        if !left.is_empty() {
            found.add(
                format!("{at}.bins"),
                "policy.gap",
                format!(
                    "no bin holds {}",
                    Example {
                        features: &[feature],
                        boxed: &Boxed { sets: vec![left] },
                    }
                ),
            );
        }
        let max_points = bins.iter().map(|(_, p)| *p).max().unwrap_or(0);
        compiled.push(Characteristic {
            feature,
            reason: characteristic.reason,
            bins,
            max_points,
        });
    }
    compiled
}

fn compile_bands(bands: &[BandInput], (lo, hi): (i64, i64), found: &mut Collector) -> Vec<Band> {
    if bands.is_empty() || bands.len() > MAX_BANDS {
        found.add("bands", "policy.too_large", format!("1-{MAX_BANDS} bands"));
        return Vec::new();
    }
    let mut compiled = Vec::new();
    for (i, band) in bands.iter().enumerate() {
        let at = format!("bands[{i}]");
        let (blo, bhi) = (
            band.min_score.unwrap_or(i64::MIN),
            band.max_score.unwrap_or(i64::MAX),
        );
        if blo > bhi {
            found.add(
                at.clone(),
                "policy.unreachable_row",
                "min_score is above max_score",
            );
        }
        let approve = band.outcome == BandOutcome::Approve;
        if approve {
            if !band
                .limit_minor
                .is_some_and(|l| (1..=MAX_LIMIT_MINOR).contains(&l))
            {
                found.add(
                    format!("{at}.limit_minor"),
                    "validation.amount_out_of_range",
                    "an approving band gives its limit, a positive amount in minor units",
                );
            }
            if !band.valid_days.is_some_and(|d| (1..=3650).contains(&d)) {
                found.add(
                    format!("{at}.valid_days"),
                    "validation.invalid_validity",
                    "an approving band gives valid_days, 1-3650",
                );
            }
            if band
                .income_multiple
                .is_some_and(|m| m <= Decimal::ZERO || m > Decimal::from(MAX_INCOME_MULTIPLE))
            {
                found.add(
                    format!("{at}.income_multiple"),
                    "validation.invalid_rate",
                    format!("the income multiple is more than 0 and at most {MAX_INCOME_MULTIPLE}"),
                );
            }
            if let Some(tier) = &band.rate_tier {
                found.take(crate::product::check_rate_tier(
                    &format!("{at}.rate_tier"),
                    tier,
                ));
            }
        } else {
            let terms = [
                ("limit_minor", band.limit_minor.is_some()),
                ("income_multiple", band.income_multiple.is_some()),
                ("rate_tier", band.rate_tier.is_some()),
                ("valid_days", band.valid_days.is_some()),
            ];
            for (field, given) in terms {
                if given {
                    found.add(
                        format!("{at}.{field}"),
                        "policy.terms_unexpected",
                        "only an approving band gives terms",
                    );
                }
            }
        }
        if matches!(
            band.outcome,
            BandOutcome::Decline | BandOutcome::RequestDocuments
        ) && band.reason.is_none()
        {
            found.add(
                format!("{at}.reason"),
                "policy.reason_required",
                "this outcome must name a catalogue reason the borrower is told",
            );
        }
        compiled.push(Band {
            number: i as u32 + 1,
            lo: blo,
            hi: bhi,
            input: band.clone(),
        });
    }
    for i in 0..compiled.len() {
        for j in i + 1..compiled.len() {
            let (a, b) = (&compiled[i], &compiled[j]);
            if a.lo.max(b.lo) <= a.hi.min(b.hi) && a.lo <= a.hi && b.lo <= b.hi {
                found.add(
                    format!("bands[{j}]"),
                    "policy.overlap",
                    format!("band {j} overlaps band {i} at score {}", a.lo.max(b.lo)),
                );
            }
        }
    }
    let mut left = Set::numbers(lo, hi);
    for band in &compiled {
        left = left.minus(&Set::numbers(band.lo, band.hi));
    }
    if let Values::Numbers(spans) = &left.values
        && let Some((from, to)) = spans.first()
    {
        found.add(
            "bands",
            "policy.gap",
            format!("no band covers scores {from}..={to} (the scorecard gives {lo}..={hi})"),
        );
    }
    compiled.sort_by_key(|b| b.lo);
    compiled
}
