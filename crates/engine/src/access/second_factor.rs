//! A borrower's optional second factor: a time-based code from an authenticator app. Turned on
//! in two steps (enrol, then confirm with a first code) so a mistyped secret locks nobody out;
//! once on, every sign-in by SMS code waits for it.

use lendcore_domain::access::RateLimit;
use lendcore_store::StoredSecondFactor;
use serde::Serialize;

use super::{Principal, SessionIssued, check_limit, live_session, totp};
use crate::{Engine, EngineError};

/// Wrong codes allowed per borrower before they wait.
const WRONG_PER_OWNER: RateLimit = RateLimit::new(5, chrono::Duration::minutes(15));
const WRONG_CODE: &str = "totp_wrong_code";

/// The secret to put in an authenticator app; shown once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
}

fn borrower_owner(principal: &Principal) -> Result<String, EngineError> {
    match principal {
        Principal::Borrower {
            borrower_id: Some(id),
            ..
        } => Ok(format!("borrower:{id}")),
        Principal::Borrower {
            borrower_id: None, ..
        } => Err(EngineError::conflict(
            "conflict.not_registered",
            "a second factor belongs to a registered borrower; apply first",
        )),
        Principal::ApiKey { .. } | Principal::Operator { .. } => Err(EngineError::forbidden(
            "auth.forbidden",
            "only a signed-in borrower turns on their own second factor",
        )),
    }
}

/// Starts turning the second factor on (or starts again, if never confirmed).
pub async fn enrol(engine: &Engine, principal: &Principal) -> Result<Enrolment, EngineError> {
    let owner = borrower_owner(principal)?;
    let vault = engine.vault()?;
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if uow
        .find_second_factor(&owner)
        .await?
        .is_some_and(|f| f.activated_at.is_some())
    {
        return Err(EngineError::conflict(
            "conflict.second_factor_on",
            "the second factor is already on",
        ));
    }
    let secret = totp::new_secret();
    uow.put_second_factor(&StoredSecondFactor {
        owner: owner.clone(),
        secret: vault.seal_bytes(&secret, &owner)?,
        activated_at: None,
        last_step: 0,
        created_at: now,
    })
    .await?;
    uow.commit().await?;
    Ok(Enrolment {
        secret: totp::base32(&secret),
        uri: totp::otpauth_uri("lendcore", &owner, &secret),
    })
}

/// Checks a code for `owner`'s factor and uses its time step; counts a wrong one.
async fn check_code(engine: &Engine, owner: &str, code: &str) -> Result<(), EngineError> {
    let vault = engine.vault()?;
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    // Codes for one owner sent at once are checked one after another, so the limit holds.
    uow.serialise_on(&format!("second-factor:{owner}")).await?;
    let wrong = uow
        .auth_failure_times(WRONG_CODE, owner, WRONG_PER_OWNER.since(now))
        .await?;
    check_limit(WRONG_PER_OWNER, &wrong, now)?;
    let Some(factor) = uow.find_second_factor(owner).await? else {
        return Err(EngineError::conflict(
            "conflict.no_second_factor",
            "no second factor is enrolled; enrol first",
        ));
    };
    let secret = vault.open_bytes(&factor.secret, owner)?;
    let accepted = match totp::matching_step(&secret, code, now, factor.last_step) {
        Some(step) => uow.use_second_factor_step(owner, step, now).await?,
        None => false,
    };
    if !accepted {
        uow.record_auth_failure(WRONG_CODE, owner, now).await?;
        uow.commit().await?;
        return Err(EngineError::Refused {
            reason: lendcore_domain::reasons::Reason::CodeIncorrect,
        });
    }
    crate::audit::record(
        uow.as_mut(),
        owner,
        if factor.activated_at.is_some() {
            "second_factor.passed"
        } else {
            "second_factor.turned_on"
        },
        ("second_factor", owner),
        serde_json::json!({}),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(())
}

/// Confirms an enrolment with the first code the app shows: the factor is on from now.
pub async fn confirm(
    engine: &Engine,
    principal: &Principal,
    code: &str,
) -> Result<(), EngineError> {
    let owner = borrower_owner(principal)?;
    check_code(engine, &owner, code).await
}

/// Completes a sign-in that waits for its second factor: the same token becomes a full
/// session.
pub async fn complete_sign_in(
    engine: &Engine,
    token: &str,
    code: &str,
) -> Result<SessionIssued, EngineError> {
    let session = live_session(engine, token).await?;
    let owner = match (&session.stage, &session.borrower_id) {
        (lendcore_store::SessionStage::SecondFactor, Some(id)) => format!("borrower:{id}"),
        (lendcore_store::SessionStage::SecondFactor, None)
        | (lendcore_store::SessionStage::Active, _) => {
            return Err(EngineError::conflict(
                "conflict.second_factor_not_awaited",
                "this session is not waiting for a second factor",
            ));
        }
    };
    check_code(engine, &owner, code).await?;
    let now = engine.clock.now();
    let expires_at = now + super::session_lifetime(session.subject, session.scope.is_some());
    let mut uow = engine.store.begin().await?;
    if !uow.activate_session(&session.id, expires_at).await? {
        return Err(EngineError::unauthenticated(
            "auth.unauthenticated",
            "the session ended while the code was checked; sign in again",
        ));
    }
    uow.commit().await?;
    Ok(SessionIssued {
        token: token.to_owned(),
        expires_at,
        second_factor_required: false,
    })
}

/// Turns a borrower's second factor off for them when they lost their authenticator: support,
/// having made sure who they are some other way, says how (`note`, kept in the audit). Their
/// sessions end; they sign in again by SMS code and may turn it on anew.
pub async fn remove_for_borrower(
    engine: &Engine,
    actor: &str,
    borrower_id: &str,
    note: &str,
) -> Result<(), EngineError> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > 500 {
        return Err(lendcore_domain::validation::Violations::single(
            "note",
            "validation.note_required",
            "say how the borrower's identity was confirmed (1 to 500 characters)",
        )
        .into());
    }
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let borrower = uow
        .find_borrower(borrower_id)
        .await?
        .ok_or_else(|| EngineError::not_found("not_found.borrower", "no borrower with that id"))?;
    if !uow
        .delete_second_factor(&format!("borrower:{borrower_id}"))
        .await?
    {
        return Err(EngineError::conflict(
            "conflict.no_second_factor",
            "this borrower has no second factor to turn off",
        ));
    }
    // Sessions under their number now, and any still acting as them under an earlier one.
    let mut ended = uow.revoke_sessions_of_borrower(borrower_id, now).await?;
    if let Some(mobile_index) = &borrower.mobile_index {
        ended += uow
            .revoke_sessions_of(lendcore_store::SessionSubject::Borrower, mobile_index, now)
            .await?;
    }
    uow.clear_auth_failures(WRONG_CODE, &format!("borrower:{borrower_id}"))
        .await?;
    crate::audit::record(
        uow.as_mut(),
        actor,
        "borrower.second_factor_removed",
        ("borrower", borrower_id),
        serde_json::json!({ "note": note, "sessions_ended": ended }),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(())
}
