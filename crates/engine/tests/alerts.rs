//! Alerts evaluated from the audit chain, on both stores: a threshold that fires once after two
//! evaluations in breach, stays quiet while it lasts (also for a process that starts afresh),
//! and resolves by itself; an anomaly per channel against the same minutes on earlier days.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_domain::audit::AuditEntry;
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::{Engine, ManualClock, alerts};
use lendcore_store::{SignalCount, Store, StoredAlertRule};
use lendcore_testkit::store_test;
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

async fn save_rule(store: &dyn Store, rule: serde_json::Value) {
    let name = rule["name"].as_str().unwrap().to_owned();
    let mut uow = store.begin().await.unwrap();
    let stored = StoredAlertRule {
        name,
        document: rule.to_string(),
        revision: 1,
        updated_by: "operator:ops".into(),
        updated_at: t0(),
    };
    assert!(uow.save_alert_rule(&stored, None).await.unwrap());
    uow.commit().await.unwrap();
}

/// `n` audit entries of `action` at `at`, sealed.
async fn happened(
    store: &dyn Store,
    n: usize,
    action: &str,
    detail: serde_json::Value,
    at: DateTime<Utc>,
) {
    let mut uow = store.begin().await.unwrap();
    for i in 0..n {
        let entry = AuditEntry {
            at,
            actor: "system:lendcore".into(),
            action: action.into(),
            subject_type: "drawdown".into(),
            subject_id: format!("d-{i}"),
            detail: detail.to_string(),
        };
        uow.append_audit(&format!("{}-{action}-{i}", at.timestamp_millis()), &entry)
            .await
            .unwrap();
    }
    uow.commit().await.unwrap();
    lendcore_engine::audit::seal(store).await.unwrap();
}

fn pair(rule: &str, group: &str) -> (String, String) {
    (rule.to_owned(), group.to_owned())
}

store_test! {
    async fn a_threshold_fires_once_and_resolves_by_itself(db: &TestDb) {
        let clock = Arc::new(ManualClock::new(t0()));
        let engine = Engine::new(db.store.clone(), clock.clone());
        save_rule(db.store.as_ref(), json!({
            "name": "timeouts", "description": "Payouts end on channel timeouts", "severity": "page",
            "window_minutes": 15, "evaluations": 2,
            "condition": {"kind": "threshold", "above": 10,
                "count": {"signal": "events", "where": {"topic": ["drawdown.ended"], "reason": ["channel.timeout"]}}}
        })).await;
        happened(db.store.as_ref(), 11, "drawdown.ended", json!({"reason": "channel.timeout"}), t0() - Duration::minutes(3)).await;
        happened(db.store.as_ref(), 30, "drawdown.ended", json!({"reason": "user.cancelled"}), t0() - Duration::minutes(3)).await;

        let first = alerts::evaluate(&engine).await.unwrap();
        assert!(first.fired.is_empty(), "one evaluation in breach is not yet two");
        clock.advance(Duration::minutes(1));
        let second = alerts::evaluate(&engine).await.unwrap();
        assert_eq!(second.fired, [pair("timeouts", "")]);
        clock.advance(Duration::minutes(1));
        // A process that starts afresh reads the state where the last one left it.
        let restarted = Engine::new(db.store.clone(), clock.clone());
        assert_eq!(alerts::evaluate(&restarted).await.unwrap(), alerts::Evaluated::default(), "told once");

        let mut read = db.store.begin_read().await.unwrap();
        let firing = read.list_alerts(Some("firing"), 10).await.unwrap();
        assert_eq!(firing.len(), 1);
        let body: serde_json::Value = serde_json::from_str(&firing[0].body).unwrap();
        assert_eq!((body["evidence"]["value"].as_f64(), body["evidence"]["compared_with"].as_f64()), (Some(11.0), Some(10.0)), "{body}");
        drop(read);

        // The timeouts leave the window: one clear evaluation is not yet two.
        clock.advance(Duration::minutes(15));
        assert!(alerts::evaluate(&engine).await.unwrap().resolved.is_empty());
        clock.advance(Duration::minutes(1));
        assert_eq!(alerts::evaluate(&engine).await.unwrap().resolved, [pair("timeouts", "")]);
        assert!(db.store.begin_read().await.unwrap().open_alerts().await.unwrap().is_empty());
        lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        let told: Vec<String> = read.audit_records(0, 1000).await.unwrap().into_iter()
            .map(|r| r.entry.action).filter(|a| a.starts_with("alert.")).collect();
        assert_eq!(told, ["alert.fired", "alert.resolved"]);
    }

    async fn an_anomaly_is_flagged_per_channel_against_earlier_days(db: &TestDb) {
        let clock = Arc::new(ManualClock::new(t0()));
        let engine = Engine::new(db.store.clone(), clock.clone());
        save_rule(db.store.as_ref(), json!({
            "name": "unknown-answers", "description": "Channels leave payouts unanswered", "severity": "page",
            "window_minutes": 10, "group_by": "channel",
            "condition": {"kind": "anomaly", "baseline": "same_hour_median", "baseline_days": 7, "score": "4", "min_count": 5,
                "count": {"signal": "payout_calls", "where": {"answer": ["unknown"]}}}
        })).await;
        // On each of the last seven days, in the same ten minutes: one unanswered call at the
        // bank, fifteen at the sandbox (a noisy channel whose usual is high).
        let mut uow = db.store.begin().await.unwrap();
        let mut usual = Vec::new();
        for day in 1..=7 {
            let minute = t0() - Duration::days(day) - Duration::minutes(5);
            usual.push(SignalCount { signal: "payout_calls".into(), minute, labels: r#"{"answer":"unknown","call":"submit","channel":"bank"}"#.into(), count: 1 });
            usual.push(SignalCount { signal: "payout_calls".into(), minute, labels: r#"{"answer":"unknown","call":"submit","channel":"sandbox"}"#.into(), count: 15 });
        }
        uow.add_signal_counts(&usual, 0).await.unwrap();
        uow.commit().await.unwrap();
        // Today: twelve at each.
        for channel in ["bank", "sandbox"] {
            happened(db.store.as_ref(), 12, "payout.call", json!({"channel": channel, "call": "submit", "answer": "unknown"}), t0() - Duration::minutes(2)).await;
        }
        happened(db.store.as_ref(), 40, "payout.call", json!({"channel": "bank", "call": "query", "answer": "succeeded"}), t0() - Duration::minutes(2)).await;

        let evaluated = alerts::evaluate(&engine).await.unwrap();
        assert_eq!(evaluated.fired, [pair("unknown-answers", "bank")], "twelve is usual for the sandbox, not for the bank");
        let mut read = db.store.begin_read().await.unwrap();
        let firing = read.open_alerts().await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&firing[0].body).unwrap();
        assert_eq!(body["evidence"]["history"], json!([1, 1, 1, 1, 1, 1, 1]), "{body}");
        assert_eq!(body["evidence"]["compared_with"], 1.0, "the baseline");
        assert!(body["evidence"]["score"].as_f64().unwrap() > 4.0, "{body}");
        drop(read);
        // Its rule deleted, the alert ends with it.
        alerts::delete_rule(&engine, "operator:ops", "unknown-answers").await.unwrap();
        assert_eq!(alerts::evaluate(&engine).await.unwrap().resolved, [pair("unknown-answers", "bank")]);
        assert!(db.store.begin_read().await.unwrap().open_alerts().await.unwrap().is_empty());
    }

    async fn each_minute_is_evaluated_once_by_a_job_and_old_evaluations_are_forgotten(db: &TestDb) {
        let clock = Arc::new(ManualClock::new(t0() + Duration::seconds(10)));
        let engine = Arc::new(Engine::new(db.store.clone(), clock.clone()));
        save_rule(db.store.as_ref(), json!({
            "name": "declines", "description": "Applications declined", "severity": "ticket", "window_minutes": 60,
            "condition": {"kind": "threshold", "above": 2, "count": {"signal": "decisions", "where": {"outcome": ["decline"]}}}
        })).await;
        happened(db.store.as_ref(), 3, "decision.made", json!({"subject": {"type": "application"}, "outcome": "decline"}), t0()).await;
        let runner = JobRunner::new(db.store.clone(), clock.clone(), RunnerConfig { worker_id: "w".into(), ..RunnerConfig::default() })
            .register(alerts::EvaluateHandler::new(engine.clone()));
        assert!(alerts::schedule_due(db.store.as_ref(), clock.as_ref()).await.unwrap());
        clock.advance(Duration::seconds(20));
        assert!(!alerts::schedule_due(db.store.as_ref(), clock.as_ref()).await.unwrap(), "the same minute, queued once");
        assert_eq!(runner.poll_once().await.unwrap().ran(), 1);
        assert_eq!(db.store.begin_read().await.unwrap().open_alerts().await.unwrap().len(), 1, "fired by the job");

        // On the hour a day later, the evaluation forgets the evaluations older than a day.
        clock.set(t0() + Duration::days(1) + Duration::hours(1));
        assert!(alerts::schedule_due(db.store.as_ref(), clock.as_ref()).await.unwrap());
        assert_eq!(runner.poll_once().await.unwrap().ran(), 1);
        let mut read = db.store.begin_read().await.unwrap();
        let left: Vec<String> = read.list_jobs(lendcore_store::JobStatus::Succeeded, 10).await.unwrap().into_iter().map(|j| j.id).collect();
        assert_eq!(left, [format!("alerts:{}", (t0() + Duration::days(1) + Duration::hours(1)).timestamp())]);
    }

    async fn the_default_rules_are_put_in_place_once(db: &TestDb) {
        let engine = Engine::new(db.store.clone(), Arc::new(ManualClock::new(t0())));
        assert_eq!(alerts::install_defaults(&engine).await.unwrap(), 6);
        assert_eq!(alerts::install_defaults(&engine).await.unwrap(), 0);
        alerts::delete_rule(&engine, "operator:ops", "declines-anomaly").await.unwrap();
        assert_eq!(alerts::install_defaults(&engine).await.unwrap(), 0, "an operator's deletion stands");
        let names: Vec<String> = alerts::list_rules(&engine).await.unwrap().into_iter().map(|r| r.rule.name).collect();
        assert_eq!(names.len(), 5);
        assert!(names.contains(&"payout-failure-rate".to_owned()), "{names:?}");
    }

    async fn roll_ups_that_overlap_count_each_record_once(db: &TestDb) {
        happened(db.store.as_ref(), 25, "drawdown.ended", json!({"reason": "channel.timeout"}), t0()).await;
        let store = db.store.clone();
        let runs: Vec<_> = (0..6)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { alerts::roll_up(store.as_ref()).await.unwrap() })
            })
            .collect();
        let mut read_by_all = 0;
        for run in runs {
            read_by_all += run.await.unwrap();
        }
        assert_eq!(read_by_all, 25, "every record read by one of them");
        let mut read = db.store.begin_read().await.unwrap();
        let counted = read.signal_counts("events", t0(), t0() + Duration::minutes(1)).await.unwrap();
        assert_eq!(counted.iter().map(|(_, n)| n).sum::<i64>(), 25);
    }
}
