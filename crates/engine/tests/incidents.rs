//! Incidents on both stores: an operator declares trouble with payouts through one channel;
//! `/v1/status` says so in either language; the borrowers whose payouts went through that
//! channel and are still in flight are told in their own language, over the SMS sandbox, and
//! nobody else is; when it ends, the same borrowers are told, once. An alert whose rule asks for
//! an incident raises one for its channel and ends it when it resolves.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use lendcore_domain::audit::AuditEntry;
use lendcore_domain::incident::{
    Component, Impact, IncidentChange, IncidentInput, Note, ServiceState, Source,
};
use lendcore_domain::reasons::Language;
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::notify::{self};
use lendcore_engine::{Clock, Engine, ManualClock, alerts, incidents, status};
use lendcore_store::Store;
use lendcore_testkit::store_test;
use serde_json::json;

mod common;

async fn world(store: Arc<dyn Store>) -> common::World {
    common::world(store, |runner| {
        runner
            .register(incidents::NoticeHandler)
            .register(incidents::OverHandler)
    })
    .await
}

store_test! {
    async fn a_declared_incident_tells_the_borrowers_whose_payouts_it_holds_up_and_then_that_it_is_over(db: &TestDb) {
        let w = world(db.store.clone()).await;
        // Waiting on the sandbox (it answers `pending` for a while), in Chinese; waiting too, in
        // English; paid already; and a borrower with nothing drawn.
        let (_, waiting_zh) = w.borrower("13811110001", "110105194912310011", Language::ZhHans).await;
        let (_, waiting_en) = w.borrower("13811110002", "110105194912310038", Language::En).await;
        let (_, paid) = w.borrower("13811110003", "110105194912310054", Language::En).await;
        w.borrower("13811110004", "110105194912310070", Language::En).await;
        w.draw(&waiting_zh, "acct-1~delayed:50").await;
        w.draw(&waiting_en, "acct-1~delayed:50").await;
        w.draw(&paid, "acct-1").await;
        let before: Vec<usize> = (1..=4).map(|i| w.texts(&format!("1381111000{i}")).len()).collect();

        let quiet = status::current(&w.engine, Language::En).await.unwrap();
        assert_eq!((quiet.state, quiet.banner.as_deref()), (ServiceState::Operational, None));

        let expected = w.clock.now() + Duration::hours(2);
        let declared = incidents::declare(&w.engine, IncidentInput {
            component: Component::Payouts, channel: Some("sandbox".into()), impact: Impact::Degraded,
            note: Note { en: Some("The bank is slow to confirm.".into()), zh_hans: Some("银行确认较慢。".into()) },
            expected_by: Some(expected),
        }, None).await.unwrap().into_inner();
        let shown = status::current(&w.engine, Language::ZhHans).await.unwrap();
        assert_eq!(shown.state, ServiceState::Degraded);
        assert_eq!(shown.banner.as_deref(), Some(declared.text(Language::ZhHans, false).as_str()));
        assert!(shown.banner.as_deref().unwrap().starts_with("通过sandbox的放款出现延迟"), "{shown:?}");
        assert_eq!(shown.incidents[0].expected_by, Some(expected));

        w.work().await;
        let told: Vec<Vec<String>> = (1..=4).map(|i| w.texts(&format!("1381111000{i}"))).collect();
        assert_eq!(told[0].len(), before[0] + 1, "{told:?}");
        assert!(told[0].last().unwrap().starts_with("通过sandbox的放款出现延迟。您的资金安全"), "in their language: {told:?}");
        assert!(told[0].last().unwrap().ends_with("银行确认较慢。"));
        assert_eq!(told[1].len(), before[1] + 1);
        assert!(told[1].last().unwrap().starts_with("Payouts through sandbox are delayed. Your money is safe"), "{told:?}");
        assert_eq!((told[2].len(), told[3].len()), (before[2], before[3]), "paid already, or nothing drawn: not told");

        // Changed while it lasts: the status shows it; nobody is messaged again.
        let changed = incidents::change(&w.engine, &declared.id, 1, IncidentChange { impact: Some(Impact::Unavailable), ..IncidentChange::default() }, None)
            .await.unwrap().into_inner();
        assert_eq!(changed.revision, 2);
        let stale = incidents::change(&w.engine, &declared.id, 1, IncidentChange::default(), None).await.unwrap_err();
        assert_eq!(stale.code(), "conflict.incident_changed");
        assert_eq!(status::current(&w.engine, Language::En).await.unwrap().state, ServiceState::Unavailable);
        w.work().await;
        assert_eq!(w.texts("13811110001").len(), before[0] + 1);

        w.clock.advance(Duration::minutes(40));
        let ended = incidents::end(&w.engine, &declared.id, None).await.unwrap().into_inner();
        assert!(ended.ended_at.is_some());
        assert_eq!(incidents::end(&w.engine, &declared.id, None).await.unwrap_err().code(), "conflict.incident_ended");
        w.work().await;
        w.work().await;
        assert_eq!(w.texts("13811110001").last().map(String::as_str), Some("放款已恢复正常，等待中的借款正在发放。"));
        assert_eq!(w.texts("13811110001").len(), before[0] + 2, "told it is over, once");
        assert_eq!(w.texts("13811110002").len(), before[1] + 2);
        assert_eq!(w.texts("13811110004").len(), before[3], "never told of it, not told it is over");
        let after = status::current(&w.engine, Language::En).await.unwrap();
        assert_eq!((after.state, after.banner.as_deref()), (ServiceState::Operational, None));
        assert_eq!(after.incidents.len(), 1, "an ended incident stays a day");
        assert_eq!(after.incidents[0].message, "Payouts are back to normal. A drawdown that waited is being paid now.");
        w.clock.advance(Duration::hours(25));
        assert!(status::current(&w.engine, Language::En).await.unwrap().incidents.is_empty());
    }

    async fn an_alert_whose_rule_asks_for_it_raises_an_incident_for_its_channel_and_ends_it(db: &TestDb) {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let engine = Engine::new(db.store.clone(), clock.clone());
        alerts::save_rule(&engine, "operator:ops", serde_json::from_value(json!({
            "name": "rejections", "description": "A channel refuses payouts", "severity": "page",
            "window_minutes": 5, "group_by": "channel",
            "condition": {"kind": "threshold", "above": 2, "count": {"signal": "payout_calls", "where": {"answer": ["refused_by_channel"]}}},
            "incident": {"component": "payouts", "impact": "unavailable", "expect_within_minutes": 30}
        })).unwrap(), None).await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        for i in 0..3 {
            let entry = AuditEntry {
                at: t0 - Duration::minutes(1), actor: "system:lendcore".into(), action: "payout.call".into(),
                subject_type: "drawdown".into(), subject_id: format!("d-{i}"),
                detail: json!({"channel": "bank", "call": "submit", "answer": "refused_by_channel"}).to_string(),
            };
            uow.append_audit(&format!("e-{i}"), &entry).await.unwrap();
        }
        uow.commit().await.unwrap();
        lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();

        assert_eq!(alerts::evaluate(&engine).await.unwrap().fired.len(), 1);
        let open = incidents::list(&engine, Some(true), 10).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].component, open[0].channel.as_deref(), open[0].impact), (Component::Payouts, Some("bank"), Impact::Unavailable));
        assert_eq!(open[0].expected_by, Some(t0 + Duration::minutes(30)));
        assert!(matches!(&open[0].source, Source::Alert { rule, .. } if rule == "rejections"), "{:?}", open[0].source);
        assert_eq!(status::current(&engine, Language::En).await.unwrap().state, ServiceState::Unavailable);

        clock.advance(Duration::minutes(10));
        assert_eq!(alerts::evaluate(&engine).await.unwrap().resolved.len(), 1);
        assert!(incidents::list(&engine, Some(true), 10).await.unwrap().is_empty());
        let ended = incidents::list(&engine, Some(false), 10).await.unwrap();
        assert_eq!(ended[0].ended_at, Some(t0 + Duration::minutes(10)));
        let mut read = db.store.begin_read().await.unwrap();
        let jobs: Vec<String> = read.list_jobs(lendcore_store::JobStatus::Pending, 10).await.unwrap().into_iter().map(|j| j.id).collect();
        assert!(jobs.contains(&format!("incident-notice:{}", ended[0].id)) && jobs.contains(&format!("incident-over:{}", ended[0].id)), "{jobs:?}");
    }

    async fn a_notice_still_unsent_when_the_incident_ends_is_not_sent_after_it(db: &TestDb) {
        let w = world(db.store.clone()).await;
        let (_, line) = w.borrower("13811110001", "110105194912310011", Language::En).await;
        w.draw(&line, "acct-1~delayed:50").await;
        let before = w.texts("13811110001").len();
        let declared = incidents::declare(&w.engine, IncidentInput {
            component: Component::Payouts, channel: None, impact: Impact::Degraded,
            note: Note::default(), expected_by: None,
        }, None).await.unwrap().into_inner();
        // The notice is written, but the SMS gateway has not been called yet when it ends.
        let notices_only = JobRunner::new(db.store.clone(), w.clock.clone(), RunnerConfig { worker_id: "n".into(), ..RunnerConfig::default() })
            .register(incidents::NoticeHandler);
        assert_eq!(notices_only.poll_once().await.unwrap().ran(), 1);
        notify::publish(&w.engine).await.unwrap();
        incidents::end(&w.engine, &declared.id, None).await.unwrap();
        w.work().await;
        assert_eq!(w.texts("13811110001")[before..], ["Payouts are back to normal. A drawdown that waited is being paid now.".to_owned()],
            "only that it is over");
        let skipped = notify::list(&w.engine, Some(lendcore_store::DeliveryStatus::Skipped), None, 50).await.unwrap();
        assert!(skipped.iter().any(|d| d.topic == "incident.notice" && d.last_error.as_deref() == Some("the incident is over: its notice is no longer sent")), "{skipped:?}");
    }
}
