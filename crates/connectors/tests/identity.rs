//! The identity provider client against a real local listener (wiremock): passed, failed,
//! and every way of being unavailable; and the sandbox provider's script.

use std::time::Duration;

use lendcore_connectors::identity::{
    HttpIdentityProvider, IdentityProvider, Method, SandboxIdentityProvider, Subject, Verdict,
};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn subject(name: &str) -> Subject {
    Subject {
        reference: "app-1".into(),
        name: name.into(),
        resident_id: "11010519491231002X".into(),
        mobile: "13812345678".into(),
        bank_account: Some("6222020200112233445".into()),
    }
}

#[tokio::test]
async fn the_http_provider_tells_passed_failed_and_unavailable_apart() {
    let provider = MockServer::start().await;
    let answer = |name: &str, template: ResponseTemplate| {
        Mock::given(method("POST"))
            .and(path("/v1/checks"))
            .and(header("authorization", "Bearer id-key"))
            .and(body_partial_json(
                json!({"name": name, "method": "bank_card", "resident_id": "11010519491231002X"}),
            ))
            .respond_with(template)
    };
    answer(
        "pass",
        ResponseTemplate::new(200).set_body_json(json!({"result": "passed"})),
    )
    .mount(&provider)
    .await;
    answer(
        "fail",
        ResponseTemplate::new(200)
            .set_body_json(json!({"result": "failed", "reason": "card holder mismatch"})),
    )
    .mount(&provider)
    .await;
    answer("down", ResponseTemplate::new(503))
        .mount(&provider)
        .await;
    answer(
        "slow",
        ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
    )
    .mount(&provider)
    .await;
    answer("refused", ResponseTemplate::new(400))
        .mount(&provider)
        .await;
    answer(
        "odd",
        ResponseTemplate::new(200).set_body_json(json!({"result": "maybe"})),
    )
    .mount(&provider)
    .await;
    let client = HttpIdentityProvider::new(
        &provider.uri(),
        "id-key".into(),
        vec![Method::BankCard],
        Duration::from_millis(500),
    )
    .unwrap();
    assert_eq!(client.methods(), [Method::BankCard]);
    let check = |name: &'static str| {
        let client = &client;
        async move {
            client
                .check(Method::BankCard, &subject(name), &json!({}))
                .await
        }
    };
    assert_eq!(check("pass").await, Verdict::Passed);
    assert_eq!(
        check("fail").await,
        Verdict::Failed {
            reason: "card holder mismatch".into()
        }
    );
    assert!(
        matches!(check("down").await, Verdict::Unavailable { .. }),
        "a 503 checked nothing"
    );
    for name in ["slow", "odd", "refused"] {
        assert!(
            matches!(check(name).await, Verdict::Inconclusive { .. }),
            "{name}: asked, no verdict"
        );
    }
    let nobody = HttpIdentityProvider::new(
        "http://127.0.0.1:9",
        "k".into(),
        vec![Method::Face],
        Duration::from_millis(500),
    )
    .unwrap();
    assert!(matches!(
        nobody.check(Method::Face, &subject("x"), &json!({})).await,
        Verdict::Unavailable { .. }
    ));
    assert!(
        !format!("{:?}", subject("张三")).contains("张三"),
        "personal data never in a log"
    );
}

#[tokio::test]
async fn the_sandbox_follows_its_script() {
    let sandbox = SandboxIdentityProvider;
    assert_eq!(
        sandbox
            .check(Method::Face, &subject("Li"), &json!({}))
            .await,
        Verdict::Passed
    );
    assert!(matches!(
        sandbox
            .check(Method::BankCard, &subject("Li fail-bank"), &json!({}))
            .await,
        Verdict::Failed { .. }
    ));
    assert!(matches!(
        sandbox
            .check(Method::Face, &subject("Li down-face"), &json!({}))
            .await,
        Verdict::Unavailable { .. }
    ));
    assert_eq!(
        sandbox
            .check(Method::BankCard, &subject("Li down-face"), &json!({}))
            .await,
        Verdict::Passed,
        "only the named method"
    );
}
