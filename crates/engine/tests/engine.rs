//! Use cases and the job runner, on both stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_domain::jobs::Backoff;
use lendcore_domain::product::{NewProductInput, ProductCode, ProductKind, ProductTermsInput};
use lendcore_engine::jobs::{
    self, JobContext, JobDone, JobFailure, JobHandler, JobRunner, RunnerConfig,
};
use lendcore_engine::products::{self, VersionEffectiveHandler};
use lendcore_engine::{Clock, Engine, EngineError, IdempotencyKey, IdempotentRequest, ManualClock};
use lendcore_store::{Job, JobStatus, LeaseRequest, NewJob};
use lendcore_testkit::store_test;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

fn terms(rate: &str) -> ProductTermsInput {
    serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 100000, "max_minor": 5000000},
        "terms": {"unit": "month", "options": [3, 6, 12]},
        "rate": {"basis": "annual", "value": rate},
        "repayment_method": "equal_installment",
        "penalty_daily_rate": "0.0005",
        "grace_days": 3
    }))
    .unwrap()
}

fn input(code: &str) -> NewProductInput {
    NewProductInput {
        code: code.into(),
        name: "Cash loan".into(),
        kind: ProductKind::Installment,
        currency: "CNY".into(),
        terms: terms("0.18"),
        effective_from: None,
    }
}

fn keyed(key: &str, body: &str) -> IdempotentRequest {
    IdempotentRequest::new(
        "test",
        IdempotencyKey::parse(key).unwrap(),
        "POST",
        "/v1/products",
        body.as_bytes(),
    )
}

fn engine_on(store: Arc<dyn lendcore_store::Store>) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    (Engine::new(store, clock.clone()), clock)
}

fn code(s: &str) -> ProductCode {
    ProductCode::parse(s).unwrap()
}

async fn outbox_topics(engine: &Engine, product_id: &str) -> Vec<String> {
    let mut uow = engine.store.begin_read().await.unwrap();
    let events = uow.outbox_for("product", product_id).await.unwrap();
    events.into_iter().map(|e| e.topic).collect()
}

struct AlwaysFails;

#[async_trait]
impl JobHandler for AlwaysFails {
    fn kind(&self) -> &'static str {
        "test.always_fails"
    }
    async fn run(&self, _job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
        Err(JobFailure::retryable("the dependency is down"))
    }
}

#[derive(Default, Clone)]
struct Counts(Arc<AtomicUsize>);

#[async_trait]
impl JobHandler for Counts {
    fn kind(&self) -> &'static str {
        "test.counts"
    }
    async fn run(&self, _job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(JobDone::Succeeded)
    }
}

fn runner(engine: &Engine, worker: &str) -> JobRunner {
    JobRunner::new(
        engine.store.clone(),
        engine.clock.clone(),
        RunnerConfig {
            worker_id: worker.into(),
            lease: Duration::seconds(30),
            backoff: Backoff {
                base_delay: Duration::seconds(1),
                max_delay: Duration::seconds(10),
            },
            ..RunnerConfig::default()
        },
    )
}

async fn enqueue(engine: &Engine, id: &str, kind: &str, max_attempts: u32) {
    let mut uow = engine.store.begin().await.unwrap();
    uow.enqueue_job(
        &NewJob {
            id: id.into(),
            kind: kind.into(),
            payload: serde_json::json!({}),
            run_at: engine.clock.now(),
            max_attempts,
        },
        engine.clock.now(),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
}

store_test! {
    async fn a_replayed_request_returns_the_first_result_without_a_second_effect(db: &TestDb) {
        let (engine, clock) = engine_on(db.store.clone());
        let request = keyed("k1", r#"{"code":"cash"}"#);
        let first = products::create_product(&engine, input("cash"), Some(&request)).await.unwrap();
        clock.advance(Duration::minutes(5));
        let again = products::create_product(&engine, input("cash"), Some(&request)).await.unwrap();
        assert!(!first.is_replay());
        assert!(again.is_replay());
        assert_eq!(first.into_inner(), again.clone().into_inner());
        let id = again.into_inner().product.id;
        assert_eq!(outbox_topics(&engine, &id).await, ["product.created"]);
    }

    async fn a_key_reused_with_another_body_is_refused(db: &TestDb) {
        let (engine, _) = engine_on(db.store.clone());
        products::create_product(&engine, input("cash"), Some(&keyed("k1", "{\"a\":1}"))).await.unwrap();
        let err = products::create_product(&engine, input("other"), Some(&keyed("k1", "{\"a\":2}")))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::IdempotencyKeyReused), "{err:?}");
        let err = products::get_product(&engine, &code("other")).await.unwrap_err();
        assert_eq!(err.code(), "not_found.product");
    }

    async fn concurrent_identical_requests_have_one_effect(db: &TestDb) {
        let (engine, _) = engine_on(db.store.clone());
        let engine = Arc::new(engine);
        let request = keyed("same-key", r#"{"code":"cash"}"#);
        let attempts = (0..8).map(|_| {
            let engine = engine.clone();
            let request = request.clone();
            tokio::spawn(async move {
                products::create_product(&engine, input("cash"), Some(&request)).await
            })
        });
        let results: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();
        let views: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
        let fresh = views.iter().filter(|o| !o.is_replay()).count();
        assert_eq!(fresh, 1, "exactly one request did the work");
        let first = views[0].clone().into_inner();
        assert!(views.iter().all(|o| o.clone().into_inner() == first));
        assert_eq!(outbox_topics(&engine, &first.product.id).await, ["product.created"]);
    }

    async fn a_taken_code_is_a_conflict_not_a_crash(db: &TestDb) {
        let (engine, _) = engine_on(db.store.clone());
        products::create_product(&engine, input("cash"), None).await.unwrap();
        let err = products::create_product(&engine, input("cash"), None).await.unwrap_err();
        assert_eq!(err.code(), "conflict.product_code_taken");
    }

    async fn a_cached_product_shows_every_write_on_the_next_read(db: &TestDb) {
        let (engine, clock) = engine_on(db.store.clone());
        products::create_product(&engine, input("cash"), None).await.unwrap();
        let before = products::get_product(&engine, &code("cash")).await.unwrap();
        let cached = products::get_product(&engine, &code("cash")).await.unwrap();
        assert_eq!(before, cached);

        // A write through this engine: visible at once.
        clock.advance(Duration::seconds(1));
        products::add_product_version(&engine, &code("cash"), terms("0.12"), None, None).await.unwrap();
        let after = products::get_product(&engine, &code("cash")).await.unwrap();
        assert_eq!(after.product.versions.len(), 2);
        assert_eq!(after.current_version, Some(2));

        // A write by another process, whose cache and store are its own: visible at once too.
        let (other, _) = engine_on(db.second_store().await);
        products::retire_product(&other, &code("cash"), t0() + Duration::days(30), None).await.unwrap();
        let seen = products::get_product(&engine, &code("cash")).await.unwrap();
        assert_eq!(seen.product.ends_at, Some(t0() + Duration::days(30)));
        other.store.close().await;
    }

    async fn a_scheduled_version_is_announced_when_it_takes_effect(db: &TestDb) {
        let (engine, clock) = engine_on(db.store.clone());
        let created = products::create_product(&engine, input("cash"), None).await.unwrap().into_inner();
        // Clients send finer instants than the stores keep (Python sends microseconds).
        let at = t0() + Duration::days(2) + Duration::nanoseconds(123_456_789);
        products::add_product_version(&engine, &code("cash"), terms("0.12"), Some(at), None).await.unwrap();
        let runner = runner(&engine, "w1").register(VersionEffectiveHandler);

        assert_eq!(runner.poll_once().await.unwrap().ran(), 0, "not due yet");
        clock.set(at);
        let report = runner.poll_once().await.unwrap();
        assert_eq!(report.succeeded, 1);
        assert_eq!(
            outbox_topics(&engine, &created.product.id).await,
            ["product.created", "product.version_added", "product.version_effective"]
        );
        let view = products::get_product(&engine, &code("cash")).await.unwrap();
        assert_eq!(view.current_version, Some(2));
    }

    async fn a_job_that_keeps_failing_is_dead_lettered_then_redriven(db: &TestDb) {
        let (engine, clock) = engine_on(db.store.clone());
        enqueue(&engine, "doomed", "test.always_fails", 3).await;
        let runner = runner(&engine, "w1").register(AlwaysFails);
        let mut reports = Vec::new();
        for _ in 0..3 {
            reports.push(runner.poll_once().await.unwrap());
            clock.advance(Duration::seconds(11));
        }
        assert_eq!(reports.iter().map(|r| r.retried).sum::<usize>(), 2);
        assert_eq!(reports[2].dead_lettered, 1);
        let dead = jobs::list_jobs(&engine, JobStatus::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].attempts, 3);
        assert_eq!(dead[0].last_error.as_deref(), Some("the dependency is down"));
        assert_eq!(runner.poll_once().await.unwrap().ran(), 0, "dead jobs stay put");

        let redriven = jobs::redrive_job(&engine, "doomed", None).await.unwrap().into_inner();
        assert_eq!((redriven.status.as_str(), redriven.attempts), ("pending", 0));
        assert_eq!(runner.poll_once().await.unwrap().retried, 1);
        let err = jobs::redrive_job(&engine, "doomed", None).await.unwrap_err();
        assert_eq!(err.code(), "conflict.job_not_dead");
        let err = jobs::redrive_job(&engine, "nope", None).await.unwrap_err();
        assert_eq!(err.code(), "not_found.job");
    }

    async fn a_job_whose_worker_died_is_finished_by_another(db: &TestDb) {
        let (engine, clock) = engine_on(db.store.clone());
        enqueue(&engine, "j1", "test.counts", 5).await;
        // Worker A leases the job, then its process dies: nothing more is heard from it.
        let mut uow = engine.store.begin().await.unwrap();
        let taken = uow
            .lease_jobs(&LeaseRequest {
                owner: "worker-a",
                token: "worker-a-lease-1",
                kinds: &["test.counts"],
                limit: 1,
                now: clock.now(),
                until: clock.now() + Duration::seconds(30),
            })
            .await
            .unwrap();
        uow.commit().await.unwrap();
        assert_eq!(taken.len(), 1);

        let counts = Counts::default();
        let b = runner(&engine, "worker-b").register(counts.clone());
        assert_eq!(b.poll_once().await.unwrap().ran(), 0, "A's lease still holds");
        clock.advance(Duration::seconds(31));
        assert_eq!(b.poll_once().await.unwrap().succeeded, 1);
        assert_eq!(counts.0.load(Ordering::SeqCst), 1);
        let mut read = engine.store.begin_read().await.unwrap();
        let job = read.find_job("j1").await.unwrap().unwrap();
        assert_eq!((job.status, job.attempts), (JobStatus::Succeeded, 2));
    }

    async fn a_panicking_or_overrunning_job_fails_its_attempt_not_the_worker(db: &TestDb) {
        struct Panics;
        #[async_trait]
        impl JobHandler for Panics {
            fn kind(&self) -> &'static str { "test.panics" }
            async fn run(&self, _job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
                panic!("handler bug")
            }
        }
        /// Sleeps past its budget; counts only if it was not stopped.
        #[derive(Clone, Default)]
        struct Hangs(Arc<AtomicUsize>);
        #[async_trait]
        impl JobHandler for Hangs {
            fn kind(&self) -> &'static str { "test.hangs" }
            async fn run(&self, _job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(JobDone::Succeeded)
            }
        }
        let (engine, _) = engine_on(db.store.clone());
        enqueue(&engine, "p", "test.panics", 3).await;
        enqueue(&engine, "h", "test.hangs", 3).await;
        enqueue(&engine, "u", "test.unknown", 3).await;
        // The panicking handler gets a long budget: printing a panic's backtrace on a busy
        // machine may take longer than the one second the overrunning handler is given.
        let runner = JobRunner::new(engine.store.clone(), engine.clock.clone(), RunnerConfig {
            lease: Duration::seconds(60),
            ..RunnerConfig::default()
        })
        .register(Panics);
        assert_eq!(runner.poll_once().await.unwrap().retried, 1);
        let hangs = Hangs::default();
        let runner = JobRunner::new(engine.store.clone(), engine.clock.clone(), RunnerConfig {
            lease: Duration::seconds(1),
            ..RunnerConfig::default()
        })
        .register(hangs.clone());
        assert_eq!(runner.poll_once().await.unwrap().retried, 1);
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert_eq!(hangs.0.load(Ordering::SeqCst), 0, "the overrunning handler was aborted");

        let mut read = engine.store.begin_read().await.unwrap();
        let p = read.find_job("p").await.unwrap().unwrap().last_error.unwrap();
        assert!(p.contains("panicked"), "{p}");
        let h = read.find_job("h").await.unwrap().unwrap().last_error.unwrap();
        assert!(h.contains("aborted"), "{h}");
        let u = read.find_job("u").await.unwrap().unwrap();
        assert_eq!((u.status, u.attempts), (JobStatus::Pending, 0), "left for a worker that knows it");
    }
}
