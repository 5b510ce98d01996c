//! API keys for lenders' back-ends: created by an admin with the scopes the back-end needs,
//! shown once, stored as a hash, revoked at once.

use lendcore_domain::access::Scopes;
use lendcore_domain::validation::Violations;
use lendcore_store::StoredApiKey;
use serde::Serialize;

use super::{API_KEY_PREFIX, new_token, token_hash};
use crate::{Engine, EngineError, new_id};

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A key just created. `key` is shown here only: lendcore keeps its hash.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyCreated {
    pub api_key: ApiKeyView,
    /// Send as `Authorization: Bearer …`. Store it in the back-end's secrets now.
    pub key: String,
}

fn view(key: StoredApiKey) -> ApiKeyView {
    ApiKeyView {
        scopes: key.scopes.split_whitespace().map(str::to_owned).collect(),
        id: key.id,
        name: key.name,
        created_by: key.created_by,
        created_at: key.created_at,
        revoked_at: key.revoked_at,
    }
}

fn parse_name(name: &str) -> Result<String, Violations> {
    let name = name.trim();
    if (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(Violations::single(
            "name",
            "validation.invalid_name",
            "name the key for what uses it: 1-64 characters, e.g. \"loan-app backend\"",
        ))
    }
}

/// Creates a key. `granter` is who asks: an API key may only hand out scopes it holds itself,
/// so a key never mints a stronger one (`None`: the command line, trusted with the database).
pub async fn create(
    engine: &Engine,
    actor: &str,
    granter: Option<&super::Principal>,
    name: &str,
    scopes: &[String],
) -> Result<ApiKeyCreated, EngineError> {
    let name = parse_name(name);
    let scopes = Scopes::parse(scopes);
    let (name, scopes) = match (name, scopes) {
        (Ok(n), Ok(s)) => (n, s),
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };
    if let Some(super::Principal::ApiKey { scopes: own, .. }) = granter
        && let Some(beyond) = scopes.iter().find(|p| !own.contains(*p))
    {
        return Err(EngineError::forbidden(
            "auth.forbidden",
            format!(
                "an API key cannot grant {}, which it does not hold",
                beyond.as_str()
            ),
        ));
    }
    let now = engine.clock.now();
    let key = new_token(API_KEY_PREFIX);
    let stored = StoredApiKey {
        id: new_id(),
        name,
        token_hash: token_hash(&key),
        scopes: scopes.to_text(),
        created_by: actor.to_owned(),
        created_at: now,
        revoked_at: None,
    };
    let mut uow = engine.store.begin().await?;
    uow.insert_api_key(&stored).await?;
    crate::audit::record(
        uow.as_mut(),
        actor,
        "api_key.created",
        ("api_key", &stored.id),
        serde_json::json!({ "name": stored.name, "scopes": stored.scopes }),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(ApiKeyCreated {
        api_key: view(stored),
        key,
    })
}

pub async fn list(engine: &Engine) -> Result<Vec<ApiKeyView>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    Ok(uow.list_api_keys().await?.into_iter().map(view).collect())
}

/// Revokes a key; revoking a revoked key changes nothing and says so by its `revoked_at`.
pub async fn revoke(engine: &Engine, actor: &str, id: &str) -> Result<ApiKeyView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if uow.find_api_key(id).await?.is_none() {
        return Err(EngineError::not_found(
            "not_found.api_key",
            "no API key with that id",
        ));
    }
    if uow.revoke_api_key(id, now).await? {
        crate::audit::record(
            uow.as_mut(),
            actor,
            "api_key.revoked",
            ("api_key", id),
            serde_json::json!({}),
            now,
        )
        .await?;
    }
    let key = uow
        .find_api_key(id)
        .await?
        .ok_or_else(|| EngineError::Internal("revoked key vanished".to_owned()))?;
    uow.commit().await?;
    engine.api_key_cache.forget(id);
    Ok(view(key))
}
