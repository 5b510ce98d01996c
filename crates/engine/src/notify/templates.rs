//! What borrowers are told, per event and language. Only events a borrower should hear about
//! have a message; an ending says its reason in the catalogue's words, so the message and the
//! API never disagree. What a message says is worked out here from the event; its words are in
//! the templates (`templates/messages/`, one per language).

use askama::Template;
use lendcore_domain::money::{Currency, Money};
use lendcore_domain::reasons::{Language, Reason};
use lendcore_domain::topic::Topic;
use serde_json::Value;

/// A message ready to send: the subject and text are an email's; SMS sends the short text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    /// What fits a text message: a borrower's is the text itself.
    pub short: String,
}

/// What a message to a borrower says, in their language already where it quotes the catalogue
/// or an amount.
enum Message<'a> {
    DrawdownConfirmed {
        money: String,
    },
    DrawdownPaidOut {
        money: String,
    },
    DrawdownManualReview {
        money: String,
    },
    DrawdownHeld {
        money: String,
    },
    DrawdownReleased {
        money: String,
    },
    DrawdownQueued {
        why: &'static str,
    },
    DrawdownResumed {
        money: String,
    },
    DrawdownEnded {
        money: String,
        why: &'static str,
    },
    LoanOverdue {
        money: String,
        due: &'a str,
        why: &'static str,
    },
    LoanDue {
        money: String,
        due: &'a str,
    },
    LoanRepaid {
        money: String,
    },
    LoanPaidOff {
        why: &'static str,
    },
    MaintenanceNotice {
        starts: &'a str,
        ends: &'a str,
        message: &'a str,
    },
    InfoRequested {
        why: &'static str,
    },
    Approved {
        limit: String,
    },
    ApplicationEnded {
        why: &'static str,
    },
    LinkExpiring {
        to: LinkTo,
        expires: &'a str,
    },
    ApplicationReminder {
        deadline: &'a str,
    },
    LineChanged {
        why: &'static str,
    },
    /// A new limit; `why` when it was lowered for a reason.
    LimitChanged {
        limit: String,
        why: Option<&'static str>,
    },
    LineReopened,
    /// `kind` is the warning's name (`utilisation_high`, …).
    LineWarning {
        kind: &'a str,
    },
    /// A support case opened: when support will answer by.
    CaseOpened {
        respond_by: String,
    },
    /// Support's answer, in its words.
    CaseAnswered {
        text: &'a str,
    },
    CaseResolved {
        text: &'a str,
    },
    /// Trouble with the service touching the borrower's work, in the incident's words.
    Incident {
        text: String,
    },
    IncidentOver {
        text: String,
    },
    /// `percent` for a lower limit; none for a freeze.
    LineChangeScheduled {
        percent: Option<u64>,
        when: &'a str,
        why: &'static str,
    },
}

/// What an expiring link opens, as its reminder names it.
enum LinkTo {
    Offer,
    Loan,
    Application,
}

#[derive(Template)]
#[template(path = "messages/en.txt", block = "subject")]
struct EnglishSubject<'a> {
    m: &'a Message<'a>,
}

#[derive(Template)]
#[template(path = "messages/en.txt", block = "text")]
struct EnglishText<'a> {
    m: &'a Message<'a>,
}

#[derive(Template)]
#[template(path = "messages/zh-Hans.txt", block = "subject")]
struct ChineseSubject<'a> {
    m: &'a Message<'a>,
}

#[derive(Template)]
#[template(path = "messages/zh-Hans.txt", block = "text")]
struct ChineseText<'a> {
    m: &'a Message<'a>,
}

/// An amount of the event as the borrower reads it. Events name their currency; those written
/// before they did were all in yuan.
fn amount(minor: Option<i64>, payload: &Value, language: Language) -> String {
    let currency = payload["currency"]
        .as_str()
        .or(payload["detail"]["currency"].as_str())
        .and_then(Currency::parse)
        .unwrap_or(Currency::Cny);
    Money::new(minor.unwrap_or(0), currency).for_people(language)
}

/// The incident a borrower's notice carries; one that cannot be read is told as trouble with the
/// whole service, which is never wrong, rather than not at all.
fn incident(payload: &Value) -> lendcore_domain::incident::Incident {
    use lendcore_domain::incident::{Component, Impact, Incident, Note, Source};
    serde_json::from_value(payload["incident"].clone()).unwrap_or_else(|err| {
        tracing::error!(error = %err, "an incident notice's incident cannot be read");
        Incident {
            id: String::new(),
            component: Component::Service,
            channel: None,
            impact: Impact::Degraded,
            note: Note::default(),
            expected_by: None,
            source: Source::Operator {
                actor: String::new(),
            },
            started_at: chrono::DateTime::UNIX_EPOCH,
            ended_at: None,
            revision: 0,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    })
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
    let message = message(topic, payload, language)?;
    let m = &message;
    let rendered = match language {
        Language::En => (EnglishSubject { m }.render(), EnglishText { m }.render()),
        Language::ZhHans => (ChineseSubject { m }.render(), ChineseText { m }.render()),
    };
    match rendered {
        (Ok(subject), Ok(text)) => Some(Rendered {
            subject,
            short: short(&text),
            text,
        }),
        // The templates only write out strings: this would be a bug, not a lost message —
        // the delivery records it as refused for want of a message.
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(topic = %topic, error = %err, "a message template failed to render");
            None
        }
    }
}

/// Characters a text message carries before it is cut: a support answer may run to two
/// thousand, which the email carries whole.
const SMS_CHARS: usize = 300;

/// The text as an SMS carries it: whole, or cut with an ellipsis.
fn short(text: &str) -> String {
    if text.chars().count() <= SMS_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(SMS_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Whether borrowers are told of this event at all. Decided apart from rendering, so a message
/// that failed to render is still a delivery, recorded as failed, never none.
pub fn tells_borrower(topic: Topic, payload: &Value) -> bool {
    message(topic, payload, Language::En).is_some()
}

/// What the borrower is told of `topic`, or `None` when they are not told.
fn message<'a>(topic: Topic, payload: &'a Value, language: Language) -> Option<Message<'a>> {
    let money = || {
        amount(
            payload["amount_minor"]
                .as_i64()
                .or(payload["detail"]["amount_minor"].as_i64()),
            payload,
            language,
        )
    };
    let text = |key: &str| payload[key].as_str().unwrap_or("");
    Some(match topic {
        Topic::DrawdownConfirmed => Message::DrawdownConfirmed { money: money() },
        Topic::DrawdownPaidOut => Message::DrawdownPaidOut { money: money() },
        Topic::DrawdownManualReview => Message::DrawdownManualReview { money: money() },
        Topic::DrawdownHeld => Message::DrawdownHeld { money: money() },
        Topic::DrawdownReleased => Message::DrawdownReleased { money: money() },
        Topic::DrawdownQueuedForMaintenance => Message::DrawdownQueued {
            why: Reason::SystemMaintenance.entry().message(language),
        },
        Topic::DrawdownResumed => Message::DrawdownResumed { money: money() },
        Topic::DrawdownEnded => Message::DrawdownEnded {
            money: money(),
            why: reason_message(payload, Reason::SystemInternal, language),
        },
        Topic::LoanReminder => {
            let due = payload["detail"]["due_date"].as_str().unwrap_or("");
            match payload["detail"]["kind"].as_str() {
                Some("overdue") => Message::LoanOverdue {
                    money: money(),
                    due,
                    why: Reason::Overdue.entry().message(language),
                },
                _ => Message::LoanDue {
                    money: money(),
                    due,
                },
            }
        }
        Topic::LoanRepaid => Message::LoanRepaid { money: money() },
        Topic::LoanPaidOff => Message::LoanPaidOff {
            why: Reason::PaidOff.entry().message(language),
        },
        Topic::MaintenanceNotice => Message::MaintenanceNotice {
            starts: text("starts_at"),
            ends: text("ends_at"),
            message: text("message"),
        },
        Topic::ApplicationInfoRequested => Message::InfoRequested {
            why: reason_message(payload, Reason::LargeAmount, language),
        },
        Topic::ApplicationApproved => Message::Approved {
            limit: amount(payload["limit_minor"].as_i64(), payload, language),
        },
        Topic::ApplicationDeclined | Topic::ApplicationExpired => Message::ApplicationEnded {
            why: reason_message(payload, Reason::UserAbandoned, language),
        },
        Topic::LinkExpiring => Message::LinkExpiring {
            to: match payload["purpose"].as_str() {
                Some("sign_contract") => LinkTo::Offer,
                Some("view_loan") => LinkTo::Loan,
                _ => LinkTo::Application,
            },
            expires: text("expires_at"),
        },
        // A wait on the underwriter is the lender's to chase, not the borrower's.
        Topic::ApplicationReminder if payload["state"] == "referred" => return None,
        Topic::ApplicationReminder => Message::ApplicationReminder {
            deadline: text("deadline"),
        },
        Topic::CreditLineFrozen => Message::LineChanged {
            why: reason_message(payload, Reason::LineFrozen, language),
        },
        Topic::CreditLineClosed => Message::LineChanged {
            why: reason_message(payload, Reason::LineClosed, language),
        },
        Topic::CreditLineExpired => Message::LineChanged {
            why: Reason::LineExpired.entry().message(language),
        },
        Topic::CreditLineIncreased => Message::LimitChanged {
            limit: amount(payload["limit_after_minor"].as_i64(), payload, language),
            why: None,
        },
        Topic::CreditLineDecreased => Message::LimitChanged {
            limit: amount(payload["limit_after_minor"].as_i64(), payload, language),
            why: payload["reason"]
                .as_str()
                .and_then(Reason::parse)
                .map(|r| r.for_borrower().entry().message(language)),
        },
        Topic::CreditLineUnfrozen => Message::LineReopened,
        Topic::CreditLineWarning => Message::LineWarning {
            kind: text("warning"),
        },
        Topic::CreditLineChangeScheduled => Message::LineChangeScheduled {
            percent: payload["percent"].as_u64(),
            when: text("effective_at"),
            why: reason_message(payload, Reason::RiskContactUs, language),
        },
        Topic::CaseOpened => Message::CaseOpened {
            respond_by: payload["case"]["respond_by"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
        },
        Topic::CaseAnswered => Message::CaseAnswered {
            text: payload["message"]["body"].as_str().unwrap_or(""),
        },
        Topic::CaseResolved => Message::CaseResolved {
            text: payload["message"]["body"].as_str().unwrap_or(""),
        },
        Topic::IncidentNotice => Message::Incident {
            text: incident(payload).text(language, true),
        },
        Topic::IncidentOver => Message::IncidentOver {
            text: incident(payload).over_text(language),
        },
        // Told to the lender (webhooks), not to the borrower: the lender's own workings and
        // steps the borrower took themselves.
        Topic::ProductCreated
        | Topic::ProductVersionAdded
        | Topic::ProductVersionReplaced
        | Topic::ProductRetirementScheduled
        | Topic::ProductVersionEffective
        | Topic::BorrowerRegistered
        | Topic::BorrowerContactChanged
        | Topic::CreditLineGranted
        | Topic::CreditLineFreezeKept
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
        // Operators' (an alert goes to its rule's on-call recipients, `notify/on_call.rs`).
        | Topic::AlertFired
        | Topic::AlertResolved
        | Topic::IncidentDeclared
        | Topic::IncidentChanged
        | Topic::IncidentEnded
        // Support's own: what the borrower wrote, support's notes, and its deadlines.
        | Topic::CaseBorrowerWrote
        | Topic::CaseNoted
        | Topic::CaseDueSoon
        | Topic::CaseOverdue => return None,
    })
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
    fn a_long_answer_is_cut_for_sms_and_whole_for_email() {
        let long = "长".repeat(400);
        let payload = json!({"message": {"body": long}});
        let sent = render(Topic::CaseAnswered, &payload, Language::ZhHans).unwrap();
        assert!(sent.text.ends_with(&long));
        assert_eq!(sent.short.chars().count(), SMS_CHARS);
        assert!(sent.short.ends_with('…'));
        let brief = render(
            Topic::CaseAnswered,
            &json!({"message": {"body": "Done."}}),
            Language::En,
        )
        .unwrap();
        assert_eq!(brief.short, brief.text);
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
        assert!(tells_borrower(Topic::DrawdownEnded, &json!({})));
        // Limit cuts, raises and a line opened again reach the borrower, not only the lender.
        for topic in [
            Topic::CreditLineDecreased,
            Topic::CreditLineIncreased,
            Topic::CreditLineUnfrozen,
            Topic::CreditLineChangeScheduled,
            Topic::CreditLineWarning,
        ] {
            assert!(tells_borrower(topic, &json!({})), "{topic}");
        }
        assert!(!tells_borrower(
            Topic::ApplicationReminder,
            &json!({"state": "referred"})
        ));
        for topic in [
            Topic::ProductCreated,
            Topic::BorrowerRegistered,
            Topic::CreditLineGranted,
            Topic::DrawdownQuoted,
        ] {
            assert!(render(topic, &json!({}), Language::En).is_none(), "{topic}");
            assert!(!tells_borrower(topic, &json!({})), "{topic}");
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
                   "expires_at": "2026-12-03T00:00:00Z", "purpose": "sign_contract", "deadline": "2026-12-05T00:00:00Z", "state": "draft",
                   "effective_at": "2026-12-04T04:00:00Z", "warning": "utilisation_high", "limit_after_minor": 4_000_000,
                   "incident": {"id": "i-1", "component": "payouts", "channel": "unionpay", "impact": "degraded",
                                "expected_by": "2026-12-04T06:00:00Z", "source": {"by": "operator", "actor": "ops:amy"},
                                "started_at": "2026-12-04T04:00:00Z", "revision": 1, "updated_at": "2026-12-04T04:00:00Z"}}),
            json!({"detail": {"kind": "overdue", "due_date": "2026-12-01", "amount_minor": 91_680, "currency": "USD"}, "purpose": "view_loan", "state": "referred", "reason": "risk.velocity",
                   "warning": "installment_due_soon", "percent": 20, "effective_at": "2026-12-04T04:00:00Z",
                   "case": {"respond_by": "2026-12-04T08:00:00.000Z"}, "message": {"body": "We fixed the account; it is paid now."}}),
            json!({"detail": {"kind": "due_today", "due_date": "2026-12-01", "amount_minor": 91_680}}),
        ]
    }

    #[test]
    fn every_message_reads_as_written() {
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
        // After an intended change of wording: LENDCORE_UPDATE_GOLDEN=1 rewrites the file.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/notify/messages.golden.json"
        );
        if std::env::var_os("LENDCORE_UPDATE_GOLDEN").is_some() {
            let text = serde_json::to_string_pretty(&rendered).unwrap();
            std::fs::write(path, text + "\n").unwrap();
        }
        let expected: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(rendered.len(), expected.len());
        for (got, want) in rendered.iter().zip(&expected) {
            assert_eq!(got, want);
        }
    }
}
