use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn payouts(channel: Option<&str>) -> IncidentInput {
    IncidentInput {
        component: Component::Payouts,
        channel: channel.map(str::to_owned),
        impact: Impact::Degraded,
        note: Note::default(),
        expected_by: Some(now() + Duration::hours(2)),
    }
}

#[test]
fn a_payouts_incident_says_what_is_affected_that_money_is_safe_and_when_in_both_languages() {
    let incident =
        Incident::declare("i-1".into(), payouts(Some("unionpay")), "ops:amy", now()).unwrap();
    assert_eq!(
        incident.text(Language::En, true),
        "Payouts through unionpay are delayed. Your money is safe: a confirmed drawdown is paid \
         once, and nothing is lost. Expect it back by 2026-12-04 12:00 UTC."
    );
    assert_eq!(
        incident.text(Language::ZhHans, true),
        "通过unionpay的放款出现延迟。您的资金安全：已确认的借款只会发放一次，不会丢失。预计2026-12-04 12:00 UTC前恢复。"
    );
    assert_eq!(
        incident.source,
        Source::Operator {
            actor: "ops:amy".into()
        }
    );
}

#[test]
fn every_component_and_impact_has_words_in_each_language_with_the_note_after() {
    for component in [
        Component::Payouts,
        Component::Applications,
        Component::Repayments,
        Component::Service,
    ] {
        for impact in [Impact::Degraded, Impact::Unavailable] {
            let input = IncidentInput {
                component,
                channel: None,
                impact,
                note: Note {
                    en: Some("  The bank is upgrading.  ".into()),
                    zh_hans: Some("银行系统升级。".into()),
                },
                expected_by: None,
            };
            let incident = Incident::declare("i".into(), input, "ops:amy", now()).unwrap();
            let en = incident.text(Language::En, true);
            assert!(
                en.ends_with("We will tell you when it is back. The bank is upgrading."),
                "{en}"
            );
            let zh = incident.text(Language::ZhHans, true);
            assert!(zh.ends_with("恢复后我们会通知您。银行系统升级。"), "{zh}");
            // The status is not a message whose reader will be sent the end.
            assert!(
                incident
                    .text(Language::En, false)
                    .ends_with("This notice will say when it is back. The bank is upgrading.")
            );
            assert!(
                incident
                    .text(Language::ZhHans, false)
                    .ends_with("恢复后本页将及时更新。银行系统升级。")
            );
            assert!(!incident.over_text(Language::En).is_empty());
            assert!(!incident.over_text(Language::ZhHans).is_empty());
        }
    }
}

#[test]
fn a_declaration_reports_every_problem_at_once() {
    let input = IncidentInput {
        component: Component::Applications,
        channel: Some("unionpay".into()),
        impact: Impact::Unavailable,
        note: Note {
            en: Some(" ".into()),
            zh_hans: Some("x".repeat(301)),
        },
        expected_by: Some(now() - Duration::minutes(1)),
    };
    let Err(IncidentError::Invalid(found)) = Incident::declare("i".into(), input, "ops:amy", now())
    else {
        panic!("refused");
    };
    let fields: Vec<&str> = found.all().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        ["channel", "note.en", "note.zh-Hans", "expected_by"]
    );
    let far = IncidentInput {
        expected_by: Some(now() + Duration::days(8)),
        ..payouts(None)
    };
    assert!(Incident::declare("i".into(), far, "ops:amy", now()).is_err());
    let odd = payouts(Some("Union Pay"));
    assert_eq!(
        Incident::declare("i".into(), odd, "ops:amy", now())
            .unwrap_err()
            .code(),
        "validation.invalid_code"
    );
}

#[test]
fn an_incident_changes_while_it_lasts_and_ends_once() {
    let mut incident = Incident::declare("i-1".into(), payouts(None), "ops:amy", now()).unwrap();
    let later = now() + Duration::minutes(30);
    incident
        .change(
            IncidentChange {
                impact: Some(Impact::Unavailable),
                expected_by: Some(later + Duration::hours(3)),
                note: None,
            },
            later,
        )
        .unwrap();
    assert_eq!(
        (incident.impact, incident.revision, incident.updated_at),
        (Impact::Unavailable, 2, later)
    );
    incident.end(later).unwrap();
    assert!(!incident.is_open());
    assert_eq!(incident.end(later), Err(IncidentError::Ended));
    assert_eq!(
        incident
            .change(IncidentChange::default(), later)
            .unwrap_err()
            .code(),
        "conflict.incident_ended"
    );
}

#[test]
fn an_alert_raises_an_incident_for_its_channel_expected_back_within_the_rule_s_minutes() {
    let spec = IncidentSpec {
        component: Component::Payouts,
        impact: Impact::Degraded,
        expect_within_minutes: Some(90),
    };
    let incident = Incident::raised_by(
        "i-2".into(),
        &spec,
        Some("sandbox".into()),
        "a-1",
        "payout-failure-rate",
        now(),
    );
    assert_eq!(incident.channel.as_deref(), Some("sandbox"));
    assert_eq!(incident.expected_by, Some(now() + Duration::minutes(90)));
    assert_eq!(
        incident.source,
        Source::Alert {
            alert_id: "a-1".into(),
            rule: "payout-failure-rate".into()
        }
    );
    let service = IncidentSpec {
        component: Component::Service,
        ..spec
    };
    let incident = Incident::raised_by(
        "i-3".into(),
        &service,
        Some("sandbox".into()),
        "a-2",
        "r",
        now(),
    );
    assert_eq!(incident.channel, None, "only payouts name a channel");
}

#[test]
fn the_worst_open_incident_or_maintenance_says_how_the_service_stands() {
    let degraded = Incident::declare("i-1".into(), payouts(None), "ops:amy", now()).unwrap();
    let mut down = Incident::declare(
        "i-2".into(),
        IncidentInput {
            impact: Impact::Unavailable,
            ..payouts(None)
        },
        "ops:amy",
        now(),
    )
    .unwrap();
    assert_eq!(service_state([], false), ServiceState::Operational);
    assert_eq!(service_state([&degraded], false), ServiceState::Degraded);
    assert_eq!(service_state([&degraded], true), ServiceState::Maintenance);
    assert_eq!(
        service_state([&degraded, &down], true),
        ServiceState::Unavailable
    );
    down.end(now()).unwrap();
    assert_eq!(
        service_state([&down], false),
        ServiceState::Operational,
        "an ended incident counts for nothing"
    );
}
