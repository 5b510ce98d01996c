//! Credit decisions over HTTP, on both stores: a policy authored by one risk officer and
//! activated by another; applications approved into a line, declined with their top reasons,
//! referred to an underwriter who sees the record; a bureau that is down, handled as the
//! policy says and recorded; an application in flight decided under the version it was
//! submitted under after a new one took effect; every decision replayed to the same answer;
//! a challenger beside the policy in effect, in shadow and applied, and their comparison.

mod common;

use std::sync::Arc;

use lendcore_connectors::bureau::SandboxBureau;
use lendcore_domain::access::Role;
use lendcore_domain::decision::DEFAULT_POLICY;
use lendcore_testkit::store_test;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::MockServer;

use common::applicants::{api_with_everything_and, call, submitted_with, verify_by_sms_at};
use common::{Api, borrower_session, gateway_accepting, operator_session, scrape, series};

fn policy() -> Value {
    serde_json::from_str(DEFAULT_POLICY).unwrap()
}

/// A policy authored by one risk officer and activated by another; their session tokens.
async fn policy_in_effect(api: &Api, document: Value) -> (String, String) {
    let maker = operator_session(api, "rita", Role::Risk).await;
    let checker = operator_session(api, "rick", Role::Risk).await;
    authored_and_activated(api, &maker, &checker, document).await;
    (maker, checker)
}

async fn authored_and_activated(api: &Api, maker: &str, checker: &str, document: Value) -> u64 {
    let authored = call(
        api,
        "POST",
        "/v1/policies",
        maker,
        Some(json!({"code": "consumer", "document": document})),
    )
    .await;
    assert_eq!(authored.status, StatusCode::CREATED, "{:?}", authored.body);
    let version = authored.body["version"].as_u64().unwrap();
    let path = format!("/v1/policies/consumer/versions/{version}/activate");
    let activated = call(api, "POST", &path, checker, Some(json!({}))).await;
    assert_eq!(activated.status, StatusCode::OK, "{:?}", activated.body);
    version
}

struct Applicant {
    name: &'static str,
    mobile: &'static str,
    resident_id: &'static str,
    income: i64,
    requested: i64,
}

const GOOD: Applicant = Applicant {
    name: "李四",
    mobile: "13800000001",
    resident_id: "110105199203150126",
    income: 1_500_000,
    requested: 2_000_000,
};

fn answers(a: &Applicant) -> Value {
    json!({
        "name": a.name, "resident_id": a.resident_id, "mobile": a.mobile,
        "bank_account": "6222020200112233445",
        "requested_limit_minor": a.requested, "monthly_income_minor": a.income,
    })
}

/// Signs in, applies and submits; the session and the application's id.
async fn submit(api: &Api, gateway: &MockServer, a: &Applicant) -> (String, String) {
    let token = borrower_session(api, gateway, a.mobile).await;
    let id = submitted_with(api, &token, answers(a)).await;
    (token, id)
}

/// Verifies a submitted application; the application as the applicant then sees it.
async fn verify(api: &Api, gateway: &MockServer, a: &Applicant, token: &str, id: &str) -> Value {
    let verified = verify_by_sms_at(api, gateway, token, id, a.mobile).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    verified.body["application"].clone()
}

/// The decision on an application, as an underwriter reads it, and its replay.
async fn decision_of(api: &Api, id: &str) -> Value {
    let (status, record) = api.get(&format!("/v1/applications/{id}/decision")).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    let replay = format!(
        "/v1/borrowers/{}/decisions/{}/replay",
        record["borrower_id"].as_str().unwrap(),
        record["id"].as_str().unwrap()
    );
    let (status, replayed) = api.get(&replay).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["same"], true, "{replayed}");
    record
}

/// An applicant of this test's own, with a valid resident identity number (born 1990,
/// sequence `n`): the ones above are few.
fn numbered(n: u32) -> (String, String) {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let base = format!("11010519900101{:03}", n % 1000);
    let sum: u32 = base
        .bytes()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    (format!("{base}{check}"), format!("1390000{n:04}"))
}

/// A challenge as the API answers it, turned back into the domain's: which borrowers it takes.
fn challenge_of(body: &Value) -> lendcore_domain::decision::Challenge {
    serde_json::from_value(body.clone()).unwrap()
}

async fn started(db: &lendcore_testkit::TestDb) -> (Api, MockServer) {
    let gateway = gateway_accepting().await;
    let api = api_with_everything_and(db, &gateway, |engine| {
        engine.with_bureau(Arc::new(SandboxBureau))
    })
    .await;
    (api, gateway)
}

store_test! {
    async fn a_policy_is_authored_by_one_person_and_activated_by_another(db: &TestDb) {
        let (api, _gateway) = started(db).await;
        let (_, features) = api.get("/v1/features").await;
        let names: Vec<&str> = features["items"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"days_overdue_now") && names.contains(&"bureau_lenders_open"), "{names:?}");

        let maker = operator_session(&api, "rita", Role::Risk).await;
        let checker = operator_session(&api, "rick", Role::Risk).await;
        let viewer = operator_session(&api, "vera", Role::Viewer).await;
        let mut broken = policy();
        broken["tables"][0]["rules"][0]["when"] = json!({"shoe_size": {"min": 1}});
        broken["bands"][0]["max_score"] = json!(160);
        let refused = call(&api, "POST", "/v1/policies", &maker,
            Some(json!({"code": "consumer", "document": broken}))).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{:?}", refused.body);
        let problems: Vec<(&str, &str)> = refused.body["details"]["violations"].as_array().unwrap().iter()
            .map(|v| (v["field"].as_str().unwrap(), v["code"].as_str().unwrap())).collect();
        assert_eq!(problems, [
            ("tables[0].rules[0].when.shoe_size", "policy.unknown_feature"),
            ("bands", "policy.gap"),
        ], "every problem at once");
        let checked = call(&api, "POST", "/v1/policies/validate", &viewer, Some(policy())).await;
        assert_eq!((checked.status, &checked.body["score_range"]), (StatusCode::OK, &json!([20, 330])));
        let not_risk = call(&api, "POST", "/v1/policies", &viewer,
            Some(json!({"code": "consumer", "document": policy()}))).await;
        assert_eq!(not_risk.status, StatusCode::FORBIDDEN);

        let authored = call(&api, "POST", "/v1/policies", &maker,
            Some(json!({"code": "consumer", "document": policy()}))).await;
        assert_eq!(authored.status, StatusCode::CREATED, "{:?}", authored.body);
        assert_eq!((authored.body["version"].as_u64(), authored.body["status"].as_str()), (Some(1), Some("draft")));
        let own = call(&api, "POST", "/v1/policies/consumer/versions/1/activate", &maker, Some(json!({}))).await;
        assert_eq!((own.status, own.code()), (StatusCode::FORBIDDEN, "auth.four_eyes"));
        let past = call(&api, "POST", "/v1/policies/consumer/versions/1/activate", &checker,
            Some(json!({"effective_from": "2020-01-01T00:00:00Z"}))).await;
        assert_eq!(past.code(), "validation.effective_in_past");
        let activated = call(&api, "POST", "/v1/policies/consumer/versions/1/activate", &checker, Some(json!({}))).await;
        assert_eq!(activated.status, StatusCode::OK, "{:?}", activated.body);
        assert_eq!(activated.body["status"], "in_effect");
        assert_ne!(activated.body["activation"]["by"], activated.body["authored_by"]);
        let again = call(&api, "POST", "/v1/policies/consumer/versions/1/activate", &checker, Some(json!({}))).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict.policy_activated"));
        let missing = call(&api, "GET", "/v1/policies/consumer/versions/9", &viewer, None).await;
        assert_eq!(missing.code(), "not_found.policy_version");
        let (_, list) = api.get("/v1/policies").await;
        assert_eq!(list["items"][0]["status"], "in_effect");
        assert!(list["items"][0].get("document").is_none(), "lists leave documents out");
    }

    async fn applications_are_approved_declined_and_referred_by_the_policy(db: &TestDb) {
        let (api, gateway) = started(db).await;
        let (_, underwriter) = policy_in_effect(&api, policy()).await;

        // Approved, up to what was asked, and accepted into a line of that limit.
        let (token, id) = submit(&api, &gateway, &GOOD).await;
        let decided = verify(&api, &gateway, &GOOD, &token, &id).await;
        assert_eq!(decided["state"], "approved", "{decided}");
        assert_eq!((decided["offer"]["limit_minor"].as_i64(), decided["offer"]["rate_tier"].as_str()), (Some(2_000_000), Some("preferred")));
        let record = decision_of(&api, &id).await;
        assert_eq!((record["evaluation"]["outcome"].as_str(), record["evaluation"]["score"]["value"].as_i64()), (Some("approve"), Some(275)));
        assert_eq!(record["policy"], json!({"code": "consumer", "version": 1}));
        assert_eq!(record["bureau"]["inquiry"]["answer"], "found");
        let kept = api.store.begin_read().await.unwrap().risk_records(record["borrower_id"].as_str().unwrap(), chrono::Utc::now()).await.unwrap().bureau;
        assert_eq!(kept.map(|(bureau, answer, _)| (bureau, answer["lenders_open"].clone())), Some(("sandbox".into(), json!(1))), "the report kept for later checks");
        let accepted = call(&api, "POST", &format!("/v1/applications/{id}/accept"), &token, None).await;
        assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
        let (_, line) = api.get(&format!("/v1/credit-lines/{}", accepted.body["line_id"].as_str().unwrap())).await;
        assert_eq!((&line["limit_minor"], &line["rate_tier"]), (&json!(2_000_000), &json!("preferred")), "the line keeps the offer's price tier");
        let explained = call(&api, "GET", &format!("/v1/applications/{id}/status"), &token, None).await;
        let by = &explained.body["decided_by"];
        assert_eq!(
            (&by["decided_by"]["by"], &by["decided_by"]["band"], &by["decided_by"]["of"], &by["decided_by"]["min_score"]),
            (&json!("score_band"), &json!(4), &json!(4), &json!(260)),
            "{explained:?}"
        );
        assert_eq!((&by["policy"], by["decision_id"].as_str()), (&json!({"code": "consumer", "version": 1}), record["id"].as_str()));
        assert!(by["text"].as_str().unwrap().contains("band 4 of 4"), "{by}");

        // Declined by its score, with the band's reason and the characteristics that cost most.
        let young = Applicant { name: "王五 bureau-fair", mobile: "13800000002", resident_id: "440305200601010121", income: 200_000, requested: 5_000_000 };
        let (token, id) = submit(&api, &gateway, &young).await;
        let decided = verify(&api, &gateway, &young, &token, &id).await;
        assert_eq!(decided["state"], "declined", "{decided}");
        assert_eq!(decided["reasons"], json!(["credit.score_too_low", "credit.income_insufficient", "credit.limited_history", "credit.delinquency_record"]));
        let (_, status) = {
            let explained = call(&api, "GET", &format!("/v1/applications/{id}/status"), &token, None).await;
            (explained.status, explained.body)
        };
        assert!(status.to_string().contains("income"), "the borrower reads why: {status}");
        assert_eq!(status["decided_by"]["decided_by"]["band"], 1, "the lowest band declined: {status}");
        let record = decision_of(&api, &id).await;
        assert_eq!(record["evaluation"]["score"]["value"], 135);
        let because: Vec<&str> = record["evaluation"]["explanation"].as_array().unwrap().iter().map(|e| e["because"].as_str().unwrap()).collect();
        assert_eq!(because[1], "monthly_income_minor: 5 of 60 points");

        // Referred by a rule, and decided by an underwriter who reads the record.
        let elder = Applicant { name: "张三", mobile: "13800000003", resident_id: "11010519491231002X", income: 1_500_000, requested: 1_000_000 };
        let (token, id) = submit(&api, &gateway, &elder).await;
        let decided = verify(&api, &gateway, &elder, &token, &id).await;
        assert_eq!(decided["state"], "referred", "{decided}");
        let record = decision_of(&api, &id).await;
        assert_eq!(record["evaluation"]["fired"][0], json!({"table": "eligibility", "row": 2, "outcome": "refer", "reason": "policy.regulatory_limit"}));
        let queue = call(&api, "GET", "/v1/applications?state=referred", &underwriter, None).await;
        assert!(queue.body.to_string().contains(&id));
        let metrics = scrape(&api).await;
        assert_eq!(series(&metrics, r#"lendcore_queue_items{queue="applications_referred"}"#), 1.0, "the underwriter's queue: {metrics}");
        let approved = call(&api, "POST", &format!("/v1/applications/{id}/decision"), &underwriter,
            Some(json!({"decision": "approve", "limit_minor": 800_000, "valid_days": 180, "note": "checked affordability"}))).await;
        assert_eq!((approved.status, approved.body["state"].as_str()), (StatusCode::OK, Some("approved")), "{:?}", approved.body);
        let explained = call(&api, "GET", &format!("/v1/applications/{id}/status"), &token, None).await;
        assert_eq!(explained.body["decided_by"]["decided_by"], json!({"by": "person"}), "{:?}", explained.body);
        assert_eq!(explained.body["decided_by"]["decision_id"], record["id"], "the policy's record that referred it");
        let own = call(&api, "GET", &format!("/v1/applications/{id}/decision"), &token, None).await;
        assert_eq!(own.status, StatusCode::FORBIDDEN, "the record is not the borrower's to read");

        // Counted once committed: the decisions by outcome and reason as sealed, the
        // applications' steps as published (counters only grow: the other store's run adds too).
        lendcore_engine::audit::seal(api.store.as_ref()).await.unwrap();
        lendcore_engine::notify::publish(&api.engine).await.unwrap();
        let metrics = scrape(&api).await;
        for counted in [
            r#"lendcore_credit_decisions_total{subject="application",outcome="approve"}"#,
            r#"lendcore_credit_decisions_total{subject="application",outcome="decline"}"#,
            r#"lendcore_credit_decisions_total{subject="application",outcome="refer"}"#,
            r#"lendcore_credit_decision_reasons_total{subject="application",reason="credit.score_too_low"}"#,
            r#"lendcore_credit_decision_reasons_total{subject="application",reason="policy.regulatory_limit"}"#,
            r#"lendcore_events_total{topic="application.draft",reason=""}"#,
            r#"lendcore_events_total{topic="application.assessing",reason=""}"#,
            r#"lendcore_events_total{topic="application.declined",reason="credit.score_too_low"}"#,
            r#"lendcore_events_total{topic="application.referred",reason=""}"#,
            r#"lendcore_events_total{topic="application.accepted",reason=""}"#,
        ] {
            assert!(series(&metrics, counted) >= 1.0, "{counted} in {metrics}");
        }
        assert_eq!(series(&metrics, r#"lendcore_queue_items{queue="applications_referred"}"#), 0.0, "decided by the underwriter");
    }

    async fn a_bureau_that_is_down_is_handled_as_the_policy_says_and_recorded(db: &TestDb) {
        let (api, gateway) = started(db).await;
        policy_in_effect(&api, policy()).await;
        let unlucky = Applicant { name: "赵六 bureau-down", ..GOOD };
        let (token, id) = submit(&api, &gateway, &unlucky).await;
        let decided = verify(&api, &gateway, &unlucky, &token, &id).await;
        assert_eq!((decided["state"].as_str(), decided["offer"]["limit_minor"].as_i64()), (Some("approved"), Some(300_000)), "{decided}");
        let record = decision_of(&api, &id).await;
        assert_eq!(record["evaluation"]["bureau"], "unavailable_decided_without");
        assert_eq!(record["evaluation"]["limit_cap_minor"], 300_000);
        assert_eq!(record["bureau"]["inquiry"]["answer"], "unavailable");
        assert_eq!(record["features"]["bureau_lenders_open"], Value::Null);

        let mut referring = policy();
        referring["bureau_unavailable"] = json!({"outcome": "refer"});
        let maker = operator_session(&api, "maker2", Role::Risk).await;
        let checker = operator_session(&api, "checker2", Role::Risk).await;
        authored_and_activated(&api, &maker, &checker, referring).await;
        let another = Applicant { name: "钱七 bureau-slow", mobile: "13800000004", resident_id: "320102199507070125", ..GOOD };
        let (token, id) = submit(&api, &gateway, &another).await;
        let decided = verify(&api, &gateway, &another, &token, &id).await;
        assert_eq!(decided["state"], "referred", "{decided}");
        let record = decision_of(&api, &id).await;
        assert_eq!(record["evaluation"]["bureau"], "unavailable_referred");
        let (_, staff_view) = api.get(&format!("/v1/applications/{id}")).await;
        let note = staff_view["history"].as_array().unwrap().last().unwrap()["note"].as_str().unwrap().to_owned();
        assert!(note.contains("bureau did not answer"), "{note}");
    }

    async fn work_in_flight_keeps_the_version_it_started_under(db: &TestDb) {
        let (api, gateway) = started(db).await;
        let (maker, checker) = policy_in_effect(&api, policy()).await;
        let (token, in_flight) = submit(&api, &gateway, &GOOD).await;

        // Version 2 declines everyone; it takes effect while the first application waits.
        let mut strict = policy();
        strict["bands"] = json!([{ "outcome": "decline", "reason": "credit.score_too_low" }]);
        assert_eq!(authored_and_activated(&api, &maker, &checker, strict).await, 2);

        let decided = verify(&api, &gateway, &GOOD, &token, &in_flight).await;
        assert_eq!(decided["state"], "approved", "decided under version 1: {decided}");
        assert_eq!(decision_of(&api, &in_flight).await["policy"]["version"], 1);

        let later = Applicant { name: "孙八", mobile: "13800000005", resident_id: "320102199507070125", ..GOOD };
        let (token, id) = submit(&api, &gateway, &later).await;
        let decided = verify(&api, &gateway, &later, &token, &id).await;
        assert_eq!(decided["state"], "declined", "{decided}");
        assert_eq!(decision_of(&api, &id).await["policy"]["version"], 2);
    }

    async fn a_drawdown_check_reads_the_borrowers_age_from_their_sealed_record(db: &TestDb) {
        let (api, gateway) = started(db).await;
        let mut document = policy();
        document["tables"].as_array_mut().unwrap().push(json!({
            "name": "young", "stage": "drawdown", "hit": "first",
            "rules": [{ "when": { "age_years": { "below": 40 } }, "outcome": "hold", "reason": "risk.large_amount" }]
        }));
        let (maker, _) = policy_in_effect(&api, document).await;
        let (token, id) = submit(&api, &gateway, &GOOD).await;
        assert_eq!(verify(&api, &gateway, &GOOD, &token, &id).await["state"], "approved");
        let accepted = call(&api, "POST", &format!("/v1/applications/{id}/accept"), &token, None).await;
        let line_id = accepted.body["line_id"].as_str().unwrap().to_owned();
        let product = api.send("POST", "/v1/products", None, &json!({
            "code": "cash", "name": "Cash", "kind": "installment", "currency": "CNY",
            "terms": {
                "amount": {"min_minor": 100000, "max_minor": 5000000},
                "terms": {"unit": "month", "options": [12]},
                "rate": {"basis": "annual", "value": "0.18"},
                "repayment_method": "equal_installment",
                "penalty_daily_rate": "0.0005",
                "grace_days": 3
            }
        })).await;
        assert_eq!(product.status, StatusCode::CREATED, "{:?}", product.body);
        // 34 years old, from the identity number sealed in the borrower's record.
        let quoted = api.send("POST", "/v1/drawdowns/quotes", None, &json!({
            "line_id": line_id, "product_code": "cash", "amount_minor": 100_000, "term": 12, "account": "acct-1"
        })).await;
        assert_eq!(quoted.status, StatusCode::CREATED, "{:?}", quoted.body);
        assert_eq!(quoted.body["review_before_payout"], "risk.large_amount", "{:?}", quoted.body);

        // Held when confirmed: the drawdown's view names the rule (its reason is one the
        // borrower may see); declined by a person, it says a person decided.
        let confirmed = api.send("POST", "/v1/drawdowns/confirm", Some("confirm-1"), &json!({
            "confirmation_token": quoted.body["confirmation_token"]
        })).await;
        assert_eq!(confirmed.body["drawdown"]["status"]["state"], "held_for_review");
        let drawdown_id = confirmed.body["drawdown"]["id"].as_str().unwrap().to_owned();
        let (_, held) = api.get(&format!("/v1/drawdowns/{drawdown_id}")).await;
        assert_eq!(held["decided_by"]["decided_by"], json!({"by": "rule", "table": "young", "row": 1}), "{held}");
        assert!(held["decided_by"]["text"].as_str().unwrap().contains("rule 1 of the “young” table"), "{held}");
        let path = format!("/v1/drawdowns/{drawdown_id}");
        let in_chinese = api.http.get(format!("{}{path}", api.base))
            .header("accept-language", "zh-CN").send().await.unwrap();
        assert_eq!((in_chinese.headers()["content-language"].to_str().unwrap(), in_chinese.headers()["vary"].to_str().unwrap()), ("zh-Hans", "accept-language"));
        let in_chinese = common::Reply::checked("GET", &path, in_chinese).await.body;
        assert!(in_chinese["decided_by"]["text"].as_str().unwrap().contains("“young”表第1条规则"), "{in_chinese}");
        let declined = api.as_caller_keyed("POST", &format!("/v1/drawdowns/{drawdown_id}/review/decline"), Some(&maker), Some("decline-1"),
            Some(&json!({"reason": "risk.large_amount", "note": "no documents came"}))).await;
        assert_eq!(declined.status, StatusCode::OK, "{:?}", declined.body);
        let (_, refused) = api.get(&format!("/v1/drawdowns/{drawdown_id}")).await;
        assert_eq!(refused["drawdown"]["status"]["state"], "refused");
        assert_eq!(refused["decided_by"]["decided_by"], json!({"by": "person"}), "{refused}");
    }
    async fn a_challenger_decides_beside_the_champion_in_shadow_then_applied(db: &TestDb) {
        let (api, gateway) = started(db).await;
        let (rita, rick) = policy_in_effect(&api, policy()).await;
        let viewer = operator_session(&api, "vera", Role::Viewer).await;
        // Version 2, authored by rita and never activated, declines every score.
        let mut strict = policy();
        strict["bands"] = json!([{ "outcome": "decline", "reason": "credit.score_too_low" }]);
        let authored = call(&api, "POST", "/v1/policies", &rita,
            Some(json!({"code": "consumer", "document": strict}))).await;
        assert_eq!(authored.body["version"], 2, "{:?}", authored.body);

        let start = |by: &str, body: Value| {
            let by = by.to_owned();
            let api = &api;
            async move { call(api, "POST", "/v1/challenges", &by, Some(body)).await }
        };
        for (by, body, status, code) in [
            (&rita, json!({"code": "consumer", "version": 2, "share_percent": 0, "mode": "shadow"}), StatusCode::BAD_REQUEST, "validation.share_out_of_range"),
            (&rita, json!({"code": "consumer", "version": 9, "share_percent": 10, "mode": "shadow"}), StatusCode::NOT_FOUND, "not_found.policy_version"),
            (&rita, json!({"code": "consumer", "version": 1, "share_percent": 10, "mode": "shadow"}), StatusCode::CONFLICT, "conflict.challenger_is_champion"),
            (&rita, json!({"code": "consumer", "version": 2, "share_percent": 10, "mode": "applied"}), StatusCode::FORBIDDEN, "auth.four_eyes"),
            (&viewer, json!({"code": "consumer", "version": 2, "share_percent": 10, "mode": "shadow"}), StatusCode::FORBIDDEN, "auth.forbidden"),
        ] {
            let refused = start(by, body.clone()).await;
            assert_eq!((refused.status, refused.code()), (status, code), "{body}: {:?}", refused.body);
        }
        let missing = call(&api, "GET", "/v1/policies/consumer/comparison", &viewer, None).await;
        assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found.challenge"));

        // In shadow for everyone: the champion approves, the challenger's decline is recorded.
        let shadow = start(&rita, json!({"code": "consumer", "version": 2, "share_percent": 100, "mode": "shadow"})).await;
        assert_eq!(shadow.status, StatusCode::CREATED, "{:?}", shadow.body);
        let second = start(&rick, json!({"code": "consumer", "version": 2, "share_percent": 50, "mode": "shadow"})).await;
        assert_eq!((second.status, second.code()), (StatusCode::CONFLICT, "conflict.challenge_running"));
        let (token, id) = submit(&api, &gateway, &GOOD).await;
        assert_eq!(verify(&api, &gateway, &GOOD, &token, &id).await["state"], "approved");
        let record = decision_of(&api, &id).await;
        assert_eq!((&record["policy"]["version"], &record["evaluation"]["outcome"]), (&json!(1), &json!("approve")));
        let beside = &record["beside"];
        assert_eq!((&beside["side"], &beside["policy"]["version"], &beside["evaluation"]["outcome"]),
            (&json!("challenger"), &json!(2), &json!("decline")), "{record}");
        assert_eq!(beside["challenge_id"], shadow.body["id"]);
        assert_eq!(beside["evaluation"]["score"], record["evaluation"]["score"], "the same scorecard on the same features");

        let compared = call(&api, "GET", "/v1/policies/consumer/comparison", &viewer, None).await;
        assert_eq!(compared.status, StatusCode::OK, "{:?}", compared.body);
        let c = &compared.body;
        assert_eq!((&c["decisions"], &c["agreed"]), (&json!(1), &json!(0)), "{c}");
        assert_eq!((&c["champion"]["outcomes"], &c["champion"]["approval_rate"], &c["champion"]["applied"]), (&json!({"approve": 1}), &json!(1.0), &json!(1)));
        assert_eq!((&c["challenger"]["outcomes"], &c["challenger"]["approval_rate"], &c["challenger"]["applied"]), (&json!({"decline": 1}), &json!(0.0), &json!(0)));
        assert_eq!(c["challenger"]["reasons"], json!({"credit.score_too_low": 1}));
        assert_eq!(c["outcome_pairs"], json!([{"champion": "approve", "challenger": "decline", "count": 1}]));
        assert_eq!(c["champion_versions"], json!([{"policy": {"code": "consumer", "version": 1}, "decisions": 1}]));
        assert_eq!((c["champion"]["mean_score"].as_f64(), c["scores"].as_array().map(Vec::len)), (Some(275.0), Some(1)));
        assert_eq!(c["scores"][0], json!({"from": 275, "to": 275, "champion": 1, "challenger": 1}));

        let end = format!("/v1/challenges/{}/end", shadow.body["id"].as_str().unwrap());
        let ended = call(&api, "POST", &end, &rick, None).await;
        assert_eq!((ended.status, &ended.body["ended_by"]), (StatusCode::OK, &json!("ops:rick")), "{:?}", ended.body);
        let again = call(&api, "POST", &end, &rick, None).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict.challenge_ended"));

        // Applied for half the borrowers, started by someone other than its author: those the
        // hash takes get the challenger's decline, the others the champion's approval alone.
        let applied = start(&rick, json!({"code": "consumer", "version": 2, "share_percent": 50, "mode": "applied"})).await;
        assert_eq!(applied.status, StatusCode::CREATED, "{:?}", applied.body);
        let challenge = challenge_of(&applied.body);
        let mut sides = (0, 0);
        // Until both sides were seen (a borrower falls on either with even odds).
        for n in 1..=20 {
            if sides.0 > 0 && sides.1 > 0 {
                break;
            }
            let (resident_id, mobile) = numbered(n);
            let resident_id: &'static str = Box::leak(resident_id.into_boxed_str());
            let mobile: &'static str = Box::leak(mobile.into_boxed_str());
            let a = Applicant { name: "周九", mobile, resident_id, ..GOOD };
            // An hour apart: every sign-in code here comes from 127.0.0.1, and the per-client
            // limit (20 an hour) would otherwise end the search before both sides are seen.
            api.clock.advance(chrono::Duration::hours(1));
            let (token, id) = submit(&api, &gateway, &a).await;
            let state = verify(&api, &gateway, &a, &token, &id).await["state"].clone();
            let record = decision_of(&api, &id).await;
            let borrower = record["borrower_id"].as_str().unwrap();
            if challenge.takes(borrower) {
                sides.1 += 1;
                assert_eq!((&state, &record["policy"]["version"]), (&json!("declined"), &json!(2)), "{record}");
                assert_eq!((&record["beside"]["side"], &record["beside"]["evaluation"]["outcome"]), (&json!("champion"), &json!("approve")));
            } else {
                sides.0 += 1;
                assert_eq!((&state, &record["policy"]["version"]), (&json!("approved"), &json!(1)), "{record}");
                assert!(record.get("beside").is_none(), "{record}");
            }
        }
        assert!(sides.0 > 0 && sides.1 > 0, "{sides:?}");
        let path = format!("/v1/policies/consumer/comparison?challenge={}", challenge.id);
        let compared = call(&api, "GET", &path, &viewer, None).await;
        assert_eq!(compared.body["decisions"], sides.1, "{:?}", compared.body);
        assert_eq!(compared.body["challenger"]["applied"], sides.1);
        assert_eq!(compared.body["champion"]["applied"], 0);
        let (_, listed) = api.get("/v1/challenges?code=consumer").await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 2);
        assert_eq!(listed["items"][0]["id"].as_str(), Some(challenge.id.as_str()), "newest first");
        let unknown = call(&api, "GET", "/v1/policies/consumer/comparison?challenge=nope", &viewer, None).await;
        assert_eq!(unknown.code(), "not_found.challenge");

        lendcore_engine::audit::seal(api.store.as_ref()).await.unwrap();
        let mut uow = api.store.begin_read().await.unwrap();
        let audited: Vec<(String, String)> = uow.audit_records(0, 10_000).await.unwrap().into_iter()
            .filter(|r| r.entry.action.starts_with("policy.challenge_"))
            .map(|r| (r.entry.actor, r.entry.action))
            .collect();
        assert_eq!(audited, [
            ("ops:rita".to_owned(), "policy.challenge_started".to_owned()),
            ("ops:rick".to_owned(), "policy.challenge_ended".to_owned()),
            ("ops:rick".to_owned(), "policy.challenge_started".to_owned()),
        ]);
    }

    async fn a_model_from_the_gorules_editor_imports_into_a_policy(db: &TestDb) {
        let (api, _gateway) = started(db).await;
        let rita = operator_session(&api, "rita", Role::Risk).await;
        let model: Value = serde_json::from_str(include_str!("../../domain/tests/jdm/line-review.json")).unwrap();
        let imported = call(&api, "POST", "/v1/policies/import", &rita,
            Some(json!({"jdm": model, "stage": "line_review", "document": policy()}))).await;
        assert_eq!(imported.status, StatusCode::OK, "{:?}", imported.body);
        assert_eq!(imported.body["tables"], json!(["Frozen lines", "Limit changes", "Warnings", "Bureau freeze"]));
        assert_eq!(imported.body["check"]["valid"], true);
        assert!(imported.body["check"]["line_review_features"].as_array().unwrap().contains(&json!("line_frozen")));
        let authored = call(&api, "POST", "/v1/policies", &rita,
            Some(json!({"code": "consumer", "document": imported.body["document"]}))).await;
        assert_eq!(authored.status, StatusCode::CREATED, "{:?}", authored.body);

        // Refused, every problem named by its node: a model for another stage, a bad map.
        let wrong = call(&api, "POST", "/v1/policies/import", &rita,
            Some(json!({"jdm": model, "stage": "application", "document": policy()}))).await;
        assert_eq!((wrong.status, wrong.code()), (StatusCode::BAD_REQUEST, "jdm.unknown_field"), "{:?}", wrong.body);
        let text = wrong.body.to_string();
        assert!(text.contains("“Frozen?”") && text.contains("“Warnings”") && text.contains("line_frozen"), "{text}");
        let violations = wrong.body["details"]["violations"].as_array().unwrap();
        assert_eq!(violations.iter().filter(|v| v["message"].as_str().unwrap().contains("“Frozen?”")).count(), 1, "told once: {text}");
        let mapped = call(&api, "POST", "/v1/policies/import", &rita,
            Some(json!({"jdm": model, "stage": "line_review", "fields": {"x": "shoe_size"}, "document": policy()}))).await;
        assert_eq!((mapped.status, mapped.code()), (StatusCode::BAD_REQUEST, "jdm.unknown_field"));
        let junk = call(&api, "POST", "/v1/policies/import", &rita,
            Some(json!({"jdm": {"nodes": 5}, "stage": "line_review", "document": policy()}))).await;
        assert_eq!((junk.status, junk.code()), (StatusCode::BAD_REQUEST, "jdm.invalid"));
    }

    async fn a_policy_is_backtested_on_past_applications_beside_the_live_one(db: &TestDb) {
        let (api, gateway) = started(db).await;
        let rita = operator_session(&api, "rita", Role::Risk).await;
        // Over the server's usual 64 KiB body limit: backtests have their own.
        let applications = past_applications(1_500);
        assert!(applications.len() > 64 * 1024);
        let looser = json!({"document": {"name": "looser", "document": looser_policy()}});
        let ask = |against: Value| json!({
            "policy": looser, "against": against, "applications": applications,
            "target": "outcome", "bad": "bad",
        });

        // Nothing in effect yet to compare with.
        let early = call(&api, "POST", "/v1/policies/simulate", &rita, Some(ask(json!("live")))).await;
        assert_eq!((early.status, early.code()), (StatusCode::NOT_FOUND, "not_found.policy_in_effect"), "{:?}", early.body);

        let rick = operator_session(&api, "rick", Role::Risk).await;
        let version = authored_and_activated(&api, &rita, &rick, policy()).await;
        let live = call(&api, "POST", "/v1/policies/simulate", &rita, Some(ask(json!("live")))).await;
        assert_eq!(live.status, StatusCode::OK, "{:?}", live.body);
        let body = &live.body;
        assert_eq!(body["applications"], 1_500);
        let names: Vec<&str> = body["policies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["looser".to_owned(), format!("consumer@{version}")]);
        for p in body["policies"].as_array().unwrap() {
            let decided: u64 = p["outcomes"].as_object().unwrap().values().map(|c| c.as_u64().unwrap()).sum();
            assert_eq!(decided, 1_500, "{p}");
            let groups: Vec<&str> = p["bad_rates"].as_array().unwrap().iter().map(|b| b["group"].as_str().unwrap()).collect();
            assert!(p["outcomes"].as_object().unwrap().keys().all(|o| groups.contains(&o.as_str())), "a bad rate per outcome: {p}");
        }
        assert!(body["policies"][0]["outcomes"].get("decline").is_none(), "the looser policy declines nobody: {body}");
        let differ = body["differences"]["count"].as_u64().unwrap();
        assert!(differ > 0, "{body}");
        assert_eq!(body["differences"]["rows"].as_array().unwrap().len() as u64, differ.min(1_000), "the first thousand listed");
        assert_eq!(body["differences"]["rows"][0]["outcomes"].as_array().unwrap().len(), 2);

        // The live version named by its number gives the same figures.
        let named = call(&api, "POST", "/v1/policies/simulate", &rita,
            Some(ask(json!({"version": {"code": "consumer", "version": version}})))).await;
        assert_eq!(named.status, StatusCode::OK, "{:?}", named.body);
        assert_eq!(named.body["policies"], live.body["policies"]);

        // Backtests keep nothing: no new version.
        let (_, versions) = api.get("/v1/policies").await;
        assert_eq!(versions["items"].as_array().unwrap().len(), 1, "{versions}");

        // Bad input: every wrong cell named; an unknown version; a policy that does not validate;
        // the wrong caller.
        let cell = call(&api, "POST", "/v1/policies/simulate", &rita, Some(json!({
            "policy": "live", "applications": "monthly_income_minor\n12\nlots\n-\n"}))).await;
        assert_eq!((cell.status, cell.code()), (StatusCode::BAD_REQUEST, "simulate.bad_cell"), "{:?}", cell.body);
        assert_eq!(cell.body["details"]["violations"].as_array().unwrap().len(), 2, "{:?}", cell.body);
        let unknown = call(&api, "POST", "/v1/policies/simulate", &rita, Some(json!({
            "policy": {"version": {"code": "consumer", "version": 99}}, "applications": applications}))).await;
        assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found.policy_version"));
        let mut broken = policy();
        broken["bands"] = json!([]);
        let invalid = call(&api, "POST", "/v1/policies/simulate", &rita, Some(json!({
            "policy": {"document": {"name": "broken", "document": broken}}, "applications": applications}))).await;
        assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{:?}", invalid.body);
        assert!(invalid.body["details"]["violations"][0]["field"].as_str().unwrap().starts_with("policy.document"), "{:?}", invalid.body);
        let extra = call(&api, "POST", "/v1/policies/simulate", &rita, Some(json!({
            "policy": "live", "applications": applications, "stage": "drawdown"}))).await;
        assert_eq!(extra.status, StatusCode::BAD_REQUEST, "{:?}", extra.body);
        let borrower = borrower_session(&api, &gateway, GOOD.mobile).await;
        let refused = call(&api, "POST", "/v1/policies/simulate", &borrower, Some(ask(json!("live")))).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
        let huge = json!({"policy": "live", "applications": "x".repeat(17 * 1024 * 1024)});
        let too_large = call(&api, "POST", "/v1/policies/simulate", &rita, Some(huge)).await;
        assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", too_large.body);
    }
}

/// The default policy without its knock-out rules, its lowest band referred rather than declined.
fn looser_policy() -> Value {
    let mut document = policy();
    document["tables"] = json!([]);
    document["bands"][0] = json!({"max_score": 170, "outcome": "refer"});
    document
}

/// `n` past applications giving every feature the default policy reads at application, drawn
/// from a fixed seed, and how each turned out.
fn past_applications(n: usize) -> String {
    use lendcore_domain::decision::{FeatureType, Policy, Stage};
    use rand::{Rng, SeedableRng};
    let policy = Policy::compile(serde_json::from_value(policy()).unwrap()).unwrap();
    let features: Vec<_> = policy
        .features_read(Stage::Application)
        .iter()
        .copied()
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let mut csv: Vec<String> = features.iter().map(|f| f.name().to_owned()).collect();
    csv.push("outcome".to_owned());
    let mut out = csv.join(",") + "\n";
    for _ in 0..n {
        let mut cells: Vec<String> = features
            .iter()
            .map(|f| {
                let d = f.definition();
                match d.kind {
                    FeatureType::Number => {
                        let (lo, hi) = d.range.unwrap_or((0, 1000));
                        rng.random_range(lo..=hi.min(lo + 5_000_000)).to_string()
                    }
                    FeatureType::Flag => rng.random_bool(0.3).to_string(),
                    FeatureType::Text => "x".to_owned(),
                }
            })
            .collect();
        cells.push(if rng.random_bool(0.2) { "bad" } else { "good" }.to_owned());
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}
