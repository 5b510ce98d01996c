//! `GET /v1/applications/{id}/status`: where an application stands, why, and what the
//! borrower can do next, in their language — the answer to "what happened to my application?"

use lendcore_domain::application::{Application, ApplicationStatus};
use lendcore_domain::decision::Decider;
use lendcore_domain::reasons::{Language, NextAction, Reason};
use lendcore_store::UnitOfWork;
use serde::Serialize;

use super::load;
use crate::access::Principal;
use crate::decisions::SettledBy;
use crate::{Engine, EngineError};

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusExplanation {
    pub state: String,
    /// Where it stands, in a sentence.
    pub headline: String,
    /// Why, when something stopped or is asked: each reason's code and message.
    pub why: Vec<ReasonText>,
    /// What the borrower can do now, in a sentence.
    pub next_step: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub next_action: NextAction,
    /// Until when that can be done; after it the application expires.
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
    /// Which rule or score band of the credit policy decided, or that a person did after the
    /// policy referred it; absent before a decision and when none was automated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Decider>,
    /// The language the texts are in: `en` or `zh-Hans`.
    pub language: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReasonText {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: Reason,
    pub message: &'static str,
}

pub async fn explain(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    language: Language,
) -> Result<StatusExplanation, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let (app, _) = load(uow.as_mut(), principal, id).await?;
    let by = app
        .deadline
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let limit = app
        .offer
        .as_ref()
        .map(|o| format!("{}.{:02}", o.limit_minor / 100, o.limit_minor % 100))
        .unwrap_or_default();
    // Whoever asks (the borrower, or support reading what they see), the exact cause of a
    // risk decision is not shown.
    let reasons: Vec<Reason> = app
        .status
        .reasons()
        .into_iter()
        .map(Reason::for_borrower)
        .collect();
    let first_action = reasons.first().map(|r| r.entry().next_action);
    let decided_by = decided_by(engine, uow.as_mut(), &app, language).await?;
    use Language::{En, ZhHans};
    let (headline, next_step, next_action) = match (&app.status, language) {
        (ApplicationStatus::Draft, En) => (
            "Your application is saved as a draft.".to_owned(),
            format!("Finish it and submit it by {by}; everything you entered is kept."),
            NextAction::CompleteApplication,
        ),
        (ApplicationStatus::Draft, ZhHans) => (
            "您的申请已保存为草稿。".to_owned(),
            format!("请在{by}前填写完整并提交，已填写的内容都会保留。"),
            NextAction::CompleteApplication,
        ),
        (ApplicationStatus::Submitted | ApplicationStatus::Verifying, En) => (
            "We need to confirm it is you.".to_owned(),
            format!("Verify your identity by {by}: a code by SMS, your bank card or a face check."),
            NextAction::VerifyIdentity,
        ),
        (ApplicationStatus::Submitted | ApplicationStatus::Verifying, ZhHans) => (
            "我们需要确认是您本人。".to_owned(),
            format!("请在{by}前完成身份认证：短信验证码、银行卡或人脸识别均可。"),
            NextAction::VerifyIdentity,
        ),
        (ApplicationStatus::Assessing | ApplicationStatus::Referred, En) => (
            "We are reviewing your application.".to_owned(),
            format!("Nothing to do now: you will hear from us by {by}."),
            NextAction::Wait,
        ),
        (ApplicationStatus::Assessing | ApplicationStatus::Referred, ZhHans) => (
            "您的申请正在审核中。".to_owned(),
            format!("您无需操作，我们会在{by}前告知结果。"),
            NextAction::Wait,
        ),
        (ApplicationStatus::InfoRequested { .. }, En) => (
            "We need a little more from you.".to_owned(),
            format!("Add what is asked below and submit again by {by}."),
            first_action.unwrap_or(NextAction::UploadDocuments),
        ),
        (ApplicationStatus::InfoRequested { .. }, ZhHans) => (
            "我们需要您补充一些信息。".to_owned(),
            format!("请按下方说明补充，并在{by}前重新提交。"),
            first_action.unwrap_or(NextAction::UploadDocuments),
        ),
        (ApplicationStatus::Approved, En) => (
            format!("You are approved for a credit line of {limit} yuan."),
            format!("Accept the offer by {by} to open your line."),
            NextAction::AcceptOffer,
        ),
        (ApplicationStatus::Approved, ZhHans) => (
            format!("恭喜，您已获批{limit}元额度。"),
            format!("请在{by}前接受额度，即可开通使用。"),
            NextAction::AcceptOffer,
        ),
        (ApplicationStatus::Declined { .. }, En) => (
            "We cannot offer you credit at this time.".to_owned(),
            "See why below; you can apply again later.".to_owned(),
            first_action.unwrap_or(NextAction::Nothing),
        ),
        (ApplicationStatus::Declined { .. }, ZhHans) => (
            "很抱歉，暂时无法为您提供额度。".to_owned(),
            "原因见下方，您可稍后重新申请。".to_owned(),
            first_action.unwrap_or(NextAction::Nothing),
        ),
        (ApplicationStatus::Accepted, En) => (
            "Your credit line is open.".to_owned(),
            "You can draw on it now.".to_owned(),
            NextAction::Nothing,
        ),
        (ApplicationStatus::Accepted, ZhHans) => (
            "您的额度已开通。".to_owned(),
            "现在即可借款。".to_owned(),
            NextAction::Nothing,
        ),
        (ApplicationStatus::Withdrawn { .. }, En) => (
            "You withdrew this application.".to_owned(),
            "You can start a new one at any time.".to_owned(),
            NextAction::StartAgain,
        ),
        (ApplicationStatus::Withdrawn { .. }, ZhHans) => (
            "您已撤回本次申请。".to_owned(),
            "您可随时重新申请。".to_owned(),
            NextAction::StartAgain,
        ),
        (ApplicationStatus::Expired { .. }, En) => (
            "This application has expired.".to_owned(),
            "See why below; you can start a new application at any time.".to_owned(),
            NextAction::StartAgain,
        ),
        (ApplicationStatus::Expired { .. }, ZhHans) => (
            "本次申请已过期。".to_owned(),
            "原因见下方，您可随时重新申请。".to_owned(),
            NextAction::StartAgain,
        ),
    };
    Ok(StatusExplanation {
        state: app.status.name().to_owned(),
        headline,
        why: reasons
            .into_iter()
            .map(|code| ReasonText {
                code,
                message: code.entry().message(language),
            })
            .collect(),
        next_step,
        next_action,
        deadline: app.deadline,
        decided_by,
        language: language.tag(),
    })
}

/// What decided the application as it stands, from who entered the deciding state (the
/// approval, for an accepted offer): lendcore itself, applying the policy's decision; an
/// underwriter or the lender's back-end, after the policy referred it; or the borrower, by
/// sending what was asked, which decides nothing. Nothing either before a decision.
async fn decided_by(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    app: &Application,
    language: Language,
) -> Result<Option<Decider>, EngineError> {
    let (Some(borrower_id), Some(decision_id)) = (&app.borrower_id, &app.decision_id) else {
        return Ok(None);
    };
    let deciding_state = match &app.status {
        ApplicationStatus::Accepted => "approved",
        ApplicationStatus::Approved
        | ApplicationStatus::Declined { .. }
        | ApplicationStatus::InfoRequested { .. }
        | ApplicationStatus::Referred => app.status.name(),
        ApplicationStatus::Draft
        | ApplicationStatus::Submitted
        | ApplicationStatus::Verifying
        | ApplicationStatus::Assessing
        | ApplicationStatus::Withdrawn { .. }
        | ApplicationStatus::Expired { .. } => return Ok(None),
    };
    let Some(step) = app.history.iter().rev().find(|s| s.state == deciding_state) else {
        return Ok(None);
    };
    let settled_by = if step.actor == crate::audit::SYSTEM {
        SettledBy::Policy
    } else if step.actor.starts_with("borrower:") || step.actor.starts_with("session:") {
        return Ok(None);
    } else {
        SettledBy::Person
    };
    let Some(stored) = uow.find_decision(borrower_id, decision_id).await? else {
        return Ok(None);
    };
    let record = crate::decisions::from_stored(stored)?;
    crate::decisions::decider(engine, uow, &record, settled_by, language).await
}
