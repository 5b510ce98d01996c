//! Who may call: API keys and their scopes, borrowers signing in by SMS code (and a second
//! factor), operators by password and authenticator code with roles, every operator request
//! audited. Over real sockets, with the SMS gateway a real local listener, on both stores.

mod common;

use chrono::Duration;
use lendcore_domain::access::Role;
use lendcore_engine::access::{operators, totp};
use lendcore_testkit::store_test;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{Api, Reply, gateway_accepting, last_code, with_gateway};

async fn ask_code(api: &Api, mobile: &str) -> Reply {
    api.as_caller(
        "POST",
        "/v1/auth/codes",
        None,
        Some(&json!({"mobile": mobile})),
    )
    .await
}

async fn verify(api: &Api, challenge: &Value, code: &str) -> Reply {
    api.as_caller(
        "POST",
        "/v1/auth/codes/verify",
        None,
        Some(&json!({"challenge_id": challenge, "code": code})),
    )
    .await
}

/// A code that is not `right`.
fn wrong(right: &str) -> String {
    let first = (right.as_bytes()[0] - b'0' + 1) % 10;
    format!("{first}{}", &right[1..])
}

fn secret_of(base32: &Value) -> Vec<u8> {
    data_encoding::BASE32_NOPAD
        .decode(base32.as_str().unwrap().as_bytes())
        .unwrap()
}

store_test! {
    async fn no_credentials_no_access_and_keys_do_only_what_their_scopes_say(db: &TestDb) {
        let api = Api::default(db).await;
        let none = api.as_caller("GET", "/v1/products", None, None).await;
        assert_eq!((none.status, none.code()), (StatusCode::UNAUTHORIZED, "auth.unauthenticated"));
        for bogus in ["lck_nope", "lcs_nope", "Basic abc", &"x".repeat(500)] {
            let reply = api.as_caller("GET", "/v1/products", Some(bogus), None).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "auth.unauthenticated"), "{bogus}");
        }
        let (status, _) = api.get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(api.as_caller("GET", "/openapi.json", None, None).await.status, StatusCode::OK, "documents are public");

        let created = api.send("POST", "/v1/api-keys", None, &json!({"name": "reader", "scopes": ["products:read"]})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let key = created.body["key"].as_str().unwrap().to_owned();
        let id = created.body["api_key"]["id"].as_str().unwrap().to_owned();
        assert_eq!(api.as_caller("GET", "/v1/products", Some(&key), None).await.status, StatusCode::OK);
        let write = api.as_caller("POST", "/v1/products", Some(&key), Some(&json!({}))).await;
        assert_eq!((write.status, write.code()), (StatusCode::FORBIDDEN, "auth.forbidden"));
        assert!(write.body["message"].as_str().unwrap().contains("products:write"), "{:?}", write.body);
        let admin = api.as_caller("GET", "/v1/api-keys", Some(&key), None).await;
        assert_eq!(admin.status, StatusCode::FORBIDDEN);
        let keeper = api.send("POST", "/v1/api-keys", None, &json!({"name": "keeper", "scopes": ["access:admin", "products:read"]})).await;
        let keeper = keeper.body["key"].as_str().unwrap().to_owned();
        let stronger = api.as_caller("POST", "/v1/api-keys", Some(&keeper), Some(&json!({"name": "x", "scopes": ["products:write"]}))).await;
        assert_eq!((stronger.status, stronger.code()), (StatusCode::FORBIDDEN, "auth.forbidden"), "a key never mints a stronger one");
        let weaker = api.as_caller("POST", "/v1/api-keys", Some(&keeper), Some(&json!({"name": "x", "scopes": ["products:read"]}))).await;
        assert_eq!(weaker.status, StatusCode::CREATED);

        let (_, listed) = api.get("/v1/api-keys").await;
        assert!(!listed.to_string().contains(&key), "the key itself is never shown again");
        let stored: Vec<String> = db.query_strings("SELECT token_hash FROM api_keys").await;
        assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(&key[4..])), "kept as a hash");

        for (body, code) in [
            (json!({"name": "x", "scopes": []}), "validation.scopes_empty"),
            (json!({"name": "x", "scopes": ["root"]}), "validation.unknown_scope"),
            (json!({"name": "", "scopes": ["products:read"]}), "validation.invalid_name"),
            (json!({"name": "x"}), "validation.missing_field"),
        ] {
            let reply = api.send("POST", "/v1/api-keys", None, &body).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, code), "{body}");
        }

        let revoked = api.send("POST", &format!("/v1/api-keys/{id}/revoke"), None, &json!({})).await;
        assert_eq!(revoked.status, StatusCode::OK);
        assert!(revoked.body["revoked_at"].is_string());
        let after = api.as_caller("GET", "/v1/products", Some(&key), None).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED, "revoked keys stop at once");
        let missing = api.send("POST", "/v1/api-keys/nope/revoke", None, &json!({})).await;
        assert_eq!(missing.code(), "not_found.api_key");
    }

    async fn a_borrower_signs_in_with_a_code_and_the_session_survives_a_restart(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = with_gateway(db, &gateway).await;
        let registered = api.send("POST", "/v1/borrowers", None, &json!({
            "kind": "individual", "name": "张三", "resident_id": "11010519491231002X", "mobile": "13812345678"
        })).await;
        let borrower_id = registered.body["id"].as_str().unwrap().to_owned();

        let sent = ask_code(&api, "13812345678").await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
        assert_eq!(sent.body["sent_to"], "138****5678");
        let code = last_code(&gateway, "13812345678").await;
        let stored = db.query_strings("SELECT code_hash FROM otp_challenges").await;
        assert!(stored.iter().all(|h| !h.contains(&code)), "the code is kept as a keyed hash");

        let wrong_once = verify(&api, &sent.body["challenge_id"], &wrong(&code)).await;
        assert_eq!((wrong_once.status, wrong_once.code()), (StatusCode::UNPROCESSABLE_ENTITY, "identity.code_incorrect"));
        assert_eq!(wrong_once.body["details"]["next_action"], "retry_now");
        let signed_in = verify(&api, &sent.body["challenge_id"], &code).await;
        assert_eq!(signed_in.status, StatusCode::CREATED, "{:?}", signed_in.body);
        assert_eq!(signed_in.body["second_factor_required"], false);
        let token = signed_in.body["token"].as_str().unwrap().to_owned();
        let again = verify(&api, &sent.body["challenge_id"], &code).await;
        assert_eq!(again.code(), "identity.code_expired", "a code signs in once");

        let me = api.as_caller("GET", "/v1/auth/session", Some(&token), None).await;
        assert_eq!((me.body["kind"].as_str(), me.body["borrower_id"].as_str()), (Some("borrower"), Some(borrower_id.as_str())));
        let staff_only = api.as_caller("GET", "/v1/products", Some(&token), None).await;
        assert_eq!(staff_only.status, StatusCode::FORBIDDEN, "a borrower holds no staff permission");

        // Another process on the same database: the session still holds.
        let restarted = Api::default(db).await;
        let me = restarted.as_caller("GET", "/v1/auth/session", Some(&token), None).await;
        assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);

        let out = api.as_caller("POST", "/v1/auth/sign-out", Some(&token), None).await;
        assert_eq!(out.status, StatusCode::NO_CONTENT);
        let gone = restarted.as_caller("GET", "/v1/auth/session", Some(&token), None).await;
        assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "signed out everywhere");

        // A number nobody registered yet signs in too (to apply), without a borrower.
        let sent = ask_code(&api, "13900001111").await;
        let fresh = verify(&api, &sent.body["challenge_id"], &last_code(&gateway, "13900001111").await).await;
        let me = api.as_caller("GET", "/v1/auth/session", fresh.body["token"].as_str(), None).await;
        assert_eq!(me.body["borrower_id"], Value::Null);
    }

    async fn codes_cannot_be_guessed_flooded_or_used_late(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = with_gateway(db, &gateway).await;
        let sent = ask_code(&api, "13812345678").await;
        let code = last_code(&gateway, "13812345678").await;
        for attempt in 1..=5 {
            let reply = verify(&api, &sent.body["challenge_id"], &wrong(&code)).await;
            let expected = if attempt < 5 { "identity.code_incorrect" } else { "identity.too_many_attempts" };
            assert_eq!(reply.code(), expected, "attempt {attempt}");
        }
        let right_too_late = verify(&api, &sent.body["challenge_id"], &code).await;
        assert_eq!(right_too_late.code(), "identity.too_many_attempts", "five wrong guesses use the code up");

        let flood = ask_code(&api, "13812345678").await;
        assert_eq!((flood.status, flood.code()), (StatusCode::TOO_MANY_REQUESTS, "identity.too_many_attempts"));
        let wait: i64 = flood.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "one code a minute per number: {wait}");
        let zh = api.http.post(format!("{}/v1/auth/codes", api.base))
            .header("accept-language", "zh-CN").json(&json!({"mobile": "13812345678"})).send().await.unwrap();
        assert_eq!(zh.headers()["content-language"], "zh-Hans");

        api.clock.advance(Duration::seconds(61));
        let sent = ask_code(&api, "13812345678").await;
        assert_eq!(sent.status, StatusCode::ACCEPTED);
        let code = last_code(&gateway, "13812345678").await;
        api.clock.advance(Duration::minutes(6));
        let late = verify(&api, &sent.body["challenge_id"], &code).await;
        assert_eq!((late.status, late.code()), (StatusCode::UNPROCESSABLE_ENTITY, "identity.code_expired"));
        assert_eq!(late.body["details"]["next_action"], "retry_now");
        let unknown = verify(&api, &json!("no-such-challenge"), "123456").await;
        assert_eq!(unknown.code(), "identity.code_expired");

        // Guessing across many numbers from one client is slowed down too: thirty wrong codes
        // an hour, whatever the numbers.
        let mut refused = None;
        for n in 0..7 {
            let mobile = format!("1390000{n:04}");
            let sent = ask_code(&api, &mobile).await;
            assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
            let code = last_code(&gateway, &mobile).await;
            for _ in 0..5 {
                let reply = verify(&api, &sent.body["challenge_id"], &wrong(&code)).await;
                if reply.status == StatusCode::TOO_MANY_REQUESTS {
                    refused = Some(reply);
                }
            }
        }
        let refused = refused.expect("the client is stopped after thirty wrong codes");
        assert_eq!(refused.code(), "identity.too_many_attempts");
        assert!(refused.retry_after.is_some());

        for bad in [json!({"mobile": "12345"}), json!({"mobile": 13812345678_u64}), json!({})] {
            let reply = api.as_caller("POST", "/v1/auth/codes", None, Some(&bad)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    async fn a_gateway_outage_is_told_and_without_a_gateway_sign_in_is_not_configured(db: &TestDb) {
        let gateway = MockServer::start().await;
        Mock::given(method("POST")).and(path("/v1/messages"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&gateway).await;
        let api = with_gateway(db, &gateway).await;
        let down = ask_code(&api, "13812345678").await;
        assert_eq!((down.status, down.code()), (StatusCode::UNPROCESSABLE_ENTITY, "network.code_not_sent"));
        assert_eq!(down.body["details"]["retryable"], true);
        assert_eq!(gateway.received_requests().await.unwrap()[0].headers["authorization"], "Bearer sms-key");

        let plain = Api::default(db).await;
        let unset = ask_code(&plain, "13812345678").await;
        assert_eq!((unset.status, unset.code()), (StatusCode::SERVICE_UNAVAILABLE, "system.not_configured"));
    }

    async fn a_borrower_with_a_second_factor_must_send_it_after_the_code(db: &TestDb) {
        let gateway = gateway_accepting().await;
        let api = with_gateway(db, &gateway).await;
        api.send("POST", "/v1/borrowers", None, &json!({
            "kind": "individual", "name": "张三", "resident_id": "11010519491231002X", "mobile": "13812345678"
        })).await;
        let sign_in = async |api: &Api| {
            let sent = ask_code(api, "13812345678").await;
            let code = last_code(&gateway, "13812345678").await;
            verify(api, &sent.body["challenge_id"], &code).await
        };
        let first = sign_in(&api).await;
        let token = first.body["token"].as_str().unwrap().to_owned();
        let enrolled = api.as_caller("POST", "/v1/auth/second-factor/enrol", Some(&token), None).await;
        assert_eq!(enrolled.status, StatusCode::CREATED, "{:?}", enrolled.body);
        let secret = secret_of(&enrolled.body["secret"]);
        let by_key = api.send("POST", "/v1/auth/second-factor/enrol", None, &json!({})).await;
        assert_eq!(by_key.status, StatusCode::FORBIDDEN, "only the borrower turns it on");
        let code_now = |api: &Api| totp::code(&secret, totp::step_at(api.now()));
        let wrong_confirm = api.as_caller("POST", "/v1/auth/second-factor/confirm", Some(&token),
            Some(&json!({"code": wrong(&code_now(&api))}))).await;
        assert_eq!(wrong_confirm.code(), "identity.code_incorrect");
        let confirmed = api.as_caller("POST", "/v1/auth/second-factor/confirm", Some(&token),
            Some(&json!({"code": code_now(&api)}))).await;
        assert_eq!(confirmed.status, StatusCode::NO_CONTENT, "{:?}", confirmed.body);

        api.clock.advance(Duration::seconds(61));
        let second = sign_in(&api).await;
        assert_eq!(second.body["second_factor_required"], true, "{:?}", second.body);
        let pending = second.body["token"].as_str().unwrap().to_owned();
        let blocked = api.as_caller("GET", "/v1/auth/session", Some(&pending), None).await;
        assert_eq!((blocked.status, blocked.code()), (StatusCode::UNAUTHORIZED, "auth.second_factor_required"));
        let replayed = api.as_caller("POST", "/v1/auth/second-factor", Some(&pending),
            Some(&json!({"code": totp::code(&secret, totp::step_at(api.now()) - 2)}))).await;
        assert_eq!(replayed.code(), "identity.code_incorrect", "an old code is refused");
        let passed = api.as_caller("POST", "/v1/auth/second-factor", Some(&pending),
            Some(&json!({"code": code_now(&api)}))).await;
        assert_eq!(passed.status, StatusCode::OK, "{:?}", passed.body);
        let me = api.as_caller("GET", "/v1/auth/session", Some(&pending), None).await;
        assert_eq!(me.status, StatusCode::OK);
        let reused = api.as_caller("POST", "/v1/auth/second-factor", Some(&pending),
            Some(&json!({"code": code_now(&api)}))).await;
        assert_eq!(reused.code(), "conflict.second_factor_not_awaited");

        // The phone with the authenticator is lost: support, having confirmed who they are,
        // turns it off; their sessions end and a code alone signs them in again.
        let borrower_id = me.body["borrower_id"].as_str().unwrap().to_owned();
        let remove = format!("/v1/borrowers/{borrower_id}/second-factor/remove");
        let support = common::operator_session(&api, "sam", Role::Support).await;
        let no_note = api.as_caller("POST", &remove, Some(&support), Some(&json!({"note": "  "}))).await;
        assert_eq!((no_note.status, no_note.code()), (StatusCode::BAD_REQUEST, "validation.note_required"));
        let by_borrower = api.as_caller("POST", &remove, Some(&pending), Some(&json!({"note": "me"}))).await;
        assert_eq!(by_borrower.status, StatusCode::FORBIDDEN, "support's to do, not the session's");
        let by_key = api.send("POST", &remove, None, &json!({"note": "the lender's back-end says so"})).await;
        assert_eq!(by_key.status, StatusCode::FORBIDDEN, "a person who spoke to the borrower, never a key");
        let removed = api.as_caller("POST", &remove, Some(&support),
            Some(&json!({"note": "called back on the registered number; identity confirmed"}))).await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
        let ended = api.as_caller("GET", "/v1/auth/session", Some(&pending), None).await;
        assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "their sessions ended");
        let twice = api.as_caller("POST", &remove, Some(&support), Some(&json!({"note": "again"}))).await;
        assert_eq!(twice.code(), "conflict.no_second_factor");
        api.clock.advance(Duration::seconds(61));
        let third = sign_in(&api).await;
        assert_eq!(third.body["second_factor_required"], false, "{:?}", third.body);
    }

    async fn an_operator_changes_their_password_and_an_admin_resets_a_lost_one(db: &TestDb) {
        let api = Api::default(db).await;
        let admin = common::operator_session(&api, "ada", Role::Admin).await;
        let created = operators::create(&api.engine, "cli:lendcore", "rita", Role::Risk).await.unwrap();
        let sign_in = |password: String, secret: Vec<u8>| {
            let api = &api;
            async move {
                api.as_caller("POST", "/v1/auth/operators/sign-in", None, Some(&json!({
                    "username": "rita", "password": password, "code": totp::code(&secret, totp::step_at(api.now()))
                }))).await
            }
        };
        let secret = secret_of(&json!(created.totp_secret));
        let token = sign_in(created.password.clone(), secret.clone()).await.body["token"].as_str().unwrap().to_owned();
        let change = |current: &str, new: &str| {
            let (api, token, body) = (&api, token.clone(), json!({"current_password": current, "new_password": new}));
            async move { api.as_caller("POST", "/v1/auth/password", Some(&token), Some(&body)).await }
        };
        assert_eq!(change(&created.password, "short").await.code(), "validation.weak_password");
        assert_eq!(change("not-it-at-all", "a much longer passphrase").await.code(), "auth.password_incorrect");
        let by_key = api.send("POST", "/v1/auth/password", None, &json!({"current_password": "x", "new_password": "a much longer passphrase"})).await;
        assert_eq!(by_key.status, StatusCode::FORBIDDEN, "keys have no password");
        let changed = change(&created.password, "a much longer passphrase").await;
        assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
        let ended = api.as_caller("GET", "/v1/auth/session", Some(&token), None).await;
        assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "signed out everywhere, here too");
        api.clock.advance(Duration::seconds(31));
        let old = sign_in(created.password.clone(), secret.clone()).await;
        assert_eq!(old.code(), "auth.login_failed");
        api.clock.advance(Duration::seconds(31));
        let new = sign_in("a much longer passphrase".into(), secret.clone()).await;
        assert_eq!(new.status, StatusCode::CREATED, "{:?}", new.body);

        // Lost phone and password alike: an admin resets them; the old ones open nothing.
        let operator_id = created.operator.id.clone();
        let by_key = api.send("POST", &format!("/v1/operators/{operator_id}/reset"), None, &json!({})).await;
        assert_eq!(by_key.status, StatusCode::FORBIDDEN, "people reset people");
        let reset = api.as_caller("POST", &format!("/v1/operators/{operator_id}/reset"), Some(&admin), None).await;
        assert_eq!(reset.status, StatusCode::OK, "{:?}", reset.body);
        let new_token = new.body["token"].as_str().unwrap();
        assert_eq!(api.as_caller("GET", "/v1/auth/session", Some(new_token), None).await.status, StatusCode::UNAUTHORIZED);
        api.clock.advance(Duration::seconds(31));
        let with_old_phone = sign_in(reset.body["password"].as_str().unwrap().into(), secret).await;
        assert_eq!(with_old_phone.code(), "auth.login_failed", "the old authenticator is gone");
        api.clock.advance(Duration::seconds(31));
        let fresh = sign_in(reset.body["password"].as_str().unwrap().into(), secret_of(&reset.body["totp_secret"])).await;
        assert_eq!(fresh.status, StatusCode::CREATED, "{:?}", fresh.body);
        api.as_caller("POST", &format!("/v1/operators/{operator_id}/disable"), Some(&admin), None).await;
        let disabled = api.as_caller("POST", &format!("/v1/operators/{operator_id}/reset"), Some(&admin), None).await;
        assert_eq!(disabled.code(), "conflict.operator_disabled");
        let missing = api.as_caller("POST", "/v1/operators/nope/reset", Some(&admin), None).await;
        assert_eq!(missing.code(), "not_found.operator");
        let operators_page = api.as_caller("GET", "/v1/operators", Some(&admin), None).await;
        let ada_id = operators_page.body["items"].as_array().unwrap().iter()
            .find(|o| o["username"] == "ada").unwrap()["id"].as_str().unwrap().to_owned();
        let own = api.as_caller("POST", &format!("/v1/operators/{ada_id}/reset"), Some(&admin), None).await;
        assert_eq!((own.status, own.code()), (StatusCode::FORBIDDEN, "auth.forbidden"), "another admin vouches: {:?}", own.body);
    }

    async fn operators_sign_in_with_password_and_code_act_by_role_and_are_audited(db: &TestDb) {
        let api = Api::default(db).await;
        let by_key = api.send("POST", "/v1/operators", None, &json!({"username": "rita", "role": "risk"})).await;
        assert_eq!((by_key.status, by_key.code()), (StatusCode::FORBIDDEN, "auth.forbidden"), "people are let in by people");
        // The first admin comes from the command line; admins add the others.
        let admin = operators::create(&api.engine, "cli:lendcore", "ada", Role::Admin).await.unwrap();
        let admin_secret = secret_of(&json!(admin.totp_secret));
        let admin_token = api.as_caller("POST", "/v1/auth/operators/sign-in", None, Some(&json!({
            "username": "ada", "password": admin.password, "code": totp::code(&admin_secret, totp::step_at(api.now()))
        }))).await.body["token"].as_str().unwrap().to_owned();
        let created = api.as_caller("POST", "/v1/operators", Some(&admin_token), Some(&json!({"username": "rita", "role": "risk"}))).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let password = created.body["password"].as_str().unwrap().to_owned();
        let secret = secret_of(&created.body["totp_secret"]);
        let operator_id = created.body["operator"]["id"].as_str().unwrap().to_owned();
        let taken = api.as_caller("POST", "/v1/operators", Some(&admin_token), Some(&json!({"username": "rita", "role": "viewer"}))).await;
        assert_eq!(taken.code(), "conflict.username_taken");
        let bad_role = api.as_caller("POST", "/v1/operators", Some(&admin_token), Some(&json!({"username": "x1y", "role": "god"}))).await;
        assert_eq!(bad_role.code(), "validation.invalid_value");
        let hashes = db.query_strings("SELECT password_hash FROM operators").await;
        assert!(hashes.iter().all(|h| h.starts_with("$argon2id$") && !h.contains(&password)));

        let sign_in = |password: String, code: String| {
            let api = &api;
            async move {
                api.as_caller("POST", "/v1/auth/operators/sign-in", None,
                    Some(&json!({"username": "rita", "password": password, "code": code}))).await
            }
        };
        let code_now = || totp::code(&secret, totp::step_at(api.now()));
        let no_code = sign_in(password.clone(), "000000".into()).await;
        assert_eq!((no_code.status, no_code.code()), (StatusCode::UNAUTHORIZED, "auth.login_failed"));
        let signed_in = sign_in(password.clone(), code_now()).await;
        assert_eq!(signed_in.status, StatusCode::CREATED, "{:?}", signed_in.body);
        let token = signed_in.body["token"].as_str().unwrap().to_owned();
        let replay = sign_in(password.clone(), code_now()).await;
        assert_eq!(replay.code(), "auth.login_failed", "an authenticator code signs in once");

        let line = api.as_caller("POST", "/v1/credit-lines", Some(&token), Some(&json!({
            "borrower_id": "b-1", "currency": "CNY", "limit_minor": 100_000,
            "valid_until": (api.now() + Duration::days(30)).to_rfc3339()
        }))).await;
        assert_eq!(line.status, StatusCode::CREATED, "risk grants lines: {:?}", line.body);
        let line_id = line.body["id"].as_str().unwrap();
        let (_, events) = api.get(&format!("/v1/credit-lines/{line_id}/events")).await;
        assert_eq!(events["items"][0]["actor"], "ops:rita", "the change names who made it");
        let product = api.as_caller("POST", "/v1/products", Some(&token), Some(&json!({}))).await;
        assert_eq!(product.status, StatusCode::FORBIDDEN, "risk does not change products");
        let read = api.as_caller("GET", "/v1/products", Some(&token), None).await;
        assert_eq!(read.status, StatusCode::OK);

        lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();
        let mut uow = db.store.begin_read().await.unwrap();
        let records = uow.audit_records(0, 1000).await.unwrap();
        let by_rita: Vec<(String, String)> = records.iter()
            .filter(|r| r.entry.actor == "ops:rita")
            .map(|r| (r.entry.action.clone(), r.entry.detail.clone()))
            .collect();
        assert!(by_rita.iter().any(|(a, _)| a == "operator.signed_in"), "{by_rita:?}");
        assert!(by_rita.iter().any(|(a, _)| a == "credit_line.granted"), "{by_rita:?}");
        let requests: Vec<&String> = by_rita.iter().filter(|(a, _)| a == "operator.request").map(|(_, d)| d).collect();
        assert_eq!(requests.len(), 3, "every request, refused and read ones too: {requests:?}");
        assert!(requests.iter().any(|d| d.contains("\"refused_with\":403")), "{requests:?}");
        assert!(records.iter().any(|r| r.entry.action == "operator.sign_in_failed" && r.entry.subject_id == "rita"));
        drop(uow);

        // Attempts from one client at one username: five in fifteen minutes (a success clears
        // them), then even the right password waits.
        for _ in 0..4 {
            let reply = sign_in("wrong-password".into(), code_now()).await;
            assert_eq!(reply.code(), "auth.login_failed");
        }
        let locked = sign_in(password.clone(), code_now()).await;
        assert_eq!((locked.status, locked.code()), (StatusCode::TOO_MANY_REQUESTS, "identity.too_many_attempts"));
        assert!(locked.retry_after.is_some());
        let nobody = api.as_caller("POST", "/v1/auth/operators/sign-in", None,
            Some(&json!({"username": "nobody", "password": "x", "code": "123456"}))).await;
        assert_eq!(nobody.code(), "auth.login_failed", "an unknown username answers the same");

        let disabled = api.send("POST", &format!("/v1/operators/{operator_id}/disable"), None, &json!({})).await;
        assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);
        let ended = api.as_caller("GET", "/v1/products", Some(&token), None).await;
        assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "a disabled operator's session ends");
        let (_, operators) = api.get("/v1/operators").await;
        let rita = operators["items"].as_array().unwrap().iter().find(|o| o["username"] == "rita").unwrap();
        assert!(rita["disabled_at"].is_string());
        assert!(!operators.to_string().contains("argon2"));
    }
}
