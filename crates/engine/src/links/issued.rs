//! Links as issued to borrowers: a resume link opens the application on any device without the
//! SMS code (once, if single-use); before it expires a reminder goes out; an expired, used or
//! altered link says so with its reason, and the borrower, signed in again, renews it in one
//! step — never a dead end.

use async_trait::async_trait;
use lendcore_connectors::sms::{Sms, SmsError};
use lendcore_domain::Timestamp;
use lendcore_domain::access::RateLimit;
use lendcore_domain::reasons::{Language, Reason};
use lendcore_domain::topic::Topic;
use lendcore_store::{Job, NewJob, OutboxEvent, StoredLink, UnitOfWork};
use serde::Serialize;

use super::{LinkError, Purpose};
use crate::access::{Principal, SessionIssued};
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{Engine, EngineError, new_id};

/// How long a resume link lives, and when before its end the reminder goes.
pub const RESUME_LIFETIME: chrono::Duration = chrono::Duration::hours(72);
const REMIND_BEFORE: chrono::Duration = chrono::Duration::hours(24);

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkIssued {
    /// Put it in the app's URL; the app opens it with `POST /v1/links/open`.
    pub token: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub purpose: Purpose,
    pub subject: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub single_use: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkOpened {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub purpose: Purpose,
    /// What it opens, e.g. the application's id.
    pub subject: String,
    /// A session for the link's owner (a second factor, if they turned one on, is still asked).
    pub session: SessionIssued,
}

fn signer(engine: &Engine) -> Result<super::LinkSigner, EngineError> {
    Ok(engine.vault()?.link_signer())
}

fn refused(reason: Reason) -> EngineError {
    EngineError::Refused { reason }
}

fn link_error(err: LinkError) -> EngineError {
    refused(err.reason())
}

async fn issue(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    purpose: Purpose,
    subject: &str,
    owner: &str,
    borrower_id: Option<String>,
    now: Timestamp,
) -> Result<(LinkIssued, String), EngineError> {
    let expires_at = now + RESUME_LIFETIME;
    let token = signer(engine)?.sign(purpose, subject, expires_at);
    let nonce = signer(engine)?
        .open(&token, purpose, now)
        .map_err(|_| EngineError::Internal("a fresh link does not open".to_owned()))?
        .nonce;
    uow.insert_link(&StoredLink {
        nonce: nonce.clone(),
        purpose: serde_json::to_value(purpose)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        subject: subject.to_owned(),
        owner: owner.to_owned(),
        borrower_id,
        single_use: true,
        expires_at,
        used_at: None,
        renewed_by: None,
        created_at: now,
    })
    .await?;
    crate::audit::record(
        uow,
        &crate::acting::current(),
        "link.issued",
        ("link", &nonce),
        serde_json::json!({ "purpose": purpose, "subject": subject, "expires_at": expires_at }),
        now,
    )
    .await?;
    Ok((
        LinkIssued {
            token,
            purpose,
            subject: subject.to_owned(),
            expires_at,
            single_use: true,
        },
        nonce,
    ))
}

/// Reminds the link's owner a day before it expires (unless it was used or renewed by then).
async fn schedule_reminder(
    uow: &mut dyn UnitOfWork,
    issued: &LinkIssued,
    nonce: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    uow.enqueue_job_once(
        &NewJob {
            id: format!("link-reminder:{nonce}"),
            kind: kinds::LINK_REMINDER.to_owned(),
            payload: serde_json::json!({ "nonce": nonce }),
            run_at: issued.expires_at - REMIND_BEFORE,
            max_attempts: lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS,
        },
        now,
    )
    .await?;
    Ok(())
}

/// The borrower's application, if a link for `purpose` fits its state now: a resume link an
/// open application, a contract link an approved one.
async fn application_for(
    uow: &mut dyn UnitOfWork,
    principal: &Principal,
    purpose: Purpose,
    id: &str,
) -> Result<lendcore_domain::application::Application, EngineError> {
    let (app, _) = crate::applications::load(uow, principal, id).await?;
    let fits = match purpose {
        Purpose::SignContract => matches!(
            app.status,
            lendcore_domain::application::ApplicationStatus::Approved
        ),
        Purpose::ResumeApplication => !app.status.is_final(),
        Purpose::ViewLoan => false,
    };
    if !fits {
        return Err(EngineError::conflict(
            "conflict.application_state",
            format!(
                "the application is {}; no such link for it now",
                app.status.name()
            ),
        ));
    }
    Ok(app)
}

/// Issues a link for `purpose` on `subject`, to the signed-in applicant (not from a session a
/// link opened: links do not beget links):
/// - `resume_application`: their own open application, for another device;
/// - `sign_contract`: their approved application, to read and accept the offer.
///
/// A `view_loan` link is only ever texted to the loan's borrower ([`send_view_link`]).
pub async fn issue_link(
    engine: &Engine,
    principal: &Principal,
    purpose: Purpose,
    subject: &str,
) -> Result<LinkIssued, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let (owner, borrower_id) = match (purpose, principal) {
        (
            Purpose::ResumeApplication | Purpose::SignContract,
            Principal::Borrower {
                mobile_index,
                link: None,
                ..
            },
        ) => {
            let app = application_for(uow.as_mut(), principal, purpose, subject).await?;
            (mobile_index.clone(), app.borrower_id.clone())
        }
        (Purpose::ViewLoan, _) => {
            return Err(EngineError::forbidden(
                "auth.forbidden",
                "a loan's link goes to its borrower from lendcore, never through whoever asks: \
                 send it with POST /v1/loans/{id}/view-link",
            ));
        }
        (
            Purpose::ResumeApplication | Purpose::SignContract,
            Principal::Borrower { link: Some(_), .. },
        ) => {
            return Err(EngineError::forbidden(
                "auth.link_scope",
                "a session opened from a link issues no links: sign in with a code",
            ));
        }
        (
            Purpose::ResumeApplication | Purpose::SignContract,
            Principal::ApiKey { .. } | Principal::Operator { .. },
        ) => {
            return Err(EngineError::forbidden(
                "auth.forbidden",
                "application links are the applicant's to ask for",
            ));
        }
    };
    let (issued, nonce) = issue(
        engine,
        uow.as_mut(),
        purpose,
        subject,
        &owner,
        borrower_id,
        now,
    )
    .await?;
    schedule_reminder(uow.as_mut(), &issued, &nonce, now).await?;
    uow.commit().await?;
    Ok(issued)
}

/// Opens a link: checks its signature, its time and its record, uses it up if it is
/// single-use, and signs its owner in.
pub async fn open_link(engine: &Engine, token: &str) -> Result<LinkOpened, EngineError> {
    let now = engine.clock.now();
    let signer = signer(engine)?;
    let purpose = signer
        .purpose_of(token)
        .ok_or_else(|| refused(Reason::LinkInvalid))?;
    let link = signer.open(token, purpose, now).map_err(link_error)?;
    let mut uow = engine.store.begin().await?;
    let Some(stored) = uow.find_link(&link.nonce).await? else {
        return Err(refused(Reason::LinkInvalid));
    };
    if stored.renewed_by.is_some() {
        return Err(refused(Reason::LinkUsed));
    }
    if stored.single_use && !uow.use_link(&stored.nonce, now).await? {
        return Err(refused(Reason::LinkUsed));
    }
    let scope = super::LinkScope {
        purpose,
        subject: stored.subject.clone(),
    };
    let (session, issued) = crate::access::open_borrower_session(
        uow.as_mut(),
        &stored.owner,
        stored.borrower_id.clone(),
        Some(&scope),
        now,
    )
    .await?;
    crate::audit::record(
        uow.as_mut(),
        &format!("session:{}", session.id),
        "link.opened",
        ("link", &stored.nonce),
        serde_json::json!({ "purpose": purpose, "subject": stored.subject }),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(LinkOpened {
        purpose,
        subject: stored.subject,
        session: issued,
    })
}

/// Renews an expired or used link for its owner, signed in again: the same purpose and
/// subject, a new token, the old one retired.
pub async fn renew(
    engine: &Engine,
    principal: &Principal,
    token: &str,
) -> Result<LinkIssued, EngineError> {
    let Principal::Borrower {
        mobile_index,
        link: None,
        ..
    } = principal
    else {
        return Err(EngineError::forbidden(
            "auth.forbidden",
            "a borrower renews their own link, signed in again with a code",
        ));
    };
    let now = engine.clock.now();
    let signer = signer(engine)?;
    let purpose = signer
        .purpose_of(token)
        .ok_or_else(|| refused(Reason::LinkInvalid))?;
    // Opened at the start of time: genuine is all that matters here, not current.
    let link = signer
        .open(token, purpose, Timestamp::MIN_UTC)
        .map_err(link_error)?;
    let mut uow = engine.store.begin().await?;
    let stored = match uow.find_link(&link.nonce).await? {
        Some(stored) if stored.owner == *mobile_index => stored,
        // Someone else's link (or none): nothing to say about it.
        Some(_) | None => return Err(refused(Reason::LinkInvalid)),
    };
    if stored.renewed_by.is_some() {
        return Err(refused(Reason::LinkUsed));
    }
    if stored.used_at.is_none() && stored.expires_at > now {
        return Err(EngineError::conflict(
            "conflict.link_still_valid",
            "this link still works: open it",
        ));
    }
    // What the link opens must still be there to open.
    match purpose {
        Purpose::ResumeApplication | Purpose::SignContract => {
            application_for(uow.as_mut(), principal, purpose, &stored.subject).await?;
        }
        Purpose::ViewLoan => {
            let there = match crate::read_for_id(engine.store.as_ref(), &stored.subject).await? {
                Some(mut read) => read.find_drawdown(&stored.subject).await?.is_some(),
                None => false,
            };
            if !there {
                return Err(refused(Reason::LinkInvalid));
            }
        }
    }
    let (issued, nonce) = issue(
        engine,
        uow.as_mut(),
        purpose,
        &stored.subject,
        &stored.owner,
        stored.borrower_id.clone(),
        now,
    )
    .await?;
    if !uow.renew_link(&stored.nonce, &nonce).await? {
        return Err(refused(Reason::LinkUsed));
    }
    schedule_reminder(uow.as_mut(), &issued, &nonce, now).await?;
    uow.commit().await?;
    Ok(issued)
}

/// View links texted for one loan: enough to resend one that went astray, too few to flood a
/// borrower's phone.
const VIEW_LINKS_PER_LOAN: RateLimit = RateLimit::new(3, chrono::Duration::hours(1));

/// What the lender is told when lendcore has texted a loan's borrower a link to it: where it
/// went, masked, and until when it opens — never the link itself.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViewLinkSent {
    pub loan_id: String,
    /// The borrower's registered number, masked.
    pub sent_to: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Texts a loan's borrower a `view_loan` link, at the number registered for them. The token
/// goes to that number only: handed to the lender's systems it would be a credential for the
/// borrower's account.
pub async fn send_view_link(
    engine: &Engine,
    principal: &Principal,
    loan_id: &str,
) -> Result<ViewLinkSent, EngineError> {
    match principal {
        Principal::ApiKey { .. } | Principal::Operator { .. } => {}
        Principal::Borrower { .. } => {
            return Err(EngineError::forbidden(
                "auth.forbidden",
                "the lender sends a loan's link to its borrower",
            ));
        }
    }
    let Some(base) = engine.notifications.link_base_url.clone() else {
        return Err(EngineError::NotConfigured(
            "no address for links is configured ([notifications] link_base_url)".to_owned(),
        ));
    };
    let Some(sms) = engine.sms.clone() else {
        return Err(EngineError::NotConfigured(
            "no SMS gateway is configured ([sms]): links cannot be sent".to_owned(),
        ));
    };
    let vault = engine.vault()?;
    let now = engine.clock.now();
    let no_loan = || EngineError::not_found("not_found.loan", "no loan with that id");
    let mut uow = crate::begin_for_id(engine.store.as_ref(), loan_id)
        .await?
        .ok_or_else(no_loan)?;
    let loan = uow.find_drawdown(loan_id).await?.ok_or_else(no_loan)?;
    uow.serialise_on(&format!("view-link:{loan_id}")).await?;
    let sent = uow
        .links_issued_since(
            Purpose::ViewLoan.as_str(),
            loan_id,
            VIEW_LINKS_PER_LOAN.since(now),
        )
        .await?;
    crate::access::check_limit(VIEW_LINKS_PER_LOAN, &sent, now)?;
    let unreachable = || {
        EngineError::conflict(
            "conflict.borrower_unreachable",
            "the loan's borrower is not registered here with a mobile number",
        )
    };
    let borrower = uow
        .find_borrower(&loan.borrower_id)
        .await?
        .ok_or_else(unreachable)?;
    let mobile = vault
        .open(&borrower.personal, &borrower.id)?
        .mobile
        .ok_or_else(unreachable)?;
    let borrower_language = borrower.language;
    let owner = borrower
        .mobile_index
        .unwrap_or_else(|| vault.index("mobile", mobile.expose()));
    let (issued, nonce) = issue(
        engine,
        uow.as_mut(),
        Purpose::ViewLoan,
        loan_id,
        &owner,
        Some(loan.borrower_id.clone()),
        now,
    )
    .await?;
    uow.commit().await?;
    // Sent after the commit, like a sign-in code: a link that was sent is always on record.
    let url = format!("{base}{}", issued.token);
    let expires = issued.expires_at.format("%Y-%m-%d %H:%M UTC");
    let text = match borrower_language.unwrap_or(engine.notifications.language) {
        Language::En => {
            format!("View your loan: {url} (opens once, until {expires}). Do not share it.")
        }
        Language::ZhHans => {
            // Spaces around the address: a phone must not read the brackets as part of it.
            format!("查看您的借款： {url} （仅可打开一次，{expires}前有效），请勿转发。")
        }
    };
    let message = Sms {
        to: mobile.expose().to_owned(),
        text,
        reference: nonce.clone(),
    };
    if let Err(err) = sms.send(&message).await {
        // The gateway's answer may echo the text, and so the link: only its kind is logged.
        let kind = match &err {
            SmsError::Rejected(_) => "rejected",
            SmsError::Unavailable(_) => "unavailable",
        };
        tracing::warn!(link = %nonce, kind, "a loan's link could not be sent");
        metrics::counter!("lendcore_sms_failures_total", "purpose" => "view_loan").increment(1);
        // Refused, it never left: forgotten, so it counts against no limit. Otherwise it may
        // have arrived (a timeout, an answer that cannot be read): it still counts, but is
        // retired, so it neither opens nor is reminded of. The audit says which.
        let mut uow = engine.store.begin().await?;
        match err {
            SmsError::Rejected(_) => uow.delete_link(&nonce).await?,
            SmsError::Unavailable(_) => {
                uow.use_link(&nonce, now).await?;
            }
        }
        crate::audit::record(
            uow.as_mut(),
            &crate::acting::current(),
            "link.not_sent",
            ("link", &nonce),
            serde_json::json!({ "purpose": Purpose::ViewLoan, "subject": loan_id, "gateway": kind }),
            now,
        )
        .await?;
        uow.commit().await?;
        return Err(EngineError::Unavailable(format!(
            "the SMS gateway did not take the message ({kind}); try again later"
        )));
    }
    // Reminded of only once it was sent: a crash before the message leaves no reminder of a
    // link nobody received. The link is on its way whatever happens here, so a failure to
    // schedule is logged, not answered (an answer would invite sending it again).
    let reminder = async {
        let mut uow = engine.store.begin().await?;
        schedule_reminder(uow.as_mut(), &issued, &nonce, now).await?;
        uow.commit().await?;
        Ok::<_, EngineError>(())
    };
    if let Err(err) = reminder.await {
        tracing::error!(link = %nonce, error = %err, "a loan's link was sent but its reminder could not be scheduled");
    }
    Ok(ViewLinkSent {
        loan_id: loan_id.to_owned(),
        sent_to: mobile.masked(),
        expires_at: issued.expires_at,
    })
}

/// Before a link expires, its owner is reminded — unless it was used or renewed.
pub struct ReminderHandler;

#[async_trait]
impl JobHandler for ReminderHandler {
    fn kind(&self) -> &'static str {
        kinds::LINK_REMINDER
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let nonce = job.payload["nonce"]
            .as_str()
            .ok_or_else(|| JobFailure::permanent("no nonce"))?;
        let now = ctx.clock.now();
        let mut uow = ctx.store.begin().await?;
        let Some(link) = uow.find_link(nonce).await? else {
            return Err(JobFailure::permanent(format!(
                "link {nonce} does not exist"
            )));
        };
        if link.used_at.is_none() && link.renewed_by.is_none() && link.expires_at > now {
            // An application's link reaches its applicant: registered by now, or not yet (then
            // at the number they signed in with).
            let application_id = match Purpose::parse(&link.purpose) {
                Some(Purpose::ResumeApplication | Purpose::SignContract) => {
                    Some(link.subject.clone())
                }
                Some(Purpose::ViewLoan) | None => None,
            };
            let borrower_id = match (&link.borrower_id, &application_id) {
                (Some(id), _) => Some(id.clone()),
                (None, Some(application)) => uow
                    .find_application(application)
                    .await?
                    .and_then(|(app, _)| app.borrower_id),
                (None, None) => None,
            };
            crate::audit::announce(
                uow.as_mut(),
                OutboxEvent {
                    id: new_id(),
                    topic: Topic::LinkExpiring.as_str().to_owned(),
                    aggregate_type: "link".to_owned(),
                    aggregate_id: link.nonce.clone(),
                    payload: serde_json::json!({
                        "borrower_id": borrower_id,
                        "application_id": application_id,
                        "purpose": link.purpose,
                        "subject": link.subject,
                        "expires_at": link.expires_at,
                    }),
                    created_at: now,
                    published_at: None,
                },
                crate::audit::SYSTEM,
            )
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        }
        uow.complete_job(&ctx.lease, now).await?;
        uow.commit().await?;
        Ok(JobDone::CompletedWithEffects)
    }
}
