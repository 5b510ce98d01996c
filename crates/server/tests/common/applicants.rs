//! An applicant's way through the API: a server with everything an application needs, the
//! form's answers, a submission, and verification by a code sent to the applicant's number.

use std::sync::Arc;

use chrono::Duration;
use lendcore_connectors::identity::SandboxIdentityProvider;
use lendcore_connectors::sms::{HttpSmsConfig, HttpSmsGateway};
use lendcore_engine::Engine;
use lendcore_engine::notify::Notifications;
use lendcore_server::HttpLimits;
use lendcore_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::MockServer;

use super::{Api, Reply, last_code};

pub const MOBILE: &str = "13812345678";
pub const LINK_BASE: &str = "https://app.lender.example/open?link=";

/// A server with an SMS gateway (the mock `gateway`), the sandbox identity provider and links,
/// to which `customise` adds (a bureau, say).
pub async fn api_with_everything_and(
    db: &TestDb,
    gateway: &MockServer,
    customise: impl FnOnce(Engine) -> Engine,
) -> Api {
    let sms = HttpSmsGateway::new(HttpSmsConfig {
        base_url: gateway.uri(),
        api_key: "k".into(),
        timeout: std::time::Duration::from_secs(5),
    })
    .unwrap();
    Api::start_with(db, HttpLimits::default(), |engine| {
        let engine = engine
            .with_sms(Arc::new(sms))
            .with_identity(Arc::new(SandboxIdentityProvider))
            .with_notifications(Notifications {
                link_base_url: Some(LINK_BASE.to_owned()),
                ..Notifications::default()
            });
        customise(engine)
    })
    .await
}

pub async fn api_with_everything(db: &TestDb, gateway: &MockServer) -> Api {
    api_with_everything_and(db, gateway, |engine| engine).await
}

pub async fn call(api: &Api, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    api.as_caller(method, path, Some(token), body.as_ref())
        .await
}

pub fn answers(name: &str) -> Value {
    json!({
        "name": name, "resident_id": "11010519491231002X", "mobile": MOBILE,
        "email": "zhang@example.com", "bank_account": "6222020200112233445",
        "requested_limit_minor": 5_000_000, "monthly_income_minor": 1_500_000,
        "employer": "Acme", "purpose": "working capital"
    })
}

/// A draft filled in over two steps and submitted; the application's id.
pub async fn submitted(api: &Api, token: &str, name: &str) -> String {
    submitted_with(api, token, answers(name)).await
}

/// A draft filled in with `answers` and submitted; the application's id.
pub async fn submitted_with(api: &Api, token: &str, answers: Value) -> String {
    let draft = call(api, "POST", "/v1/applications", token, None).await;
    assert_eq!(draft.status, StatusCode::CREATED, "{:?}", draft.body);
    let id = draft.body["id"].as_str().unwrap().to_owned();
    let saved = call(
        api,
        "PATCH",
        &format!("/v1/applications/{id}"),
        token,
        Some(json!({"revision": 1, "answers": answers})),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    // Asked in Chinese: the borrower it registers is written to in Chinese.
    let submit = format!("/v1/applications/{id}/submit");
    let done = Reply::checked(
        "POST",
        &submit,
        api.http
            .post(format!("{}{submit}", api.base))
            .bearer_auth(token)
            .header("accept-language", "zh-CN,zh;q=0.9")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.body["state"], "verifying", "{:?}", done.body);
    let borrower_id = done.body["borrower_id"].as_str().unwrap();
    let (_, borrower) = api.get(&format!("/v1/borrowers/{borrower_id}")).await;
    assert_eq!(borrower["language"], "zh-Hans", "{borrower}");
    id
}

/// Verifies by a code sent to the application's number.
pub async fn verify_by_sms(api: &Api, gateway: &MockServer, token: &str, id: &str) -> Reply {
    verify_by_sms_at(api, gateway, token, id, MOBILE).await
}

/// Verifies by a code sent to `mobile`, the application's number.
pub async fn verify_by_sms_at(
    api: &Api,
    gateway: &MockServer,
    token: &str,
    id: &str,
    mobile: &str,
) -> Reply {
    // One code a minute per number: the sign-in code was the last.
    api.clock.advance(Duration::seconds(61));
    let sent = call(
        api,
        "POST",
        &format!("/v1/applications/{id}/verification/code"),
        token,
        None,
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    let code = last_code(gateway, mobile).await;
    call(api, "POST", &format!("/v1/applications/{id}/verification"), token, Some(json!({
        "method": "sms_otp", "evidence": {"challenge_id": sent.body["challenge_id"], "code": code}
    }))).await
}
