//! The service's status as a borrower app shows it: how it stands, the one sentence a banner
//! says, the incidents open or ended in the last day, and maintenance in progress or planned
//! in the coming week, in the language asked for. Public: it names no borrower, operator or
//! rule.

use chrono::Duration;
use lendcore_domain::Timestamp;
use lendcore_domain::incident::{Component, Impact, ServiceState, service_state};
use lendcore_domain::maintenance::WindowStatus;
use lendcore_domain::reasons::Language;
use serde::Serialize;

use crate::{Engine, EngineError};

/// Ended incidents stay on the status this long, so a borrower sees what happened.
const ENDED_SHOWN: Duration = Duration::hours(24);
/// Maintenance is shown this far ahead.
const PLANNED_SHOWN: Duration = Duration::days(7);
/// Planned maintenance makes the banner this close to its start.
const PLANNED_BANNER: Duration = Duration::hours(24);
const MOST_SHOWN: u32 = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceStatus {
    /// The worst of what is open: `unavailable`, `maintenance`, `degraded` or `operational`.
    pub state: ServiceState,
    /// What a banner says, in the language asked; absent when there is nothing to say.
    pub banner: Option<String>,
    /// Open incidents, then those that ended in the last day, each latest started first.
    pub incidents: Vec<StatusIncident>,
    /// Maintenance in progress or planned in the coming week, soonest first.
    pub maintenance: Vec<StatusWindow>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub as_of: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusIncident {
    pub id: String,
    pub component: Component,
    /// For payouts: the channel in trouble; absent: every one.
    pub channel: Option<String>,
    pub impact: Impact,
    /// What borrowers are told, in the language asked.
    pub message: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub expected_by: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub started_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub ended_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusWindow {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub starts_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub ends_at: Timestamp,
    /// The operator's words for it.
    pub message: String,
    pub in_progress: bool,
}

pub async fn current(engine: &Engine, language: Language) -> Result<ServiceStatus, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let incidents = uow.current_incidents(now - ENDED_SHOWN, MOST_SHOWN).await?;
    let windows = uow.maintenance_windows_since(now, MOST_SHOWN).await?;
    drop(uow);
    let maintenance: Vec<StatusWindow> = windows
        .into_iter()
        .filter_map(|w| {
            let in_progress = match w.status(now) {
                WindowStatus::InProgress => true,
                WindowStatus::Scheduled if w.starts_at <= now + PLANNED_SHOWN => false,
                WindowStatus::Scheduled | WindowStatus::Cancelled | WindowStatus::Over => {
                    return None;
                }
            };
            Some(StatusWindow {
                id: w.id,
                starts_at: w.starts_at,
                ends_at: w.ends_at,
                message: w.message,
                in_progress,
            })
        })
        .collect();
    let state = service_state(&incidents, maintenance.iter().any(|w| w.in_progress));
    // The worst open incident speaks first; then maintenance under way, then maintenance soon.
    let worst = incidents
        .iter()
        .filter(|i| i.is_open())
        .min_by_key(|i| (std::cmp::Reverse(i.impact), std::cmp::Reverse(i.started_at)));
    let banner = match worst {
        Some(incident) => Some(incident.text(language, false)),
        None => maintenance
            .iter()
            .find(|w| w.in_progress || w.starts_at <= now + PLANNED_BANNER)
            .map(|w| maintenance_banner(w, language)),
    };
    Ok(ServiceStatus {
        state,
        banner,
        incidents: incidents
            .iter()
            .map(|i| StatusIncident {
                id: i.id.clone(),
                component: i.component,
                channel: i.channel.clone(),
                impact: i.impact,
                message: if i.is_open() {
                    i.text(language, false)
                } else {
                    i.over_text(language)
                },
                expected_by: i.expected_by,
                started_at: i.started_at,
                ended_at: i.ended_at,
            })
            .collect(),
        maintenance,
        as_of: now,
    })
}

fn maintenance_banner(window: &StatusWindow, language: Language) -> String {
    let at = |t: Timestamp| t.format("%Y-%m-%d %H:%M UTC").to_string();
    match (language, window.in_progress) {
        (Language::En, true) => format!(
            "Maintenance until {}: {} Your requests are kept and continue afterwards.",
            at(window.ends_at),
            window.message
        ),
        (Language::En, false) => format!(
            "Planned maintenance from {} to {}: {}",
            at(window.starts_at),
            at(window.ends_at),
            window.message
        ),
        (Language::ZhHans, true) => format!(
            "系统维护中，预计{}结束：{} 您的申请会保留，维护后继续处理。",
            at(window.ends_at),
            window.message
        ),
        (Language::ZhHans, false) => format!(
            "计划于{}至{}进行系统维护：{}",
            at(window.starts_at),
            at(window.ends_at),
            window.message
        ),
    }
}
