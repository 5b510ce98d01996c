//! Drawdowns through their rows on both stores: every field comes back as written.

use chrono::Duration;
use lendcore_domain::decision::PolicyRef;
use lendcore_domain::drawdown::{DrawdownStatus, PaidInstallment, Transition};
use lendcore_domain::servicing::Delinquency;
use lendcore_store::StoreError;
use lendcore_testkit::store_test;

mod common;
use common::{drawdown, line, t0};

store_test! {
    async fn a_drawdown_comes_back_whole_after_each_kind_of_write(db: &TestDb) {
        let mut written = drawdown("d-1", "l-1", DrawdownStatus::Quoted { expires_at: t0() }, 0);
        written.risk_policy = Some(PolicyRef { code: "consumer".into(), version: 3 });
        let quoted = Transition {
            from: "new".into(),
            to: "quoted".into(),
            reason: None,
            at: t0(),
            actor: None,
            note: Some("first".into()),
        };
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        let (l1, granted) = line("l-1", "b-1");
        uow.insert_credit_line(&l1, &granted).await.unwrap();
        uow.insert_drawdown(&written, "token-1", &quoted).await.unwrap();
        assert_eq!(uow.find_drawdown("d-1").await.unwrap().as_ref(), Some(&written));
        let (found, timeline) = uow.find_drawdown_by_token("token-1").await.unwrap().unwrap();
        assert_eq!((&found, timeline.as_slice()), (&written, std::slice::from_ref(&quoted)));
        assert!(uow.find_drawdown_by_token("token-2").await.unwrap().is_none());

        // Confirmed, repaid in part, closed for a day: each write keeps every field.
        let read_revision = written.revision;
        let step = written.move_to(DrawdownStatus::Active, t0() + Duration::minutes(1));
        written.paid.push(PaidInstallment {
            number: 1,
            principal_minor: 10,
            interest_minor: 2,
            fee_minor: 1,
            penalty_minor: 0,
        });
        uow.update_drawdown(&written, read_revision, Some(&step)).await.unwrap();
        assert_eq!(uow.find_drawdown("d-1").await.unwrap().as_ref(), Some(&written));
        assert!(
            matches!(
                uow.update_drawdown(&written, read_revision, None).await,
                Err(StoreError::Stale("drawdown"))
            ),
            "a write at a revision read before the last one is refused"
        );

        let read_revision = written.revision;
        written.servicing.last_close = Some(t0().date_naive());
        written.servicing.interest_accrued_minor = 55;
        written.servicing.penalties = vec![(1, 7)];
        written.servicing.delinquency = Some(Delinquency::Dpd1To30);
        written.servicing.note_days_past_due(t0().date_naive(), 4);
        written.revision += 1;
        uow.update_servicing(&[(written.clone(), read_revision)]).await.unwrap();
        assert_eq!(uow.find_drawdown("d-1").await.unwrap().as_ref(), Some(&written));
        let (_, timeline) = uow.find_drawdown_by_token("token-1").await.unwrap().unwrap();
        assert_eq!(timeline, [quoted, step], "the steps in the order they were taken");
        uow.commit().await.unwrap();

        // Read back outside the unit of work that wrote it.
        let mut read = db.store.begin_read_for("b-1").await.unwrap();
        assert_eq!(read.find_drawdown("d-1").await.unwrap(), Some(written));
    }

    async fn a_borrowers_unit_of_work_reaches_that_borrowers_rows_alone(db: &TestDb) {
        let quoted = Transition { from: "new".into(), to: "quoted".into(), reason: None, at: t0(), actor: None, note: None };
        let (mine, granted) = line("b-1.l", "b-1");
        let written = drawdown("b-1.d", "b-1.l", DrawdownStatus::Quoted { expires_at: t0() }, 0);
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        uow.insert_credit_line(&mine, &granted).await.unwrap();
        uow.insert_drawdown(&written, "token-1", &quoted).await.unwrap();
        uow.commit().await.unwrap();

        let mut other = db.store.begin_for("b-2").await.unwrap();
        assert_eq!(other.borrower_id(), "b-2");
        assert!(other.find_credit_line("b-1.l").await.unwrap().is_none(), "another's line is not found");
        assert!(other.credit_line_events("b-1.l").await.unwrap().is_empty());
        assert!(other.credit_lines().await.unwrap().is_empty());
        assert!(!other.place_hold("b-1.l", 100, t0()).await.unwrap(), "nor held on");
        assert!(other.find_drawdown("b-1.d").await.unwrap().is_none(), "another's drawdown is not found");
        assert!(other.lock_drawdown("b-1.d").await.unwrap().is_none());
        assert!(other.find_drawdown_by_token("token-1").await.unwrap().is_none());
        assert!(other.drawdown_timeline("b-1.d").await.unwrap().is_empty());
        // Given another borrower's row to write, the unit refuses it before the database sees it.
        assert!(matches!(
            other.insert_drawdown(&drawdown("b-1.d2", "b-1.l", DrawdownStatus::Active, 0), "token-2", &quoted).await,
            Err(StoreError::OtherBorrower("drawdown"))
        ));
        assert!(matches!(other.update_drawdown(&written, written.revision, None).await, Err(StoreError::OtherBorrower(_))));
        assert!(matches!(other.insert_credit_line(&mine, &granted).await, Err(StoreError::OtherBorrower(_))));
        other.rollback().await.unwrap();

        let mut read = db.store.begin_read_for("b-1").await.unwrap();
        assert_eq!(read.find_drawdown("b-1.d").await.unwrap(), Some(written));
        assert_eq!(read.find_credit_line("b-1.l").await.unwrap().map(|l| l.held_minor), Some(0));
    }

    async fn ids_from_before_they_carried_their_borrower_are_routed(db: &TestDb) {
        // A process of the previous build writes a line and a quote under bare ids: the
        // database records where they lead, and their confirmation token's too.
        let quoted = Transition { from: "new".into(), to: "quoted".into(), reason: None, at: t0(), actor: None, note: None };
        let (old_line, granted) = line("0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e60", "b-7");
        let mut old_quote = drawdown("0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e61", &old_line.id, DrawdownStatus::Quoted { expires_at: t0() }, 0);
        old_quote.borrower_id = "b-7".into();
        let mut uow = db.store.begin_for("b-7").await.unwrap();
        uow.insert_credit_line(&old_line, &granted).await.unwrap();
        uow.insert_drawdown(&old_quote, "old-token-hash", &quoted).await.unwrap();
        // One whose id carries its borrower needs no route.
        let (new_line, granted) = line("b-7.0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e62", "b-7");
        uow.insert_credit_line(&new_line, &granted).await.unwrap();
        uow.commit().await.unwrap();

        let mut read = db.store.begin_read().await.unwrap();
        for key in [old_line.id.as_str(), old_quote.id.as_str(), "old-token-hash"] {
            assert_eq!(read.legacy_route(key).await.unwrap().as_deref(), Some("b-7"), "{key}");
        }
        assert_eq!(read.legacy_route(&new_line.id).await.unwrap(), None);
        assert_eq!(read.legacy_route("nothing").await.unwrap(), None);
    }
}

lendcore_testkit::postgres_test! {
    async fn row_level_security_holds_a_borrowers_unit_to_that_borrowers_rows() {
        // The tripwire under every PostgreSQL test (testkit/src/sql_lint.rs, `guard_rows`): a
        // read across the book, run in a borrower's unit by mistake, sees that borrower's
        // rows alone.
        let db = lendcore_testkit::TestDb::postgres().await;
        let (mine, granted) = line("b-1.l", "b-1");
        let mut uow = db.store.begin_for("b-1").await.unwrap();
        uow.insert_credit_line(&mine, &granted).await.unwrap();
        uow.commit().await.unwrap();
        let mut theirs = db.store.begin_read_for("b-2").await.unwrap();
        assert_eq!(open_lines(theirs.as_mut()).await, 0, "another borrower's unit sees none of b-1's lines");
        let mut own = db.store.begin_read_for("b-1").await.unwrap();
        assert_eq!(open_lines(own.as_mut()).await, 1);
        let mut across = db.store.begin_read().await.unwrap();
        assert_eq!(open_lines(across.as_mut()).await, 1, "a unit of no borrower reads across the book");
        // A quote in the borrower's name does not escape the literal it is set in.
        let mut odd = db.store.begin_read_for("b-1' OR 'x' = 'x").await.unwrap();
        assert_eq!(open_lines(odd.as_mut()).await, 0);
        drop((theirs, own, across, odd));
        db.cleanup().await;
    }
}

/// How many open lines a read across the book finds in `uow`.
async fn open_lines(uow: &mut dyn lendcore_store::UnitOfWork) -> usize {
    uow.open_credit_lines_after("", 10).await.unwrap().len()
}

lendcore_testkit::postgres_test! {
    async fn the_key_check_finds_each_key_that_leaves_out_the_borrower() {
        // What every PostgreSQL test checks of the keyed tables, on tables made to break it.
        let db = lendcore_testkit::TestDb::postgres().await;
        db.execute(
            "CREATE TABLE loose (id TEXT PRIMARY KEY, borrower_id TEXT); \
             CREATE TABLE tied (borrower_id TEXT NOT NULL, id TEXT NOT NULL, \
               PRIMARY KEY (borrower_id, id)); \
             CREATE TABLE crossed (borrower_id TEXT NOT NULL, id TEXT NOT NULL, \
               tied_id TEXT NOT NULL, PRIMARY KEY (borrower_id, id), \
               FOREIGN KEY (borrower_id, tied_id) REFERENCES tied (id, borrower_id)); \
             CREATE TABLE child (borrower_id TEXT NOT NULL, id TEXT NOT NULL, \
               tied_id TEXT NOT NULL, PRIMARY KEY (borrower_id, id), \
               FOREIGN KEY (borrower_id, tied_id) REFERENCES tied (borrower_id, id))",
        )
        .await;
        let found = db.key_violations(&["loose", "tied", "crossed", "child"]).await;
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].contains("loose.borrower_id may be NULL"), "{found:#?}");
        assert!(found[1].contains("loose: key loose_pkey (id) leaves out borrower_id"), "{found:#?}");
        assert!(found[2].starts_with("crossed: foreign key"), "{found:#?}");
        assert!(db.key_violations(&["credit_lines", "drawdowns", "payout_attempts"]).await.is_empty());
        db.cleanup().await;
    }
}
