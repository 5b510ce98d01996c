//! What the engine's test binaries share: the sandbox channel over real HTTP, a cash product
//! and a credit line.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use lendcore_connectors::channel::sandbox::{Sandbox, SandboxConfig};
use lendcore_connectors::channel::{HttpChannel, HttpChannelConfig, PaymentChannel};
use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::GrantInput;
use lendcore_domain::product::{NewProductInput, ProductKind};
use lendcore_engine::{Engine, credit_lines, products};

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
