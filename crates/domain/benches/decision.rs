//! A credit decision's speed, features in memory: the default policy, and a larger one of ten
//! application tables and a twenty-characteristic scorecard (the size DESIGN §7 sets the
//! ≤ 5 µs target for). Run with `cargo bench -p lendcore-domain --bench decision`; results go
//! in docs/PERFORMANCE.md beside the schedule bench of the same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lendcore_domain::decision::{
    BureauStatus, DEFAULT_POLICY, Feature, FeatureType, Features, Policy, PolicyDocument, Stage,
    Value,
};
use serde_json::json;

/// Twenty characteristics, one per number or text feature known at application, four bins
/// each; ten tables of three rows over pairs of them.
fn large_policy() -> Policy {
    let scored: Vec<Feature> = Feature::ALL
        .iter()
        .copied()
        .filter(|f| f.is_known_at(Stage::Application))
        .filter(|f| f.definition().kind != FeatureType::Flag)
        .take(20)
        .collect();
    assert_eq!(scored.len(), 20);
    let characteristics: Vec<serde_json::Value> = scored
        .iter()
        .map(|f| {
            let d = f.definition();
            let mut bins = match d.kind {
                FeatureType::Number => {
                    let hi = d.range.map_or(1000, |(_, hi)| hi);
                    vec![
                        json!({ "when": { "max": 0 }, "points": 5 }),
                        json!({ "when": { "min": 1, "max": hi / 100 }, "points": 15 }),
                        json!({ "when": { "above": hi / 100, "max": hi / 10 }, "points": 25 }),
                        json!({ "when": { "above": hi / 10 }, "points": 10 }),
                    ]
                }
                FeatureType::Text | FeatureType::Flag => vec![
                    json!({ "when": { "in": ["11", "31"] }, "points": 20 }),
                    json!({ "when": { "in": ["44", "33"] }, "points": 15 }),
                    json!({ "when": { "not_in": ["11", "31", "44", "33"] }, "points": 5 }),
                ],
            };
            if d.may_be_missing {
                bins.push(json!({ "when": { "missing": true }, "points": 0 }));
            }
            json!({ "feature": d.name, "reason": "credit.score_too_low", "bins": bins })
        })
        .collect();
    let numbers: Vec<(&str, i64)> = scored
        .iter()
        .filter_map(|f| f.definition().range.map(|(_, hi)| (f.name(), hi)))
        .collect();
    let tables: Vec<serde_json::Value> = (0..10)
        .map(|t| {
            let ((a, ha), (b, hb)) = (numbers[t % numbers.len()], numbers[(t + 3) % numbers.len()]);
            json!({ "name": format!("t{t}"), "stage": "application", "hit": if t % 2 == 0 { "first" } else { "collect" },
                "rules": [
                    { "when": { a: { "min": ha / 2 }, b: { "min": hb / 2 } }, "outcome": "decline", "reason": "risk.velocity" },
                    { "when": { a: { "min": ha / 4, "below": ha / 2 } }, "outcome": "refer", "reason": "risk.velocity" },
                    { "when": { b: { "min": hb / 8, "below": hb / 4 } }, "outcome": "request_documents", "reason": "risk.large_amount" }
                ] })
        })
        .collect();
    let document: PolicyDocument = serde_json::from_value(json!({
        "currency": "CNY",
        "tables": tables,
        "scorecard": { "id": "bench", "base_points": 600, "base_odds": "50", "pdo": 20, "characteristics": characteristics },
        "bands": [
            { "max_score": 200, "outcome": "decline", "reason": "credit.score_too_low" },
            { "min_score": 201, "max_score": 300, "outcome": "refer" },
            { "min_score": 301, "outcome": "approve", "limit_minor": 1000000, "income_multiple": "3", "valid_days": 365 }
        ],
        "bureau_unavailable": { "outcome": "refer" }
    }))
    .unwrap();
    Policy::compile(document).unwrap()
}

fn applicant() -> Features {
    let mut f = Features::default();
    for (feature, value) in [
        (Feature::AgeYears, 34),
        (Feature::MonthlyIncomeMinor, 1_200_000),
        (Feature::RequestedLimitMinor, 2_000_000),
        (Feature::ApplicationsLast7Days, 1),
        (Feature::ApplicationsLast30Days, 1),
        (Feature::DaysOverdueNow, 0),
        (Feature::WorstDaysOverdue12Months, 0),
        (Feature::OverdueMinor, 0),
        (Feature::OpenLines, 0),
        (Feature::DrawnMinor, 0),
        (Feature::MobileChanges90Days, 0),
        (Feature::BankAccountChanges90Days, 1),
        (Feature::AddressChanges90Days, 0),
        (Feature::DaysSinceRegistration, 3),
        (Feature::BureauLendersOpen, 2),
        (Feature::BureauExposureMinor, 800_000),
        (Feature::BureauInquiries3Months, 3),
        (Feature::BureauWorstDelinquencyDays, 0),
    ] {
        f.set(feature, Value::Number(value)).unwrap();
    }
    f.set(Feature::Region, Value::Text("44".into())).unwrap();
    f
}

fn benches(c: &mut Criterion) {
    let default: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
    let default = Policy::compile(default).unwrap();
    let large = large_policy();
    let features = applicant();
    c.bench_function("decision/default_application", |b| {
        b.iter(|| {
            default.decide(
                Stage::Application,
                black_box(&features),
                BureauStatus::Answered,
            )
        })
    });
    c.bench_function("decision/ten_tables_twenty_characteristics", |b| {
        b.iter(|| {
            large.decide(
                Stage::Application,
                black_box(&features),
                BureauStatus::Answered,
            )
        })
    });
    c.bench_function("decision/default_drawdown_check", |b| {
        b.iter(|| {
            default.decide(
                Stage::Drawdown,
                black_box(&features),
                BureauStatus::NotAsked,
            )
        })
    });
    c.bench_function("decision/compile_default", |b| {
        let document: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
        b.iter(|| Policy::compile(black_box(document.clone())).unwrap())
    });
}

criterion_group!(decision, benches);
criterion_main!(decision);
