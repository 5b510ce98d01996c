//! Credit policies and decision records on both stores.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_domain::decision::{DEFAULT_POLICY, PolicyCode, PolicyDocument, PolicyVersion};
use lendcore_store::{StoreError, StoredDecision};
use lendcore_testkit::store_test;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
}

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
        record: serde_json::json!({ "score": 275, "reasons": [] }),
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
        uow.commit().await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.find_decision("b-1", "d-1").await.unwrap(), Some(first.clone()));
        assert_eq!(read.find_decision("b-2", "d-1").await.unwrap(), None, "another borrower's id");
        assert_eq!(
            read.decisions_about("b-1", "application", "app-1").await.unwrap(),
            vec![second.clone(), first.clone()]
        );
        assert_eq!(read.list_decisions("b-1", 1).await.unwrap(), vec![second]);
        assert_eq!(read.list_decisions("b-2", 10).await.unwrap(), vec![other]);
    }

    async fn the_latest_bureau_report_is_kept_per_borrower(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(uow.bureau_report("b-1").await.unwrap(), None);
        let first = serde_json::json!({"answer": "found", "lenders_open": 1});
        let later = serde_json::json!({"answer": "no_file"});
        uow.save_bureau_report("b-1", "sandbox", &first, t0()).await.unwrap();
        uow.save_bureau_report("b-1", "sandbox", &later, t0() + Duration::days(1)).await.unwrap();
        uow.save_bureau_report("b-1", "old", &first, t0()).await.unwrap();
        uow.commit().await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(
            read.bureau_report("b-1").await.unwrap(),
            Some(("sandbox".into(), later, t0() + Duration::days(1))),
            "an older answer never replaces a newer one"
        );
        assert_eq!(read.bureau_report("b-2").await.unwrap(), None);
    }
}
