//! Units of work that end without commit — every read, an early return — give their connection
//! back to the pool rolled back, and it is reused: no warning, no reconnection. Only a
//! connection still inside a transaction after its rollback is closed. One cut off while it
//! began leaves no transaction for the next to run inside. Both stores.

use lendcore_testkit::sql_lint::{store_warnings, watch};
use lendcore_testkit::store_test;

store_test! {
    async fn units_of_work_ended_without_commit_keep_their_connections_quietly(db: &TestDb) {
        // The store's warnings, counted by the subscriber the test kit installs.
        watch();
        let before = store_warnings();
        for _ in 0..50 {
            // A read, as most requests make one: it ends by being dropped.
            let mut read = db.store.begin_read().await.unwrap();
            read.find_job("nothing").await.unwrap();
            drop(read);
            // A write that returned early.
            let mut write = db.store.begin().await.unwrap();
            write.find_job("nothing").await.unwrap();
            drop(write);
        }
        // The writer is one connection: taking it again waits until the last write's came back
        // through the hook. The readers come back on tasks of their own; give them a moment.
        db.store.begin().await.unwrap().rollback().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut read = db.store.begin_read().await.unwrap();
        assert!(read.find_job("nothing").await.unwrap().is_none());
        read.rollback().await.unwrap();
        assert_eq!(store_warnings(), before, "no connection was thrown away");
    }

    async fn a_unit_of_work_cut_off_while_it_begins_leaves_no_transaction_behind(db: &TestDb) {
        for i in 0..100 {
            // Dropped after a few polls, as a request is when its client goes: at one point or
            // another of its beginning, some while its BEGIN is sent and not yet answered.
            let mut beginning = Box::pin(db.store.begin_read());
            for _ in 0..=(i % 25) {
                if futures::poll!(&mut beginning).is_ready() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            drop(beginning);
            // The next unit of work, likely on that very connection, writes and commits.
            let mut write = db.store.begin().await.unwrap();
            let rule = lendcore_store::StoredAlertRule {
                name: format!("cut-{i}"), document: "{}".into(), revision: 1,
                updated_by: "test".into(), updated_at: chrono::Utc::now(),
            };
            assert!(write.save_alert_rule(&rule, None).await.unwrap(), "written in a transaction of its own");
            write.commit().await.unwrap();
        }
        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.alert_rules().await.unwrap().len(), 100, "every one committed");
    }
}
