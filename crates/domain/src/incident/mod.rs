//! Incidents: trouble with the service, as borrowers are told of it. An operator declares one,
//! or an alert whose rule says so raises it; a borrower app shows it as a banner
//! (`/v1/status`), borrowers whose work it touches are told in their language, and its end is
//! announced too. What borrowers read is written here, in both languages, from what the
//! incident concerns, so every incident says what is affected, that their money is safe, and
//! when to expect the service back.

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::reasons::Language;
use crate::validation::{Collector, Violations};

/// The part of the service in trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IncidentComponent))]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// Paying drawdowns out, through one channel (`channel`) or all.
    Payouts,
    /// Applying, being verified and decided.
    Applications,
    /// Repaying loans.
    Repayments,
    /// The whole service.
    Service,
}

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IncidentImpact))]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// Slower than usual: work is delayed, not lost.
    Degraded,
    /// Stopped for now: work waits and continues afterwards.
    Unavailable,
}

/// Words an operator adds to the standard text, per language (either may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IncidentNote))]
#[serde(deny_unknown_fields)]
pub struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
    #[serde(default, rename = "zh-Hans", skip_serializing_if = "Option::is_none")]
    pub zh_hans: Option<String>,
}

impl Note {
    fn in_language(&self, language: Language) -> Option<&str> {
        match language {
            Language::En => self.en.as_deref(),
            Language::ZhHans => self.zh_hans.as_deref(),
        }
    }
}

/// Where an incident came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IncidentSource))]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Source {
    /// An operator declared it.
    Operator { actor: String },
    /// An alert raised it; it ends when the alert resolves (or an operator ends it).
    Alert { alert_id: String, rule: String },
}

/// What an alert rule says about the incident its alerts raise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    pub component: Component,
    pub impact: Impact,
    /// When borrowers are told to expect the service back, counted from when it fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_within_minutes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: String,
    pub component: Component,
    /// For payouts: the channel in trouble; absent: every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub impact: Impact,
    #[serde(default)]
    pub note: Note,
    /// When borrowers are told to expect the service back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub expected_by: Option<Timestamp>,
    pub source: Source,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub ended_at: Option<Timestamp>,
    pub revision: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

/// What an operator declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentInput {
    pub component: Component,
    pub channel: Option<String>,
    pub impact: Impact,
    pub note: Note,
    pub expected_by: Option<Timestamp>,
}

/// What an operator changes while it lasts; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentChange {
    pub impact: Option<Impact>,
    pub note: Option<Note>,
    pub expected_by: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    Invalid(#[from] Violations),
    #[error("the incident has ended")]
    Ended,
}

impl IncidentError {
    pub fn code(&self) -> &'static str {
        match self {
            IncidentError::Invalid(v) => v.first().code,
            IncidentError::Ended => "conflict.incident_ended",
        }
    }
}

const MAX_NOTE_CHARS: usize = 300;
const MAX_CHANNEL_CHARS: usize = 64;
/// The furthest ahead an expected end may be: past that, say nothing rather than a guess.
pub const MAX_EXPECTED_DAYS: i64 = 7;
pub const MAX_EXPECT_MINUTES: u32 = 7 * 24 * 60;

fn check_note(note: &Note, found: &mut Collector) {
    for (field, text) in [("note.en", &note.en), ("note.zh-Hans", &note.zh_hans)] {
        if let Some(text) = text
            && (text.trim().is_empty()
                || text.chars().count() > MAX_NOTE_CHARS
                || text.chars().any(char::is_control))
        {
            found.add(
                field,
                "validation.invalid_text",
                format!("1-{MAX_NOTE_CHARS} characters, no control characters"),
            );
        }
    }
}

fn check_expected(expected_by: Option<Timestamp>, now: Timestamp, found: &mut Collector) {
    if let Some(at) = expected_by
        && (at <= now || at > now + chrono::Duration::days(MAX_EXPECTED_DAYS))
    {
        found.add(
            "expected_by",
            "validation.out_of_range",
            format!("in the future, at most {MAX_EXPECTED_DAYS} days ahead"),
        );
    }
}

fn trimmed(note: Note) -> Note {
    let tidy = |t: Option<String>| t.map(|t| t.trim().to_owned());
    Note {
        en: tidy(note.en),
        zh_hans: tidy(note.zh_hans),
    }
}

impl IncidentSpec {
    pub fn validate(&self, found: &mut Collector) {
        if self
            .expect_within_minutes
            .is_some_and(|m| !(1..=MAX_EXPECT_MINUTES).contains(&m))
        {
            found.add(
                "incident.expect_within_minutes",
                "validation.out_of_range",
                format!("1 to {MAX_EXPECT_MINUTES} minutes"),
            );
        }
    }
}

impl Incident {
    /// An incident an operator declares, starting now.
    pub fn declare(
        id: String,
        input: IncidentInput,
        actor: &str,
        now: Timestamp,
    ) -> Result<Incident, IncidentError> {
        let mut found = Collector::default();
        if let Some(channel) = &input.channel {
            if input.component != Component::Payouts {
                found.add(
                    "channel",
                    "validation.not_allowed",
                    "only a payouts incident names a channel",
                );
            } else if !crate::product::is_code(channel) || channel.len() > MAX_CHANNEL_CHARS {
                found.add(
                    "channel",
                    "validation.invalid_code",
                    "a channel's id: lower case letters, digits, '_' or '-'",
                );
            }
        }
        check_note(&input.note, &mut found);
        check_expected(input.expected_by, now, &mut found);
        found.finish(Some(()))?;
        Ok(Incident {
            id,
            component: input.component,
            channel: input.channel,
            impact: input.impact,
            note: trimmed(input.note),
            expected_by: input.expected_by,
            source: Source::Operator {
                actor: actor.to_owned(),
            },
            started_at: now,
            ended_at: None,
            revision: 1,
            updated_at: now,
        })
    }

    /// The incident an alert of `rule` raises; `channel` is the alert's group when the rule
    /// groups payouts by channel.
    pub fn raised_by(
        id: String,
        spec: &IncidentSpec,
        channel: Option<String>,
        alert_id: &str,
        rule: &str,
        now: Timestamp,
    ) -> Incident {
        Incident {
            id,
            component: spec.component,
            channel: channel.filter(|_| spec.component == Component::Payouts),
            impact: spec.impact,
            note: Note::default(),
            expected_by: spec
                .expect_within_minutes
                .map(|m| now + chrono::Duration::minutes(i64::from(m))),
            source: Source::Alert {
                alert_id: alert_id.to_owned(),
                rule: rule.to_owned(),
            },
            started_at: now,
            ended_at: None,
            revision: 1,
            updated_at: now,
        }
    }

    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }

    pub fn change(&mut self, change: IncidentChange, now: Timestamp) -> Result<(), IncidentError> {
        if !self.is_open() {
            return Err(IncidentError::Ended);
        }
        let mut found = Collector::default();
        if let Some(note) = &change.note {
            check_note(note, &mut found);
        }
        check_expected(change.expected_by, now, &mut found);
        found.finish(Some(()))?;
        if let Some(impact) = change.impact {
            self.impact = impact;
        }
        if let Some(note) = change.note {
            self.note = trimmed(note);
        }
        if let Some(at) = change.expected_by {
            self.expected_by = Some(at);
        }
        self.revision += 1;
        self.updated_at = now;
        Ok(())
    }

    pub fn end(&mut self, now: Timestamp) -> Result<(), IncidentError> {
        if !self.is_open() {
            return Err(IncidentError::Ended);
        }
        self.ended_at = Some(now);
        self.revision += 1;
        self.updated_at = now;
        Ok(())
    }

    /// What borrowers read while it lasts, on the status (`notice` false) or in a message sent
    /// to them (`notice` true, whose readers are told again when it is over): what is
    /// affected, that their money and requests are safe, when to expect the service back, and
    /// the operator's note.
    pub fn text(&self, language: Language, notice: bool) -> String {
        let through = self.channel.as_deref();
        let mut text = match (language, self.component, self.impact) {
            (Language::En, Component::Payouts, Impact::Degraded) => format!(
                "Payouts{} are delayed. Your money is safe: a confirmed drawdown is paid once, and nothing is lost.",
                through.map(|c| format!(" through {c}")).unwrap_or_default()
            ),
            (Language::En, Component::Payouts, Impact::Unavailable) => format!(
                "Payouts{} are paused. Your money is safe: confirmed drawdowns are paid once we are back, and nothing is lost.",
                through.map(|c| format!(" through {c}")).unwrap_or_default()
            ),
            (Language::En, Component::Applications, Impact::Degraded) => {
                "Applications are taking longer than usual. Your answers are kept; there is nothing to do again.".to_owned()
            }
            (Language::En, Component::Applications, Impact::Unavailable) => {
                "Applications are paused. Your answers are kept; carry on where you left off once we are back.".to_owned()
            }
            (Language::En, Component::Repayments, Impact::Degraded) => {
                "Repayments are taking longer than usual to show. A payment you made is safe and shows once it is through.".to_owned()
            }
            (Language::En, Component::Repayments, Impact::Unavailable) => {
                "Repayments are paused. A payment you made is safe; you can repay again once we are back.".to_owned()
            }
            (Language::En, Component::Service, Impact::Degraded) => {
                "The service is slower than usual. Your money and your requests are safe.".to_owned()
            }
            (Language::En, Component::Service, Impact::Unavailable) => {
                "The service is unavailable for now. Your money and your requests are safe and continue once we are back.".to_owned()
            }
            (Language::ZhHans, Component::Payouts, Impact::Degraded) => format!(
                "{}放款出现延迟。您的资金安全：已确认的借款只会发放一次，不会丢失。",
                through.map(|c| format!("通过{c}的")).unwrap_or_default()
            ),
            (Language::ZhHans, Component::Payouts, Impact::Unavailable) => format!(
                "{}放款暂停。您的资金安全：已确认的借款将在恢复后发放，不会丢失。",
                through.map(|c| format!("通过{c}的")).unwrap_or_default()
            ),
            (Language::ZhHans, Component::Applications, Impact::Degraded) => {
                "申请处理比平时慢。您填写的内容已保存，无需重新填写。".to_owned()
            }
            (Language::ZhHans, Component::Applications, Impact::Unavailable) => {
                "申请暂停受理。您填写的内容已保存，恢复后可继续。".to_owned()
            }
            (Language::ZhHans, Component::Repayments, Impact::Degraded) => {
                "还款入账比平时慢。您已还的款项安全，处理完成后即会显示。".to_owned()
            }
            (Language::ZhHans, Component::Repayments, Impact::Unavailable) => {
                "还款暂停。您已还的款项安全，恢复后可继续还款。".to_owned()
            }
            (Language::ZhHans, Component::Service, Impact::Degraded) => {
                "服务比平时慢。您的资金和申请都安全。".to_owned()
            }
            (Language::ZhHans, Component::Service, Impact::Unavailable) => {
                "服务暂时不可用。您的资金和申请都安全，恢复后继续处理。".to_owned()
            }
        };
        match (language, self.expected_by) {
            (Language::En, Some(at)) => text.push_str(&format!(" Expect it back by {}.", when(at))),
            (Language::ZhHans, Some(at)) => text.push_str(&format!("预计{}前恢复。", when(at))),
            (Language::En, None) if notice => text.push_str(" We will tell you when it is back."),
            (Language::ZhHans, None) if notice => text.push_str("恢复后我们会通知您。"),
            (Language::En, None) => text.push_str(" This notice will say when it is back."),
            (Language::ZhHans, None) => text.push_str("恢复后本页将及时更新。"),
        }
        if let Some(note) = self.note.in_language(language) {
            if language == Language::En {
                text.push(' ');
            }
            text.push_str(note);
        }
        text
    }

    /// What borrowers are told when it ends.
    pub fn over_text(&self, language: Language) -> String {
        match (language, self.component) {
            (Language::En, Component::Payouts) => {
                "Payouts are back to normal. A drawdown that waited is being paid now.".to_owned()
            }
            (Language::En, Component::Applications) => {
                "Applications are back to normal: carry on where you left off.".to_owned()
            }
            (Language::En, Component::Repayments) => "Repayments are back to normal.".to_owned(),
            (Language::En, Component::Service) => {
                "The service is back to normal. What waited continues now.".to_owned()
            }
            (Language::ZhHans, Component::Payouts) => {
                "放款已恢复正常，等待中的借款正在发放。".to_owned()
            }
            (Language::ZhHans, Component::Applications) => {
                "申请已恢复正常，可从上次中断处继续。".to_owned()
            }
            (Language::ZhHans, Component::Repayments) => "还款已恢复正常。".to_owned(),
            (Language::ZhHans, Component::Service) => {
                "服务已恢复正常，等待中的业务正在继续处理。".to_owned()
            }
        }
    }
}

/// A time as borrowers read it.
fn when(at: Timestamp) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How the service stands, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Unavailable,
    Maintenance,
    Degraded,
    Operational,
}

/// The state open incidents and a maintenance window in progress make.
pub fn service_state<'a>(
    open: impl IntoIterator<Item = &'a Incident>,
    maintenance_in_progress: bool,
) -> ServiceState {
    let worst = open
        .into_iter()
        .filter(|i| i.is_open())
        .map(|i| match i.impact {
            Impact::Unavailable => ServiceState::Unavailable,
            Impact::Degraded => ServiceState::Degraded,
        })
        .min();
    let maintenance = maintenance_in_progress.then_some(ServiceState::Maintenance);
    [worst, maintenance]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(ServiceState::Operational)
}
