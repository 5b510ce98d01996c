//! The HTTP channel client against the sandbox channel, over real HTTP, for every fault mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use lendcore_connectors::channel::protocol::{self, PayoutState, PayoutStatus};
use lendcore_connectors::channel::sandbox::{Callback, Sandbox, SandboxConfig};
use lendcore_connectors::channel::{
    HttpChannel, HttpChannelConfig, PaymentChannel, Payout, QueryOutcome, SubmitOutcome,
};
use lendcore_domain::money::Currency;
use lendcore_domain::reasons::Reason;

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn sandbox(callback: Option<Callback>) -> (Arc<Sandbox>, HttpChannel) {
    let sandbox = Sandbox::new(SandboxConfig {
        hang: Duration::from_secs(2),
        callback,
    });
    let url = listen(sandbox.router()).await;
    let channel = client(&url);
    (sandbox, channel)
}

fn client(url: &str) -> HttpChannel {
    HttpChannel::new(HttpChannelConfig {
        id: "sandbox".into(),
        base_url: url.into(),
        api_key: "test-key".into(),
        timeout: Duration::from_millis(400),
    })
    .unwrap()
}

fn payout(reference: &str, account: &str) -> Payout {
    Payout {
        reference: reference.into(),
        account: account.into(),
        amount_minor: 990_000,
        currency: Currency::Cny,
    }
}

fn succeeded(reference: &str) -> QueryOutcome {
    QueryOutcome::Succeeded {
        channel_reference: format!("sbx-{reference}"),
        amount_minor: 990_000,
        currency: Currency::Cny,
    }
}

#[tokio::test]
async fn a_normal_payout_is_accepted_once_and_succeeds() {
    let (sandbox, channel) = sandbox(None).await;
    let p = payout("p1", "acct-1");
    let first = channel.submit(&p).await;
    assert_eq!(
        first,
        SubmitOutcome::Accepted {
            channel_reference: "sbx-p1".into()
        }
    );
    assert_eq!(
        channel.submit(&p).await,
        first,
        "the same reference again: the same answer"
    );
    assert_eq!(channel.query("p1").await.unwrap(), succeeded("p1"));
    assert!(sandbox.accepted("p1"));
    // Another payout under the same reference is not "rejected" (that would mean "not paid"):
    // it is unknown until asked.
    let clash = channel
        .submit(&Payout {
            amount_minor: 1,
            ..p
        })
        .await;
    assert!(matches!(clash, SubmitOutcome::Unknown { .. }), "{clash:?}");
    assert_eq!(channel.query("nope").await.unwrap(), QueryOutcome::NotFound);
}

#[tokio::test]
async fn a_rejection_carries_the_reason_and_nothing_is_paid() {
    let (sandbox, channel) = sandbox(None).await;
    let outcome = channel
        .submit(&payout("p1", "acct-1~reject:channel.account_invalid"))
        .await;
    let SubmitOutcome::Rejected { reason, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(reason, Reason::AccountInvalid);
    assert!(!sandbox.accepted("p1"));
    assert_eq!(channel.query("p1").await.unwrap(), QueryOutcome::NotFound);
}

#[tokio::test]
async fn ambiguous_answers_are_unknown_and_a_query_tells_what_happened() {
    let (_sandbox, channel) = sandbox(None).await;
    let cases = [
        ("p-5xx", "acct~5xx", QueryOutcome::NotFound),
        (
            "p-5xx-paid",
            "acct~5xx-after-accept",
            succeeded("p-5xx-paid"),
        ),
        ("p-timeout", "acct~timeout", succeeded("p-timeout")),
        ("p-lost", "acct~lost-answer", succeeded("p-lost")),
    ];
    for (reference, account, after) in cases {
        let outcome = channel.submit(&payout(reference, account)).await;
        assert!(
            matches!(outcome, SubmitOutcome::Unknown { .. }),
            "{account}: {outcome:?}"
        );
        assert_eq!(channel.query(reference).await.unwrap(), after, "{account}");
    }
}

#[tokio::test]
async fn delayed_and_late_failing_payouts_report_as_they_go() {
    let (_sandbox, channel) = sandbox(None).await;
    assert!(matches!(
        channel.submit(&payout("p1", "acct~delayed:2")).await,
        SubmitOutcome::Accepted { .. }
    ));
    assert_eq!(channel.query("p1").await.unwrap(), QueryOutcome::Pending);
    assert_eq!(channel.query("p1").await.unwrap(), QueryOutcome::Pending);
    assert_eq!(channel.query("p1").await.unwrap(), succeeded("p1"));

    assert!(matches!(
        channel
            .submit(&payout("p2", "acct~fail-later:channel.limit"))
            .await,
        SubmitOutcome::Accepted { .. }
    ));
    let failed = channel.query("p2").await.unwrap();
    assert!(
        matches!(
            failed,
            QueryOutcome::Failed {
                reason: Reason::ChannelLimit,
                ..
            }
        ),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_channel_that_is_not_there_means_nothing_was_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let outcome = client(&url).submit(&payout("p1", "acct")).await;
    assert!(
        matches!(outcome, SubmitOutcome::NotSent { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn callbacks_are_signed_and_a_duplicate_is_sent_when_scripted() {
    let received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let sink = received.clone();
    let receiver = Router::new().route(
        "/callbacks",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
            }
        }),
    );
    let callback_url = format!("{}/callbacks", listen(receiver).await);
    let (_sandbox, channel) = sandbox(Some(Callback {
        url: callback_url,
        secret: b"shared-secret".to_vec(),
    }))
    .await;
    channel
        .submit(&payout("p1", "acct~duplicate-callback"))
        .await;
    for _ in 0..100 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 2, "the scripted duplicate arrived");
    for (headers, body) in received.iter() {
        let timestamp: i64 = headers[protocol::TIMESTAMP_HEADER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let signature = headers[protocol::SIGNATURE_HEADER].to_str().unwrap();
        assert!(protocol::verify(
            b"shared-secret",
            timestamp,
            body,
            signature,
            timestamp,
            300
        ));
        let state: PayoutState = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (state.reference.as_str(), state.status),
            ("p1", PayoutStatus::Succeeded)
        );
    }
}
