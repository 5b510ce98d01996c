//! Several `lendcore serve` processes on one database: a credit line is never overdrawn by
//! drawdowns confirmed concurrently through all of them.

mod common;

use lendcore_testkit::store_test;
use serde_json::{Value, json};

use common::Server;

fn start(db_url: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    common::start(db_url, dir.path(), &[("LENDCORE_JOBS__ENABLED", "false")])
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = http
        .post(url)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

store_test! {
    async fn drawdowns_confirmed_through_several_processes_never_overdraw_a_line(db: &TestDb) {
        let servers: Vec<Server> = (0..3).map(|_| start(&db.url)).collect();
        let dir = tempfile::tempdir().unwrap();
        let http = common::client(&common::api_key(&db.url, dir.path()));
        let first = &servers[0].base;
        let (status, _) = post(&http, format!("{first}/v1/products"), json!({
            "code": "cash", "name": "Cash", "kind": "installment", "currency": "CNY",
            "terms": {
                "amount": {"min_minor": 100000, "max_minor": 5000000},
                "terms": {"unit": "month", "options": [12]},
                "rate": {"basis": "annual", "value": "0.18"},
                "repayment_method": "equal_installment",
                "penalty_daily_rate": "0.0005", "grace_days": 3
            }
        })).await;
        assert_eq!(status, 201);
        let until = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
        let (status, line) = post(&http, format!("{first}/v1/credit-lines"), json!({
            "borrower_id": "b-1", "currency": "CNY", "limit_minor": 3_000_000,
            "valid_until": until
        })).await;
        assert_eq!(status, 201);
        let line_id = line["id"].as_str().unwrap().to_owned();

        let mut tokens = Vec::new();
        for i in 0..9 {
            let base = &servers[i % 3].base;
            let (status, quoted) = post(&http, format!("{base}/v1/drawdowns/quotes"), json!({
                "line_id": line_id, "product_code": "cash", "amount_minor": 1_000_000,
                "term": 12, "account": "acct-1"
            })).await;
            assert_eq!(status, 201, "{quoted}");
            tokens.push((servers[(i + 1) % 3].base.clone(), quoted["confirmation_token"].as_str().unwrap().to_owned()));
        }
        let confirms = tokens.into_iter().map(|(base, token)| {
            let http = http.clone();
            tokio::spawn(async move {
                loop {
                    let (status, body) = post(&http, format!("{base}/v1/drawdowns/confirm"), json!({"confirmation_token": token})).await;
                    if status == 503 {
                        continue;
                    }
                    assert_eq!(status, 200, "{body}");
                    return body["drawdown"]["status"]["state"].as_str().unwrap().to_owned();
                }
            })
        });
        let states: Vec<String> = futures::future::join_all(confirms).await.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(states.iter().filter(|s| *s == "disbursing").count(), 3, "{states:?}");
        assert_eq!(states.iter().filter(|s| *s == "refused").count(), 6, "{states:?}");
        let view: Value = http.get(format!("{first}/v1/credit-lines/{line_id}")).send().await.unwrap().json().await.unwrap();
        assert_eq!((view["held_minor"].as_i64(), view["available_minor"].as_i64()), (Some(3_000_000), Some(0)));
    }
}
