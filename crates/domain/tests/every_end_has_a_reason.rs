//! Invariant 5 of DESIGN §4, walked: from the start of each aggregate, every transition its
//! domain allows is taken, and every state reached that ends or blocks something must say why
//! (a reason code from the catalogue). A new state or transition without one fails here.

use chrono::{Duration, TimeZone, Utc};
use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::{CreditLine, GrantInput, LineState, LineStatus};
use lendcore_domain::drawdown::{DrawdownStatus, RiskCheck};
use lendcore_domain::reasons::Reason;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
}

#[test]
fn every_drawdown_state_is_reachable_and_every_end_has_a_reason() {
    // Walk every transition from the start and collect what is reached.
    let mut seen = std::collections::BTreeSet::new();
    let mut frontier = vec![DrawdownStatus::Quoted {
        expires_at: now() + Duration::minutes(15),
    }];
    let later = now() + Duration::days(1);
    while let Some(state) = frontier.pop() {
        if !seen.insert(state.name()) {
            continue;
        }
        if ["expired", "refused", "failed", "closed"].contains(&state.name()) {
            assert!(state.terminal_reason().is_some());
        }
        let mut next = Vec::new();
        next.extend(
            state
                .confirm(now(), Ok(()), RiskCheck::Pass, None)
                .ok()
                .map(|(s, _)| s),
        );
        next.extend(
            state
                .confirm(now(), Ok(()), RiskCheck::Pass, Some(later))
                .ok()
                .map(|(s, _)| s),
        );
        next.extend(
            state
                .confirm(now(), Err(Reason::LineFrozen), RiskCheck::Pass, None)
                .ok()
                .map(|(s, _)| s),
        );
        next.extend(
            state
                .confirm(now(), Ok(()), RiskCheck::Hold(Reason::Velocity), None)
                .ok()
                .map(|(s, _)| s),
        );
        next.extend(state.release(None).ok());
        next.extend(state.decline_held(Reason::Velocity).ok());
        next.extend(state.resume().ok());
        next.extend(state.expire(later).ok());
        next.extend(state.paid_out().ok());
        next.extend(state.payout_failed(Reason::AccountInvalid).ok());
        next.extend(state.to_manual_review(Reason::SyncFailure).ok());
        next.extend(state.close(Reason::PaidOff).ok());
        frontier.extend(next);
    }
    let all = [
        "quoted",
        "queued_for_maintenance",
        "held_for_review",
        "disbursing",
        "manual_review",
        "active",
        "expired",
        "refused",
        "failed",
        "closed",
    ];
    assert_eq!(seen.len(), all.len(), "{seen:?}");
}

#[test]
fn every_credit_line_state_that_blocks_drawing_says_why() {
    let (granted, _) = CreditLine::grant(
        "line-1".into(),
        GrantInput {
            borrower_id: "b-1".into(),
            currency: "CNY".into(),
            limit_minor: 1_000_000,
            rate_tier: None,
            valid_from: None,
            valid_until: now() + Duration::days(30),
            actor: "ops:a".into(),
            note: None,
        },
        now(),
    )
    .unwrap();
    let name = |l: &CreditLine| match &l.status {
        LineStatus::Active => "active",
        LineStatus::Frozen { until: Some(_), .. } => "frozen_until",
        LineStatus::Frozen { until: None, .. } => "frozen",
        LineStatus::Closed { .. } => "closed",
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut frontier = vec![granted];
    let instants = [now(), now() + Duration::days(3), now() + Duration::days(31)];
    while let Some(line) = frontier.pop() {
        if !seen.insert(name(&line)) {
            continue;
        }
        for at in instants {
            let state = line.state(at);
            match state {
                LineState::Active => assert_eq!(line.blocked_by(at), None),
                LineState::Frozen
                | LineState::Expired
                | LineState::Closed
                | LineState::NotYetValid => {
                    assert!(
                        line.blocked_by(at).is_some(),
                        "{state:?} blocks without a reason"
                    )
                }
            }
        }
        let actor = || "ops:a".to_owned();
        let mut next = Vec::new();
        let mut step = |f: &dyn Fn(&mut CreditLine) -> bool| {
            let mut copy = line.clone();
            if f(&mut copy) {
                next.push(copy);
            }
        };
        step(&|l| {
            l.freeze(Reason::Overdue, None, actor(), None, 1, now())
                .is_ok()
        });
        step(&|l| {
            l.freeze(
                Reason::Overdue,
                Some(now() + Duration::days(2)),
                actor(),
                None,
                1,
                now(),
            )
            .is_ok()
        });
        step(&|l| l.unfreeze(actor(), None, 1, now()).is_ok());
        step(&|l| {
            matches!(
                l.lift_freeze_at_end(actor(), 1, now() + Duration::days(3)),
                Ok(Some(_))
            )
        });
        step(&|l| {
            l.close(Reason::LimitExceeded, actor(), None, 1, now())
                .is_ok()
        });
        step(&|l| l.change_limit(2_000_000, actor(), None, 1, now()).is_ok());
        frontier.extend(next);
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn every_application_state_is_reachable_and_every_end_but_acceptance_has_a_reason() {
    use lendcore_domain::application::{
        Application, ApplicationStatus, Assessment, Decision, Offer,
    };

    let offer = Offer {
        limit_minor: 1_000_000,
        currency: "CNY".into(),
        valid_days: 30,
        rate_tier: None,
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut frontier = vec![Application::start("a".into(), "o".into(), "b", now())];
    while let Some(app) = frontier.pop() {
        if !seen.insert(app.status.name()) {
            continue;
        }
        // A waiting state has a deadline; an end other than acceptance names its reason.
        assert_eq!(
            app.status.wait().is_some(),
            app.deadline.is_some(),
            "{}",
            app.status.name()
        );
        if app.status.is_final() && app.status != ApplicationStatus::Accepted {
            assert!(
                !app.status.reasons().is_empty(),
                "{} ends without a reason",
                app.status.name()
            );
        }
        let mut next = Vec::new();
        let mut try_step = |step: &dyn Fn(&mut Application) -> bool| {
            let mut candidate = app.clone();
            if step(&mut candidate) {
                next.push(candidate);
            }
        };
        try_step(&|a| a.submit("b-1".into(), None, "b", now()).unwrap_or(false));
        try_step(&|a| a.verified("sms_otp", "b", now()).is_ok());
        try_step(&|a| {
            a.assessed(Assessment::Approve(offer.clone()), None, now())
                .is_ok()
        });
        try_step(&|a| {
            a.assessed(Assessment::Decline(vec![Reason::ScoreTooLow]), None, now())
                .is_ok()
        });
        try_step(&|a| {
            a.assessed(
                Assessment::RequestDocuments(vec![Reason::LargeAmount]),
                None,
                now(),
            )
            .is_ok()
        });
        try_step(&|a| {
            a.assessed(Assessment::Refer("policy".into()), None, now())
                .is_ok()
        });
        try_step(&|a| {
            a.decide(Decision::Approve(offer.clone()), "ops", None, now())
                .is_ok()
        });
        try_step(&|a| {
            a.decide(
                Decision::Decline(vec![Reason::ScoreTooLow]),
                "ops",
                None,
                now(),
            )
            .is_ok()
        });
        try_step(&|a| {
            a.decide(
                Decision::RequestInfo(vec![Reason::LargeAmount]),
                "ops",
                None,
                now(),
            )
            .is_ok()
        });
        try_step(&|a| a.accept("line".into(), "b", now()).is_ok());
        try_step(&|a| a.withdraw("b", now()).is_ok());
        try_step(&|a| match a.deadline {
            Some(deadline) => {
                let state = a.status.name();
                a.expire(state, deadline, deadline)
            }
            None => false,
        });
        frontier.extend(next);
    }
    let all = [
        "draft",
        "verifying",
        "assessing",
        "referred",
        "info_requested",
        "approved",
        "declined",
        "accepted",
        "withdrawn",
        "expired",
    ];
    for state in all {
        assert!(
            seen.contains(state),
            "{state} is never reached; reached {seen:?}"
        );
    }
}
