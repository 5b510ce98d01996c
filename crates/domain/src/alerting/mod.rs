//! Alert rules as data, and what an evaluation of one means. A rule counts a signal from
//! lendcore's own records (business events by topic and reason, calls to payment channels by
//! channel and answer, credit decisions by subject and outcome) over a window, per group (a
//! channel, a reason), and fires on a threshold, a ratio, a change against the window before,
//! or an anomaly against the same hour on earlier days. Pure: the engine reads the counts and
//! keeps the state; this module decides.

mod export;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::validation::{Collector, Violations};

pub use export::prometheus_rules;
pub use stats::{Deviation, ewma_deviation, robust_deviation};

/// What a rule counts, and the labels each kind of record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Business events, and other audited actions that carry a reason (an identity check that
    /// failed): `topic` (the action), `reason` (empty when none).
    Events,
    /// Calls to payment channels as their attempts are recorded: `channel`, `call`, `answer`.
    PayoutCalls,
    /// Credit decisions as recorded: `subject`, `outcome`.
    Decisions,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Events => "events",
            Signal::PayoutCalls => "payout_calls",
            Signal::Decisions => "decisions",
        }
    }

    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Signal::Events => &["topic", "reason"],
            Signal::PayoutCalls => &["channel", "call", "answer"],
            Signal::Decisions => &["subject", "outcome"],
        }
    }
}

/// A signal narrowed by its labels: each named label must take one of the values given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Selector {
    pub signal: Signal,
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub matching: BTreeMap<String, Vec<String>>,
}

impl Selector {
    /// Whether a record with these labels is one the selector counts.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matching.iter().all(|(label, values)| {
            labels
                .get(label)
                .is_some_and(|value| values.iter().any(|v| v == value))
        })
    }
}

/// How an anomaly is scored against the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The median and median absolute deviation of the same window at the same time of day on
    /// earlier days: one bad day does not move it.
    SameHourMedian,
    /// An exponentially weighted mean and variance of those windows, the latest weighing most.
    Ewma,
}

/// When a rule's group is in breach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// More than `above` in the window.
    Threshold { count: Selector, above: u64 },
    /// `numerator` over `denominator` above `above` (a share, e.g. `"0.2"`), once the
    /// denominator reaches `min_denominator`.
    Ratio {
        numerator: Selector,
        denominator: Selector,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        above: Decimal,
        min_denominator: u64,
    },
    /// The window's count at least `factor` times the window before's, once it reaches
    /// `min_count`.
    Change {
        count: Selector,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        factor: Decimal,
        min_count: u64,
    },
    /// The window's count more than `score` deviations above its baseline over
    /// `baseline_days`, once it reaches `min_count`.
    Anomaly {
        count: Selector,
        baseline: Baseline,
        baseline_days: u32,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        score: Decimal,
        min_count: u64,
    },
}

impl Condition {
    /// The selectors the condition counts: one, or a ratio's two.
    pub fn selectors(&self) -> Vec<&Selector> {
        match self {
            Condition::Threshold { count, .. }
            | Condition::Change { count, .. }
            | Condition::Anomaly { count, .. } => vec![count],
            Condition::Ratio {
                numerator,
                denominator,
                ..
            } => vec![numerator, denominator],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Someone acts now.
    Page,
    /// Someone acts today.
    Ticket,
}

/// Who hears of an alert, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "by", content = "to", rename_all = "snake_case")]
pub enum Recipient {
    /// A configured webhook endpoint, by its id.
    Webhook(String),
    Email(String),
    /// A mobile number in international form, `+` and digits.
    Sms(String),
}

/// A rule as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Lower case letters, digits, `_` and `-`; unique.
    pub name: String,
    pub description: String,
    pub severity: Severity,
    pub window_minutes: u32,
    /// A label of the signal to evaluate each value of apart (e.g. `channel`); absent: one
    /// group for everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    pub condition: Condition,
    /// Consecutive evaluations in breach before it fires, and clear before it resolves, so a
    /// single noisy minute neither pages nor ends an alert.
    #[serde(default = "one")]
    pub evaluations: u32,
    #[serde(default)]
    pub notify: Vec<Recipient>,
    /// Borrowers are told of trouble while it fires: an incident on `/v1/status` (its channel
    /// the alert's group when the rule groups payouts by `channel`), ended when it resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<crate::incident::IncidentSpec>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// The rules a new installation starts with (docs/OPERATIONS.md describes each).
pub const DEFAULT_RULES: &str = include_str!("default_rules.json");

pub const MAX_WINDOW_MINUTES: u32 = 24 * 60;
pub const MAX_BASELINE_DAYS: u32 = 56;
pub const MAX_RECIPIENTS: usize = 10;
const MAX_EVALUATIONS: u32 = 60;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_VALUES: usize = 50;

impl AlertRule {
    /// Every problem at once; `webhook_ids` are the endpoints configured.
    pub fn validate(&self, webhook_ids: &[&str]) -> Result<(), Violations> {
        let mut found = Collector::default();
        if !crate::product::is_code(&self.name) {
            found.add(
                "name",
                "validation.invalid_name",
                "2-32 lower case letters, digits, '_' or '-'",
            );
        }
        if self.description.trim().is_empty()
            || self.description.chars().count() > MAX_DESCRIPTION_CHARS
            || self.description.chars().any(char::is_control)
        {
            found.add(
                "description",
                "validation.invalid_text",
                format!("1-{MAX_DESCRIPTION_CHARS} characters, no control characters"),
            );
        }
        if !(1..=MAX_WINDOW_MINUTES).contains(&self.window_minutes) {
            found.add(
                "window_minutes",
                "validation.window_invalid",
                format!("1 to {MAX_WINDOW_MINUTES} minutes"),
            );
        }
        if !(1..=MAX_EVALUATIONS).contains(&self.evaluations) {
            found.add(
                "evaluations",
                "validation.out_of_range",
                format!("1 to {MAX_EVALUATIONS}"),
            );
        }
        let selectors = self.condition.selectors();
        for (i, selector) in selectors.iter().enumerate() {
            let at = match (&self.condition, i) {
                (Condition::Ratio { .. }, 0) => "condition.numerator",
                (Condition::Ratio { .. }, _) => "condition.denominator",
                _ => "condition.count",
            };
            check_selector(selector, at, &mut found);
        }
        if let Condition::Ratio {
            numerator,
            denominator,
            ..
        } = &self.condition
            && numerator.signal != denominator.signal
        {
            found.add(
                "condition.denominator.signal",
                "validation.not_allowed",
                "a ratio divides counts of one signal",
            );
        }
        if let Some(label) = &self.group_by
            && !selectors
                .iter()
                .all(|s| s.signal.labels().contains(&label.as_str()))
        {
            found.add(
                "group_by",
                "validation.unknown_label",
                format!(
                    "not a label of {}",
                    selectors.first().map_or("", |s| s.signal.as_str())
                ),
            );
        }
        check_condition(&self.condition, &mut found);
        if self.notify.len() > MAX_RECIPIENTS {
            found.add(
                "notify",
                "validation.out_of_range",
                format!("at most {MAX_RECIPIENTS} recipients"),
            );
        }
        if let Some(spec) = &self.incident {
            spec.validate(&mut found);
        }
        for (i, recipient) in self.notify.iter().enumerate() {
            let problem = match recipient {
                Recipient::Webhook(id) if !webhook_ids.contains(&id.as_str()) => {
                    Some(format!("no webhook endpoint {id} is configured"))
                }
                Recipient::Email(to) if !plausible_email(to) => {
                    Some("an address like oncall@lender.example".to_owned())
                }
                Recipient::Sms(to) if !plausible_mobile(to) => {
                    Some("a number in international form, e.g. +8613800000000".to_owned())
                }
                Recipient::Webhook(_) | Recipient::Email(_) | Recipient::Sms(_) => None,
            };
            if let Some(problem) = problem {
                found.add(
                    format!("notify[{i}]"),
                    "validation.invalid_recipient",
                    problem,
                );
            }
        }
        found.finish(Some(()))
    }
}

fn check_selector(selector: &Selector, at: &str, found: &mut Collector) {
    let known = selector.signal.labels();
    for (label, values) in &selector.matching {
        if !known.contains(&label.as_str()) {
            found.add(
                format!("{at}.where.{label}"),
                "validation.unknown_label",
                format!("one of {}", known.join(", ")),
            );
        }
        if values.is_empty()
            || values.len() > MAX_VALUES
            || values
                .iter()
                .any(|v| v.len() > 64 || v.chars().any(char::is_control))
        {
            found.add(
                format!("{at}.where.{label}"),
                "validation.invalid_text",
                format!("1-{MAX_VALUES} values of at most 64 characters"),
            );
        }
    }
}

fn check_condition(condition: &Condition, found: &mut Collector) {
    match condition {
        Condition::Threshold { .. } => {}
        Condition::Ratio {
            above,
            min_denominator,
            ..
        } => {
            if *above <= Decimal::ZERO || *above >= Decimal::ONE {
                found.add(
                    "condition.above",
                    "validation.out_of_range",
                    "a share between 0 and 1, e.g. \"0.2\"",
                );
            }
            if *min_denominator == 0 {
                found.add(
                    "condition.min_denominator",
                    "validation.out_of_range",
                    "at least 1: a ratio of nothing says nothing",
                );
            }
        }
        Condition::Change {
            factor, min_count, ..
        } => {
            if *factor <= Decimal::ONE || *factor > Decimal::from(1000) {
                found.add(
                    "condition.factor",
                    "validation.out_of_range",
                    "more than 1 (e.g. \"3\" for three times the window before), at most 1000",
                );
            }
            if *min_count == 0 {
                found.add(
                    "condition.min_count",
                    "validation.out_of_range",
                    "at least 1",
                );
            }
        }
        Condition::Anomaly {
            baseline_days,
            score,
            min_count,
            ..
        } => {
            if !(3..=MAX_BASELINE_DAYS).contains(baseline_days) {
                found.add(
                    "condition.baseline_days",
                    "validation.out_of_range",
                    format!("3 to {MAX_BASELINE_DAYS} days"),
                );
            }
            if *score <= Decimal::ZERO || *score > Decimal::from(100) {
                found.add(
                    "condition.score",
                    "validation.out_of_range",
                    "deviations above the baseline: more than 0, at most 100 (e.g. \"4\")",
                );
            }
            if *min_count == 0 {
                found.add(
                    "condition.min_count",
                    "validation.out_of_range",
                    "at least 1",
                );
            }
        }
    }
}

fn plausible_email(to: &str) -> bool {
    let mut parts = to.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None)
            if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                && to.len() <= 254 && !to.chars().any(|c| c.is_whitespace() || c.is_control())
    )
}

fn plausible_mobile(to: &str) -> bool {
    to.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
    })
}

/// What the evaluation read for one group: the window's counts and, for a change or an
/// anomaly, the history to compare with.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    /// The first selector's count in the window (a ratio's numerator).
    pub value: u64,
    /// A ratio's denominator in the window.
    pub denominator: u64,
    /// For a change, the window before; for an anomaly, the same window on each earlier day,
    /// oldest first.
    pub history: Vec<u64>,
}

/// What the evaluation found for one group, with the figures to show a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    pub breached: bool,
    /// What was measured: a count, or a ratio's share.
    pub value: f64,
    /// What it was held to: the threshold, the share, the window before times the factor,
    /// or the baseline.
    pub compared_with: f64,
    /// For an anomaly, how many deviations above the baseline (`None` elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The history it was compared with, oldest first (empty for a threshold or a ratio).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<u64>,
    /// A ratio's denominator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<u64>,
}

impl Condition {
    /// Whether `counts` breach the condition, and why.
    pub fn evaluate(&self, counts: &Counts) -> Evidence {
        let value = counts.value as f64;
        let plain = |breached, compared_with| Evidence {
            breached,
            value,
            compared_with,
            score: None,
            history: Vec::new(),
            denominator: None,
        };
        match self {
            Condition::Threshold { above, .. } => plain(counts.value > *above, *above as f64),
            Condition::Ratio {
                above,
                min_denominator,
                ..
            } => {
                let share = if counts.denominator == 0 {
                    0.0
                } else {
                    value / counts.denominator as f64
                };
                let limit = decimal_f64(*above);
                Evidence {
                    breached: counts.denominator >= *min_denominator && share > limit,
                    value: share,
                    compared_with: limit,
                    score: None,
                    history: Vec::new(),
                    denominator: Some(counts.denominator),
                }
            }
            Condition::Change {
                factor, min_count, ..
            } => {
                let before = counts.history.last().copied().unwrap_or(0);
                // Against nothing before, any count at the minimum is a change.
                let bar = (before as f64 * decimal_f64(*factor)).max(*min_count as f64);
                Evidence {
                    history: counts.history.clone(),
                    ..plain(counts.value >= *min_count && value >= bar, bar)
                }
            }
            Condition::Anomaly {
                baseline,
                score,
                min_count,
                ..
            } => {
                let history: Vec<f64> = counts.history.iter().map(|&c| c as f64).collect();
                let deviation = match baseline {
                    Baseline::SameHourMedian => robust_deviation(value, &history),
                    Baseline::Ewma => ewma_deviation(value, &history, EWMA_WEIGHT),
                };
                let limit = decimal_f64(*score);
                Evidence {
                    breached: counts.value >= *min_count
                        && deviation.is_some_and(|d| d.score > limit),
                    value,
                    compared_with: deviation.map_or(0.0, |d| d.centre),
                    score: deviation.map(|d| d.score),
                    history: counts.history.clone(),
                    denominator: None,
                }
            }
        }
    }
}

/// How much the latest earlier day weighs in an EWMA baseline.
pub const EWMA_WEIGHT: f64 = 0.3;

fn decimal_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(f64::MAX)
}

/// Where an alert of one rule and group stands. Kept between evaluations (in the database),
/// so a restart loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertState {
    /// In breach, not yet for enough evaluations to fire.
    Pending {
        breaches: u32,
        #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
        since: Timestamp,
    },
    /// Fired and told; clear for `clears` evaluations so far.
    Firing {
        #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
        since: Timestamp,
        clears: u32,
    },
    /// Over: clear for enough evaluations after firing.
    Resolved {
        #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
        since: Timestamp,
        #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
        at: Timestamp,
    },
}

/// What an evaluation does to an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No alert, and none begins.
    Quiet,
    /// The alert's state changes without anyone being told.
    Update(AlertState),
    /// It fires: tell the recipients.
    Fire(AlertState),
    /// It is over: tell the recipients it resolved.
    Resolve(AlertState),
    /// A breach that never fired has cleared: nothing to keep.
    Drop,
}

/// The next state of an alert: fires after `needed` consecutive breaches, stays firing (told
/// once: deduplicated) while it lasts, and resolves by itself after `needed` consecutive clear
/// evaluations. A pending alert that clears is dropped.
pub fn next_state(
    current: Option<&AlertState>,
    breached: bool,
    needed: u32,
    now: Timestamp,
) -> Step {
    let needed = needed.max(1);
    match (current, breached) {
        (None | Some(AlertState::Resolved { .. }), false) => Step::Quiet,
        (None | Some(AlertState::Resolved { .. }), true) if needed == 1 => {
            Step::Fire(AlertState::Firing {
                since: now,
                clears: 0,
            })
        }
        (None | Some(AlertState::Resolved { .. }), true) => Step::Update(AlertState::Pending {
            breaches: 1,
            since: now,
        }),
        (Some(AlertState::Pending { breaches, since }), true) if breaches + 1 >= needed => {
            Step::Fire(AlertState::Firing {
                since: *since,
                clears: 0,
            })
        }
        (Some(AlertState::Pending { breaches, since }), true) => {
            Step::Update(AlertState::Pending {
                breaches: breaches + 1,
                since: *since,
            })
        }
        (Some(AlertState::Pending { .. }), false) => Step::Drop,
        (Some(AlertState::Firing { clears: 0, .. }), true) => Step::Quiet,
        (Some(AlertState::Firing { since, .. }), true) => Step::Update(AlertState::Firing {
            since: *since,
            clears: 0,
        }),
        (Some(AlertState::Firing { since, clears }), false) if clears + 1 >= needed => {
            Step::Resolve(AlertState::Resolved {
                since: *since,
                at: now,
            })
        }
        (Some(AlertState::Firing { since, clears }), false) => Step::Update(AlertState::Firing {
            since: *since,
            clears: clears + 1,
        }),
    }
}
