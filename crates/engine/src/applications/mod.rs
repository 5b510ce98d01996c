//! Credit applications (`domain/src/application`): a borrower signed in by SMS code starts a
//! draft, saves it at every step, submits it, verifies their identity, and an underwriter
//! (operator with the risk role) approves, declines or asks for more; the borrower accepts the
//! offer and the credit line is granted. Every wait has a deadline, a reminder before it and an
//! expiry with its reason (`timers.rs`); every step is announced (outbox, audit).

mod documents;
mod status;
mod timers;
mod verification;

use lendcore_domain::Timestamp;
use lendcore_domain::application::{Application, Decision, Form, Offer};
use lendcore_domain::borrower::{BorrowerInput, BorrowerKind, Mobile};
use lendcore_domain::credit_line::GrantInput;
use lendcore_domain::reasons::Language;
use lendcore_domain::topic::Topic;
use lendcore_store::{BorrowerIndex, OutboxEvent, StoreError, StoredBorrower, UnitOfWork};
use serde::Serialize;

pub use documents::{
    DocumentView, Download, MAX_BYTES as MAX_DOCUMENT_BYTES, download, list_documents, upload,
};
pub use status::{StatusExplanation, explain};
pub use timers::TimerHandler;
pub use verification::{VerificationOutcome, send_code, verify};

use crate::access::Principal;
use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::vault::Vault;
use crate::{Engine, EngineError, new_id};

/// An application as its owner or an operator sees it: the form with identifiers masked.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplicationView {
    #[serde(flatten)]
    pub application: Application,
    pub form: Form,
}

fn not_found() -> EngineError {
    EngineError::not_found("not_found.application", "no application with that id")
}

pub(crate) fn state_error(err: lendcore_domain::application::ApplicationError) -> EngineError {
    use lendcore_domain::application::ApplicationError;
    let code = err.code();
    match err {
        ApplicationError::Invalid(v) => EngineError::Invalid(v),
        ApplicationError::WrongState { .. } => EngineError::conflict(code, err.to_string()),
    }
}

/// The mobile number index a borrower principal signed in with; staff have none.
fn owner_of(principal: &Principal) -> Option<&str> {
    match principal {
        Principal::Borrower { mobile_index, .. } => Some(mobile_index),
        Principal::ApiKey { .. } | Principal::Operator { .. } => None,
    }
}

/// Loads an application the caller may see: a borrower their own (any other is "not found",
/// so ids cannot be probed); staff any, their route having checked their permission.
pub(crate) async fn load(
    uow: &mut dyn UnitOfWork,
    principal: &Principal,
    id: &str,
) -> Result<(Application, String), EngineError> {
    let (app, form) = uow.find_application(id).await?.ok_or_else(not_found)?;
    match owner_of(principal) {
        Some(owner) if owner != app.owner => Err(not_found()),
        Some(_) | None => Ok((app, form)),
    }
}

pub(crate) fn open_form(engine: &Engine, sealed: &str, id: &str) -> Result<Form, EngineError> {
    open_form_with(engine.vault()?, sealed, id)
}

fn open_form_with(vault: &Vault, sealed: &str, id: &str) -> Result<Form, EngineError> {
    let bytes = vault.open_bytes(sealed, &format!("application:{id}"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::Internal(format!("application form: {e}")))
}

/// The number an applicant signed in with, once their form gives that very number: an
/// applicant who is not registered as a borrower yet is reminded there. `None` before that.
/// An error means the sealed form cannot be opened (another key, altered): no retry helps.
pub(crate) fn applicant_mobile(
    vault: &Vault,
    app: &Application,
    sealed_form: &str,
) -> Result<Option<Mobile>, EngineError> {
    let form = open_form_with(vault, sealed_form, &app.id)?;
    Ok(form
        .mobile
        .as_deref()
        .and_then(|m| Mobile::parse(m).ok())
        .filter(|m| vault.index("mobile", m.expose()) == app.owner))
}

fn seal_form(engine: &Engine, form: &Form, id: &str) -> Result<String, EngineError> {
    let bytes = serde_json::to_vec(form).map_err(|e| EngineError::Internal(e.to_string()))?;
    engine
        .vault()?
        .seal_bytes(&bytes, &format!("application:{id}"))
}

/// Identifiers shown masked: enough to recognise, never to copy.
fn masked(form: &Form) -> Form {
    let keep = |v: &Option<String>, n: usize| {
        v.as_ref().map(|s| {
            let chars: Vec<char> = s.chars().collect();
            let shown: String = chars.iter().rev().take(n).rev().collect();
            format!("{}{shown}", "*".repeat(chars.len().saturating_sub(n)))
        })
    };
    Form {
        resident_id: keep(&form.resident_id, 4),
        mobile: keep(&form.mobile, 4),
        bank_account: keep(&form.bank_account, 4),
        email: keep(&form.email, 0).map(|_| "***".to_owned()),
        address: keep(&form.address, 0).map(|_| "***".to_owned()),
        ..form.clone()
    }
}

/// The application as `principal` may see it: a borrower without the exact cause of a risk
/// decision, staff with everything.
fn view(principal: &Principal, app: Application, form: &Form) -> ApplicationView {
    let application = match principal {
        Principal::Borrower { .. } => app.as_shown_to_borrower(),
        Principal::ApiKey { .. } | Principal::Operator { .. } => app,
    };
    ApplicationView {
        application,
        form: masked(form),
    }
}

/// Announces the application's current state (outbox and audit) and sets its timers.
pub(crate) async fn announce(
    uow: &mut dyn UnitOfWork,
    app: &Application,
    now: Timestamp,
) -> Result<(), EngineError> {
    let reasons = app.status.reasons();
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic: Topic::of_application(&app.status).as_str().to_owned(),
            aggregate_type: "application".to_owned(),
            aggregate_id: app.id.clone(),
            payload: serde_json::json!({
                "application_id": app.id,
                "borrower_id": app.borrower_id,
                "state": app.status.name(),
                "reasons": reasons,
                "reason": reasons.first(),
                "next_action": reasons.first().map(|r| r.entry().next_action),
                "deadline": app.deadline,
                "limit_minor": app.offer.as_ref().map(|o| o.limit_minor),
                "currency": app.offer.as_ref().map(|o| o.currency.as_str()),
            }),
            created_at: now,
            published_at: None,
        },
        &crate::acting::current(),
    )
    .await?;
    if app.status == lendcore_domain::application::ApplicationStatus::Assessing {
        crate::decisions::schedule_application_decision(uow, app, now).await?;
    }
    timers::schedule(uow, app, now).await
}

fn already_open(id: &str) -> EngineError {
    EngineError::conflict(
        "conflict.application_open",
        format!("application {id} is still open: resume it, or withdraw it first"),
    )
}

/// Starts a draft for the signed-in borrower.
pub async fn start(
    engine: &Engine,
    principal: &Principal,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<ApplicationView>, EngineError> {
    let Some(owner) = owner_of(principal) else {
        return Err(EngineError::forbidden(
            "auth.forbidden",
            "a borrower starts their own application",
        ));
    };
    let now = engine.clock.now();
    let app = Application::start(new_id(), owner.to_owned(), &principal.actor(), now);
    let form = Form::default();
    let sealed = seal_form(engine, &form, &app.id)?;
    let mut uow = engine.store.begin().await?;
    // The key first: a retried start answers with the draft it made, not with "one is open".
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    if let Some(open) = uow
        .list_applications(Some(owner), None, 50)
        .await?
        .into_iter()
        .find(|a| !a.status.is_final())
    {
        return Err(already_open(&open.id));
    }
    match uow.insert_application(&app, &sealed).await {
        Ok(()) => {}
        // Another start won the race past the check above (the one-open index refused us).
        Err(StoreError::Duplicate(_)) => {
            return Err(EngineError::conflict(
                "conflict.application_open",
                "another application was just started: resume it, or withdraw it first",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    announce(uow.as_mut(), &app, now).await?;
    let view = view(principal, app, &form);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

pub async fn get(
    engine: &Engine,
    principal: &Principal,
    id: &str,
) -> Result<ApplicationView, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let (app, sealed) = load(uow.as_mut(), principal, id).await?;
    let form = open_form(engine, &sealed, &app.id)?;
    Ok(view(principal, app, &form))
}

/// A borrower's own applications, or (staff) all in one state; newest first.
pub async fn list(
    engine: &Engine,
    principal: &Principal,
    state: Option<&str>,
    limit: u32,
) -> Result<Vec<Application>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let found = uow
        .list_applications(owner_of(principal), state, limit)
        .await?;
    Ok(match principal {
        Principal::Borrower { .. } => found
            .into_iter()
            .map(Application::as_shown_to_borrower)
            .collect(),
        Principal::ApiKey { .. } | Principal::Operator { .. } => found,
    })
}

/// Saves one step of the form. `revision` is the one the client read: a save from a stale
/// tab is refused with the current revision to reload, never silently merged.
pub async fn save(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    revision: i64,
    step: Form,
) -> Result<ApplicationView, EngineError> {
    step.check_step()?;
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let (mut app, sealed) = load(uow.as_mut(), principal, id).await?;
    if owner_of(principal).is_none() {
        return Err(EngineError::forbidden(
            "auth.forbidden",
            "only the applicant edits the form",
        ));
    }
    if app.revision != revision {
        return Err(EngineError::conflict(
            "conflict.concurrent_update",
            format!(
                "the application was saved since (revision {}); reload it and save again",
                app.revision
            ),
        ));
    }
    app.saved(now).map_err(state_error)?;
    let mut form = open_form(engine, &sealed, &app.id)?;
    // Once submitted, who applies is settled (and verified): answers to a request for
    // information may change everything but identity.
    if app.borrower_id.is_some() {
        let identity = [
            ("name", step.name.is_some()),
            ("resident_id", step.resident_id.is_some()),
            ("mobile", step.mobile.is_some()),
            ("bank_account", step.bank_account.is_some()),
        ];
        if let Some((field, _)) = identity.iter().find(|(_, sent)| *sent) {
            return Err(EngineError::Invalid(
                lendcore_domain::validation::Violations::single(
                    *field,
                    "validation.identity_fixed",
                    "identity details are fixed once an application is submitted; start a new one to change them",
                ),
            ));
        }
    }
    form.merge(step);
    form.check_step()?;
    app.revision += 1;
    let sealed = seal_form(engine, &form, &app.id)?;
    // The timers already set find the later deadline when they fire and set new ones then:
    // a save per keystroke adds no jobs.
    uow.update_application(&app, Some(&sealed), revision)
        .await?;
    uow.commit().await?;
    Ok(view(principal, app, &form))
}

/// Submits the draft (or the answers to a request for information). Safe to repeat: a
/// submission that already went through answers the application as it stands.
/// `language`, the one the applicant's app asked in, becomes the language a borrower registered
/// by this submission is written to.
pub async fn submit(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    language: Option<Language>,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<ApplicationView>, EngineError> {
    let vault = engine.vault()?;
    let now = engine.clock.now();
    let mut attempts = 0;
    loop {
        let mut uow = engine.store.begin().await?;
        if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
            return idempotency::replayed(uow, done).await;
        }
        let (mut app, sealed) = load(uow.as_mut(), principal, id).await?;
        let form = open_form(engine, &sealed, &app.id)?;
        let read = app.revision;
        let borrower_id = match &app.borrower_id {
            Some(existing) => existing.clone(),
            // Not a draft (withdrawn or expired before submission): the domain says why.
            None if app.status != lendcore_domain::application::ApplicationStatus::Draft => {
                String::new()
            }
            None => {
                form.check_complete()?;
                let mobile = form.mobile.as_deref().unwrap_or_default();
                if vault.index("mobile", mobile.trim()) != app.owner {
                    return Err(EngineError::Invalid(
                        lendcore_domain::validation::Violations::single(
                            "mobile",
                            "validation.mobile_not_verified",
                            "the mobile number must be the one you signed in with",
                        ),
                    ));
                }
                match borrower_for(engine, uow.as_mut(), &form, &app.owner, language, now).await {
                    // Registered by a concurrent submission a moment ago: look again.
                    Err(EngineError::Conflict {
                        code: "conflict.concurrent_update",
                        ..
                    }) if attempts < 3 => {
                        attempts += 1;
                        continue;
                    }
                    other => other?,
                }
            }
        };
        let policy = uow.policy_in_effect(now).await?.map(|(code, version)| {
            lendcore_domain::application::PolicyRef {
                code: code.as_str().to_owned(),
                version,
            }
        });
        let moved = app
            .submit(borrower_id, policy, &principal.actor(), now)
            .map_err(state_error)?;
        if moved {
            app.revision += 1;
            match uow.update_application(&app, None, read).await {
                Err(StoreError::Stale(_)) if attempts < 3 => {
                    attempts += 1;
                    continue;
                }
                other => other?,
            }
            announce(uow.as_mut(), &app, now).await?;
        }
        let view = view(principal, app, &form);
        idempotency::record(uow.as_mut(), request, &view, now).await?;
        uow.commit().await?;
        return Ok(Outcome::Fresh(view));
    }
}

/// The borrower the application is for: the one already registered with this identity
/// number and this mobile number, or a new one from the form.
async fn borrower_for(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    form: &Form,
    owner: &str,
    language: Option<Language>,
    now: Timestamp,
) -> Result<String, EngineError> {
    let vault = engine.vault()?;
    let today_in_china = (now + chrono::Duration::hours(8)).date_naive();
    let (kind, data) = BorrowerInput {
        kind: Some(BorrowerKind::Individual),
        name: form.name.clone().unwrap_or_default(),
        resident_id: form.resident_id.clone(),
        mobile: form.mobile.clone(),
        email: form.email.clone(),
        address: form.address.clone(),
        bank_account: form.bank_account.clone(),
        ..BorrowerInput::default()
    }
    .parse(today_in_china)?;
    let resident_index = data
        .resident_id
        .as_ref()
        .map(|v| vault.index("resident_id", v.expose()));
    if let Some(index) = &resident_index
        && let Some(existing) = uow
            .find_borrowers_by(BorrowerIndex::ResidentId, index)
            .await?
            .into_iter()
            .next()
    {
        if existing.mobile_index.as_deref() == Some(owner) {
            return Ok(existing.id);
        }
        // Someone registered this identity under another number: the applicant most likely
        // has an account already, which they reach by that number, not by another method.
        return Err(EngineError::Refused {
            reason: lendcore_domain::reasons::Reason::AlreadyRegistered,
        });
    }
    let id = new_id();
    let stored = StoredBorrower {
        id: id.clone(),
        kind,
        personal: vault.seal(&data, &id)?,
        resident_index,
        credit_code_index: None,
        mobile_index: Some(owner.to_owned()),
        language,
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    match uow.insert_borrower(&stored).await {
        Err(StoreError::Duplicate(_)) => {
            return Err(EngineError::conflict(
                "conflict.concurrent_update",
                "the borrower was registered by another request at the same moment; retry",
            ));
        }
        other => other?,
    }
    crate::audit::record(
        uow,
        &crate::acting::current(),
        "borrower.registered",
        ("borrower", &id),
        serde_json::json!({ "from": "application" }),
        now,
    )
    .await?;
    Ok(id)
}

/// A wait whose deadline passed ends now, even if its timer has not run yet (a runner down, a
/// backlog): nothing is decided or accepted after its time. Returns the refusal to give.
async fn expire_if_due(
    mut uow: Box<dyn UnitOfWork>,
    app: &mut Application,
    now: Timestamp,
) -> Result<Option<EngineError>, EngineError> {
    let (Some(deadline), Some(wait)) = (app.deadline, app.status.wait()) else {
        return Ok(None);
    };
    let read = app.revision;
    let state = app.status.name();
    if !app.expire(state, deadline, now) {
        return Ok(None);
    }
    app.revision += 1;
    uow.update_application(app, None, read).await?;
    announce(uow.as_mut(), app, now).await?;
    uow.commit().await?;
    Ok(Some(EngineError::Refused {
        reason: wait.expiry_reason,
    }))
}

/// What an underwriter asks for.
#[derive(Debug, Clone)]
pub struct DecisionInput {
    pub decision: Decision,
    pub note: Option<String>,
}

/// An underwriter (risk role) decides a referred application.
pub async fn decide(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    input: DecisionInput,
) -> Result<ApplicationView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let (mut app, sealed) = load(uow.as_mut(), principal, id).await?;
    if let Some(late) = expire_if_due(uow, &mut app, now).await? {
        return Err(late);
    }
    let uow = engine.store.begin().await?;
    let read = app.revision;
    app.decide(input.decision, &principal.actor(), input.note, now)
        .map_err(state_error)?;
    write_step(engine, principal, uow, app, read, &sealed, now).await
}

/// Writes a step the domain allowed: the application at its next revision (refused if another
/// request moved it since `read`), its announcement and timers, then commits.
async fn write_step(
    engine: &Engine,
    principal: &Principal,
    mut uow: Box<dyn UnitOfWork>,
    mut app: Application,
    read: i64,
    sealed: &str,
    now: Timestamp,
) -> Result<ApplicationView, EngineError> {
    app.revision += 1;
    uow.update_application(&app, None, read).await?;
    announce(uow.as_mut(), &app, now).await?;
    let form = open_form(engine, sealed, &app.id)?;
    uow.commit().await?;
    Ok(view(principal, app, &form))
}

/// The borrower accepts the offer: the credit line is granted in the same transaction.
pub async fn accept(
    engine: &Engine,
    principal: &Principal,
    id: &str,
) -> Result<ApplicationView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let (mut app, sealed) = load(uow.as_mut(), principal, id).await?;
    if owner_of(principal).is_none() {
        return Err(EngineError::forbidden(
            "auth.forbidden",
            "only the applicant accepts the offer",
        ));
    }
    if let Some(late) = expire_if_due(uow, &mut app, now).await? {
        return Err(late);
    }
    let read = app.revision;
    let (
        Some(Offer {
            limit_minor,
            currency,
            valid_days,
            rate_tier,
        }),
        Some(borrower_id),
    ) = (app.offer.clone(), app.borrower_id.clone())
    else {
        return Err(EngineError::conflict(
            "conflict.application_state",
            format!(
                "the application is {}; only an approved application is accepted",
                app.status.name()
            ),
        ));
    };
    // Checked before the line is made, so a refused acceptance grants nothing.
    app.clone()
        .accept(String::new(), &principal.actor(), now)
        .map_err(state_error)?;
    // The line is the borrower's: granted in the borrower's unit of work.
    let mut uow = engine.store.begin_for(&borrower_id).await?;
    let line = crate::credit_lines::grant_in(
        uow.as_mut(),
        GrantInput {
            borrower_id,
            currency,
            limit_minor,
            rate_tier,
            valid_from: None,
            valid_until: now + chrono::Duration::days(i64::from(valid_days)),
            actor: principal.actor(),
            note: Some(format!("application {}", app.id)),
        },
        now,
    )
    .await?;
    app.accept(line.line.id.clone(), &principal.actor(), now)
        .map_err(state_error)?;
    write_step(engine, principal, uow, app, read, &sealed, now).await
}

/// The borrower withdraws an application that has not ended.
pub async fn withdraw(
    engine: &Engine,
    principal: &Principal,
    id: &str,
) -> Result<ApplicationView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let (mut app, sealed) = load(uow.as_mut(), principal, id).await?;
    if owner_of(principal).is_none() {
        return Err(EngineError::forbidden(
            "auth.forbidden",
            "only the applicant withdraws",
        ));
    }
    let read = app.revision;
    app.withdraw(&principal.actor(), now).map_err(state_error)?;
    write_step(engine, principal, uow, app, read, &sealed, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_survives_the_idempotency_record() {
        let now = chrono::Utc::now();
        let mut app = Application::start("a".into(), "o".into(), "borrower:b", now);
        app.withdraw("borrower:b", now).unwrap();
        let borrower = Principal::Borrower {
            session_id: "s".into(),
            mobile_index: "o".into(),
            borrower_id: None,
            link: None,
        };
        let view = view(&borrower, app, &Form::default());
        let json = serde_json::to_string(&view).unwrap();
        let back: Result<ApplicationView, _> = serde_json::from_str(&json);
        assert!(back.is_ok(), "{json}: {back:?}");
    }
}
