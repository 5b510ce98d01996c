//! Support cases over HTTP, on both stores: a signed-in borrower opens a case about their own
//! line and follows it, never seeing support's internal notes or another borrower's cases;
//! support (an operator with the support role) answers, resolves and works its queue; a
//! viewer may read but not answer; `/metrics` counts the cases waiting for support; every bad request is a 4xx with its code, and every answer
//! matches the OpenAPI document.

mod common;

use chrono::Duration;
use common::{Api, borrower_session, gateway_accepting, operator_session, with_gateway};
use lendcore_domain::access::Role;
use lendcore_testkit::store_test;
use reqwest::StatusCode;
use serde_json::json;

async fn borrower(api: &Api, mobile: &str, resident_id: &str) -> (String, String) {
    let registered = api
        .send(
            "POST",
            "/v1/borrowers",
            None,
            &json!({
                "kind": "individual", "name": "张三", "resident_id": resident_id, "mobile": mobile
            }),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:?}",
        registered.body
    );
    let id = registered.body["id"].as_str().unwrap().to_owned();
    let line = api
        .send(
            "POST",
            "/v1/credit-lines",
            None,
            &json!({
                "borrower_id": id, "currency": "CNY", "limit_minor": 100_000,
                "valid_until": (api.now() + Duration::days(30)).to_rfc3339()
            }),
        )
        .await;
    assert_eq!(line.status, StatusCode::CREATED, "{:?}", line.body);
    (id, line.body["id"].as_str().unwrap().to_owned())
}

store_test! {
    async fn borrowers_ask_for_help_and_support_answers_over_http(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = with_gateway(db, &gateway).await;
        // Signed in before being registered, as an applicant is: the session names no borrower,
        // and the number it proved finds them.
        let me = borrower_session(&api, &gateway, "13833330001").await;
        let (mine, line) = borrower(&api, "13833330001", "110105194912310011").await;
        let (theirs, their_line) = borrower(&api, "13833330002", "110105194912310038").await;
        let cases = format!("/v1/borrowers/{mine}/cases");

        let opened = api.as_caller_keyed("POST", &cases, Some(&me), Some("help-1"), Some(&json!({
            "subject": {"type": "credit_line", "id": line}, "body": "Why can I not draw?"
        }))).await;
        assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
        let case = opened.body["id"].as_str().unwrap().to_owned();
        assert_eq!((opened.body["status"].as_str(), opened.body["opened_by"].as_str()), (Some("waiting_for_support"), Some(format!("borrower:{mine}").as_str())));
        let waiting = common::scrape(&api).await;
        assert_eq!(common::series(&waiting, r#"lendcore_queue_items{queue="support_cases_waiting"}"#), 1.0, "{waiting}");
        let again = api.as_caller_keyed("POST", &cases, Some(&me), Some("help-1"), Some(&json!({
            "subject": {"type": "credit_line", "id": line}, "body": "Why can I not draw?"
        }))).await;
        assert_eq!((again.replayed, again.body["id"].as_str()), (true, Some(case.as_str())), "opened once");
        for (body, status, code) in [
            (json!({"subject": {"type": "credit_line", "id": their_line}, "body": "Hi"}), StatusCode::NOT_FOUND, "not_found.case_subject"),
            (json!({"subject": {"type": "credit_line", "id": line}, "body": "  "}), StatusCode::BAD_REQUEST, "validation.invalid_text"),
            (json!({"subject": {"type": "credit_line", "id": line}, "body": "x".repeat(2001)}), StatusCode::BAD_REQUEST, "validation.invalid_text"),
            (json!({"subject": {"type": "savings", "id": line}, "body": "Hi"}), StatusCode::BAD_REQUEST, "validation.invalid_value"),
            (json!({"subject": {"type": "credit_line", "id": "a\u{0}b"}, "body": "Hi"}), StatusCode::NOT_FOUND, "not_found.case_subject"),
            (json!({"subject": {"type": "credit_line", "id": line}, "body": "Hi", "reason": "no.such_reason"}), StatusCode::BAD_REQUEST, "validation.invalid_value"),
        ] {
            let refused = api.as_caller("POST", &cases, Some(&me), Some(&body)).await;
            assert_eq!((refused.status, refused.code()), (status, code), "{body}: {:?}", refused.body);
        }
        // Another borrower's cases are not there for this one.
        let elsewhere = api.as_caller("GET", &format!("/v1/borrowers/{theirs}/cases"), Some(&me), None).await;
        assert_eq!((elsewhere.status, elsewhere.code()), (StatusCode::NOT_FOUND, "not_found.borrower"));
        let refused = api.as_caller("POST", &format!("{cases}/{case}/messages"), Some(&me), Some(&json!({"body": "psst", "internal": true}))).await;
        assert_eq!((refused.status, refused.code()), (StatusCode::BAD_REQUEST, "validation.not_allowed"));
        let resolve_self = api.as_caller("POST", &format!("{cases}/{case}/resolve"), Some(&me), Some(&json!({"body": "done"}))).await;
        assert_eq!(resolve_self.status, StatusCode::FORBIDDEN, "support resolves");

        let sam = operator_session(&api, "sam", Role::Support).await;
        let (status, queue) = (api.as_caller("GET", "/v1/cases", Some(&sam), None).await.status, api.as_caller("GET", "/v1/cases", Some(&sam), None).await.body);
        assert_eq!((status, queue["items"][0]["id"].as_str()), (StatusCode::OK, Some(case.as_str())));
        let note = api.as_caller("POST", &format!("{cases}/{case}/messages"), Some(&sam), Some(&json!({"body": "Line frozen by the review.", "internal": true}))).await;
        assert_eq!(note.status, StatusCode::OK, "{:?}", note.body);
        let answer = api.as_caller("POST", &format!("{cases}/{case}/messages"), Some(&sam), Some(&json!({"body": "Your line is under review; we will write by Friday."}))).await;
        assert_eq!((answer.status, answer.body["status"].as_str(), answer.body["thread"].as_array().map(Vec::len)), (StatusCode::OK, Some("waiting_for_borrower"), Some(3)));
        let viewer = operator_session(&api, "vic", Role::Viewer).await;
        let read = api.as_caller("GET", &format!("{cases}/{case}"), Some(&viewer), None).await;
        assert_eq!(read.status, StatusCode::OK);
        let meddle = api.as_caller("POST", &format!("{cases}/{case}/messages"), Some(&viewer), Some(&json!({"body": "hm"}))).await;
        assert_eq!((meddle.status, meddle.code()), (StatusCode::FORBIDDEN, "auth.forbidden"));

        let seen = api.as_caller("GET", &format!("{cases}/{case}"), Some(&me), None).await;
        let bodies: Vec<&str> = seen.body["thread"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["Why can I not draw?", "Your line is under review; we will write by Friday."], "no internal note");
        assert_eq!(seen.body["thread"][1]["author"], json!({"by": "support", "actor": "support"}), "support, not by name");
        let mine_about = api.as_caller("GET", &format!("{cases}?about=credit_line:{line}"), Some(&me), None).await;
        assert_eq!(mine_about.body["items"].as_array().map(Vec::len), Some(1));
        let bad_about = api.as_caller("GET", &format!("{cases}?about=line:{line}"), Some(&me), None).await;
        assert_eq!((bad_about.status, bad_about.code()), (StatusCode::BAD_REQUEST, "validation.invalid_case_subject"));

        let resolved = api.as_caller("POST", &format!("{cases}/{case}/resolve"), Some(&sam), Some(&json!({"body": "The review lifted the freeze."}))).await;
        assert_eq!((resolved.status, resolved.body["status"].as_str()), (StatusCode::OK, Some("resolved")));
        let settled = common::scrape(&api).await;
        assert_eq!(common::series(&settled, r#"lendcore_queue_items{queue="support_cases_waiting"}"#), 0.0, "{settled}");
        let twice = api.as_caller("POST", &format!("{cases}/{case}/resolve"), Some(&sam), Some(&json!({"body": "Again."}))).await;
        assert_eq!((twice.status, twice.code()), (StatusCode::CONFLICT, "conflict.case_resolved"));
        let after = api.as_caller("POST", &format!("{cases}/{case}/messages"), Some(&sam), Some(&json!({"body": "More"}))).await;
        assert_eq!((after.status, after.code()), (StatusCode::CONFLICT, "conflict.case_resolved"));
        let missing = api.as_caller("GET", &format!("{cases}/nope"), Some(&sam), None).await;
        assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found.case"));
        let wrong_owner = api.as_caller("GET", &format!("/v1/borrowers/{theirs}/cases/{case}"), Some(&sam), None).await;
        assert_eq!((wrong_owner.status, wrong_owner.code()), (StatusCode::NOT_FOUND, "not_found.case"));
        let bad_status = api.as_caller("GET", "/v1/cases?status=lost", Some(&sam), None).await;
        assert_eq!((bad_status.status, bad_status.code()), (StatusCode::BAD_REQUEST, "validation.invalid_case_status"));
        let done = api.as_caller("GET", "/v1/cases?status=resolved", Some(&sam), None).await;
        assert_eq!(done.body["items"][0]["id"].as_str(), Some(case.as_str()));
        // Five open at once at most.
        for n in 0..5 {
            let more = api.as_caller("POST", &cases, Some(&me), Some(&json!({"subject": {"type": "credit_line", "id": line}, "body": format!("Question {n}")}))).await;
            assert_eq!(more.status, StatusCode::CREATED, "{:?}", more.body);
        }
        let sixth = api.as_caller("POST", &cases, Some(&me), Some(&json!({"subject": {"type": "credit_line", "id": line}, "body": "One more"}))).await;
        assert_eq!((sixth.status, sixth.code()), (StatusCode::CONFLICT, "conflict.too_many_open_cases"));
    }
}
