//! Alerts evaluated from the audit chain, on both stores: a threshold that fires once after two
//! evaluations in breach, stays quiet while it lasts (also for a process that starts afresh),
//! and resolves by itself; an anomaly per channel against the same minutes on earlier days;
//! and end to end, a payment channel that starts timing out pages its on-call recipients (a
//! webhook receiver and the SMS sandbox, over HTTP) once though two processes evaluate and
//! publish, and tells them of the recovery.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::time::Duration as StdDuration;

use lendcore_connectors::sms::{HttpSmsConfig, HttpSmsGateway, SandboxSms};
use lendcore_connectors::webhook::{WebhookClient, WebhookEndpoint};
use lendcore_domain::audit::AuditEntry;
use lendcore_domain::product::ProductCode;
use lendcore_domain::reasons::Language;
use lendcore_engine::drawdowns::{self, DisburseHandler, DrawdownRequest};
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::notify::{self, DeliveryHandler, Notifications};
use lendcore_engine::{Engine, ManualClock, alerts};
use lendcore_store::{SignalCount, Store, StoredAlertRule};
use lendcore_testkit::store_test;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;

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
            usual.push(SignalCount { signal: "payout_calls".into(), minute, labels: r#"{"answer":"unknown","call":"submit","channel":"bank"}"#.into(), count: 1, examples: vec![] });
            usual.push(SignalCount { signal: "payout_calls".into(), minute, labels: r#"{"answer":"unknown","call":"submit","channel":"sandbox"}"#.into(), count: 15, examples: vec![] });
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

        // Its rule switched off, the alert ends at the next evaluation; switched on, it fires
        // again; deleted, it ends at once.
        let mut rule = alerts::list_rules(&engine).await.unwrap().remove(0);
        rule.rule.enabled = false;
        let off = alerts::save_rule(&engine, "operator:ops", rule.rule.clone(), Some(rule.revision)).await.unwrap();
        clock.advance(Duration::minutes(1));
        assert_eq!(alerts::evaluate(&engine).await.unwrap().resolved, [pair("unknown-answers", "bank")]);
        assert!(db.store.begin_read().await.unwrap().open_alerts().await.unwrap().is_empty());
        rule.rule.enabled = true;
        alerts::save_rule(&engine, "operator:ops", rule.rule, Some(off.revision)).await.unwrap();
        clock.advance(Duration::minutes(1));
        assert_eq!(alerts::evaluate(&engine).await.unwrap().fired, [pair("unknown-answers", "bank")]);
        alerts::delete_rule(&engine, "operator:ops", "unknown-answers").await.unwrap();
        assert!(db.store.begin_read().await.unwrap().open_alerts().await.unwrap().is_empty());
        clock.advance(Duration::minutes(1));
        assert_eq!(alerts::evaluate(&engine).await.unwrap(), alerts::Evaluated::default());
        lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        let told: Vec<(String, String)> = read.audit_records(0, 1000).await.unwrap().into_iter()
            .filter(|r| r.entry.action.starts_with("alert."))
            .map(|r| (r.entry.action, r.entry.detail)).collect();
        let actions: Vec<&str> = told.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(actions, ["alert.fired", "alert.resolved", "alert.fired", "alert.resolved"]);
        let last: serde_json::Value = serde_json::from_str(&told[3].1).unwrap();
        assert_eq!(last["rule"]["name"], "unknown-answers", "the deleted rule is told with its alert: {last}");
        assert_eq!(last["alert"]["state"], "resolved");
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
        assert_eq!(alerts::install_defaults(&engine).await.unwrap(), 7);
        assert_eq!(alerts::install_defaults(&engine).await.unwrap(), 0);
        alerts::delete_rule(&engine, "operator:ops", "declines-anomaly").await.unwrap();
        assert_eq!(alerts::install_defaults(&engine).await.unwrap(), 0, "an operator's deletion stands");
        let names: Vec<String> = alerts::list_rules(&engine).await.unwrap().into_iter().map(|r| r.rule.name).collect();
        assert_eq!(names.len(), 6);
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

    async fn a_channel_that_starts_timing_out_pages_on_call_once_and_its_recovery_is_told(db: &TestDb) {
        let on_call = OnCall::start().await;
        let clock = Arc::new(ManualClock::new(t0()));
        // Two processes: each evaluates, publishes and sends.
        let a = on_call.process(db.store.clone(), clock.clone(), "a").await;
        let b = on_call.process(db.second_store().await, clock.clone(), "b").await;
        common::cash_product(&a.engine).await;
        let line = common::line(&a.engine, "b-1", 3_000_000, t0(), 365).await;
        alerts::save_rule(&a.engine, "operator:ops", serde_json::from_value(json!({
            "name": "channel-unanswered", "description": "A payment channel leaves payouts unanswered",
            "severity": "page", "window_minutes": 5, "group_by": "channel", "evaluations": 2,
            "condition": {"kind": "anomaly", "baseline": "same_hour_median", "baseline_days": 3, "score": "4", "min_count": 3,
                "count": {"signal": "payout_calls", "where": {"answer": ["unknown", "error"]}}},
            "notify": [{"by": "webhook", "to": "pager"}, {"by": "sms", "to": "+8613812345678"}, {"by": "webhook", "to": "ops-feed"},
                {"by": "email", "to": "oncall@lender.example"}]
        })).unwrap(), None).await.unwrap();
        // The usual: one unanswered call in these minutes on each of the last three days.
        let mut uow = db.store.begin().await.unwrap();
        let usual: Vec<SignalCount> = (1..=3).map(|day| SignalCount {
            signal: "payout_calls".into(), minute: t0() - Duration::days(day),
            labels: r#"{"answer":"unknown","call":"submit","channel":"sandbox"}"#.into(), count: 1, examples: vec![],
        }).collect();
        uow.add_signal_counts(&usual, 0).await.unwrap();
        uow.commit().await.unwrap();

        // Payouts go through; then the channel stops answering in time.
        a.draw(&line, "acct-1").await;
        let mut timed_out = Vec::new();
        for _ in 0..6 {
            timed_out.push(a.draw(&line, "acct-1~timeout").await);
        }
        a.work().await;
        clock.advance(Duration::minutes(1));
        let first = a.evaluate_with(&b).await;
        assert!(first.fired.is_empty(), "one evaluation in breach is not yet two: {first:?}");
        clock.advance(Duration::minutes(1));
        let second = a.evaluate_with(&b).await;
        assert_eq!(second.fired, [pair("channel-unanswered", "sandbox")], "fired once, by one process");
        a.publish_and_send_with(&b).await;
        a.publish_and_send_with(&b).await;

        let fired = on_call.webhook_bodies("/pager").await;
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0]["topic"], "alert.fired");
        let alert = &fired[0]["data"]["alert"];
        assert_eq!((alert["rule"].as_str(), alert["group"].as_str(), alert["state"].as_str()),
            (Some("channel-unanswered"), Some("sandbox"), Some("firing")), "{alert}");
        assert_eq!(alert["evidence"]["value"], 6.0, "{alert}");
        assert_eq!(alert["evidence"]["score"], 5.0, "six against a usual of one: {alert}");
        assert_eq!(alert["evidence"]["history"], json!([1, 1, 1]));
        assert_eq!(alert["series"].as_array().map(Vec::len), Some(5), "{alert}");
        assert_eq!(alert["series"].as_array().unwrap().iter().filter_map(|n| n.as_u64()).sum::<u64>(), 6);
        let examples: Vec<&str> = alert["examples"].as_array().unwrap().iter().filter_map(|e| e.as_str()).collect();
        assert!(!examples.is_empty() && examples.iter().all(|e| timed_out.iter().any(|id| *e == format!("/v1/drawdowns/{id}"))),
            "{examples:?} of {timed_out:?}");
        assert_eq!(on_call.webhook_bodies("/feed").await.len(), 1, "named by the rule and subscribed to alert.*: told once");
        let texts = on_call.sms.messages(Some("+8613812345678"));
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(texts[0].text.starts_with("lendcore FIRING channel-unanswered (channel sandbox): 6 against 1 over 5 min. https://ops.lender.example/v1/alerts"),
            "{}", texts[0].text);
        let mail = on_call.mail.lock().unwrap().clone();
        assert_eq!(mail.len(), 1, "{mail:?}");
        assert!(mail[0].contains("oncall@lender.example") && mail[0].contains("Subject: [lendcore] FIRING (page): channel-unanswered, channel sandbox"), "{}", mail[0]);
        assert!(mail[0].contains("Examples:\n  https://ops.lender.example/v1/drawdowns/"), "links to examples: {}", mail[0]);

        // The channel answers again; once the timeouts leave the window, two clear evaluations
        // resolve the alert and the recipients hear of it, once.
        a.draw(&line, "acct-1").await;
        a.work().await;
        clock.advance(Duration::minutes(5));
        assert!(a.evaluate_with(&b).await.resolved.is_empty());
        clock.advance(Duration::minutes(1));
        assert_eq!(a.evaluate_with(&b).await.resolved, [pair("channel-unanswered", "sandbox")]);
        a.publish_and_send_with(&b).await;
        a.publish_and_send_with(&b).await;
        let topics: Vec<Value> = on_call.webhook_bodies("/pager").await.iter().map(|b| b["topic"].clone()).collect();
        assert_eq!(topics, [json!("alert.fired"), json!("alert.resolved")]);
        assert_eq!(on_call.webhook_bodies("/feed").await.len(), 2);
        let texts = on_call.sms.messages(Some("+8613812345678"));
        assert_eq!(texts.len(), 2);
        assert!(texts[1].text.starts_with("lendcore RESOLVED channel-unanswered (channel sandbox)"), "{}", texts[1].text);
        let mail = on_call.mail.lock().unwrap().clone();
        assert_eq!(mail.len(), 2);
        assert!(mail[1].contains("Subject: [lendcore] RESOLVED: channel-unanswered, channel sandbox"), "{}", mail[1]);
    }
}

/// On call, as the rule reaches it: a webhook receiver (wiremock; `pager` receives only what
/// it is sent, `ops-feed` subscribes to `alert.*`), the SMS sandbox over HTTP, a mail server,
/// and the sandbox channel, whose `timeout` mode hangs past the client's timeout.
struct OnCall {
    hooks: MockServer,
    sms: SandboxSms,
    sms_url: String,
    smtp_port: u16,
    mail: Arc<std::sync::Mutex<Vec<String>>>,
    channel_url: String,
}

struct Process {
    engine: Arc<Engine>,
    runner: JobRunner,
}

impl OnCall {
    async fn start() -> OnCall {
        let hooks = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&hooks)
            .await;
        let sms = SandboxSms::new(None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sms_url = format!("http://{}", listener.local_addr().unwrap());
        let app = sms.router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (sandbox, channel_url) = common::sandbox(StdDuration::from_secs(2)).await;
        // The sandbox lives as long as its server's task holds it.
        drop(sandbox);
        let (smtp_port, mail) = common::smtp_listener().await;
        OnCall {
            hooks,
            sms,
            sms_url,
            smtp_port,
            mail,
            channel_url,
        }
    }

    async fn process(&self, store: Arc<dyn Store>, clock: Arc<ManualClock>, name: &str) -> Process {
        let endpoint = |id: &str, route: &str, topics: &[&str]| WebhookEndpoint {
            id: id.into(),
            url: format!("{}{route}", self.hooks.uri()),
            secret: b"whsec-on-call".to_vec(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        let channels = vec![common::http_channel(
            "sandbox",
            &self.channel_url,
            StdDuration::from_millis(200),
        )];
        let engine = Arc::new(
            Engine::new(store.clone(), clock.clone())
                .with_channels(channels.clone())
                .with_sms(Arc::new(
                    HttpSmsGateway::new(HttpSmsConfig {
                        base_url: self.sms_url.clone(),
                        api_key: "k".into(),
                        timeout: StdDuration::from_secs(5),
                    })
                    .unwrap(),
                ))
                .with_notifications(Notifications {
                    webhooks: vec![
                        endpoint("pager", "/pager", &["drawdown.ended"]),
                        endpoint("ops-feed", "/feed", &["alert.*"]),
                    ],
                    webhook_client: Some(WebhookClient::new(StdDuration::from_secs(5)).unwrap()),
                    mailer: Some(common::smtp_mailer(self.smtp_port)),
                    language: Language::En,
                    operator_url: Some("https://ops.lender.example".into()),
                    ..Notifications::default()
                }),
        );
        let runner = JobRunner::new(
            store,
            clock,
            RunnerConfig {
                worker_id: name.into(),
                ..RunnerConfig::default()
            },
        )
        .register(DisburseHandler::new(channels))
        .register(DeliveryHandler::new(&engine));
        Process { engine, runner }
    }

    /// What the receiver took at `route`, in order.
    async fn webhook_bodies(&self, route: &str) -> Vec<Value> {
        let requests = self.hooks.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.url.path() == route)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }
}

impl Process {
    /// Quotes and confirms a 1,000.00 drawdown to `account`; returns its id.
    async fn draw(&self, line: &str, account: &str) -> String {
        let request = DrawdownRequest {
            line_id: line.into(),
            product: ProductCode::parse("cash").unwrap(),
            amount_minor: 100_000,
            term: 3,
            split: None,
            account: account.into(),
        };
        let quoted = drawdowns::quote(&self.engine, request, None)
            .await
            .unwrap()
            .into_inner();
        drawdowns::confirm(&self.engine, &quoted.confirmation_token, None)
            .await
            .unwrap()
            .into_inner()
            .drawdown
            .id
    }

    /// Runs what is due until nothing is, and seals the audit chain the alerts count.
    async fn work(&self) {
        while self.runner.poll_once().await.unwrap().ran() > 0 {}
        lendcore_engine::audit::seal(self.engine.store.as_ref())
            .await
            .unwrap();
    }

    /// Evaluates in both processes at once; what either did.
    async fn evaluate_with(&self, other: &Process) -> alerts::Evaluated {
        let (mine, theirs) = tokio::join!(
            alerts::evaluate(&self.engine),
            alerts::evaluate(&other.engine)
        );
        let (mut mine, theirs) = (mine.unwrap(), theirs.unwrap());
        mine.fired.extend(theirs.fired);
        mine.resolved.extend(theirs.resolved);
        mine
    }

    /// Seals, publishes in both processes at once, then both send what is due.
    async fn publish_and_send_with(&self, other: &Process) {
        lendcore_engine::audit::seal(self.engine.store.as_ref())
            .await
            .unwrap();
        let (mine, theirs) = tokio::join!(
            notify::publish(&self.engine),
            notify::publish(&other.engine)
        );
        mine.unwrap();
        theirs.unwrap();
        let (mine, theirs) = tokio::join!(self.runner.poll_once(), other.runner.poll_once());
        mine.unwrap();
        theirs.unwrap();
        other.work().await;
        self.work().await;
    }
}
