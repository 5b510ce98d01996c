//! Operators hear first, on both stores. Alert rules as data over `/v1/alert-rules` and the
//! alerts they raise at `/v1/alerts`. `/metrics` speaks the catalogue: a refusal by its reason, business events
//! by topic and reason once published, credit decisions by outcome once sealed, payout calls
//! and payouts by channel, a delivery that failed, job queues and the queues waiting for a
//! person or for the sealer (read from the database at each scrape), and the book's checks.
//! docs/OPERATIONS.md lists each series.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use lendcore_connectors::channel::sandbox::{Sandbox, SandboxConfig};
use lendcore_connectors::channel::{HttpChannel, HttpChannelConfig, PaymentChannel};
use lendcore_connectors::webhook::{WebhookClient, WebhookEndpoint};
use lendcore_domain::access::Role;
use lendcore_domain::decision::{DEFAULT_POLICY, PolicyCode};
use lendcore_engine::access::Principal;
use lendcore_engine::drawdowns::DisburseHandler;
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::notify::{self, DeliveryHandler, Notifications};
use lendcore_server::HttpLimits;
use lendcore_testkit::store_test;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{Api, counted_before, scrape, series};

/// The recorder is one per process: the two stores' runs take turns, so that the gauges each
/// reads are its own and each counter's increase is its run's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn sandbox_channel() -> Arc<dyn PaymentChannel> {
    let sandbox = Sandbox::new(SandboxConfig {
        hang: StdDuration::from_secs(2),
        callback: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = sandbox.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Arc::new(
        HttpChannel::new(HttpChannelConfig {
            id: "sandbox".into(),
            base_url: url,
            api_key: "k".into(),
            timeout: StdDuration::from_secs(2),
        })
        .unwrap(),
    )
}

store_test! {
    async fn metrics_count_by_reason_and_read_queues_from_the_database(db: &TestDb) {
        let _turn = ONE_AT_A_TIME.lock().await;
        let channel = sandbox_channel().await;
        // The lender's webhook refuses everything: its deliveries fail.
        let hook = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(410)).mount(&hook).await;
        let channels = vec![channel.clone()];
        let api = Api::start_with(db, HttpLimits::default(), |engine| {
            engine.with_channels(channels).with_notifications(Notifications {
                webhooks: vec![WebhookEndpoint {
                    id: "lender".into(),
                    url: hook.uri(),
                    secret: b"secret".to_vec(),
                    topics: vec!["drawdown.paid_out".into(), "drawdown.ended".into()],
                }],
                webhook_client: Some(WebhookClient::new(StdDuration::from_secs(2)).unwrap()),
                ..Notifications::default()
            })
        })
        .await;
        let before = scrape(&api).await;
        let risk = |id: &str| Principal::Operator {
            id: id.into(), username: id.into(), role: Role::Risk, session_id: "test".into(),
        };
        let consumer = PolicyCode::parse("consumer").unwrap();
        let document = serde_json::from_str(DEFAULT_POLICY).unwrap();
        lendcore_engine::decisions::author(&api.engine, &risk("maker"), &consumer, document, None).await.unwrap();
        lendcore_engine::decisions::activate(&api.engine, &risk("checker"), &consumer, 1, None, None).await.unwrap();
        let product = json!({"code": "cash", "name": "Cash loan", "kind": "installment", "currency": "CNY", "terms": {
            "amount": {"min_minor": 100000, "max_minor": 5000000}, "terms": {"unit": "month", "options": [12]},
            "rate": {"basis": "annual", "value": "0.18"}, "repayment_method": "equal_installment",
            "penalty_daily_rate": "0.0005", "grace_days": 3
        }});
        assert_eq!(api.send("POST", "/v1/products", None, &product).await.status, StatusCode::CREATED);
        let until = (api.now() + Duration::days(30)).to_rfc3339();
        let line = api.send("POST", "/v1/credit-lines", None, &json!({
            "borrower_id": "b-1", "currency": "CNY", "limit_minor": 2_000_000, "valid_until": until
        })).await;
        let ask = |amount: i64, account: &str| json!({"line_id": line.body["id"], "product_code": "cash", "amount_minor": amount, "term": 12, "account": account});

        let refused = api.send("POST", "/v1/drawdowns/quotes", Some("q-big"), &ask(3_000_000, "acct-1")).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
        // One paid, one the channel refuses, one it pays short (a person must look), and a
        // fourth in a day, which the policy's velocity rule holds for review.
        for (n, amount, account, state) in [
            (1, 1_000_000, "acct-1", "disbursing"),
            (2, 200_000, "acct-2~reject:channel.account_invalid", "disbursing"),
            (3, 200_000, "acct-3~pays-less:1", "disbursing"),
            (4, 200_000, "acct-4", "held_for_review"),
        ] {
            let quoted = api.send("POST", "/v1/drawdowns/quotes", Some(&format!("q-{n}")), &ask(amount, account)).await;
            assert_eq!(quoted.status, StatusCode::CREATED, "{:?}", quoted.body);
            let token = &quoted.body["confirmation_token"];
            let confirmed = api.send("POST", "/v1/drawdowns/confirm", Some(&format!("c-{n}")), &json!({"confirmation_token": token})).await;
            assert_eq!((confirmed.status, confirmed.body["drawdown"]["status"]["state"].as_str()), (StatusCode::OK, Some(state)), "{:?}", confirmed.body);
        }

        // Nothing has run yet: the payout waits five seconds in its queue, the audit entries unsealed.
        api.clock.advance(Duration::seconds(5));
        let waiting = scrape(&api).await;
        let refusal = format!(r#"lendcore_refusals_total{{reason="{}"}}"#, refused.code());
        assert_eq!(series(&waiting, &refusal) - counted_before(&before, &refusal), 1.0, "{waiting}");
        assert_eq!(series(&waiting, "lendcore_figures_up"), 1.0, "{waiting}");
        assert_eq!(series(&waiting, r#"lendcore_jobs{kind="drawdown.disburse",status="pending"}"#), 3.0, "{waiting}");
        assert_eq!(series(&waiting, r#"lendcore_jobs{kind="delivery.send",status="dead"}"#), 0.0, "every kind is named");
        assert_eq!(series(&waiting, r#"lendcore_jobs_oldest_due_age_seconds{kind="drawdown.disburse"}"#), 5.0, "{waiting}");
        assert!(series(&waiting, r#"lendcore_queue_items{queue="audit_unsealed"}"#) >= 3.0, "{waiting}");
        assert_eq!(series(&waiting, r#"lendcore_queue_oldest_age_seconds{queue="audit_unsealed"}"#), 5.0, "{waiting}");
        assert_eq!(series(&waiting, r#"lendcore_queue_items{queue="drawdowns_held"}"#), 1.0, "{waiting}");
        assert_eq!(series(&waiting, r#"lendcore_queue_oldest_age_seconds{queue="drawdowns_held"}"#), 5.0, "{waiting}");
        assert_eq!(series(&waiting, r#"lendcore_queue_items{queue="payouts_manual_review"}"#), 0.0, "{waiting}");

        // Pay out, publish what happened, deliver it (the webhook refuses), seal the audit; a
        // payout the channel took is asked after again minutes later.
        let runner = JobRunner::new(api.store.clone(), api.clock.clone(), RunnerConfig { worker_id: "w".into(), ..RunnerConfig::default() })
            .register(DisburseHandler::new(vec![channel]))
            .register(DeliveryHandler::new(&api.engine));
        for _ in 0..3 {
            while runner.poll_once().await.unwrap().ran() > 0 {}
            notify::publish(&api.engine).await.unwrap();
            api.clock.advance(Duration::minutes(11));
        }
        while runner.poll_once().await.unwrap().ran() > 0 {}
        lendcore_engine::audit::seal(api.store.as_ref()).await.unwrap();
        let report = lendcore_engine::integrity::verify(api.store.as_ref()).await.unwrap();
        lendcore_engine::integrity::record_gauges(&report, api.now());

        let after = scrape(&api).await;
        let grew = |name: &str| series(&after, name) - counted_before(&before, name);
        assert_eq!(grew(r#"lendcore_payout_calls_total{channel="sandbox",call="submit",answer="accepted"}"#), 2.0, "paid, and paid short: {after}");
        assert_eq!(grew(r#"lendcore_payout_call_duration_seconds_count{channel="sandbox",call="submit",answer="accepted"}"#), 2.0, "{after}");
        assert_eq!(grew(r#"lendcore_payouts_total{channel="sandbox",outcome="paid"}"#), 1.0, "{after}");
        assert_eq!(grew(r#"lendcore_events_total{topic="drawdown.confirmed",reason=""}"#), 3.0, "the fourth was held: {after}");
        assert_eq!(grew(r#"lendcore_events_total{topic="drawdown.paid_out",reason=""}"#), 1.0, "{after}");
        assert_eq!(grew(r#"lendcore_credit_decisions_total{subject="drawdown",outcome="pass"}"#), 3.0, "{after}");
        assert_eq!(grew(r#"lendcore_deliveries_failed_total{channel="webhook"}"#), 2.0, "paid out, ended: both refused: {after}");
        assert_eq!(grew(r#"lendcore_delivery_attempts_total{channel="webhook",outcome="rejected"}"#), 2.0, "{after}");
        assert_eq!(grew(r#"lendcore_jobs_dead_lettered_total{kind="delivery.send"}"#), 2.0, "{after}");
        assert!(grew("lendcore_audit_sealed_total") >= 4.0, "{after}");
        assert_eq!(grew(r#"lendcore_payout_calls_total{channel="sandbox",call="submit",answer="rejected"}"#), 1.0, "{after}");
        assert_eq!(grew(r#"lendcore_payouts_total{channel="sandbox",outcome="failed"}"#), 1.0, "{after}");
        assert_eq!(grew(r#"lendcore_payouts_total{channel="sandbox",outcome="manual_review"}"#), 1.0, "paid short: {after}");
        assert_eq!(grew(r#"lendcore_events_total{topic="drawdown.ended",reason="channel.account_invalid"}"#), 1.0, "a failure by its reason: {after}");
        assert_eq!(grew(r#"lendcore_credit_decisions_total{subject="drawdown",outcome="hold"}"#), 2.0, "the held one, kept at its quote and at its confirmation: {after}");
        assert_eq!(series(&after, r#"lendcore_queue_items{queue="payouts_manual_review"}"#), 1.0, "{after}");
        assert!(series(&after, r#"lendcore_queue_oldest_age_seconds{queue="payouts_manual_review"}"#) <= 33.0 * 60.0, "{after}");
        assert_eq!(series(&after, r#"lendcore_queue_items{queue="drawdowns_held"}"#), 1.0, "{after}");
        assert_eq!(series(&after, r#"lendcore_jobs{kind="drawdown.disburse",status="pending"}"#), 0.0, "{after}");
        assert_eq!(series(&after, r#"lendcore_jobs{kind="delivery.send",status="dead"}"#), 2.0, "{after}");
        assert_eq!(series(&after, r#"lendcore_queue_items{queue="audit_unsealed"}"#), 0.0, "{after}");
        assert_eq!(series(&after, r#"lendcore_integrity_broken{check="audit_chain"}"#), 0.0, "{after}");
        assert_eq!(series(&after, r#"lendcore_integrity_broken{check="journal_entries_balanced"}"#), 0.0, "{after}");
        assert!(after.contains(r#"lendcore_integrity_broken{check="decisions_match_the_audit_chain"} 0"#), "{after}");
        assert_eq!(series(&after, "lendcore_integrity_checked_timestamp_seconds"), api.now().timestamp() as f64);
    }

    async fn alert_rules_are_data_and_their_alerts_are_listed_with_evidence(db: &TestDb) {
        let api = Api::default(db).await;
        let rule = json!({
            "name": "timeouts", "description": "Payouts end on channel timeouts", "severity": "page",
            "window_minutes": 15,
            "condition": {"kind": "threshold", "above": 2,
                "count": {"signal": "events", "where": {"topic": ["drawdown.ended"], "reason": ["channel.timeout"]}}}
        });
        let created = api.send("PUT", "/v1/alert-rules/timeouts", None, &rule).await;
        assert_eq!((created.status, &created.body["revision"]), (StatusCode::OK, &json!(1)), "{:?}", created.body);
        assert_eq!(created.body["rule"]["evaluations"], 1, "defaults filled in");
        let again = api.send("PUT", "/v1/alert-rules/timeouts", None, &rule).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict.alert_rule_exists"));
        let elsewhere = api.send("PUT", "/v1/alert-rules/other", None, &rule).await;
        assert_eq!((elsewhere.status, elsewhere.code()), (StatusCode::BAD_REQUEST, "validation.name_mismatch"));
        let mut bad = rule.clone();
        bad["window_minutes"] = json!(0);
        bad["notify"] = json!([{"by": "webhook", "to": "nobody"}]);
        let refused = api.send("PUT", "/v1/alert-rules/timeouts?revision=1", None, &bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let fields: Vec<&str> = refused.body["details"]["violations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["window_minutes", "notify[0]"], "{:?}", refused.body);
        let mut wider = rule.clone();
        wider["window_minutes"] = json!(30);
        let replaced = api.send("PUT", "/v1/alert-rules/timeouts?revision=1", None, &wider).await;
        assert_eq!((replaced.status, &replaced.body["revision"]), (StatusCode::OK, &json!(2)), "{:?}", replaced.body);
        let stale = api.send("PUT", "/v1/alert-rules/timeouts?revision=1", None, &wider).await;
        assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "conflict.alert_rule_changed"));
        let (_, rules) = api.get("/v1/alert-rules").await;
        assert_eq!(rules["items"][0]["rule"]["window_minutes"], 30);

        let mut uow = api.store.begin().await.unwrap();
        for i in 0..3 {
            let entry = lendcore_domain::audit::AuditEntry {
                at: api.now(), actor: "system:lendcore".into(), action: "drawdown.ended".into(),
                subject_type: "drawdown".into(), subject_id: format!("d-{i}"),
                detail: json!({"reason": "channel.timeout"}).to_string(),
            };
            uow.append_audit(&format!("a-{i}"), &entry).await.unwrap();
        }
        uow.commit().await.unwrap();
        lendcore_engine::audit::seal(api.store.as_ref()).await.unwrap();
        api.clock.advance(Duration::minutes(1));
        lendcore_engine::alerts::evaluate(&api.engine).await.unwrap();
        let (status, firing) = api.get("/v1/alerts?state=firing").await;
        assert_eq!(status, StatusCode::OK);
        let alert = &firing["items"][0];
        assert_eq!((alert["rule"].as_str(), alert["state"].as_str(), alert["group"].as_str()), (Some("timeouts"), Some("firing"), Some("")), "{firing}");
        assert_eq!((alert["evidence"]["value"].as_f64(), alert["evidence"]["compared_with"].as_f64()), (Some(3.0), Some(2.0)), "{alert}");
        let (_, resolved) = api.get("/v1/alerts?state=resolved").await;
        assert_eq!(resolved["items"], json!([]));
        let (status, body) = api.get("/v1/alerts?state=burning").await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation.invalid_alert_state")));

        let deleted = api.send("DELETE", "/v1/alert-rules/timeouts", None, &json!(null)).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        let gone = api.send("DELETE", "/v1/alert-rules/timeouts", None, &json!(null)).await;
        assert_eq!((gone.status, gone.code()), (StatusCode::NOT_FOUND, "not_found.alert_rule"));
        let (_, still) = api.get("/v1/alerts").await;
        assert_eq!(still["items"].as_array().unwrap().len(), 1, "its alerts stay, for the record");
        let (_, resolved) = api.get("/v1/alerts?state=resolved").await;
        let alert = &resolved["items"][0];
        assert_eq!((alert["rule"].as_str(), alert["state"].as_str()), (Some("timeouts"), Some("resolved")), "deleting a rule resolves its alerts: {resolved}");
        let (_, firing) = api.get("/v1/alerts?state=firing").await;
        assert_eq!(firing["items"], json!([]));
    }
}
