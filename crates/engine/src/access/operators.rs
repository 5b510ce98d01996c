//! Operators: people on the lender's side, each with a role. They sign in with a password
//! (argon2id) and a time-based code; wrong attempts are counted per username and per client
//! and slowed down, and every sign-in and change is audited.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use lendcore_domain::access::{RateLimit, Role};
use lendcore_domain::validation::Violations;
use lendcore_store::{SessionSubject, StoredOperator, StoredSecondFactor};
use serde::Serialize;

use super::{SessionIssued, check_limit, new_session, totp};
use crate::{Engine, EngineError, new_id};

/// Sign-in attempts allowed per username from one client, then that pair waits.
const PER_PAIR: RateLimit = RateLimit::new(5, chrono::Duration::minutes(15));
/// Attempts per username from anywhere: higher, so one attacker cannot lock an operator out,
/// yet a distributed guess is still stopped.
const PER_USERNAME: RateLimit = RateLimit::new(30, chrono::Duration::minutes(15));
/// Attempts per client (IP address), whatever the usernames tried.
const PER_CLIENT: RateLimit = RateLimit::new(20, chrono::Duration::minutes(15));
const BY_PAIR: &str = "operator_sign_in_pair";
const BY_USERNAME: &str = "operator_sign_in_username";
const BY_CLIENT: &str = "operator_sign_in_client";
/// Password checks running at once, in this process.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorView {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub disabled_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An operator just created: hand the password and the authenticator secret over in person or
/// through a channel of their own. Neither is shown again.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorCreated {
    pub operator: OperatorView,
    pub password: String,
    /// The authenticator app's secret, base32.
    pub totp_secret: String,
    /// The same secret as an `otpauth://` URI, for a QR code.
    pub totp_uri: String,
}

fn view(operator: StoredOperator) -> Result<OperatorView, EngineError> {
    let role = Role::parse(&operator.role)
        .ok_or_else(|| EngineError::Internal(format!("operator {} role", operator.id)))?;
    Ok(OperatorView {
        role,
        id: operator.id,
        username: operator.username,
        created_by: operator.created_by,
        created_at: operator.created_at,
        disabled_at: operator.disabled_at,
    })
}

fn parse_username(raw: &str) -> Result<String, Violations> {
    let ok = (3..=32).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Violations::single(
            "username",
            "validation.invalid_username",
            "a username is 3-32 characters: lower-case letters, digits, '.', '_' or '-'",
        ))
    }
}

fn owner(operator_id: &str) -> String {
    format!("operator:{operator_id}")
}

async fn hash_password(password: String) -> Result<String, EngineError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| EngineError::Internal(format!("salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| EngineError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| EngineError::Internal(format!("hashing a password: {e}")))?
}

async fn password_matches(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A password of 20 characters from a 32-character alphabet: 100 bits.
fn new_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789AB";
    let bytes: [u8; 20] = rand::random();
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

pub async fn create(
    engine: &Engine,
    actor: &str,
    username: &str,
    role: Role,
) -> Result<OperatorCreated, EngineError> {
    let username = parse_username(username)?;
    let vault = engine.vault()?;
    let now = engine.clock.now();
    let password = new_password();
    let password_hash = hash_password(password.clone()).await?;
    let secret = totp::new_secret();
    let operator = StoredOperator {
        id: new_id(),
        username,
        role: role.as_str().to_owned(),
        password_hash,
        created_by: actor.to_owned(),
        created_at: now,
        disabled_at: None,
    };
    let factor = StoredSecondFactor {
        owner: owner(&operator.id),
        secret: vault.seal_bytes(&secret, &owner(&operator.id))?,
        activated_at: Some(now),
        last_step: 0,
        created_at: now,
    };
    let taken = || {
        EngineError::conflict(
            "conflict.username_taken",
            "another operator has that username",
        )
    };
    let mut uow = engine.store.begin().await?;
    if uow
        .find_operator_by_username(&operator.username)
        .await?
        .is_some()
    {
        return Err(taken());
    }
    // Another admin may take the name between the look and the write.
    match uow.insert_operator(&operator).await {
        Err(lendcore_store::StoreError::Duplicate(_)) => return Err(taken()),
        other => other?,
    }
    uow.put_second_factor(&factor).await?;
    crate::audit::record(
        uow.as_mut(),
        actor,
        "operator.created",
        ("operator", &operator.id),
        serde_json::json!({ "username": operator.username, "role": operator.role }),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(OperatorCreated {
        totp_secret: totp::base32(&secret),
        totp_uri: totp::otpauth_uri("lendcore", &operator.username, &secret),
        operator: view(operator)?,
        password,
    })
}

pub async fn list(engine: &Engine) -> Result<Vec<OperatorView>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    uow.list_operators().await?.into_iter().map(view).collect()
}

/// Disables an operator and ends their sessions at once.
pub async fn disable(engine: &Engine, actor: &str, id: &str) -> Result<OperatorView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if uow.find_operator(id).await?.is_none() {
        return Err(no_operator());
    }
    if uow.disable_operator(id, now).await? {
        end_sessions(uow.as_mut(), actor, "operator.disabled", id, now).await?;
    }
    let operator = uow
        .find_operator(id)
        .await?
        .ok_or_else(|| EngineError::Internal("disabled operator vanished".to_owned()))?;
    uow.commit().await?;
    view(operator)
}

/// Ends every session of an operator whose access just changed, and records `action` with how
/// many ended, in the caller's unit of work.
async fn end_sessions(
    uow: &mut dyn lendcore_store::UnitOfWork,
    actor: &str,
    action: &str,
    id: &str,
    now: lendcore_domain::Timestamp,
) -> Result<(), EngineError> {
    let ended = uow
        .revoke_sessions_of(SessionSubject::Operator, id, now)
        .await?;
    crate::audit::record(
        uow,
        actor,
        action,
        ("operator", id),
        serde_json::json!({ "sessions_ended": ended }),
        now,
    )
    .await?;
    Ok(())
}

/// Changing an operator's credentials and opening a session with them happen one at a time.
fn credentials_of(operator_id: &str) -> String {
    format!("operator-credentials:{operator_id}")
}

/// A turn at checking a password. argon2 costs 19 MiB and tens of milliseconds: a few at a
/// time, whatever arrives; the rest are told to retry.
async fn hashing_turn() -> Result<tokio::sync::SemaphorePermit<'static>, EngineError> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), HASHING.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) | Err(_) => Err(EngineError::Unavailable(
            "too many passwords are being checked; retry shortly".to_owned(),
        )),
    }
}

fn no_operator() -> EngineError {
    EngineError::not_found("not_found.operator", "no operator with that id")
}

/// A new password and a new authenticator secret for an operator who lost one or the other,
/// handed over like at creation (shown once); their sessions end. A disabled operator stays
/// disabled: enable nobody by accident.
pub async fn reset(
    engine: &Engine,
    principal: &super::Principal,
    id: &str,
) -> Result<OperatorCreated, EngineError> {
    // People vouch for people, and another admin for this one: a key cannot hand out a
    // person's credentials, and a stolen session cannot mint itself new ones and lock the
    // owner out.
    match principal {
        super::Principal::Operator { id: own, .. } if own != id => {}
        super::Principal::Operator { .. } => {
            return Err(EngineError::forbidden(
                "auth.forbidden",
                "operators do not reset themselves: change your password, or ask another admin",
            ));
        }
        super::Principal::ApiKey { .. } | super::Principal::Borrower { .. } => {
            return Err(EngineError::forbidden(
                "auth.forbidden",
                "operators are reset by an admin operator",
            ));
        }
    }
    let actor = principal.actor();
    let actor = actor.as_str();
    let vault = engine.vault()?;
    let now = engine.clock.now();
    let password = new_password();
    let password_hash = hash_password(password.clone()).await?;
    let secret = totp::new_secret();
    let mut uow = engine.store.begin().await?;
    uow.serialise_on(&credentials_of(id)).await?;
    let operator = uow.find_operator(id).await?.ok_or_else(no_operator)?;
    if !uow.set_operator_password(id, &password_hash).await? {
        return Err(EngineError::conflict(
            "conflict.operator_disabled",
            "a disabled operator is not reset; create a new one if they come back",
        ));
    }
    uow.put_second_factor(&StoredSecondFactor {
        owner: owner(id),
        secret: vault.seal_bytes(&secret, &owner(id))?,
        activated_at: Some(now),
        last_step: 0,
        created_at: now,
    })
    .await?;
    end_sessions(uow.as_mut(), actor, "operator.reset", id, now).await?;
    uow.commit().await?;
    Ok(OperatorCreated {
        totp_secret: totp::base32(&secret),
        totp_uri: totp::otpauth_uri("lendcore", &operator.username, &secret),
        operator: view(operator)?,
        password,
    })
}

/// Wrong current passwords an operator may give, changing theirs, in fifteen minutes.
const PASSWORD_CHANGES: RateLimit = RateLimit::new(5, chrono::Duration::minutes(15));
const BY_PASSWORD_CHANGE: &str = "operator_password_change";

/// An operator sets their own password, giving the current one. Every session of theirs ends,
/// this one too: they sign in again with the new password.
pub async fn change_password(
    engine: &Engine,
    principal: &super::Principal,
    current: &str,
    new: &str,
) -> Result<(), EngineError> {
    let super::Principal::Operator { id, .. } = principal else {
        return Err(EngineError::forbidden(
            "auth.forbidden",
            "operators change their own password",
        ));
    };
    let chars = new.chars().count();
    if !(12..=128).contains(&chars) || new == current || current.len() > 1024 {
        return Err(Violations::single(
            "new_password",
            "validation.weak_password",
            "a new password is 12 to 128 characters and not the current one",
        )
        .into());
    }
    let now = engine.clock.now();
    // Counted before the hash is checked, like a sign-in: guesses sent at once each count.
    {
        let mut uow = engine.store.begin().await?;
        uow.serialise_on(&format!("operator-password:{id}")).await?;
        let times = uow
            .auth_failure_times(BY_PASSWORD_CHANGE, id, PASSWORD_CHANGES.since(now))
            .await?;
        check_limit(PASSWORD_CHANGES, &times, now)?;
        uow.record_auth_failure(BY_PASSWORD_CHANGE, id, now).await?;
        uow.commit().await?;
    }
    let _permit = hashing_turn().await?;
    let operator = {
        let mut uow = engine.store.begin_read().await?;
        uow.find_operator(id).await?.ok_or_else(no_operator)?
    };
    if !password_matches(current.to_owned(), operator.password_hash.clone()).await {
        return Err(EngineError::forbidden(
            "auth.password_incorrect",
            "the current password is wrong",
        ));
    }
    let hash = hash_password(new.to_owned()).await?;
    let mut uow = engine.store.begin().await?;
    uow.serialise_on(&credentials_of(id)).await?;
    // Reset by an admin while the current password was checked: that one no longer counts.
    let unchanged = uow
        .find_operator(id)
        .await?
        .is_some_and(|now| now.password_hash == operator.password_hash);
    if !unchanged || !uow.set_operator_password(id, &hash).await? {
        return Err(EngineError::conflict(
            "conflict.concurrent_update",
            "the password was changed meanwhile; sign in again",
        ));
    }
    uow.clear_auth_failures(BY_PASSWORD_CHANGE, id).await?;
    end_sessions(
        uow.as_mut(),
        &principal.actor(),
        "operator.password_changed",
        id,
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(())
}

/// Signs an operator in. Every failure answers the same `auth.login_failed`, whichever part
/// was wrong, and is counted; too many answer 429 with when to try again.
pub async fn sign_in(
    engine: &Engine,
    username: &str,
    password: &str,
    code: &str,
    client: &str,
) -> Result<SessionIssued, EngineError> {
    let now = engine.clock.now();
    let failed = || {
        EngineError::unauthenticated(
            "auth.login_failed",
            "the username, password or code is wrong",
        )
    };
    // Nothing this long was ever issued; it is not worth a query, a hash, nor a row in the log.
    if username.len() > 64 || password.len() > 1024 || code.len() > 16 {
        return Err(failed());
    }
    let vault = engine.vault()?;
    // Each attempt is counted, and committed, before the password is hashed: attempts sent
    // at once are counted one after another and cannot all slip under the limits.
    let pair = format!("{username}|{client}");
    {
        let mut uow = engine.store.begin().await?;
        uow.serialise_on(&format!("operator-sign-in:{username}"))
            .await?;
        for (kind, subject, limit) in [
            (BY_PAIR, pair.as_str(), PER_PAIR),
            (BY_USERNAME, username, PER_USERNAME),
            (BY_CLIENT, client, PER_CLIENT),
        ] {
            let times = uow
                .auth_failure_times(kind, subject, limit.since(now))
                .await?;
            check_limit(limit, &times, now)?;
        }
        for (kind, subject) in [
            (BY_PAIR, pair.as_str()),
            (BY_USERNAME, username),
            (BY_CLIENT, client),
        ] {
            uow.record_auth_failure(kind, subject, now).await?;
        }
        uow.commit().await?;
    }
    let _permit = hashing_turn().await?;
    let operator = {
        let mut uow = engine.store.begin_read().await?;
        uow.find_operator_by_username(username).await?
    };
    // An unknown username costs the same hashing as a known one: timing tells nothing.
    let hash = operator
        .as_ref()
        .map_or_else(|| DUMMY_HASH.to_owned(), |o| o.password_hash.clone());
    let password_ok = password_matches(password.to_owned(), hash.clone()).await;
    let mut uow = engine.store.begin().await?;
    // Read again in the transaction that opens the session: a password changed or reset, or
    // an operator disabled, while the hash was being checked must not let the old one in.
    let still = match &operator {
        Some(o) => {
            uow.serialise_on(&credentials_of(&o.id)).await?;
            uow.find_operator(&o.id)
                .await?
                .is_some_and(|now| now.disabled_at.is_none() && now.password_hash == hash)
        }
        None => false,
    };
    let accepted = match operator.filter(|_| still && password_ok) {
        None => None,
        Some(operator) => {
            let factor = uow.find_second_factor(&owner(&operator.id)).await?;
            let step = match factor {
                Some(f) => {
                    let secret = vault.open_bytes(&f.secret, &owner(&operator.id))?;
                    totp::matching_step(&secret, code, now, f.last_step)
                }
                None => None,
            };
            match step {
                Some(step)
                    if uow
                        .use_second_factor_step(&owner(&operator.id), step, now)
                        .await? =>
                {
                    Some(operator)
                }
                Some(_) | None => None,
            }
        }
    };
    let Some(operator) = accepted else {
        crate::audit::record(
            uow.as_mut(),
            &format!("client:{client}"),
            "operator.sign_in_failed",
            ("username", username),
            serde_json::json!({}),
            now,
        )
        .await?;
        uow.commit().await?;
        return Err(failed());
    };
    // A success forgets this client's attempts at this username, so an operator signing in
    // often is never locked out by their own sign-ins.
    uow.clear_auth_failures(BY_PAIR, &pair).await?;
    let (session, issued) = new_session(
        SessionSubject::Operator,
        &operator.id,
        None,
        false,
        None,
        now,
    );
    uow.insert_session(&session).await?;
    crate::audit::record(
        uow.as_mut(),
        &format!("ops:{}", operator.username),
        "operator.signed_in",
        ("session", &session.id),
        serde_json::json!({ "client": client }),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(issued)
}

/// An argon2id hash of a random password nobody knows, checked when the username is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vv0lvbXvKXGc8WyhVZxQ5rJ3x3C1l0X7Yz2v0sN8k8Q";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_hash_is_checked_like_a_real_one() {
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "so its check costs the same"
        );
    }

    #[test]
    fn usernames_are_plain_and_passwords_long() {
        assert!(parse_username("alice.ops").is_ok());
        for bad in ["al", "Alice", "ali ce", "", &"a".repeat(33), "root;--"] {
            assert!(parse_username(bad).is_err(), "{bad}");
        }
        let password = new_password();
        assert_eq!(password.len(), 20);
        assert_ne!(password, new_password());
    }
}
