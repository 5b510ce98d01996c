//! The credit bureau client against a real local listener (wiremock): a report, no file, and
//! every way of being unavailable (an error status, a deadline passed, an unreadable or
//! incomplete answer, nobody listening); and the sandbox bureau's script.

use std::time::Duration;

use lendcore_connectors::bureau::{
    BureauReport, BureauSubject, CreditBureau, HttpCreditBureau, Inquiry, SandboxBureau,
};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn subject(name: &str) -> BureauSubject {
    BureauSubject {
        reference: "decision-1".into(),
        name: name.into(),
        resident_id: "11010519491231002X".into(),
    }
}

#[tokio::test]
async fn the_http_bureau_reads_reports_and_names_every_failure() {
    let bureau = MockServer::start().await;
    let answer = |name: &str, template: ResponseTemplate| {
        Mock::given(method("POST"))
            .and(path("/v1/inquiries"))
            .and(header("authorization", "Bearer bureau-key"))
            .and(body_partial_json(json!({
                "name": name, "resident_id": "11010519491231002X", "reference": "decision-1"
            })))
            .respond_with(template)
    };
    let ok = |body: serde_json::Value| ResponseTemplate::new(200).set_body_json(body);
    for (name, template) in [
        (
            "found",
            ok(
                json!({"found": true, "lenders_open": 2, "exposure_minor": 1_200_000,
            "inquiries_3m": 3, "worst_delinquency_days": 15}),
            ),
        ),
        (
            "never-late",
            ok(json!({"found": true, "lenders_open": 0, "exposure_minor": 0, "inquiries_3m": 1})),
        ),
        ("thin", ok(json!({"found": false}))),
        ("down", ResponseTemplate::new(503)),
        (
            "slow",
            ok(json!({"found": false})).set_delay(Duration::from_millis(800)),
        ),
        (
            "garbled",
            ResponseTemplate::new(200).set_body_string("<html>"),
        ),
        ("incomplete", ok(json!({"found": true, "lenders_open": 2}))),
        (
            "negative",
            ok(json!({"found": true, "lenders_open": -1, "exposure_minor": 0, "inquiries_3m": 0})),
        ),
    ] {
        answer(name, template).mount(&bureau).await;
    }
    let client = HttpCreditBureau::new(
        "test",
        &bureau.uri(),
        "bureau-key".into(),
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(
        client.inquire(&subject("found")).await,
        Inquiry::Found(BureauReport {
            lenders_open: 2,
            exposure_minor: 1_200_000,
            inquiries_3m: 3,
            worst_delinquency_days: Some(15),
        })
    );
    let Inquiry::Found(report) = client.inquire(&subject("never-late")).await else {
        panic!("a report without delinquency history is still a report")
    };
    assert_eq!(report.worst_delinquency_days, None);
    assert_eq!(client.inquire(&subject("thin")).await, Inquiry::NoFile);
    for (name, says) in [
        ("down", "503"),
        ("slow", "deadline"),
        ("garbled", "unreadable"),
        ("incomplete", "lacks a figure"),
        ("negative", "negative"),
    ] {
        match client.inquire(&subject(name)).await {
            Inquiry::Unavailable { detail } => assert!(detail.contains(says), "{name}: {detail}"),
            other => panic!("{name}: {other:?}"),
        }
    }

    let nobody = HttpCreditBureau::new(
        "test",
        "http://127.0.0.1:9",
        "bureau-key".into(),
        Duration::from_millis(300),
    )
    .unwrap();
    assert!(matches!(
        nobody.inquire(&subject("found")).await,
        Inquiry::Unavailable { .. }
    ));
}

#[tokio::test]
async fn the_sandbox_bureau_follows_its_script() {
    let sandbox = SandboxBureau;
    assert!(matches!(
        sandbox.inquire(&subject("Wang bureau-down")).await,
        Inquiry::Unavailable { .. }
    ));
    assert!(matches!(
        sandbox.inquire(&subject("Wang bureau-slow")).await,
        Inquiry::Unavailable { .. }
    ));
    assert_eq!(
        sandbox.inquire(&subject("Wang bureau-thin")).await,
        Inquiry::NoFile
    );
    let Inquiry::Found(risky) = sandbox.inquire(&subject("Wang bureau-risky")).await else {
        panic!()
    };
    assert!(risky.lenders_open > 5 && risky.worst_delinquency_days > Some(90));
    let Inquiry::Found(clean) = sandbox.inquire(&subject("张三")).await else {
        panic!()
    };
    assert_eq!(clean.worst_delinquency_days, Some(0));
}
