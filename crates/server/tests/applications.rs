//! Credit applications over HTTP, on both stores: saved at every step and resumed on another
//! device, submitted once however often it is sent (a dropped connection mid-submit included),
//! verified by another method when one is down, decided by an underwriter with reasons,
//! accepted into a credit line; documents with checksums and limits; deadlines that expire
//! with their reason; the status explained in the borrower's language.

mod common;

use chrono::Duration;
use lendcore_domain::access::Role;
use lendcore_engine::applications::TimerHandler;
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_testkit::store_test;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, ResponseTemplate};

use common::applicants::{
    LINK_BASE, MOBILE, answers, api_with_everything, call, submitted, verify_by_sms,
};
use common::{Api, Reply, borrower_session, gateway_accepting, operator_session};

async fn fetched_type(api: &Api, id: &str, doc_id: &str) -> String {
    let response = api
        .http
        .get(format!(
            "{}/v1/applications/{id}/documents/{doc_id}",
            api.base
        ))
        .send()
        .await
        .unwrap();
    response.headers()["x-content-type-options"]
        .to_str()
        .unwrap()
        .to_owned()
}

store_test! {
    async fn a_draft_survives_a_lost_connection_and_is_resumed_on_another_device(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let phone = borrower_session(&api, &gateway, MOBILE).await;
        let draft = call(&api, "POST", "/v1/applications", &phone, None).await;
        let id = draft.body["id"].as_str().unwrap().to_owned();
        assert_eq!((draft.body["state"].as_str(), draft.body["revision"].as_i64()), (Some("draft"), Some(1)));
        let step1 = call(&api, "PATCH", &format!("/v1/applications/{id}"), &phone,
            Some(json!({"revision": 1, "answers": {"name": "张三", "requested_limit_minor": 5_000_000}}))).await;
        assert_eq!(step1.status, StatusCode::OK, "{:?}", step1.body);

        // The laptop, signed in with the same number, finds the draft and carries on.
        api.clock.advance(Duration::seconds(61));
        let laptop = borrower_session(&api, &gateway, MOBILE).await;
        let mine = call(&api, "GET", "/v1/applications", &laptop, None).await;
        assert_eq!(mine.body["items"][0]["id"], id.as_str());
        let resumed = call(&api, "GET", &format!("/v1/applications/{id}"), &laptop, None).await;
        assert_eq!((resumed.body["form"]["name"].as_str(), resumed.body["revision"].as_i64()), (Some("张三"), Some(2)));
        let stale = call(&api, "PATCH", &format!("/v1/applications/{id}"), &phone, Some(json!({"revision": 1, "answers": {"employer": "X"}}))).await;
        assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "conflict.concurrent_update"), "a stale tab never overwrites");
        let bad = call(&api, "PATCH", &format!("/v1/applications/{id}"), &laptop, Some(json!({"revision": 2, "answers": {"monthly_income_minor": -5}}))).await;
        assert_eq!(bad.code(), "validation.amount_out_of_range");
        let unknown = call(&api, "PATCH", &format!("/v1/applications/{id}"), &laptop, Some(json!({"revision": 2, "answers": {"shoe_size": 42}}))).await;
        assert_eq!(unknown.code(), "validation.unknown_field");
        let early = call(&api, "POST", &format!("/v1/applications/{id}/submit"), &laptop, None).await;
        assert_eq!(early.status, StatusCode::BAD_REQUEST);
        let missing: Vec<&str> = early.body["details"]["violations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
        assert_eq!(missing, ["resident_id", "mobile", "monthly_income_minor", "bank_account"]);
        let mut elsewhere = answers("张三");
        elsewhere["mobile"] = json!("13900000000");
        let filled = call(&api, "PATCH", &format!("/v1/applications/{id}"), &laptop, Some(json!({"revision": 2, "answers": elsewhere}))).await;
        assert_eq!(filled.status, StatusCode::OK, "{:?}", filled.body);
        let not_mine = call(&api, "POST", &format!("/v1/applications/{id}/submit"), &laptop, None).await;
        assert_eq!(not_mine.code(), "validation.mobile_not_verified", "{:?}", not_mine.body);
        let fixed = call(&api, "PATCH", &format!("/v1/applications/{id}"), &laptop, Some(json!({"revision": 3, "answers": {"mobile": MOBILE}}))).await;
        assert_eq!(fixed.status, StatusCode::OK, "{:?}", fixed.body);

        // The connection drops mid-submit; the app retries with the same key. Whatever the
        // server did with the first, the application is submitted exactly once.
        {
            use tokio::io::AsyncWriteExt;
            let address = api.base.trim_start_matches("http://");
            let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
            let request = format!(
                "POST /v1/applications/{id}/submit HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {phone}\r\nidempotency-key: submit-1\r\ncontent-length: 0\r\n\r\n"
            );
            socket.write_all(request.as_bytes()).await.unwrap();
            // Gone before any answer: the server may have done all, some or none of it.
        }
        let mut retried = None;
        for _ in 0..100 {
            let reply = api.http.post(format!("{}/v1/applications/{id}/submit", api.base))
                .bearer_auth(&phone).header("idempotency-key", "submit-1").send().await.unwrap();
            if reply.status() != StatusCode::CONFLICT {
                retried = Some(Reply::checked("POST", &format!("/v1/applications/{id}/submit"), reply).await);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let retried = retried.expect("the retry settles");
        assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.body);
        assert_eq!(retried.body["state"], "verifying");
        let again = call(&api, "POST", &format!("/v1/applications/{id}/submit"), &laptop, None).await;
        assert_eq!(again.body["state"], "verifying", "a double submit changes nothing");
        let history: Vec<&str> = again.body["history"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
        assert_eq!(history, ["draft", "submitted", "verifying"], "submitted once");
        assert!(again.body["borrower_id"].is_string(), "registered as a borrower");
        assert_eq!(again.body["form"]["resident_id"], "**************002X", "identifiers masked");

        // Someone else's session cannot see it, nor can an API key without the scope.
        api.clock.advance(Duration::seconds(61));
        let stranger = borrower_session(&api, &gateway, "13700001111").await;
        assert_eq!(call(&api, "GET", &format!("/v1/applications/{id}"), &stranger, None).await.code(), "not_found.application");
        let (status, _) = api.get(&format!("/v1/applications/{id}")).await;
        assert_eq!(status, StatusCode::OK, "the test key holds applications:read");
    }

    async fn verification_offers_another_method_then_an_underwriter_decides_and_the_line_opens(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let id = submitted(&api, &token, "张三 down-bank").await;
        let down = call(&api, "POST", &format!("/v1/applications/{id}/verification"), &token, Some(json!({"method": "bank_card"}))).await;
        assert_eq!(down.status, StatusCode::OK, "{:?}", down.body);
        assert_eq!((down.body["outcome"].as_str(), down.body["reason"].as_str()), (Some("unavailable"), Some("identity.method_unavailable")));
        assert_eq!(down.body["other_methods"], json!(["sms_otp", "face"]));
        let unknown = call(&api, "POST", &format!("/v1/applications/{id}/verification"), &token, Some(json!({"method": "palm"}))).await;
        assert_eq!(unknown.code(), "validation.unknown_method");
        let passed = verify_by_sms(&api, &gateway, &token, &id).await;
        assert_eq!(passed.body["outcome"], "passed", "{:?}", passed.body);
        assert_eq!(passed.body["application"]["state"], "referred");
        let checks: Vec<&str> = passed.body["application"]["checks"].as_array().unwrap().iter().map(|c| c["outcome"].as_str().unwrap()).collect();
        assert_eq!(checks, ["unavailable", "passed"], "every check is recorded");

        let waiting = api.http.get(format!("{}/v1/applications/{id}/status", api.base))
            .bearer_auth(&token).header("accept-language", "zh-CN").send().await.unwrap();
        assert_eq!(waiting.headers()["content-language"], "zh-Hans");
        let waiting: Value = waiting.json().await.unwrap();
        assert_eq!((waiting["headline"].as_str(), waiting["next_action"].as_str()), (Some("您的申请正在审核中。"), Some("wait")));

        let rita = operator_session(&api, "rita", Role::Risk).await;
        let viewer = operator_session(&api, "vic", Role::Viewer).await;
        let queue = call(&api, "GET", "/v1/applications", &rita, None).await;
        assert_eq!(queue.body["items"][0]["id"], id.as_str(), "the underwriters' queue");
        let not_allowed = call(&api, "POST", &format!("/v1/applications/{id}/decision"), &viewer, Some(json!({"decision": "decline", "reasons": ["credit.score_too_low"]}))).await;
        assert_eq!(not_allowed.status, StatusCode::FORBIDDEN);
        let no_reason = call(&api, "POST", &format!("/v1/applications/{id}/decision"), &rita, Some(json!({"decision": "request_info"}))).await;
        assert_eq!(no_reason.code(), "validation.reason_required");
        let asked = call(&api, "POST", &format!("/v1/applications/{id}/decision"), &rita, Some(json!({"decision": "request_info", "reasons": ["risk.large_amount"], "note": "payslips please"}))).await;
        assert_eq!(asked.body["state"], "info_requested", "{:?}", asked.body);
        let explained = call(&api, "GET", &format!("/v1/applications/{id}/status"), &token, None).await;
        assert_eq!(explained.body["why"][0]["code"], "risk.large_amount");
        assert_eq!(explained.body["next_action"], "upload_documents");

        // Documents: the real thing, checked; fakes and oversized files refused.
        let upload = |bytes: Vec<u8>, kind: &'static str| {
            let api = &api;
            let token = token.clone();
            let id = id.clone();
            async move {
                let path = format!("/v1/applications/{id}/documents?name=payslip.pdf");
                Reply::checked("POST", &path, reqwest::Client::new().post(format!("{}{path}", api.base))
                    .bearer_auth(token).header("content-type", kind).body(bytes).send().await.unwrap()).await
            }
        };
        let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n".to_vec();
        let stored = upload(pdf.clone(), "application/pdf").await;
        assert_eq!(stored.status, StatusCode::CREATED, "{:?}", stored.body);
        let sha = stored.body["sha256"].as_str().unwrap().to_owned();
        assert_eq!(upload(b"MZ\x90\x00".to_vec(), "application/pdf").await.code(), "validation.document_content");
        assert_eq!(upload(pdf.clone(), "text/html").await.code(), "validation.document_type");
        assert_eq!(upload(Vec::new(), "application/pdf").await.code(), "validation.document_size");
        let mut huge = b"%PDF-".to_vec();
        huge.resize(5 * 1024 * 1024 + 2048, b'x');
        assert_eq!(upload(huge, "application/pdf").await.status, StatusCode::PAYLOAD_TOO_LARGE);
        let doc_id = stored.body["id"].as_str().unwrap();
        let fetched = api.http.get(format!("{}/v1/applications/{id}/documents/{doc_id}", api.base)).send().await.unwrap();
        assert_eq!(fetched.headers()["x-content-sha256"], sha.as_str());
        assert_eq!(fetched.bytes().await.unwrap().to_vec(), pdf);
        let listed = call(&api, "GET", &format!("/v1/applications/{id}/documents"), &rita, None).await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

        let revision = asked.body["revision"].as_i64().unwrap();
        let renamed = call(&api, "PATCH", &format!("/v1/applications/{id}"), &token, Some(json!({"revision": revision, "answers": {"name": "李四"}}))).await;
        assert_eq!(renamed.code(), "validation.identity_fixed", "who applies is settled once submitted");
        let answered = call(&api, "PATCH", &format!("/v1/applications/{id}"), &token, Some(json!({"revision": revision, "answers": {"monthly_income_minor": 2_000_000}}))).await;
        assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
        let viewer_download = api.as_caller("GET", &format!("/v1/applications/{id}/documents/{doc_id}"), Some(&viewer), None).await;
        assert_eq!(viewer_download.status, StatusCode::FORBIDDEN, "documents are for underwriters");
        let back = call(&api, "POST", &format!("/v1/applications/{id}/submit"), &token, None).await;
        assert_eq!(back.body["state"], "referred");
        let approved = call(&api, "POST", &format!("/v1/applications/{id}/decision"), &rita, Some(json!({"decision": "approve", "limit_minor": 3_000_000, "valid_days": 365}))).await;
        assert_eq!(approved.body["state"], "approved", "{:?}", approved.body);
        // The offer is read and accepted through a contract link, opened on another device.
        let contract = call(&api, "POST", &format!("/v1/applications/{id}/contract-link"), &token, None).await;
        assert_eq!(contract.status, StatusCode::CREATED, "{:?}", contract.body);
        let opened = api.as_caller("POST", "/v1/links/open", None, Some(&json!({"token": contract.body["token"]}))).await;
        assert_eq!(opened.body["purpose"], "sign_contract", "{:?}", opened.body);
        let signer = opened.body["session"]["token"].as_str().unwrap().to_owned();
        let accepted = call(&api, "POST", &format!("/v1/applications/{id}/accept"), &signer, None).await;
        assert_eq!(accepted.body["state"], "accepted", "{:?}", accepted.body);
        assert_eq!(fetched_type(&api, &id, doc_id).await, "nosniff");
        let line_id = accepted.body["line_id"].as_str().unwrap();
        let (_, line) = api.get(&format!("/v1/credit-lines/{line_id}")).await;
        assert_eq!((line["limit_minor"].as_i64(), line["borrower_id"].as_str()), (Some(3_000_000), accepted.body["borrower_id"].as_str()));
        let twice = call(&api, "POST", &format!("/v1/applications/{id}/accept"), &token, None).await;
        assert_eq!(twice.code(), "conflict.application_state", "one line per application");
        let no_contract = call(&api, "POST", &format!("/v1/applications/{id}/contract-link"), &token, None).await;
        assert_eq!(no_contract.code(), "conflict.application_state", "a contract link is for an open offer");

        // The borrower draws, and reads their own loan; nobody else can.
        let product = api.send("POST", "/v1/products", None, &json!({
            "code": "cash", "name": "Cash", "kind": "installment", "currency": "CNY",
            "terms": {"amount": {"min_minor": 100000, "max_minor": 3000000}, "terms": {"unit": "month", "options": [12]},
                "rate": {"basis": "annual", "value": "0.18"}, "repayment_method": "equal_installment",
                "penalty_daily_rate": "0.0005", "grace_days": 3}
        })).await;
        assert_eq!(product.status, StatusCode::CREATED, "{:?}", product.body);
        let quoted = api.send("POST", "/v1/drawdowns/quotes", None, &json!({
            "line_id": line_id, "product_code": "cash", "amount_minor": 1_000_000, "term": 12, "account": "acct-1"
        })).await;
        assert_eq!(quoted.status, StatusCode::CREATED, "{:?}", quoted.body);
        let loan_id = quoted.body["drawdown"]["id"].as_str().unwrap().to_owned();
        // The session signed in before registering reads it too (by the number it proved).
        let timeline = call(&api, "GET", &format!("/v1/loans/{loan_id}/timeline"), &token, None).await;
        assert_eq!(timeline.status, StatusCode::OK, "{:?}", timeline.body);
        let kinds: Vec<&str> = timeline.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.iter().all(|k| ["state_change", "posting"].contains(k)), "the borrower's view: {kinds:?}");
        // The contract link's session reaches the offer, nothing else.
        for (method, path) in [("GET", format!("/v1/loans/{loan_id}/timeline")), ("POST", "/v1/applications".to_owned()), ("POST", "/v1/links/renew".to_owned())] {
            let beyond = call(&api, method, &path, &signer, Some(json!({"token": "x"}))).await;
            assert_eq!((beyond.status, beyond.code()), (StatusCode::FORBIDDEN, "auth.link_scope"), "{method} {path}");
        }

        // Support texts the borrower a link to the loan; the link never passes through them.
        let support = operator_session(&api, "sam", Role::Support).await;
        // Refused by the gateway: never sent, not counted. Unanswered: it may have arrived, so
        // it counts, but it no longer opens.
        for (priority, status) in [(1, 400), (2, 503)] {
            Mock::given(method("POST")).and(body_string_contains(LINK_BASE))
                .respond_with(ResponseTemplate::new(status)).up_to_n_times(1).with_priority(priority)
                .mount(&gateway).await;
        }
        for _ in 0..2 {
            let down = call(&api, "POST", &format!("/v1/loans/{loan_id}/view-link"), &support, None).await;
            assert_eq!((down.status, down.code()), (StatusCode::SERVICE_UNAVAILABLE, "system.unavailable"), "{:?}", down.body);
        }
        let sent = call(&api, "POST", &format!("/v1/loans/{loan_id}/view-link"), &support, None).await;
        assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
        assert_eq!(sent.body["sent_to"], "138****5678");
        assert!(!sent.body.to_string().contains(LINK_BASE) && sent.body.get("token").is_none(), "{:?}", sent.body);
        let texted: Vec<String> = gateway.received_requests().await.unwrap().iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .filter(|m| m["to"] == MOBILE)
            .map(|m| m["text"].as_str().unwrap().to_owned()).collect();
        let text = texted.iter().rev().find(|t| t.contains(LINK_BASE)).expect("the link was texted");
        // The borrower chose Chinese when applying: the text is in Chinese.
        assert!(text.contains("查看您的借款"), "{text}");
        let view_token: String = text.split(LINK_BASE).nth(1).unwrap().chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
        let viewer_link = api.as_caller("POST", "/v1/links/open", None, Some(&json!({"token": view_token}))).await;
        assert_eq!(viewer_link.body["purpose"], "view_loan", "{:?}", viewer_link.body);
        let loan_reader = viewer_link.body["session"]["token"].as_str().unwrap().to_owned();
        let read = call(&api, "GET", &format!("/v1/loans/{loan_id}/timeline"), &loan_reader, None).await;
        assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
        let beyond = call(&api, "GET", &format!("/v1/applications/{id}"), &loan_reader, None).await;
        assert_eq!(beyond.code(), "auth.link_scope", "a loan's link opens the loan only");
        let third = call(&api, "POST", &format!("/v1/loans/{loan_id}/view-link"), &support, None).await;
        assert_eq!(third.status, StatusCode::CREATED, "{:?}", third.body);
        let flood = call(&api, "POST", &format!("/v1/loans/{loan_id}/view-link"), &support, None).await;
        assert_eq!(flood.status, StatusCode::TOO_MANY_REQUESTS, "three an hour, the refused one aside: {:?}", flood.body);
        let borrower_asks = call(&api, "POST", &format!("/v1/loans/{loan_id}/view-link"), &token, None).await;
        assert_eq!(borrower_asks.status, StatusCode::FORBIDDEN);
        let missing = call(&api, "POST", "/v1/loans/nope/view-link", &support, None).await;
        assert_eq!(missing.code(), "not_found.loan");
        api.clock.advance(Duration::seconds(61));
        let stranger = borrower_session(&api, &gateway, "13700001111").await;
        let theirs = call(&api, "GET", &format!("/v1/loans/{loan_id}/timeline"), &stranger, None).await;
        assert_eq!(theirs.code(), "not_found.loan", "another borrower's loan does not exist for them");
        let (_, staff_view) = api.get(&format!("/v1/applications/{id}")).await;
        let history: Vec<String> = staff_view["history"].as_array().unwrap().iter()
            .map(|s| format!("{}:{}", s["state"].as_str().unwrap(), s["actor"].as_str().unwrap())).collect();
        assert!(history.contains(&"approved:ops:rita".to_owned()), "staff see who: {history:?}");
        let theirs: Vec<&str> = accepted.body["history"].as_array().unwrap().iter().map(|s| s["actor"].as_str().unwrap()).collect();
        assert!(theirs.contains(&"lender") && !theirs.iter().any(|a| a.contains("rita")), "the borrower sees the lender: {theirs:?}");
    }

    async fn every_wait_ends_with_a_reason_the_borrower_is_told(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let draft = call(&api, "POST", "/v1/applications", &token, None).await;
        let id = draft.body["id"].as_str().unwrap().to_owned();
        let runner = JobRunner::new(api.store.clone(), api.clock.clone(), RunnerConfig { worker_id: "w".into(), ..RunnerConfig::default() })
            .register(TimerHandler);
        api.clock.advance(Duration::days(28));
        while runner.poll_once().await.unwrap().ran() > 0 {}
        let mut uow = api.store.begin_read().await.unwrap();
        let reminded = uow.outbox_for("application", &id).await.unwrap();
        assert!(reminded.iter().any(|e| e.topic == "application.reminder"), "reminded before the deadline");
        drop(uow);
        api.clock.advance(Duration::days(3));
        while runner.poll_once().await.unwrap().ran() > 0 {}
        // A month on, the session has ended too: the borrower signs in again and finds out why.
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let expired = call(&api, "GET", &format!("/v1/applications/{id}"), &token, None).await;
        assert_eq!((expired.body["state"].as_str(), expired.body["reason"].as_str()), (Some("expired"), Some("user.abandoned")), "{:?}", expired.body);
        let status = call(&api, "GET", &format!("/v1/applications/{id}/status"), &token, None).await;
        assert_eq!(status.body["headline"], "This application has expired.");
        assert_eq!(status.body["next_action"], "start_again");
        assert_eq!(status.body["why"][0]["code"], "user.abandoned");
        let late = call(&api, "POST", &format!("/v1/applications/{id}/submit"), &token, None).await;
        assert_eq!(late.code(), "conflict.application_state");

        // An offer past its deadline cannot be accepted, even if its timer has not run.
        let offered = submitted(&api, &token, "王五").await;
        api.clock.advance(Duration::seconds(61));
        verify_by_sms(&api, &gateway, &token, &offered).await;
        let rita = operator_session(&api, "rita", Role::Risk).await;
        call(&api, "POST", &format!("/v1/applications/{offered}/decision"), &rita, Some(json!({"decision": "approve", "limit_minor": 1_000_000}))).await;
        api.clock.advance(Duration::days(15));
        // The step it waits at, and how long it has, on /metrics.
        let waiting = common::scrape(&api).await;
        assert_eq!(common::series(&waiting, r#"lendcore_applications{state="approved"}"#), 1.0, "{waiting}");
        assert_eq!(common::series(&waiting, r#"lendcore_applications_oldest_age_seconds{state="approved"}"#), 15.0 * 86_400.0);
        assert_eq!(common::series(&waiting, r#"lendcore_applications{state="referred"}"#), 0.0, "every step named");
        let too_late = call(&api, "POST", &format!("/v1/applications/{offered}/accept"), &token, None).await;
        assert_eq!((too_late.status, too_late.code()), (StatusCode::UNPROCESSABLE_ENTITY, "user.offer_expired"), "{:?}", too_late.body);
        let after = call(&api, "GET", &format!("/v1/applications/{offered}"), &token, None).await;
        assert_eq!((after.body["state"].as_str(), after.body["line_id"].as_str()), (Some("expired"), None), "no line for a lapsed offer");

        let token = borrower_session(&api, &gateway, MOBILE).await;
        let second = call(&api, "POST", "/v1/applications", &token, None).await;
        let second_id = second.body["id"].as_str().unwrap();
        let withdrawn = call(&api, "POST", &format!("/v1/applications/{second_id}/withdraw"), &token, None).await;
        assert_eq!((withdrawn.body["state"].as_str(), withdrawn.body["reason"].as_str()), (Some("withdrawn"), Some("user.cancelled")));
    }

    async fn a_resume_link_opens_once_reminds_before_it_expires_and_is_renewed_after_signing_in(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let phone = borrower_session(&api, &gateway, MOBILE).await;
        let draft = call(&api, "POST", "/v1/applications", &phone, None).await;
        let id = draft.body["id"].as_str().unwrap().to_owned();
        let issued = call(&api, "POST", &format!("/v1/applications/{id}/resume-link"), &phone, None).await;
        assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
        let token = issued.body["token"].as_str().unwrap().to_owned();
        assert!(!token.contains(MOBILE), "nothing personal in a link");

        // The laptop opens it: signed in, and told what it opens.
        let open = |token: String| {
            let api = &api;
            async move { api.as_caller("POST", "/v1/links/open", None, Some(&json!({"token": token}))).await }
        };
        let opened = open(token.clone()).await;
        assert_eq!(opened.status, StatusCode::OK, "{:?}", opened.body);
        assert_eq!((opened.body["purpose"].as_str(), opened.body["subject"].as_str()), (Some("resume_application"), Some(id.as_str())));
        let laptop = opened.body["session"]["token"].as_str().unwrap().to_owned();
        let resumed = call(&api, "GET", &format!("/v1/applications/{id}"), &laptop, None).await;
        assert_eq!(resumed.body["state"], "draft");
        let again = open(token.clone()).await;
        assert_eq!((again.status, again.code()), (StatusCode::UNPROCESSABLE_ENTITY, "link.used"));
        assert_eq!(again.body["details"]["next_action"], "request_new_link");
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 2.., if forged.ends_with("00") { "11" } else { "00" });
        assert_eq!(open(forged).await.code(), "link.invalid");
        assert_eq!(open("v1.abc".into()).await.code(), "link.invalid");

        // A second link: reminded a day before it expires, refused after, renewed in one step.
        let saved = call(&api, "PATCH", &format!("/v1/applications/{id}"), &phone, Some(json!({"revision": 1, "answers": {"mobile": MOBILE}}))).await;
        assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
        let second = call(&api, "POST", &format!("/v1/applications/{id}/resume-link"), &phone, None).await;
        let second = second.body["token"].as_str().unwrap().to_owned();
        let early = call(&api, "POST", "/v1/links/renew", &phone, Some(json!({"token": second}))).await;
        assert_eq!((early.status, early.code()), (StatusCode::CONFLICT, "conflict.link_still_valid"), "a link that still works is opened, not renewed");
        let runner = JobRunner::new(api.store.clone(), api.clock.clone(), RunnerConfig { worker_id: "w".into(), ..RunnerConfig::default() })
            .register(lendcore_engine::links::ReminderHandler)
            .register(lendcore_engine::notify::DeliveryHandler::new(&api.engine));
        api.clock.advance(Duration::hours(49));
        while runner.poll_once().await.unwrap().ran() > 0 {}
        let mut uow = api.store.begin_read().await.unwrap();
        let reminders: Vec<String> = uow.unpublished_outbox(1000).await.unwrap().into_iter().filter(|e| e.topic == "link.expiring").map(|e| e.id).collect();
        assert_eq!(reminders.len(), 1, "the unused link is reminded; the used one is not");
        drop(uow);
        // The applicant is not registered yet: the reminder reaches the number they signed in with.
        lendcore_engine::notify::publish(&api.engine).await.unwrap();
        while runner.poll_once().await.unwrap().ran() > 0 {}
        let sent = lendcore_engine::notify::list(&api.engine, None, Some(&reminders[0]), 10).await.unwrap();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!((sent[0].target.as_str(), sent[0].status), ("138****5678", lendcore_store::DeliveryStatus::Delivered), "{sent:?}");
        let texts: Vec<String> = gateway.received_requests().await.unwrap().iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["text"].as_str().unwrap().to_owned()).collect();
        assert!(texts.iter().any(|t| t.contains("continue your application")), "{texts:?}");
        api.clock.advance(Duration::hours(24));
        let expired = open(second.clone()).await;
        assert_eq!((expired.status, expired.code()), (StatusCode::UNPROCESSABLE_ENTITY, "link.expired"));
        let anonymous = api.as_caller("POST", "/v1/links/renew", None, Some(&json!({"token": second}))).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "renewal follows signing in again");
        let signed_in = borrower_session(&api, &gateway, MOBILE).await;
        let renewed = call(&api, "POST", "/v1/links/renew", &signed_in, Some(json!({"token": second}))).await;
        assert_eq!(renewed.status, StatusCode::CREATED, "{:?}", renewed.body);
        assert_eq!(renewed.body["subject"], id.as_str());
        let fresh = open(renewed.body["token"].as_str().unwrap().to_owned()).await;
        assert_eq!(fresh.status, StatusCode::OK);
        let twice = call(&api, "POST", "/v1/links/renew", &signed_in, Some(json!({"token": second}))).await;
        assert_eq!(twice.code(), "link.used", "a link is renewed once");
        api.clock.advance(Duration::seconds(61));
        let stranger = borrower_session(&api, &gateway, "13700001111").await;
        let theirs = call(&api, "POST", "/v1/links/renew", &stranger, Some(json!({"token": second}))).await;
        assert_eq!(theirs.code(), "link.invalid", "only its owner renews a link");
    }

    async fn an_application_submitted_twice_at_once_registers_one_borrower(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let draft = call(&api, "POST", "/v1/applications", &token, None).await;
        let id = draft.body["id"].as_str().unwrap().to_owned();
        let another = call(&api, "POST", "/v1/applications", &token, None).await;
        assert_eq!((another.status, another.code()), (StatusCode::CONFLICT, "conflict.application_open"), "one open application at a time");
        call(&api, "PATCH", &format!("/v1/applications/{id}"), &token, Some(json!({"revision": 1, "answers": answers("张三")}))).await;
        let path = format!("/v1/applications/{id}/submit");
        let replies = futures::future::join_all((0..3).map(|_| call(&api, "POST", &path, &token, None))).await;
        for reply in &replies {
            assert!(reply.status == StatusCode::OK || reply.code() == "conflict.concurrent_update", "{:?}", reply.body);
        }
        let done = call(&api, "GET", &format!("/v1/applications/{id}"), &token, None).await;
        let history: Vec<&str> = done.body["history"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
        assert_eq!(history, ["draft", "submitted", "verifying"], "submitted once");
        let (_, page) = api.get("/v1/applications?state=verifying").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
    }

    async fn a_retried_start_replays_its_draft_and_racing_starts_open_one(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let start = |key: String| {
            let (api, token) = (&api, token.clone());
            async move { api.as_caller_keyed("POST", "/v1/applications", Some(&token), Some(&key), None).await }
        };
        let first = start("start-1".into()).await;
        assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
        let retried = start("start-1".into()).await;
        assert!(retried.replayed, "the same key answers with the draft it made: {:?}", retried.body);
        assert_eq!(retried.body["id"], first.body["id"]);
        let id = first.body["id"].as_str().unwrap();
        let withdrawn = call(&api, "POST", &format!("/v1/applications/{id}/withdraw"), &token, None).await;
        assert_eq!(withdrawn.status, StatusCode::OK, "{:?}", withdrawn.body);

        let replies = futures::future::join_all((0..6).map(|i| start(format!("race-{i}")))).await;
        let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
        for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
            assert_eq!(reply.code(), "conflict.application_open", "{:?}", reply.body);
        }
        assert_eq!(created, 1, "exactly one of six racing starts opens an application");
        let mine = call(&api, "GET", "/v1/applications", &token, None).await;
        let open: Vec<&Value> = mine.body["items"].as_array().unwrap().iter().filter(|a| a["state"] == "draft").collect();
        assert_eq!(open.len(), 1);
    }

    async fn ten_identity_tries_at_most_even_in_parallel_and_a_method_down_uses_none(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let id = submitted(&api, &token, "张三 down-bank fail-face").await;
        let path = format!("/v1/applications/{id}/verification");
        for _ in 0..12 {
            let down = call(&api, "POST", &path, &token, Some(json!({"method": "bank_card"}))).await;
            assert_eq!(down.body["outcome"], "unavailable", "a method that is down checked nothing: {:?}", down.body);
        }
        let face = || call(&api, "POST", &path, &token, Some(json!({"method": "face"})));
        let replies = futures::future::join_all((0..14).map(|_| face())).await;
        for reply in replies.iter().filter(|r| r.body["outcome"] != "failed") {
            assert_eq!(reply.code(), "identity.too_many_attempts", "{:?}", reply.body);
        }
        for _ in 0..20 {
            let reply = face().await;
            if reply.code() == "identity.too_many_attempts" {
                break;
            }
            assert_eq!(reply.body["outcome"], "failed", "{:?}", reply.body);
        }
        let app = call(&api, "GET", &format!("/v1/applications/{id}"), &token, None).await;
        let count = |outcome: &str| app.body["checks"].as_array().unwrap().iter().filter(|c| c["outcome"] == outcome).count();
        assert_eq!((count("failed"), count("unavailable"), count("started")), (10, 12, 0), "{:?}", app.body["checks"]);
        let refused = face().await;
        assert_eq!(refused.code(), "identity.too_many_attempts");
    }

    async fn a_risk_decline_tells_the_borrower_what_to_do_not_the_exact_cause(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let id = submitted(&api, &token, "张三").await;
        api.clock.advance(Duration::seconds(61));
        let verified = verify_by_sms(&api, &gateway, &token, &id).await;
        assert_eq!(verified.body["application"]["state"], "referred", "{:?}", verified.body);
        let rita = operator_session(&api, "rita", Role::Risk).await;
        let declined = call(&api, "POST", &format!("/v1/applications/{id}/decision"), &rita, Some(json!({"decision": "decline", "reasons": ["risk.blacklist"], "note": "blacklist hit"}))).await;
        assert_eq!(declined.body["reasons"], json!(["risk.blacklist"]), "the underwriter sees the cause: {:?}", declined.body);
        let (_, staff) = api.get(&format!("/v1/applications/{id}")).await;
        assert_eq!(staff["reasons"], json!(["risk.blacklist"]));
        let mine = call(&api, "GET", &format!("/v1/applications/{id}"), &token, None).await;
        assert_eq!(mine.body["reasons"], json!(["risk.contact_us"]), "{:?}", mine.body);
        assert!(!mine.body.to_string().contains("blacklist"), "nowhere in the borrower's view: {:?}", mine.body);
        let status = call(&api, "GET", &format!("/v1/applications/{id}/status"), &token, None).await;
        assert_eq!((status.body["why"][0]["code"].as_str(), status.body["next_action"].as_str()), (Some("risk.contact_us"), Some("contact_support")));
        let listed = call(&api, "GET", "/v1/applications", &token, None).await;
        assert!(!listed.body.to_string().contains("blacklist") && !listed.body.to_string().contains("rita"), "{:?}", listed.body);
        assert_eq!(listed.body["items"][0]["reasons"], json!(["risk.contact_us"]));
        let history = &mine.body["history"];
        assert!(history.as_array().unwrap().iter().any(|s| s["actor"] == "lender"), "the lender's people are the lender: {history:?}");
    }

    async fn an_identity_registered_under_another_number_says_so_and_how_to_go_on(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let registered = api.send("POST", "/v1/borrowers", Some("b-x"), &json!({
            "kind": "individual", "name": "张三", "resident_id": "11010519491231002X", "mobile": "13900000000"
        })).await;
        assert_eq!(registered.status, StatusCode::CREATED, "{:?}", registered.body);
        let phone = borrower_session(&api, &gateway, MOBILE).await;
        let draft = call(&api, "POST", "/v1/applications", &phone, None).await;
        let id = draft.body["id"].as_str().unwrap().to_owned();
        call(&api, "PATCH", &format!("/v1/applications/{id}"), &phone,
            Some(json!({"revision": 1, "answers": answers("张三")}))).await;
        let refused = call(&api, "POST", &format!("/v1/applications/{id}/submit"), &phone, None).await;
        assert_eq!((refused.status, refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "identity.already_registered"), "{:?}", refused.body);
        assert_eq!(refused.body["details"]["next_action"], "sign_in_with_registered_number");
        assert!(refused.body["message"].as_str().unwrap().contains("another mobile number"), "{:?}", refused.body);
    }

    async fn a_save_moves_the_deadline_and_the_timers_follow(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = api_with_everything(db, &gateway).await;
        let token = borrower_session(&api, &gateway, MOBILE).await;
        let draft = call(&api, "POST", "/v1/applications", &token, None).await;
        let id = draft.body["id"].as_str().unwrap().to_owned();
        let runner = JobRunner::new(api.store.clone(), api.clock.clone(), RunnerConfig { worker_id: "w".into(), ..RunnerConfig::default() })
            .register(TimerHandler);
        api.clock.advance(Duration::days(20));
        let saved = call(&api, "PATCH", &format!("/v1/applications/{id}"), &token, Some(json!({"revision": 1, "answers": {"purpose": "stock"}}))).await;
        assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
        api.clock.advance(Duration::days(11));
        while runner.poll_once().await.unwrap().ran() > 0 {}
        let (_, still) = api.get(&format!("/v1/applications/{id}")).await;
        assert_eq!(still["state"], "draft", "the first deadline passed, but the draft was saved since");
        api.clock.advance(Duration::days(20));
        while runner.poll_once().await.unwrap().ran() > 0 {}
        let (_, ended) = api.get(&format!("/v1/applications/{id}")).await;
        assert_eq!((ended["state"].as_str(), ended["reason"].as_str()), (Some("expired"), Some("user.abandoned")));
    }
}
