//! Notifications end to end, on both stores, against real local listeners: a webhook receiver
//! written from docs/WEBHOOKS.md alone (wiremock), an SMS gateway (wiremock) and an SMTP
//! listener of our own. The outbox is published into deliveries; jobs send them, retry with
//! backoff, log every attempt, fail loudly after the budget, and can be re-driven. A support
//! answer reaches its borrower by SMS and email; a note between staff never does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use lendcore_connectors::sms::{HttpSmsConfig, HttpSmsGateway};
use lendcore_connectors::webhook::{WebhookClient, WebhookEndpoint};
use lendcore_domain::borrower::{BorrowerInput, BorrowerKind};
use lendcore_domain::case::{Subject, SubjectKind};
use lendcore_domain::reasons::Language;
use lendcore_engine::cases::{self, Actor};
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::notify::{self, DeliveryHandler, Notifications};
use lendcore_engine::vault::Vault;
use lendcore_engine::{Clock, Engine, ManualClock, borrowers};
use lendcore_store::{DeliveryChannel, DeliveryStatus, LeaseRequest, OutboxEvent, Store};
use lendcore_testkit::store_test;
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

mod common;

const SECRET: &str = "whsec-0123456789abcdef";

/// A receiver as a lender would write it from docs/WEBHOOKS.md: recompute the HMAC-SHA256 of
/// `{timestamp}.{raw body}` under the shared secret, compare with `Lendcore-Signature`
/// (`v1=<hex>`), refuse timestamps more than five minutes away. Fails the first `fail_first`
/// valid requests with a 503, to exercise retries.
struct Receiver {
    now: Arc<ManualClock>,
    fail_first: usize,
    seen: AtomicUsize,
    accepted: Arc<Mutex<Vec<Value>>>,
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let timestamp = header("lendcore-timestamp");
        let Ok(seconds) = timestamp.parse::<i64>() else {
            return ResponseTemplate::new(400);
        };
        if (self.now.now().timestamp() - seconds).abs() > 300 {
            return ResponseTemplate::new(400);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&request.body);
        let Some(given) = header("lendcore-signature")
            .strip_prefix("v1=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return ResponseTemplate::new(401);
        };
        if mac.verify_slice(&given).is_err() {
            return ResponseTemplate::new(401);
        }
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return ResponseTemplate::new(503);
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["id"], header("lendcore-event-id"));
        assert_eq!(body["topic"], header("lendcore-event-type"));
        self.accepted.lock().unwrap().push(body);
        ResponseTemplate::new(204)
    }
}

struct World {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    runner: JobRunner,
    sms: MockServer,
    accepted: Arc<Mutex<Vec<Value>>>,
    flaky_accepted: Arc<Mutex<Vec<Value>>>,
    mail: Arc<Mutex<Vec<String>>>,
}

async fn world(store: Arc<dyn Store>) -> World {
    let start = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let receiver = MockServer::start().await;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(Receiver {
            now: clock.clone(),
            fail_first: 0,
            seen: AtomicUsize::new(0),
            accepted: accepted.clone(),
        })
        .mount(&receiver)
        .await;
    let flaky_accepted = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/flaky"))
        .respond_with(Receiver {
            now: clock.clone(),
            fail_first: notify::MAX_ATTEMPTS as usize,
            seen: AtomicUsize::new(0),
            accepted: flaky_accepted.clone(),
        })
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/gone"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&receiver)
        .await;
    let sms = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"id": "g-1"})))
        .mount(&sms)
        .await;
    let (smtp_port, mail) = common::smtp_listener().await;
    let endpoint = |id: &str, route: &str, topics: &[&str]| WebhookEndpoint {
        id: id.into(),
        url: format!("{}{route}", receiver.uri()),
        secret: SECRET.as_bytes().to_vec(),
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
    };
    let mailer = common::smtp_mailer(smtp_port);
    let engine = Arc::new(
        Engine::new(store.clone(), clock.clone())
            .with_vault(Vault::from_hex(&"5c".repeat(32)).unwrap())
            .with_sms(Arc::new(
                HttpSmsGateway::new(HttpSmsConfig {
                    base_url: sms.uri(),
                    api_key: "k".into(),
                    timeout: StdDuration::from_secs(5),
                })
                .unwrap(),
            ))
            .with_notifications(Notifications {
                webhooks: vec![
                    endpoint("lender", "/hooks", &["loan.*", "drawdown.ended"]),
                    endpoint("flaky", "/flaky", &["loan.paid_off"]),
                    endpoint("gone", "/gone", &["drawdown.ended"]),
                ],
                webhook_client: Some(WebhookClient::new(StdDuration::from_secs(5)).unwrap()),
                mailer: Some(mailer),
                language: Language::En,
                link_base_url: None,
                operator_url: None,
            }),
    );
    let runner = JobRunner::new(
        store,
        clock.clone(),
        RunnerConfig {
            worker_id: "w".into(),
            ..RunnerConfig::default()
        },
    )
    .register(DeliveryHandler::new(&engine));
    // Keep the listeners alive with the world.
    std::mem::forget(receiver);
    World {
        engine,
        clock,
        runner,
        sms,
        accepted,
        flaky_accepted,
        mail,
    }
}

impl World {
    async fn event(&self, topic: &str, payload: Value) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let mut uow = self.engine.store.begin().await.unwrap();
        uow.append_outbox(&OutboxEvent {
            id: id.clone(),
            topic: topic.into(),
            aggregate_type: "drawdown".into(),
            aggregate_id: "d-1".into(),
            payload,
            created_at: self.clock.now(),
            published_at: None,
        })
        .await
        .unwrap();
        uow.commit().await.unwrap();
        id
    }

    /// Publishes, then runs due jobs, moving the clock a day on between rounds, `rounds` times.
    async fn run(&self, rounds: usize) {
        notify::publish(&self.engine).await.unwrap();
        for _ in 0..rounds {
            while self.runner.poll_once().await.unwrap().ran() > 0 {}
            self.clock.advance(Duration::days(1));
        }
    }

    async fn deliveries(&self, event_id: &str) -> Vec<notify::DeliveryView> {
        let mut found = notify::list(&self.engine, None, Some(event_id), 50)
            .await
            .unwrap();
        found.sort_by_key(|d| (format!("{:?}", d.channel), d.target.clone()));
        found
    }
}

async fn borrower(engine: &Engine, email: Option<&str>) -> String {
    borrowers::register(
        engine,
        BorrowerInput {
            kind: Some(BorrowerKind::Individual),
            name: "张三".into(),
            resident_id: Some("11010519491231002X".into()),
            mobile: Some("13812345678".into()),
            email: email.map(str::to_owned),
            ..BorrowerInput::default()
        },
        None,
    )
    .await
    .unwrap()
    .into_inner()
    .id
}

store_test! {
    async fn an_event_reaches_the_lender_signed_and_the_borrower_by_sms_and_email(db: &TestDb) {
        let w = world(db.store.clone()).await;
        let borrower_id = borrower(&w.engine, Some("zhang@example.com")).await;
        let event = w.event("loan.repaid", json!({"loan_id": "d-1", "borrower_id": borrower_id, "amount_minor": 91_680})).await;
        w.run(1).await;

        let accepted = w.accepted.lock().unwrap().clone();
        assert_eq!(accepted.len(), 1, "verified by the receiver: {accepted:?}");
        assert_eq!((accepted[0]["id"].as_str(), accepted[0]["topic"].as_str()), (Some(event.as_str()), Some("loan.repaid")));
        assert_eq!(accepted[0]["data"]["amount_minor"], 91_680);

        let texts: Vec<Value> = w.sms.received_requests().await.unwrap().iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0]["to"], "13812345678");
        assert_eq!(texts[0]["text"], "We received your repayment of CNY 916.80. Thank you.");

        let mail = w.mail.lock().unwrap().clone();
        assert_eq!(mail.len(), 1);
        assert!(mail[0].contains("Subject: Repayment received"), "{}", mail[0]);
        assert!(mail[0].contains("zhang@example.com"));

        let deliveries = w.deliveries(&event).await;
        assert_eq!(deliveries.len(), 3, "{deliveries:?}");
        assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Delivered && d.attempts == 1), "{deliveries:?}");
        let sms = deliveries.iter().find(|d| d.channel == DeliveryChannel::Sms).unwrap();
        assert_eq!(sms.target, "138****5678", "addresses are logged masked");
        let one = notify::get(&w.engine, &sms.id).await.unwrap();
        assert_eq!(one.log.len(), 1);

        // Publishing again, from any process, changes nothing: delivered once.
        db.execute(&format!("UPDATE outbox SET published_at_ms = NULL WHERE id = '{event}'")).await;
        w.run(1).await;
        assert_eq!(w.accepted.lock().unwrap().len(), 1);
        assert_eq!(w.deliveries(&event).await.len(), 3);

        // A borrower who chose Chinese is written to in Chinese, whatever the lender's default.
        let chinese = borrowers::register(&w.engine, BorrowerInput {
            kind: Some(BorrowerKind::Individual), name: "李四".into(),
            resident_id: Some("110105198001010016".into()), mobile: Some("13900001111".into()),
            language: Some(Language::ZhHans), ..BorrowerInput::default()
        }, None).await.unwrap().into_inner();
        assert_eq!(chinese.language, Some(Language::ZhHans));
        w.event("loan.repaid", json!({"loan_id": "d-2", "borrower_id": chinese.id, "amount_minor": 100})).await;
        w.run(1).await;
        let texts: Vec<Value> = w.sms.received_requests().await.unwrap().iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
        let theirs = texts.iter().find(|t| t["to"] == "13900001111").expect("sent");
        assert!(theirs["text"].as_str().unwrap().contains("还款"), "{theirs}");
    }

    async fn what_cannot_be_sent_is_recorded_not_dropped(db: &TestDb) {
        let w = world(db.store.clone()).await;
        let stranger = w.event("loan.repaid", json!({"borrower_id": "lender-b-77", "amount_minor": 100})).await;
        let internal = w.event("product.created", json!({"code": "cash"})).await;
        let draft = w.event("application.reminder", json!({"application_id": "a-1", "borrower_id": null, "state": "draft"})).await;
        // A borrower sealed under another key: the lender still hears of the event.
        let other_key = Engine::new(db.store.clone(), w.clock.clone())
            .with_vault(Vault::from_hex(&"6d".repeat(32)).unwrap());
        let sealed_elsewhere = borrower(&other_key, None).await;
        let unreadable = w.event("loan.repaid", json!({"borrower_id": sealed_elsewhere, "amount_minor": 100})).await;
        notify::publish(&w.engine).await.unwrap();
        let unreadable = w.deliveries(&unreadable).await;
        assert!(unreadable.iter().any(|d| d.channel == DeliveryChannel::Webhook), "webhooks kept: {unreadable:?}");
        let closed = unreadable.iter().find(|d| d.channel == DeliveryChannel::Sms).unwrap();
        assert_eq!(closed.status, DeliveryStatus::Skipped);
        assert!(closed.last_error.as_deref().unwrap().contains("could not be opened"));
        w.clock.advance(Duration::days(2));
        let borrower_id = borrower(&w.engine, None).await;
        let old = {
            let id = w.event("loan.repaid", json!({"borrower_id": borrower_id, "amount_minor": 100})).await;
            db.execute(&format!("UPDATE outbox SET created_at_ms = created_at_ms - 172800000 WHERE id = '{id}'")).await;
            id
        };
        w.run(1).await;
        let stranger = w.deliveries(&stranger).await;
        let skipped = stranger.iter().find(|d| d.channel == DeliveryChannel::Sms).unwrap();
        assert_eq!(skipped.status, DeliveryStatus::Skipped);
        assert!(skipped.last_error.as_deref().unwrap().contains("no borrower is registered"));
        assert!(stranger.iter().any(|d| d.channel == DeliveryChannel::Webhook && d.status == DeliveryStatus::Delivered),
            "the lender still hears of it");
        assert!(w.deliveries(&internal).await.is_empty(), "nobody subscribed, nothing to tell a borrower");
        let unregistered = w.deliveries(&draft).await;
        assert_eq!(unregistered.len(), 1, "{unregistered:?}");
        assert_eq!(unregistered[0].status, DeliveryStatus::Skipped);
        assert!(unregistered[0].last_error.as_deref().unwrap().contains("not registered yet"));
        let old = w.deliveries(&old).await;
        let stale = old.iter().find(|d| d.channel == DeliveryChannel::Sms).unwrap();
        assert_eq!(stale.status, DeliveryStatus::Skipped, "a day-old event is not texted: {old:?}");
        assert!(w.sms.received_requests().await.unwrap().is_empty());
    }

    async fn a_delivery_whose_sending_fails_before_a_word_is_sent_is_failed_not_left_pending(db: &TestDb) {
        let w = world(db.store.clone()).await;
        // The record was readable when the event was published, and is not when it is sent.
        let borrower_id = borrower(&w.engine, None).await;
        let other_key = Engine::new(db.store.clone(), w.clock.clone())
            .with_vault(Vault::from_hex(&"6d".repeat(32)).unwrap());
        let sealed_elsewhere = borrower(&other_key, None).await;
        let event = w.event("loan.repaid", json!({"borrower_id": borrower_id, "amount_minor": 100})).await;
        notify::publish(&w.engine).await.unwrap();
        db.execute(&format!(
            "UPDATE borrowers SET personal = (SELECT personal FROM borrowers WHERE id = '{sealed_elsewhere}') \
             WHERE id = '{borrower_id}'"
        )).await;
        w.run(1).await;
        let sms = w.deliveries(&event).await.into_iter().find(|d| d.channel == DeliveryChannel::Sms).unwrap();
        assert_eq!((sms.status, sms.attempts), (DeliveryStatus::Failed, 1), "{sms:?}");
        let log = notify::get(&w.engine, &sms.id).await.unwrap().log;
        assert!(log[0].detail.contains("could not be opened"), "the attempt says why: {log:?}");

        // A worker that dies during the last attempt leaves no attempt behind; its job is
        // buried, and the delivery reads as failed, listed with the failures, re-driven.
        let event = w.event("loan.paid_off", json!({"borrower_id": "nobody"})).await;
        notify::publish(&w.engine).await.unwrap();
        let lender = w.deliveries(&event).await.into_iter().find(|d| d.target == "lender").unwrap();
        db.execute(&format!("UPDATE jobs SET max_attempts = 1 WHERE id = 'deliver:{}'", lender.id)).await;
        let now = w.clock.now();
        let mut uow = db.store.begin().await.unwrap();
        let leased = uow.lease_jobs(&LeaseRequest {
            owner: "doomed", token: "doomed-1", kinds: &[lendcore_engine::jobs::kinds::DELIVERY], limit: 10,
            now, until: now + Duration::seconds(60),
        }).await.unwrap();
        uow.commit().await.unwrap();
        assert!(leased.iter().any(|j| j.id == format!("deliver:{}", lender.id)));
        w.clock.advance(Duration::minutes(5));
        w.runner.poll_once().await.unwrap();
        let dead = notify::get(&w.engine, &lender.id).await.unwrap();
        assert_eq!((dead.status, dead.attempts), (DeliveryStatus::Failed, 0), "{dead:?}");
        assert!(dead.last_error.as_deref().unwrap().contains("lease expired"), "{dead:?}");
        let failed = notify::list(&w.engine, Some(DeliveryStatus::Failed), None, 50).await.unwrap();
        assert!(failed.iter().any(|d| d.id == lender.id), "listed with the failures");
        let pending = notify::list(&w.engine, Some(DeliveryStatus::Pending), None, 50).await.unwrap();
        assert!(pending.iter().all(|d| d.id != lender.id), "and not as pending");
        notify::redrive(&w.engine, &lender.id).await.unwrap();
        w.run(1).await;
        let delivered = notify::get(&w.engine, &lender.id).await.unwrap();
        assert_eq!(delivered.status, DeliveryStatus::Delivered, "{delivered:?}");
    }

    async fn a_failing_receiver_is_retried_then_failed_loudly_and_re_driven(db: &TestDb) {
        let w = world(db.store.clone()).await;
        let ended = w.event("drawdown.ended", json!({"borrower_id": "nobody", "amount_minor": 100, "reason": "channel.account_invalid"})).await;
        let paid_off = w.event("loan.paid_off", json!({"borrower_id": "nobody"})).await;
        w.run(notify::MAX_ATTEMPTS as usize + 2).await;

        let gone = w.deliveries(&ended).await.into_iter().find(|d| d.target == "gone").unwrap();
        assert_eq!((gone.status, gone.attempts), (DeliveryStatus::Failed, 1), "a 410 is not retried: {gone:?}");
        assert!(gone.last_error.as_deref().unwrap().contains("410"));

        let flaky = w.deliveries(&paid_off).await.into_iter().find(|d| d.target == "flaky").unwrap();
        assert_eq!(flaky.status, DeliveryStatus::Failed, "{flaky:?}");
        assert_eq!(flaky.attempts, i64::from(notify::MAX_ATTEMPTS), "the whole budget was used");
        let log = notify::get(&w.engine, &flaky.id).await.unwrap().log;
        assert_eq!(log.len(), notify::MAX_ATTEMPTS as usize, "every attempt is in the log");
        assert!(log.windows(2).all(|p| p[1].at > p[0].at), "with time between them");
        let failed = notify::list(&w.engine, Some(DeliveryStatus::Failed), None, 50).await.unwrap();
        assert_eq!(failed.len(), 2);

        let pending = notify::redrive(&w.engine, &notify::list(&w.engine, Some(DeliveryStatus::Delivered), None, 50)
            .await.unwrap()[0].id).await.unwrap_err();
        assert_eq!(pending.code(), "conflict.delivery_not_failed");
        let again = notify::redrive(&w.engine, &flaky.id).await.unwrap();
        assert_eq!(again.status, DeliveryStatus::Failed, "until the job runs");
        w.run(1).await;
        let flaky = notify::get(&w.engine, &flaky.id).await.unwrap();
        assert_eq!((flaky.status, flaky.attempts), (DeliveryStatus::Delivered, i64::from(notify::MAX_ATTEMPTS) + 1));
        assert_eq!(w.flaky_accepted.lock().unwrap().len(), 1);
        assert_eq!(notify::get(&w.engine, "nope").await.unwrap_err().code(), "not_found.delivery");
    }

    async fn support_answers_a_case_by_sms_and_email_and_keeps_its_notes_to_itself(db: &TestDb) {
        let w = world(db.store.clone()).await;
        let borrower_id = borrower(&w.engine, Some("zhang@example.com")).await;
        let line = common::line(&w.engine, &borrower_id, 100_000, w.clock.now(), 30).await;
        let about = Subject { kind: SubjectKind::CreditLine, id: line };
        let opened = cases::open(&w.engine, &borrower_id, &Actor::Borrower, about, None, "Why is my limit so low?", None).await.unwrap();
        let case = opened.into_inner().case.id;
        let support = Actor::Support("ops:li".into());
        cases::write(&w.engine, &borrower_id, &case, &support, "New customer; check their income.", true, None).await.unwrap();
        cases::write(&w.engine, &borrower_id, &case, &support, "It grows as you repay on time.", false, None).await.unwrap();
        w.run(1).await;

        let mail = w.mail.lock().unwrap().clone();
        let answers: Vec<&String> = mail.iter().filter(|m| m.contains("It grows as you repay on time.")).collect();
        assert_eq!(answers.len(), 1, "{mail:?}");
        assert!(answers[0].contains("To: zhang@example.com"), "{}", answers[0]);
        assert!(mail.iter().all(|m| !m.contains("check their income")), "a note between staff is never sent: {mail:?}");
        let texts: Vec<String> = w.sms.received_requests().await.unwrap().iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["text"].as_str().unwrap().to_owned()).collect();
        assert!(texts.contains(&"Support answered your request: It grows as you repay on time.".to_owned()), "{texts:?}");
        assert!(texts.iter().all(|t| !t.contains("check their income")), "{texts:?}");
    }
}
