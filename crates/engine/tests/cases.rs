//! Support cases on both stores: a borrower whose drawdown the channel refused opens a case
//! about it from the refusal; support is reminded before the deadline and, when it passes
//! unanswered, the default alert rule fires; support's answer reaches the borrower by SMS (its
//! internal note never does), the case shows in the loan's timeline, and a resolved case
//! reopens when its borrower writes again. Nobody opens a case about another's drawdown.

use std::sync::Arc;

use chrono::Duration;
use lendcore_domain::case::{CaseStatus, Subject, SubjectKind};
use lendcore_domain::product::ProductCode;
use lendcore_domain::reasons::{Language, Reason};
use lendcore_engine::cases::{self, Actor};
use lendcore_engine::drawdowns::{self, DrawdownRequest};
use lendcore_engine::timeline::{self, EventKind, Reader};
use lendcore_engine::{Clock, alerts};
use lendcore_store::Store;
use lendcore_testkit::store_test;

mod common;

async fn world(store: Arc<dyn Store>) -> common::World {
    common::world(store, |runner| runner.register(cases::DueHandler)).await
}

store_test! {
    async fn a_case_opened_from_a_refused_drawdown_is_answered_and_alerts_when_its_deadline_passes(db: &TestDb) {
        let w = world(db.store.clone()).await;
        alerts::install_defaults(&w.engine).await.unwrap();
        let (borrower, line) = w.borrower("13822220001", "110105194912310011", Language::En).await;
        let line_of_borrower = line.clone();
        let (stranger, _) = w.borrower("13822220002", "110105194912310038", Language::En).await;
        let request = DrawdownRequest {
            line_id: line, product: ProductCode::parse("cash").unwrap(), amount_minor: 100_000,
            term: 3, split: None, account: "acct-1~reject:channel.account_invalid".into(),
        };
        let quoted = drawdowns::quote(&w.engine, request, None).await.unwrap().into_inner();
        let drawdown = drawdowns::confirm(&w.engine, &quoted.confirmation_token, None).await.unwrap().into_inner().drawdown.id;
        w.work().await;
        let ended = drawdowns::get(&w.engine, &drawdown, Language::En).await.unwrap();
        assert_eq!(ended.drawdown.status.reason(), Some(Reason::AccountInvalid), "refused by the channel");
        let before = w.texts("13822220001").len();

        // Get help, from the refusal.
        let about = Subject { kind: SubjectKind::Drawdown, id: drawdown.clone() };
        let not_theirs = cases::open(&w.engine, &stranger, &Actor::Borrower, about.clone(), None, "Whose is this?", None).await.unwrap_err();
        assert_eq!(not_theirs.code(), "not_found.case_subject");
        let opened = cases::open(&w.engine, &borrower, &Actor::Borrower, about, Some(Reason::AccountInvalid),
            "My drawdown did not go through. What do I do?", None).await.unwrap().into_inner();
        let case = opened.case.id.clone();
        let deadline = w.clock.now() + Duration::hours(4);
        assert_eq!((opened.case.status, opened.case.respond_by), (CaseStatus::WaitingForSupport, Some(deadline)));
        w.work().await;
        let told = w.texts("13822220001");
        assert_eq!(told.len(), before + 1);
        assert!(told[before].starts_with("We received your request and will answer by "), "{told:?}");

        // A note between staff: the borrower hears nothing and never sees it.
        let support = Actor::Support("ops:li".into());
        cases::write(&w.engine, &borrower, &case, &support, "Looks like a typo in the account.", true, None).await.unwrap();
        w.work().await;
        assert_eq!(w.texts("13822220001").len(), before + 1);
        let theirs = cases::get(&w.engine, &borrower, &case, &Actor::Borrower).await.unwrap();
        assert_eq!(theirs.thread.len(), 1, "no internal note for the borrower");
        assert_eq!(cases::get(&w.engine, &borrower, &case, &support).await.unwrap().thread.len(), 2);
        assert_eq!(cases::get(&w.engine, &stranger, &case, &Actor::Borrower).await.unwrap_err().code(), "not_found.case");

        // Reminded at three hours; at four, overdue, and the default rule fires.
        w.clock.advance(Duration::hours(3));
        w.work().await;
        w.clock.advance(Duration::hours(1));
        w.work().await;
        let overdue = cases::get(&w.engine, &borrower, &case, &support).await.unwrap();
        assert_eq!(overdue.case.overdue_since, Some(w.clock.now()));
        let mut read = db.store.begin_read().await.unwrap();
        let topics: Vec<String> = read.outbox_for("support_case", &case).await.unwrap().into_iter().map(|e| e.topic).collect();
        assert_eq!(topics, ["case.opened", "case.noted", "case.due_soon", "case.overdue"]);
        drop(read);
        lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();
        let evaluated = alerts::evaluate(&w.engine).await.unwrap();
        assert_eq!(evaluated.fired, [("support-case-overdue".to_owned(), String::new())]);

        // Support answers: the borrower is sent it; the deadline is met.
        let answered = cases::write(&w.engine, &borrower, &case, &support,
            "Your account number was refused by the bank. Update it in the app and draw again.", false, None).await.unwrap().into_inner();
        assert_eq!((answered.case.status, answered.case.respond_by, answered.case.overdue_since), (CaseStatus::WaitingForBorrower, None, None));
        w.work().await;
        assert_eq!(w.texts("13822220001").last().map(String::as_str),
            Some("Support answered your request: Your account number was refused by the bank. Update it in the app and draw again."));

        // In the loan's timeline, for staff and for the borrower.
        let staff = timeline::timeline(&w.engine, Reader::Staff, &drawdown).await.unwrap();
        assert!(staff.events.iter().any(|e| e.kind == EventKind::SupportCase && e.reason == Some(Reason::AccountInvalid)), "{:?}", staff.events);
        let own = timeline::timeline(&w.engine, Reader::Borrower { borrower_id: Some(&borrower), mobile_index: "" }, &drawdown).await.unwrap();
        assert!(own.events.iter().any(|e| e.kind == EventKind::SupportCase));

        // Resolved; the borrower writes again and it reopens with a new deadline.
        let resolved = cases::resolve(&w.engine, &borrower, &case, "ops:li", "The account is fixed.", None).await.unwrap().into_inner();
        assert_eq!(resolved.case.status, CaseStatus::Resolved);
        assert_eq!(cases::resolve(&w.engine, &borrower, &case, "ops:li", "Again.", None).await.unwrap_err().code(), "conflict.case_resolved");
        w.work().await;
        assert!(w.texts("13822220001").last().unwrap().starts_with("Your request is resolved: The account is fixed."));
        let reopened = cases::write(&w.engine, &borrower, &case, &Actor::Borrower, "It failed again.", false, None).await.unwrap().into_inner();
        assert_eq!((reopened.case.status, reopened.case.respond_by), (CaseStatus::WaitingForSupport, Some(w.clock.now() + Duration::hours(4))));
        let queue = cases::queue(&w.engine, CaseStatus::WaitingForSupport, 10).await.unwrap();
        assert_eq!(queue.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [case.as_str()]);
        let listed = cases::list(&w.engine, &borrower, Some((SubjectKind::Drawdown, &drawdown)), &Actor::Borrower, 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(cases::list(&w.engine, &stranger, None, &support, 10).await.unwrap().is_empty());

        // Opened by support with a risk rule's exact cause: the borrower sees the reason as
        // the catalogue tells borrowers, and support, not who.
        let about_line = Subject { kind: SubjectKind::CreditLine, id: line_of_borrower.clone() };
        let by_support = cases::open(&w.engine, &borrower, &support, about_line, Some(Reason::Velocity), "Calling about your line.", None)
            .await.unwrap().into_inner();
        assert_eq!(by_support.case.opened_by, "ops:li");
        let theirs = cases::get(&w.engine, &borrower, &by_support.case.id, &Actor::Borrower).await.unwrap();
        assert_eq!((theirs.case.reason, theirs.case.opened_by.as_str()), (Some(Reason::Velocity.for_borrower()), "support"));
        assert_ne!(Reason::Velocity.for_borrower(), Reason::Velocity, "the catalogue hides this cause");

        // Every change is in the audit chain under who made it, without the words written.
        lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        let records = read.audit_records(0, 10_000).await.unwrap();
        let of_case: Vec<(&str, &str)> = records.iter()
            .filter(|r| r.entry.subject_type == "support_case" && r.entry.subject_id == case)
            .map(|r| (r.entry.actor.as_str(), r.entry.action.as_str()))
            .collect();
        let by_borrower = format!("borrower:{borrower}");
        assert_eq!(of_case, [
            (by_borrower.as_str(), "case.opened"), ("ops:li", "case.noted"), ("system:lendcore", "case.due_soon"),
            ("system:lendcore", "case.overdue"), ("ops:li", "case.answered"), ("ops:li", "case.resolved"),
            (by_borrower.as_str(), "case.borrower_wrote"),
        ]);
        assert!(records.iter().all(|r| !r.entry.detail.contains("typo") && !r.entry.detail.contains("did not go through")), "no message text in the chain");
        assert!(records.iter().any(|r| r.entry.subject_id == by_support.case.id && r.entry.actor == "ops:li" && r.entry.action == "case.opened"));
    }
}
