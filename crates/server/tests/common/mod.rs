//! The HTTP API over real sockets: a server on a test database, and a client holding an API key
//! with every scope.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lendcore_domain::access::Permission;
use lendcore_engine::access::api_keys;
use lendcore_engine::{Clock, Engine, ManualClock};
use lendcore_server::HttpLimits;
use lendcore_store::Store;
use lendcore_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::Value;

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
        (status, response.json().await.unwrap_or(Value::Null))
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
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// A request as another caller: with `token` as bearer, or with no credentials at all.
    pub async fn as_caller(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::read(request.send().await.unwrap()).await
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

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<no code>")
    }
}
