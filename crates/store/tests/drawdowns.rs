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
        let mut uow = db.store.begin().await.unwrap();
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
        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.find_drawdown("d-1").await.unwrap(), Some(written));
    }
}
