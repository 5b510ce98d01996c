//! What on-call operators are told of an alert that fired or resolved: the rule, the group, the
//! figures the evaluation found (the value, what it was held to, the minute-by-minute series,
//! the baseline) and links to examples, in the lender's language. SMS gets one line with the
//! link to the alerts; email gets the whole evidence.

use askama::Template;
use lendcore_domain::alerting::{AlertState, Condition, Severity};
use lendcore_domain::reasons::Language;
use lendcore_domain::topic::Topic;
use serde_json::Value;

use super::templates::Rendered;
use crate::alerts::AlertNotice;

/// An alert as its message says it, every figure written out already.
struct AlertMessage<'a> {
    fired: bool,
    page: bool,
    rule: &'a str,
    /// `channel sandbox`; empty for a rule without groups.
    group: String,
    description: &'a str,
    window_minutes: u32,
    /// What the value is held to: `threshold`, `ratio`, `change` or `anomaly`.
    kind: &'static str,
    value: String,
    compared_with: String,
    /// A ratio's denominator, an anomaly's score.
    denominator: Option<u64>,
    score: Option<String>,
    series: String,
    history: String,
    since: String,
    /// When it resolved.
    at: String,
    examples: Vec<String>,
    alerts_link: String,
}

#[derive(Template)]
#[template(path = "alerts/en.txt", block = "subject")]
struct EnglishSubject<'a> {
    m: &'a AlertMessage<'a>,
}

#[derive(Template)]
#[template(path = "alerts/en.txt", block = "text")]
struct EnglishText<'a> {
    m: &'a AlertMessage<'a>,
}

#[derive(Template)]
#[template(path = "alerts/en.txt", block = "short")]
struct EnglishShort<'a> {
    m: &'a AlertMessage<'a>,
}

#[derive(Template)]
#[template(path = "alerts/zh-Hans.txt", block = "subject")]
struct ChineseSubject<'a> {
    m: &'a AlertMessage<'a>,
}

#[derive(Template)]
#[template(path = "alerts/zh-Hans.txt", block = "text")]
struct ChineseText<'a> {
    m: &'a AlertMessage<'a>,
}

#[derive(Template)]
#[template(path = "alerts/zh-Hans.txt", block = "short")]
struct ChineseShort<'a> {
    m: &'a AlertMessage<'a>,
}

fn when(at: lendcore_domain::Timestamp) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn figures(values: &[u64]) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where an operator opens `path`: under `operator_url` when one is configured.
fn link(operator_url: Option<&str>, path: &str) -> String {
    match operator_url {
        Some(base) if path.starts_with('/') => format!("{}{path}", base.trim_end_matches('/')),
        _ => path.to_owned(),
    }
}

/// The message of an `alert.fired` or `alert.resolved` event; `None` for any other event or a
/// payload that is not an alert's notice.
pub fn render_alert(
    topic: Topic,
    payload: &Value,
    language: Language,
    operator_url: Option<&str>,
) -> Option<Rendered> {
    let fired = match topic {
        Topic::AlertFired => true,
        Topic::AlertResolved => false,
        _ => return None,
    };
    let notice: AlertNotice = match serde_json::from_value(payload.clone()) {
        Ok(notice) => notice,
        Err(err) => {
            tracing::error!(%topic, error = %err, "an alert's event does not read as a notice");
            return None;
        }
    };
    let alert = &notice.alert;
    let evidence = &alert.body.evidence;
    let rule = notice.rule.as_ref();
    let kind = rule.map_or("threshold", |r| match r.condition {
        Condition::Threshold { .. } => "threshold",
        Condition::Ratio { .. } => "ratio",
        Condition::Change { .. } => "change",
        Condition::Anomaly { .. } => "anomaly",
    });
    let amount = |x: f64| {
        if kind == "ratio" {
            format!("{:.1}%", x * 100.0)
        } else if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    let (since, at) = match alert.body.state {
        AlertState::Pending { since, .. } | AlertState::Firing { since, .. } => (since, None),
        AlertState::Resolved { since, at } => (since, Some(at)),
    };
    let group = match rule.and_then(|r| r.group_by.as_deref()) {
        Some(label) if !alert.group.is_empty() => format!("{label} {}", alert.group),
        _ => alert.group.clone(),
    };
    let m = AlertMessage {
        fired,
        page: rule.is_some_and(|r| r.severity == Severity::Page),
        rule: &alert.rule,
        group,
        description: rule.map_or("", |r| r.description.as_str()),
        window_minutes: rule.map_or(0, |r| r.window_minutes),
        kind,
        value: amount(evidence.value),
        compared_with: amount(evidence.compared_with),
        denominator: evidence.denominator,
        score: evidence.score.map(|s| format!("{s:.1}")),
        series: figures(&alert.body.series),
        history: figures(&evidence.history),
        since: when(since),
        at: at.map(when).unwrap_or_default(),
        examples: alert
            .body
            .examples
            .iter()
            .map(|e| link(operator_url, e))
            .collect(),
        alerts_link: link(
            operator_url,
            &format!(
                "/v1/alerts?state={}",
                if fired { "firing" } else { "resolved" }
            ),
        ),
    };
    let m = &m;
    let rendered = match language {
        Language::En => (
            EnglishSubject { m }.render(),
            EnglishText { m }.render(),
            EnglishShort { m }.render(),
        ),
        Language::ZhHans => (
            ChineseSubject { m }.render(),
            ChineseText { m }.render(),
            ChineseShort { m }.render(),
        ),
    };
    match rendered {
        (Ok(subject), Ok(text), Ok(short)) => Some(Rendered {
            subject,
            text,
            short,
        }),
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
            tracing::error!(%topic, error = %err, "an alert's message failed to render");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use lendcore_domain::alerting::{AlertRule, Evidence};
    use serde_json::json;

    use super::*;
    use crate::alerts::{AlertBody, AlertView};

    fn notice(state: AlertState) -> Value {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let rule: AlertRule = serde_json::from_value(json!({
            "name": "channel-unanswered-anomaly", "description": "A payment channel leaves calls unanswered",
            "severity": "page", "window_minutes": 5, "group_by": "channel",
            "condition": {"kind": "anomaly", "baseline": "same_hour_median", "baseline_days": 3, "score": "4", "min_count": 5,
                "count": {"signal": "payout_calls", "where": {"answer": ["unknown"]}}},
            "notify": [{"by": "sms", "to": "+8613800000000"}]
        }))
        .unwrap();
        serde_json::to_value(AlertNotice {
            alert: AlertView {
                id: "a-1".into(),
                rule: rule.name.clone(),
                group: "sandbox".into(),
                body: AlertBody {
                    state,
                    evidence: Evidence {
                        breached: true,
                        value: 12.0,
                        compared_with: 1.0,
                        score: Some(7.3333),
                        history: vec![1, 1, 2],
                        denominator: None,
                    },
                    series: vec![0, 2, 4, 6, 0],
                    examples: vec!["/v1/drawdowns/d-9".into(), "session:s-1".into()],
                },
                opened_at: at,
                updated_at: at,
            },
            rule: Some(rule),
        })
        .unwrap()
    }

    #[test]
    fn a_fired_alert_gives_the_evidence_and_links_in_either_language() {
        let since = Utc.with_ymd_and_hms(2026, 12, 4, 9, 58, 0).unwrap();
        let payload = notice(AlertState::Firing { since, clears: 0 });
        let base = Some("https://lendcore.lender.internal/");
        let en = render_alert(Topic::AlertFired, &payload, Language::En, base).unwrap();
        assert_eq!(
            en.subject,
            "[lendcore] FIRING (page): channel-unanswered-anomaly, channel sandbox"
        );
        assert_eq!(
            en.text,
            "An alert fired: channel-unanswered-anomaly, channel sandbox.\n\
             \n\
             A payment channel leaves calls unanswered\n\
             \n\
             Over the last 5 minutes: 12, the usual is 1: 7.3 deviations above it.\n\
             Minute by minute, oldest first: 0 2 4 6 0\n\
             The same window on earlier days, oldest first: 1 1 2\n\
             In breach since 2026-12-04 09:58 UTC.\n\
             \n\
             Examples:\n  \
             https://lendcore.lender.internal/v1/drawdowns/d-9\n  \
             session:s-1\n\
             \n\
             All alerts: https://lendcore.lender.internal/v1/alerts?state=firing"
        );
        assert_eq!(
            en.short,
            "lendcore FIRING channel-unanswered-anomaly (channel sandbox): 12 against 1 over 5 min. \
             https://lendcore.lender.internal/v1/alerts?state=firing"
        );
        let zh = render_alert(Topic::AlertFired, &payload, Language::ZhHans, None).unwrap();
        assert_eq!(
            zh.subject,
            "[lendcore] 告警（立即处理）：channel-unanswered-anomaly，channel sandbox"
        );
        assert!(
            zh.text.contains("近5分钟：12，常态为 1，高出 7.3 个离差。"),
            "{}",
            zh.text
        );
        assert!(zh.text.contains("\n  /v1/drawdowns/d-9\n"), "{}", zh.text);
        assert!(
            zh.short.ends_with("/v1/alerts?state=firing"),
            "{}",
            zh.short
        );
    }

    #[test]
    fn a_resolved_alert_says_when_and_other_events_are_not_alerts() {
        let since = Utc.with_ymd_and_hms(2026, 12, 4, 9, 58, 0).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 30, 0).unwrap();
        let payload = notice(AlertState::Resolved { since, at });
        let en = render_alert(Topic::AlertResolved, &payload, Language::En, None).unwrap();
        assert_eq!(
            en.subject,
            "[lendcore] RESOLVED: channel-unanswered-anomaly, channel sandbox"
        );
        assert!(
            en.text.contains(
                "Resolved at 2026-12-04 10:30 UTC; in breach since 2026-12-04 09:58 UTC."
            ),
            "{}",
            en.text
        );
        assert!(
            en.short.ends_with(" /v1/alerts?state=resolved"),
            "{}",
            en.short
        );
        let zh = render_alert(Topic::AlertResolved, &payload, Language::ZhHans, None).unwrap();
        assert!(zh.subject.contains("已恢复"), "{}", zh.subject);
        assert!(render_alert(Topic::DrawdownEnded, &payload, Language::En, None).is_none());
        assert!(
            render_alert(Topic::AlertFired, &json!({"alert": 1}), Language::En, None).is_none()
        );
    }
}
