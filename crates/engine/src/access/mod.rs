//! Who is calling, and what they may do. Three kinds of caller:
//!
//! - lenders' back-ends, with API keys (`lck_…`), each limited to its scopes;
//! - operators, signed in with password and a time-based code (`lcs_…` session), by role;
//! - borrowers, signed in with a code sent by SMS, and a time-based code if they turned one on.
//!
//! Tokens are 256 random bits; the store keeps only their SHA-256, so a copy of the database
//! holds no usable credential. Sessions live in the store, so they survive a restart and work
//! on every process.

pub mod api_keys;
pub mod housekeeping;
pub mod operators;
pub mod otp;
pub mod second_factor;
pub mod totp;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use lendcore_domain::Timestamp;
use lendcore_domain::access::{Permission, Role, Scopes};
use lendcore_store::{SessionStage, SessionSubject, StoredSession};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Engine, EngineError, new_id};

const API_KEY_PREFIX: &str = "lck_";
const SESSION_PREFIX: &str = "lcs_";

/// How long a borrower stays signed in.
pub const BORROWER_SESSION: chrono::Duration = chrono::Duration::days(30);
/// How long an operator stays signed in: one working day.
pub const OPERATOR_SESSION: chrono::Duration = chrono::Duration::hours(12);
/// How long a session opened from a link lasts: long enough to finish what the link opens.
pub const LINK_SESSION: chrono::Duration = chrono::Duration::hours(2);
/// How long a session that has its first factor waits for the second.
pub const SECOND_FACTOR_WAIT: chrono::Duration = chrono::Duration::minutes(10);

/// An API key lookup is remembered this long, so a busy back-end costs no query per request;
/// a revoked key stops working here at once, and on other processes within this time.
const API_KEY_CACHE_TTL: StdDuration = StdDuration::from_secs(10);

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    ApiKey {
        id: String,
        name: String,
        scopes: Scopes,
    },
    Operator {
        id: String,
        username: String,
        role: Role,
        session_id: String,
    },
    Borrower {
        session_id: String,
        /// The blind index of the mobile number they proved they hold.
        mobile_index: String,
        /// The borrower registered with that number, if there is one.
        borrower_id: Option<String>,
        /// For a session opened from a link: all it reaches.
        link: Option<lendcore_domain::links::LinkScope>,
    },
}

impl Principal {
    /// How the audit names them.
    pub fn actor(&self) -> String {
        match self {
            Principal::ApiKey { id, .. } => format!("api_key:{id}"),
            Principal::Operator { username, .. } => format!("ops:{username}"),
            Principal::Borrower {
                borrower_id: Some(id),
                ..
            } => format!("borrower:{id}"),
            Principal::Borrower { session_id, .. } => format!("session:{session_id}"),
        }
    }

    /// Whether they may do what `permission` covers. Borrowers act on their own things only,
    /// which their routes check; they hold no permission over anyone else's.
    pub fn permits(&self, permission: Permission) -> bool {
        match self {
            Principal::ApiKey { scopes, .. } => scopes.contains(permission),
            Principal::Operator { role, .. } => role.permits(permission),
            Principal::Borrower { .. } => false,
        }
    }

    /// Idempotency keys are the caller's own: two callers never collide on one.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Principal::ApiKey { id, .. } => format!("api_key:{id}"),
            Principal::Operator { id, .. } => format!("operator:{id}"),
            Principal::Borrower { mobile_index, .. } => format!("mobile:{mobile_index}"),
        }
    }

    pub fn session_id(&self) -> Option<&str> {
        match self {
            Principal::ApiKey { .. } => None,
            Principal::Operator { session_id, .. } | Principal::Borrower { session_id, .. } => {
                Some(session_id)
            }
        }
    }
}

/// A session just opened: the token is shown once, here, and never again.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionIssued {
    /// Send as `Authorization: Bearer …`.
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// True when the time-based code must be sent to `/v1/auth/second-factor` before the
    /// session can do anything else.
    pub second_factor_required: bool,
}

/// Remembers API key lookups briefly; see [`API_KEY_CACHE_TTL`].
#[derive(Default)]
pub(crate) struct ApiKeyCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl ApiKeyCache {
    fn get(&self, token_hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(token_hash)
            .filter(|(_, at)| at.elapsed() < API_KEY_CACHE_TTL)
            .map(|(principal, _)| principal.clone())
    }

    fn put(&self, token_hash: String, principal: Principal) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, at)| at.elapsed() < API_KEY_CACHE_TTL);
        entries.insert(token_hash, (principal, Instant::now()));
    }

    fn forget(&self, key_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(
            |_, (principal, _)| !matches!(principal, Principal::ApiKey { id, .. } if id == key_id),
        );
    }
}

pub(crate) fn new_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn unauthenticated() -> EngineError {
    EngineError::unauthenticated(
        "auth.unauthenticated",
        "send a valid API key or session token as Authorization: Bearer …",
    )
}

/// Who holds `token`. Unknown, revoked and expired tokens are refused alike, saying only what
/// to do next; a session still waiting for its second factor is refused with
/// `auth.second_factor_required`.
pub async fn authenticate(engine: &Engine, token: &str) -> Result<Principal, EngineError> {
    if token.starts_with(API_KEY_PREFIX) {
        return authenticate_api_key(engine, token).await;
    }
    let session = live_session(engine, token).await?;
    match session.stage {
        SessionStage::Active => {}
        SessionStage::SecondFactor => {
            return Err(EngineError::unauthenticated(
                "auth.second_factor_required",
                "send the code from your authenticator app to /v1/auth/second-factor first",
            ));
        }
    }
    principal_of(engine, session).await
}

async fn authenticate_api_key(engine: &Engine, token: &str) -> Result<Principal, EngineError> {
    let hash = token_hash(token);
    if let Some(principal) = engine.api_key_cache.get(&hash) {
        return Ok(principal);
    }
    let mut uow = engine.store.begin_read().await?;
    let key = uow.find_api_key_by_hash(&hash).await?;
    let Some(key) = key.filter(|k| k.revoked_at.is_none()) else {
        return Err(unauthenticated());
    };
    let scopes = Scopes::from_text(&key.scopes)
        .ok_or_else(|| EngineError::Internal(format!("API key {} has unknown scopes", key.id)))?;
    let principal = Principal::ApiKey {
        id: key.id,
        name: key.name,
        scopes,
    };
    engine.api_key_cache.put(hash, principal.clone());
    Ok(principal)
}

/// The session `token` opens, if it is live (not revoked, not expired).
pub(crate) async fn live_session(
    engine: &Engine,
    token: &str,
) -> Result<StoredSession, EngineError> {
    if !token.starts_with(SESSION_PREFIX) {
        return Err(unauthenticated());
    }
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let session = uow.find_session_by_hash(&token_hash(token)).await?;
    match session {
        Some(s) if s.revoked_at.is_none() && s.expires_at > now => Ok(s),
        Some(s) if s.revoked_at.is_none() => Err(EngineError::unauthenticated(
            "auth.session_expired",
            "the session has expired; sign in again",
        )),
        Some(_) | None => Err(unauthenticated()),
    }
}

async fn principal_of(engine: &Engine, session: StoredSession) -> Result<Principal, EngineError> {
    match session.subject {
        SessionSubject::Borrower => Ok(Principal::Borrower {
            link: match &session.scope {
                Some(stored) => Some(
                    lendcore_domain::links::LinkScope::from_stored(stored).ok_or_else(|| {
                        EngineError::Internal(format!(
                            "session {} has an unknown scope",
                            session.id
                        ))
                    })?,
                ),
                None => None,
            },
            session_id: session.id,
            mobile_index: session.subject_id,
            borrower_id: session.borrower_id,
        }),
        SessionSubject::Operator => {
            let mut uow = engine.store.begin_read().await?;
            let operator = uow.find_operator(&session.subject_id).await?;
            let Some(operator) = operator.filter(|o| o.disabled_at.is_none()) else {
                return Err(unauthenticated());
            };
            let role = Role::parse(&operator.role).ok_or_else(|| {
                EngineError::Internal(format!("operator {} has an unknown role", operator.id))
            })?;
            Ok(Principal::Operator {
                id: operator.id,
                username: operator.username,
                role,
                session_id: session.id,
            })
        }
    }
}

/// How long a session lasts once active.
pub(crate) fn session_lifetime(subject: SessionSubject, from_link: bool) -> chrono::Duration {
    match (subject, from_link) {
        (SessionSubject::Borrower, true) => LINK_SESSION,
        (SessionSubject::Borrower, false) => BORROWER_SESSION,
        (SessionSubject::Operator, _) => OPERATOR_SESSION,
    }
}

/// A new session row and its token; the caller writes the row in its unit of work.
pub(crate) fn new_session(
    subject: SessionSubject,
    subject_id: &str,
    borrower_id: Option<String>,
    second_factor: bool,
    scope: Option<&lendcore_domain::links::LinkScope>,
    now: Timestamp,
) -> (StoredSession, SessionIssued) {
    let token = new_token(SESSION_PREFIX);
    let lifetime = session_lifetime(subject, scope.is_some());
    let (stage, expires_at) = if second_factor {
        (SessionStage::SecondFactor, now + SECOND_FACTOR_WAIT)
    } else {
        (SessionStage::Active, now + lifetime)
    };
    let session = StoredSession {
        id: new_id(),
        token_hash: token_hash(&token),
        subject,
        subject_id: subject_id.to_owned(),
        borrower_id,
        stage,
        scope: scope.map(lendcore_domain::links::LinkScope::to_stored),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    let issued = SessionIssued {
        token,
        expires_at,
        second_factor_required: second_factor,
    };
    (session, issued)
}

/// Opens a session for the holder of a verified mobile number, in the caller's unit of work:
/// as the borrower registered with it, if any, waiting for their second factor if they turned
/// one on.
pub(crate) async fn open_borrower_session(
    uow: &mut dyn lendcore_store::UnitOfWork,
    mobile_index: &str,
    borrower_id: Option<String>,
    scope: Option<&lendcore_domain::links::LinkScope>,
    now: Timestamp,
) -> Result<(StoredSession, SessionIssued), EngineError> {
    // Whoever registered with the number since the link was issued counts too: a link never
    // skips a second factor its owner has turned on.
    let borrower_id = match borrower_id {
        Some(id) => Some(id),
        None => uow
            .find_borrowers_by(lendcore_store::BorrowerIndex::Mobile, mobile_index)
            .await?
            .into_iter()
            .find(|b| b.kind == lendcore_domain::borrower::BorrowerKind::Individual)
            .map(|b| b.id),
    };
    let second_factor = match &borrower_id {
        Some(id) => uow
            .find_second_factor(&format!("borrower:{id}"))
            .await?
            .is_some_and(|f| f.activated_at.is_some()),
        None => false,
    };
    let (session, issued) = new_session(
        SessionSubject::Borrower,
        mobile_index,
        borrower_id,
        second_factor,
        scope,
        now,
    );
    uow.insert_session(&session).await?;
    Ok((session, issued))
}

/// Ends the caller's session; an API key has none to end.
pub async fn sign_out(engine: &Engine, principal: &Principal) -> Result<(), EngineError> {
    let Some(session_id) = principal.session_id() else {
        return Err(EngineError::conflict(
            "conflict.not_a_session",
            "API keys do not sign in or out; revoke the key instead",
        ));
    };
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    uow.revoke_session(session_id, now).await?;
    crate::audit::record(
        uow.as_mut(),
        &principal.actor(),
        "session.ended",
        ("session", session_id),
        serde_json::json!({}),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(())
}

/// Refuses with 429 when `limit` is reached for these past events.
pub(crate) fn check_limit(
    limit: lendcore_domain::access::RateLimit,
    events: &[Timestamp],
    now: Timestamp,
) -> Result<(), EngineError> {
    match limit.wait(events, now) {
        None => Ok(()),
        Some(wait) => Err(EngineError::Throttled {
            reason: lendcore_domain::reasons::Reason::TooManyAttempts,
            // Rounded up: coming back at the second said is never early.
            retry_after_secs: u64::try_from((wait.num_milliseconds() + 999) / 1000)
                .unwrap_or(1)
                .max(1),
        }),
    }
}

/// Refuses unless the caller may do what `permission` covers.
pub fn require(principal: &Principal, permission: Permission) -> Result<(), EngineError> {
    if principal.permits(permission) {
        Ok(())
    } else {
        Err(EngineError::forbidden(
            "auth.forbidden",
            format!(
                "{} may not do this: it needs the {} permission",
                principal.actor(),
                permission.as_str()
            ),
        ))
    }
}
