//! The SMS gateway client against real local listeners: wiremock for each answer a gateway can
//! give, and the sandbox gateway served over HTTP.

use std::time::Duration;

use lendcore_connectors::sms::{
    HttpSmsConfig, HttpSmsGateway, SandboxSms, Sms, SmsError, SmsGateway,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(base_url: String) -> HttpSmsGateway {
    HttpSmsGateway::new(HttpSmsConfig {
        base_url,
        api_key: "k-1".into(),
        timeout: Duration::from_millis(500),
    })
    .unwrap()
}

fn message(to: &str) -> Sms {
    Sms {
        to: to.into(),
        text: "Your code is 123456".into(),
        reference: "ref-1".into(),
    }
}

#[tokio::test]
async fn accepted_rejected_and_outages_are_told_apart() {
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("authorization", "Bearer k-1"))
        .and(body_json(
            json!({"to": "13812345678", "text": "Your code is 123456", "reference": "ref-1"}),
        ))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"id": "g-9"})))
        .mount(&gateway)
        .await;
    Mock::given(method("POST"))
        .and(body_json(
            json!({"to": "13800000000", "text": "Your code is 123456", "reference": "ref-1"}),
        ))
        .respond_with(ResponseTemplate::new(422).set_body_string("bad number"))
        .mount(&gateway)
        .await;
    Mock::given(method("POST"))
        .and(body_json(
            json!({"to": "13899999999", "text": "Your code is 123456", "reference": "ref-1"}),
        ))
        .respond_with(ResponseTemplate::new(502))
        .mount(&gateway)
        .await;
    Mock::given(method("POST"))
        .and(body_json(
            json!({"to": "13877777777", "text": "Your code is 123456", "reference": "ref-1"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&gateway)
        .await;
    Mock::given(method("POST"))
        .and(body_json(
            json!({"to": "13866666666", "text": "Your code is 123456", "reference": "ref-1"}),
        ))
        .respond_with(ResponseTemplate::new(429))
        .mount(&gateway)
        .await;
    let sms = client(gateway.uri());
    assert_eq!(
        sms.send(&message("13812345678")).await,
        Ok("g-9".to_owned())
    );
    assert!(
        matches!(sms.send(&message("13800000000")).await, Err(SmsError::Rejected(d)) if d.contains("422") && !d.contains("bad number")),
        "refused, keeping the status and not the gateway's words"
    );
    assert!(matches!(
        sms.send(&message("13899999999")).await,
        Err(SmsError::Unavailable(_))
    ));
    assert!(
        matches!(
            sms.send(&message("13877777777")).await,
            Err(SmsError::Unavailable(_))
        ),
        "a timeout"
    );
    assert!(
        matches!(
            sms.send(&message("13866666666")).await,
            Err(SmsError::Unavailable(_))
        ),
        "throttled is not refused"
    );
    let nobody = client("http://127.0.0.1:9".into());
    assert!(matches!(
        nobody.send(&message("13812345678")).await,
        Err(SmsError::Unavailable(_))
    ));
    assert!(
        !format!("{:?}", message("1")).contains("123456"),
        "texts never reach a log"
    );
}

#[tokio::test]
async fn the_sandbox_keeps_what_it_accepts_and_rehearses_refusals_and_outages() {
    let sandbox = SandboxSms::new(Some("secret".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = sandbox.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sms = HttpSmsGateway::new(HttpSmsConfig {
        base_url: base.clone(),
        api_key: "secret".into(),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    sms.send(&message("13812345678")).await.unwrap();
    assert!(matches!(
        sms.send(&message("13800000000")).await,
        Err(SmsError::Rejected(_))
    ));
    assert!(matches!(
        sms.send(&message("13800009999")).await,
        Err(SmsError::Unavailable(_))
    ));
    assert_eq!(sandbox.messages(None).len(), 1);
    let inbox: Vec<serde_json::Value> = reqwest::Client::new()
        .get(format!("{base}/v1/messages?to=13812345678"))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox[0]["text"], "Your code is 123456");
    let stranger = reqwest::get(format!("{base}/v1/messages")).await.unwrap();
    assert_eq!(stranger.status(), 401, "the inbox is not open to anyone");
    let wrong_key = client(base);
    assert!(matches!(
        wrong_key.send(&message("13812345678")).await,
        Err(SmsError::Rejected(_))
    ));
}
