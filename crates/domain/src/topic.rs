//! Every event lendcore puts in its outbox, named once: the producers write these, webhooks
//! subscribe to them, and the borrower's messages are chosen by them (`match`ed whole, so a new
//! event must say whether borrowers hear of it).

use serde::{Deserialize, Serialize};

use crate::application::ApplicationStatus;
use crate::credit_line::LineEventKind;

macro_rules! topics {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, )*) => {
        /// An outbox event's topic, e.g. `drawdown.paid_out`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Topic {
            $( $(#[$doc])* #[serde(rename = $code)] $variant, )*
        }

        impl Topic {
            pub const ALL: &'static [Topic] = &[$(Topic::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( Topic::$variant => $code, )*
                }
            }
        }
    };
}

topics! {
    ProductCreated => "product.created",
    ProductVersionAdded => "product.version_added",
    ProductVersionReplaced => "product.version_replaced",
    ProductRetirementScheduled => "product.retirement_scheduled",
    /// A scheduled product version took effect.
    ProductVersionEffective => "product.version_effective",
    BorrowerRegistered => "borrower.registered",
    BorrowerContactChanged => "borrower.contact_changed",
    CreditLineGranted => "credit_line.granted",
    CreditLineIncreased => "credit_line.increased",
    CreditLineDecreased => "credit_line.decreased",
    CreditLineFrozen => "credit_line.frozen",
    CreditLineFreezeKept => "credit_line.freeze_kept",
    CreditLineUnfrozen => "credit_line.unfrozen",
    CreditLineClosed => "credit_line.closed",
    CreditLineExpired => "credit_line.expired",
    /// The daily review warns the borrower before a rule bites (payload `warning`).
    CreditLineWarning => "credit_line.warning",
    /// The daily review will freeze the line, or lower its limit, once the notice has run.
    CreditLineChangeScheduled => "credit_line.change_scheduled",
    DrawdownQuoted => "drawdown.quoted",
    DrawdownConfirmed => "drawdown.confirmed",
    DrawdownQueuedForMaintenance => "drawdown.queued_for_maintenance",
    DrawdownResumed => "drawdown.resumed",
    DrawdownPaidOut => "drawdown.paid_out",
    DrawdownManualReview => "drawdown.manual_review",
    /// Confirmed, and held by a risk rule for a person to look at before the payout.
    DrawdownHeld => "drawdown.held",
    /// A held drawdown released by an operator: the payout goes ahead.
    DrawdownReleased => "drawdown.released",
    /// Ended without a loan: expired, refused or failed, with the reason.
    DrawdownEnded => "drawdown.ended",
    LoanRepaid => "loan.repaid",
    LoanPaidOff => "loan.paid_off",
    LoanReminder => "loan.reminder",
    LoanDelinquencyChanged => "loan.delinquency_changed",
    MaintenanceScheduled => "maintenance.scheduled",
    MaintenanceCancelled => "maintenance.cancelled",
    /// Told to each borrower with work in flight before a window.
    MaintenanceNotice => "maintenance.notice",
    ApplicationDraft => "application.draft",
    ApplicationSubmitted => "application.submitted",
    ApplicationVerifying => "application.verifying",
    ApplicationAssessing => "application.assessing",
    ApplicationReferred => "application.referred",
    ApplicationInfoRequested => "application.info_requested",
    ApplicationApproved => "application.approved",
    ApplicationDeclined => "application.declined",
    ApplicationAccepted => "application.accepted",
    ApplicationWithdrawn => "application.withdrawn",
    ApplicationExpired => "application.expired",
    /// A wait of the application's is ending soon.
    ApplicationReminder => "application.reminder",
    /// A link is about to expire.
    LinkExpiring => "link.expiring",
    /// An alert rule is in breach: told to the rule's recipients, with the evidence.
    AlertFired => "alert.fired",
    /// A firing alert's condition cleared (or its rule went).
    AlertResolved => "alert.resolved",
    /// An operator declared an incident, or an alert raised one: it shows on `/v1/status`.
    IncidentDeclared => "incident.declared",
    /// An operator changed an incident's impact, note or expected end.
    IncidentChanged => "incident.changed",
    IncidentEnded => "incident.ended",
    /// Told to each borrower whose work an incident touches.
    IncidentNotice => "incident.notice",
    /// Told to each borrower who had the notice, once the incident is over.
    IncidentOver => "incident.over",
    /// A support case opened; its borrower is told when support will answer by.
    CaseOpened => "case.opened",
    /// The borrower wrote to their case (reopening it, if it was resolved).
    CaseBorrowerWrote => "case.borrower_wrote",
    /// Support answered; the borrower is sent the answer.
    CaseAnswered => "case.answered",
    /// Support added an internal note: never sent to the borrower.
    CaseNoted => "case.noted",
    CaseResolved => "case.resolved",
    /// A case's deadline is near and support has not answered.
    CaseDueSoon => "case.due_soon",
    /// A case's deadline passed unanswered.
    CaseOverdue => "case.overdue",
}

impl Topic {
    pub fn parse(code: &str) -> Option<Topic> {
        Topic::ALL.iter().copied().find(|t| t.as_str() == code)
    }

    /// The event a credit line's log entry announces.
    pub fn of_line_event(kind: LineEventKind) -> Topic {
        match kind {
            LineEventKind::Granted => Topic::CreditLineGranted,
            LineEventKind::Increased => Topic::CreditLineIncreased,
            LineEventKind::Decreased => Topic::CreditLineDecreased,
            LineEventKind::Frozen => Topic::CreditLineFrozen,
            LineEventKind::FreezeKept => Topic::CreditLineFreezeKept,
            LineEventKind::Unfrozen => Topic::CreditLineUnfrozen,
            LineEventKind::Closed => Topic::CreditLineClosed,
            LineEventKind::Expired => Topic::CreditLineExpired,
        }
    }

    /// The event an application entering `status` announces.
    pub fn of_application(status: &ApplicationStatus) -> Topic {
        match status {
            ApplicationStatus::Draft => Topic::ApplicationDraft,
            ApplicationStatus::Submitted => Topic::ApplicationSubmitted,
            ApplicationStatus::Verifying => Topic::ApplicationVerifying,
            ApplicationStatus::Assessing => Topic::ApplicationAssessing,
            ApplicationStatus::Referred => Topic::ApplicationReferred,
            ApplicationStatus::InfoRequested { .. } => Topic::ApplicationInfoRequested,
            ApplicationStatus::Approved => Topic::ApplicationApproved,
            ApplicationStatus::Declined { .. } => Topic::ApplicationDeclined,
            ApplicationStatus::Accepted => Topic::ApplicationAccepted,
            ApplicationStatus::Withdrawn { .. } => Topic::ApplicationWithdrawn,
            ApplicationStatus::Expired { .. } => Topic::ApplicationExpired,
        }
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_reads_back_from_its_code_and_the_codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &topic in Topic::ALL {
            assert_eq!(Topic::parse(topic.as_str()), Some(topic));
            assert!(seen.insert(topic.as_str()), "{topic} twice");
            assert_eq!(
                serde_json::to_value(topic).unwrap(),
                serde_json::json!(topic.as_str())
            );
        }
        assert_eq!(Topic::parse("drawdown.nope"), None);
    }
}
