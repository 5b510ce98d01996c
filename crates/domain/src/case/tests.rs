use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn opened() -> Case {
    let (case, first) = Case::open(
        NewCase {
            id: "c-1".into(),
            borrower_id: "b-1".into(),
            subject: Subject {
                kind: SubjectKind::Drawdown,
                id: "d-1".into(),
            },
            reason: Some(Reason::AccountInvalid),
            author: Author::Borrower,
            text: "  My drawdown failed. Why?  ".into(),
        },
        now(),
        Duration::hours(4),
    )
    .unwrap();
    assert_eq!(
        (first.seq, first.body.as_str(), first.internal),
        (1, "My drawdown failed. Why?", false)
    );
    case
}

#[test]
fn a_case_waits_for_support_by_its_deadline_and_an_answer_meets_it() {
    let mut case = opened();
    assert_eq!(
        (case.status, case.respond_by, case.opened_by.as_str()),
        (
            CaseStatus::WaitingForSupport,
            Some(now() + Duration::hours(4)),
            "borrower:b-1"
        )
    );
    let note = case
        .support_writes(
            "ops:li",
            "Checking with the bank.",
            true,
            now() + Duration::hours(1),
        )
        .unwrap();
    assert!(note.internal);
    assert_eq!(
        case.status,
        CaseStatus::WaitingForSupport,
        "a note is not an answer"
    );
    let answer = case
        .support_writes(
            "ops:li",
            "Your account number was refused; update it and draw again.",
            false,
            now() + Duration::hours(2),
        )
        .unwrap();
    assert_eq!(
        (answer.seq, case.messages, case.status, case.respond_by),
        (3, 3, CaseStatus::WaitingForBorrower, None)
    );
    let again = case
        .borrower_writes(
            "Done, thanks.",
            now() + Duration::hours(3),
            Duration::hours(4),
        )
        .unwrap();
    assert_eq!(
        (again.seq, case.status, case.respond_by),
        (
            4,
            CaseStatus::WaitingForSupport,
            Some(now() + Duration::hours(7))
        )
    );
}

#[test]
fn a_missed_deadline_falls_due_once_and_only_the_deadline_still_owed() {
    let mut case = opened();
    let deadline = now() + Duration::hours(4);
    assert!(
        !case.fall_due(deadline, deadline - Duration::minutes(1)),
        "not yet"
    );
    assert!(case.still_due(deadline));
    assert!(case.fall_due(deadline, deadline));
    assert_eq!(case.overdue_since, Some(deadline));
    assert!(
        !case.fall_due(deadline, deadline + Duration::minutes(5)),
        "once"
    );
    case.support_writes(
        "ops:li",
        "Sorry for the wait.",
        false,
        deadline + Duration::hours(1),
    )
    .unwrap();
    assert_eq!(case.overdue_since, None);
    assert!(
        !case.still_due(deadline) && !case.fall_due(deadline, deadline + Duration::hours(2)),
        "answered: that deadline is met"
    );
    case.borrower_writes(
        "Still broken.",
        deadline + Duration::hours(2),
        Duration::hours(4),
    )
    .unwrap();
    assert!(!case.still_due(deadline), "a new question, a new deadline");
}

#[test]
fn a_resolved_case_takes_no_answer_and_reopens_when_its_borrower_writes_in_time() {
    let mut case = opened();
    case.resolve(
        "ops:li",
        "Paid out after the account was fixed.",
        now() + Duration::hours(1),
    )
    .unwrap();
    assert_eq!((case.status, case.respond_by), (CaseStatus::Resolved, None));
    assert_eq!(
        case.support_writes("ops:li", "More?", false, now() + Duration::hours(2))
            .unwrap_err(),
        CaseError::Resolved
    );
    assert!(
        case.support_writes(
            "ops:li",
            "For the record.",
            true,
            now() + Duration::hours(2)
        )
        .is_ok(),
        "a note still may be added"
    );
    assert_eq!(
        case.resolve("ops:li", "Again", now()).unwrap_err().code(),
        "conflict.case_resolved"
    );
    let mut late = case.clone();
    assert_eq!(
        late.borrower_writes("Hello?", now() + Duration::days(15), Duration::hours(4))
            .unwrap_err()
            .code(),
        "conflict.case_closed"
    );
    case.borrower_writes(
        "It happened again.",
        now() + Duration::days(2),
        Duration::hours(4),
    )
    .unwrap();
    assert_eq!(
        (case.status, case.resolved_at),
        (CaseStatus::WaitingForSupport, None)
    );
}

#[test]
fn a_message_is_one_to_two_thousand_characters_with_only_line_breaks_and_tabs() {
    assert_eq!(body(" a\nb\tc ").unwrap(), "a\nb\tc");
    for bad in ["", "   ", "a\u{0}b", &"x".repeat(MAX_BODY_CHARS + 1)] {
        assert_eq!(
            body(bad).unwrap_err().first().code,
            "validation.invalid_text",
            "{bad:?}"
        );
    }
    assert!(
        body(&"字".repeat(MAX_BODY_CHARS)).is_ok(),
        "characters, not bytes"
    );
}
