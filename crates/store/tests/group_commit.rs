//! Units of work on SQLite share commits (`store/src/group_commit.rs`): a unit that fails or is
//! dropped rolls back only itself, the others of its batch commit together, and a caller that
//! gives up waiting for the writer leaves it free for the next. On PostgreSQL every unit
//! commits alone; the same tests hold there.

use std::time::Duration;

use lendcore_store::{Backend, ConnectOptions, StoredAlertRule};
use lendcore_testkit::store_test;

fn rule(name: &str) -> StoredAlertRule {
    StoredAlertRule {
        name: name.to_owned(),
        document: "{}".into(),
        revision: 1,
        updated_by: "test".into(),
        updated_at: chrono::Utc::now(),
    }
}

store_test! {
    async fn a_unit_that_fails_in_a_batch_rolls_back_alone(db: &TestDb) {
        // Batches that end only when nothing waits: however slow the machine, the four units
        // share one.
        let store = db
            .store_with(&ConnectOptions {
                group_commit_wait: Duration::from_secs(30),
                ..ConnectOptions::default()
            })
            .await;
        let commits = store.commits();
        let mut first = store.begin().await.unwrap();
        assert!(first.save_alert_rule(&rule("first"), None).await.unwrap());
        // Three more queue for the writer while the first holds it: one drops its work half
        // done, one fails on a row the first wrote, one writes its own.
        let (store_a, store_b, store_c) = (store.clone(), store.clone(), store.clone());
        let dropped = tokio::spawn(async move {
            let mut unit = store_a.begin().await.unwrap();
            assert!(unit.save_alert_rule(&rule("dropped"), None).await.unwrap());
            drop(unit);
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let clashing = tokio::spawn(async move {
            let mut unit = store_b.begin().await.unwrap();
            // The first's row is there to clash with, as it will be once committed.
            let clash = unit.save_alert_rule(&rule("first"), None).await;
            assert!(!matches!(clash, Ok(true)), "{clash:?}");
            unit.rollback().await.unwrap();
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let last = tokio::spawn(async move {
            let mut unit = store_c.begin().await.unwrap();
            assert!(unit.save_alert_rule(&rule("last"), None).await.unwrap());
            unit.commit().await.unwrap();
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        first.commit().await.unwrap();
        for task in [dropped, clashing, last] {
            task.await.unwrap();
        }
        let mut read = store.begin_read().await.unwrap();
        let mut names: Vec<String> = read.alert_rules().await.unwrap().into_iter().map(|r| r.name).collect();
        names.sort();
        assert_eq!(names, ["first", "last"]);
        drop(read);
        let used = store.commits() - commits;
        match db.store.backend() {
            Backend::Sqlite => assert_eq!(used, 1, "one COMMIT for the batch"),
            Backend::Postgres => assert_eq!(used, 2, "each unit commits alone"),
        }
        store.close().await;
    }

    async fn a_caller_that_gives_up_waiting_leaves_the_writer_to_the_next(db: &TestDb) {
        let mut holding = db.store.begin().await.unwrap();
        assert!(holding.save_alert_rule(&rule("held"), None).await.unwrap());
        // On SQLite this waits for the writer, and gives up; on PostgreSQL it begins at once.
        let store = db.store.clone();
        let impatient = tokio::time::timeout(Duration::from_millis(50), async move {
            let mut unit = store.begin().await.unwrap();
            assert!(unit.save_alert_rule(&rule("impatient"), None).await.unwrap());
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
        assert!(impatient.is_err());
        holding.commit().await.unwrap();
        let mut next = tokio::time::timeout(Duration::from_secs(5), db.store.begin())
            .await
            .expect("the writer is free")
            .unwrap();
        assert!(next.save_alert_rule(&rule("next"), None).await.unwrap());
        tokio::time::timeout(Duration::from_secs(5), next.commit()).await.expect("committed in time").unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        let mut names: Vec<String> = read.alert_rules().await.unwrap().into_iter().map(|r| r.name).collect();
        names.sort();
        assert_eq!(names, ["held", "next"]);
    }

    async fn units_cut_off_at_any_point_leave_the_writer_clean(db: &TestDb) {
        for i in 0..60 {
            // Dropped after a few polls, as a request is when its client goes: while it waits
            // for the writer, begins, works or commits.
            let store = db.store.clone();
            let mut cut = Box::pin(async move {
                let mut unit = store.begin().await.unwrap();
                assert!(unit.save_alert_rule(&rule(&format!("cut-{i}")), None).await.unwrap());
                unit.commit().await.unwrap();
            });
            for _ in 0..=(i % 20) {
                if futures::poll!(&mut cut).is_ready() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            drop(cut);
            let mut next = tokio::time::timeout(Duration::from_secs(5), db.store.begin())
                .await
                .expect("the writer is free")
                .unwrap();
            assert!(next.save_alert_rule(&rule(&format!("next-{i}")), None).await.unwrap());
            next.commit().await.unwrap();
        }
        let mut read = db.store.begin_read().await.unwrap();
        let names: Vec<String> = read.alert_rules().await.unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names.iter().filter(|n| n.starts_with("next-")).count(), 60, "every next one committed");
    }
}
