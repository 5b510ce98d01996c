//! The ledger on both stores: entries round-trip, balances are sums of postings, a hot account
//! takes concurrent postings without losing any, and nothing unbalanced is ever stored.

use chrono::{DateTime, TimeZone, Utc};
use lendcore_domain::ledger::{AccountKind, Layer, LoanAccounts};
use lendcore_domain::money::Currency;
use lendcore_store::StoreError;
use lendcore_testkit::store_test;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

fn accounts(loan: &str) -> LoanAccounts {
    LoanAccounts {
        loan_id: loan.into(),
        channel_id: "sandbox".into(),
        currency: Currency::Cny,
    }
}

store_test! {
    async fn entries_round_trip_and_balances_are_their_sums(db: &TestDb) {
        let a = accounts("loan-1");
        let pending = a.disburse("e1".into(), Layer::Pending, 1_000_000, 10_000, t0()).unwrap();
        let voided = pending.reversal("e2".into(), t0()).unwrap();
        let posted = a.disburse("e3".into(), Layer::Posted, 1_000_000, 10_000, t0()).unwrap();
        let interest = a.accrue_interest("e4".into(), 357, t0()).unwrap();
        let mut uow = db.store.begin().await.unwrap();
        for e in [&pending, &voided, &posted, &interest] {
            uow.post_entry(e).await.unwrap();
        }
        uow.commit().await.unwrap();

        let mut read = db.store.begin_read().await.unwrap();
        let entries = read.entries_for("loan-1").await.unwrap();
        assert_eq!(entries.len(), 4);
        assert!(entries.contains(&voided) && entries.contains(&posted));
        assert_eq!(read.account_balance(&a.account(AccountKind::PrincipalReceivable), Layer::Posted).await.unwrap(), 1_000_000);
        assert_eq!(read.account_balance(&a.account(AccountKind::PrincipalReceivable), Layer::Pending).await.unwrap(), 0);
        assert_eq!(read.account_balance(&a.account(AccountKind::InterestIncome), Layer::Posted).await.unwrap(), -357);
        assert_eq!(read.account_balance(&a.account(AccountKind::ChannelSettlement), Layer::Posted).await.unwrap(), -990_000);
        assert!(read.unbalanced_entries().await.unwrap().is_empty());
    }

    async fn an_entry_is_reversed_at_most_once(db: &TestDb) {
        let a = accounts("loan-1");
        let entry = a.accrue_interest("e1".into(), 100, t0()).unwrap();
        let mut uow = db.store.begin().await.unwrap();
        uow.post_entry(&entry).await.unwrap();
        uow.post_entry(&entry.reversal("r1".into(), t0()).unwrap()).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let err = uow.post_entry(&entry.reversal("r2".into(), t0()).unwrap()).await.unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    }

    async fn the_settlement_account_takes_concurrent_postings_without_losing_one(db: &TestDb) {
        let other = db.second_store().await;
        let posts = (0..40).map(|i| {
            let store = if i % 2 == 0 { db.store.clone() } else { other.clone() };
            tokio::spawn(async move {
                let entry = accounts(&format!("loan-{i}"))
                    .disburse(format!("e{i}"), Layer::Posted, 10_000, 0, t0())
                    .unwrap();
                loop {
                    let mut uow = store.begin().await.unwrap();
                    match uow.post_entry(&entry).await {
                        Ok(()) => {
                            uow.commit().await.unwrap();
                            return;
                        }
                        Err(StoreError::Busy(_) | StoreError::Unavailable(_)) => continue,
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
        });
        for post in futures::future::join_all(posts).await {
            post.unwrap();
        }
        let mut read = db.store.begin_read().await.unwrap();
        let settlement = accounts("any").account(AccountKind::ChannelSettlement);
        assert_eq!(read.account_balance(&settlement, Layer::Posted).await.unwrap(), -400_000);
        assert!(read.unbalanced_entries().await.unwrap().is_empty());
        other.close().await;
    }
}
