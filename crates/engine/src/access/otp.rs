//! Borrowers sign in with a six-digit code sent by SMS. The code is kept as a keyed hash, lives
//! five minutes, survives five wrong guesses, and cannot be asked for more than once a minute
//! or five times an hour per number, nor twenty times an hour per client; wrong guesses are
//! also limited per client, so guessing across many numbers is slowed down as well.

use lendcore_connectors::sms::Sms;
use lendcore_domain::access::RateLimit;
use lendcore_domain::borrower::{BorrowerKind, Mobile};
use lendcore_domain::reasons::{Language, Reason};
use lendcore_store::{
    BorrowerIndex, ChallengeKey, ChallengeStatus, SessionSubject, StoredChallenge,
};
use serde::Serialize;

use super::{SessionIssued, check_limit, new_session, totp::constant_time_eq};
use crate::{Engine, EngineError, new_id};

pub const CODE_LIFETIME: chrono::Duration = chrono::Duration::minutes(5);
/// Wrong codes one challenge takes before it accepts none.
pub const MAX_ATTEMPTS: i64 = 5;
const RESEND: RateLimit = RateLimit::new(1, chrono::Duration::seconds(60));
const PER_NUMBER: RateLimit = RateLimit::new(5, chrono::Duration::hours(1));
const PER_CLIENT: RateLimit = RateLimit::new(20, chrono::Duration::hours(1));
const WRONG_PER_CLIENT: RateLimit = RateLimit::new(30, chrono::Duration::hours(1));
const WRONG_CODE: &str = "otp_wrong_code";

/// A code is on its way.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeSent {
    /// Send it back with the code.
    pub challenge_id: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The number it went to, masked.
    pub sent_to: String,
}

fn text(language: Language, code: &str) -> String {
    let minutes = CODE_LIFETIME.num_minutes();
    match language {
        Language::En => format!(
            "Your sign-in code is {code}. It expires in {minutes} minutes. Never share it: \
             we will never ask you for it."
        ),
        Language::ZhHans => format!(
            "您的登录验证码为{code}，{minutes}分钟内有效。请勿告诉他人，我们不会向您索取验证码。"
        ),
    }
}

fn code_hash(engine: &Engine, challenge_id: &str, code: &str) -> Result<String, EngineError> {
    Ok(engine
        .vault()?
        .index("otp", &format!("{challenge_id}:{code}")))
}

/// Sends a sign-in code to `mobile`, whether or not a borrower has that number yet (a new
/// borrower signs in to apply). `client` is the caller's address, for the per-client limit.
pub async fn send_code(
    engine: &Engine,
    mobile: &str,
    client: &str,
    language: Language,
) -> Result<CodeSent, EngineError> {
    let mobile = Mobile::parse(mobile)?;
    let vault = engine.vault()?;
    let Some(sms) = engine.sms.clone() else {
        return Err(EngineError::NotConfigured(
            "no SMS gateway is configured ([sms]): sign-in codes cannot be sent".to_owned(),
        ));
    };
    let now = engine.clock.now();
    let mobile_index = vault.index("mobile", mobile.expose());
    let mut uow = engine.store.begin().await?;
    let by_number = uow
        .challenge_times(ChallengeKey::Mobile, &mobile_index, PER_NUMBER.since(now))
        .await?;
    check_limit(RESEND, &by_number, now)?;
    check_limit(PER_NUMBER, &by_number, now)?;
    let by_client = uow
        .challenge_times(ChallengeKey::Client, client, PER_CLIENT.since(now))
        .await?;
    check_limit(PER_CLIENT, &by_client, now)?;
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    let id = new_id();
    let challenge = StoredChallenge {
        code_hash: code_hash(engine, &id, &code)?,
        id: id.clone(),
        mobile_index,
        client: client.to_owned(),
        attempts: 0,
        status: ChallengeStatus::Open,
        created_at: now,
        expires_at: now + CODE_LIFETIME,
    };
    uow.insert_challenge(&challenge).await?;
    uow.commit().await?;
    // Sent after the commit: a crash in between leaves a challenge nobody received, and the
    // borrower asks again; the other order could deliver a code that was never stored.
    let message = Sms {
        to: mobile.expose().to_owned(),
        text: text(language, &code),
        reference: id.clone(),
    };
    if let Err(err) = sms.send(&message).await {
        tracing::warn!(challenge = %id, error = %err, "a sign-in code could not be sent");
        metrics::counter!("lendcore_sms_failures_total", "purpose" => "sign_in").increment(1);
        return Err(EngineError::Refused {
            reason: Reason::CodeNotSent,
        });
    }
    Ok(CodeSent {
        challenge_id: id,
        expires_at: challenge.expires_at,
        sent_to: mobile.masked(),
    })
}

/// Checks a code and opens a session for the number. A borrower registered with the number is
/// the session's borrower; one who turned on a second factor must send it next.
pub async fn verify_code(
    engine: &Engine,
    challenge_id: &str,
    code: &str,
    client: &str,
) -> Result<SessionIssued, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let wrong = uow
        .auth_failure_times(WRONG_CODE, client, WRONG_PER_CLIENT.since(now))
        .await?;
    check_limit(WRONG_PER_CLIENT, &wrong, now)?;
    let found = if challenge_id.len() <= 64 {
        uow.find_challenge(challenge_id).await?
    } else {
        None
    };
    let Some(mut challenge) = found else {
        return Err(EngineError::Refused {
            reason: Reason::CodeExpired,
        });
    };
    match challenge.status {
        ChallengeStatus::Open if challenge.expires_at > now => {}
        ChallengeStatus::Open | ChallengeStatus::Used => {
            return Err(EngineError::Refused {
                reason: Reason::CodeExpired,
            });
        }
        ChallengeStatus::Exhausted => {
            return Err(EngineError::Refused {
                reason: Reason::TooManyAttempts,
            });
        }
    }
    let expected = challenge.code_hash.clone();
    let given = code_hash(engine, &challenge.id, code.trim())?;
    let read_attempts = challenge.attempts;
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        challenge.attempts += 1;
        let exhausted = challenge.attempts >= MAX_ATTEMPTS;
        if exhausted {
            challenge.status = ChallengeStatus::Exhausted;
        }
        if !uow.update_challenge(&challenge, read_attempts).await? {
            return Err(EngineError::conflict(
                "conflict.concurrent_update",
                "another attempt with this code was being checked; try again",
            ));
        }
        uow.record_auth_failure(WRONG_CODE, client, now).await?;
        uow.commit().await?;
        return Err(EngineError::Refused {
            reason: if exhausted {
                Reason::TooManyAttempts
            } else {
                Reason::CodeIncorrect
            },
        });
    }
    challenge.status = ChallengeStatus::Used;
    if !uow.update_challenge(&challenge, read_attempts).await? {
        return Err(EngineError::Refused {
            reason: Reason::CodeExpired,
        });
    }
    let borrower_id = uow
        .find_borrowers_by(BorrowerIndex::Mobile, &challenge.mobile_index)
        .await?
        .into_iter()
        .find(|b| b.kind == BorrowerKind::Individual)
        .map(|b| b.id);
    let second_factor = match &borrower_id {
        Some(id) => uow
            .find_second_factor(&format!("borrower:{id}"))
            .await?
            .is_some_and(|f| f.activated_at.is_some()),
        None => false,
    };
    let (session, issued) = new_session(
        SessionSubject::Borrower,
        &challenge.mobile_index,
        borrower_id.clone(),
        second_factor,
        now,
    );
    uow.insert_session(&session).await?;
    let actor = borrower_id.map_or_else(
        || format!("session:{}", session.id),
        |id| format!("borrower:{id}"),
    );
    crate::audit::record(
        uow.as_mut(),
        &actor,
        "borrower.signed_in",
        ("session", &session.id),
        serde_json::json!({ "client": client, "second_factor_required": second_factor }),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(issued)
}
