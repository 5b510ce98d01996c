use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn t(minutes: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn rule(value: serde_json::Value) -> AlertRule {
    serde_json::from_value(value).unwrap()
}

fn payout_failures() -> serde_json::Value {
    json!({
        "name": "payout-failure-rate",
        "description": "A channel refuses or fails a fifth of its payouts",
        "severity": "page",
        "window_minutes": 15,
        "group_by": "channel",
        "condition": {
            "kind": "ratio",
            "numerator": {"signal": "payout_calls", "where": {"answer": ["rejected", "refused_by_channel", "failed", "error"]}},
            "denominator": {"signal": "payout_calls", "where": {"call": ["submit"]}},
            "above": "0.2",
            "min_denominator": 20
        },
        "evaluations": 2,
        "notify": [{"by": "webhook", "to": "oncall"}, {"by": "email", "to": "ops@lender.example"}, {"by": "sms", "to": "+8613800000000"}]
    })
}

fn counts(value: u64, denominator: u64, history: &[u64]) -> Counts {
    Counts {
        value,
        denominator,
        history: history.to_vec(),
    }
}

#[test]
fn the_default_rules_validate() {
    let rules: Vec<AlertRule> = serde_json::from_str(DEFAULT_RULES).unwrap();
    assert_eq!(rules.len(), 7);
    for rule in &rules {
        assert_eq!(rule.validate(&[]), Ok(()), "{}", rule.name);
    }
}

#[test]
fn a_rule_reads_from_json_and_validates() {
    let r = rule(payout_failures());
    assert_eq!(r.evaluations, 2);
    assert!(r.enabled, "on unless turned off");
    assert_eq!(r.validate(&["oncall"]), Ok(()));
    let back: AlertRule = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn every_problem_of_a_rule_is_reported_at_once() {
    let mut bad = payout_failures();
    bad["name"] = json!("Payout Failures");
    bad["window_minutes"] = json!(0);
    bad["group_by"] = json!("borrower");
    bad["condition"]["numerator"]["where"] = json!({"colour": ["red"], "answer": []});
    bad["condition"]["denominator"]["signal"] = json!("events");
    bad["condition"]["above"] = json!("1.5");
    bad["notify"] = json!([{"by": "webhook", "to": "nobody"}, {"by": "email", "to": "ops"}, {"by": "sms", "to": "13800000000"}]);
    let found = rule(bad).validate(&["oncall"]).unwrap_err();
    let fields: Vec<&str> = found.all().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "window_minutes",
            "condition.numerator.where.answer",
            "condition.numerator.where.colour",
            "condition.denominator.where.call",
            "condition.denominator.signal",
            "group_by",
            "condition.above",
            "notify[0]",
            "notify[1]",
            "notify[2]",
        ],
        "{found:?}"
    );
    assert_eq!(found.all()[6].message, "not a label of payout_calls");
}

#[test]
fn unknown_fields_and_kinds_are_refused_when_read() {
    let mut typo = payout_failures();
    typo["windows_minutes"] = json!(15);
    assert!(serde_json::from_value::<AlertRule>(typo).is_err());
    let mut kind = payout_failures();
    kind["condition"]["kind"] = json!("percentile");
    assert!(serde_json::from_value::<AlertRule>(kind).is_err());
}

#[test]
fn each_condition_breaches_at_its_edge() {
    let any = Selector {
        signal: Signal::Events,
        matching: Default::default(),
    };
    let threshold = Condition::Threshold {
        count: any.clone(),
        above: 10,
    };
    assert!(!threshold.evaluate(&counts(10, 0, &[])).breached);
    assert!(threshold.evaluate(&counts(11, 0, &[])).breached);

    let ratio = Condition::Ratio {
        numerator: any.clone(),
        denominator: any.clone(),
        above: Decimal::new(2, 1),
        min_denominator: 20,
    };
    assert!(
        !ratio.evaluate(&counts(4, 20, &[])).breached,
        "exactly a fifth is not above it"
    );
    let over = ratio.evaluate(&counts(5, 20, &[]));
    assert!(
        over.breached && over.value == 0.25 && over.denominator == Some(20),
        "{over:?}"
    );
    assert!(
        !ratio.evaluate(&counts(19, 19, &[])).breached,
        "too few calls to judge"
    );
    assert!(!ratio.evaluate(&counts(0, 0, &[])).breached);

    let change = Condition::Change {
        count: any.clone(),
        factor: Decimal::from(3),
        min_count: 10,
    };
    assert!(!change.evaluate(&counts(29, 0, &[10])).breached);
    assert!(change.evaluate(&counts(30, 0, &[10])).breached);
    assert!(
        !change.evaluate(&counts(9, 0, &[0])).breached,
        "below the minimum count"
    );
    assert!(
        change.evaluate(&counts(10, 0, &[0])).breached,
        "from nothing to the minimum"
    );

    let anomaly = Condition::Anomaly {
        count: any,
        baseline: Baseline::SameHourMedian,
        baseline_days: 14,
        score: Decimal::from(4),
        min_count: 5,
    };
    let usual = [10, 12, 11, 9, 10, 50];
    let jump = anomaly.evaluate(&counts(30, 0, &usual));
    assert!(jump.breached, "{jump:?}");
    assert_eq!(
        jump.compared_with, 10.5,
        "the median: one bad day does not move it"
    );
    assert!(
        !anomaly.evaluate(&counts(16, 0, &usual)).breached,
        "within four spreads"
    );
    assert!(
        !anomaly.evaluate(&counts(4, 0, &[0, 0, 0, 0])).breached,
        "below the minimum count"
    );
    assert!(
        anomaly.evaluate(&counts(6, 0, &[0, 0, 0, 0])).breached,
        "six where there are none"
    );
    assert!(
        !anomaly.evaluate(&counts(6, 0, &[])).breached,
        "no history: nothing to compare with"
    );
}

#[test]
fn deviations_have_a_floor_for_small_counts() {
    let quiet = robust_deviation(1.0, &[0.0, 0.0, 0.0, 0.0]).unwrap();
    assert_eq!((quiet.centre, quiet.spread, quiet.score), (0.0, 1.0, 1.0));
    let robust = robust_deviation(30.0, &[10.0, 12.0, 11.0, 9.0, 10.0, 50.0]).unwrap();
    assert_eq!(robust.centre, 10.5);
    assert!(
        (robust.spread - 10.5_f64.sqrt()).abs() < 1e-9,
        "the MAD (1.48) is below the floor: {robust:?}"
    );
    let steady = ewma_deviation(5.0, &[5.0, 5.0, 5.0], EWMA_WEIGHT).unwrap();
    assert_eq!((steady.centre, steady.score), (5.0, 0.0));
    let rising = ewma_deviation(40.0, &[10.0, 10.0, 20.0, 40.0], EWMA_WEIGHT).unwrap();
    assert!(
        rising.centre > 10.0 && rising.centre < 40.0,
        "the latest days weigh most: {rising:?}"
    );
    assert_eq!(robust_deviation(1.0, &[]), None);
    assert_eq!(ewma_deviation(1.0, &[], EWMA_WEIGHT), None);
}

#[test]
fn an_alert_fires_once_and_resolves_by_itself() {
    let mut state: Option<AlertState> = None;
    let mut told = Vec::new();
    for (minute, breached) in [
        (0, true),
        (1, true),
        (2, true),
        (3, false),
        (4, true),
        (5, false),
        (6, false),
    ] {
        match next_state(state.as_ref(), breached, 2, t(minute)) {
            Step::Quiet => {}
            Step::Drop => state = None,
            Step::Update(next) => state = Some(next),
            Step::Fire(next) => {
                told.push(("fired", minute));
                state = Some(next);
            }
            Step::Resolve(next) => {
                told.push(("resolved", minute));
                state = Some(next);
            }
        }
    }
    assert_eq!(
        told,
        [("fired", 1), ("resolved", 6)],
        "one clear minute does not end it"
    );
    assert_eq!(
        state,
        Some(AlertState::Resolved {
            since: t(0),
            at: t(6)
        })
    );
    assert_eq!(
        next_state(None, true, 2, t(0)),
        Step::Update(AlertState::Pending {
            breaches: 1,
            since: t(0)
        })
    );
    let pending = AlertState::Pending {
        breaches: 1,
        since: t(0),
    };
    assert_eq!(
        next_state(Some(&pending), false, 2, t(1)),
        Step::Drop,
        "a blip that never fired leaves nothing"
    );
    assert_eq!(
        next_state(None, true, 1, t(0)),
        Step::Fire(AlertState::Firing {
            since: t(0),
            clears: 0
        })
    );
}

#[test]
fn the_rules_export_as_a_prometheus_rules_file() {
    let mut rules: Vec<AlertRule> = serde_json::from_str(DEFAULT_RULES).unwrap();
    let mut off = rule(payout_failures());
    off.name = "switched-off".into();
    off.enabled = false;
    rules.push(off);
    let file = prometheus_rules(&rules);
    let parsed: serde_yaml::Value = serde_yaml::from_str(&file).unwrap();
    let exported = parsed["groups"][0]["rules"].as_sequence().unwrap();
    assert_eq!(exported.len(), 7, "the rule switched off is left out");
    let by_name = |name: &str| {
        exported
            .iter()
            .find(|r| r["alert"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {file}"))
    };
    let waiting = by_name("lendcore_payouts_waiting_for_a_person");
    assert_eq!(
        waiting["expr"].as_str().unwrap(),
        r#"sum by () (increase(lendcore_events_total{topic="drawdown.manual_review"}[60m])) > 0"#
    );
    assert_eq!(waiting["labels"]["severity"].as_str(), Some("ticket"));
    assert!(
        waiting.get("for").is_none(),
        "fires on the first evaluation in breach"
    );
    let rate = by_name("lendcore_payout_failure_rate");
    assert_eq!(
        rate["for"].as_str(),
        Some("1m"),
        "two evaluations in breach: one minute pending"
    );
    let expr = rate["expr"].as_str().unwrap();
    assert!(
        expr.contains(r#"answer=~"rejected|refused_by_channel|not_sent|unknown",call="submit""#),
        "{expr}"
    );
    assert!(
        expr.contains("> 0.2 and (sum by (channel)") && expr.ends_with(">= 20"),
        "{expr}"
    );
    let unanswered = by_name("lendcore_channel_unanswered_anomaly")["expr"]
        .as_str()
        .unwrap();
    assert!(unanswered.contains(r#"quantile_over_time(0.5, (sum by (channel) (increase(lendcore_payout_calls_total{answer=~"unknown|error"}[15m])))[14d:1d] offset 1d)"#), "{unanswered}");
    let surge = by_name("lendcore_drawdown_endings_surge")["expr"]
        .as_str()
        .unwrap();
    assert!(
        surge.contains("offset 15m") && surge.contains(">= 3 *"),
        "{surge}"
    );
    assert!(
        by_name("lendcore_declines_anomaly")["expr"]
            .as_str()
            .unwrap()
            .contains(r#"lendcore_credit_decisions_total{outcome="decline"}"#)
    );
}

#[test]
fn exported_values_are_escaped_for_promql() {
    let mut r = rule(payout_failures());
    r.condition = Condition::Threshold {
        count: Selector {
            signal: Signal::Events,
            matching: [(
                "reason".to_owned(),
                vec!["a.b".to_owned(), "c\"d".to_owned()],
            )]
            .into(),
        },
        above: 1,
    };
    let file = prometheus_rules(&[r]);
    let parsed: serde_yaml::Value = serde_yaml::from_str(&file).unwrap();
    let expr = parsed["groups"][0]["rules"][0]["expr"].as_str().unwrap();
    assert_eq!(
        expr,
        r#"sum by (channel) (increase(lendcore_events_total{reason=~"a\\.b|c\"d"}[15m])) > 1"#,
        "a dot matches a dot; a quote stays in the string"
    );
}

proptest! {
    #[test]
    fn an_alert_is_told_at_most_once_until_it_resolves(
        breaches in proptest::collection::vec(any::<bool>(), 0..60),
        needed in 1u32..5,
    ) {
        let mut state: Option<AlertState> = None;
        let mut firing = false;
        for (minute, breached) in breaches.iter().enumerate() {
            match next_state(state.as_ref(), *breached, needed, t(minute as i64)) {
                Step::Quiet => {}
                Step::Drop => { prop_assert!(!firing); state = None; }
                Step::Update(next) => state = Some(next),
                Step::Fire(next) => { prop_assert!(!firing, "fired twice"); firing = true; state = Some(next); }
                Step::Resolve(next) => { prop_assert!(firing, "resolved what never fired"); firing = false; state = Some(next); }
            }
            prop_assert_eq!(firing, matches!(state, Some(AlertState::Firing { .. })));
        }
    }

    #[test]
    fn a_higher_count_never_scores_lower(
        history in proptest::collection::vec(0u32..1000, 1..30),
        a in 0u32..2000,
        b in 0u32..2000,
    ) {
        let history: Vec<f64> = history.into_iter().map(f64::from).collect();
        let (lo, hi) = (f64::from(a.min(b)), f64::from(a.max(b)));
        for score in [robust_deviation, |v, h: &[f64]| ewma_deviation(v, h, EWMA_WEIGHT)] {
            prop_assert!(score(lo, &history).unwrap().score <= score(hi, &history).unwrap().score);
        }
    }
}
