use proptest::prelude::*;
use serde_json::json;

use super::*;

fn default_policy() -> Policy {
    let document: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
    Policy::compile(document).unwrap()
}

/// A policy with the given tables over a one-characteristic scorecard and two bands.
fn with_tables(tables: serde_json::Value) -> Result<Policy, crate::validation::Violations> {
    Policy::compile(serde_json::from_value(json!({
        "currency": "CNY",
        "tables": tables,
        "scorecard": { "id": "t", "base_points": 600, "base_odds": "50", "pdo": 20,
            "characteristics": [{ "feature": "days_overdue_now", "reason": "credit.overdue",
                "bins": [{ "when": { "max": 0 }, "points": 10 }, { "when": { "min": 1 }, "points": 0 }] }] },
        "bands": [{ "max_score": 5, "outcome": "decline", "reason": "credit.score_too_low" },
                  { "min_score": 6, "outcome": "approve", "limit_minor": 100000, "valid_days": 30 }],
        "bureau_unavailable": { "outcome": "refer" }
    }))
    .unwrap())
}

fn codes(result: Result<Policy, crate::validation::Violations>) -> Vec<(String, &'static str)> {
    result
        .unwrap_err()
        .all()
        .iter()
        .map(|v| (v.field.clone(), v.code))
        .collect()
}

fn features(pairs: &[(Feature, Value)]) -> Features {
    let mut f = Features::default();
    for (feature, value) in pairs {
        f.set(*feature, value.clone()).unwrap();
    }
    f
}

fn n(v: i64) -> Value {
    Value::Number(v)
}

/// A good applicant as the default policy sees one, bureau answered.
fn good_applicant() -> Features {
    features(&[
        (Feature::AgeYears, n(30)),
        (Feature::Region, Value::Text("11".into())),
        (Feature::MonthlyIncomeMinor, n(1_000_000)),
        (Feature::RequestedLimitMinor, n(2_000_000)),
        (Feature::ApplicationsLast7Days, n(1)),
        (Feature::ApplicationsLast30Days, n(1)),
        (Feature::DaysOverdueNow, n(0)),
        (Feature::WorstDaysOverdue12Months, n(0)),
        (Feature::OverdueMinor, n(0)),
        (Feature::OpenLines, n(0)),
        (Feature::DrawnMinor, n(0)),
        (Feature::MobileChanges90Days, n(0)),
        (Feature::BankAccountChanges90Days, n(0)),
        (Feature::AddressChanges90Days, n(0)),
        (Feature::DaysSinceRegistration, n(0)),
        (Feature::BureauLendersOpen, n(1)),
        (Feature::BureauExposureMinor, n(500_000)),
        (Feature::BureauInquiries3Months, n(1)),
        (Feature::BureauWorstDelinquencyDays, n(0)),
    ])
}

#[test]
fn the_default_policy_compiles() {
    let policy = default_policy();
    assert_eq!(policy.score_range(), (20, 330));
    assert!(
        policy
            .features_read(Stage::Drawdown)
            .contains(&Feature::DaysOverdueNow)
    );
}

#[test]
fn a_good_applicant_is_approved_up_to_what_they_asked() {
    let e = default_policy().decide(
        Stage::Application,
        &good_applicant(),
        BureauStatus::Answered,
    );
    assert_eq!(e.score.as_ref().unwrap().value, 275);
    assert_eq!(e.band, Some(4));
    assert_eq!(
        e.outcome,
        Outcome::Approve(OfferTerms {
            limit_minor: 2_000_000,
            currency: "CNY".into(),
            rate_tier: Some("preferred".into()),
            valid_days: 365,
        })
    );
    assert!(e.reasons.is_empty());
    assert_eq!(e.bureau, BureauUse::Answered);
}

#[test]
fn a_decline_names_the_band_then_the_characteristics_that_cost_most() {
    let mut f = good_applicant();
    f.set(Feature::AgeYears, n(20)).unwrap();
    f.set(Feature::MonthlyIncomeMinor, n(200_000)).unwrap();
    f.set(Feature::RequestedLimitMinor, n(5_000_000)).unwrap();
    f.set(Feature::BureauLendersOpen, n(5)).unwrap();
    f.set(Feature::BureauInquiries3Months, n(7)).unwrap();
    f.set(Feature::BureauWorstDelinquencyDays, n(45)).unwrap();
    let e = default_policy().decide(Stage::Application, &f, BureauStatus::Answered);
    assert_eq!(e.outcome, Outcome::Decline);
    assert_eq!(e.score.as_ref().unwrap().value, 75);
    assert_eq!(
        e.reasons,
        vec![
            Reason::ScoreTooLow,
            Reason::IncomeInsufficient,
            Reason::DelinquencyRecord,
            Reason::MultiLending
        ]
    );
    assert_eq!(e.explanation.len(), 4);
    assert_eq!(
        e.explanation[1].because,
        "monthly_income_minor: 5 of 60 points"
    );
}

#[test]
fn knock_outs_decide_before_the_score_and_give_their_own_reasons() {
    let mut f = good_applicant();
    f.set(Feature::DaysOverdueNow, n(3)).unwrap();
    f.set(Feature::BureauLendersOpen, n(7)).unwrap();
    f.set(Feature::MobileChanges90Days, n(4)).unwrap();
    let e = default_policy().decide(Stage::Application, &f, BureauStatus::Answered);
    assert_eq!(e.outcome, Outcome::Decline);
    let fired: Vec<(&str, u32)> = e.fired.iter().map(|r| (r.table.as_str(), r.row)).collect();
    assert_eq!(
        fired,
        vec![("delinquency", 1), ("delinquency", 3), ("velocity", 2)]
    );
    assert_eq!(e.reasons[..2], [Reason::Overdue, Reason::MultiLending]);
    assert_eq!(e.band, None);
}

#[test]
fn a_bureau_that_is_down_is_handled_as_the_policy_says() {
    let mut f = good_applicant();
    for feature in [
        Feature::BureauLendersOpen,
        Feature::BureauExposureMinor,
        Feature::BureauInquiries3Months,
        Feature::BureauWorstDelinquencyDays,
    ] {
        f.clear(feature);
    }
    let policy = default_policy();
    let e = policy.decide(Stage::Application, &f, BureauStatus::Unavailable);
    assert_eq!(
        e.bureau,
        BureauUse::UnavailableDecidedWithout {
            limit_cap_minor: 300_000
        }
    );
    let Outcome::Approve(offer) = e.outcome else {
        panic!("{e:?}")
    };
    assert_eq!(offer.limit_minor, 300_000);

    let mut document = policy.document().clone();
    document.bureau_unavailable = BureauFallback::Refer;
    let referring = Policy::compile(document).unwrap();
    let e = referring.decide(Stage::Application, &f, BureauStatus::Unavailable);
    assert_eq!(e.outcome, Outcome::Refer);
    assert_eq!(e.bureau, BureauUse::UnavailableReferred);
}

#[test]
fn drawdown_checks_decline_hold_and_warn() {
    let policy = default_policy();
    let base = features(&[
        (Feature::AmountMinor, n(100_000)),
        (Feature::DaysOverdueNow, n(0)),
        (Feature::DrawdownsLast24Hours, n(0)),
        (Feature::DrawdownsLast7Days, n(0)),
        (Feature::TotalExposureMinor, n(100_000)),
        (Feature::UtilisationPercent, n(10)),
    ]);
    let e = policy.decide(Stage::Drawdown, &base, BureauStatus::NotAsked);
    assert_eq!((e.outcome, e.reasons.len()), (Outcome::Pass, 0));

    let mut overdue = base.clone();
    overdue.set(Feature::DaysOverdueNow, n(31)).unwrap();
    let e = policy.decide(Stage::Drawdown, &overdue, BureauStatus::NotAsked);
    assert_eq!(
        (e.outcome, e.reasons),
        (Outcome::Decline, vec![Reason::Overdue])
    );

    let mut busy = base.clone();
    busy.set(Feature::DrawdownsLast24Hours, n(3)).unwrap();
    busy.set(Feature::UtilisationPercent, n(95)).unwrap();
    let e = policy.decide(Stage::Drawdown, &busy, BureauStatus::NotAsked);
    assert_eq!(e.outcome, Outcome::Hold);
    assert_eq!(e.reasons, vec![Reason::Velocity]);
    assert_eq!(e.warnings, vec![Warning::UtilisationHigh]);

    let mut new_account = base.clone();
    new_account
        .set(Feature::DaysSinceBankAccountChange, n(1))
        .unwrap();
    new_account.set(Feature::AmountMinor, n(800_000)).unwrap();
    let e = policy.decide(Stage::Drawdown, &new_account, BureauStatus::NotAsked);
    assert_eq!(
        (e.outcome, e.reasons),
        (Outcome::Hold, vec![Reason::FrequentProfileChanges])
    );
}

#[test]
fn line_reviews_freeze_cut_lift_and_raise() {
    let policy = default_policy();
    let review = |pairs: &[(Feature, Value)]| {
        let mut f = features(&[
            (Feature::DaysOverdueNow, n(0)),
            (Feature::WorstDaysOverdue12Months, n(0)),
            (Feature::DaysSinceRegistration, n(10)),
            (Feature::LineFrozen, Value::Flag(false)),
            (Feature::UtilisationPercent, n(20)),
            (Feature::DaysSinceLimitChange, n(100)),
        ]);
        for (feature, value) in pairs {
            f.set(*feature, value.clone()).unwrap();
        }
        policy.decide(Stage::LineReview, &f, BureauStatus::NotAsked)
    };
    assert_eq!(review(&[]).outcome, Outcome::Keep);
    let frozen = review(&[
        (Feature::DaysOverdueNow, n(31)),
        (Feature::WorstDaysOverdue12Months, n(31)),
    ]);
    assert_eq!(
        (frozen.outcome, frozen.reasons),
        (Outcome::Freeze, vec![Reason::Overdue])
    );
    let warned = review(&[
        (Feature::DaysOverdueNow, n(20)),
        (Feature::WorstDaysOverdue12Months, n(20)),
    ]);
    assert_eq!(warned.outcome, Outcome::Decrease { percent: 20 });
    assert_eq!(warned.warnings, vec![Warning::InstallmentDueSoon]);
    assert_eq!(
        review(&[(Feature::LineFrozen, Value::Flag(true))]).outcome,
        Outcome::Unfreeze
    );
    let raised = review(&[
        (Feature::DaysSinceRegistration, n(200)),
        (Feature::UtilisationPercent, n(60)),
    ]);
    assert_eq!(raised.outcome, Outcome::Increase { percent: 10 });
}

/// Every operator at its edges: (cell, value, admitted).
#[test]
fn operators_at_their_boundaries() {
    let cases: Vec<(serde_json::Value, Feature, Option<Value>, bool)> = vec![
        (
            json!({"min": 31}),
            Feature::DaysOverdueNow,
            Some(n(31)),
            true,
        ),
        (
            json!({"min": 31}),
            Feature::DaysOverdueNow,
            Some(n(30)),
            false,
        ),
        (
            json!({"max": 30}),
            Feature::DaysOverdueNow,
            Some(n(30)),
            true,
        ),
        (
            json!({"max": 30}),
            Feature::DaysOverdueNow,
            Some(n(31)),
            false,
        ),
        (
            json!({"above": 30}),
            Feature::DaysOverdueNow,
            Some(n(30)),
            false,
        ),
        (
            json!({"above": 30}),
            Feature::DaysOverdueNow,
            Some(n(31)),
            true,
        ),
        (
            json!({"below": 30}),
            Feature::DaysOverdueNow,
            Some(n(29)),
            true,
        ),
        (
            json!({"below": 30}),
            Feature::DaysOverdueNow,
            Some(n(30)),
            false,
        ),
        (
            json!({"min": 1, "below": 3}),
            Feature::DaysOverdueNow,
            Some(n(2)),
            true,
        ),
        (
            json!({"min": 1, "below": 3}),
            Feature::DaysOverdueNow,
            Some(n(3)),
            false,
        ),
        (json!({"min": 90}), Feature::UtilisationPercent, None, false),
        (
            json!({"min": 90, "missing": true}),
            Feature::UtilisationPercent,
            None,
            true,
        ),
        (
            json!({"min": 90, "missing": true}),
            Feature::UtilisationPercent,
            Some(n(89)),
            false,
        ),
        (
            json!({"missing": true}),
            Feature::UtilisationPercent,
            None,
            true,
        ),
        (
            json!({"missing": true}),
            Feature::UtilisationPercent,
            Some(n(0)),
            false,
        ),
        (json!({}), Feature::UtilisationPercent, None, true),
        (
            json!({"in": ["11", "31"]}),
            Feature::Region,
            Some(Value::Text("31".into())),
            true,
        ),
        (
            json!({"in": ["11", "31"]}),
            Feature::Region,
            Some(Value::Text("44".into())),
            false,
        ),
        (json!({"in": ["11"]}), Feature::Region, None, false),
        (
            json!({"not_in": ["11"]}),
            Feature::Region,
            Some(Value::Text("44".into())),
            true,
        ),
        (
            json!({"not_in": ["11"]}),
            Feature::Region,
            Some(Value::Text("11".into())),
            false,
        ),
        (json!({"not_in": ["11"]}), Feature::Region, None, false),
        (
            json!({"is": true}),
            Feature::LineFrozen,
            Some(Value::Flag(true)),
            true,
        ),
        (
            json!({"is": true}),
            Feature::LineFrozen,
            Some(Value::Flag(false)),
            false,
        ),
        (
            json!({"is": false}),
            Feature::LineFrozen,
            Some(Value::Flag(false)),
            true,
        ),
    ];
    for (cell, feature, value, admitted) in cases {
        let stage = [Stage::Application, Stage::Drawdown, Stage::LineReview]
            .into_iter()
            .find(|s| feature.is_known_at(*s))
            .unwrap();
        let policy = with_tables(json!([{
            "name": "t", "stage": stage, "hit": "first",
            "rules": [{ "when": { feature.name(): cell }, "outcome": "warn", "warning": "utilisation_high" }]
        }]))
        .unwrap_or_else(|e| panic!("{cell}: {e:?}"));
        let mut f = Features::default();
        if let Some(v) = &value {
            f.set(feature, v.clone()).unwrap();
        }
        let fired = !policy
            .decide(stage, &f, BureauStatus::NotAsked)
            .fired
            .is_empty();
        assert_eq!(fired, admitted, "{} {cell} on {value:?}", feature.name());
    }
}

#[test]
fn first_stops_at_the_first_match_and_collect_takes_every_one() {
    for (hit, expected) in [("first", vec![1]), ("collect", vec![1, 2])] {
        let policy = with_tables(json!([{
            "name": "t", "stage": "drawdown", "hit": hit,
            "rules": [
                { "when": { "days_overdue_now": { "min": 10 } }, "outcome": "hold", "reason": "credit.overdue" },
                { "when": { "days_overdue_now": { "min": 5 } }, "outcome": "decline", "reason": "credit.overdue" }
            ]
        }]))
        .unwrap();
        let f = features(&[(Feature::DaysOverdueNow, n(12))]);
        let e = policy.decide(Stage::Drawdown, &f, BureauStatus::NotAsked);
        let rows: Vec<u32> = e.fired.iter().map(|r| r.row).collect();
        assert_eq!(rows, expected, "{hit}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = codes(with_tables(json!([
        { "name": "a", "stage": "drawdown", "hit": "first", "rules": [
            { "when": { "no_such_thing": { "min": 1 } }, "outcome": "decline", "reason": "credit.overdue" },
            { "when": { "product": { "min": 1 } }, "outcome": "decline", "reason": "credit.overdue" },
            { "when": { "requested_limit_minor": { "min": 1 } }, "outcome": "decline", "reason": "credit.overdue" },
            { "outcome": "freeze", "reason": "credit.overdue" },
            { "outcome": "decline" },
            { "when": { "days_overdue_now": { "min": 5, "max": 4 } }, "outcome": "decline", "reason": "credit.overdue" },
            { "when": { "days_overdue_now": { "missing": true } }, "outcome": "decline", "reason": "credit.overdue" }
        ]},
        { "name": "b", "stage": "drawdown", "hit": "first", "rules": [
            { "when": { "days_overdue_now": { "min": 1 } }, "outcome": "decline", "reason": "credit.overdue" },
            { "when": { "days_overdue_now": { "min": 30 } }, "outcome": "hold", "reason": "credit.overdue" }
        ]},
        { "name": "b", "stage": "line_review", "hit": "collect", "complete": true, "rules": [
            { "when": { "days_overdue_now": { "max": 10 } }, "outcome": "warn", "warning": "installment_due_soon" },
            { "when": { "days_overdue_now": { "min": 12 } }, "outcome": "decrease", "reason": "credit.overdue" }
        ]},
        { "name": "a", "stage": "drawdown", "hit": "first", "rules": [
            { "outcome": "warn", "warning": "utilisation_high" }
        ]}
    ])));
    let expected: Vec<(&str, &str)> = vec![
        (
            "tables[0].rules[0].when.no_such_thing",
            "policy.unknown_feature",
        ),
        ("tables[0].rules[1].when.product", "policy.type_mismatch"),
        (
            "tables[0].rules[2].when.requested_limit_minor",
            "policy.feature_not_at_stage",
        ),
        ("tables[0].rules[3].outcome", "policy.outcome_not_at_stage"),
        ("tables[0].rules[4].reason", "policy.reason_required"),
        (
            "tables[0].rules[5].when.days_overdue_now",
            "policy.unreachable_row",
        ),
        (
            "tables[0].rules[6].when.days_overdue_now.missing",
            "policy.never_missing",
        ),
        ("tables[1].rules[1]", "policy.unreachable_row"),
        ("tables[2].rules[1].percent", "policy.percent_required"),
        ("tables[3].name", "policy.duplicate_name"),
    ];
    let found: Vec<(&str, &str)> = found.iter().map(|(f, c)| (f.as_str(), *c)).collect();
    assert_eq!(found, expected);
}

#[test]
fn a_complete_table_names_an_input_it_misses() {
    let err = with_tables(json!([{ "name": "c", "stage": "line_review", "hit": "collect", "complete": true,
        "rules": [
            { "when": { "days_overdue_now": { "max": 10 }, "line_frozen": { "is": true } }, "outcome": "warn", "warning": "installment_due_soon" },
            { "when": { "days_overdue_now": { "min": 12 } }, "outcome": "warn", "warning": "installment_due_soon" },
            { "when": { "line_frozen": { "is": false } }, "outcome": "warn", "warning": "installment_due_soon" }
        ]}]))
    .unwrap_err();
    let gap = &err.all()[0];
    assert_eq!(
        (gap.field.as_str(), gap.code),
        ("tables[0].rules", "policy.gap")
    );
    assert!(
        gap.message.contains("days_overdue_now 11") && gap.message.contains("line_frozen true"),
        "{}",
        gap.message
    );
}

#[test]
fn scorecard_bins_and_bands_must_tile() {
    let document = json!({
        "currency": "XXX",
        "scorecard": { "id": "t", "base_points": 600, "base_odds": "0", "pdo": 0,
            "characteristics": [
                { "feature": "age_years", "reason": "credit.limited_history", "bins": [
                    { "when": { "max": 30 }, "points": 10 },
                    { "when": { "min": 30, "max": 60 }, "points": 20 },
                    { "when": { "min": 70 }, "points": 5 } ] },
                { "feature": "amount_minor", "reason": "credit.limited_history", "bins": [
                    { "when": {}, "points": 1 } ] }
            ] },
        "bands": [
            { "max_score": 10, "outcome": "decline" },
            { "min_score": 10, "max_score": 15, "outcome": "approve" },
            { "min_score": 18, "outcome": "refer", "limit_minor": 5 }
        ],
        "bureau_unavailable": { "outcome": "decide_without", "limit_cap_minor": 0 }
    });
    let found = codes(Policy::compile(serde_json::from_value(document).unwrap()));
    let found: Vec<(&str, &str)> = found.iter().map(|(f, c)| (f.as_str(), *c)).collect();
    assert_eq!(
        found,
        vec![
            ("currency", "validation.invalid_currency"),
            ("scorecard.pdo", "policy.invalid_scale"),
            ("scorecard.base_odds", "policy.invalid_scale"),
            ("scorecard.characteristics[0].bins[1]", "policy.overlap"),
            ("scorecard.characteristics[0].bins", "policy.gap"),
            (
                "scorecard.characteristics[1].feature",
                "policy.feature_not_at_stage"
            ),
            ("bands[0].reason", "policy.reason_required"),
            ("bands[1].limit_minor", "validation.amount_out_of_range"),
            ("bands[1].valid_days", "validation.invalid_validity"),
            ("bands[2].limit_minor", "policy.terms_unexpected"),
            ("bands[1]", "policy.overlap"),
            ("bands", "policy.gap"),
            (
                "bureau_unavailable.limit_cap_minor",
                "validation.amount_out_of_range"
            ),
        ]
    );
}

#[test]
fn the_default_policy_survives_a_round_trip_through_json() {
    let policy = default_policy();
    let again: PolicyDocument =
        serde_json::from_str(&serde_json::to_string(policy.document()).unwrap()).unwrap();
    assert_eq!(Policy::compile(again).unwrap(), policy);
}

#[test]
fn a_feature_refuses_the_wrong_type_and_range() {
    let mut f = Features::default();
    assert!(f.set(Feature::AgeYears, Value::Text("30".into())).is_err());
    assert!(f.set(Feature::AgeYears, n(151)).is_err());
    f.set_number(Feature::DaysOverdueNow, -5);
    assert_eq!(f.get(Feature::DaysOverdueNow), Some(&n(0)));
    let snapshot = good_applicant().snapshot(&Feature::ALL.iter().copied().collect());
    assert_eq!(
        Features::from_snapshot(&snapshot).unwrap(),
        good_applicant()
    );
}

/// Bins as cut points over `0..=100` (age_years' range is 0..=150, so the last bin is open).
fn bins_from(cuts: &[(i64, i64)]) -> serde_json::Value {
    let bins: Vec<serde_json::Value> = cuts
        .iter()
        .map(|(lo, hi)| json!({ "when": { "min": lo, "max": hi }, "points": 1 }))
        .collect();
    serde_json::Value::Array(bins)
}

proptest! {
    /// Validation finds an overlap or a gap in a characteristic's bins exactly when some age
    /// falls in two bins or in none.
    #[test]
    fn bins_are_checked_exactly(spans in proptest::collection::vec((0i64..=150, 0i64..=40), 1..6)) {
        let cuts: Vec<(i64, i64)> = spans.iter().map(|(lo, len)| (*lo, (*lo + len).min(150))).collect();
        let mut bins = bins_from(&cuts);
        bins.as_array_mut().unwrap().push(json!({ "when": { "missing": true }, "points": 0 }));
        let document = json!({
            "currency": "CNY",
            "scorecard": { "id": "t", "base_points": 600, "base_odds": "50", "pdo": 20,
                "characteristics": [{ "feature": "age_years", "reason": "credit.limited_history", "bins": bins }] },
            "bands": [{ "outcome": "refer" }],
            "bureau_unavailable": { "outcome": "refer" }
        });
        let result = Policy::compile(serde_json::from_value(document).unwrap());
        let covering = |age: i64| cuts.iter().filter(|(lo, hi)| *lo <= age && age <= *hi).count();
        let overlap = (0..=150).any(|age| covering(age) > 1);
        let gap = (0..=150).any(|age| covering(age) == 0);
        let found: Vec<&str> = match &result {
            Ok(_) => vec![],
            Err(v) => v.all().iter().map(|v| v.code).collect(),
        };
        prop_assert_eq!(found.contains(&"policy.overlap"), overlap);
        prop_assert_eq!(found.contains(&"policy.gap"), gap);
    }

    /// A `first` row is reported unreachable exactly when every value it admits is admitted by
    /// a row above it.
    #[test]
    fn unreachable_rows_are_found_exactly(spans in proptest::collection::vec((0i64..=60, 0i64..=20), 2..6)) {
        let rows: Vec<serde_json::Value> = spans
            .iter()
            .map(|(lo, len)| json!({ "when": { "days_overdue_now": { "min": lo, "max": lo + len } },
                "outcome": "hold", "reason": "credit.overdue" }))
            .collect();
        let result = with_tables(json!([{ "name": "t", "stage": "drawdown", "hit": "first", "rules": rows }]));
        let unreachable: Vec<String> = match &result {
            Ok(_) => vec![],
            Err(v) => v.all().iter().filter(|v| v.code == "policy.unreachable_row").map(|v| v.field.clone()).collect(),
        };
        for (r, (lo, len)) in spans.iter().enumerate() {
            let covered = (*lo..=lo + len).all(|d| spans[..r].iter().any(|(l, n)| *l <= d && d <= l + n));
            prop_assert_eq!(unreachable.contains(&format!("tables[0].rules[{r}]")), covered, "row {}", r);
        }
    }

    /// A decision evaluated again from its recorded features equals the original.
    #[test]
    fn a_replay_equals_the_original(
        age in proptest::option::of(0i64..=150),
        income in 0i64..5_000_000,
        requested in 0i64..10_000_000,
        lenders in proptest::option::of(0i64..10),
        overdue in 0i64..100,
        bureau_up in any::<bool>(),
    ) {
        let mut f = good_applicant();
        match age { Some(a) => f.set(Feature::AgeYears, n(a)).unwrap(), None => f.clear(Feature::AgeYears) }
        f.set(Feature::MonthlyIncomeMinor, n(income)).unwrap();
        f.set(Feature::RequestedLimitMinor, n(requested)).unwrap();
        match lenders { Some(l) => f.set(Feature::BureauLendersOpen, n(l)).unwrap(), None => f.clear(Feature::BureauLendersOpen) }
        f.set(Feature::DaysOverdueNow, n(overdue)).unwrap();
        let bureau = if bureau_up { BureauStatus::Answered } else { BureauStatus::Unavailable };
        let policy = default_policy();
        let original = policy.decide(Stage::Application, &f, bureau);
        let recorded = serde_json::to_string(&f.snapshot(policy.features_read(Stage::Application))).unwrap();
        let again = Features::from_snapshot(&serde_json::from_str(&recorded).unwrap()).unwrap();
        let replayed = policy.decide(Stage::Application, &again, bureau);
        prop_assert_eq!(&replayed, &original);
        let evaluation: Evaluation = serde_json::from_str(&serde_json::to_string(&original).unwrap()).unwrap();
        prop_assert_eq!(evaluation, original);
        prop_assert!(replayed.reasons.len() <= 4);
    }
}

use crate::reasons::Reason;

fn version(code: &str, n: u32, author: &str) -> PolicyVersion {
    let document: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .to_utc();
    PolicyVersion::author(
        PolicyCode::parse(code).unwrap(),
        n,
        document,
        String::new(),
        author,
        at,
    )
}

#[test]
fn a_version_is_activated_by_a_second_person_once() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut v = version("consumer", 1, "operator:maker");
    assert_eq!(
        v.activate("operator:maker", None, now),
        Err(ActivationError::SameAuthor)
    );
    assert_eq!(
        v.activate(
            "operator:checker",
            Some(now - chrono::Duration::seconds(1)),
            now
        ),
        Err(ActivationError::EffectiveInPast)
    );
    v.activate("operator:checker", None, now).unwrap();
    assert_eq!(v.activation.as_ref().unwrap().effective_from, now);
    assert_eq!(
        v.activate("operator:third", None, now),
        Err(ActivationError::AlreadyActivated(1))
    );
}

#[test]
fn the_version_in_effect_is_the_latest_to_take_effect() {
    let t = |h: i64| {
        chrono::DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::Duration::hours(h)
    };
    let mut one = version("consumer", 1, "operator:a");
    one.activate("operator:b", Some(t(1)), t(0)).unwrap();
    let mut two = version("consumer", 2, "operator:a");
    two.activate("operator:b", Some(t(5)), t(0)).unwrap();
    let draft = version("consumer", 3, "operator:a");
    let mut other = version("cautious", 1, "operator:a");
    other.activate("operator:b", Some(t(3)), t(0)).unwrap();
    let all = vec![one.clone(), two.clone(), draft.clone(), other.clone()];
    assert_eq!(in_effect(&all, t(0)), None);
    assert_eq!(in_effect(&all, t(2)).map(|v| v.version), Some(1));
    assert_eq!(
        in_effect(&all, t(4)).map(|v| v.code.as_str()),
        Some("cautious")
    );
    assert_eq!(
        in_effect(&all, t(6)).map(|v| (v.code.as_str(), v.version)),
        Some(("consumer", 2))
    );
    let live = |at| in_effect(&all, at).map(|v| (&v.code, v.version));
    assert_eq!(status(&draft, live(t(6)), t(6)), VersionStatus::Draft);
    assert_eq!(status(&two, live(t(4)), t(4)), VersionStatus::Scheduled);
    assert_eq!(status(&two, live(t(6)), t(6)), VersionStatus::InEffect);
    assert_eq!(status(&other, live(t(6)), t(6)), VersionStatus::Superseded);
}

#[test]
fn what_decided_is_the_band_or_the_rule_and_a_hidden_rule_is_not_named() {
    use crate::reasons::Language;
    let policy = default_policy();
    let mut poor = good_applicant();
    poor.set(Feature::AgeYears, n(20)).unwrap();
    poor.set(Feature::MonthlyIncomeMinor, n(200_000)).unwrap();
    poor.set(Feature::BureauWorstDelinquencyDays, n(45))
        .unwrap();
    poor.set(Feature::BureauInquiries3Months, n(7)).unwrap();
    let declined = policy.decide(Stage::Application, &poor, BureauStatus::Answered);
    assert_eq!(declined.outcome, Outcome::Decline);
    let (lowest, _) = policy.score_range();
    assert_eq!(
        policy.decided_by(&declined),
        Some(DecidedBy::ScoreBand {
            band: 1,
            of: 4,
            min_score: lowest,
            max_score: 170
        })
    );
    let approved = policy.decide(
        Stage::Application,
        &good_applicant(),
        BureauStatus::Answered,
    );
    assert!(matches!(
        policy.decided_by(&approved),
        Some(DecidedBy::ScoreBand {
            band: 3 | 4,
            of: 4,
            ..
        })
    ));

    let mut late = good_applicant();
    late.set(Feature::DaysOverdueNow, n(3)).unwrap();
    let knocked_out = policy.decide(Stage::Application, &late, BureauStatus::Answered);
    assert_eq!(
        policy.decided_by(&knocked_out),
        Some(DecidedBy::Rule {
            table: Some("delinquency".into()),
            row: Some(1)
        }),
        "credit.overdue is the borrower's to know: the rule is named"
    );

    let busy = features(&[
        (Feature::DrawdownsLast24Hours, n(3)),
        (Feature::DrawdownsLast7Days, n(3)),
    ]);
    let held = policy.decide(Stage::Drawdown, &busy, BureauStatus::NotAsked);
    assert_eq!(held.outcome, Outcome::Hold);
    let by = policy.decided_by(&held).unwrap();
    assert_eq!(
        by,
        DecidedBy::Rule {
            table: None,
            row: None
        },
        "risk.velocity is hidden"
    );
    let version = PolicyRef {
        code: "consumer".into(),
        version: 2,
    };
    let said = by.describe(&version, Language::En);
    assert!(
        said.contains("risk rule") && !said.contains("velocity"),
        "{said}"
    );
    assert!(by.describe(&version, Language::ZhHans).contains("风控规则"));

    let passed = policy.decide(Stage::Drawdown, &features(&[]), BureauStatus::NotAsked);
    assert_eq!(passed.outcome, Outcome::Pass);
    assert_eq!(policy.decided_by(&passed), None, "nothing stood in the way");

    let mut document = policy.document().clone();
    document.bureau_unavailable = BureauFallback::Refer;
    let referring = Policy::compile(document).unwrap();
    let mut unanswered = good_applicant();
    unanswered.clear(Feature::BureauLendersOpen);
    let referred = referring.decide(Stage::Application, &unanswered, BureauStatus::Unavailable);
    assert_eq!(
        referring.decided_by(&referred),
        Some(DecidedBy::BureauUnavailable)
    );
    assert!(
        DecidedBy::ScoreBand {
            band: 1,
            of: 4,
            min_score: 0,
            max_score: 170
        }
        .describe(&version, Language::En)
        .contains("band 1 of 4")
    );
}

#[test]
fn a_warning_two_rules_give_is_given_once() {
    let late = features(&[
        (Feature::DaysOverdueNow, n(20)),
        (Feature::DaysToNextDue, n(1)),
    ]);
    let e = default_policy().decide(Stage::LineReview, &late, BureauStatus::NotAsked);
    assert_eq!(e.fired.iter().filter(|f| f.warning.is_some()).count(), 2);
    assert_eq!(e.warnings, vec![Warning::InstallmentDueSoon]);
}

#[test]
fn a_change_of_limit_names_the_rule_whose_percentage_was_applied() {
    let policy = with_tables(json!([{ "name": "cuts", "stage": "line_review", "hit": "collect", "rules": [
        { "when": { "days_overdue_now": { "min": 1 } }, "outcome": "decrease", "percent": 10, "reason": "credit.overdue" },
        { "when": { "days_overdue_now": { "min": 5 } }, "outcome": "decrease", "percent": 30, "reason": "credit.delinquency_record" }
    ]}]))
    .unwrap();
    let e = policy.decide(
        Stage::LineReview,
        &features(&[(Feature::DaysOverdueNow, n(9))]),
        BureauStatus::NotAsked,
    );
    assert_eq!(e.outcome, Outcome::Decrease { percent: 30 });
    assert_eq!(
        policy.decided_by(&e),
        Some(DecidedBy::Rule {
            table: Some("cuts".into()),
            row: Some(2)
        })
    );
}
