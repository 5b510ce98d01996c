//! What the engine's test binaries share: the sandbox channel over real HTTP, a cash product
//! and a credit line, a world of borrowers reached through the sandbox SMS gateway, and a mail
//! server on loopback.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use lendcore_connectors::channel::sandbox::{Sandbox, SandboxConfig};
use lendcore_connectors::channel::{HttpChannel, HttpChannelConfig, PaymentChannel};
use lendcore_connectors::email::{Mailer, SmtpConfig, SmtpMailer, SmtpSecurity};
use lendcore_connectors::sms::{HttpSmsConfig, HttpSmsGateway, SandboxSms};
use lendcore_domain::Timestamp;
use lendcore_domain::borrower::{BorrowerInput, BorrowerKind};
use lendcore_domain::credit_line::GrantInput;
use lendcore_domain::product::ProductCode;
use lendcore_domain::product::{NewProductInput, ProductKind};
use lendcore_domain::reasons::Language;
use lendcore_engine::drawdowns::{self, DisburseHandler, DrawdownRequest};
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::notify::{self, DeliveryHandler, Notifications};
use lendcore_engine::vault::Vault;
use lendcore_engine::{Clock, ManualClock, borrowers};
use lendcore_engine::{Engine, credit_lines, products};
use lendcore_store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A sandbox channel served on a port of its own; `hang` is how long its `timeout` mode hangs.
pub async fn sandbox(hang: StdDuration) -> (Arc<Sandbox>, String) {
    let sandbox = Sandbox::new(SandboxConfig {
        hang,
        callback: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = sandbox.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (sandbox, url)
}

/// The HTTP channel client for a channel at `url`.
pub fn http_channel(id: &str, url: &str, timeout: StdDuration) -> Arc<dyn PaymentChannel> {
    Arc::new(
        HttpChannel::new(HttpChannelConfig {
            id: id.into(),
            base_url: url.into(),
            api_key: "k".into(),
            timeout,
        })
        .unwrap(),
    )
}

/// `cash`: 3, 6 or 12 months at 18%, a 10.00 upfront fee, penalty after three days' grace.
pub async fn cash_product(engine: &Engine) {
    let terms = serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 100000, "max_minor": 5000000},
        "terms": {"unit": "month", "options": [3, 6, 12]},
        "rate": {"basis": "annual", "value": "0.18"},
        "repayment_method": "equal_installment",
        "fees": [{"code": "service", "timing": "upfront", "fixed_minor": 1000}],
        "penalty_daily_rate": "0.0005",
        "grace_days": 3
    }))
    .unwrap();
    products::create_product(
        engine,
        NewProductInput {
            code: "cash".into(),
            name: "Cash".into(),
            kind: ProductKind::Installment,
            currency: "CNY".into(),
            terms,
            effective_from: None,
        },
        None,
    )
    .await
    .unwrap();
}

/// A CNY line for `borrower`, valid for `days` from `start`; returns its id.
pub async fn line(
    engine: &Engine,
    borrower: &str,
    limit_minor: i64,
    start: Timestamp,
    days: i64,
) -> String {
    credit_lines::grant(
        engine,
        GrantInput {
            borrower_id: borrower.into(),
            currency: "CNY".into(),
            limit_minor,
            rate_tier: None,
            valid_from: None,
            valid_until: start + Duration::days(days),
            actor: "ops:test".into(),
            note: None,
        },
        None,
    )
    .await
    .unwrap()
    .into_inner()
    .line
    .id
}

/// An engine whose borrowers are texted through the sandbox SMS gateway (served over HTTP),
/// which pays out through the sandbox channel, with the cash product, the clock in hand and a
/// runner for payouts, deliveries and whatever `more` registers.
pub struct World {
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    pub runner: JobRunner,
    pub sms: SandboxSms,
}

pub async fn world(store: Arc<dyn Store>, more: impl FnOnce(JobRunner) -> JobRunner) -> World {
    let start =
        chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let sms = SandboxSms::new(None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sms_url = format!("http://{}", listener.local_addr().unwrap());
    let app = sms.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (_sandbox, channel_url) = sandbox(StdDuration::from_secs(2)).await;
    let channels = vec![http_channel(
        "sandbox",
        &channel_url,
        StdDuration::from_secs(2),
    )];
    let engine = Arc::new(
        Engine::new(store.clone(), clock.clone())
            .with_vault(Vault::from_hex(&"3d".repeat(32)).unwrap())
            .with_channels(channels.clone())
            .with_sms(Arc::new(
                HttpSmsGateway::new(HttpSmsConfig {
                    base_url: sms_url,
                    api_key: "k".into(),
                    timeout: StdDuration::from_secs(5),
                })
                .unwrap(),
            ))
            .with_notifications(Notifications {
                language: Language::En,
                ..Notifications::default()
            }),
    );
    let runner = more(
        JobRunner::new(
            store,
            clock.clone(),
            RunnerConfig {
                worker_id: "w".into(),
                ..RunnerConfig::default()
            },
        )
        .register(DisburseHandler::new(channels))
        .register(DeliveryHandler::new(&engine)),
    );
    cash_product(&engine).await;
    World {
        engine,
        clock,
        runner,
        sms,
    }
}

impl World {
    /// A borrower reached at `mobile`, writing in `language`, with a 30,000 line; their id and
    /// the line's.
    pub async fn borrower(
        &self,
        mobile: &str,
        resident_id: &str,
        language: Language,
    ) -> (String, String) {
        let id = borrowers::register(
            &self.engine,
            BorrowerInput {
                kind: Some(BorrowerKind::Individual),
                name: "王五".into(),
                resident_id: Some(resident_id.into()),
                mobile: Some(mobile.into()),
                language: Some(language),
                ..BorrowerInput::default()
            },
            None,
        )
        .await
        .unwrap()
        .into_inner()
        .id;
        let line = line(&self.engine, &id, 3_000_000, self.clock.now(), 365).await;
        (id, line)
    }

    /// Confirms a 1,000.00 drawdown to `account`, lets its payout take its first steps; its id.
    pub async fn draw(&self, line: &str, account: &str) -> String {
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
        let id = drawdowns::confirm(&self.engine, &quoted.confirmation_token, None)
            .await
            .unwrap()
            .into_inner()
            .drawdown
            .id;
        self.work().await;
        id
    }

    /// Runs what is due, publishes, and sends, until nothing is left.
    pub async fn work(&self) {
        for _ in 0..5 {
            while self.runner.poll_once().await.unwrap().ran() > 0 {}
            notify::publish(&self.engine).await.unwrap();
        }
    }

    /// The texts the sandbox gateway took for `mobile`, oldest first.
    pub fn texts(&self, mobile: &str) -> Vec<String> {
        self.sms
            .messages(Some(mobile))
            .into_iter()
            .map(|m| m.text)
            .collect()
    }
}

/// A mail server on loopback that takes every message (refusing recipients at
/// `refused.example`); the port, and the messages as received, headers and body.
pub async fn smtp_listener() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 test\r\n"
                    } else if upper.starts_with("RCPT") && upper.contains("REFUSED.EXAMPLE") {
                        b"550 no such user\r\n"
                    } else if upper.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go on\r\n"
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

/// Sends mail through the listener on `port`.
pub fn smtp_mailer(port: u16) -> Arc<dyn Mailer> {
    Arc::new(
        SmtpMailer::new(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "Lender <noreply@lender.example>".into(),
            timeout: StdDuration::from_secs(5),
        })
        .unwrap(),
    )
}
