//! A seeded simulation of the money path on both stores: random drawdowns, repayments, close of
//! business days, freezes, channel faults (the sandbox over HTTP), workers that die mid-job and
//! process restarts. After every step an auditor — a small model of its own, fed only by what
//! the operations answered and what the channel did — checks the invariants: the line is never
//! overdrawn and its figures are the model's, each payout is in the books exactly when the
//! channel paid it, every ledger account equals what the model says it must, every entry
//! balances, and every end has a reason and a notification.
//!
//! The operations are a function of the seed; the seed is printed, and shown when the test
//! fails. Replay one with `LENDCORE_SIM_SEED=<seed> cargo test --test simulation`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use lendcore_connectors::channel::PaymentChannel;
use lendcore_connectors::channel::sandbox::Sandbox;
use lendcore_domain::allocation::Component;
use lendcore_domain::drawdown::{Drawdown, DrawdownStatus};
use lendcore_domain::ledger::{AccountKind, Layer, LoanAccounts};
use lendcore_domain::money::Currency;
use lendcore_domain::product::ProductCode;
use lendcore_domain::reasons::Reason;
use lendcore_engine::credit_lines::{self, LineChange};
use lendcore_engine::drawdowns::{self, DisburseHandler, DrawdownRequest, ExpireHandler};
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::loans::{self, RepaymentMode};
use lendcore_engine::{Clock, Engine, EngineError, ManualClock, cob};
use lendcore_store::{LeaseRequest, Store};
use lendcore_testkit::{TestDb, store_test};

mod common;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STEPS: usize = 250;
const LIMIT: i64 = 6_000_000;

/// Accounts and how often each is drawn to: how the sandbox treats the payout.
const ACCOUNTS: [(&str, u32); 8] = [
    ("acct-1", 12),
    ("acct-1~delayed:2", 3),
    ("acct-1~lost-answer", 2),
    ("acct-1~5xx-after-accept", 2),
    ("acct-1~timeout", 1),
    ("acct-1~reject:channel.account_invalid", 2),
    ("acct-1~fail-later:channel.limit", 1),
    ("acct-1~5xx", 1),
];

fn seed() -> u64 {
    match std::env::var("LENDCORE_SIM_SEED") {
        Ok(s) => s.parse().expect("LENDCORE_SIM_SEED is a number"),
        Err(_) => rand::random(),
    }
}

struct World {
    engine: Arc<Engine>,
    runner: JobRunner,
    clock: Arc<ManualClock>,
    channel: Arc<dyn PaymentChannel>,
    sandbox: Arc<Sandbox>,
    line_id: String,
    restarts: usize,
}

impl World {
    /// A process: an engine and a job runner on their own connection to the database.
    fn process(
        store: Arc<dyn Store>,
        clock: Arc<ManualClock>,
        channel: Arc<dyn PaymentChannel>,
        worker: String,
    ) -> (Arc<Engine>, JobRunner) {
        let engine = Arc::new(
            Engine::new(store.clone(), clock.clone()).with_channels(vec![channel.clone()]),
        );
        let runner = JobRunner::new(
            store,
            clock,
            RunnerConfig {
                worker_id: worker,
                lease: Duration::seconds(30),
                batch: 8,
                ..RunnerConfig::default()
            },
        )
        .register(DisburseHandler::new(vec![channel]))
        .register(ExpireHandler)
        .register(credit_lines::ExpiryHandler)
        .register(credit_lines::FreezeEndHandler);
        (engine, runner)
    }

    /// The process dies and another starts on the same database.
    async fn restart(&mut self, db: &TestDb) {
        self.restarts += 1;
        let store = db.second_store().await;
        let (engine, runner) = World::process(
            store,
            self.clock.clone(),
            self.channel.clone(),
            format!("worker-{}", self.restarts),
        );
        self.engine = engine;
        self.runner = runner;
    }

    /// Runs the jobs that are due, then lets time pass for the backoff, until nothing is left.
    async fn run_jobs(&self) {
        for _ in 0..40 {
            let report = self.runner.poll_once().await.unwrap();
            if report.ran() == 0 {
                self.clock.advance(Duration::minutes(11));
                if self.runner.poll_once().await.unwrap().ran() == 0 {
                    return;
                }
            }
        }
    }
}

async fn world(db: &TestDb) -> World {
    let start = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let (sandbox, url) = common::sandbox(StdDuration::from_secs(1)).await;
    let channel = common::http_channel("sandbox", &url, StdDuration::from_millis(300));
    let (engine, runner) = World::process(
        db.store.clone(),
        clock.clone(),
        channel.clone(),
        "worker-0".into(),
    );
    common::cash_product(&engine).await;
    let line_id = common::line(&engine, "b-sim", LIMIT, start, 3650).await;
    World {
        engine,
        runner,
        clock,
        channel,
        sandbox,
        line_id,
        restarts: 0,
    }
}

/// What the auditor knows of one drawdown: what was asked, the state it last saw, and the
/// money the repayment receipts say went where.
#[derive(Debug, Default, Clone)]
struct Known {
    amount: i64,
    disbursed: i64,
    account: String,
    state: &'static str,
    principal_paid: i64,
    interest_paid: i64,
    penalty_paid: i64,
    unapplied: i64,
}

#[derive(Debug, Default)]
struct Auditor {
    loans: HashMap<String, Known>,
    order: Vec<String>,
    frozen: bool,
    collected: i64,
}

/// The steps a drawdown may take; anything else is a bug.
fn legal(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            (
                "quoted",
                "disbursing" | "queued_for_maintenance" | "expired" | "refused"
            ) | ("queued_for_maintenance", "disbursing")
                | ("disbursing", "active" | "failed" | "manual_review")
                | ("manual_review", "active" | "failed")
                | ("active", "closed")
        )
}

impl Auditor {
    fn held(&self) -> i64 {
        self.loans
            .values()
            .filter(|l| {
                matches!(
                    l.state,
                    "disbursing" | "manual_review" | "queued_for_maintenance"
                )
            })
            .map(|l| l.amount)
            .sum()
    }

    fn drawn(&self) -> i64 {
        self.loans
            .values()
            .filter(|l| matches!(l.state, "active" | "closed"))
            .map(|l| l.amount - l.principal_paid)
            .sum()
    }

    /// Reads everything back and checks it against the model; learns the states the jobs moved.
    async fn audit(&mut self, w: &World, seed: u64, step: usize, what: &str) {
        let at = format!("seed {seed}, step {step} ({what})");
        // Every loan is on the one line, so one borrower's snapshot holds them all.
        let borrower =
            lendcore_domain::ids::borrower_of(&w.line_id).expect("a line id names its borrower");
        let mut uow = w.engine.store.begin_read_for(borrower).await.unwrap();
        let mut paid_out = 0;
        for id in &self.order {
            let loan: Drawdown = uow.find_drawdown(id).await.unwrap().unwrap();
            let known = self.loans.get_mut(id).unwrap();
            let state = loan.status.name();
            assert!(
                legal(known.state, state),
                "{at}: {id} went {} → {state}",
                known.state
            );
            known.state = state;
            let topics: Vec<String> = uow
                .outbox_for("drawdown", id)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.topic)
                .collect();
            let told = |topic: &str| topics.iter().any(|t| t == topic);
            let paid = w.sandbox.paid_minor(&format!("{id}:sandbox"));
            match &loan.status {
                DrawdownStatus::Expired { .. }
                | DrawdownStatus::Refused { .. }
                | DrawdownStatus::Failed { .. } => {
                    assert!(
                        loan.status.terminal_reason().is_some(),
                        "{at}: {id} ended without a reason"
                    );
                    assert!(
                        told("drawdown.ended"),
                        "{at}: {id} ended untold: {topics:?}"
                    );
                    assert_eq!(
                        paid, None,
                        "{at}: {id} ended unpaid, yet the channel paid it"
                    );
                }
                DrawdownStatus::Closed { reason } => {
                    assert_eq!(*reason, Reason::PaidOff, "{at}");
                    assert!(told("loan.paid_off"), "{at}: {id} closed untold");
                    assert_eq!(
                        known.principal_paid, known.amount,
                        "{at}: {id} closed owing principal"
                    );
                }
                DrawdownStatus::ManualReview { reason, .. } => {
                    assert!(
                        told("drawdown.manual_review"),
                        "{at}: {id} handed over untold ({reason:?})"
                    );
                }
                DrawdownStatus::HeldForReview { reason } => {
                    assert!(told("drawdown.held"), "{at}: {id} held untold ({reason:?})");
                    assert_eq!(paid, None, "{at}: {id} is held, yet the channel paid it");
                }
                DrawdownStatus::Active
                | DrawdownStatus::Quoted { .. }
                | DrawdownStatus::Disbursing
                | DrawdownStatus::QueuedForMaintenance { .. } => {}
            }
            let accounts = LoanAccounts {
                loan_id: id.clone(),
                channel_id: "sandbox".into(),
                currency: Currency::Cny,
            };
            let mut posted = HashMap::new();
            for kind in [
                AccountKind::PrincipalReceivable,
                AccountKind::InterestReceivable,
                AccountKind::PenaltyReceivable,
                AccountKind::FeeReceivable,
                AccountKind::Suspense,
            ] {
                posted.insert(
                    kind,
                    uow.account_balance(&accounts.account(kind), Layer::Posted)
                        .await
                        .unwrap(),
                );
            }
            let pending = uow
                .account_balance(
                    &accounts.account(AccountKind::PrincipalReceivable),
                    Layer::Pending,
                )
                .await
                .unwrap();
            let in_books = matches!(state, "active" | "closed");
            if in_books {
                assert_eq!(
                    paid,
                    Some(known.disbursed),
                    "{at}: {id} ({}) is in the books, so the channel paid it once, in full",
                    known.account
                );
                paid_out += known.disbursed;
            }
            let owed_principal = if in_books {
                known.amount - known.principal_paid
            } else {
                0
            };
            assert_eq!(
                posted[&AccountKind::PrincipalReceivable],
                owed_principal,
                "{at}: {id} principal receivable"
            );
            let promised = if matches!(
                state,
                "disbursing" | "manual_review" | "queued_for_maintenance"
            ) {
                known.amount
            } else {
                0
            };
            assert_eq!(pending, promised, "{at}: {id} pending payout");
            assert_eq!(
                posted[&AccountKind::InterestReceivable],
                loan.servicing.interest_accrued_minor - known.interest_paid,
                "{at}: {id} interest receivable is what accrued less what was paid"
            );
            assert!(
                posted[&AccountKind::InterestReceivable] >= 0,
                "{at}: {id} interest paid before it was recognised"
            );
            let penalties: i64 = loan.servicing.penalties.iter().map(|(_, m)| m).sum();
            assert_eq!(
                posted[&AccountKind::PenaltyReceivable],
                penalties - known.penalty_paid,
                "{at}: {id} penalty receivable"
            );
            assert_eq!(
                posted[&AccountKind::FeeReceivable],
                0,
                "{at}: {id} fees are charged as they are paid"
            );
            assert_eq!(
                posted[&AccountKind::Suspense],
                -known.unapplied,
                "{at}: {id} overpayments wait in suspense"
            );
        }
        let line = uow.find_credit_line(&w.line_id).await.unwrap().unwrap();
        assert!(
            line.drawn_minor + line.held_minor <= line.limit_minor,
            "{at}: line overdrawn"
        );
        assert_eq!(
            line.held_minor,
            self.held(),
            "{at}: held is what is being paid out"
        );
        assert_eq!(
            line.drawn_minor,
            self.drawn(),
            "{at}: drawn is the principal paid out and not repaid"
        );
        let channel = LoanAccounts {
            loan_id: String::new(),
            channel_id: "sandbox".into(),
            currency: Currency::Cny,
        };
        assert_eq!(
            uow.account_balance(
                &channel.account(AccountKind::ChannelSettlement),
                Layer::Posted
            )
            .await
            .unwrap(),
            -paid_out,
            "{at}: the channel's account is what it paid out"
        );
        let collections = LoanAccounts {
            loan_id: String::new(),
            channel_id: "collections".into(),
            currency: Currency::Cny,
        };
        assert_eq!(
            uow.account_balance(
                &collections.account(AccountKind::ChannelSettlement),
                Layer::Posted
            )
            .await
            .unwrap(),
            self.collected,
            "{at}: collections hold every repayment received"
        );
        assert!(
            uow.unbalanced_entries().await.unwrap().is_empty(),
            "{at}: an entry does not balance"
        );
    }
}

fn pick_account(rng: &mut StdRng) -> &'static str {
    let total: u32 = ACCOUNTS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (account, weight) in ACCOUNTS {
        if roll < weight {
            return account;
        }
        roll -= weight;
    }
    ACCOUNTS[0].0
}

async fn simulate(db: &TestDb) {
    let seed = seed();
    eprintln!(
        "simulation seed {seed} (replay: LENDCORE_SIM_SEED={seed} cargo test --test simulation)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = world(db).await;
    let mut auditor = Auditor::default();
    for step in 0..STEPS {
        let roll = rng.random_range(0..100);
        let what = match roll {
            0..40 => {
                let amount = rng.random_range(1_000..=8_000) * 100;
                let account = pick_account(&mut rng);
                let available = LIMIT - auditor.drawn() - auditor.held();
                let request = DrawdownRequest {
                    line_id: w.line_id.clone(),
                    product: ProductCode::parse("cash").unwrap(),
                    amount_minor: amount,
                    term: if rng.random_bool(0.5) { 3 } else { 6 },
                    split: None,
                    account: account.into(),
                };
                match drawdowns::quote(&w.engine, request, None).await {
                    Ok(quoted) => {
                        let quoted = quoted.into_inner();
                        assert!(
                            !auditor.frozen && amount <= available,
                            "seed {seed}, step {step}: quoted {amount} with {available} available, frozen {}",
                            auditor.frozen
                        );
                        let id = quoted.drawdown.id.clone();
                        auditor.order.push(id.clone());
                        auditor.loans.insert(
                            id.clone(),
                            Known {
                                amount,
                                disbursed: quoted.drawdown.quote.schedule.disbursed_minor,
                                account: account.into(),
                                state: "quoted",
                                ..Known::default()
                            },
                        );
                        // Most borrowers confirm; some walk away and their quote expires.
                        if rng.random_bool(0.85) {
                            let view =
                                drawdowns::confirm(&w.engine, &quoted.confirmation_token, None)
                                    .await
                                    .unwrap()
                                    .into_inner();
                            assert_eq!(
                                view.drawdown.status,
                                DrawdownStatus::Disbursing,
                                "seed {seed}, step {step}"
                            );
                        }
                    }
                    Err(EngineError::Refused { reason }) => {
                        let expected = if auditor.frozen {
                            Reason::Overdue
                        } else {
                            Reason::LimitExceeded
                        };
                        assert_eq!(
                            reason, expected,
                            "seed {seed}, step {step}: refused {amount} with {available} available"
                        );
                        assert!(
                            auditor.frozen || amount > available,
                            "seed {seed}, step {step}: refused {amount} with {available} available"
                        );
                    }
                    Err(other) => panic!("seed {seed}, step {step}: {other:?}"),
                }
                "drawdown"
            }
            40..60 => {
                w.run_jobs().await;
                "jobs"
            }
            60..75 => {
                let active: Vec<String> = auditor
                    .order
                    .iter()
                    .filter(|id| auditor.loans[*id].state == "active")
                    .cloned()
                    .collect();
                if active.is_empty() {
                    "repayment (nothing to repay)"
                } else {
                    let id = active[rng.random_range(0..active.len())].clone();
                    let payoff = rng.random_bool(0.25);
                    let amount = rng.random_range(1..=400) * 1_000;
                    let mode = if payoff {
                        RepaymentMode::Payoff
                    } else {
                        RepaymentMode::Installments
                    };
                    match loans::repay(&w.engine, &id, amount, mode, None).await {
                        Ok(receipt) => {
                            let receipt = receipt.into_inner();
                            let known = auditor.loans.get_mut(&id).unwrap();
                            let shares: i64 = receipt
                                .allocation
                                .shares
                                .iter()
                                .map(|s| s.amount_minor)
                                .sum();
                            assert_eq!(
                                shares + receipt.allocation.unapplied_minor,
                                amount,
                                "seed {seed}, step {step}: money allocated is money received"
                            );
                            for share in &receipt.allocation.shares {
                                match share.component {
                                    Component::Principal => {
                                        known.principal_paid += share.amount_minor
                                    }
                                    Component::Interest => {
                                        known.interest_paid += share.amount_minor
                                    }
                                    Component::Penalty => known.penalty_paid += share.amount_minor,
                                    // Fees are charged as they are paid: nothing stays receivable.
                                    Component::Fee => {}
                                }
                            }
                            known.unapplied += receipt.allocation.unapplied_minor;
                            auditor.collected += amount;
                            assert_eq!(
                                receipt.outstanding_principal_minor,
                                known.amount - known.principal_paid,
                                "seed {seed}, step {step}"
                            );
                        }
                        Err(err) if payoff && err.code() == "validation.amount_below_payoff" => {}
                        Err(err) if err.code() == "validation.amount_above_owed" => {}
                        Err(other) => {
                            panic!("seed {seed}, step {step}: repay {amount} ({mode:?}): {other:?}")
                        }
                    }
                    "repayment"
                }
            }
            75..85 => {
                // One to four business days pass, each closed in turn.
                for _ in 0..rng.random_range(1..=4) {
                    w.clock.advance(Duration::days(1));
                    let date = w.clock.now().date_naive();
                    cob::run(&w.engine, date, |_, _| {}).await.unwrap();
                }
                "close of business"
            }
            85..90 => {
                let change = if auditor.frozen {
                    LineChange::Unfreeze
                } else {
                    LineChange::Freeze {
                        reason: Reason::Overdue,
                        until: None,
                    }
                };
                credit_lines::change(&w.engine, &w.line_id, change, "risk:sim".into(), None, None)
                    .await
                    .unwrap();
                auditor.frozen = !auditor.frozen;
                "freeze or unfreeze"
            }
            90..95 => {
                // A worker leases what is due and dies; its leases run out and others take over.
                let now = w.clock.now();
                let mut uow = w.engine.store.begin().await.unwrap();
                let kinds = ["drawdown.disburse", "drawdown.expire"];
                uow.lease_jobs(&LeaseRequest {
                    owner: "doomed",
                    token: &format!("doomed-{step}"),
                    kinds: &kinds,
                    limit: 4,
                    now,
                    until: now + Duration::seconds(30),
                })
                .await
                .unwrap();
                uow.commit().await.unwrap();
                w.clock.advance(Duration::seconds(31));
                "a worker died mid-job"
            }
            _ => {
                w.restart(db).await;
                "restart"
            }
        };
        auditor.audit(&w, seed, step, what).await;
    }
    // Let everything settle: payouts finish, quotes expire, dead payouts go to a person.
    w.clock.advance(Duration::hours(1));
    w.run_jobs().await;
    let date = w.clock.now().date_naive();
    cob::run(&w.engine, date, |_, _| {}).await.unwrap();
    auditor.audit(&w, seed, STEPS, "settled").await;
    let mut ends: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for known in auditor.loans.values() {
        *ends.entry(known.state).or_default() += 1;
    }
    eprintln!(
        "seed {seed}: {ends:?}, {} restart(s), {} collected",
        w.restarts, auditor.collected
    );
    for (id, known) in &auditor.loans {
        assert!(
            !matches!(
                known.state,
                "quoted" | "disbursing" | "queued_for_maintenance"
            ),
            "seed {seed}: {id} ({}) left {} with nothing to move it",
            known.account,
            known.state
        );
    }
}

store_test! {
    async fn a_seeded_simulation_keeps_every_invariant_after_every_step(db: &TestDb) {
        simulate(db).await;
    }
}
