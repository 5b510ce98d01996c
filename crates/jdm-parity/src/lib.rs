//! lendcore's native evaluation of an imported JDM model beside GoRules' own engine
//! (`zen-engine`, a dev-dependency of this crate only): the inputs both are given, and what
//! each decided, in one comparable form. `tests/parity.rs` proves they decide alike on 10,000
//! generated inputs; `benches/throughput.rs` measures both in one run (docs/PERFORMANCE.md).

use std::collections::{BTreeMap, BTreeSet};

use lendcore_domain::decision::{
    BureauStatus, DEFAULT_POLICY, Feature, Features, FiredRule, Policy, PolicyDocument, Stage,
    Value, jdm,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The model both engines run: a line review written in the GoRules editor's format.
pub const MODEL: &str = include_str!("../../domain/tests/jdm/line-review.json");

/// One line under review, as both engines are told of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub days_overdue_now: i64,
    pub worst_days_overdue_12m: i64,
    pub region: Option<&'static str>,
    pub line_frozen: bool,
    pub utilisation_pct: Option<i64>,
    pub days_since_limit_change: i64,
    pub days_to_next_due: Option<i64>,
    pub days_to_line_expiry: Option<i64>,
    pub bureau_worst_delinquency_days: Option<i64>,
}

/// Values at and around every edge the model tests, and some anywhere.
fn around(rng: &mut StdRng, edges: &[i64], anywhere: i64) -> i64 {
    if rng.random_bool(0.8) {
        let edge = edges[rng.random_range(0..edges.len())];
        (edge + rng.random_range(-1..=1)).max(0)
    } else {
        rng.random_range(0..=anywhere)
    }
}

fn maybe(rng: &mut StdRng, value: i64) -> Option<i64> {
    (!rng.random_bool(0.1)).then_some(value)
}

/// `n` lines from `seed`, the same every time.
pub fn lines(n: usize, seed: u64) -> Vec<Line> {
    let mut rng = StdRng::seed_from_u64(seed);
    const REGIONS: [Option<&str>; 5] = [
        Some("north"),
        Some("east"),
        Some("south"),
        Some("west"),
        None,
    ];
    (0..n)
        .map(|_| {
            let utilisation = around(&mut rng, &[50, 80, 90, 100], 150);
            let next_due = around(&mut rng, &[3], 40);
            let expiry = around(&mut rng, &[0, 30], 400);
            let bureau = around(&mut rng, &[90], 400);
            Line {
                days_overdue_now: around(&mut rng, &[0, 15, 30, 31], 120),
                worst_days_overdue_12m: around(&mut rng, &[0, 15], 120),
                region: REGIONS[rng.random_range(0..REGIONS.len())],
                line_frozen: rng.random_bool(0.3),
                utilisation_pct: maybe(&mut rng, utilisation),
                days_since_limit_change: around(&mut rng, &[30, 90], 400),
                days_to_next_due: maybe(&mut rng, next_due),
                days_to_line_expiry: maybe(&mut rng, expiry),
                bureau_worst_delinquency_days: maybe(&mut rng, bureau),
            }
        })
        .collect()
}

impl Line {
    /// The input the JDM model reads, at the dotted paths its columns name.
    pub fn context(&self) -> serde_json::Value {
        json!({
            "borrower": {
                "days_overdue_now": self.days_overdue_now,
                "worst_days_overdue_12m": self.worst_days_overdue_12m,
                "region": self.region,
            },
            "line": {
                "line_frozen": self.line_frozen,
                "utilisation_pct": self.utilisation_pct,
                "days_since_limit_change": self.days_since_limit_change,
                "days_to_next_due": self.days_to_next_due,
                "days_to_line_expiry": self.days_to_line_expiry,
            },
            "bureau": { "bureau_worst_delinquency_days": self.bureau_worst_delinquency_days },
        })
    }

    /// The same, as lendcore's features (a `null` is a missing feature).
    pub fn features(&self) -> Features {
        let mut f = Features::default();
        f.set_number(Feature::DaysOverdueNow, self.days_overdue_now);
        f.set_number(
            Feature::WorstDaysOverdue12Months,
            self.worst_days_overdue_12m,
        );
        f.set_number(Feature::DaysSinceLimitChange, self.days_since_limit_change);
        let numbers = [
            (Feature::UtilisationPercent, self.utilisation_pct),
            (Feature::DaysToNextDue, self.days_to_next_due),
            (Feature::DaysToLineExpiry, self.days_to_line_expiry),
            (
                Feature::BureauWorstDelinquencyDays,
                self.bureau_worst_delinquency_days,
            ),
        ];
        for (feature, value) in numbers {
            if let Some(n) = value {
                f.set_number(feature, n);
            }
        }
        let flag = f.set(Feature::LineFrozen, Value::Flag(self.line_frozen));
        let region = match self.region {
            Some(r) => f.set(Feature::Region, Value::Text(r.to_owned())),
            None => Ok(()),
        };
        assert!(flag.is_ok() && region.is_ok(), "the features' own types");
        f
    }
}

/// The default policy with its line review replaced by the imported model's tables.
pub fn native_policy() -> (Policy, BTreeSet<String>) {
    let model: serde_json::Value = serde_json::from_str(MODEL).expect("the model is JSON");
    let imported = jdm::import(&model, Stage::LineReview, &BTreeMap::new())
        .unwrap_or_else(|v| panic!("the model imports: {v}"));
    let names = imported.tables.iter().map(|t| t.name.clone()).collect();
    let mut base: PolicyDocument =
        serde_json::from_str(DEFAULT_POLICY).expect("the default policy");
    base.tables.retain(|t| t.stage != Stage::LineReview);
    let policy = Policy::compile(jdm::merge(base, imported.tables))
        .unwrap_or_else(|v| panic!("the policy compiles: {v}"));
    (policy, names)
}

/// What one rule that fired gave.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub outcome: String,
    pub reason: Option<String>,
    pub warning: Option<String>,
    pub percent: Option<u64>,
}

/// Per table (JDM node), the rules that fired, in order.
pub type Decided = BTreeMap<String, Vec<Hit>>;

fn hit_of(fired: &FiredRule) -> Hit {
    Hit {
        outcome: serde_json::to_value(fired.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        reason: fired.reason.map(|r| r.code().to_owned()),
        warning: fired.warning.map(|w| w.as_str().to_owned()),
        percent: fired.percent.map(u64::from),
    }
}

/// What lendcore decided, table by table.
pub fn native(policy: &Policy, names: &BTreeSet<String>, features: &Features) -> Decided {
    let evaluation = policy.decide(Stage::LineReview, features, BureauStatus::Answered);
    let mut decided: Decided = names.iter().map(|n| (n.clone(), Vec::new())).collect();
    for fired in &evaluation.fired {
        if let Some(hits) = decided.get_mut(&fired.table) {
            hits.push(hit_of(fired));
        }
    }
    decided
}

/// A node's output (an object, or the array of a collect table) as hits: each object's
/// leaves named by the last segment of their path.
fn hits_of(output: &serde_json::Value) -> Vec<Hit> {
    fn leaves(v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
        if let serde_json::Value::Object(map) = v {
            for (key, value) in map {
                match value {
                    serde_json::Value::Object(_) => leaves(value, out),
                    other => {
                        let last = key.rsplit('.').next().unwrap_or(key).to_owned();
                        out.insert(last, other.clone());
                    }
                }
            }
        }
    }
    let one = |v: &serde_json::Value| {
        let mut parts = BTreeMap::new();
        leaves(v, &mut parts);
        let text = |k: &str| parts.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Hit {
            outcome: text("outcome").unwrap_or_default(),
            reason: text("reason"),
            warning: text("warning"),
            percent: parts.get("percent").and_then(serde_json::Value::as_u64),
        }
    };
    match output {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(items) => items.iter().map(one).collect(),
        other => vec![one(other)],
    }
}

/// What zen-engine decided, from its trace (`{node id: {name, output, …}}`): nodes it did not
/// run fired nothing.
pub fn from_trace(trace: &serde_json::Value, names: &BTreeSet<String>) -> Decided {
    let mut decided: Decided = names.iter().map(|n| (n.clone(), Vec::new())).collect();
    if let Some(nodes) = trace.as_object() {
        for node in nodes.values() {
            let Some(name) = node.get("name").and_then(|n| n.as_str()) else {
                continue;
            };
            if let Some(hits) = decided.get_mut(name) {
                *hits = hits_of(node.get("output").unwrap_or(&serde_json::Value::Null));
            }
        }
    }
    decided
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_repeat_by_seed_and_reach_every_table() {
        assert_eq!(lines(50, 7), lines(50, 7));
        let (policy, names) = native_policy();
        let mut fired: BTreeSet<String> = BTreeSet::new();
        for line in lines(2_000, 1) {
            for (table, hits) in native(&policy, &names, &line.features()) {
                if !hits.is_empty() {
                    fired.insert(table);
                }
            }
        }
        assert_eq!(fired, names, "every imported table fires for some line");
    }

    #[test]
    fn node_outputs_read_as_hits_however_nested() {
        let flat = json!({"limit.outcome": "increase", "limit.percent": 10});
        let nested = json!({"limit": {"outcome": "increase", "percent": 10}});
        assert_eq!(hits_of(&flat), hits_of(&nested));
        assert_eq!(hits_of(&json!(null)), []);
        assert_eq!(
            hits_of(&json!([{"outcome": "warn", "warning": "utilisation_high"}])).len(),
            1
        );
    }
}
