//! The store conformance suite: every test runs on SQLite and on PostgreSQL.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_domain::product::{
    NewProductInput, Product, ProductCode, ProductKind, ProductTermsInput,
};
use lendcore_store::{
    IdempotencyClaim, Job, JobStatus, LeaseRequest, NewJob, OutboxEvent, StoreError, UnitOfWork,
};
use lendcore_testkit::store_test;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

fn terms() -> ProductTermsInput {
    serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 100000, "max_minor": 5000000},
        "terms": {"unit": "month", "options": [3, 6, 12]},
        "rate": {"basis": "annual", "value": "0.18"},
        "repayment_method": "equal_installment",
        "fees": [{"code": "service", "timing": "upfront", "fixed_minor": 1000}],
        "penalty_daily_rate": "0.0005",
        "grace_days": 3
    }))
    .unwrap()
}

fn product(code: &str) -> Product {
    Product::create(
        format!("id-{code}"),
        NewProductInput {
            code: code.into(),
            name: format!("Product {code}"),
            kind: ProductKind::Installment,
            currency: "CNY".into(),
            terms: terms(),
            effective_from: None,
        },
        t0(),
    )
    .unwrap()
}

fn job(id: &str, run_at: DateTime<Utc>, max_attempts: u32) -> NewJob {
    NewJob {
        id: id.into(),
        kind: "test.echo".into(),
        payload: serde_json::json!({"n": 1}),
        run_at,
        max_attempts,
    }
}

/// Leases `test.echo` jobs under a token no other call uses.
async fn lease(
    uow: &mut dyn UnitOfWork,
    owner: &str,
    limit: u32,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Job>, StoreError> {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let token = format!("{owner}-{}", CALLS.fetch_add(1, Ordering::SeqCst));
    uow.lease_jobs(&LeaseRequest {
        owner,
        token: &token,
        kinds: &["test.echo"],
        limit,
        now,
        until,
    })
    .await
}

fn code(s: &str) -> ProductCode {
    ProductCode::parse(s).unwrap()
}

store_test! {
    async fn an_owner_holds_one_open_application_place_given_up_when_it_ends(db: &TestDb) {
        use lendcore_domain::application::Application;
        let open = |id: &str| Application::start(id.into(), "owner-1".into(), "borrower:b", t0());
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_application(&open("a1"), "sealed").await.unwrap();
        let second = uow.insert_application(&open("a2"), "sealed").await;
        assert!(matches!(second, Err(StoreError::Duplicate(_))), "{second:?}");
        drop(uow);
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_application(&open("a1"), "sealed").await.unwrap();
        let mut ended = open("a1");
        ended.withdraw("borrower:b", t0()).unwrap();
        ended.revision += 1;
        uow.update_application(&ended, None, 1).await.unwrap();
        uow.insert_application(&open("a2"), "sealed").await.unwrap();
        let other_owner = Application::start("b1".into(), "owner-2".into(), "borrower:c", t0());
        uow.insert_application(&other_owner, "sealed").await.unwrap();
        uow.commit().await.unwrap();
    }

    async fn migrations_are_current_and_rerunning_them_is_a_no_op(db: &TestDb) {
        db.store.readiness().await.unwrap();
        let report = db.store.migrate().await.unwrap();
        assert_eq!(report.applied_now, 0);
        assert!(report.applied_before >= 1);
        db.store.readiness().await.unwrap();
    }

    async fn a_product_round_trips_with_its_versions(db: &TestDb) {
        let mut p = product("cash-12m");
        p.add_version(terms(), Some(t0() + Duration::days(3)), t0()).unwrap();
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_product(&p).await.unwrap();
        uow.commit().await.unwrap();

        let mut read = db.store.begin_read().await.unwrap();
        let loaded = read.find_product(&p.code).await.unwrap().unwrap();
        assert_eq!(loaded, p);
        assert_eq!(read.product_revision(&p.code).await.unwrap(), Some(2));
        assert_eq!(read.find_product(&code("nope")).await.unwrap(), None);
    }

    async fn a_taken_product_code_is_a_duplicate(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_product(&product("cash")).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let mut again = product("cash");
        again.id = "another-id".into();
        let err = uow.insert_product(&again).await.unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    }

    async fn a_unit_of_work_dropped_without_commit_leaves_nothing(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_product(&product("ghost")).await.unwrap();
        uow.enqueue_job(&job("j-ghost", t0(), 3), t0()).await.unwrap();
        drop(uow);
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_product(&product("explicit")).await.unwrap();
        uow.rollback().await.unwrap();

        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.find_product(&code("ghost")).await.unwrap(), None);
        assert_eq!(read.find_product(&code("explicit")).await.unwrap(), None);
        assert_eq!(read.find_job("j-ghost").await.unwrap(), None);
    }

    async fn an_update_from_a_stale_read_is_refused(db: &TestDb) {
        let p = product("cash");
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_product(&p).await.unwrap();
        uow.commit().await.unwrap();

        let mut first = p.clone();
        first.retire(t0() + Duration::days(10), t0()).unwrap();
        let mut second = p.clone();
        second.add_version(terms(), Some(t0() + Duration::days(1)), t0()).unwrap();

        let mut uow = db.store.begin().await.unwrap();
        uow.update_product(&first, p.revision, t0()).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let err = uow.update_product(&second, p.revision, t0()).await.unwrap_err();
        assert!(matches!(err, StoreError::Stale("product")), "{err:?}");
    }

    async fn effective_versions_are_never_rewritten(db: &TestDb) {
        let p = product("cash");
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_product(&p).await.unwrap();
        uow.commit().await.unwrap();

        // A buggy caller tries to rewrite version 1, which took effect at t0: refused, loudly.
        let mut tampered = p.clone();
        tampered.versions[0].effective_from = t0() + Duration::days(1);
        tampered.revision += 1;
        let mut uow = db.store.begin().await.unwrap();
        let err = uow.update_product(&tampered, p.revision, t0() + Duration::hours(1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Immutable(_)), "{err:?}");
        drop(uow);

        let mut read = db.store.begin_read().await.unwrap();
        let loaded = read.find_product(&p.code).await.unwrap().unwrap();
        assert_eq!(loaded.versions, p.versions);
    }

    async fn products_list_in_code_order_page_by_page(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        for c in ["cc", "aa", "dd", "bb", "ee"] {
            let mut p = product(c);
            p.add_version(terms(), Some(t0() + Duration::days(1)), t0()).unwrap();
            uow.insert_product(&p).await.unwrap();
        }
        uow.commit().await.unwrap();
        let mut read = db.store.begin_read().await.unwrap();
        let first = read.list_products(None, 2).await.unwrap();
        let codes: Vec<_> = first.iter().map(|p| p.code.to_string()).collect();
        assert_eq!(codes, ["aa", "bb"]);
        assert!(first.iter().all(|p| p.versions.len() == 2));
        let rest = read.list_products(Some(&first[1].code), 10).await.unwrap();
        let codes: Vec<_> = rest.iter().map(|p| p.code.to_string()).collect();
        assert_eq!(codes, ["cc", "dd", "ee"]);
        assert!(rest.iter().all(|p| p.versions.len() == 2 && p.versions[0].version == 1));
    }

    async fn a_job_is_leased_once_and_completed_under_its_lease(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.enqueue_job(&job("j1", t0(), 3), t0()).await.unwrap();
        uow.enqueue_job(&job("later", t0() + Duration::minutes(5), 3), t0()).await.unwrap();
        uow.commit().await.unwrap();

        let mut uow = db.store.begin().await.unwrap();
        let leased = lease(uow.as_mut(), "w1", 10, t0(), t0() + Duration::seconds(30)).await.unwrap();
        uow.commit().await.unwrap();
        assert_eq!(leased.len(), 1, "only the due job");
        let j = &leased[0];
        assert_eq!((j.id.as_str(), j.status, j.attempts), ("j1", JobStatus::Running, 1));
        assert_eq!(j.payload, serde_json::json!({"n": 1}));

        // While the lease holds, nobody else gets the job.
        let mut uow = db.store.begin().await.unwrap();
        assert!(lease(uow.as_mut(), "w2", 10, t0() + Duration::seconds(10), t0() + Duration::seconds(40)).await.unwrap().is_empty());
        uow.complete_job(&j.lease().unwrap(), t0() + Duration::seconds(1)).await.unwrap();
        uow.commit().await.unwrap();

        let mut read = db.store.begin_read().await.unwrap();
        let done = read.find_job("j1").await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(done.finished_at, Some(t0() + Duration::seconds(1)));
    }

    async fn a_job_survives_a_worker_that_dies_holding_its_lease(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.enqueue_job(&job("j1", t0(), 3), t0()).await.unwrap();
        uow.commit().await.unwrap();

        // Worker A leases the job and dies without a word.
        let mut uow = db.store.begin().await.unwrap();
        let a = lease(uow.as_mut(), "worker-a", 1, t0(), t0() + Duration::seconds(30)).await.unwrap();
        uow.commit().await.unwrap();
        let lease_a = a[0].lease().unwrap();

        // Once A's lease has run out, worker B takes the job over and finishes it.
        let later = t0() + Duration::seconds(31);
        let mut uow = db.store.begin().await.unwrap();
        let b = lease(uow.as_mut(), "worker-b", 1, later, later + Duration::seconds(30)).await.unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].id.as_str(), b[0].attempts), ("j1", 2));
        uow.complete_job(&b[0].lease().unwrap(), later).await.unwrap();
        uow.commit().await.unwrap();

        // A comes back to life: its outcome is refused, whatever it says.
        let mut uow = db.store.begin().await.unwrap();
        let err = uow.complete_job(&lease_a, later).await.unwrap_err();
        assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
        let err = uow.fail_job(&lease_a, "late", None, later).await.unwrap_err();
        assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
        drop(uow);
        let mut read = db.store.begin_read().await.unwrap();
        assert_eq!(read.find_job("j1").await.unwrap().unwrap().status, JobStatus::Succeeded);
    }

    async fn a_failing_job_retries_then_lands_in_dead_letter_and_can_be_redriven(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.enqueue_job(&job("j1", t0(), 2), t0()).await.unwrap();
        uow.commit().await.unwrap();

        let mut uow = db.store.begin().await.unwrap();
        let first = lease(uow.as_mut(), "w", 1, t0(), t0() + Duration::seconds(30)).await.unwrap();
        let retry_at = t0() + Duration::seconds(5);
        uow.fail_job(&first[0].lease().unwrap(), "boom 1", Some(retry_at), t0()).await.unwrap();
        // Not before its retry time.
        assert!(lease(uow.as_mut(), "w", 1, t0() + Duration::seconds(4), t0() + Duration::seconds(34)).await.unwrap().is_empty());
        let second = lease(uow.as_mut(), "w", 1, retry_at, retry_at + Duration::seconds(30)).await.unwrap();
        assert_eq!(second[0].attempts, 2);
        assert_eq!(second[0].last_error.as_deref(), Some("boom 1"));
        uow.fail_job(&second[0].lease().unwrap(), "boom 2", None, retry_at).await.unwrap();
        uow.commit().await.unwrap();

        let mut uow = db.store.begin().await.unwrap();
        let dead = uow.list_jobs(JobStatus::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].last_error.as_deref(), Some("boom 2"));
        let far = t0() + Duration::days(1);
        assert!(lease(uow.as_mut(), "w", 1, far, far + Duration::seconds(30)).await.unwrap().is_empty());

        assert!(uow.redrive_job("j1", far).await.unwrap());
        assert!(!uow.redrive_job("j1", far).await.unwrap(), "only dead jobs are re-driven");
        let again = lease(uow.as_mut(), "w", 1, far, far + Duration::seconds(30)).await.unwrap();
        assert_eq!((again[0].id.as_str(), again[0].attempts), ("j1", 1));
        // The attempt count starts over, but the old lease stays dead.
        let err = uow.complete_job(&first[0].lease().unwrap(), far).await.unwrap_err();
        assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
        uow.complete_job(&again[0].lease().unwrap(), far).await.unwrap();
        uow.commit().await.unwrap();
    }

    async fn a_job_whose_final_attempt_lost_its_worker_is_dead_lettered(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.enqueue_job(&job("poison", t0(), 1), t0()).await.unwrap();
        let leased = lease(uow.as_mut(), "w", 1, t0(), t0() + Duration::seconds(30)).await.unwrap();
        assert_eq!(leased.len(), 1);
        let later = t0() + Duration::minutes(1);
        assert!(uow.bury_expired_final_attempts(later, &["other.kind"]).await.unwrap().is_empty(),
            "only the kinds the caller handles");
        let buried = uow.bury_expired_final_attempts(later, &["test.echo"]).await.unwrap();
        assert_eq!(buried.len(), 1);
        assert!(lease(uow.as_mut(), "w2", 1, later, later + Duration::seconds(30)).await.unwrap().is_empty());
        let dead = uow.find_job("poison").await.unwrap().unwrap();
        assert_eq!(dead.status, JobStatus::Dead);
        assert!(dead.last_error.unwrap().contains("lease expired"));
        uow.commit().await.unwrap();
    }

    async fn only_jobs_of_the_kinds_asked_for_are_leased(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.enqueue_job(&job("mine", t0(), 3), t0()).await.unwrap();
        let mut other = job("theirs", t0(), 3);
        other.kind = "newer.kind".into();
        uow.enqueue_job(&other, t0()).await.unwrap();
        let leased = lease(uow.as_mut(), "w", 10, t0(), t0() + Duration::seconds(30)).await.unwrap();
        assert_eq!(leased.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["mine"]);
        let theirs = uow.find_job("theirs").await.unwrap().unwrap();
        assert_eq!((theirs.status, theirs.attempts), (JobStatus::Pending, 0));
        uow.commit().await.unwrap();
    }

    async fn concurrent_workers_on_separate_connections_never_share_a_job(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        for i in 0..40 {
            uow.enqueue_job(&job(&format!("j{i:02}"), t0(), 3), t0()).await.unwrap();
        }
        uow.commit().await.unwrap();
        let other = db.second_store().await;
        let stores = [db.store.clone(), other.clone(), db.store.clone(), other.clone()];
        let workers = stores.into_iter().enumerate().map(|(w, store)| async move {
            let mut mine = Vec::new();
            loop {
                let mut uow = store.begin().await.unwrap();
                let batch = lease(uow.as_mut(), &format!("w{w}"), 3, t0(), t0() + Duration::minutes(1)).await.unwrap();
                uow.commit().await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|j| j.id));
            }
        });
        let results = futures::future::join_all(workers).await;
        let all: Vec<String> = results.into_iter().flatten().collect();
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 40, "every job leased exactly once");
        assert_eq!(unique.len(), 40);
        other.close().await;
    }

    async fn an_idempotency_key_is_claimed_once_and_replays_after_commit(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(
            uow.claim_idempotency_key("s", "k1", "fp-a", t0()).await.unwrap(),
            IdempotencyClaim::Claimed
        );
        uow.record_idempotent_response("s", "k1", &serde_json::json!({"ok": 1}), t0()).await.unwrap();
        uow.commit().await.unwrap();

        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(
            uow.claim_idempotency_key("s", "k1", "fp-b", t0()).await.unwrap(),
            IdempotencyClaim::Seen {
                fingerprint: "fp-a".into(),
                response: Some(serde_json::json!({"ok": 1})),
            }
        );
        // Scopes are separate, and a rolled-back claim frees the key.
        assert_eq!(
            uow.claim_idempotency_key("other", "k1", "fp-a", t0()).await.unwrap(),
            IdempotencyClaim::Claimed
        );
        assert_eq!(
            uow.claim_idempotency_key("s", "k2", "fp-a", t0()).await.unwrap(),
            IdempotencyClaim::Claimed
        );
        uow.rollback().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(
            uow.claim_idempotency_key("s", "k2", "fp-a", t0()).await.unwrap(),
            IdempotencyClaim::Claimed
        );
    }

    async fn outbox_events_wait_until_published(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        for (i, id) in ["e1", "e2", "e3"].iter().enumerate() {
            uow.append_outbox(&OutboxEvent {
                id: (*id).into(),
                topic: "product.created".into(),
                aggregate_type: "product".into(),
                aggregate_id: "p1".into(),
                payload: serde_json::json!({"i": i}),
                created_at: t0() + Duration::seconds(i as i64),
                published_at: None,
            })
            .await
            .unwrap();
        }
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let pending = uow.unpublished_outbox(10).await.unwrap();
        assert_eq!(pending.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e1", "e2", "e3"]);
        uow.mark_outbox_published(&["e1".to_owned()], t0()).await.unwrap();
        let pending = uow.unpublished_outbox(10).await.unwrap();
        assert_eq!(pending.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e2", "e3"]);
        // A batch in one statement; one already published keeps the time it was published at.
        let later = t0() + Duration::seconds(9);
        let batch = ["e1", "e2", "e3"].map(str::to_owned);
        uow.mark_outbox_published(&batch, later).await.unwrap();
        assert!(uow.unpublished_outbox(10).await.unwrap().is_empty());
        let all = uow.outbox_for("product", "p1").await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(
            all.iter().map(|e| e.published_at).collect::<Vec<_>>(),
            [Some(t0()), Some(later), Some(later)]
        );
        uow.commit().await.unwrap();
    }
}

store_test! {
    async fn readiness_reports_a_schema_that_is_not_current(db: &TestDb) {
        db.execute("UPDATE _sqlx_migrations SET version = version + 1000").await;
        let err = db.store.readiness().await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::SchemaNotCurrent(_)), "{err:?}");
        assert!(message.contains("lendcore migrate"), "{message}");
    }
}

fn audit_entry(action: &str) -> lendcore_domain::audit::AuditEntry {
    lendcore_domain::audit::AuditEntry {
        at: t0(),
        actor: "system:test".into(),
        action: action.into(),
        subject_type: "drawdown".into(),
        subject_id: "d-1".into(),
        detail: "{}".into(),
    }
}

store_test! {
    async fn audit_entries_of_a_unit_of_work_are_written_with_it_or_not_at_all(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.append_audit("a-2", &audit_entry("decision.made")).await.unwrap();
        uow.append_audit("a-1", &audit_entry("drawdown.confirmed")).await.unwrap();
        assert_eq!(uow.pending_audit_count().await.unwrap(), 2, "read back within the unit of work");
        uow.append_audit("a-3", &audit_entry("drawdown.held")).await.unwrap();
        uow.commit().await.unwrap();

        let mut dropped = db.store.begin().await.unwrap();
        dropped.append_audit("a-4", &audit_entry("never.happened")).await.unwrap();
        dropped.rollback().await.unwrap();

        let mut sealer = db.store.begin().await.unwrap();
        let (_, pending) = sealer.claim_pending_audit(10).await.unwrap();
        let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a-1", "a-2", "a-3"], "all three, in id order; the rolled-back one never");
        assert_eq!(pending[0].1, audit_entry("drawdown.confirmed"));
    }

    async fn a_seal_of_entries_another_sealer_took_is_stale_and_keeps_nothing(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        for id in ["a-1", "a-2", "a-3"] {
            uow.append_audit(id, &audit_entry("drawdown.confirmed")).await.unwrap();
        }
        uow.commit().await.unwrap();
        let record = |seq: i64| lendcore_domain::audit::AuditRecord {
            seq,
            entry: audit_entry("drawdown.confirmed"),
            prev_hash: format!("h{}", seq - 1),
            hash: format!("h{seq}"),
        };
        // Two entries sealed in one batch: both records in, both entries gone.
        let mut first = db.store.begin().await.unwrap();
        first.seal_audit(&[record(1), record(2)], &["a-1".to_owned(), "a-2".to_owned()])
            .await
            .unwrap();
        first.commit().await.unwrap();
        // A second sealer that read a-2 before it went, with a-3: one of its two is gone.
        let mut late = db.store.begin().await.unwrap();
        let sealed = late
            .seal_audit(&[record(3), record(4)], &["a-2".to_owned(), "a-3".to_owned()])
            .await;
        assert!(matches!(sealed, Err(StoreError::Stale(_))), "{sealed:?}");
        late.rollback().await.unwrap();
        let mut sealer = db.store.begin().await.unwrap();
        let (_, pending) = sealer.claim_pending_audit(10).await.unwrap();
        let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a-3"], "the stale seal took nothing");
    }
}
