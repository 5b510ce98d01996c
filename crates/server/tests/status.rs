//! The service's status over HTTP, on both stores: `/v1/status` and `/status` answer anyone, in
//! the language asked; operators declare, change and end incidents at `/v1/incidents`, and every
//! bad request is a 4xx with its code. Each answer is checked against the OpenAPI document.

mod common;

use chrono::Duration;
use common::Api;
use lendcore_testkit::store_test;
use reqwest::StatusCode;
use serde_json::json;

/// What an app that has not signed anyone in gets.
async fn public(
    api: &Api,
    path: &str,
    language: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", api.base));
    if let Some(language) = language {
        request = request.header("accept-language", language);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

store_test! {
    async fn anyone_reads_the_status_and_operators_keep_its_incidents(db: &TestDb) {
        // A channel to name; nothing here pays through it.
        let unionpay = std::sync::Arc::new(lendcore_connectors::channel::HttpChannel::new(lendcore_connectors::channel::HttpChannelConfig {
            id: "unionpay".into(), base_url: "http://127.0.0.1:9".into(), api_key: "k".into(), timeout: std::time::Duration::from_secs(1),
        }).unwrap());
        let api = Api::start_with(db, lendcore_server::HttpLimits::default(), |engine| engine.with_channels(vec![unionpay])).await;
        let (status, headers, body) = public(&api, "/v1/status", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let quiet: serde_json::Value = serde_json::from_str(&body).unwrap();
        common::contract::check("GET", "/v1/status", 200, &quiet);
        assert_eq!((quiet["state"].as_str(), &quiet["banner"]), (Some("operational"), &json!(null)));
        assert_eq!(headers["cache-control"], "public, max-age=15");

        let expected = api.now() + Duration::hours(3);
        let declared = api.send("POST", "/v1/incidents", Some("declare-1"), &json!({
            "component": "payouts", "channel": "unionpay", "impact": "degraded",
            "note": {"en": "The bank is slow to confirm."}, "expected_by": expected
        })).await;
        assert_eq!(declared.status, StatusCode::CREATED, "{:?}", declared.body);
        let id = declared.body["id"].as_str().unwrap().to_owned();
        let replay = api.send("POST", "/v1/incidents", Some("declare-1"), &json!({
            "component": "payouts", "channel": "unionpay", "impact": "degraded",
            "note": {"en": "The bank is slow to confirm."}, "expected_by": expected
        })).await;
        assert!(replay.replayed);
        assert_eq!(replay.body["id"], id.as_str(), "declared once");

        let (_, headers, body) = public(&api, "/v1/status", Some("zh-CN,zh;q=0.9")).await;
        let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
        common::contract::check("GET", "/v1/status", 200, &shown);
        assert_eq!((headers["content-language"].to_str().unwrap(), headers["vary"].to_str().unwrap()), ("zh-Hans", "accept-language"));
        assert_eq!(shown["state"], "degraded");
        assert!(shown["banner"].as_str().unwrap().starts_with("通过unionpay的放款出现延迟"), "{shown}");
        assert_eq!(shown["incidents"][0]["id"], id.as_str());
        assert!(shown["incidents"][0].get("source").is_none(), "the public status names no operator or rule: {shown}");
        let (_, _, english) = public(&api, "/v1/status?lang=en", Some("zh-CN")).await;
        assert!(english.contains("Payouts through unionpay are delayed") && english.contains("The bank is slow to confirm."), "{english}");
        let (status, headers, page) = public(&api, "/status?lang=zh-Hans", None).await;
        assert_eq!((status, headers["vary"].to_str().unwrap()), (StatusCode::OK, "accept-language"));
        assert!(page.contains("部分服务比平时慢") && page.contains("通过unionpay的放款出现延迟"), "{page}");
        assert!(!page.contains("<script"), "no script on the page");
        let (status, _, refused) = public(&api, "/v1/status?lang=fr", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(refused.contains("validation.unknown_language"), "{refused}");
        let refused: serde_json::Value = serde_json::from_str(&refused).unwrap();
        common::contract::check("GET", "/v1/status?lang=fr", 400, &refused);

        for (body, code) in [
            (json!({"component": "repayments", "channel": "unionpay", "impact": "degraded"}), "validation.not_allowed"),
            (json!({"component": "payouts", "impact": "degraded", "expected_by": api.now() - Duration::minutes(1)}), "validation.out_of_range"),
            (json!({"component": "payouts", "impact": "degraded", "note": {"fr": "Lent."}}), "validation.unknown_field"),
            (json!({"component": "payments", "impact": "degraded"}), "validation.invalid_value"),
            (json!({"component": "payouts", "channel": "unoinpay", "impact": "degraded"}), "validation.unknown_channel"),
        ] {
            let refused = api.send("POST", "/v1/incidents", None, &body).await;
            assert_eq!((refused.status, refused.code()), (StatusCode::BAD_REQUEST, code), "{body}: {:?}", refused.body);
        }

        let changed = api.send("POST", &format!("/v1/incidents/{id}/change"), None, &json!({"revision": 1, "impact": "unavailable"})).await;
        assert_eq!((changed.status, &changed.body["revision"]), (StatusCode::OK, &json!(2)), "{:?}", changed.body);
        let stale = api.send("POST", &format!("/v1/incidents/{id}/change"), None, &json!({"revision": 1})).await;
        assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "conflict.incident_changed"));
        let missing = api.send("POST", "/v1/incidents/nope/end", None, &json!(null)).await;
        assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found.incident"));
        let (status, odd) = api.get("/v1/incidents/a%00b").await;
        assert_eq!((status, odd["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found.incident")), "never a 500: {odd}");
        let ended = api.send("POST", &format!("/v1/incidents/{id}/end"), None, &json!(null)).await;
        assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
        let twice = api.send("POST", &format!("/v1/incidents/{id}/end"), None, &json!(null)).await;
        assert_eq!((twice.status, twice.code()), (StatusCode::CONFLICT, "conflict.incident_ended"));
        let late = api.send("POST", &format!("/v1/incidents/{id}/change"), None, &json!({"revision": 3})).await;
        assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "conflict.incident_ended"));

        let (status, listed) = api.get("/v1/incidents?state=ended").await;
        assert_eq!((status, listed["items"][0]["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
        let (_, open) = api.get("/v1/incidents?state=open").await;
        assert!(open["items"].as_array().unwrap().is_empty());
        let (status, body) = api.get("/v1/incidents?state=burning").await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation.invalid_incident_state")));
        let (status, one) = api.get(&format!("/v1/incidents/{id}")).await;
        assert_eq!((status, one["source"]["by"].as_str()), (StatusCode::OK, Some("operator")), "{one}");
        assert!(one["source"]["actor"].as_str().unwrap().starts_with("api_key:"), "who declared it: {one}");
        let (_, _, body) = public(&api, "/v1/status", None).await;
        let after: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((after["state"].as_str(), after["incidents"][0]["ended_at"].is_string()), (Some("operational"), true), "{after}");
    }

    async fn planned_maintenance_is_announced_ahead_shown_while_it_lasts_and_gone_after(db: &TestDb) {
        let api = Api::default(db).await;
        let starts = api.now() + Duration::days(2);
        let window = json!({"starts_at": starts, "ends_at": starts + Duration::hours(2), "message": "Bank year-end close."});
        let created = api.send("POST", "/v1/maintenance-windows", Some("mw-1"), &window).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let read = |api: &Api| {
            let url = format!("{}/v1/status?lang=en", api.base);
            async move {
                let status: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
                common::contract::check("GET", "/v1/status", 200, &status);
                status
            }
        };

        // Two days ahead it is listed, but no banner yet: the app shows one only in the last day.
        let listed = read(&api).await;
        assert_eq!((listed["state"].as_str(), &listed["banner"]), (Some("operational"), &json!(null)), "{listed}");
        assert_eq!((listed["maintenance"][0]["id"].as_str(), &listed["maintenance"][0]["in_progress"]), (created.body["id"].as_str(), &json!(false)), "{listed}");

        api.clock.advance(Duration::hours(25));
        let soon = read(&api).await;
        assert_eq!(soon["state"], "operational", "{soon}");
        let banner = soon["banner"].as_str().unwrap();
        assert!(banner.starts_with("Planned maintenance from") && banner.contains("Bank year-end close."), "{soon}");

        api.clock.advance(Duration::hours(24));
        let during = read(&api).await;
        assert_eq!((during["state"].as_str(), &during["maintenance"][0]["in_progress"]), (Some("maintenance"), &json!(true)), "{during}");
        assert!(during["banner"].as_str().unwrap().starts_with("Maintenance until"), "{during}");

        api.clock.advance(Duration::hours(2));
        let after = read(&api).await;
        assert_eq!((after["state"].as_str(), &after["banner"], after["maintenance"].as_array().map(Vec::len)), (Some("operational"), &json!(null), Some(0)), "{after}");
    }
}
