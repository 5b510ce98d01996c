//! Borrowers sign in with a six-digit code sent by SMS. The code is kept as a keyed hash, lives
//! five minutes, survives five wrong guesses, and cannot be asked for more than once a minute
//! or five times an hour per number, nor twenty times an hour per client; wrong guesses are
//! also limited per client, so guessing across many numbers is slowed down as well.

use lendcore_connectors::sms::Sms;
use lendcore_domain::access::RateLimit;
use lendcore_domain::borrower::{BorrowerKind, Mobile};
use lendcore_domain::reasons::{Language, Reason};
use lendcore_store::{BorrowerIndex, ChallengeKey, ChallengeStatus, StoredChallenge};
use serde::Serialize;

use super::{SessionIssued, check_limit, totp::constant_time_eq};
use crate::{Engine, EngineError, new_id};

pub const CODE_LIFETIME: chrono::Duration = chrono::Duration::minutes(5);
/// Wrong codes one challenge takes before it accepts none.
pub const MAX_ATTEMPTS: i64 = 5;
const RESEND: RateLimit = RateLimit::new(1, chrono::Duration::seconds(60));
const PER_NUMBER: RateLimit = RateLimit::new(5, chrono::Duration::hours(1));
const PER_CLIENT: RateLimit = RateLimit::new(20, chrono::Duration::hours(1));
const WRONG_PER_CLIENT: RateLimit = RateLimit::new(30, chrono::Duration::hours(1));
const WRONG_CODE: &str = "otp_wrong_code";
/// Codes sent per hour across all numbers: a cap on what a flood can cost the lender.
const ALL_NUMBERS: RateLimit = RateLimit::new(10_000, chrono::Duration::hours(1));

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
    // Requests for one number, or from one client, at once are counted one after another.
    uow.serialise_on(&format!("otp:{mobile_index}")).await?;
    uow.serialise_on(&format!("otp-client:{client}")).await?;
    if uow.challenges_since(ALL_NUMBERS.since(now)).await? >= i64::from(ALL_NUMBERS.max) {
        metrics::counter!("lendcore_sms_budget_exhausted_total").increment(1);
        tracing::error!(
            "the hourly budget of sign-in codes is spent; codes are refused until it frees up"
        );
        return Err(EngineError::Throttled {
            reason: Reason::TooManyAttempts,
            retry_after_secs: 60,
        });
    }
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
    // A new code replaces the number's earlier ones: one live code at a time.
    uow.close_challenges_of(&challenge.mobile_index).await?;
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
        // The gateway's answer may echo the text, and so the code: only its kind is logged.
        let kind = match err {
            lendcore_connectors::sms::SmsError::Rejected(_) => "rejected",
            lendcore_connectors::sms::SmsError::Unavailable(_) => "unavailable",
        };
        tracing::warn!(challenge = %id, kind, "a sign-in code could not be sent");
        metrics::counter!("lendcore_sms_failures_total", "purpose" => "sign_in").increment(1);
        // Never received, so it counts against no limit: the borrower may simply try again.
        let mut uow = engine.store.begin().await?;
        uow.delete_challenge(&id).await?;
        uow.commit().await?;
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
    let (mut uow, challenge) = use_code(engine, challenge_id, code, client).await?;
    let borrower_id = uow
        .find_borrowers_by(BorrowerIndex::Mobile, &challenge.mobile_index)
        .await?
        .into_iter()
        .find(|b| b.kind == BorrowerKind::Individual)
        .map(|b| b.id);
    let (session, issued) = super::open_borrower_session(
        uow.as_mut(),
        &challenge.mobile_index,
        borrower_id.clone(),
        None,
        now,
    )
    .await?;
    let second_factor = issued.second_factor_required;
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

/// Checks `code` against its challenge and uses the challenge up, in the unit of work it
/// returns for the caller to finish and commit. A wrong code is counted, and committed, before
/// it is refused; five use the challenge up; wrong codes per client are limited too.
pub(crate) async fn use_code(
    engine: &Engine,
    challenge_id: &str,
    code: &str,
    client: &str,
) -> Result<(Box<dyn lendcore_store::UnitOfWork>, StoredChallenge), EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let wrong = uow
        .auth_failure_times(WRONG_CODE, client, WRONG_PER_CLIENT.since(now))
        .await?;
    check_limit(WRONG_PER_CLIENT, &wrong, now)?;
    let refused = |reason| EngineError::Refused { reason };
    if challenge_id.len() > 64 {
        return Err(refused(Reason::CodeExpired));
    }
    // The attempt is counted before the code is compared, in one statement: guesses sent at
    // once each use an attempt, and none is compared once five were counted.
    let Some((expected, attempts)) = uow
        .count_challenge_attempt(challenge_id, MAX_ATTEMPTS, now)
        .await?
    else {
        let status = uow.find_challenge(challenge_id).await?.map(|c| c.status);
        return Err(match status {
            Some(ChallengeStatus::Exhausted) => refused(Reason::TooManyAttempts),
            Some(ChallengeStatus::Open | ChallengeStatus::Used) | None => {
                refused(Reason::CodeExpired)
            }
        });
    };
    let given = code_hash(engine, challenge_id, code.trim())?;
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        let exhausted = attempts >= MAX_ATTEMPTS;
        if exhausted {
            uow.close_challenge(challenge_id, ChallengeStatus::Exhausted)
                .await?;
        }
        uow.record_auth_failure(WRONG_CODE, client, now).await?;
        uow.commit().await?;
        return Err(refused(if exhausted {
            Reason::TooManyAttempts
        } else {
            Reason::CodeIncorrect
        }));
    }
    if !uow
        .close_challenge(challenge_id, ChallengeStatus::Used)
        .await?
    {
        return Err(refused(Reason::CodeExpired));
    }
    let challenge = uow
        .find_challenge(challenge_id)
        .await?
        .ok_or_else(|| EngineError::Internal("a used challenge vanished".to_owned()))?;
    Ok((uow, challenge))
}
