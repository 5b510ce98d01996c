//! The HTTP API over real sockets: a server on a test database, and a client holding an API key
//! with every scope.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

pub mod applicants;
pub mod contract;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lendcore_connectors::sms::{HttpSmsConfig, HttpSmsGateway};
use lendcore_domain::access::Permission;
use lendcore_domain::access::Role;
use lendcore_engine::access::api_keys;
use lendcore_engine::access::{operators, totp};
use lendcore_engine::{Clock, Engine, ManualClock};
use lendcore_server::HttpLimits;
use lendcore_store::Store;
use lendcore_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    /// Where this client's idempotency keys live.
    pub scope: String,
}

impl Api {
    pub async fn start(db: &TestDb, limits: HttpLimits) -> Api {
        Api::start_with(db, limits, |engine| engine).await
    }

    /// A server whose engine `customise` adds to (an SMS gateway, say).
    pub async fn start_with(
        db: &TestDb,
        limits: HttpLimits,
        customise: impl FnOnce(Engine) -> Engine,
    ) -> Api {
        let start = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let vault = lendcore_engine::vault::Vault::from_hex(&"7a".repeat(32)).unwrap();
        let engine = Arc::new(customise(
            Engine::new(db.store.clone(), clock.clone()).with_vault(vault),
        ));
        let all: Vec<String> = Permission::ALL
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        let created = api_keys::create(&engine, "test:setup", None, "tests", &all)
            .await
            .unwrap();
        let (key, scope) = (created.key, format!("api_key:{}", created.api_key.id));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = lendcore_server::router(engine.clone(), &limits);
        tokio::spawn(lendcore_server::serve(
            listener,
            app,
            std::future::pending(),
        ));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}").parse().unwrap(),
        );
        Api {
            base,
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            clock,
            store: db.store.clone(),
            engine,
            scope,
        }
    }

    pub async fn default(db: &TestDb) -> Api {
        Api::start(db, HttpLimits::default()).await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        contract::check("GET", path, status.as_u16(), &body);
        (status, body)
    }

    pub async fn send(&self, method: &str, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.send_raw(
            method,
            path,
            key,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let verb = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(verb, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        Reply::checked(method, path, request.send().await.unwrap()).await
    }

    /// A request as another caller: with `token` as bearer, or with no credentials at all.
    pub async fn as_caller(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.as_caller_keyed(method, path, token, None, body).await
    }

    /// [`Api::as_caller`] with an `Idempotency-Key`.
    pub async fn as_caller_keyed(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let verb = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = reqwest::Client::new().request(verb, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::checked(method, path, request.send().await.unwrap()).await
    }

    pub async fn product_count(&self) -> usize {
        let (status, page) = self.get("/v1/products?limit=200").await;
        assert_eq!(status, StatusCode::OK);
        page["items"].as_array().unwrap().len()
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub replayed: bool,
    pub request_id: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        Reply {
            status: response.status(),
            replayed: response.headers().contains_key("idempotent-replayed"),
            request_id: response
                .headers()
                .get("x-request-id")
                .map(|v| v.to_str().unwrap().to_owned()),
            retry_after: response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: response.json().await.unwrap_or(Value::Null),
        }
    }

    /// Reads the response and checks it against the document (see [`contract`]).
    pub async fn checked(method: &str, path: &str, response: reqwest::Response) -> Reply {
        let reply = Reply::read(response).await;
        if method != "HEAD" {
            contract::check(method, path, reply.status.as_u16(), &reply.body);
        }
        reply
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<no code>")
    }
}

/// A server whose SMS gateway is `gateway`, a wiremock listener.
pub async fn with_gateway(db: &TestDb, gateway: &MockServer) -> Api {
    let sms = HttpSmsGateway::new(HttpSmsConfig {
        base_url: gateway.uri(),
        api_key: "sms-key".into(),
        timeout: std::time::Duration::from_secs(5),
    })
    .unwrap();
    Api::start_with(db, HttpLimits::default(), |engine| {
        engine.with_sms(Arc::new(sms))
    })
    .await
}

pub async fn gateway_accepting() -> MockServer {
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"id": "m-1"})))
        .mount(&gateway)
        .await;
    gateway
}

/// The code in the last message the gateway received for `mobile`.
pub async fn last_code(gateway: &MockServer, mobile: &str) -> String {
    let received = gateway.received_requests().await.unwrap();
    let message: Value = received
        .iter()
        .rev()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|m| m["to"] == mobile)
        .expect("a message to that number");
    let text = message["text"].as_str().unwrap();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a six-digit code in the text")
        .to_owned()
}

/// A borrower's session for `mobile`, signed in by SMS code through `gateway`.
pub async fn borrower_session(api: &Api, gateway: &MockServer, mobile: &str) -> String {
    let sent = api
        .as_caller(
            "POST",
            "/v1/auth/codes",
            None,
            Some(&json!({"mobile": mobile})),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    let code = last_code(gateway, mobile).await;
    let signed_in = api
        .as_caller(
            "POST",
            "/v1/auth/codes/verify",
            None,
            Some(&json!({"challenge_id": sent.body["challenge_id"], "code": code})),
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::CREATED,
        "{:?}",
        signed_in.body
    );
    signed_in.body["token"].as_str().unwrap().to_owned()
}

/// An operator with `role`, created as the command line would, and their session.
pub async fn operator_session(api: &Api, username: &str, role: Role) -> String {
    let created = operators::create(&api.engine, "cli:lendcore", username, role)
        .await
        .unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(created.totp_secret.as_bytes())
        .unwrap();
    let signed_in = api
        .as_caller(
            "POST",
            "/v1/auth/operators/sign-in",
            None,
            Some(&json!({
                "username": username,
                "password": created.password,
                "code": totp::code(&secret, totp::step_at(api.now())),
            })),
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::CREATED,
        "{:?}",
        signed_in.body
    );
    signed_in.body["token"].as_str().unwrap().to_owned()
}

/// Scrapes are one at a time in a test process: each sets the gauges it reads from its own
/// database into the one recorder of the process, then renders them.
static SCRAPING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `/metrics` as Prometheus reads it.
pub async fn scrape(api: &Api) -> String {
    let _one = SCRAPING.lock().await;
    let response = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The value of one series (`name{labels}` exactly as rendered); a series missing from the
/// scrape fails the test, so a figure asserted to be 0 is one `/metrics` does show.
pub fn series(metrics: &str, name: &str) -> f64 {
    find_series(metrics, name).unwrap_or_else(|| panic!("{name} is not in the scrape:\n{metrics}"))
}

/// A counter's value before a test moves it: 0 while nothing has counted it yet, as Prometheus
/// reads a counter that has not appeared.
pub fn counted_before(metrics: &str, name: &str) -> f64 {
    find_series(metrics, name).unwrap_or(0.0)
}

fn find_series(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}
