//! Maintenance windows. An operator announces one ahead; borrowers with work in flight are told
//! before it starts; while it runs, confirmed drawdowns are held and queued and payouts wait;
//! when it ends, everything continues. Nothing in flight is ever closed because of one.

use serde::{Deserialize, Serialize};

use crate::validation::{Collector, Violations};
use crate::{Timestamp, to_millis};

/// The longest window an operator can schedule in one go; a longer outage is a new decision.
pub const MAX_LENGTH_HOURS: i64 = 72;
const MAX_MESSAGE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceWindow {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub starts_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub ends_at: Timestamp,
    /// What borrowers are told, e.g. "Payouts pause for the bank's year-end close."
    pub message: String,
    pub created_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub cancelled_at: Option<Timestamp>,
    pub revision: i64,
}

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInput {
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub message: String,
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(transparent)]
    Invalid(#[from] Violations),
    #[error("the maintenance window is {0} and cannot be cancelled")]
    NotCancellable(&'static str),
}

impl WindowError {
    pub fn code(&self) -> &'static str {
        match self {
            WindowError::Invalid(v) => v.first().code,
            WindowError::NotCancellable(_) => "conflict.maintenance_window_state",
        }
    }
}

impl MaintenanceWindow {
    /// A window to come (or starting now). It must end in the future, after it starts, and
    /// last at most [`MAX_LENGTH_HOURS`].
    pub fn schedule(id: String, input: WindowInput, now: Timestamp) -> Result<Self, WindowError> {
        let now = to_millis(now);
        let starts_at = to_millis(input.starts_at).max(now);
        let ends_at = to_millis(input.ends_at);
        let mut found = Collector::default();
        if ends_at <= starts_at {
            found.add(
                "ends_at",
                "validation.window_invalid",
                "ends_at must be after starts_at and in the future",
            );
        } else if ends_at - starts_at > chrono::Duration::hours(MAX_LENGTH_HOURS) {
            found.add(
                "ends_at",
                "validation.window_too_long",
                format!("a maintenance window lasts at most {MAX_LENGTH_HOURS} hours"),
            );
        }
        let message = input.message.trim().to_owned();
        if message.is_empty()
            || message.chars().count() > MAX_MESSAGE_CHARS
            || message.chars().any(char::is_control)
        {
            found.add(
                "message",
                "validation.invalid_message",
                format!(
                    "message must be 1-{MAX_MESSAGE_CHARS} characters without control characters"
                ),
            );
        }
        found.finish(Some(()))?;
        Ok(MaintenanceWindow {
            id,
            starts_at,
            ends_at,
            message,
            created_by: input.actor,
            created_at: now,
            cancelled_at: None,
            revision: 1,
        })
    }

    pub fn status(&self, now: Timestamp) -> WindowStatus {
        match self.cancelled_at {
            Some(_) => WindowStatus::Cancelled,
            None if now < self.starts_at => WindowStatus::Scheduled,
            None if now < self.ends_at => WindowStatus::InProgress,
            None => WindowStatus::Over,
        }
    }

    /// Calls the window off before it ends; work it held back continues at once.
    pub fn cancel(&mut self, now: Timestamp) -> Result<(), WindowError> {
        match self.status(now) {
            WindowStatus::Scheduled | WindowStatus::InProgress => {
                self.cancelled_at = Some(to_millis(now));
                self.revision += 1;
                Ok(())
            }
            status @ (WindowStatus::Cancelled | WindowStatus::Over) => {
                Err(WindowError::NotCancellable(status.name()))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WindowStatus {
    Scheduled,
    InProgress,
    Over,
    Cancelled,
}

impl WindowStatus {
    pub fn name(self) -> &'static str {
        match self {
            WindowStatus::Scheduled => "scheduled",
            WindowStatus::InProgress => "in_progress",
            WindowStatus::Over => "over",
            WindowStatus::Cancelled => "cancelled",
        }
    }
}

/// When work held back by `windows` may go ahead at `now`: `None` if none is in progress,
/// otherwise the end of the window in progress, followed through any that overlap or touch
/// it, so work is not released into the next window.
pub fn held_until(windows: &[MaintenanceWindow], now: Timestamp) -> Option<Timestamp> {
    let mut until: Option<Timestamp> = None;
    loop {
        let at = until.unwrap_or(now);
        let extended = windows
            .iter()
            .filter(|w| w.cancelled_at.is_none() && w.starts_at <= at && at < w.ends_at)
            .map(|w| w.ends_at)
            .max();
        match extended {
            Some(end) if Some(end) != until => until = Some(end),
            _ => return until,
        }
    }
}

#[cfg(test)]
mod tests;
