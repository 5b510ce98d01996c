//! Credit policy versions: authored by risk, activated by a second person, compiled once per
//! version and cached (a version never changes, so its compiled form never goes stale).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lendcore_domain::Timestamp;
use lendcore_domain::decision::{
    Activation, ActivationError, Feature, FeatureDefinition, Policy, PolicyCode, PolicyDocument,
    PolicyVersion, Stage, VersionStatus, status,
};
use lendcore_store::{StoreError, UnitOfWork};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::Principal;
use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Engine, EngineError};

/// A policy version as operators read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyVersionView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: PolicyCode,
    pub version: u32,
    pub status: VersionStatus,
    /// SHA-256 of the document as stored; every decision record names it.
    pub sha256: String,
    pub authored_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub authored_at: Timestamp,
    pub activation: Option<Activation>,
    /// The lowest and highest score its scorecard gives.
    pub score_range: [i64; 2],
    /// Left out of lists; `GET /v1/policies/{code}/versions/{version}` has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<PolicyDocument>,
}

/// What a document that validates would do: its score range and what it reads at each stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyCheck {
    pub valid: bool,
    pub score_range: [i64; 2],
    pub application_features: Vec<String>,
    pub drawdown_features: Vec<String>,
    pub line_review_features: Vec<String>,
}

/// A version, compiled: what decisions run on.
pub(crate) struct CompiledVersion {
    pub version: PolicyVersion,
    pub policy: Policy,
}

/// Compiled versions by code and number.
#[derive(Default)]
pub(crate) struct PolicyCache {
    entries: Mutex<HashMap<(String, u32), Arc<CompiledVersion>>>,
}

impl PolicyCache {
    pub(crate) async fn get(
        &self,
        uow: &mut dyn UnitOfWork,
        code: &PolicyCode,
        version: u32,
    ) -> Result<Arc<CompiledVersion>, EngineError> {
        let key = (code.as_str().to_owned(), version);
        if let Some(hit) = self.entries().get(&key).cloned() {
            return Ok(hit);
        }
        let stored = uow
            .find_policy_version(code, version)
            .await?
            .ok_or_else(|| version_not_found(code, version))?;
        let policy = Policy::compile(stored.document.clone()).map_err(|v| {
            EngineError::Internal(format!(
                "stored policy {code} version {version} no longer validates: {v}"
            ))
        })?;
        let compiled = Arc::new(CompiledVersion {
            version: stored,
            policy,
        });
        self.entries().insert(key, Arc::clone(&compiled));
        Ok(compiled)
    }

    /// The version in effect at `at`, if any is.
    pub(crate) async fn in_effect(
        &self,
        uow: &mut dyn UnitOfWork,
        at: Timestamp,
    ) -> Result<Option<Arc<CompiledVersion>>, EngineError> {
        match uow.policy_in_effect(at).await? {
            Some((code, version)) => Ok(Some(self.get(uow, &code, version).await?)),
            None => Ok(None),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Arc<CompiledVersion>>> {
        // A panic while holding the lock cannot leave the map half-written; keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn version_not_found(code: &PolicyCode, version: u32) -> EngineError {
    EngineError::not_found(
        "not_found.policy_version",
        format!("policy {code} has no version {version}"),
    )
}

/// Every feature a policy may name.
pub fn features() -> Vec<FeatureDefinition> {
    Feature::ALL.iter().map(|f| f.definition()).collect()
}

/// Validates a document without keeping it: every problem at once, or what it would read.
pub fn check(document: PolicyDocument) -> Result<PolicyCheck, EngineError> {
    let policy = Policy::compile(document)?;
    let names = |stage| {
        policy
            .features_read(stage)
            .iter()
            .map(|f| f.name().to_owned())
            .collect()
    };
    let (lo, hi) = policy.score_range();
    Ok(PolicyCheck {
        valid: true,
        score_range: [lo, hi],
        application_features: names(Stage::Application),
        drawdown_features: names(Stage::Drawdown),
        line_review_features: names(Stage::LineReview),
    })
}

/// A policy with tables imported from a JSON Decision Model, validated, not kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportedPolicy {
    /// The document given, with the model's tables in place of its tables of the same stage
    /// and name: ready to author with `POST /v1/policies`.
    pub document: PolicyDocument,
    /// The tables imported, by name, in the model's order.
    pub tables: Vec<String>,
    /// What the person importing should know (a node that can never fire, left out).
    pub notes: Vec<String>,
    pub check: PolicyCheck,
}

/// Imports a JDM model's tables at `stage` into `document` and validates the result; every
/// problem of the model and of the policy is reported at once.
pub fn import_jdm(
    model: &serde_json::Value,
    stage: Stage,
    fields: &std::collections::BTreeMap<String, Feature>,
    document: PolicyDocument,
) -> Result<ImportedPolicy, EngineError> {
    let imported = lendcore_domain::decision::jdm::import(model, stage, fields)?;
    let tables = imported.tables.iter().map(|t| t.name.clone()).collect();
    let document = lendcore_domain::decision::jdm::merge(document, imported.tables);
    let check = check(document.clone())?;
    Ok(ImportedPolicy {
        document,
        tables,
        notes: imported.notes,
        check,
    })
}

fn digest(document: &PolicyDocument) -> Result<String, EngineError> {
    let bytes = serde_json::to_vec(document).map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// A code read back from the store: one that does not parse is corrupt data, not bad input.
pub(crate) fn stored_code(raw: &str) -> Result<PolicyCode, EngineError> {
    PolicyCode::parse(raw)
        .map_err(|_| EngineError::Internal(format!("stored policy code {raw:?} does not parse")))
}

fn view(
    v: &PolicyVersion,
    live: Option<&(PolicyCode, u32)>,
    now: Timestamp,
    full: bool,
) -> PolicyVersionView {
    let (lo, hi) = Policy::compile(v.document.clone())
        .map(|p| p.score_range())
        .unwrap_or((0, 0));
    PolicyVersionView {
        code: v.code.clone(),
        version: v.version,
        status: status(v, live.map(|(c, n)| (c, *n)), now),
        sha256: v.sha256.clone(),
        authored_by: v.authored_by.clone(),
        authored_at: v.authored_at,
        activation: v.activation.clone(),
        score_range: [lo, hi],
        document: full.then(|| v.document.clone()),
    }
}

/// Authors the next version of policy `code` (its first creates the policy). It decides
/// nothing until a second person activates it.
pub async fn author(
    engine: &Engine,
    principal: &Principal,
    code: &PolicyCode,
    document: PolicyDocument,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<PolicyVersionView>, EngineError> {
    Policy::compile(document.clone())?;
    let sha256 = digest(&document)?;
    let actor = principal.actor();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = engine.clock.now();
        let mut uow = engine.store.begin().await?;
        if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
            return idempotency::replayed(uow, done).await;
        }
        let next = uow.latest_policy_version(code).await?.map_or(1, |n| n + 1);
        let written = async {
            if next == 1 {
                uow.insert_credit_policy(code, &actor, now).await?;
            }
            let version = PolicyVersion::author(
                code.clone(),
                next,
                document.clone(),
                sha256.clone(),
                &actor,
                now,
            );
            uow.insert_policy_version(&version).await?;
            Ok::<_, StoreError>(version)
        }
        .await;
        let version = match written {
            // Another author took this number a moment ago: number again.
            Err(StoreError::Duplicate(_)) if attempt < 3 => continue,
            Err(StoreError::Duplicate(_)) => {
                return Err(EngineError::conflict(
                    "conflict.concurrent_update",
                    "other versions of this policy are being authored at the same moment; retry",
                ));
            }
            other => other?,
        };
        crate::audit::record(
            uow.as_mut(),
            &actor,
            "policy.version_authored",
            ("policy", code.as_str()),
            serde_json::json!({ "version": next, "sha256": sha256 }),
            now,
        )
        .await?;
        let live = uow.policy_in_effect(now).await?;
        let view = view(&version, live.as_ref(), now, true);
        idempotency::record(uow.as_mut(), request, &view, now).await?;
        uow.commit().await?;
        return Ok(Outcome::Fresh(view));
    }
}

/// Activates a version from `effective_from` (now when not given), by someone other than its
/// author. Work already started keeps the version it started under.
pub async fn activate(
    engine: &Engine,
    principal: &Principal,
    code: &PolicyCode,
    version: u32,
    effective_from: Option<Timestamp>,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<PolicyVersionView>, EngineError> {
    let actor = principal.actor();
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut target = uow
        .find_policy_version(code, version)
        .await?
        .ok_or_else(|| version_not_found(code, version))?;
    target
        .activate(&actor, effective_from, now)
        .map_err(|e| match e {
            ActivationError::SameAuthor => EngineError::forbidden(e.code(), e.to_string()),
            ActivationError::AlreadyActivated(_) => EngineError::conflict(e.code(), e.to_string()),
            ActivationError::EffectiveInPast => {
                EngineError::Invalid(lendcore_domain::validation::Violations::single(
                    "effective_from",
                    e.code(),
                    e.to_string(),
                ))
            }
        })?;
    let activated = target.clone();
    match uow.activate_policy_version(&activated).await {
        Err(StoreError::Stale(_)) => {
            return Err(EngineError::conflict(
                "conflict.policy_activated",
                format!("version {version} was activated by another request a moment ago"),
            ));
        }
        other => other?,
    }
    let activation = activated.activation.clone();
    crate::audit::record(
        uow.as_mut(),
        &actor,
        "policy.version_activated",
        ("policy", code.as_str()),
        serde_json::json!({
            "version": version,
            "sha256": activated.sha256,
            "authored_by": activated.authored_by,
            "effective_from": activation.as_ref().map(|a| a.effective_from),
        }),
        now,
    )
    .await?;
    let live = uow.policy_in_effect(now).await?;
    let view = view(&activated, live.as_ref(), now, true);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

/// Every version of every policy, without documents, by code and version.
pub async fn list(engine: &Engine) -> Result<Vec<PolicyVersionView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let all = uow.policy_versions().await?;
    let live = uow.policy_in_effect(now).await?;
    Ok(all
        .iter()
        .map(|v| view(v, live.as_ref(), now, false))
        .collect())
}

/// One version, with its document.
pub async fn get(
    engine: &Engine,
    code: &PolicyCode,
    version: u32,
) -> Result<PolicyVersionView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let found = uow
        .find_policy_version(code, version)
        .await?
        .ok_or_else(|| version_not_found(code, version))?;
    let live = uow.policy_in_effect(now).await?;
    Ok(view(&found, live.as_ref(), now, true))
}
