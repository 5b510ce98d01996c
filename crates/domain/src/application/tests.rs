use chrono::{Duration, TimeZone, Utc};

use super::*;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

fn offer() -> Offer {
    Offer {
        limit_minor: 5_000_000,
        currency: "CNY".into(),
        valid_days: 365,
        rate_tier: None,
    }
}

fn referred() -> Application {
    let mut a = Application::start("a-1".into(), "m".into(), "borrower:b", t0());
    assert!(a.submit("b-1".into(), None, "borrower:b", t0()).unwrap());
    a.verified("sms_otp", "borrower:b", t0()).unwrap();
    a.assessed(
        Assessment::Refer("score in the refer band".into()),
        Some("d-1".into()),
        t0(),
    )
    .unwrap();
    a
}

#[test]
fn the_policy_decides_an_application_being_assessed_and_nothing_else() {
    let assessing = || {
        let mut a = Application::start("a-1".into(), "m".into(), "borrower:b", t0());
        let policy = PolicyRef {
            code: "consumer".into(),
            version: 2,
        };
        a.submit("b-1".into(), Some(policy.clone()), "borrower:b", t0())
            .unwrap();
        assert_eq!(a.policy, Some(policy));
        a.verified("sms_otp", "borrower:b", t0()).unwrap();
        assert_eq!(a.status, ApplicationStatus::Assessing);
        a
    };
    let mut approved = assessing();
    approved
        .assessed(Assessment::Approve(offer()), Some("d-1".into()), t0())
        .unwrap();
    assert_eq!(approved.status.name(), "approved");
    assert_eq!(approved.decision_id.as_deref(), Some("d-1"));
    assert_eq!(approved.history.last().unwrap().actor, "system:lendcore");
    assert!(
        approved
            .assessed(Assessment::Refer("again".into()), None, t0())
            .is_err()
    );

    let mut declined = assessing();
    declined
        .assessed(
            Assessment::Decline(vec![Reason::ScoreTooLow]),
            Some("d-2".into()),
            t0(),
        )
        .unwrap();
    assert_eq!(declined.status.reasons(), vec![Reason::ScoreTooLow]);
    assert!(
        assessing()
            .assessed(Assessment::Decline(vec![]), None, t0())
            .is_err()
    );

    let mut documents = assessing();
    documents
        .assessed(
            Assessment::RequestDocuments(vec![Reason::LargeAmount]),
            None,
            t0(),
        )
        .unwrap();
    assert_eq!(documents.status.name(), "info_requested");

    let mut referred = assessing();
    referred
        .assessed(
            Assessment::Refer("the bureau did not answer".into()),
            None,
            t0(),
        )
        .unwrap();
    let step = referred.history.last().unwrap();
    assert_eq!(
        (step.state.as_str(), step.note.as_deref()),
        ("referred", Some("the bureau did not answer"))
    );
}

#[test]
fn a_draft_goes_through_verification_to_an_underwriter_and_an_offer() {
    let mut a = referred();
    let states: Vec<&str> = a.history.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(
        states,
        ["draft", "submitted", "verifying", "assessing", "referred"]
    );
    assert_eq!(
        a.deadline,
        Some(t0() + Duration::days(10)),
        "an underwriter has a deadline too"
    );
    a.decide(
        Decision::Approve(offer()),
        "ops:rita",
        Some("good file".into()),
        t0(),
    )
    .unwrap();
    assert_eq!(
        (a.status.name(), a.deadline),
        ("approved", Some(t0() + Duration::days(14)))
    );
    a.accept("line-1".into(), "borrower:b", t0()).unwrap();
    assert_eq!(
        (a.status.name(), a.deadline, a.line_id.as_deref()),
        ("accepted", None, Some("line-1"))
    );
    assert!(
        a.withdraw("borrower:b", t0()).is_err(),
        "an ended application stays ended"
    );
}

#[test]
fn submitting_twice_changes_nothing_and_an_ended_one_cannot_be_submitted() {
    let mut a = Application::start("a-1".into(), "m".into(), "borrower:b", t0());
    assert!(a.submit("b-1".into(), None, "borrower:b", t0()).unwrap());
    let after_first = a.clone();
    assert!(
        !a.submit("b-1".into(), None, "borrower:b", t0() + Duration::hours(1))
            .unwrap()
    );
    assert_eq!(a, after_first);
    a.withdraw("borrower:b", t0()).unwrap();
    assert_eq!(
        a.submit("b-1".into(), None, "borrower:b", t0())
            .unwrap_err()
            .code(),
        "conflict.application_state"
    );
}

#[test]
fn information_requested_goes_back_to_the_underwriter_once_answered() {
    let mut a = referred();
    a.decide(
        Decision::RequestInfo(vec![Reason::LargeAmount]),
        "ops:rita",
        None,
        t0(),
    )
    .unwrap();
    assert_eq!(a.status.reasons(), [Reason::LargeAmount]);
    a.saved(t0() + Duration::days(1)).unwrap();
    assert_eq!(
        a.deadline,
        Some(t0() + Duration::days(15)),
        "a save restarts the wait"
    );
    assert!(a.submit("b-1".into(), None, "borrower:b", t0()).unwrap());
    assert_eq!(a.status, ApplicationStatus::Referred);
    let empty = a
        .clone()
        .decide(Decision::Decline(vec![]), "ops:rita", None, t0())
        .unwrap_err();
    assert_eq!(empty.code(), "validation.reason_required");
    let bad_offer = a
        .clone()
        .decide(
            Decision::Approve(Offer {
                limit_minor: 0,
                ..offer()
            }),
            "ops:rita",
            None,
            t0(),
        )
        .unwrap_err();
    assert_eq!(bad_offer.code(), "validation.amount_out_of_range");
    a.decide(
        Decision::Decline(vec![Reason::ScoreTooLow]),
        "ops:rita",
        None,
        t0(),
    )
    .unwrap();
    assert!(a.status.is_final());
}

#[test]
fn every_wait_expires_with_its_reason_and_only_at_its_own_deadline() {
    let mut draft = Application::start("a-1".into(), "m".into(), "borrower:b", t0());
    let first_deadline = draft.deadline.unwrap();
    draft.saved(t0() + Duration::days(5)).unwrap();
    assert!(
        !draft.expire("draft", first_deadline, first_deadline),
        "saved since: a new deadline"
    );
    let deadline = draft.deadline.unwrap();
    assert!(
        !draft.expire("draft", deadline, deadline - Duration::seconds(1)),
        "not yet"
    );
    assert!(draft.expire("draft", deadline, deadline));
    assert_eq!(
        draft.status,
        ApplicationStatus::Expired {
            reason: Reason::UserAbandoned
        }
    );

    let mut approved = referred();
    approved
        .decide(Decision::Approve(offer()), "ops:rita", None, t0())
        .unwrap();
    let deadline = approved.deadline.unwrap();
    assert!(
        !approved.expire("referred", deadline, deadline),
        "another state's timer"
    );
    assert!(approved.expire("approved", deadline, deadline));
    assert_eq!(approved.status.reasons(), [Reason::OfferExpired]);
    assert_eq!(approved.history.last().unwrap().actor, "system:lendcore");
}

#[test]
fn a_form_merges_step_by_step_and_names_what_is_missing() {
    let mut form = Form {
        name: Some("张三".into()),
        ..Form::default()
    };
    form.merge(Form {
        requested_limit_minor: Some(1_000_000),
        ..Form::default()
    });
    assert_eq!(form.name.as_deref(), Some("张三"), "kept");
    let missing = form.check_complete().unwrap_err();
    let fields: Vec<&str> = missing.all().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "resident_id",
            "mobile",
            "monthly_income_minor",
            "bank_account"
        ]
    );
    let bad = Form {
        monthly_income_minor: Some(-1),
        purpose: Some(" ".into()),
        ..Form::default()
    };
    assert_eq!(bad.check_step().unwrap_err().all().len(), 2);
}
