//! Credit lines on both stores: the log, and holds that can never overdraw a line.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_domain::credit_line::{CreditLine, GrantInput, LineEventKind};
use lendcore_domain::reasons::Reason;
use lendcore_store::StoreError;
use lendcore_testkit::store_test;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

fn line(id: &str, limit_minor: i64) -> (CreditLine, lendcore_domain::credit_line::LineEvent) {
    CreditLine::grant(
        id.into(),
        GrantInput {
            borrower_id: "b-1".into(),
            currency: "CNY".into(),
            limit_minor,
            rate_tier: None,
            valid_from: None,
            valid_until: t0() + Duration::days(365),
            actor: "ops:test".into(),
            note: None,
        },
        t0(),
    )
    .unwrap()
}

store_test! {
    async fn a_line_and_its_log_round_trip(db: &TestDb) {
        let (mut l, granted) = line("l1", 1_000_000);
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        uow.insert_credit_line(&l, &granted).await.unwrap();
        uow.commit().await.unwrap();

        let read_revision = l.revision;
        let frozen = l.freeze(Reason::Overdue, None, "risk:r".into(), Some("missed two".into()), granted.seq, t0()).unwrap();
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        uow.update_credit_line(&l, read_revision, &frozen).await.unwrap();
        uow.commit().await.unwrap();

        let mut read = db.store.begin_read_for("b-1").await.unwrap();
        assert_eq!(read.find_credit_line("l1").await.unwrap().unwrap(), l);
        assert_eq!(read.credit_lines().await.unwrap(), vec![l.clone()]);
        let log = read.credit_line_events("l1").await.unwrap();
        assert_eq!(log, vec![granted, frozen]);
        assert_eq!(log[1].kind, LineEventKind::Frozen);
        assert_eq!(read.find_credit_line("nope").await.unwrap(), None);
    }

    async fn holds_stop_at_the_limit_and_only_on_an_open_line(db: &TestDb) {
        let (l, granted) = line("l1", 1_000);
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        uow.insert_credit_line(&l, &granted).await.unwrap();
        assert!(uow.place_hold("l1", 600, t0()).await.unwrap());
        assert!(!uow.place_hold("l1", 401, t0()).await.unwrap(), "over the limit");
        assert!(uow.place_hold("l1", 400, t0()).await.unwrap());
        assert!(!uow.place_hold("l1", 0, t0()).await.unwrap(), "nothing is not a hold");
        uow.draw_hold("l1", 600, t0()).await.unwrap();
        uow.release_hold("l1", 400, t0()).await.unwrap();
        let err = uow.release_hold("l1", 1, t0()).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let after = uow.find_credit_line("l1").await.unwrap().unwrap();
        assert_eq!((after.drawn_minor, after.held_minor), (600, 0));
        // Expired: nothing more.
        assert!(!uow.place_hold("l1", 1, t0() + Duration::days(365)).await.unwrap());
        uow.commit().await.unwrap();
    }

    async fn a_hold_makes_a_limit_change_read_before_it_stale(db: &TestDb) {
        let (mut l, granted) = line("l1", 1_000);
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        uow.insert_credit_line(&l, &granted).await.unwrap();
        assert!(uow.place_hold("l1", 900, t0()).await.unwrap());
        uow.commit().await.unwrap();
        // An operator read the line before the hold and lowers the limit to 500.
        let read_revision = l.revision;
        let lowered = l.change_limit(500, "ops:o".into(), None, granted.seq, t0()).unwrap();
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        let err = uow.update_credit_line(&l, read_revision, &lowered).await.unwrap_err();
        assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
    }

    async fn concurrent_holds_from_several_processes_never_overdraw(db: &TestDb) {
        let (l, granted) = line("l1", 10_000);
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        uow.insert_credit_line(&l, &granted).await.unwrap();
        uow.commit().await.unwrap();
        let other = db.second_store().await;
        let attempts = (0..40).map(|i| {
            let store = if i % 2 == 0 { db.store.clone() } else { other.clone() };
            tokio::spawn(async move {
                loop {
                    let mut uow = store.begin_for("b-1").await.unwrap();
                    match uow.place_hold("l1", 1_000, t0()).await {
                        Ok(placed) => {
                            uow.commit().await.unwrap();
                            return placed;
                        }
                        // SQLite's other process may find the writer lock taken: try again.
                        Err(StoreError::Busy(_) | StoreError::Unavailable(_)) => continue,
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
        });
        let placed = futures::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(placed, 10, "exactly the limit's worth");
        let mut read = db.store.begin_read_for("b-1").await.unwrap();
        let after = read.find_credit_line("l1").await.unwrap().unwrap();
        assert_eq!((after.held_minor, after.drawn_minor), (10_000, 0));
        other.close().await;
    }
}
