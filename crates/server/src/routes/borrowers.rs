//! `/v1/borrowers`: register individuals and enterprises, read them (personal data masked),
//! change their contact and payment details, and read that history.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lendcore_domain::borrower::{BorrowerChange, BorrowerInput, BorrowerKind, ContactChange};
use lendcore_domain::ids::BorrowerId;
use lendcore_engine::borrowers::{self, BorrowerView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::respond;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, path_id};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub kind: BorrowerKind,
    /// The person's or the company's name.
    pub name: String,
    /// An individual's 18-character resident identity number, check character included.
    #[serde(default)]
    #[schema(example = "11010519491231002X")]
    pub resident_id: Option<String>,
    /// An enterprise's 18-character unified social credit code.
    #[serde(default)]
    #[schema(example = "91350100M000100Y43")]
    pub credit_code: Option<String>,
    /// An enterprise's legal representative.
    #[serde(default)]
    pub legal_representative: Option<String>,
    /// A mainland mobile number; required for an individual.
    #[serde(default)]
    #[schema(example = "13812345678")]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub bank_account: Option<String>,
    /// `en` or `zh-Hans`: the language notifications are written in; the lender's default
    /// (`notifications.language`) when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "zh-Hans")]
    pub language: Option<lendcore_domain::reasons::Language>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub bank_account: Option<String>,
}

// Personal data: never printed, not even by a stray `{:?}`.
impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegisterRequest(personal data hidden)")
    }
}

impl std::fmt::Debug for ContactRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactRequest(personal data hidden)")
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    pub items: Vec<BorrowerChange>,
}

#[derive(Debug, Deserialize)]
pub struct BorrowerPath {
    id: String,
}

/// What the idempotency record fingerprints instead of the body: a keyed hash of it. A plain
/// hash of a body holding a mobile number or a bank account could be reversed by trying them
/// all; this one cannot without the personal data key. (Without a key nothing is stored: the
/// use case refuses before anything is written.)
fn keyed_body(state: &AppState, raw: &[u8]) -> String {
    match &state.engine.vault {
        Some(vault) => vault.index("idempotency", &String::from_utf8_lossy(raw)),
        None => String::new(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRemoval {
    /// How the borrower's identity was confirmed, for the audit.
    #[schema(example = "called back on the registered number; identity number and card confirmed")]
    pub note: String,
}

/// Turn off a borrower's second factor when they lost their authenticator, having confirmed
/// who they are some other way (say how in `note`: it is audited). Their sessions end.
#[utoipa::path(post, path = "/v1/borrowers/{id}/second-factor/remove", tag = "borrowers",
    request_body = SecondFactorRemoval,
    params(("id" = String, Path, description = "Borrower id")),
    responses(
        (status = 204, description = "Turned off"),
        (status = 400, description = "validation.note_required", body = ErrorBody),
        (status = 404, description = "No such borrower", body = ErrorBody),
        (status = 409, description = "conflict.no_second_factor", body = ErrorBody),
    ))]
pub async fn remove_second_factor(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    PathParams(path): PathParams<BorrowerPath>,
    body: JsonBody<SecondFactorRemoval>,
) -> Result<StatusCode, ApiError> {
    // A person who spoke to the borrower, never a key: with a key that may also change the
    // number, this would hand the account to whoever holds the key.
    if !matches!(
        caller.0,
        lendcore_engine::access::Principal::Operator { .. }
    ) {
        return Err(ApiError::Engine(lendcore_engine::EngineError::Forbidden {
            code: "auth.forbidden",
            message: "a borrower's second factor is turned off by support, signed in".to_owned(),
        }));
    }
    let id = path_id::<BorrowerId>(&path.id)?;
    let id = id.as_str();
    lendcore_engine::access::second_factor::remove_for_borrower(
        &state.engine,
        &caller.actor(),
        id,
        &body.value.note,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Register a borrower. Personal data is encrypted at rest and every answer shows it masked;
/// an identity number or credit code is registered once.
#[utoipa::path(post, path = "/v1/borrowers", tag = "borrowers", request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Registered", body = BorrowerView),
        (status = 400, description = "Invalid input, every problem listed", body = ErrorBody),
        (status = 409, description = "Already registered, or Idempotency-Key reused", body = ErrorBody),
        (status = 503, description = "system.not_configured: no personal data key is configured", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    idempotency: IdempotencyHeader,
    body: JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    let keyed = keyed_body(&state, &body.raw);
    let request = idempotency.request(keyed.as_bytes());
    let b = body.value;
    let outcome = borrowers::register(
        &state.engine,
        BorrowerInput {
            kind: Some(b.kind),
            name: b.name,
            resident_id: b.resident_id,
            credit_code: b.credit_code,
            legal_representative: b.legal_representative,
            mobile: b.mobile,
            email: b.email,
            address: b.address,
            bank_account: b.bank_account,
            language: b.language,
        },
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Exactly one identifier to look a borrower up by.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// A mainland mobile number, e.g. `13812345678`.
    pub mobile: Option<String>,
    /// A resident identity number (18 characters, checked).
    pub resident_id: Option<String>,
    /// A unified social credit code (18 characters, checked).
    pub credit_code: Option<String>,
}

impl std::fmt::Debug for SearchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchRequest(hidden)")
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BorrowerPage {
    pub items: Vec<BorrowerView>,
}

/// Find borrowers by mobile number, identity number or credit code, through their blind
/// indexes. The identifier travels in the body, never in a URL that proxies and browsers log;
/// results are masked; every search is audited (what it was by and whom it found).
#[utoipa::path(post, path = "/v1/borrowers/search", tag = "borrowers", request_body = SearchRequest,
    responses(
        (status = 200, description = "The borrowers registered with it (none, one, or for a mobile number possibly more), masked", body = BorrowerPage),
        (status = 400, description = "Not exactly one identifier, or one that does not parse (the code says why)", body = ErrorBody),
        (status = 503, description = "system.not_configured: no personal data key is configured", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    body: JsonBody<SearchRequest>,
) -> Result<Json<BorrowerPage>, ApiError> {
    let b = body.value;
    let lookup = match (b.mobile, b.resident_id, b.credit_code) {
        (Some(m), None, None) => borrowers::Lookup::Mobile(m),
        (None, Some(r), None) => borrowers::Lookup::ResidentId(r),
        (None, None, Some(c)) => borrowers::Lookup::CreditCode(c),
        _ => {
            return Err(ApiError::Engine(
                lendcore_domain::validation::Violations::single(
                    "",
                    "validation.one_identifier",
                    "give exactly one of mobile, resident_id and credit_code",
                )
                .into(),
            ));
        }
    };
    let items = borrowers::find(&state.engine, &lookup).await?;
    Ok(Json(BorrowerPage { items }))
}

#[utoipa::path(get, path = "/v1/borrowers/{id}", tag = "borrowers",
    params(("id" = String, Path, description = "Borrower id")),
    responses(
        (status = 200, description = "The borrower, personal data masked", body = BorrowerView),
        (status = 404, description = "No such borrower", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<BorrowerPath>,
) -> Result<Json<BorrowerView>, ApiError> {
    Ok(Json(
        borrowers::get(&state.engine, path_id::<BorrowerId>(&path.id)?.as_str()).await?,
    ))
}

/// Change the mobile number, address or bank account. Every change is kept in the borrower's
/// history (masked): frequent changes are a risk signal.
#[utoipa::path(post, path = "/v1/borrowers/{id}/contact", tag = "borrowers", request_body = ContactRequest,
    params(("id" = String, Path, description = "Borrower id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Changed", body = BorrowerView),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such borrower", body = ErrorBody),
    ))]
pub async fn change_contact(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<BorrowerPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ContactRequest>,
) -> Result<Response, ApiError> {
    let id = path_id::<BorrowerId>(&path.id)?;
    let id = id.as_str();
    let keyed = keyed_body(&state, &body.raw);
    let request = idempotency.request(keyed.as_bytes());
    let b = body.value;
    let outcome = borrowers::change_contact(
        &state.engine,
        id,
        ContactChange {
            mobile: b.mobile,
            address: b.address,
            bank_account: b.bank_account,
        },
        caller.actor(),
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

#[utoipa::path(get, path = "/v1/borrowers/{id}/changes", tag = "borrowers",
    params(("id" = String, Path, description = "Borrower id")),
    responses(
        (status = 200, description = "The history, oldest first, values masked", body = ChangePage),
        (status = 404, description = "No such borrower", body = ErrorBody),
    ))]
pub async fn changes(
    State(state): State<AppState>,
    PathParams(path): PathParams<BorrowerPath>,
) -> Result<Json<ChangePage>, ApiError> {
    let items =
        borrowers::changes(&state.engine, path_id::<BorrowerId>(&path.id)?.as_str()).await?;
    Ok(Json(ChangePage { items }))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/borrowers", routing::post(register))
        .route("/v1/borrowers/search", routing::post(search))
        .route("/v1/borrowers/{id}", routing::get(get))
        .route("/v1/borrowers/{id}/contact", routing::post(change_contact))
        .route("/v1/borrowers/{id}/changes", routing::get(changes))
        .route(
            "/v1/borrowers/{id}/second-factor/remove",
            routing::post(remove_second_factor),
        )
}
