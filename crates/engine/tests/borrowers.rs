//! Borrowers on both stores: personal data sealed at rest, shown masked, found by blind index,
//! registered once per identity, and a history of contact changes.

use std::sync::Arc;

use chrono::Utc;
use lendcore_domain::borrower::{BorrowerInput, BorrowerKind, ChangedField, ContactChange};
use lendcore_engine::borrowers;
use lendcore_engine::vault::Vault;
use lendcore_engine::{Engine, EngineError, ManualClock};
use lendcore_testkit::store_test;

const KEY: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn engine(db: &lendcore_testkit::TestDb) -> Engine {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    Engine::new(db.store.clone(), clock).with_vault(Vault::from_hex(KEY).unwrap())
}

fn zhang() -> BorrowerInput {
    BorrowerInput {
        kind: Some(BorrowerKind::Individual),
        name: "张三".into(),
        resident_id: Some("11010519491231002X".into()),
        mobile: Some("13812345678".into()),
        address: Some("北京市朝阳区建国路88号".into()),
        ..BorrowerInput::default()
    }
}

store_test! {
    async fn personal_data_is_sealed_at_rest_and_shown_masked(db: &TestDb) {
        let engine = engine(db);
        let view = borrowers::register(&engine, zhang(), None).await.unwrap().into_inner();
        assert_eq!(view.personal.resident_id.as_deref(), Some("110***********002X"));
        assert_eq!(view.personal.mobile.as_deref(), Some("138****5678"));
        assert_eq!(borrowers::get(&engine, &view.id).await.unwrap(), view);
        let mut uow = db.store.begin_read().await.unwrap();
        let stored = uow.find_borrower(&view.id).await.unwrap().unwrap();
        for clear in ["11010519491231002X", "13812345678", "张三", "建国路"] {
            assert!(!stored.personal.contains(clear), "{clear} stored in clear");
            assert!(!stored.resident_index.as_deref().unwrap().contains(clear));
        }
        // A process with another key cannot read it: a configuration error, not garbage.
        let wrong = Engine::new(db.store.clone(), Arc::new(ManualClock::new(Utc::now())))
            .with_vault(Vault::from_hex(&KEY.replace("f0", "f1")).unwrap());
        assert_eq!(borrowers::get(&wrong, &view.id).await.unwrap_err().code(), "system.internal");
        let keyless = Engine::new(db.store.clone(), Arc::new(ManualClock::new(Utc::now())));
        let refused = borrowers::register(&keyless, zhang(), None).await.unwrap_err();
        assert_eq!(refused.code(), "system.not_configured", "not a retryable outage: {refused:?}");
    }

    async fn an_identity_is_registered_once(db: &TestDb) {
        let engine = engine(db);
        borrowers::register(&engine, zhang(), None).await.unwrap();
        let again = BorrowerInput { mobile: Some("13900000000".into()), ..zhang() };
        let refused = borrowers::register(&engine, again, None).await.unwrap_err();
        assert_eq!(refused.code(), "conflict.borrower_exists");
        let company = BorrowerInput {
            kind: Some(BorrowerKind::Enterprise),
            name: "Fujian Example Co., Ltd.".into(),
            credit_code: Some("91350100M000100Y43".into()),
            legal_representative: Some("Li Si".into()),
            ..BorrowerInput::default()
        };
        let view = borrowers::register(&engine, company.clone(), None).await.unwrap().into_inner();
        assert_eq!(view.personal.credit_code.as_deref(), Some("913***********0Y43"));
        let twice = borrowers::register(&engine, BorrowerInput { credit_code: Some("91350100m000100y43".into()), ..company }, None).await;
        assert_eq!(twice.unwrap_err().code(), "conflict.borrower_exists", "case does not make a new company");
        let bad = borrowers::register(&engine, BorrowerInput { resident_id: Some("110105194912310021".into()), ..zhang() }, None).await;
        assert_eq!(bad.unwrap_err().code(), "validation.resident_id_check");
    }

    async fn contact_changes_are_kept_in_a_masked_history(db: &TestDb) {
        let engine = engine(db);
        let id = borrowers::register(&engine, zhang(), None).await.unwrap().into_inner().id;
        let change = |mobile: &str, account: Option<&str>| ContactChange {
            mobile: Some(mobile.into()),
            address: None,
            bank_account: account.map(str::to_owned),
        };
        let view = borrowers::change_contact(&engine, &id, change("13987654321", Some("6222021234567890123")), "borrower:self".into(), None)
            .await.unwrap().into_inner();
        assert_eq!(view.personal.mobile.as_deref(), Some("139****4321"));
        assert_eq!(view.revision, 2);
        // The same number again is no change; a bad one changes nothing.
        borrowers::change_contact(&engine, &id, change("13987654321", None), "borrower:self".into(), None).await.unwrap();
        let bad = borrowers::change_contact(&engine, &id, change("123", None), "borrower:self".into(), None).await.unwrap_err();
        assert_eq!(bad.code(), "validation.invalid_mobile");
        let history = borrowers::changes(&engine, &id).await.unwrap();
        let seen: Vec<_> = history.iter().map(|c| (c.seq, c.field, c.before.clone(), c.after.clone())).collect();
        assert_eq!(seen, [
            (1, ChangedField::Mobile, Some("138****5678".to_owned()), "139****4321".to_owned()),
            (2, ChangedField::BankAccount, None, "************0123".to_owned()),
        ]);
        assert_eq!(borrowers::get(&engine, &id).await.unwrap().revision, 2);
        let mut uow = db.store.begin_read().await.unwrap();
        let vault = Vault::from_hex(KEY).unwrap();
        let found = uow.find_borrowers_by(lendcore_store::BorrowerIndex::Mobile, &vault.index("mobile", "13987654321")).await.unwrap();
        assert_eq!(found.len(), 1, "found by the new number's blind index");
        let topics: Vec<String> = uow.outbox_for("borrower", &id).await.unwrap().into_iter().map(|e| e.topic).collect();
        assert_eq!(topics, ["borrower.registered", "borrower.contact_changed"]);
        assert_eq!(borrowers::changes(&engine, "nope").await.unwrap_err().code(), "not_found.borrower");
    }

    async fn concurrent_contact_changes_all_land_in_the_history(db: &TestDb) {
        let engine = Arc::new(engine(db));
        let id = borrowers::register(&engine, zhang(), None).await.unwrap().into_inner().id;
        let changes = (0..4).map(|n| {
            let (engine, id) = (engine.clone(), id.clone());
            tokio::spawn(async move {
                let change = ContactChange { mobile: Some(format!("1390000000{n}")), address: None, bank_account: None };
                loop {
                    match borrowers::change_contact(&engine, &id, change.clone(), "borrower:self".into(), None).await {
                        // Busy, or out-raced more times than the use case retries: a client
                        // tries again, as the 409's message says.
                        Err(EngineError::Unavailable(_)) => continue,
                        Err(e) if e.code() == "conflict.concurrent_update" => continue,
                        other => return other.map(|_| ()),
                    }
                }
            })
        });
        for outcome in futures::future::join_all(changes).await {
            outcome.unwrap().unwrap();
        }
        let history = borrowers::changes(&engine, &id).await.unwrap();
        assert_eq!(history.len(), 4, "{history:?}");
        assert_eq!(history.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(borrowers::get(&engine, &id).await.unwrap().revision, 5);
    }
}
