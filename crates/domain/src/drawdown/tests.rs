use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
}

fn quoted() -> DrawdownStatus {
    DrawdownStatus::Quoted {
        expires_at: now() + Duration::minutes(15),
    }
}

#[test]
fn a_confirmation_in_time_on_an_open_line_goes_ahead() {
    let (next, outcome) = quoted()
        .confirm(now(), Ok(()), RiskCheck::Pass, None)
        .unwrap();
    assert_eq!(
        (next, outcome),
        (DrawdownStatus::Disbursing, Confirmation::Proceed)
    );
}

#[test]
fn a_confirmation_during_maintenance_is_held_and_queued_then_resumes() {
    let until = now() + Duration::hours(2);
    let (next, outcome) = quoted()
        .confirm(now(), Ok(()), RiskCheck::Pass, Some(until))
        .unwrap();
    assert_eq!(
        (next.clone(), outcome),
        (
            DrawdownStatus::QueuedForMaintenance { until },
            Confirmation::Proceed
        )
    );
    assert_eq!(next.terminal_reason(), None, "queued is not an end");
    assert!(next.paid_out().is_err(), "not paid out before it resumes");
    assert_eq!(next.resume().unwrap(), DrawdownStatus::Disbursing);
    let (refused, _) = quoted()
        .confirm(now(), Err(Reason::LineFrozen), RiskCheck::Pass, Some(until))
        .unwrap();
    assert_eq!(
        refused,
        DrawdownStatus::Refused {
            reason: Reason::LineFrozen
        },
        "maintenance does not hide a refusal"
    );
    assert!(DrawdownStatus::Disbursing.resume().is_err());
}

#[test]
fn a_late_confirmation_or_a_refusing_line_ends_the_drawdown_with_a_reason() {
    let late = now() + Duration::minutes(15);
    let (next, outcome) = quoted()
        .confirm(late, Ok(()), RiskCheck::Pass, None)
        .unwrap();
    assert_eq!(
        next,
        DrawdownStatus::Expired {
            reason: Reason::ConfirmationTimedOut
        }
    );
    assert_eq!(outcome, Confirmation::Ended(Reason::ConfirmationTimedOut));
    let (next, _) = quoted()
        .confirm(now(), Err(Reason::LineFrozen), RiskCheck::Pass, None)
        .unwrap();
    assert_eq!(
        next,
        DrawdownStatus::Refused {
            reason: Reason::LineFrozen
        }
    );
    assert_eq!(
        quoted().expire(late).unwrap().terminal_reason(),
        Some(Reason::ConfirmationTimedOut)
    );
    assert!(quoted().expire(now()).is_err(), "not before its time");
}

#[test]
fn a_payout_ends_active_or_failed_possibly_through_manual_review() {
    let disbursing = DrawdownStatus::Disbursing;
    assert_eq!(disbursing.paid_out().unwrap(), DrawdownStatus::Active);
    let review = disbursing.to_manual_review(Reason::SyncFailure).unwrap();
    assert_eq!(
        review.terminal_reason(),
        None,
        "manual review is not an end"
    );
    assert_eq!(
        review.payout_failed(Reason::AccountInvalid).unwrap(),
        DrawdownStatus::Failed {
            reason: Reason::AccountInvalid
        }
    );
    assert_eq!(review.paid_out().unwrap(), DrawdownStatus::Active);
    let closed = DrawdownStatus::Active.close(Reason::PaidOff).unwrap();
    assert_eq!(closed.terminal_reason(), Some(Reason::PaidOff));
}

#[test]
fn terminal_states_take_no_further_step() {
    let ends = [
        DrawdownStatus::Expired {
            reason: Reason::ConfirmationTimedOut,
        },
        DrawdownStatus::Refused {
            reason: Reason::LimitExceeded,
        },
        DrawdownStatus::Failed {
            reason: Reason::AccountInvalid,
        },
        DrawdownStatus::Closed {
            reason: Reason::PaidOff,
        },
    ];
    for end in ends {
        assert!(
            end.terminal_reason().is_some(),
            "{end:?} carries its reason"
        );
        assert!(end.confirm(now(), Ok(()), RiskCheck::Pass, None).is_err());
        assert!(end.paid_out().is_err());
        assert!(end.payout_failed(Reason::ChannelUnavailable).is_err());
        assert!(end.to_manual_review(Reason::SyncFailure).is_err());
        assert!(end.close(Reason::PaidOff).is_err());
        assert!(end.expire(now() + Duration::days(1)).is_err());
        assert!(end.resume().is_err());
    }
}

#[test]
fn lateness_is_kept_by_month_for_a_year() {
    let day = |y: i32, m: u32, d: u32| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let mut s = Servicing::default();
    s.note_days_past_due(day(2025, 1, 10), 0);
    assert!(s.worst_by_month.is_empty(), "on time is not lateness");
    s.note_days_past_due(day(2025, 1, 10), 12);
    s.note_days_past_due(day(2025, 1, 11), 13);
    s.note_days_past_due(day(2025, 3, 2), 4);
    assert_eq!(s.worst_by_month, vec![(202501, 13), (202503, 4)]);
    assert_eq!(s.worst_days_past_due_in_year(day(2025, 12, 31)), 13);
    assert_eq!(
        s.worst_days_past_due_in_year(day(2026, 1, 1)),
        4,
        "January 2025 is past"
    );
    assert_eq!(s.worst_days_past_due_in_year(day(2026, 3, 1)), 0);
    for month in 1..=12 {
        s.note_days_past_due(day(2026, month, 5), month);
    }
    assert_eq!(s.worst_by_month.len(), LATE_MONTHS_KEPT);
    assert_eq!(s.worst_by_month[0], (202503, 4));
}

#[test]
fn the_risk_check_holds_or_declines_a_confirmation_and_an_operator_settles_a_hold() {
    let (next, outcome) = quoted()
        .confirm(now(), Ok(()), RiskCheck::Hold(Reason::Velocity), None)
        .unwrap();
    assert_eq!(
        (next.clone(), outcome),
        (
            DrawdownStatus::HeldForReview {
                reason: Reason::Velocity
            },
            Confirmation::Held(Reason::Velocity)
        )
    );
    assert_eq!(next.reason(), Some(Reason::Velocity));
    assert_eq!(
        next.terminal_reason(),
        None,
        "a hold waits; it has not ended"
    );
    assert_eq!(next.release(None), Ok(DrawdownStatus::Disbursing));
    let until = now() + Duration::hours(1);
    assert_eq!(
        next.release(Some(until)),
        Ok(DrawdownStatus::QueuedForMaintenance { until })
    );
    assert_eq!(
        next.decline_held(Reason::AbnormalPattern),
        Ok(DrawdownStatus::Refused {
            reason: Reason::AbnormalPattern
        })
    );
    assert!(DrawdownStatus::Disbursing.release(None).is_err());

    let (declined, ended) = quoted()
        .confirm(now(), Ok(()), RiskCheck::Decline(Reason::Overdue), None)
        .unwrap();
    assert_eq!(
        (declined, ended),
        (
            DrawdownStatus::Refused {
                reason: Reason::Overdue
            },
            Confirmation::Ended(Reason::Overdue)
        )
    );
    let (frozen, _) = quoted()
        .confirm(
            now(),
            Err(Reason::LineFrozen),
            RiskCheck::Hold(Reason::Velocity),
            None,
        )
        .unwrap();
    assert_eq!(
        frozen,
        DrawdownStatus::Refused {
            reason: Reason::LineFrozen
        },
        "the line's refusal comes first"
    );
}
