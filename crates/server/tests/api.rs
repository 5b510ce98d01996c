//! The HTTP API over real sockets, on both stores.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use lendcore_server::HttpLimits;
use lendcore_testkit::store_test;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Api, Reply};

fn terms() -> Value {
    json!({
        "amount": {"min_minor": 100000, "max_minor": 5000000},
        "terms": {"unit": "month", "options": [3, 6, 12]},
        "rate": {"basis": "annual", "value": "0.18"},
        "repayment_method": "equal_installment",
        "fees": [{"code": "service", "timing": "upfront", "fixed_minor": 1000}],
        "penalty_daily_rate": "0.0005",
        "grace_days": 3
    })
}

fn product(code: &str) -> Value {
    json!({
        "code": code,
        "name": "Cash loan",
        "kind": "installment",
        "currency": "CNY",
        "terms": terms(),
    })
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

store_test! {
    async fn products_are_created_versioned_and_retired(db: &TestDb) {
        let api = Api::default(db).await;
        let created = api.send("POST", "/v1/products", None, &product("cash-12m")).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["status"], "active");
        assert_eq!(created.body["current_version"], 1);
        assert!(created.request_id.is_some());

        let (status, got) = api.get("/v1/products/cash-12m").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["versions"][0]["terms"]["rate"]["value"], "0.18");

        let later = api.now() + Duration::days(7);
        let mut cheaper = terms();
        cheaper["rate"]["value"] = json!("0.12");
        let v2 = api
            .send("POST", "/v1/products/cash-12m/versions", None,
                &json!({"terms": cheaper, "effective_from": at(later)}))
            .await;
        assert_eq!(v2.status, StatusCode::CREATED, "{:?}", v2.body);
        assert_eq!(v2.body["versions"][1]["version"], 2);
        assert_eq!(v2.body["current_version"], 1, "version 2 is scheduled, not in effect");

        // A scheduled version can be replaced; an effective one cannot.
        let replaced = api
            .send("PUT", "/v1/products/cash-12m/versions/2", None, &json!({"terms": terms()}))
            .await;
        assert_eq!(replaced.status, StatusCode::OK, "{:?}", replaced.body);
        let refused = api
            .send("PUT", "/v1/products/cash-12m/versions/1", None, &json!({"terms": terms()}))
            .await;
        assert_eq!((refused.status, refused.code()), (StatusCode::CONFLICT, "conflict.product_version_effective"));
        api.clock.set(later);
        let refused = api
            .send("PUT", "/v1/products/cash-12m/versions/2", None, &json!({"terms": terms()}))
            .await;
        assert_eq!(refused.code(), "conflict.product_version_effective");
        let (_, now_v2) = api.get("/v1/products/cash-12m").await;
        assert_eq!(now_v2["current_version"], 2);

        let ends = api.now() + Duration::days(30);
        let retired = api
            .send("POST", "/v1/products/cash-12m/retire", None, &json!({"ends_at": at(ends)}))
            .await;
        assert_eq!(retired.status, StatusCode::OK, "{:?}", retired.body);
        assert_eq!(retired.body["status"], "retiring");
        api.clock.set(ends);
        let (_, gone) = api.get("/v1/products/cash-12m").await;
        assert_eq!(gone["status"], "retired");
        let late = api
            .send("POST", "/v1/products/cash-12m/versions", None, &json!({"terms": terms()}))
            .await;
        assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "conflict.product_retired"));
    }

    async fn products_list_page_by_page(db: &TestDb) {
        let api = Api::default(db).await;
        for code in ["p-c", "p-a", "p-b"] {
            assert_eq!(api.send("POST", "/v1/products", None, &product(code)).await.status, StatusCode::CREATED);
        }
        let (_, first) = api.get("/v1/products?limit=2").await;
        let codes: Vec<_> = first["items"].as_array().unwrap().iter().map(|p| p["code"].clone()).collect();
        assert_eq!(codes, [json!("p-a"), json!("p-b")]);
        assert_eq!(first["next_after"], "p-b");
        let (_, rest) = api.get("/v1/products?limit=2&after=p-b").await;
        assert_eq!(rest["items"].as_array().unwrap().len(), 1);
        assert_eq!(rest["next_after"], Value::Null);
    }

    async fn a_retried_request_replays_and_a_reused_key_conflicts(db: &TestDb) {
        let api = Api::default(db).await;
        let first = api.send("POST", "/v1/products", Some("key-1"), &product("cash")).await;
        assert_eq!(first.status, StatusCode::CREATED);
        assert!(!first.replayed);
        api.clock.advance(Duration::seconds(5));
        let again = api.send("POST", "/v1/products", Some("key-1"), &product("cash")).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert!(again.replayed, "replay is marked");
        assert_eq!(again.body, first.body, "the very same result");

        let other = api.send("POST", "/v1/products", Some("key-1"), &product("other")).await;
        assert_eq!((other.status, other.code()), (StatusCode::CONFLICT, "idempotency.key_reused"));
        assert_eq!(api.product_count().await, 1);

        // The same key on another endpoint is also another request.
        let elsewhere = api
            .send("POST", "/v1/products/cash/retire", Some("key-1"), &json!({"ends_at": at(api.now() + Duration::days(1))}))
            .await;
        assert_eq!(elsewhere.code(), "idempotency.key_reused");
    }

    async fn concurrent_duplicates_create_one_product(db: &TestDb) {
        let api = Arc::new(Api::default(db).await);
        let calls = (0..10).map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                api.send("POST", "/v1/products", Some("dup-key"), &product("cash")).await
            })
        });
        let replies: Vec<Reply> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap()).collect();
        for reply in &replies {
            assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
            assert_eq!(reply.body, replies[0].body);
        }
        assert_eq!(replies.iter().filter(|r| !r.replayed).count(), 1, "one effect, the rest replays");
        assert_eq!(api.product_count().await, 1);
    }

    async fn bad_input_gets_a_4xx_with_a_stable_code_and_writes_nothing(db: &TestDb) {
        let api = Api::start(db, HttpLimits { max_body_bytes: 4096, ..HttpLimits::default() }).await;
        let with = |f: &dyn Fn(&mut Value)| {
            let mut body = product("cash");
            f(&mut body);
            body
        };
        let json_cases: Vec<(&str, Value, &str)> = vec![
            ("wrong type", with(&|b| b["name"] = json!(42)), "validation.wrong_type"),
            ("rate as a float", with(&|b| b["terms"]["rate"]["value"] = json!(0.18)), "validation.wrong_type"),
            ("unknown field", with(&|b| b["colour"] = json!("red")), "validation.unknown_field"),
            ("unknown nested field", with(&|b| b["terms"]["amount"]["avg"] = json!(1)), "validation.unknown_field"),
            ("missing field", json!({"code": "cash"}), "validation.missing_field"),
            ("unknown enum value", with(&|b| b["kind"] = json!("payday")), "validation.invalid_value"),
            ("negative grace days", with(&|b| b["terms"]["grace_days"] = json!(-1)), "validation.invalid_value"),
            ("amount beyond i64", with(&|b| b["terms"]["amount"]["max_minor"] = json!(1e30)), "validation.wrong_type"),
            ("amount out of range", with(&|b| b["terms"]["amount"]["min_minor"] = json!(0)), "validation.amount_out_of_range"),
            ("huge amount", with(&|b| b["terms"]["amount"]["max_minor"] = json!(i64::MAX)), "validation.amount_out_of_range"),
            ("inverted range", with(&|b| b["terms"]["amount"] = json!({"min_minor": 9, "max_minor": 8})), "validation.amount_range_inverted"),
            ("rate out of range", with(&|b| b["terms"]["rate"]["value"] = json!("1.5")), "validation.rate_out_of_range"),
            ("rate not a number", with(&|b| b["terms"]["rate"]["value"] = json!("abc")), "validation.invalid_value"),
            ("term out of range", with(&|b| b["terms"]["terms"]["options"] = json!([0])), "validation.term_out_of_range"),
            ("no terms", with(&|b| b["terms"]["terms"]["options"] = json!([])), "validation.term_options_empty"),
            ("currency", with(&|b| b["currency"] = json!("EUR")), "validation.unsupported_currency"),
            ("bad code", with(&|b| b["code"] = json!("../etc/passwd")), "validation.invalid_product_code"),
            ("empty name", with(&|b| b["name"] = json!("   ")), "validation.invalid_name"),
            ("control characters", with(&|b| b["name"] = json!("a\u{0}b")), "validation.invalid_name"),
            ("kind and method disagree", with(&|b| b["kind"] = json!("revolving")), "validation.method_not_allowed_for_kind"),
            ("in the past", with(&|b| b["effective_from"] = json!("2001-01-01T00:00:00Z")), "validation.effective_from_in_past"),
            ("not a date", with(&|b| b["effective_from"] = json!("tomorrow")), "validation.invalid_value"),
            ("an array, not an object", json!([1, 2]), "validation.wrong_type"),
            ("null", Value::Null, "validation.wrong_type"),
        ];
        for (case, body, code) in json_cases {
            let reply = api.send("POST", "/v1/products", None, &body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}: {:?}", reply.body);
            assert_eq!(reply.code(), code, "{case}: {:?}", reply.body);
            assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}");
            assert!(reply.body["details"].is_object(), "{case}");
        }

        let deep = format!("{}{}", "[".repeat(10_00), "]".repeat(10_00));
        let raw_cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
            ("malformed", "application/json", b"{\"code\": ".to_vec(), StatusCode::BAD_REQUEST, "validation.malformed_json"),
            ("trailing garbage", "application/json", format!("{} x", product("cash")).into_bytes(), StatusCode::BAD_REQUEST, "validation.malformed_json"),
            ("empty body", "application/json", Vec::new(), StatusCode::BAD_REQUEST, "validation.malformed_json"),
            ("not UTF-8", "application/json", vec![0xff, 0xfe, 0x7b], StatusCode::BAD_REQUEST, "validation.malformed_json"),
            ("deep nesting", "application/json", deep.into_bytes(), StatusCode::BAD_REQUEST, "validation.wrong_type"),
            ("huge body", "application/json", vec![b' '; 10_000], StatusCode::PAYLOAD_TOO_LARGE, "validation.body_too_large"),
            ("form body", "application/x-www-form-urlencoded", b"code=cash".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "validation.unsupported_media_type"),
        ];
        for (case, content_type, body, status, code) in raw_cases {
            let reply = api.send_raw("POST", "/v1/products", None, content_type, body).await;
            assert_eq!((reply.status, reply.code()), (status, code), "{case}: {:?}", reply.body);
        }

        let bad_key = api.send("POST", "/v1/products", Some("has space"), &product("cash")).await;
        assert_eq!((bad_key.status, bad_key.code()), (StatusCode::BAD_REQUEST, "idempotency.key_invalid"));

        for (path, code) in [
            ("/v1/products?limit=0", "validation.limit_out_of_range"),
            ("/v1/products?limit=abc", "validation.invalid_query_parameter"),
            ("/v1/products?after=NOT%20A%20CODE", "validation.invalid_product_code"),
            ("/v1/products/NOT%20A%20CODE", "validation.invalid_product_code"),
            ("/v1/jobs?status=zombie", "validation.invalid_job_status"),
        ] {
            let (status, body) = api.get(path).await;
            assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, code), "{path}");
        }
        let (status, body) = api.get("/v1/products/unknown").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.product"));
        let reply = api.send("PUT", "/v1/products/cash/versions/abc", None, &json!({"terms": terms()})).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation.invalid_path_parameter"));
        let reply = api.send("PUT", "/v1/products/cash/versions/99999999999", None, &json!({"terms": terms()})).await;
        assert_eq!(reply.code(), "validation.invalid_path_parameter");

        assert_eq!(api.product_count().await, 0, "nothing was written by any of it");
        let mut read = api.store.begin_read().await.unwrap();
        assert!(read.unpublished_outbox(10).await.unwrap().is_empty());
    }

    async fn an_overloaded_server_sheds_with_503_and_retry_after(db: &TestDb) {
        let api = Arc::new(Api::start(db, HttpLimits {
            max_in_flight: 1,
            max_queued: 0,
            ..HttpLimits::default()
        }).await);
        // Hold the idempotency key of the first request in an open transaction, so the request
        // stays in flight (waiting on it) while the next one arrives.
        let mut blocker = api.store.begin().await.unwrap();
        blocker.claim_idempotency_key(&api.scope, "slow", "fp", api.now()).await.unwrap();
        let send_slow = || {
            let api = api.clone();
            tokio::spawn(async move { api.send("POST", "/v1/products", Some("slow"), &product("slow")).await })
        };
        let mut slow = send_slow();
        // Reads never wait on the held key, so until the slow request occupies the slot they
        // succeed; once it does, they are shed. If a read held the slot when the slow request
        // arrived, the slow one was shed instead: send it again.
        let mut shed = None;
        for _ in 0..500 {
            if slow.is_finished() {
                let lost_race = slow.await.unwrap();
                assert_eq!(lost_race.code(), "system.overloaded", "{lost_race:?}");
                slow = send_slow();
            }
            let reply = api.send("GET", "/v1/products", None, &json!({})).await;
            if reply.status == StatusCode::SERVICE_UNAVAILABLE {
                shed = Some(reply);
                break;
            }
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        let shed = shed.expect("a read is shed while the slow request holds the only slot");
        assert_eq!(shed.code(), "system.overloaded");
        assert_eq!(shed.retry_after.as_deref(), Some("1"));
        let (status, _) = api.get("/healthz").await;
        assert_eq!(status, StatusCode::OK, "probes are never shed");

        blocker.rollback().await.unwrap();
        let slow = slow.await.unwrap();
        assert_eq!(slow.status, StatusCode::CREATED, "{:?}", slow.body);
        assert_eq!(api.product_count().await, 1, "the shed request wrote nothing");
    }

    async fn a_request_past_its_deadline_is_abandoned_and_rolled_back(db: &TestDb) {
        let api = Api::start(db, HttpLimits {
            request_timeout: StdDuration::from_millis(300),
            ..HttpLimits::default()
        }).await;
        let mut blocker = api.store.begin().await.unwrap();
        blocker.claim_idempotency_key(&api.scope, "stuck", "fp", api.now()).await.unwrap();
        let reply = api.send("POST", "/v1/products", Some("stuck"), &product("stuck")).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::SERVICE_UNAVAILABLE, "system.timeout"));
        assert!(reply.retry_after.is_some());
        blocker.rollback().await.unwrap();
        assert_eq!(api.product_count().await, 0);
        let retried = api.send("POST", "/v1/products", Some("stuck"), &product("stuck")).await;
        assert_eq!(retried.status, StatusCode::CREATED, "the client's retry with the same key works: {:?}", retried.body);
    }

    async fn dead_jobs_are_listed_and_redriven_over_http(db: &TestDb) {
        let api = Api::default(db).await;
        db.execute(&format!(
            "INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at_ms, last_error, \
             created_at_ms, updated_at_ms, finished_at_ms) VALUES ('j-dead', 'test.kind', '{{}}', 'dead', 3, 3, {0}, 'boom', {0}, {0}, {0})",
            api.now().timestamp_millis()
        )).await;
        let (status, page) = api.get("/v1/jobs").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"][0]["id"], "j-dead");
        assert_eq!(page["items"][0]["last_error"], "boom");
        let redriven = api.send("POST", "/v1/jobs/j-dead/redrive", Some("r1"), &json!(null)).await;
        assert_eq!(redriven.status, StatusCode::OK, "{:?}", redriven.body);
        assert_eq!(redriven.body["status"], "pending");
        let replay = api.send("POST", "/v1/jobs/j-dead/redrive", Some("r1"), &json!(null)).await;
        assert!(replay.replayed);
        let again = api.send("POST", "/v1/jobs/j-dead/redrive", None, &json!(null)).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict.job_not_dead"));
        let (_, dead) = api.get("/v1/jobs?status=dead").await;
        assert!(dead["items"].as_array().unwrap().is_empty());
    }

    async fn health_readiness_metrics_and_docs_answer(db: &TestDb) {
        let api = Api::default(db).await;
        assert_eq!(api.get("/healthz").await.0, StatusCode::OK);
        assert_eq!(api.get("/readyz").await, (StatusCode::OK, json!({"status": "ready"})));
        api.send("POST", "/v1/products", None, &product("cash")).await;

        let metrics = api.http.get(format!("{}/metrics", api.base)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(r#"http_requests_total{method="POST",route="/v1/products",status="201"}"#), "{metrics}");
        assert!(metrics.contains("http_request_duration_seconds_bucket{"), "latency is a histogram");

        let (status, doc) = api.get("/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        let page = api.http.get(format!("{}/docs/api", api.base)).send().await.unwrap().text().await.unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/v1/products/{code}/versions/{version}"));
        for path in paths.keys() {
            assert!(page.contains(&format!("<code>{path}</code>")), "reference page lacks {path}");
        }
        assert!(page.contains(r#"id="schema-ProductView""#));
        assert!(!page.contains("http://") && !page.contains("https://"), "no external assets");

        db.execute("UPDATE _sqlx_migrations SET version = version + 1000").await;
        let (status, body) = api.get("/readyz").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::SERVICE_UNAVAILABLE, "system.not_ready"));
    }

    async fn request_ids_are_echoed_when_sane_and_replaced_when_not(db: &TestDb) {
        let api = Api::default(db).await;
        let ask = |id: &str| {
            api.http.get(format!("{}/healthz", api.base)).header("x-request-id", id).send()
        };
        let kept = ask("trace-42.a_b").await.unwrap();
        assert_eq!(kept.headers()["x-request-id"], "trace-42.a_b");
        let long = "x".repeat(65);
        for bad in ["has space", "quote\"", long.as_str()] {
            let replaced = ask(bad).await.unwrap();
            let id = replaced.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert_ne!(id, bad);
            assert_eq!(id.len(), 36, "a fresh UUID: {id}");
        }
        let reply = api.send("POST", "/v1/jobs/%00/redrive", None, &json!(null)).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found.job"));
    }

    async fn quotes_price_a_drawdown_and_refuse_what_is_not_offered(db: &TestDb) {
        let api = Api::default(db).await;
        assert_eq!(api.send("POST", "/v1/products", None, &product("cash")).await.status, StatusCode::CREATED);
        let quote = api
            .send("POST", "/v1/quotes", None, &json!({
                "product_code": "cash", "amount_minor": 1000000, "term": 12, "start_date": "2026-01-31"
            }))
            .await;
        assert_eq!(quote.status, StatusCode::OK, "{:?}", quote.body);
        let schedule = &quote.body["schedule"];
        assert_eq!(schedule["installments"].as_array().unwrap().len(), 12);
        assert_eq!(schedule["installments"][0]["due_date"], "2026-02-28");
        assert_eq!(schedule["installments"][0]["total_minor"], 91680);
        assert_eq!(schedule["upfront_fee_minor"], 1000);
        assert_eq!(quote.body["version"], 1);
        assert!(quote.body["apr"]["nominal_annual"].as_str().unwrap().starts_with("0.18"));
        assert_eq!(quote.body["cap_checks"].as_array().unwrap().len(), 2);

        for (body, status, code) in [
            (json!({"product_code": "cash", "amount_minor": 5, "term": 12}), StatusCode::BAD_REQUEST, "validation.amount_out_of_range"),
            (json!({"product_code": "cash", "amount_minor": 1000000, "term": 7}), StatusCode::BAD_REQUEST, "validation.term_not_offered"),
            (json!({"product_code": "cash", "amount_minor": 1000000, "term": 12, "split": "equal_principal"}), StatusCode::BAD_REQUEST, "validation.split_not_allowed"),
            (json!({"product_code": "cash", "amount_minor": 1000000, "term": 12, "start_date": "2026-02-30"}), StatusCode::BAD_REQUEST, "validation.invalid_value"),
            (json!({"product_code": "cash", "amount_minor": 1000000, "term": 12, "version": 9}), StatusCode::NOT_FOUND, "not_found.product_version"),
            (json!({"product_code": "nope", "amount_minor": 1000000, "term": 12}), StatusCode::NOT_FOUND, "not_found.product"),
            (json!({"product_code": "NOPE!", "amount_minor": 1000000, "term": 12}), StatusCode::BAD_REQUEST, "validation.invalid_product_code"),
            (json!({"product_code": "cash", "amount_minor": "lots", "term": 12}), StatusCode::BAD_REQUEST, "validation.wrong_type"),
        ] {
            let reply = api.send("POST", "/v1/quotes", None, &body).await;
            assert_eq!((reply.status, reply.code()), (status, code), "{body}: {:?}", reply.body);
        }

        let ends = api.now() + Duration::days(1);
        api.send("POST", "/v1/products/cash/retire", None, &json!({"ends_at": at(ends)})).await;
        api.clock.set(ends);
        let reply = api.send("POST", "/v1/quotes", None, &json!({"product_code": "cash", "amount_minor": 1000000, "term": 12})).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::CONFLICT, "conflict.product_retired"));
    }

    async fn a_product_whose_terms_break_the_apr_cap_is_refused(db: &TestDb) {
        let api = Api::default(db).await;
        let mut costly = product("costly");
        costly["terms"]["rate"]["value"] = json!("0.30");
        costly["terms"]["fees"] = json!([{"code": "service", "timing": "upfront", "rate": "0.05"}]);
        let reply = api.send("POST", "/v1/products", None, &costly).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation.apr_above_cap"), "{:?}", reply.body);
        assert_eq!(api.product_count().await, 0);
    }

    async fn a_line_granted_in_a_tier_draws_at_the_products_rate_for_that_tier(db: &TestDb) {
        let api = Api::default(db).await;
        // A tier above the binding cap, or with a name no line could carry, is refused with the rest.
        let mut tiered = product("tiered");
        tiered["terms"]["rate_tiers"] = json!({"preferred": "0.12", "subprime": "0.40"});
        let reply = api.send("POST", "/v1/products", None, &tiered).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation.apr_above_cap"), "{:?}", reply.body);
        tiered["terms"]["rate_tiers"] = json!({"preferred": "0.12", "Gold Tier": "0.15", "cheap": "-0.01"});
        let reply = api.send("POST", "/v1/products", None, &tiered).await;
        let fields: Vec<&str> = reply.body["details"]["violations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["terms.rate_tiers.Gold Tier", "terms.rate_tiers.cheap"], "{:?}", reply.body);
        assert_eq!(api.product_count().await, 0);
        tiered["terms"]["rate_tiers"] = json!({"preferred": "0.12"});
        let created = api.send("POST", "/v1/products", None, &tiered).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["versions"][0]["terms"]["rate_tiers"], json!({"preferred": "0.12"}));

        let until = at(api.now() + Duration::days(30));
        let bad = api.send("POST", "/v1/credit-lines", None, &json!({
            "borrower_id": "b-1", "currency": "CNY", "limit_minor": 2_000_000, "rate_tier": "", "valid_until": until
        })).await;
        assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "validation.invalid_rate_tier"));
        let mut rates = Vec::new();
        for (borrower, tier) in [("b-1", json!("preferred")), ("b-2", json!("gold")), ("b-3", Value::Null)] {
            let line = api.send("POST", "/v1/credit-lines", None, &json!({
                "borrower_id": borrower, "currency": "CNY", "limit_minor": 2_000_000, "rate_tier": tier, "valid_until": until
            })).await;
            assert_eq!((line.status, &line.body["rate_tier"]), (StatusCode::CREATED, &tier), "{:?}", line.body);
            let ask = json!({"line_id": line.body["id"], "product_code": "tiered", "amount_minor": 1_000_000, "term": 12, "account": "acct-1"});
            let quoted = api.send("POST", "/v1/drawdowns/quotes", Some(&format!("tier-{borrower}")), &ask).await;
            assert_eq!(quoted.status, StatusCode::CREATED, "{:?}", quoted.body);
            let quote = &quoted.body["drawdown"]["quote"];
            rates.push((quote["rate"].clone(), quote["rate_tier"].clone(), quote["apr"]["nominal_annual"].as_str().unwrap().to_owned()));
            let id = quoted.body["drawdown"]["id"].as_str().unwrap();
            let (_, kept) = api.get(&format!("/v1/drawdowns/{id}")).await;
            assert_eq!(kept["drawdown"]["quote"], *quote, "the drawdown keeps the price it was quoted");
        }
        assert_eq!(
            rates.iter().map(|(rate, tier, _)| (rate.clone(), tier.clone())).collect::<Vec<_>>(),
            [(json!("0.12"), json!("preferred")), (json!("0.18"), Value::Null), (json!("0.18"), Value::Null)],
            "a tier the product does not price draws at the standard rate"
        );
        assert!(rates[0].2 < rates[1].2, "the tier's APR is lower: {rates:?}");
        let priced = api.send("POST", "/v1/quotes", None, &json!({"product_code": "tiered", "amount_minor": 1_000_000, "term": 12, "rate_tier": "preferred"})).await;
        assert_eq!((&priced.body["rate"], &priced.body["rate_tier"]), (&json!("0.12"), &json!("preferred")), "{:?}", priced.body);
        let mistyped = api.send("POST", "/v1/quotes", None, &json!({"product_code": "tiered", "amount_minor": 1_000_000, "term": 12, "rate_tier": "Preferred"})).await;
        assert_eq!((mistyped.status, mistyped.code()), (StatusCode::BAD_REQUEST, "validation.invalid_rate_tier"), "a tier no product could name is refused, not priced at the standard rate");
    }

    async fn credit_lines_are_granted_changed_frozen_and_logged(db: &TestDb) {
        let api = Api::default(db).await;
        let until = at(api.now() + Duration::days(365));
        let granted = api
            .send("POST", "/v1/credit-lines", Some("grant-1"), &json!({
                "borrower_id": "b-1001", "currency": "CNY", "limit_minor": 5_000_000,
                "valid_until": until
            }))
            .await;
        assert_eq!(granted.status, StatusCode::CREATED, "{:?}", granted.body);
        assert_eq!((granted.body["state"].as_str(), granted.body["available_minor"].as_i64()), (Some("active"), Some(5_000_000)));
        let id = granted.body["id"].as_str().unwrap().to_owned();
        let path = |action: &str| format!("/v1/credit-lines/{id}/{action}");

        // A drawdown in flight holds 3,000,000 (the drawdown API arrives with issue #4).
        assert!(id.starts_with("b-1001."), "a line's id names its borrower: {id}");
        let mut uow = api.store.begin_for("b-1001").await.unwrap();
        assert!(uow.place_hold(&id, 3_000_000, api.now()).await.unwrap());
        uow.commit().await.unwrap();
        let below = api.send("POST", &path("limit"), None, &json!({"limit_minor": 2_999_999})).await;
        assert_eq!((below.status, below.code()), (StatusCode::CONFLICT, "conflict.limit_below_usage"));
        let raised = api.send("POST", &path("limit"), None, &json!({"limit_minor": 8_000_000})).await;
        assert_eq!(raised.status, StatusCode::OK, "{:?}", raised.body);
        assert_eq!(raised.body["available_minor"], 5_000_000);

        let freeze = json!({"reason": "credit.overdue", "note": "two missed"});
        let frozen = api.send("POST", &path("freeze"), Some("freeze-1"), &freeze).await;
        assert_eq!(frozen.status, StatusCode::OK, "{:?}", frozen.body);
        assert_eq!((frozen.body["state"].as_str(), frozen.body["blocked_by"].as_str()), (Some("frozen"), Some("credit.overdue")));
        assert_eq!(frozen.body["available_minor"], 0);
        assert!(api.send("POST", &path("freeze"), Some("freeze-1"), &freeze).await.replayed);
        let again = api.send("POST", &path("freeze"), None, &freeze).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict.line_frozen"));
        let thawed = api.send("POST", &path("unfreeze"), None, &json!({})).await;
        assert_eq!(thawed.body["state"], "active");
        let closed = api.send("POST", &path("close"), None, &json!({"reason": "credit.line_closed"})).await;
        assert_eq!(closed.body["state"], "closed");

        let (status, log) = api.get(&path("events")).await;
        assert_eq!(status, StatusCode::OK);
        let kinds: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["granted", "increased", "frozen", "unfrozen", "closed"]);
        assert_eq!(log["items"][2]["reason"], "credit.overdue");
        assert_eq!(log["items"][2]["note"], "two missed");
        let (_, lines) = api.get("/v1/credit-lines?borrower_id=b-1001").await;
        assert_eq!(lines["items"].as_array().unwrap().len(), 1);
    }

    async fn credit_line_input_is_checked_and_nothing_is_written_when_wrong(db: &TestDb) {
        let api = Api::default(db).await;
        let until = at(api.now() + Duration::days(30));
        for (body, code) in [
            (json!({"borrower_id": "b 1", "currency": "CNY", "limit_minor": 1, "valid_until": until}), "validation.invalid_borrower_id"),
            (json!({"borrower_id": "b1", "currency": "CNY", "limit_minor": -5, "valid_until": until}), "validation.amount_out_of_range"),
            (json!({"borrower_id": "b1", "currency": "CNY", "limit_minor": 1, "valid_until": "2001-01-01T00:00:00Z"}), "validation.validity_window_invalid"),
            (json!({"borrower_id": "b1", "limit_minor": 1, "valid_until": until}), "validation.missing_field"),
        ] {
            let reply = api.send("POST", "/v1/credit-lines", None, &body).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, code), "{body}");
        }
        let (_, lines) = api.get("/v1/credit-lines?borrower_id=b1").await;
        assert!(lines["items"].as_array().unwrap().is_empty());

        let granted = api.send("POST", "/v1/credit-lines", None, &json!({
            "borrower_id": "b1", "currency": "CNY", "limit_minor": 100, "valid_until": until
        })).await;
        let id = granted.body["id"].as_str().unwrap().to_owned();
        let unknown_reason = api.send("POST", &format!("/v1/credit-lines/{id}/freeze"), None, &json!({"reason": "credit.bored"})).await;
        assert_eq!(unknown_reason.code(), "validation.invalid_value");
        let wrong_kind = api.send("POST", &format!("/v1/credit-lines/{id}/freeze"), None, &json!({"reason": "link.expired"})).await;
        assert_eq!(wrong_kind.code(), "validation.reason_not_allowed");
        let (status, body) = api.get("/v1/credit-lines/no-such-line").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.credit_line"));
        // A missing or mistyped query parameter is named, as a body's field is.
        let (status, body) = api.get("/v1/credit-lines").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "validation.missing_parameter"));
        assert_eq!(body["details"]["parameter"], "borrower_id", "{body}");
        let (status, body) = api.get("/v1/products?limit=abc").await;
        assert_eq!((status, body["details"]["parameter"].as_str()), (StatusCode::BAD_REQUEST, Some("limit")), "{body}");
        let reply = api.send("POST", "/v1/credit-lines/%00/limit", None, &json!({"limit_minor": 5})).await;
        assert_eq!(reply.code(), "not_found.credit_line");
    }

    async fn drawdowns_are_quoted_confirmed_and_refused_with_reasons_over_http(db: &TestDb) {
        let api = Api::default(db).await;
        api.send("POST", "/v1/products", None, &product("cash")).await;
        let line = api.send("POST", "/v1/credit-lines", None, &json!({
            "borrower_id": "b-7", "currency": "CNY", "limit_minor": 2_000_000,
            "valid_until": at(api.now() + Duration::days(30))
        })).await;
        let line_id = line.body["id"].as_str().unwrap().to_owned();
        let ask = json!({"line_id": line_id, "product_code": "cash", "amount_minor": 1_000_000, "term": 12, "account": "acct-1"});
        let quoted = api.send("POST", "/v1/drawdowns/quotes", Some("q-1"), &ask).await;
        assert_eq!(quoted.status, StatusCode::CREATED, "{:?}", quoted.body);
        assert!(api.send("POST", "/v1/drawdowns/quotes", Some("q-1"), &ask).await.replayed);
        let token = quoted.body["confirmation_token"].as_str().unwrap().to_owned();
        let confirmed = api.send("POST", "/v1/drawdowns/confirm", Some("c-1"), &json!({"confirmation_token": token})).await;
        assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
        assert_eq!(confirmed.body["drawdown"]["status"]["state"], "disbursing");
        let id = confirmed.body["drawdown"]["id"].as_str().unwrap().to_owned();
        let (status, view) = api.get(&format!("/v1/drawdowns/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(view["timeline"].as_array().unwrap().len(), 2);
        // The confirmation built its timeline from what it read and wrote: as stored.
        assert_eq!(confirmed.body["timeline"], view["timeline"]);

        let twice = api.send("POST", "/v1/drawdowns/confirm", Some("c-2"), &json!({"confirmation_token": token})).await;
        assert_eq!((twice.status, twice.code()), (StatusCode::CONFLICT, "conflict.drawdown_state"));
        // A call that moves money without a key is refused before anything is read or written.
        let keyless = api.send("POST", "/v1/drawdowns/confirm", None, &json!({"confirmation_token": token})).await;
        assert_eq!((keyless.status, keyless.code()), (StatusCode::BAD_REQUEST, "idempotency.key_required"));
        let keyless = api.send("POST", &format!("/v1/loans/{id}/repayments"), None, &json!({"amount_minor": 100})).await;
        assert_eq!((keyless.status, keyless.code()), (StatusCode::BAD_REQUEST, "idempotency.key_required"));
        // Settling by hand is for a payout in review, by an operator, with a key.
        let review = format!("/v1/drawdowns/{id}/review/ask");
        let keyless = api.send("POST", &review, None, &json!({})).await;
        assert_eq!((keyless.status, keyless.code()), (StatusCode::BAD_REQUEST, "idempotency.key_required"));
        let not_in_review = api.send("POST", &review, Some("rv-1"), &json!({})).await;
        assert_eq!((not_in_review.status, not_in_review.code()), (StatusCode::CONFLICT, "conflict.drawdown_state"));
        let by_key = api.send("POST", &format!("/v1/drawdowns/{id}/review/paid"), Some("rv-2"),
            &json!({"channel_id": "sandbox", "channel_reference": "x", "note": "seen"})).await;
        assert_eq!((by_key.status, by_key.code()), (StatusCode::FORBIDDEN, "auth.operator_required"));
        let unknown = api.send("POST", "/v1/drawdowns/confirm", Some("c-3"), &json!({"confirmation_token": "nope"})).await;
        assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found.confirmation"));
        let too_much = api.send("POST", "/v1/drawdowns/quotes", None, &json!({
            "line_id": line_id, "product_code": "cash", "amount_minor": 1_500_000, "term": 12, "account": "acct-1"
        })).await;
        assert_eq!((too_much.status, too_much.code()), (StatusCode::UNPROCESSABLE_ENTITY, "credit.limit_exceeded"));
        api.send("POST", &format!("/v1/credit-lines/{line_id}/freeze"), None, &json!({"reason": "credit.overdue"})).await;
        let frozen = api.send("POST", "/v1/drawdowns/quotes", None, &ask).await;
        assert_eq!((frozen.status, frozen.code()), (StatusCode::UNPROCESSABLE_ENTITY, "credit.overdue"));
        assert_eq!(frozen.body["details"]["next_action"], "repay_overdue");
        assert!(frozen.body["details"]["message_zh"].as_str().is_some());
        // The refusal speaks the language the borrower's app asks for.
        for (accept, language) in [("zh-CN,en;q=0.8", "zh-Hans"), ("en;q=0.4, zh;q=0.9", "zh-Hans"), ("fr", "en")] {
            let response = api.http.post(format!("{}/v1/drawdowns/quotes", api.base))
                .header("accept-language", accept).json(&ask).send().await.unwrap();
            assert_eq!(response.headers()["content-language"], language, "{accept}");
            assert_eq!(response.headers()["vary"], "accept-language");
            let body: Value = response.json().await.unwrap();
            let expected = if language == "en" { &body["details"]["message_en"] } else { &body["details"]["message_zh"] };
            assert_eq!(&body["message"], expected, "{accept}");
        }
        let (status, body) = api.get("/v1/drawdowns/%00").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.drawdown"));
        let not_paid_out = api.send("POST", &format!("/v1/loans/{id}/repayments"), Some("r-1"), &json!({"amount_minor": 100})).await;
        assert_eq!((not_paid_out.status, not_paid_out.code()), (StatusCode::CONFLICT, "conflict.loan_not_active"));
        let bad_mode = api.send("POST", &format!("/v1/loans/{id}/repayments"), Some("r-2"), &json!({"amount_minor": 100, "mode": "all"})).await;
        assert_eq!(bad_mode.code(), "validation.invalid_value");
        let no_loan = api.send("POST", "/v1/loans/nope/repayments", Some("r-3"), &json!({"amount_minor": 100})).await;
        assert_eq!((no_loan.status, no_loan.code()), (StatusCode::NOT_FOUND, "not_found.loan"));
        let callback = api.send("POST", "/v1/channels/unknown/callbacks", None, &json!({"reference": "x"})).await;
        assert_eq!((callback.status, callback.code()), (StatusCode::NOT_FOUND, "not_found.channel"));
    }

    async fn the_timeline_of_a_loan_is_served_and_unknown_loans_are_404(db: &TestDb) {
        let api = Api::default(db).await;
        api.send("POST", "/v1/products", None, &product("cash")).await;
        let line = api.send("POST", "/v1/credit-lines", None, &json!({
            "borrower_id": "b-8", "currency": "CNY", "limit_minor": 2_000_000,
            "valid_until": at(api.now() + Duration::days(30))
        })).await;
        let ask = json!({"line_id": line.body["id"], "product_code": "cash", "amount_minor": 1_000_000, "term": 12, "account": "acct-1"});
        let quoted = api.send("POST", "/v1/drawdowns/quotes", None, &ask).await;
        let id = quoted.body["drawdown"]["id"].as_str().unwrap().to_owned();
        api.send("POST", "/v1/drawdowns/confirm", Some("c-1"), &json!({"confirmation_token": quoted.body["confirmation_token"]})).await;
        let (status, timeline) = api.get(&format!("/v1/loans/{id}/timeline")).await;
        assert_eq!(status, StatusCode::OK, "{timeline}");
        assert_eq!(timeline["state"], "disbursing");
        let kinds: Vec<&str> = timeline["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"state_change") && kinds.contains(&"posting") && kinds.contains(&"notification"), "{kinds:?}");
        for path in ["/v1/loans/nope/timeline", "/v1/loans/%00/timeline"] {
            let (status, body) = api.get(path).await;
            assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.loan"), "{path}");
        }
    }

    async fn maintenance_windows_are_scheduled_listed_cancelled_and_bad_ones_refused(db: &TestDb) {
        let api = Api::default(db).await;
        let start = api.now() + Duration::hours(2);
        let body = json!({"starts_at": at(start), "ends_at": at(start + Duration::hours(1)),
            "message": "Bank year-end close"});
        let created = api.send("POST", "/v1/maintenance-windows", Some("mw-1"), &body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["status"], "scheduled");
        assert!(api.send("POST", "/v1/maintenance-windows", Some("mw-1"), &body).await.replayed);
        let id = created.body["id"].as_str().unwrap().to_owned();
        for (bad, code) in [
            (json!({"starts_at": at(start), "ends_at": at(start - Duration::hours(1)), "message": "m"}), "validation.window_invalid"),
            (json!({"starts_at": at(start), "ends_at": at(start + Duration::hours(100)), "message": "m"}), "validation.window_too_long"),
            (json!({"starts_at": at(start), "ends_at": at(start + Duration::hours(1)), "message": ""}), "validation.invalid_message"),
            (json!({"starts_at": "tomorrow", "ends_at": at(start), "message": "m"}), "validation.invalid_value"),
            (json!({"starts_at": at(start), "message": "m"}), "validation.missing_field"),
        ] {
            let reply = api.send("POST", "/v1/maintenance-windows", None, &bad).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, code), "{bad}");
        }
        let (_, page) = api.get("/v1/maintenance-windows").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "nothing written by the bad ones");
        let cancelled = api.send("POST", &format!("/v1/maintenance-windows/{id}/cancel"), None, &json!({})).await;
        assert_eq!((cancelled.status, cancelled.body["status"].as_str()), (StatusCode::OK, Some("cancelled")));
        let again = api.send("POST", &format!("/v1/maintenance-windows/{id}/cancel"), None, &json!({})).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict.maintenance_window_state"));
        let (status, body) = api.get("/v1/maintenance-windows/nope").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.maintenance_window"));
    }

    async fn borrowers_are_registered_masked_changed_and_bad_input_refused(db: &TestDb) {
        let api = Api::default(db).await;
        let zhang = json!({"kind": "individual", "name": "张三", "resident_id": "11010519491231002X",
            "mobile": "13812345678", "address": "北京市朝阳区建国路88号", "language": "zh-Hans"});
        let created = api.send("POST", "/v1/borrowers", Some("b-1"), &zhang).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["language"], "zh-Hans");
        assert_eq!(created.body["personal"]["resident_id"], "110***********002X");
        assert!(!created.body.to_string().contains("11010519491231002X"), "never in clear");
        assert!(api.send("POST", "/v1/borrowers", Some("b-1"), &zhang).await.replayed);
        let again = api.send("POST", "/v1/borrowers", None, &zhang).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict.borrower_exists"));
        let id = created.body["id"].as_str().unwrap().to_owned();
        // Support finds them by number, identity number or credit code: masked, audited.
        for by in [json!({"mobile": "138 1234 5678"}), json!({"resident_id": "11010519491231002x"})] {
            let found = api.send("POST", "/v1/borrowers/search", None, &by).await;
            assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
            let items = found.body["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{by}");
            assert_eq!(items[0]["id"], id.as_str());
            assert!(!found.body.to_string().contains("13812345678"), "masked");
        }
        let none = api.send("POST", "/v1/borrowers/search", None, &json!({"credit_code": "91350100M000100Y43"})).await;
        assert_eq!(none.body["items"], json!([]));
        for (bad, code) in [
            (json!({}), "validation.one_identifier"),
            (json!({"mobile": "13812345678", "resident_id": "11010519491231002X"}), "validation.one_identifier"),
            (json!({"mobile": "123"}), "validation.invalid_mobile"),
            (json!({"resident_id": "110105194912310021"}), "validation.resident_id_check"),
        ] {
            let reply = api.send("POST", "/v1/borrowers/search", None, &bad).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, code), "{bad}");
        }
        let mut uow = api.store.begin().await.unwrap();
        let (_, pending) = uow.claim_pending_audit(10_000).await.unwrap();
        uow.rollback().await.unwrap();
        let searches: Vec<_> = pending.iter().filter(|(_, e)| e.action == "borrower.searched").collect();
        assert_eq!(searches.len(), 3, "every search audited");
        assert!(!searches.iter().any(|(_, e)| e.detail.to_string().contains("1381234")), "identifiers never in the audit");
        for (bad, code, field) in [
            (json!({"kind": "individual", "name": "李四", "resident_id": "110105194912310021", "mobile": "13812345678"}), "validation.resident_id_check", "resident_id"),
            (json!({"kind": "individual", "name": "李四", "resident_id": "11010519491231002", "mobile": "13812345678"}), "validation.resident_id_length", "resident_id"),
            (json!({"kind": "individual", "name": "李四", "resident_id": "110105203001010028", "mobile": "13812345678"}), "validation.resident_id_birth_date", "resident_id"),
            (json!({"kind": "individual", "name": "李四", "resident_id": "440308199901010012", "mobile": "123"}), "validation.invalid_mobile", "mobile"),
            (json!({"kind": "enterprise", "name": "Co", "credit_code": "91350100M000100Y44", "legal_representative": "Li"}), "validation.credit_code_check", "credit_code"),
            (json!({"kind": "enterprise", "name": "Co", "credit_code": "91350100M000100YI3", "legal_representative": "Li"}), "validation.credit_code_characters", "credit_code"),
            (json!({"kind": "enterprise", "name": "Co", "credit_code": "91350100M000100Y43"}), "validation.missing_field", "legal_representative"),
        ] {
            let reply = api.send("POST", "/v1/borrowers", None, &bad).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, code), "{bad}");
            assert_eq!(reply.body["details"]["violations"][0]["field"], field, "{bad}");
        }
        let unknown_kind = api.send("POST", "/v1/borrowers", None, &json!({"kind": "robot", "name": "R"})).await;
        assert_eq!(unknown_kind.code(), "validation.invalid_value");
        let unknown_language = api.send("POST", "/v1/borrowers", None, &json!({"kind": "individual", "name": "R", "language": "fr"})).await;
        assert_eq!((unknown_language.status, unknown_language.code()), (StatusCode::BAD_REQUEST, "validation.invalid_value"));
        let extra = api.send("POST", "/v1/borrowers", None, &json!({"kind": "individual", "name": "R", "ssn": "1"})).await;
        assert_eq!(extra.code(), "validation.unknown_field");

        let changed = api.send("POST", &format!("/v1/borrowers/{id}/contact"), Some("c-1"),
            &json!({"mobile": "13987654321"})).await;
        assert_eq!((changed.status, changed.body["personal"]["mobile"].as_str()), (StatusCode::OK, Some("139****4321")));
        let bad_change = api.send("POST", &format!("/v1/borrowers/{id}/contact"), None,
            &json!({"bank_account": "12"})).await;
        assert_eq!(bad_change.code(), "validation.invalid_bank_account");
        let (status, history) = api.get(&format!("/v1/borrowers/{id}/changes")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(history["items"].as_array().unwrap().len(), 1);
        assert_eq!(history["items"][0]["before"], "138****5678");
        let (status, view) = api.get(&format!("/v1/borrowers/{id}")).await;
        assert_eq!((status, view["revision"].as_i64()), (StatusCode::OK, Some(2)));
        assert_eq!(view["language"], "zh-Hans", "a contact change keeps the language");
        for path in ["/v1/borrowers/nope", "/v1/borrowers/%00", "/v1/borrowers/nope/changes"] {
            let (status, body) = api.get(path).await;
            assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.borrower"), "{path}");
        }
    }

    async fn the_delivery_log_is_listed_and_bad_queries_refused(db: &TestDb) {
        let api = Api::default(db).await;
        let (status, page) = api.get("/v1/deliveries?status=failed").await;
        assert_eq!((status, page["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
        for (query, code) in [("status=lost", "validation.invalid_delivery_status"), ("limit=0", "validation.limit_out_of_range"), ("limit=x", "validation.invalid_query_parameter")] {
            let (status, body) = api.get(&format!("/v1/deliveries?{query}")).await;
            assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, code), "{query}");
        }
        let (status, body) = api.get("/v1/deliveries/nope").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.delivery"));
        let reply = api.send("POST", "/v1/deliveries/%00/redrive", None, &json!({})).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found.delivery"));
    }

    async fn unknown_routes_and_methods_answer_in_json(db: &TestDb) {
        let api = Api::default(db).await;
        let (status, body) = api.get("/v1/nothing-here").await;
        assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found.route"));
        let reply = api.send("DELETE", "/v1/products", None, &json!({})).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::METHOD_NOT_ALLOWED, "validation.method_not_allowed"));
    }
}
