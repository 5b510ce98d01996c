//! `/v1/auth`: borrowers sign in with a code sent by SMS (and their authenticator code, if they
//! turned one on); operators sign in with username, password and authenticator code. Every
//! sign-in answers a session token to send as `Authorization: Bearer …`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lendcore_domain::access::Role;
use lendcore_engine::access::otp::{self, CodeSent};
use lendcore_engine::access::second_factor::{self, Enrolment};
use lendcore_engine::access::{self, Principal, SessionIssued, operators};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, Client, bearer};
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A mainland mobile number.
    #[schema(example = "13812345678")]
    pub mobile: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub challenge_id: String,
    #[schema(example = "123456")]
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// The six digits the authenticator app shows now.
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorSignInRequest {
    pub username: String,
    pub password: String,
    /// The six digits the authenticator app shows now.
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    /// 12 to 128 characters.
    pub new_password: String,
}

// Codes and passwords: never printed, not even by a stray `{:?}`.
macro_rules! hidden_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(hidden)"))
            }
        }
    )*};
}
hidden_debug!(
    CodeRequest,
    VerifyRequest,
    SecondFactorRequest,
    OperatorSignInRequest,
    PasswordChangeRequest
);

/// Who the session or key belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// `api_key`, `operator` or `borrower`.
    pub kind: &'static str,
    /// How the audit names the caller.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// What the caller may do: an API key's scopes, or what an operator's role grants.
    pub permissions: Vec<&'static str>,
    /// A borrower's id, once they are registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub borrower_id: Option<String>,
}

/// Send a sign-in code by SMS. Limited to one a minute and five an hour per number, and twenty
/// an hour per client; the code lives five minutes.
#[utoipa::path(post, path = "/v1/auth/codes", tag = "sign-in", request_body = CodeRequest,
    responses(
        (status = 202, description = "Sent", body = CodeSent),
        (status = 400, description = "Not a mobile number", body = ErrorBody),
        (status = 422, description = "network.code_not_sent: the SMS gateway failed; try again shortly", body = ErrorBody),
        (status = 429, description = "identity.too_many_attempts; see Retry-After", body = ErrorBody),
    ))]
pub async fn send_code(
    State(state): State<AppState>,
    client: Client,
    body: JsonBody<CodeRequest>,
) -> Result<Response, ApiError> {
    let sent = otp::send_code(
        &state.engine,
        &body.value.mobile,
        &client.0,
        crate::language::current(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(sent)).into_response())
}

/// Sign in with the code. Five wrong codes use up the challenge; wrong codes are limited per
/// client too.
#[utoipa::path(post, path = "/v1/auth/codes/verify", tag = "sign-in", request_body = VerifyRequest,
    responses(
        (status = 201, description = "Signed in (or waiting for the second factor)", body = SessionIssued),
        (status = 422, description = "identity.code_incorrect, identity.code_expired or identity.too_many_attempts", body = ErrorBody),
        (status = 429, description = "identity.too_many_attempts from this client; see Retry-After", body = ErrorBody),
    ))]
pub async fn verify_code(
    State(state): State<AppState>,
    client: Client,
    body: JsonBody<VerifyRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let issued = otp::verify_code(&state.engine, &b.challenge_id, &b.code, &client.0).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// Finish a sign-in that waits for the second factor: send the session token as bearer and
/// the authenticator code in the body.
#[utoipa::path(post, path = "/v1/auth/second-factor", tag = "sign-in", request_body = SecondFactorRequest,
    responses(
        (status = 200, description = "The session is now active", body = SessionIssued),
        (status = 401, description = "No session, or it ended", body = ErrorBody),
        (status = 409, description = "The session is not waiting for a second factor (conflict.second_factor_not_awaited)", body = ErrorBody),
        (status = 422, description = "identity.code_incorrect", body = ErrorBody),
        (status = 429, description = "identity.too_many_attempts; see Retry-After", body = ErrorBody),
    ))]
pub async fn second_factor(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: JsonBody<SecondFactorRequest>,
) -> Result<Json<SessionIssued>, ApiError> {
    let token = bearer(&headers).ok_or_else(|| {
        ApiError::Engine(lendcore_engine::EngineError::Unauthenticated {
            code: "auth.unauthenticated",
            message: "send the session token from the sign-in as Authorization: Bearer …"
                .to_owned(),
        })
    })?;
    Ok(Json(
        second_factor::complete_sign_in(&state.engine, token, &body.value.code).await?,
    ))
}

/// Start turning on a second factor: put the secret in an authenticator app, then confirm.
#[utoipa::path(post, path = "/v1/auth/second-factor/enrol", tag = "sign-in",
    responses(
        (status = 201, description = "The secret, shown once", body = Enrolment),
        (status = 409, description = "Already on, or not registered yet", body = ErrorBody),
    ))]
pub async fn enrol(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let enrolment = second_factor::enrol(&state.engine, &caller.0).await?;
    Ok((StatusCode::CREATED, Json(enrolment)).into_response())
}

/// Confirm the second factor with the code the app shows: from now on, every sign-in asks
/// for it.
#[utoipa::path(post, path = "/v1/auth/second-factor/confirm", tag = "sign-in", request_body = SecondFactorRequest,
    responses(
        (status = 204, description = "The second factor is on"),
        (status = 422, description = "identity.code_incorrect", body = ErrorBody),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<SecondFactorRequest>,
) -> Result<StatusCode, ApiError> {
    second_factor::confirm(&state.engine, &caller.0, &body.value.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Operators sign in with username, password and authenticator code. A failure never says
/// which part was wrong; five failures in fifteen minutes make the username wait.
#[utoipa::path(post, path = "/v1/auth/operators/sign-in", tag = "sign-in", request_body = OperatorSignInRequest,
    responses(
        (status = 201, description = "Signed in", body = SessionIssued),
        (status = 401, description = "auth.login_failed", body = ErrorBody),
        (status = 429, description = "identity.too_many_attempts; see Retry-After", body = ErrorBody),
    ))]
pub async fn operator_sign_in(
    State(state): State<AppState>,
    client: Client,
    body: JsonBody<OperatorSignInRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let issued =
        operators::sign_in(&state.engine, &b.username, &b.password, &b.code, &client.0).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// Who the credentials belong to and what they may do.
#[utoipa::path(get, path = "/v1/auth/session", tag = "sign-in",
    responses((status = 200, description = "The caller", body = SessionView)))]
pub async fn session(caller: Caller) -> Json<SessionView> {
    let permissions = lendcore_domain::access::Permission::ALL
        .iter()
        .filter(|p| caller.0.permits(**p))
        .map(|p| p.as_str())
        .collect();
    let actor = caller.actor();
    Json(match caller.0 {
        Principal::ApiKey { .. } => SessionView {
            kind: "api_key",
            actor,
            role: None,
            permissions,
            borrower_id: None,
        },
        Principal::Operator { role, .. } => SessionView {
            kind: "operator",
            actor,
            role: Some(role),
            permissions,
            borrower_id: None,
        },
        Principal::Borrower { borrower_id, .. } => SessionView {
            kind: "borrower",
            actor,
            role: None,
            permissions,
            borrower_id,
        },
    })
}

/// End the session now.
#[utoipa::path(post, path = "/v1/auth/sign-out", tag = "sign-in",
    responses(
        (status = 204, description = "Signed out"),
        (status = 409, description = "conflict.not_a_session: API keys are revoked, not signed out", body = ErrorBody),
    ))]
pub async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    access::sign_out(&state.engine, &caller.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An operator changes their own password. Every session of theirs ends, this one too: sign in
/// again with the new password.
#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = PasswordChangeRequest,
    responses(
        (status = 204, description = "Changed; signed out everywhere"),
        (status = 400, description = "validation.weak_password", body = ErrorBody),
        (status = 403, description = "auth.password_incorrect, or not an operator", body = ErrorBody),
        (status = 429, description = "Five wrong current passwords in fifteen minutes", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<PasswordChangeRequest>,
) -> Result<StatusCode, ApiError> {
    let b = body.value;
    operators::change_password(
        &state.engine,
        &caller.0,
        &b.current_password,
        &b.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/auth/codes", routing::post(send_code))
        .route("/v1/auth/codes/verify", routing::post(verify_code))
        .route("/v1/auth/second-factor", routing::post(second_factor))
        .route("/v1/auth/second-factor/enrol", routing::post(enrol))
        .route("/v1/auth/second-factor/confirm", routing::post(confirm))
        .route(
            "/v1/auth/operators/sign-in",
            routing::post(operator_sign_in),
        )
        .route("/v1/auth/session", routing::get(session))
        .route("/v1/auth/sign-out", routing::post(sign_out))
        .route("/v1/auth/password", routing::post(change_password))
}
