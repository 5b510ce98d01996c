//! Extractors that turn every bad input into an [`ApiError`] with a stable code, instead of
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header, request::Parts};
use lendcore_engine::{IdempotencyKey, IdempotentRequest};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::ApiError;

/// A JSON body, parsed strictly, with its raw bytes kept for the idempotency fingerprint.
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge { limit }
            } else {
                ApiError::MalformedJson {
                    message: rejection.body_text(),
                }
            }
        })?;
        let value = parse_json(&raw)?;
        Ok(Self { value, raw })
    }
}

/// The configured body limit, recorded on each request so rejections can state it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON and classifies what is wrong with it, naming the field where there is one.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        classify(field, inner)
    })?;
    de.end().map_err(|e| ApiError::MalformedJson {
        message: e.to_string(),
    })?;
    Ok(value)
}

fn classify(field: String, err: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson {
            message: err.to_string(),
        },
        Category::Data => {
            let message = err.to_string();
            // serde's messages are stable: they are its documented `Error` constructors.
            let code = if message.starts_with("unknown field") {
                "validation.unknown_field"
            } else if message.starts_with("missing field") {
                "validation.missing_field"
            } else if message.starts_with("invalid type") {
                "validation.wrong_type"
            } else {
                "validation.invalid_value"
            };
            let field = if field == "." { String::new() } else { field };
            ApiError::BodyShape {
                code,
                field,
                message,
            }
        }
    }
}

/// The optional `Idempotency-Key` header, parsed, in the caller's own scope: two callers'
/// keys never meet.
pub struct IdempotencyHeader {
    key: Option<IdempotencyKey>,
    scope: String,
    /// The request's method and path, read here so no handler writes its path twice.
    method: String,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let scope = parts
            .extensions
            .get::<Caller>()
            .map(|c| c.0.idempotency_scope())
            .ok_or_else(|| {
                ApiError::Engine(lendcore_engine::EngineError::Internal(
                    "an idempotent route without a caller".to_owned(),
                ))
            })?;
        let method = parts.method.as_str().to_owned();
        let path = parts.uri.path().to_owned();
        let Some(raw) = parts.headers.get("idempotency-key") else {
            return Ok(Self {
                key: None,
                scope,
                method,
                path,
            });
        };
        let raw = raw.to_str().unwrap_or("\u{fffd}");
        let key = IdempotencyKey::parse(raw).map_err(lendcore_engine::EngineError::from)?;
        Ok(Self {
            key: Some(key),
            scope,
            method,
            path,
        })
    }
}

impl IdempotencyHeader {
    /// Binds the key to this exact request: method, path and body.
    pub fn request(&self, body: &[u8]) -> Option<IdempotentRequest> {
        self.key
            .clone()
            .map(|key| IdempotentRequest::new(&self.scope, key, &self.method, &self.path, body))
    }

    /// The same, for a call that moves money: without a key it is refused, since a retry
    /// after a lost answer could otherwise move the money twice.
    pub fn required(&self, body: &[u8]) -> Result<IdempotentRequest, ApiError> {
        self.request(body).ok_or_else(|| {
            ApiError::Engine(
                lendcore_domain::validation::Violations::single(
                    "Idempotency-Key",
                    "idempotency.key_required",
                    "this call moves money: send an Idempotency-Key (1-255 visible ASCII characters) and reuse it on retries",
                )
                .into(),
            )
        })
    }
}

/// A resource's id from the path, parsed once into its type: a string that cannot be an id
/// names nothing, and is answered as that resource's 404 before anything is read.
pub fn path_id<T: lendcore_domain::ids::Id>(raw: &str) -> Result<T, ApiError> {
    T::parse(raw).ok_or_else(|| {
        ApiError::Engine(lendcore_engine::EngineError::NotFound {
            code: T::NOT_FOUND,
            message: format!("no {} with that id", T::NOUN),
        })
    })
}

/// Path parameters, with a stable code when one does not parse.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|rejection| ApiError::InvalidParameter {
                code: "validation.invalid_path_parameter",
                parameter: "path".to_owned(),
                message: rejection.body_text(),
            })
    }
}

/// Query parameters, with a stable code when they do not parse.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Self)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                // A missing parameter has no path of its own; serde names it in its message.
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next());
                let (code, parameter) = match missing {
                    Some(name) => ("validation.missing_parameter", name.to_owned()),
                    None if path != "." => ("validation.invalid_query_parameter", path),
                    None => ("validation.invalid_query_parameter", String::new()),
                };
                ApiError::InvalidParameter {
                    code,
                    parameter,
                    message,
                }
            })
    }
}
