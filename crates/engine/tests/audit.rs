//! The audit chain on both stores: every change records an entry in its own unit of work,
//! concurrent writers and sealers from several processes leave one valid chain, and any
//! edited, deleted or reordered record is found.

use std::sync::Arc;

use chrono::Utc;
use lendcore_domain::audit::ChainBreak;
use lendcore_domain::reasons::Reason;
use lendcore_engine::credit_lines::{self, LineChange};
use lendcore_engine::{Engine, ManualClock, audit};
use lendcore_store::Store;
use lendcore_testkit::{TestDb, store_test};

mod common;

/// A line granted, then frozen and unfrozen `rounds` times: 1 + 2 × rounds audited changes.
async fn changes(store: Arc<dyn Store>, borrower: &str, rounds: usize) {
    let now = Utc::now();
    let engine = Engine::new(store, Arc::new(ManualClock::new(now)));
    let line = common::line(&engine, borrower, 1_000_000, now, 365).await;
    for _ in 0..rounds {
        for change in [
            LineChange::Freeze {
                reason: Reason::Overdue,
                until: None,
            },
            LineChange::Unfreeze,
        ] {
            loop {
                match credit_lines::change(
                    &engine,
                    &line,
                    change_clone(&change),
                    "risk:r".into(),
                    None,
                    None,
                )
                .await
                {
                    Ok(_) => break,
                    Err(lendcore_engine::EngineError::Unavailable(_)) => continue,
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
    }
}

fn change_clone(change: &LineChange) -> LineChange {
    match change {
        LineChange::Freeze { reason, until } => LineChange::Freeze {
            reason: *reason,
            until: *until,
        },
        LineChange::Unfreeze => LineChange::Unfreeze,
        LineChange::Limit { limit_minor } => LineChange::Limit {
            limit_minor: *limit_minor,
        },
        LineChange::Close { reason } => LineChange::Close { reason: *reason },
    }
}

async fn sealed_chain(db: &TestDb) -> u64 {
    changes(db.store.clone(), "b-1", 2).await;
    audit::seal(db.store.as_ref()).await.unwrap();
    let report = audit::verify(db.store.as_ref(), None, |_| Ok(()))
        .await
        .unwrap();
    assert_eq!(
        (report.records, report.pending, report.broken),
        (5, 0, None)
    );
    report.records
}

async fn broken(db: &TestDb) -> Option<ChainBreak> {
    audit::verify(db.store.as_ref(), None, |_| Ok(()))
        .await
        .unwrap()
        .broken
}

store_test! {
    async fn concurrent_writers_and_sealers_in_several_processes_leave_one_valid_chain(db: &TestDb) {
        let other = db.second_store().await;
        let writers = [db.store.clone(), other.clone(), db.store.clone(), other.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, store)| tokio::spawn(changes(store, if i % 2 == 0 { "b-a" } else { "b-b" }, 5)));
        let sealers = [db.store.clone(), other.clone()].into_iter().map(|store| {
            tokio::spawn(async move {
                for _ in 0..20 {
                    audit::seal(store.as_ref()).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
        });
        let (w, s) = tokio::join!(futures::future::join_all(writers), futures::future::join_all(sealers));
        assert!(w.into_iter().chain(s).all(|r| r.is_ok()));
        audit::seal(db.store.as_ref()).await.unwrap();
        let mut seen = 0;
        let report = audit::verify(db.store.as_ref(), None, |_| { seen += 1; Ok(()) }).await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!((report.records, report.pending, seen), (4 * 11, 0, 44), "every change, once, in one chain");
        other.close().await;
    }

    async fn an_edited_record_is_found(db: &TestDb) {
        sealed_chain(db).await;
        db.execute("UPDATE audit_log SET actor = 'ops:mallory' WHERE seq = 3").await;
        assert_eq!(broken(db).await, Some(ChainBreak::Edited { seq: 3 }));
    }

    async fn a_record_whose_detail_is_not_even_json_any_more_is_found(db: &TestDb) {
        sealed_chain(db).await;
        db.execute("UPDATE audit_log SET detail = 'garbage' WHERE seq = 2").await;
        assert_eq!(broken(db).await, Some(ChainBreak::Edited { seq: 2 }));
    }

    async fn a_deleted_record_is_found(db: &TestDb) {
        sealed_chain(db).await;
        db.execute("DELETE FROM audit_log WHERE seq = 2").await;
        assert_eq!(broken(db).await, Some(ChainBreak::OutOfSequence { expected: 2, found: 3 }));
    }

    async fn reordered_records_are_found(db: &TestDb) {
        sealed_chain(db).await;
        db.execute("UPDATE audit_log SET seq = 102 WHERE seq = 2; \
                    UPDATE audit_log SET seq = 2 WHERE seq = 3; \
                    UPDATE audit_log SET seq = 3 WHERE seq = 102;").await;
        assert_eq!(broken(db).await, Some(ChainBreak::BrokenLink { seq: 2 }));
    }

    async fn a_cut_or_rewritten_tail_is_found_against_a_published_anchor(db: &TestDb) {
        sealed_chain(db).await;
        let head = audit::verify(db.store.as_ref(), None, |_| Ok(())).await.unwrap().head;
        let anchor = audit::Anchor { seq: 5, hash: head };
        assert_eq!(audit::verify(db.store.as_ref(), Some(&anchor), |_| Ok(())).await.unwrap().broken, None);
        // The last record deleted: the chain alone still verifies, the anchor does not.
        db.execute("DELETE FROM audit_log WHERE seq = 5").await;
        assert_eq!(audit::verify(db.store.as_ref(), None, |_| Ok(())).await.unwrap().broken, None);
        assert_eq!(
            audit::verify(db.store.as_ref(), Some(&anchor), |_| Ok(())).await.unwrap().broken,
            Some(ChainBreak::NotAnchored { seq: 5 })
        );
        // Re-sealed with another record in its place: the anchor's hash no longer matches.
        changes(db.store.clone(), "b-9", 0).await;
        audit::seal(db.store.as_ref()).await.unwrap();
        assert_eq!(
            audit::verify(db.store.as_ref(), Some(&anchor), |_| Ok(())).await.unwrap().broken,
            Some(ChainBreak::NotAnchored { seq: 5 })
        );
        assert!("5:xyz".parse::<audit::Anchor>().is_err());
    }
}
