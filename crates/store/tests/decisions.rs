//! Credit policies and decision records on both stores.

use chrono::Duration;
use lendcore_domain::borrower::{BorrowerChange, BorrowerKind, ChangedField};
use lendcore_domain::decision::{DEFAULT_POLICY, PolicyCode, PolicyDocument, PolicyVersion};
use lendcore_domain::drawdown::{DrawdownStatus, Transition};
use lendcore_domain::reasons::Reason;
use lendcore_store::{RiskBorrower, StoreError, StoredBorrower, StoredDecision};
use lendcore_testkit::store_test;

mod common;
use common::{drawdown, line, t0};

fn version(code: &str, n: u32) -> PolicyVersion {
    let document: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
    PolicyVersion::author(
        PolicyCode::parse(code).unwrap(),
        n,
        document,
        format!("sha-{n}"),
        "operator:maker",
        t0(),
    )
}

fn decision(borrower: &str, id: &str, subject: &str, minutes: i64) -> StoredDecision {
    StoredDecision {
        borrower_id: borrower.into(),
        id: id.into(),
        stage: "application".into(),
        subject_type: "application".into(),
        subject_id: subject.into(),
        policy_code: "consumer".into(),
        policy_version: 1,
        outcome: "approve".into(),
        record: serde_json::json!({ "score": 275, "reasons": [] }).to_string(),
        decided_at: t0() + Duration::minutes(minutes),
    }
}

store_test! {
    async fn versions_round_trip_and_activate_once(db: &TestDb) {
        let code = PolicyCode::parse("consumer").unwrap();
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_credit_policy(&code, "operator:maker", t0()).await.unwrap();
        let one = version("consumer", 1);
        uow.insert_policy_version(&one).await.unwrap();
        uow.commit().await.unwrap();

        let mut uow = db.store.begin().await.unwrap();
        let taken = uow.insert_credit_policy(&code, "operator:other", t0()).await;
        assert!(matches!(taken, Err(StoreError::Duplicate(_))), "{taken:?}");
        drop(uow);
        let mut uow = db.store.begin().await.unwrap();
        let twice = uow.insert_policy_version(&one).await;
        assert!(matches!(twice, Err(StoreError::Duplicate(_))), "{twice:?}");
        drop(uow);

        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.find_policy_version(&code, 1).await.unwrap(), Some(one.clone()));
        assert_eq!(read.policy_in_effect(t0()).await.unwrap(), None);
        drop(read);

        let mut active = one.clone();
        active.activate("operator:checker", Some(t0() + Duration::hours(1)), t0()).unwrap();
        let mut uow = db.store.begin().await.unwrap();
        uow.activate_policy_version(&active).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let again = uow.activate_policy_version(&active).await;
        assert!(matches!(again, Err(StoreError::Stale(_))), "{again:?}");
        drop(uow);

        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.policy_in_effect(t0()).await.unwrap(), None, "not yet effective");
        assert_eq!(
            read.policy_in_effect(t0() + Duration::hours(1)).await.unwrap(),
            Some((code.clone(), 1))
        );
        assert_eq!(read.policy_versions().await.unwrap(), vec![active]);
    }

    async fn the_latest_version_to_take_effect_decides(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        for (code, n, hours) in [("consumer", 1, 1), ("consumer", 2, 5), ("cautious", 1, 3)] {
            if n == 1 {
                uow.insert_credit_policy(&PolicyCode::parse(code).unwrap(), "operator:maker", t0()).await.unwrap();
            }
            let mut v = version(code, n);
            uow.insert_policy_version(&v).await.unwrap();
            v.activate("operator:checker", Some(t0() + Duration::hours(hours)), t0()).unwrap();
            uow.activate_policy_version(&v).await.unwrap();
        }
        uow.commit().await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        let at = |h: i64| t0() + Duration::hours(h);
        let named = |found: Option<(PolicyCode, u32)>| found.map(|(c, v)| (c.as_str().to_owned(), v));
        assert_eq!(named(read.policy_in_effect(at(2)).await.unwrap()), Some(("consumer".into(), 1)));
        assert_eq!(named(read.policy_in_effect(at(4)).await.unwrap()), Some(("cautious".into(), 1)));
        assert_eq!(named(read.policy_in_effect(at(6)).await.unwrap()), Some(("consumer".into(), 2)));
    }

    async fn decisions_are_found_by_their_borrower(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        let first = decision("b-1", "d-1", "app-1", 0);
        let second = decision("b-1", "d-2", "app-1", 5);
        let other = decision("b-2", "d-3", "app-2", 1);
        for d in [&first, &second, &other] {
            uow.insert_decision(d).await.unwrap();
        }
        // Written with the unit of work's audit entries at commit, yet read back within it.
        let entry = lendcore_domain::audit::AuditEntry {
            at: t0(),
            actor: "system:lendcore".into(),
            action: "decision.made".into(),
            subject_type: "decision".into(),
            subject_id: "d-1".into(),
            detail: "{}".into(),
        };
        uow.append_audit("a-1", &entry).await.unwrap();
        assert_eq!(uow.find_decision("b-1", "d-1").await.unwrap(), Some(first.clone()));
        uow.append_audit("a-2", &entry).await.unwrap();
        uow.commit().await.unwrap();
        let mut dropped = db.store.begin().await.unwrap();
        dropped.insert_decision(&decision("b-1", "d-9", "app-9", 9)).await.unwrap();
        dropped.append_audit("a-9", &entry).await.unwrap();
        dropped.rollback().await.unwrap();
        assert_eq!(db.store.begin().await.unwrap().pending_audit_count().await.unwrap(), 2);
        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.find_decision("b-1", "d-1").await.unwrap(), Some(first.clone()));
        assert_eq!(read.find_decision("b-2", "d-1").await.unwrap(), None, "another borrower's id");
        assert_eq!(
            read.decisions_about("b-1", "application", "app-1").await.unwrap(),
            vec![second.clone(), first.clone()]
        );
        assert_eq!(read.list_decisions("b-1", 1).await.unwrap(), vec![second]);
        assert_eq!(read.list_decisions("b-2", 10).await.unwrap(), vec![other]);
        assert_eq!(read.find_decision("b-1", "d-9").await.unwrap(), None, "rolled back with its unit");
    }

    async fn the_latest_bureau_report_is_kept_per_borrower(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(uow.risk_records("b-1", t0()).await.unwrap().bureau, None);
        let first = serde_json::json!({"answer": "found", "lenders_open": 1});
        let later = serde_json::json!({"answer": "no_file"});
        uow.save_bureau_report("b-1", "sandbox", &first, t0()).await.unwrap();
        uow.save_bureau_report("b-1", "sandbox", &later, t0() + Duration::days(1)).await.unwrap();
        uow.save_bureau_report("b-1", "old", &first, t0()).await.unwrap();
        uow.commit().await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(
            read.risk_records("b-1", t0()).await.unwrap().bureau,
            Some(("sandbox".into(), later, t0() + Duration::days(1))),
            "an older answer never replaces a newer one"
        );
        assert_eq!(read.risk_records("b-2", t0()).await.unwrap().bureau, None);
    }
}

store_test! {
    async fn risk_records_read_a_borrowers_parts_in_one_statement(db: &TestDb) {
        let mut read = db.store.begin_read().await.unwrap();
        let none = read.risk_records("b-1", t0()).await.unwrap();
        assert_eq!(none.borrower, None, "an unknown borrower has nothing");
        assert!(none.lines.is_empty() && none.drawdowns.is_empty() && none.changes.is_empty());
        assert_eq!(none.bureau, None);
        drop(read);

        let registered = t0() - Duration::days(400);
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        for (id, at) in [("b-1", registered), ("b-2", t0())] {
            uow.insert_borrower(&StoredBorrower {
                id: id.into(),
                kind: BorrowerKind::Individual,
                personal: format!("sealed-{id}"),
                resident_index: None,
                credit_code_index: None,
                mobile_index: None,
                language: None,
                revision: 1,
                created_at: at,
                updated_at: at,
            })
            .await
            .unwrap();
        }
        let (l1, granted1) = line("l-1", "b-1");
        let (l2, granted2) = line("l-2", "b-1");
        let (other, granted3) = line("l-3", "b-2");
        uow.insert_credit_line(&l1, &granted1).await.unwrap();
        uow.insert_credit_line(&l2, &granted2).await.unwrap();
        let step = Transition { from: "new".into(), to: "x".into(), reason: None, at: t0(), actor: None, note: None };
        let quoted = DrawdownStatus::Quoted { expires_at: t0() };
        let closed = DrawdownStatus::Closed { reason: Reason::PaidOff };
        let kept = [
            drawdown("d-active-old", "l-1", DrawdownStatus::Active, 300),
            drawdown("d-active", "l-2", DrawdownStatus::Active, 2),
            drawdown("d-closed-lately", "l-1", closed.clone(), 10),
        ];
        let left_out = [
            drawdown("d-quote", "l-1", quoted, 0),
            drawdown("d-refused", "l-1", DrawdownStatus::Refused { reason: Reason::LimitExceeded }, 1),
            drawdown("d-closed-long-ago", "l-2", closed, 200),
        ];
        for (n, d) in kept.iter().chain(&left_out).enumerate() {
            uow.insert_drawdown(d, &format!("token-{n}"), &step).await.unwrap();
        }
        let stored = uow.find_borrower("b-1").await.unwrap().unwrap();
        let change = |seq, field, days| BorrowerChange {
            borrower_id: "b-1".into(),
            seq,
            field,
            before: None,
            after: "masked".into(),
            actor: "borrower".into(),
            at: t0() - Duration::days(days),
        };
        uow.update_borrower(&stored, 1, &[change(1, ChangedField::Mobile, 30), change(2, ChangedField::BankAccount, 5)])
            .await
            .unwrap();
        let report = serde_json::json!({"answer": "no_file"});
        uow.save_bureau_report("b-1", "sandbox", &report, t0() - Duration::days(3)).await.unwrap();
        uow.commit().await.unwrap();
        // Another borrower's line and loan, written in that borrower's unit of work.
        let mut theirs_uow = db.store.begin_for("b-2").await.unwrap();
        theirs_uow.insert_credit_line(&other, &granted3).await.unwrap();
        let mut theirs = drawdown("d-theirs", "l-3", DrawdownStatus::Active, 1);
        theirs.borrower_id = "b-2".into();
        theirs_uow.insert_drawdown(&theirs, "token-theirs", &step).await.unwrap();
        theirs_uow.save_bureau_report("b-2", "sandbox", &serde_json::json!({"answer": "x"}), t0()).await.unwrap();
        theirs_uow.commit().await.unwrap();

        let mut read = db.store.begin_read().await.unwrap();
        let found = read.risk_records("b-1", t0() - Duration::days(30)).await.unwrap();
        assert_eq!(
            found.borrower,
            Some(RiskBorrower { personal: "sealed-b-1".into(), registered_at: registered })
        );
        let mut lines = found.lines.clone();
        lines.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(lines, vec![l1, l2], "the borrower's lines, whole, and no one else's");
        let ids: Vec<&str> = found.drawdowns.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["d-active", "d-closed-lately", "d-active-old"], "newest first");
        assert_eq!(found.drawdowns[0], kept[1], "a drawdown comes back whole, quote and all");
        let mut changes = found.changes.clone();
        changes.sort_by_key(|(_, at)| *at);
        assert_eq!(
            changes,
            vec![
                (ChangedField::Mobile, t0() - Duration::days(30)),
                (ChangedField::BankAccount, t0() - Duration::days(5)),
            ]
        );
        assert_eq!(found.bureau, Some(("sandbox".into(), report, t0() - Duration::days(3))));
    }
}
