//! What borrowers are told, per event and language. Only events a borrower should hear about
//! have a template; an ending says its reason in the catalogue's words, so the message and the
//! API never disagree.

use lendcore_domain::money::{Currency, Money};
use lendcore_domain::reasons::{Language, Reason};
use lendcore_domain::topic::Topic;
use serde_json::Value;

/// A message ready to send: the subject is for email; SMS sends the text alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

/// An amount of the event as the borrower reads it. Events name their currency; those written
/// before they did were all in.
fn amount(minor: Option<i64>, payload: &Value, language: Language) -> String {
    let currency = payload["currency"]
        .as_str()
        .or(payload["detail"]["currency"].as_str())
        .and_then(Currency::parse)
        .unwrap_or(Currency::Cny);
    Money::new(minor.unwrap_or(0), currency).for_people(language)
}

fn reason_message(payload: &Value, fallback: Reason, language: Language) -> &'static str {
    payload["reason"]
        .as_str()
        .and_then(Reason::parse)
        .unwrap_or(fallback)
        .for_borrower()
        .entry()
        .message(language)
}

/// The message for `topic`, or `None` when borrowers are not told of it.
pub fn render(topic: Topic, payload: &Value, language: Language) -> Option<Rendered> {
    use Language::{En, ZhHans};
    let money = amount(
        payload["amount_minor"]
            .as_i64()
            .or(payload["detail"]["amount_minor"].as_i64()),
        payload,
        language,
    );
    let (subject, text) = match (topic, language) {
        (Topic::DrawdownConfirmed, En) => (
            "Your drawdown is confirmed".to_owned(),
            format!(
                "Your drawdown of {money} is confirmed and is being paid out. We will tell you when it arrives."
            ),
        ),
        (Topic::DrawdownConfirmed, ZhHans) => (
            "借款已确认".to_owned(),
            format!("您的借款{money}已确认，正在放款，到账后我们会通知您。"),
        ),
        (Topic::DrawdownPaidOut, En) => (
            "Your money has been paid out".to_owned(),
            format!("{money} has been paid to your account."),
        ),
        (Topic::DrawdownPaidOut, ZhHans) => (
            "借款已到账".to_owned(),
            format!("{money}已发放至您的账户。"),
        ),
        (Topic::DrawdownManualReview, En) => (
            "We are checking your payout".to_owned(),
            format!(
                "Your drawdown of {money} needs a check by our team. Nothing is lost; we will update you."
            ),
        ),
        (Topic::DrawdownManualReview, ZhHans) => (
            "放款核实中".to_owned(),
            format!("您的借款{money}需要人工核实，资金安全，我们会及时通知您。"),
        ),
        (Topic::DrawdownQueuedForMaintenance | Topic::DrawdownResumed, _) => {
            let message = Reason::SystemMaintenance.entry().message(language);
            let subject = match language {
                En => "Your drawdown is queued",
                ZhHans => "借款排队中",
            };
            if topic == Topic::DrawdownResumed {
                match language {
                    En => (
                        "Your drawdown continues".to_owned(),
                        format!("Maintenance is over: your drawdown of {money} continues."),
                    ),
                    ZhHans => (
                        "借款继续处理".to_owned(),
                        format!("维护已结束，您的借款{money}将继续处理。"),
                    ),
                }
            } else {
                (subject.to_owned(), message.to_owned())
            }
        }
        (Topic::DrawdownEnded, _) => {
            let why = reason_message(payload, Reason::SystemInternal, language);
            match language {
                En => (
                    "Your drawdown did not go through".to_owned(),
                    format!("Your drawdown of {money} did not go through. {why}"),
                ),
                ZhHans => (
                    "借款未成功".to_owned(),
                    format!("您的借款{money}未成功。{why}"),
                ),
            }
        }
        (Topic::LoanReminder, _) => {
            let due = payload["detail"]["due_date"].as_str().unwrap_or("");
            let kind = payload["detail"]["kind"].as_str().unwrap_or("due");
            match (kind, language) {
                ("overdue", En) => (
                    "Your repayment is overdue".to_owned(),
                    format!(
                        "{money} was due on {due} and is overdue. {}",
                        Reason::Overdue.entry().message_en
                    ),
                ),
                ("overdue", ZhHans) => (
                    "还款已逾期".to_owned(),
                    format!(
                        "您应于{due}归还的{money}已逾期。{}",
                        Reason::Overdue.entry().message_zh
                    ),
                ),
                (_, En) => (
                    "A repayment is coming up".to_owned(),
                    format!("{money} is due on {due}."),
                ),
                (_, ZhHans) => (
                    "还款提醒".to_owned(),
                    format!("您有{money}将于{due}到期，请按时还款。"),
                ),
            }
        }
        (Topic::LoanRepaid, En) => (
            "Repayment received".to_owned(),
            format!("We received your repayment of {money}. Thank you."),
        ),
        (Topic::LoanRepaid, ZhHans) => (
            "还款成功".to_owned(),
            format!("已收到您的还款{money}，感谢。"),
        ),
        (Topic::LoanPaidOff, _) => (
            match language {
                En => "Your loan is repaid".to_owned(),
                ZhHans => "借款已结清".to_owned(),
            },
            Reason::PaidOff.entry().message(language).to_owned(),
        ),
        (Topic::MaintenanceNotice, _) => {
            let starts = payload["starts_at"].as_str().unwrap_or("");
            let ends = payload["ends_at"].as_str().unwrap_or("");
            let message = payload["message"].as_str().unwrap_or("");
            match language {
                En => (
                    "Scheduled maintenance".to_owned(),
                    format!(
                        "Maintenance from {starts} to {ends}: {message} Your requests are kept and continue afterwards."
                    ),
                ),
                ZhHans => (
                    "系统维护通知".to_owned(),
                    format!(
                        "系统将于{starts}至{ends}维护：{message} 您的申请会保留，维护后继续处理。"
                    ),
                ),
            }
        }
        (Topic::ApplicationInfoRequested, _) => {
            let why = reason_message(payload, Reason::LargeAmount, language);
            match language {
                En => (
                    "We need more for your application".to_owned(),
                    format!("{why} Add it in the app and submit again."),
                ),
                ZhHans => (
                    "申请需补充材料".to_owned(),
                    format!("{why} 请在应用内补充后重新提交。"),
                ),
            }
        }
        (Topic::ApplicationApproved, _) => {
            let limit = amount(payload["limit_minor"].as_i64(), payload, language);
            match language {
                En => (
                    "You are approved".to_owned(),
                    format!(
                        "You are approved for a credit line of {limit}. Accept the offer in the app to open it."
                    ),
                ),
                ZhHans => (
                    "申请已获批".to_owned(),
                    format!("您已获批{limit}额度，请在应用内接受后开通。"),
                ),
            }
        }
        (Topic::ApplicationDeclined | Topic::ApplicationExpired, _) => {
            let why = reason_message(payload, Reason::UserAbandoned, language);
            match language {
                En => (
                    "About your application".to_owned(),
                    format!("Your application has ended. {why}"),
                ),
                ZhHans => ("申请结果通知".to_owned(), format!("您的申请已结束。{why}")),
            }
        }
        (Topic::LinkExpiring, _) => {
            let expires = payload["expires_at"].as_str().unwrap_or("");
            let (en, zh) = match payload["purpose"].as_str() {
                Some("sign_contract") => ("read and accept your offer", "查看并接受额度"),
                Some("view_loan") => ("view your loan", "查看借款"),
                _ => ("continue your application", "继续申请"),
            };
            match language {
                En => (
                    "Your link expires soon".to_owned(),
                    format!(
                        "The link to {en} expires at {expires}. Open it before then, or sign in to get a new one."
                    ),
                ),
                ZhHans => (
                    "链接即将过期".to_owned(),
                    format!(
                        "您用于{zh}的链接将于{expires}过期，请尽快打开；过期后登录即可一键获取新链接。"
                    ),
                ),
            }
        }
        // A wait on the underwriter is the lender's to chase, not the borrower's.
        (Topic::ApplicationReminder, _) if payload["state"] != "referred" => {
            let deadline = payload["deadline"].as_str().unwrap_or("");
            match language {
                En => (
                    "Your application is waiting for you".to_owned(),
                    format!(
                        "Your application needs your next step before {deadline}, or it will expire."
                    ),
                ),
                ZhHans => (
                    "申请待您处理".to_owned(),
                    format!("您的申请需在{deadline}前完成下一步，否则将过期。"),
                ),
            }
        }
        (Topic::CreditLineFrozen, _) => (
            subject_for_line(language),
            reason_message(payload, Reason::LineFrozen, language).to_owned(),
        ),
        (Topic::CreditLineClosed, _) => (
            subject_for_line(language),
            reason_message(payload, Reason::LineClosed, language).to_owned(),
        ),
        (Topic::CreditLineExpired, _) => (
            subject_for_line(language),
            Reason::LineExpired.entry().message(language).to_owned(),
        ),
        // Told to the lender (webhooks), not to the borrower: the lender's own workings, steps
        // the borrower took themselves, and a wait on the underwriter, which is the lender's to
        // chase.
        (
            Topic::ProductCreated
            | Topic::ProductVersionAdded
            | Topic::ProductVersionReplaced
            | Topic::ProductRetirementScheduled
            | Topic::ProductVersionEffective
            | Topic::BorrowerRegistered
            | Topic::BorrowerContactChanged
            | Topic::CreditLineGranted
            | Topic::CreditLineIncreased
            | Topic::CreditLineDecreased
            | Topic::CreditLineFreezeKept
            | Topic::CreditLineUnfrozen
            | Topic::DrawdownQuoted
            | Topic::LoanDelinquencyChanged
            | Topic::MaintenanceScheduled
            | Topic::MaintenanceCancelled
            | Topic::ApplicationDraft
            | Topic::ApplicationSubmitted
            | Topic::ApplicationVerifying
            | Topic::ApplicationAssessing
            | Topic::ApplicationReferred
            | Topic::ApplicationAccepted
            | Topic::ApplicationWithdrawn
            | Topic::ApplicationReminder,
            _,
        ) => return None,
    };
    Some(Rendered { subject, text })
}

fn subject_for_line(language: Language) -> String {
    match language {
        Language::En => "About your credit line".to_owned(),
        Language::ZhHans => "额度变动通知".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn endings_say_their_reason_in_the_borrowers_language() {
        let payload = json!({"amount_minor": 1_000_000, "reason": "channel.account_invalid"});
        let en = render(Topic::DrawdownEnded, &payload, Language::En).unwrap();
        assert!(en.text.contains("of CNY 10,000.00 did"), "{}", en.text);
        assert!(en.text.contains(Reason::AccountInvalid.entry().message_en));
        let zh = render(Topic::DrawdownEnded, &payload, Language::ZhHans).unwrap();
        assert!(zh.text.contains("10,000.00元"), "{}", zh.text);
        assert!(zh.text.contains(Reason::AccountInvalid.entry().message_zh));
        let dollars =
            json!({"amount_minor": 1_050, "currency": "USD", "reason": "channel.account_invalid"});
        let en = render(Topic::DrawdownEnded, &dollars, Language::En).unwrap();
        assert!(en.text.contains("of USD 10.50 did"), "{}", en.text);
    }

    #[test]
    fn reminders_name_the_amount_and_the_date() {
        let payload = json!({"detail": {"kind": "upcoming", "due_date": "2026-12-01", "amount_minor": 91_680}});
        let text = render(Topic::LoanReminder, &payload, Language::En)
            .unwrap()
            .text;
        assert_eq!(text, "CNY 916.80 is due on 2026-12-01.");
    }

    #[test]
    fn internal_events_are_not_sent_to_borrowers() {
        for topic in [
            Topic::ProductCreated,
            Topic::BorrowerRegistered,
            Topic::CreditLineGranted,
            Topic::DrawdownQuoted,
        ] {
            assert!(render(topic, &json!({}), Language::En).is_none(), "{topic}");
        }
    }
}

/// Every message, in both languages, for payloads of each shape, as it read when the messages
/// moved into templates (`messages.golden.json`): a change of wording shows here.
#[cfg(test)]
mod golden {
    use super::*;
    use serde_json::json;

    pub(super) fn payloads() -> [Value; 3] {
        [
            json!({"amount_minor": 1_000_000, "currency": "CNY", "reason": "channel.account_invalid", "limit_minor": 5_000_000,
                   "starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-01T02:00:00Z", "message": "Upgrade.",
                   "expires_at": "2026-12-03T00:00:00Z", "purpose": "sign_contract", "deadline": "2026-12-05T00:00:00Z", "state": "draft"}),
            json!({"detail": {"kind": "overdue", "due_date": "2026-12-01", "amount_minor": 91_680, "currency": "USD"}, "purpose": "view_loan", "state": "referred", "reason": "risk.velocity"}),
            json!({"detail": {"kind": "due_today", "due_date": "2026-12-01", "amount_minor": 91_680}}),
        ]
    }

    #[test]
    fn every_message_reads_as_written() {
        let expected: Vec<Value> =
            serde_json::from_str(include_str!("messages.golden.json")).unwrap();
        let mut rendered = Vec::new();
        for &topic in Topic::ALL {
            for language in [Language::En, Language::ZhHans] {
                for (i, p) in payloads().iter().enumerate() {
                    if let Some(r) = render(topic, p, language) {
                        rendered.push(json!([topic.as_str(), language, i, r.subject, r.text]));
                    }
                }
            }
        }
        assert_eq!(rendered.len(), expected.len());
        for (got, want) in rendered.iter().zip(&expected) {
            assert_eq!(got, want);
        }
    }
}
