//! Identity verification of an application, by one of several methods: a code sent to the
//! mobile number signed in with (checked here), a bank card check or a face check (through the
//! configured identity provider). A method that is down or fails leaves the others offered;
//! every check, passed or not, is recorded on the application with its reason.

use lendcore_connectors::identity::{Method, Subject, Verdict};
use lendcore_domain::application::{Application, CheckOutcome, IdentityCheck};
use lendcore_domain::reasons::{Language, Reason};
use serde::Serialize;

use super::{ApplicationView, announce, load, open_form, state_error, view};
use crate::access::Principal;
use crate::access::otp::{self, CodeSent};
use crate::{Engine, EngineError};

/// Identity checks one application may try, whatever the methods (unavailable ones aside:
/// they checked nothing).
const MAX_TRIES: usize = 10;
/// Checks recorded on one application at most, unavailable ones included, so a borrower
/// retrying a method that is down cannot grow the record without end.
const MAX_RECORDED: usize = 40;

/// How a verification attempt went, and what the borrower can do next.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationOutcome {
    pub outcome: CheckOutcome,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reason: Option<Reason>,
    /// The methods the borrower may try now.
    pub other_methods: Vec<String>,
    pub application: ApplicationView,
}

fn methods(engine: &Engine) -> Vec<Method> {
    let mut all = Vec::new();
    if engine.sms.is_some() {
        all.push(Method::SmsOtp);
    }
    if let Some(provider) = &engine.identity {
        all.extend(provider.methods());
    }
    all
}

fn parse_method(raw: &str) -> Result<Method, EngineError> {
    [Method::SmsOtp, Method::BankCard, Method::Face]
        .into_iter()
        .find(|m| m.as_str() == raw)
        .ok_or_else(|| {
            EngineError::Invalid(lendcore_domain::validation::Violations::single(
                "method",
                "validation.unknown_method",
                "method is sms_otp, bank_card or face",
            ))
        })
}

async fn verifying(engine: &Engine, principal: &Principal, id: &str) -> Result<(), EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let (app, _) = load(uow.as_mut(), principal, id).await?;
    still_verifying(&app)
}

fn still_verifying(app: &Application) -> Result<(), EngineError> {
    match app.status.name() {
        "verifying" => Ok(()),
        other => Err(EngineError::conflict(
            "conflict.application_state",
            format!("the application is {other}; only one waiting for verification is verified"),
        )),
    }
}

/// Sends a code for the `sms_otp` method to the number the application was made with.
pub async fn send_code(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    client: &str,
    language: Language,
) -> Result<CodeSent, EngineError> {
    verifying(engine, principal, id).await?;
    let form = {
        let mut uow = engine.store.begin_read().await?;
        let (app, sealed) = load(uow.as_mut(), principal, id).await?;
        open_form(engine, &sealed, &app.id)?
    };
    let mobile = form.mobile.unwrap_or_default();
    otp::send_code(engine, &mobile, client, language).await
}

/// Verifies with `method`. `sms_otp` takes `{"challenge_id", "code"}` as evidence; the
/// provider's methods take what the provider needs (e.g. a liveness token).
pub async fn verify(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    method: &str,
    evidence: &serde_json::Value,
    client: &str,
) -> Result<VerificationOutcome, EngineError> {
    let method = parse_method(method)?;
    verifying(engine, principal, id).await?;
    let offered = methods(engine);
    let verdict = if !offered.contains(&method) {
        Verdict::Unavailable {
            detail: format!("{} is not offered here", method.as_str()),
        }
    } else if method == Method::SmsOtp {
        let challenge_id = evidence["challenge_id"].as_str().unwrap_or_default();
        let code = evidence["code"].as_str().unwrap_or_default();
        let (mut uow, challenge) = otp::use_code(engine, challenge_id, code, client).await?;
        let (app, _) = load(uow.as_mut(), principal, id).await?;
        if challenge.mobile_index != app.owner {
            return Err(EngineError::Refused {
                reason: Reason::CodeExpired,
            });
        }
        // The code is used up in this same unit of work, committed with the outcome below.
        return record(
            engine,
            uow,
            principal,
            id,
            method,
            Verdict::Passed,
            &offered,
        )
        .await;
    } else {
        let subject = {
            let mut uow = engine.store.begin_read().await?;
            let (app, sealed) = load(uow.as_mut(), principal, id).await?;
            let form = open_form(engine, &sealed, &app.id)?;
            Subject {
                reference: app.id.clone(),
                name: form.name.unwrap_or_default(),
                resident_id: form.resident_id.unwrap_or_default(),
                mobile: form.mobile.unwrap_or_default(),
                bank_account: form.bank_account,
            }
        };
        match &engine.identity {
            Some(provider) => {
                start_check(engine, principal, id, method).await?;
                provider.check(method, &subject, evidence).await
            }
            None => Verdict::Unavailable {
                detail: "no identity provider is configured".to_owned(),
            },
        }
    };
    // The provider has answered: its answer is recorded even if other checks of the same
    // application are being recorded at the same moment.
    let mut tries = 0;
    loop {
        let uow = engine.store.begin().await?;
        match record(
            engine,
            uow,
            principal,
            id,
            method,
            verdict.clone(),
            &offered,
        )
        .await
        {
            Err(err) if is_concurrent_update(&err) && tries < CONCURRENT_RETRIES => tries += 1,
            Err(err) => {
                // The provider answered (and may have charged): the answer must not vanish
                // with the request. Its `started` entry stays, counted, for the record.
                let answer = match &verdict {
                    Verdict::Passed => "passed",
                    Verdict::Failed { .. } => "failed",
                    Verdict::Unavailable { .. } => "unavailable",
                    Verdict::Inconclusive { .. } => "inconclusive",
                };
                tracing::error!(application = %id, method = method.as_str(), answer,
                    error = %err, "a provider's answer could not be recorded");
                return Err(err);
            }
            Ok(done) => return Ok(done),
        }
    }
}

/// How often a check's write that lost a race with another change of the application (a save,
/// a decision) is tried again, on what was written meanwhile.
const CONCURRENT_RETRIES: usize = 3;

fn is_concurrent_update(err: &EngineError) -> bool {
    matches!(
        err,
        EngineError::Conflict {
            code: "conflict.concurrent_update",
            ..
        }
    )
}

/// Refuses a check beyond the application's allowance. Each provider check costs the lender;
/// a borrower who has tried this often talks to a person instead.
fn within_allowance(app: &Application) -> Result<(), EngineError> {
    let tries = app
        .checks
        .iter()
        .filter(|c| c.outcome.counts_as_a_try())
        .count();
    if tries >= MAX_TRIES || app.checks.len() >= MAX_RECORDED {
        return Err(EngineError::Refused {
            reason: Reason::TooManyAttempts,
        });
    }
    Ok(())
}

/// Records a provider check as started before the provider is called, so checks sent in
/// parallel cannot pass the allowance together.
async fn start_check(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    method: Method,
) -> Result<(), EngineError> {
    let mut tries = 0;
    loop {
        match try_start_check(engine, principal, id, method).await {
            Err(err) if is_concurrent_update(&err) && tries < CONCURRENT_RETRIES => tries += 1,
            done => return done,
        }
    }
}

async fn try_start_check(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    method: Method,
) -> Result<(), EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    // Checks of one application are written one after another: each sees the last.
    uow.serialise_on(&format!("application-checks:{id}"))
        .await?;
    let (mut app, _) = load(uow.as_mut(), principal, id).await?;
    // Checked again under the lock: once a check has passed, nothing more goes to the
    // provider.
    still_verifying(&app)?;
    within_allowance(&app)?;
    let read = app.revision;
    app.checks.push(IdentityCheck {
        method: method.as_str().to_owned(),
        outcome: CheckOutcome::Started,
        reason: None,
        detail: None,
        at: now,
    });
    app.updated_at = now;
    app.revision += 1;
    uow.update_application(&app, None, read).await?;
    uow.commit().await?;
    Ok(())
}

async fn record(
    engine: &Engine,
    mut uow: Box<dyn lendcore_store::UnitOfWork>,
    principal: &Principal,
    id: &str,
    method: Method,
    verdict: Verdict,
    offered: &[Method],
) -> Result<VerificationOutcome, EngineError> {
    let now = engine.clock.now();
    uow.serialise_on(&format!("application-checks:{id}"))
        .await?;
    let (mut app, sealed) = load(uow.as_mut(), principal, id).await?;
    let read = app.revision;
    let (outcome, reason, detail) = match &verdict {
        Verdict::Passed => (CheckOutcome::Passed, None, None),
        Verdict::Failed { reason } => (
            CheckOutcome::Failed,
            Some(Reason::VerificationFailed),
            Some(reason.clone()),
        ),
        Verdict::Unavailable { detail } => (
            CheckOutcome::Unavailable,
            Some(Reason::MethodUnavailable),
            Some(detail.clone()),
        ),
        Verdict::Inconclusive { detail } => (
            CheckOutcome::Inconclusive,
            Some(Reason::MethodUnavailable),
            Some(detail.clone()),
        ),
    };
    let check = IdentityCheck {
        method: method.as_str().to_owned(),
        outcome,
        reason,
        detail: detail.map(|d| d.chars().take(200).collect()),
        at: now,
    };
    // A provider check was recorded as started: its answer takes that place.
    let answers_started = match app
        .checks
        .iter_mut()
        .find(|c| c.outcome == CheckOutcome::Started && c.method == check.method)
    {
        Some(started) => {
            *started = check;
            true
        }
        None => {
            within_allowance(&app)?;
            app.checks.push(check);
            false
        }
    };
    app.updated_at = now;
    // A provider's answer is kept even when another check ended the wait meanwhile; only a
    // wait still open moves on (a code checked now must find it open).
    let passed =
        matches!(verdict, Verdict::Passed) && (!answers_started || still_verifying(&app).is_ok());
    if passed {
        app.verified(method.as_str(), &principal.actor(), now)
            .map_err(state_error)?;
    }
    app.revision += 1;
    uow.update_application(&app, None, read).await?;
    if passed {
        announce(uow.as_mut(), &app, now).await?;
    } else {
        crate::audit::record(
            uow.as_mut(),
            &principal.actor(),
            "application.identity_checked",
            ("application", &app.id),
            serde_json::json!({ "method": method.as_str(), "outcome": outcome.as_str(), "reason": reason }),
            now,
        )
        .await?;
    }
    let form = open_form(engine, &sealed, &app.id)?;
    uow.commit().await?;
    if passed {
        // Decided now, so the applicant sees the answer; if this fails, the job queued with
        // the assessment decides it shortly.
        match crate::decisions::decide_application(engine, &app.id).await {
            Ok(decided) => app = decided,
            Err(e) => {
                tracing::warn!(application = %app.id, error = %e, "the credit decision will be retried by its job");
            }
        }
    }
    let other_methods = if matches!(verdict, Verdict::Passed) {
        Vec::new()
    } else {
        offered
            .iter()
            .filter(|m| **m != method)
            .map(|m| m.as_str().to_owned())
            .collect()
    };
    Ok(VerificationOutcome {
        outcome,
        reason,
        other_methods,
        application: view(principal, app, &form),
    })
}
