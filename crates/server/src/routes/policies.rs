//! `/v1/features`, `/v1/policies`, `/v1/challenges` and a borrower's decisions: credit policies
//! authored by risk and activated by a second person, the features they may name, challengers
//! tried beside the policy in effect, and every decision made under them, with its replay.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use lendcore_domain::decision::{
    Challenge, ChallengeMode, Feature, FeatureDefinition, PolicyCode, PolicyDocument, Stage,
};
use lendcore_domain::ids::{BorrowerId, ChallengeId, DecisionId};
use lendcore_domain::validation::Violations;
use lendcore_engine::decisions::{
    self, Comparison, DecisionRecord, ImportedPolicy, PolicyCheck, PolicyVersionView, Replay,
    Simulation, SimulationRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyHeader, JsonBody, PathParams, QueryParams, path_id};

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureList {
    pub items: Vec<FeatureDefinition>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionList {
    pub items: Vec<PolicyVersionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionList {
    pub items: Vec<DecisionRecord>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorRequest {
    /// The policy's code: its first version creates it, later ones are numbered after it.
    #[schema(example = "consumer")]
    pub code: String,
    pub document: PolicyDocument,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// When the version starts deciding; now if omitted, never in the past.
    #[serde(default)]
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct VersionPath {
    code: String,
    version: u32,
}

#[derive(Debug, Deserialize)]
pub struct BorrowerPath {
    id: String,
}

#[derive(Debug, Deserialize)]
pub struct DecisionPath {
    id: String,
    decision_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    /// How many of the latest decisions, 1-200; 50 if omitted.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

fn parse_code(raw: &str) -> Result<PolicyCode, ApiError> {
    PolicyCode::parse(raw).map_err(|v| ApiError::Engine(v.into()))
}

/// Every feature a policy may name: its type, source, the decisions it is known at, and what
/// it means.
#[utoipa::path(get, path = "/v1/features", tag = "policies",
    responses((status = 200, description = "The feature catalogue", body = FeatureList)))]
pub async fn features() -> Json<FeatureList> {
    Json(FeatureList {
        items: decisions::features(),
    })
}

/// Every version of every policy, its status (draft, scheduled, in effect, superseded) and
/// who authored and activated it; documents are left out.
#[utoipa::path(get, path = "/v1/policies", tag = "policies",
    responses((status = 200, description = "Policy versions", body = PolicyVersionList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<PolicyVersionList>, ApiError> {
    Ok(Json(PolicyVersionList {
        items: decisions::list(&state.engine).await?,
    }))
}

/// Author the next version of a policy. Validated with every problem reported at once; it
/// decides nothing until a second person activates it.
#[utoipa::path(post, path = "/v1/policies", tag = "policies",
    request_body = AuthorRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Version authored (a draft)", body = PolicyVersionView),
        (status = 400, description = "Invalid policy: every problem listed", body = ErrorBody),
        (status = 409, description = "Authored concurrently, or Idempotency-Key reused", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn author(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: IdempotencyHeader,
    body: JsonBody<AuthorRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request(&body.raw);
    let code = parse_code(&body.value.code)?;
    let outcome = decisions::author(
        &state.engine,
        &caller.0,
        &code,
        body.value.document,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Validate a policy document without keeping it: every problem at once, or the score range
/// and the features it reads at each stage.
#[utoipa::path(post, path = "/v1/policies/validate", tag = "policies",
    request_body = PolicyDocument,
    responses(
        (status = 200, description = "The document is valid", body = PolicyCheck),
        (status = 400, description = "Invalid policy: every problem listed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn validate(body: JsonBody<PolicyDocument>) -> Result<Json<PolicyCheck>, ApiError> {
    Ok(Json(decisions::check(body.value)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The JSON Decision Model, as the GoRules editor saves it.
    #[schema(value_type = Object)]
    pub jdm: serde_json::Value,
    /// The decision the model's tables belong to.
    pub stage: Stage,
    /// Input paths whose last segment names no feature, mapped to the feature they read.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub fields: BTreeMap<String, String>,
    /// The policy document the tables go into (tables of the same stage and name replaced).
    pub document: PolicyDocument,
}

/// Import a model from the GoRules editor (JDM) into a policy document at one stage:
/// decision tables, switches and expressions become the policy's tables, validated with the
/// rest of the policy. Nothing is kept; author the result with `POST /v1/policies`. What
/// cannot be imported is refused with each node's name and why (`jdm.*`).
#[utoipa::path(post, path = "/v1/policies/import", tag = "policies",
    request_body = ImportRequest,
    responses(
        (status = 200, description = "The policy with the imported tables", body = ImportedPolicy),
        (status = 400, description = "The model cannot be imported, or the policy does not validate with it: every problem listed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn import(body: JsonBody<ImportRequest>) -> Result<Json<ImportedPolicy>, ApiError> {
    let request = body.value;
    let mut fields = BTreeMap::new();
    for (path, name) in &request.fields {
        let feature = Feature::parse(name.trim()).ok_or_else(|| {
            ApiError::Engine(
                Violations::single(
                    format!("fields.{path}"),
                    "jdm.unknown_field",
                    format!("{name} is no lendcore feature (GET /v1/features lists them)"),
                )
                .into(),
            )
        })?;
        fields.insert(path.trim().to_owned(), feature);
    }
    Ok(Json(decisions::import_jdm(
        &request.jdm,
        request.stage,
        &fields,
        request.document,
    )?))
}

/// The largest backtest body: 100,000 applications of a few dozen features.
const MAX_SIMULATION_BYTES: usize = 16 * 1024 * 1024;

/// A backtest: what a policy would have done to past applications, beside the policy in
/// effect, an authored version or another document: the outcome and reason mix, the scores,
/// with a target column the bad rate by outcome and by band, and the applicants the two decide
/// differently. Decided as live decisions are, at the application stage; nothing is kept.
#[utoipa::path(post, path = "/v1/policies/simulate", tag = "policies",
    request_body = SimulationRequest,
    responses(
        (status = 200, description = "The figures, one set per policy", body = Simulation),
        (status = 400, description = "A policy that does not validate, or applications that cannot be read (`simulate.*`, each wrong cell named)", body = ErrorBody),
        (status = 404, description = "No such policy version, or none in effect to compare with", body = ErrorBody),
        (status = 413, description = "Body too large (16 MiB)", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn simulate(
    State(state): State<AppState>,
    body: JsonBody<SimulationRequest>,
) -> Result<Json<Simulation>, ApiError> {
    Ok(Json(decisions::simulate(&state.engine, body.value).await?))
}

/// One version, with its document.
#[utoipa::path(get, path = "/v1/policies/{code}/versions/{version}", tag = "policies",
    params(("code" = String, Path, description = "Policy code"),
        ("version" = u32, Path, description = "Version number")),
    responses(
        (status = 200, description = "The version", body = PolicyVersionView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    PathParams(path): PathParams<VersionPath>,
) -> Result<Json<PolicyVersionView>, ApiError> {
    let code = parse_code(&path.code)?;
    Ok(Json(
        decisions::get(&state.engine, &code, path.version).await?,
    ))
}

/// Activate a version from `effective_from` (now if omitted). Its author may not: a second
/// person checks it. Work already started keeps the version it started under.
#[utoipa::path(post, path = "/v1/policies/{code}/versions/{version}/activate", tag = "policies",
    request_body = ActivateRequest,
    params(("code" = String, Path, description = "Policy code"),
        ("version" = u32, Path, description = "Version number"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Activated", body = PolicyVersionView),
        (status = 400, description = "Invalid input (an effective time in the past)", body = ErrorBody),
        (status = 403, description = "The version's author may not activate it (`auth.four_eyes`)", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
        (status = 409, description = "Already activated, or Idempotency-Key reused", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<VersionPath>,
    idempotency: IdempotencyHeader,
    body: JsonBody<ActivateRequest>,
) -> Result<Response, ApiError> {
    let code = parse_code(&path.code)?;
    let request = idempotency.request(&body.raw);
    let outcome = decisions::activate(
        &state.engine,
        &caller.0,
        &code,
        path.version,
        body.value.effective_from,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// A borrower's latest credit decisions, newest first, each with everything it was made on.
#[utoipa::path(get, path = "/v1/borrowers/{id}/decisions", tag = "policies",
    params(("id" = String, Path, description = "Borrower id"), DecisionQuery),
    responses(
        (status = 200, description = "Decisions (none for a borrower without any)", body = DecisionList),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn borrower_decisions(
    State(state): State<AppState>,
    PathParams(path): PathParams<BorrowerPath>,
    QueryParams(query): QueryParams<DecisionQuery>,
) -> Result<Json<DecisionList>, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidParameter {
            code: "validation.limit_out_of_range",
            parameter: "limit".to_owned(),
            message: "limit must be between 1 and 200".to_owned(),
        });
    }
    Ok(Json(DecisionList {
        items: decisions::list_decisions(&state.engine, borrower.as_str(), limit).await?,
    }))
}

/// One decision: the input snapshot, the features, the policy and scorecard versions, each
/// rule that fired, the score with each characteristic's points, the outcome, the reasons and
/// the timings.
#[utoipa::path(get, path = "/v1/borrowers/{id}/decisions/{decision_id}", tag = "policies",
    params(("id" = String, Path, description = "Borrower id"),
        ("decision_id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "The decision record", body = DecisionRecord),
        (status = 404, description = "No such decision for that borrower", body = ErrorBody),
    ))]
pub async fn decision(
    State(state): State<AppState>,
    PathParams(path): PathParams<DecisionPath>,
) -> Result<Json<DecisionRecord>, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let id = path_id::<DecisionId>(&path.decision_id)?;
    Ok(Json(
        decisions::get_decision(&state.engine, borrower.as_str(), id.as_str()).await?,
    ))
}

/// The decision evaluated again from what it recorded, under the policy version it names:
/// the same answer, or what differs.
#[utoipa::path(get, path = "/v1/borrowers/{id}/decisions/{decision_id}/replay", tag = "policies",
    params(("id" = String, Path, description = "Borrower id"),
        ("decision_id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "The replay", body = Replay),
        (status = 404, description = "No such decision for that borrower", body = ErrorBody),
        (status = 409, description = "The policy version no longer matches what the decision ran on", body = ErrorBody),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    PathParams(path): PathParams<DecisionPath>,
) -> Result<Json<Replay>, ApiError> {
    let borrower = path_id::<BorrowerId>(&path.id)?;
    let id = path_id::<DecisionId>(&path.decision_id)?;
    Ok(Json(
        decisions::replay(&state.engine, borrower.as_str(), id.as_str()).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeList {
    pub items: Vec<Challenge>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartChallengeRequest {
    /// The challenger's policy code and version (authored; activated or not).
    #[schema(example = "consumer")]
    pub code: String,
    pub version: u32,
    /// Percent of borrowers, 1-100, chosen by a hash of the borrower and the challenge.
    #[schema(minimum = 1, maximum = 100)]
    pub share_percent: u8,
    pub mode: ChallengeMode,
}

#[derive(Debug, Deserialize)]
pub struct ChallengePath {
    id: String,
}

#[derive(Debug, Deserialize)]
pub struct CodePath {
    code: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChallengeQuery {
    /// Only the challenges of this policy code.
    pub code: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComparisonQuery {
    /// Which of the policy's challenges; its latest if omitted.
    pub challenge: Option<String>,
}

/// The latest challenges (200 at most), newest first, the running one among them.
#[utoipa::path(get, path = "/v1/challenges", tag = "policies",
    params(ChallengeQuery),
    responses(
        (status = 200, description = "Challenges", body = ChallengeList),
        (status = 400, description = "Invalid query", body = ErrorBody),
    ))]
pub async fn challenges(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ChallengeQuery>,
) -> Result<Json<ChallengeList>, ApiError> {
    let code = query.code.as_deref().map(parse_code).transpose()?;
    Ok(Json(ChallengeList {
        items: decisions::list_challenges(&state.engine, code.as_ref()).await?,
    }))
}

/// Start a challenger: a policy version that decides beside the one in effect for a share of
/// borrowers' applications, in shadow (recorded only) or applied (the borrower gets its
/// decision; a second person starts it, not its author). One runs at a time.
#[utoipa::path(post, path = "/v1/challenges", tag = "policies",
    request_body = StartChallengeRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 201, description = "Started", body = Challenge),
        (status = 400, description = "Invalid input (a share outside 1-100)", body = ErrorBody),
        (status = 403, description = "An applied challenger's author may not start it (`auth.four_eyes`)", body = ErrorBody),
        (status = 404, description = "No such policy version", body = ErrorBody),
        (status = 409, description = "Another challenge runs, the version is the one in effect, or Idempotency-Key reused", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn start_challenge(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: IdempotencyHeader,
    body: JsonBody<StartChallengeRequest>,
) -> Result<Response, ApiError> {
    let request = idempotency.request(&body.raw);
    let code = parse_code(&body.value.code)?;
    let outcome = decisions::start_challenge(
        &state.engine,
        &caller.0,
        &code,
        body.value.version,
        body.value.share_percent,
        body.value.mode,
        request.as_ref(),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// One challenge.
#[utoipa::path(get, path = "/v1/challenges/{id}", tag = "policies",
    params(("id" = String, Path, description = "Challenge id")),
    responses(
        (status = 200, description = "The challenge", body = Challenge),
        (status = 404, description = "No such challenge", body = ErrorBody),
    ))]
pub async fn challenge(
    State(state): State<AppState>,
    PathParams(path): PathParams<ChallengePath>,
) -> Result<Json<Challenge>, ApiError> {
    let id = path_id::<ChallengeId>(&path.id)?;
    Ok(Json(
        decisions::get_challenge(&state.engine, id.as_str()).await?,
    ))
}

/// End a running challenge: from then on the policy in effect alone decides.
#[utoipa::path(post, path = "/v1/challenges/{id}/end", tag = "policies",
    params(("id" = String, Path, description = "Challenge id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry")),
    responses(
        (status = 200, description = "Ended", body = Challenge),
        (status = 404, description = "No such challenge", body = ErrorBody),
        (status = 409, description = "Ended already, or Idempotency-Key reused", body = ErrorBody),
    ))]
pub async fn end_challenge(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<ChallengePath>,
    idempotency: IdempotencyHeader,
) -> Result<Response, ApiError> {
    let id = path_id::<ChallengeId>(&path.id)?;
    let request = idempotency.request(b"");
    let outcome =
        decisions::end_challenge(&state.engine, &caller.0, id.as_str(), request.as_ref()).await?;
    Ok(respond(StatusCode::OK, outcome))
}

/// A challenger beside the champion: both sides' outcomes, approval rates, first reasons and
/// mean scores, how often they agree and where they differ, and the scores each gave.
#[utoipa::path(get, path = "/v1/policies/{code}/comparison", tag = "policies",
    params(("code" = String, Path, description = "The challenger's policy code"), ComparisonQuery),
    responses(
        (status = 200, description = "The comparison", body = Comparison),
        (status = 400, description = "Invalid path or query", body = ErrorBody),
        (status = 404, description = "The policy has no such challenge (or none at all)", body = ErrorBody),
    ))]
pub async fn comparison(
    State(state): State<AppState>,
    PathParams(path): PathParams<CodePath>,
    QueryParams(query): QueryParams<ComparisonQuery>,
) -> Result<Json<Comparison>, ApiError> {
    let code = parse_code(&path.code)?;
    let challenge = query
        .challenge
        .as_deref()
        .map(path_id::<ChallengeId>)
        .transpose()?;
    Ok(Json(
        decisions::comparison(
            &state.engine,
            &code,
            challenge.as_ref().map(ChallengeId::as_str),
        )
        .await?,
    ))
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v1/features", routing::get(features))
        .route("/v1/policies", routing::get(list).post(author))
        .route("/v1/policies/validate", routing::post(validate))
        .route("/v1/policies/import", routing::post(import))
        .route(
            "/v1/policies/simulate",
            routing::post(simulate)
                .layer::<_, std::convert::Infallible>(axum::middleware::from_fn_with_state(
                    MAX_SIMULATION_BYTES,
                    crate::middleware::note_body_limit,
                ))
                .layer(axum::extract::DefaultBodyLimit::max(MAX_SIMULATION_BYTES)),
        )
        .route("/v1/policies/{code}/versions/{version}", routing::get(get))
        .route(
            "/v1/policies/{code}/versions/{version}/activate",
            routing::post(activate),
        )
        .route("/v1/policies/{code}/comparison", routing::get(comparison))
        .route(
            "/v1/challenges",
            routing::get(challenges).post(start_challenge),
        )
        .route("/v1/challenges/{id}", routing::get(challenge))
        .route("/v1/challenges/{id}/end", routing::post(end_challenge))
        .route(
            "/v1/borrowers/{id}/decisions",
            routing::get(borrower_decisions),
        )
        .route(
            "/v1/borrowers/{id}/decisions/{decision_id}",
            routing::get(decision),
        )
        .route(
            "/v1/borrowers/{id}/decisions/{decision_id}/replay",
            routing::get(replay),
        )
}
