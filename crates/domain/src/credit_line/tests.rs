use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
}

fn grant() -> (CreditLine, LineEvent) {
    CreditLine::grant(
        "line-1".into(),
        GrantInput {
            borrower_id: "b-42".into(),
            currency: "CNY".into(),
            limit_minor: 5_000_000,
            rate_tier: None,
            valid_from: None,
            valid_until: now() + Duration::days(365),
            actor: "ops:alice".into(),
            note: Some("first line".into()),
        },
        now(),
    )
    .unwrap()
}

#[test]
fn a_granted_line_is_open_for_its_whole_limit_until_it_expires() {
    let (line, event) = grant();
    assert_eq!(event.kind, LineEventKind::Granted);
    assert_eq!(
        (event.seq, event.limit_before_minor, event.limit_after_minor),
        (1, 0, 5_000_000)
    );
    assert_eq!(line.available_minor(now()), 5_000_000);
    assert_eq!(line.state(now()), LineState::Active);
    let expiry = now() + Duration::days(365);
    assert_eq!(line.state(expiry), LineState::Expired);
    assert_eq!(line.available_minor(expiry), 0);
    assert_eq!(line.can_hold(1, expiry), Err(Reason::LineExpired));
}

#[test]
fn holds_are_checked_against_what_is_left() {
    let (mut line, _) = grant();
    line.drawn_minor = 3_000_000;
    line.held_minor = 1_500_000;
    assert_eq!(line.available_minor(now()), 500_000);
    assert_eq!(line.can_hold(500_000, now()), Ok(()));
    assert_eq!(line.can_hold(500_001, now()), Err(Reason::LimitExceeded));
}

#[test]
fn the_limit_never_drops_below_what_is_used_and_every_change_is_logged() {
    let (mut line, first) = grant();
    line.drawn_minor = 2_000_000;
    let up = line
        .change_limit(8_000_000, "ops:bob".into(), None, first.seq, now())
        .unwrap();
    assert_eq!(
        (up.kind, up.seq, up.limit_before_minor, up.limit_after_minor),
        (LineEventKind::Increased, 2, 5_000_000, 8_000_000)
    );
    let err = line
        .change_limit(1_999_999, "ops:bob".into(), None, up.seq, now())
        .unwrap_err();
    assert_eq!(err.code(), "conflict.limit_below_usage");
    let down = line
        .change_limit(2_000_000, "ops:bob".into(), None, up.seq, now())
        .unwrap();
    assert_eq!(down.kind, LineEventKind::Decreased);
    assert_eq!(
        line.change_limit(2_000_000, "ops:bob".into(), None, down.seq, now())
            .unwrap_err()
            .code(),
        "validation.limit_unchanged"
    );
}

#[test]
fn a_frozen_line_refuses_drawdowns_with_its_reason_until_unfrozen() {
    let (mut line, first) = grant();
    let frozen = line
        .freeze(
            Reason::Overdue,
            Some(now() + Duration::days(7)),
            "risk:carol".into(),
            None,
            first.seq,
            now(),
        )
        .unwrap();
    assert_eq!(
        (frozen.kind, frozen.reason),
        (LineEventKind::Frozen, Some(Reason::Overdue))
    );
    assert_eq!(line.can_hold(1, now()), Err(Reason::Overdue));
    assert_eq!(
        line.freeze(Reason::Overdue, None, "risk:carol".into(), None, 2, now())
            .unwrap_err(),
        LineError::Frozen
    );
    // A risk reason is not shown to the borrower as such.
    let (mut other, _) = grant();
    other
        .freeze(Reason::Blacklist, None, "risk:carol".into(), None, 1, now())
        .unwrap();
    assert_eq!(other.blocked_by(now()), Some(Reason::LineFrozen));

    // Kept frozen after a review: logged with the freeze's reason, still refusing.
    let kept = line
        .keep_frozen(
            "risk:carol".into(),
            Some("until repaid".into()),
            frozen.seq,
            now(),
        )
        .unwrap();
    assert_eq!(
        (kept.kind, kept.reason, kept.note.as_deref()),
        (
            LineEventKind::FreezeKept,
            Some(Reason::Overdue),
            Some("until repaid")
        )
    );
    assert_eq!(line.can_hold(1, now()), Err(Reason::Overdue));
    let thawed = line
        .unfreeze("risk:carol".into(), None, kept.seq, now())
        .unwrap();
    assert_eq!(thawed.kind, LineEventKind::Unfrozen);
    assert_eq!(line.can_hold(1, now()), Ok(()));
    assert_eq!(
        line.unfreeze("x".into(), None, thawed.seq, now())
            .unwrap_err(),
        LineError::NotFrozen
    );
    assert_eq!(
        line.keep_frozen("x".into(), None, thawed.seq, now())
            .unwrap_err(),
        LineError::NotFrozen
    );
    let err = line
        .freeze(Reason::PaidOff, None, "x".into(), None, thawed.seq, now())
        .unwrap_err();
    assert_eq!(err.code(), "validation.reason_not_allowed");
}

#[test]
fn a_closed_line_stays_closed() {
    let (mut line, first) = grant();
    line.close(
        Reason::LineClosed,
        "ops:alice".into(),
        None,
        first.seq,
        now(),
    )
    .unwrap();
    assert_eq!(line.can_hold(1, now()), Err(Reason::LineClosed));
    assert_eq!(
        line.change_limit(1, "x".into(), None, 2, now())
            .unwrap_err(),
        LineError::Closed
    );
    assert_eq!(
        line.unfreeze("x".into(), None, 2, now()).unwrap_err(),
        LineError::Closed
    );
}

#[test]
fn bad_grants_are_refused_field_by_field() {
    let err = CreditLine::grant(
        "l".into(),
        GrantInput {
            borrower_id: "has space".into(),
            currency: "EUR".into(),
            limit_minor: 0,
            rate_tier: None,
            valid_from: None,
            valid_until: now() - Duration::days(1),
            actor: "".into(),
            note: Some("x".repeat(501)),
        },
        now(),
    )
    .unwrap_err();
    let LineError::Invalid(v) = err else {
        panic!("{err:?}")
    };
    let codes: Vec<_> = v.all().iter().map(|v| v.code).collect();
    assert_eq!(
        codes,
        [
            "validation.invalid_borrower_id",
            "validation.unsupported_currency",
            "validation.amount_out_of_range",
            "validation.validity_window_invalid",
            "validation.invalid_actor",
            "validation.invalid_note",
        ]
    );
}

#[test]
fn a_freeze_with_an_end_lifts_itself_then_and_not_before() {
    let (mut line, _) = grant();
    let until = now() + Duration::days(3);
    line.freeze(
        Reason::Overdue,
        Some(until),
        "risk:r".into(),
        None,
        1,
        now(),
    )
    .unwrap();
    assert!(
        line.lift_freeze_at_end("system".into(), 2, until - Duration::seconds(1))
            .unwrap()
            .is_none()
    );
    let lifted = line
        .lift_freeze_at_end("system".into(), 2, until)
        .unwrap()
        .unwrap();
    assert_eq!((lifted.kind, lifted.seq), (LineEventKind::Unfrozen, 3));
    assert_eq!(line.state(until), LineState::Active);
    assert!(
        line.lift_freeze_at_end("system".into(), 3, until)
            .unwrap()
            .is_none(),
        "once"
    );
    line.freeze(Reason::Overdue, None, "risk:r".into(), None, 3, until)
        .unwrap();
    assert!(
        line.lift_freeze_at_end("system".into(), 4, until + Duration::days(999))
            .unwrap()
            .is_none(),
        "a freeze without an end waits for a person"
    );
}

#[test]
fn expiry_is_written_to_the_log_once_the_validity_ends() {
    let (mut line, _) = grant();
    let end = now() + Duration::days(365);
    assert!(
        line.record_expiry("system".into(), 1, end - Duration::seconds(1))
            .is_none()
    );
    let expired = line.record_expiry("system".into(), 1, end).unwrap();
    assert_eq!(
        (expired.kind, expired.reason, expired.limit_after_minor),
        (LineEventKind::Expired, Some(Reason::LineExpired), 5_000_000)
    );
    let (mut closed, _) = grant();
    closed
        .close(Reason::LimitExceeded, "ops:a".into(), None, 1, now())
        .unwrap();
    assert!(closed.record_expiry("system".into(), 2, end).is_none());
}
