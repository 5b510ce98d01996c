//! Alert rules, signal counts and alerts on both stores.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_store::{SignalCount, StoreError, StoredAlert, StoredAlertRule};
use lendcore_testkit::store_test;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap()
}

fn rule(name: &str, revision: i64) -> StoredAlertRule {
    StoredAlertRule {
        name: name.into(),
        document: format!("{{\"revision\": {revision}}}"),
        revision,
        updated_by: "operator:ops".into(),
        updated_at: t0(),
    }
}

fn count(minute: i64, labels: &str, n: i64) -> SignalCount {
    SignalCount {
        signal: "events".into(),
        minute: t0() + Duration::minutes(minute),
        labels: labels.into(),
        count: n,
        examples: (0..n.min(3))
            .map(|i| format!("drawdown:{minute}-{i}"))
            .collect(),
    }
}

fn alert(id: &str, grouping: &str, state: &str, minute: i64) -> StoredAlert {
    StoredAlert {
        id: id.into(),
        rule: "timeouts".into(),
        grouping: grouping.into(),
        state: state.into(),
        body: "{}".into(),
        opened_at: t0(),
        updated_at: t0() + Duration::minutes(minute),
        resolved_at: (state == "resolved").then(|| t0() + Duration::minutes(minute)),
    }
}

store_test! {
    async fn rules_are_saved_once_and_changed_at_their_revision(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        assert!(uow.save_alert_rule(&rule("timeouts", 1), None).await.unwrap());
        assert!(!uow.save_alert_rule(&rule("timeouts", 1), None).await.unwrap(), "the name is taken");
        assert!(uow.save_alert_rule(&rule("timeouts", 2), Some(1)).await.unwrap());
        assert!(!uow.save_alert_rule(&rule("timeouts", 3), Some(1)).await.unwrap(), "changed meanwhile");
        assert!(!uow.save_alert_rule(&rule("gone", 2), Some(1)).await.unwrap(), "no such rule");
        assert!(uow.save_alert_rule(&rule("declines", 1), None).await.unwrap());
        uow.commit().await.unwrap();
        let mut read = db.store.begin().await.unwrap();
        let names: Vec<(String, i64)> = read.alert_rules().await.unwrap().into_iter().map(|r| (r.name, r.revision)).collect();
        assert_eq!(names, [("declines".to_owned(), 1), ("timeouts".to_owned(), 2)]);
        assert_eq!(read.find_alert_rule("timeouts").await.unwrap(), Some(rule("timeouts", 2)));
        assert!(read.delete_alert_rule("declines").await.unwrap());
        assert!(!read.delete_alert_rule("declines").await.unwrap());
        assert_eq!(read.find_alert_rule("declines").await.unwrap(), None);
    }

    async fn counts_add_up_by_minute_and_move_the_cursor_with_them(db: &TestDb) {
        let a = r#"{"reason":"channel.timeout","topic":"drawdown.ended"}"#;
        let b = r#"{"reason":"","topic":"drawdown.confirmed"}"#;
        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(uow.alert_cursor().await.unwrap(), 0);
        uow.add_signal_counts(&[count(0, a, 2), count(0, b, 5), count(1, a, 1)], 10).await.unwrap();
        uow.commit().await.unwrap();
        let mut dropped = db.store.begin().await.unwrap();
        dropped.add_signal_counts(&[count(0, a, 100)], 99).await.unwrap();
        dropped.rollback().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(uow.alert_cursor().await.unwrap(), 10, "rolled back with its counts");
        uow.add_signal_counts(&[count(0, a, 3), count(20, a, 7)], 12).await.unwrap();
        uow.commit().await.unwrap();

        let mut read = db.store.begin().await.unwrap();
        assert_eq!(read.alert_cursor().await.unwrap(), 12);
        let window = read.signal_counts("events", t0(), t0() + Duration::minutes(15)).await.unwrap();
        assert_eq!(window, [(b.to_owned(), 5), (a.to_owned(), 6)], "the same minute added up");
        let minutes = read.signal_minutes("events", t0(), t0() + Duration::minutes(15)).await.unwrap();
        let seen: Vec<(i64, &str, i64, Vec<String>)> = minutes.iter()
            .map(|c| ((c.minute - t0()).num_minutes(), c.labels.as_str(), c.count, c.examples.clone())).collect();
        let examples = |minute: i64, n: i64| (0..n).map(|i| format!("drawdown:{minute}-{i}")).collect::<Vec<_>>();
        assert_eq!(seen, [(0, b, 5, examples(0, 3)), (0, a, 5, examples(0, 3)), (1, a, 1, examples(1, 1))],
            "oldest first, with the latest examples");
        let mut quiet = count(1, a, 4);
        quiet.examples.clear();
        read.add_signal_counts(&[quiet], 12).await.unwrap();
        let kept = read.signal_minutes("events", t0() + Duration::minutes(1), t0() + Duration::minutes(2)).await.unwrap();
        assert_eq!((kept[0].count, kept[0].examples.clone()), (5, examples(1, 1)), "none new: the examples stay");
        assert!(read.signal_counts("decisions", t0(), t0() + Duration::minutes(15)).await.unwrap().is_empty());
        assert_eq!(read.prune_signal_counts(t0() + Duration::minutes(2)).await.unwrap(), 3);
        let left = read.signal_counts("events", t0(), t0() + Duration::hours(1)).await.unwrap();
        assert_eq!(left, [(a.to_owned(), 7)]);
    }

    async fn one_alert_is_open_per_rule_and_group(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.save_alert(&alert("a-1", "sandbox", "pending", 0)).await.unwrap();
        uow.save_alert(&alert("a-1", "sandbox", "firing", 1)).await.unwrap();
        uow.save_alert(&alert("a-2", "bank", "firing", 2)).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let twice = uow.save_alert(&alert("a-3", "sandbox", "pending", 3)).await.unwrap_err();
        assert!(matches!(twice, StoreError::Duplicate(_)), "{twice:?}");
        drop(uow);
        let mut uow = db.store.begin().await.unwrap();
        uow.save_alert(&alert("a-1", "sandbox", "resolved", 4)).await.unwrap();
        uow.save_alert(&alert("a-3", "sandbox", "pending", 5)).await.unwrap();
        uow.save_alert(&alert("a-4", "other", "pending", 6)).await.unwrap();
        uow.delete_alert("a-4").await.unwrap();
        uow.commit().await.unwrap();

        let mut read = db.store.begin().await.unwrap();
        let open: Vec<String> = read.open_alerts().await.unwrap().into_iter().map(|a| a.id).collect();
        assert_eq!(open, ["a-2", "a-3"]);
        let all: Vec<String> = read.list_alerts(None, 10).await.unwrap().into_iter().map(|a| a.id).collect();
        assert_eq!(all, ["a-3", "a-1", "a-2"], "latest changed first");
        let resolved = read.list_alerts(Some("resolved"), 10).await.unwrap();
        assert_eq!(resolved, [alert("a-1", "sandbox", "resolved", 4)]);
        assert_eq!(read.list_alerts(None, 1).await.unwrap().len(), 1);
    }
}
