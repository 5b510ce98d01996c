//! Drawdowns end to end on both stores, paid out through the sandbox channel over real HTTP:
//! every fault mode ends in exactly one payout or none, with a reason and a notification.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use lendcore_connectors::channel::protocol;
use lendcore_connectors::channel::sandbox::Sandbox;
use lendcore_domain::drawdown::{DrawdownStatus, PayoutAnswer, PayoutCall};
use lendcore_domain::ledger::{AccountKind, Layer, LoanAccounts};
use lendcore_domain::maintenance::WindowInput;
use lendcore_domain::money::Currency;
use lendcore_domain::product::ProductCode;
use lendcore_domain::reasons::{Language, Reason};
use lendcore_engine::acting::on_behalf_of as by;
use lendcore_engine::credit_lines::{self, LineChange};
use lendcore_engine::drawdowns::{self, DisburseHandler, DrawdownRequest, ExpireHandler, review};
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::loans::{self, RepaymentMode};
use lendcore_engine::{Clock, Engine, EngineError, IdempotencyKey, IdempotentRequest, ManualClock};
use lendcore_engine::{callbacks, cob, maintenance, timeline};
use lendcore_testkit::store_test;

mod common;

struct World {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    sandbox: Arc<Sandbox>,
    runner: JobRunner,
    line_id: String,
}

/// A product, a 30,000 line and the sandbox channel; with `dead_first`, a channel that refuses
/// every connection comes before the sandbox.
async fn world(store: Arc<dyn lendcore_store::Store>, dead_first: bool) -> World {
    let start = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let (sandbox, url) = common::sandbox(StdDuration::from_secs(2)).await;
    let timeout = StdDuration::from_millis(400);
    let mut channels = vec![common::http_channel("sandbox", &url, timeout)];
    if dead_first {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        channels.insert(0, common::http_channel("dead", &dead_url, timeout));
    }
    let engine = Arc::new(
        Engine::new(store.clone(), clock.clone())
            .with_channels(channels.clone())
            .with_callback_secret("sandbox", b"cb-secret".to_vec()),
    );
    common::cash_product(&engine).await;
    let line_id = common::line(&engine, "b-1", 3_000_000, start, 365).await;
    let runner = JobRunner::new(
        store,
        clock.clone(),
        RunnerConfig {
            worker_id: "w".into(),
            lease: Duration::seconds(30),
            batch: 16,
            ..RunnerConfig::default()
        },
    )
    .register(DisburseHandler::new(channels))
    .register(ExpireHandler)
    .register(drawdowns::held::HoldExpiryHandler)
    .register(maintenance::NoticeHandler)
    .register(credit_lines::ExpiryHandler)
    .register(credit_lines::FreezeEndHandler)
    // A slice of no time at all: close of business moves one loan per run, as a huge book
    // would move one slice per run.
    .register(cob::CobHandler::new(StdDuration::ZERO, 1))
    .register(lendcore_engine::decisions::LineReviewHandler::new(
        engine.clone(),
    ))
    .register(lendcore_engine::decisions::ReviewApplyHandler::new(
        engine.clone(),
    ));
    World {
        engine,
        clock,
        sandbox,
        runner,
        line_id,
    }
}

impl World {
    fn request(&self, amount_minor: i64, account: &str) -> DrawdownRequest {
        DrawdownRequest {
            line_id: self.line_id.clone(),
            product: ProductCode::parse("cash").unwrap(),
            amount_minor,
            term: 12,
            split: None,
            account: account.into(),
        }
    }

    /// Quotes and confirms; returns the drawdown id.
    async fn draw(&self, amount_minor: i64, account: &str) -> String {
        let quoted = drawdowns::quote(&self.engine, self.request(amount_minor, account), None)
            .await
            .unwrap()
            .into_inner();
        let view = drawdowns::confirm(&self.engine, &quoted.confirmation_token, None)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(view.drawdown.status, DrawdownStatus::Disbursing);
        view.drawdown.id
    }

    /// Runs the job runner until nothing is due, moving the clock past any backoff.
    async fn settle(&self) {
        for _ in 0..30 {
            let report = self.runner.poll_once().await.unwrap();
            if report.ran() == 0 {
                self.clock.advance(Duration::minutes(11));
                if self.runner.poll_once().await.unwrap().ran() == 0 {
                    return;
                }
            }
        }
    }

    async fn status(&self, id: &str) -> DrawdownStatus {
        drawdowns::get(&self.engine, id, Language::En)
            .await
            .unwrap()
            .drawdown
            .status
    }

    async fn line(&self) -> (i64, i64) {
        let l = credit_lines::get(&self.engine, &self.line_id)
            .await
            .unwrap()
            .line;
        (l.drawn_minor, l.held_minor)
    }

    async fn topics(&self, id: &str) -> Vec<String> {
        let mut uow = self.engine.store.begin_read().await.unwrap();
        uow.outbox_for("drawdown", id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.topic)
            .collect()
    }
}

store_test! {
    async fn a_channel_callback_makes_the_payout_settle_now_but_decides_nothing_itself(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct~delayed:1").await;
        assert_eq!(w.runner.poll_once().await.unwrap().retried, 1, "pending at the channel");
        assert_eq!(w.status(&id).await, DrawdownStatus::Disbursing);

        let body = serde_json::to_vec(&serde_json::json!({
            "reference": format!("{id}:sandbox"), "channel_reference": "x", "status": "succeeded",
            "amount_minor": 99_000, "currency": "CNY"
        })).unwrap();
        // A forged callback (bad signature), a stale one and an unsigned one are refused and
        // schedule nothing.
        let jobs_before = w.runner.poll_once().await.unwrap().ran();
        assert_eq!(jobs_before, 0);
        let forged = callbacks::receive(&w.engine, "sandbox", Some(&w.clock.now().timestamp().to_string()), Some("00"), &body).await.unwrap_err();
        assert_eq!(forged.code(), "auth.bad_signature");
        let stale_ts = w.clock.now().timestamp() - 301;
        let stale = callbacks::receive(&w.engine, "sandbox", Some(&stale_ts.to_string()),
            Some(&protocol::sign(b"cb-secret", stale_ts, &body)), &body).await.unwrap_err();
        assert_eq!(stale.code(), "auth.bad_signature");
        let unsigned = callbacks::receive(&w.engine, "sandbox", None, None, &body).await.unwrap_err();
        assert_eq!(unsigned.code(), "auth.bad_signature");
        assert_eq!(w.runner.poll_once().await.unwrap().ran(), 0, "a refused callback schedules nothing");
        assert_eq!(w.status(&id).await, DrawdownStatus::Disbursing, "a callback changes nothing by itself");
        let ts = w.clock.now().timestamp();
        let signed = protocol::sign(b"cb-secret", ts, &body);
        let genuine = callbacks::receive(&w.engine, "sandbox", Some(&ts.to_string()), Some(&signed), &body).await.unwrap();
        assert!(genuine.received);

        // The prompted run asks the channel now, without waiting for the backoff.
        w.runner.poll_once().await.unwrap();
        assert_eq!(w.status(&id).await, DrawdownStatus::Active);
        let again = callbacks::receive(&w.engine, "sandbox", Some(&ts.to_string()), Some(&signed), &body).await.unwrap();
        assert_eq!(again, genuine, "the answer says nothing about the drawdown");
        let unknown = callbacks::receive(&w.engine, "nope", None, None, &body).await.unwrap_err();
        assert_eq!(unknown.code(), "not_found.channel");
        w.settle().await;
        assert!(w.sandbox.accepted(&format!("{id}:sandbox")));
        assert_eq!(w.line().await, (100_000, 0));
    }

    async fn a_channel_that_never_got_the_payout_is_failed_over(db: &TestDb) {
        let w = world(db.store.clone(), true).await;
        let id = w.draw(100_000, "acct-1").await;
        w.settle().await;
        assert_eq!(w.status(&id).await, DrawdownStatus::Active);
        let view = drawdowns::get(&w.engine, &id, Language::En).await.unwrap();
        let calls: Vec<(String, PayoutCall, Option<PayoutAnswer>)> = view
            .payout_attempts
            .iter()
            .map(|a| (a.channel_id.clone(), a.action, a.outcome))
            .collect();
        assert_eq!(calls[0], ("dead".into(), PayoutCall::Submit, Some(PayoutAnswer::NotSent)));
        assert!(calls[1..].iter().all(|(channel, _, _)| channel == "sandbox"), "{calls:?}");
        assert!(w.sandbox.accepted(&format!("{id}:sandbox")));
    }

    async fn repayments_settle_installments_restore_the_line_and_a_payoff_closes_the_loan(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(1_000_000, "acct-1").await;
        w.settle().await;
        let loan = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        let first = loan.quote.schedule.installments[0].clone();

        let receipt = loans::repay(&w.engine, &id, first.total_minor, RepaymentMode::Installments, None)
            .await.unwrap().into_inner();
        assert_eq!(receipt.allocation.unapplied_minor, 0);
        assert_eq!(receipt.outstanding_principal_minor, 1_000_000 - first.principal_minor);
        assert_eq!(w.line().await, (1_000_000 - first.principal_minor, 0), "repaid principal is available again");
        assert_eq!(receipt.loan.paid[0].interest_minor, first.interest_minor);

        let short = loans::repay(&w.engine, &id, 1_000, RepaymentMode::Payoff, None).await.unwrap_err();
        assert_eq!(short.code(), "validation.amount_below_payoff");
        // Paying off the day after the first due date: the principal left, plus one day's interest.
        w.clock.set(chrono::DateTime::from_naive_utc_and_offset(first.due_date.and_hms_opt(12, 0, 0).unwrap(), Utc) + Duration::days(1));
        let outstanding = 1_000_000 - first.principal_minor;
        // More than is owed is refused, and writes nothing: no loan closed, no collections
        // account debited by an amount typed wrong.
        let whole_schedule = loan.quote.schedule.total_repaid_minor;
        for (too_much, mode, code) in [
            (i64::MAX, RepaymentMode::Payoff, "validation.amount_out_of_range"),
            (i64::MAX, RepaymentMode::Installments, "validation.amount_out_of_range"),
            (outstanding + 50_000, RepaymentMode::Payoff, "validation.amount_above_owed"),
            // What is left of the schedule is less than all of it, one installment being paid.
            (whole_schedule, RepaymentMode::Installments, "validation.amount_above_owed"),
        ] {
            let refused = loans::repay(&w.engine, &id, too_much, mode, None).await.unwrap_err();
            assert_eq!(refused.code(), code, "{too_much} {mode:?}");
        }
        assert_eq!(w.line().await, (1_000_000 - first.principal_minor, 0), "nothing written");
        let refused = loans::repay(&w.engine, &id, outstanding + 50_000, RepaymentMode::Payoff, None).await.unwrap_err();
        let payoff: i64 = refused.to_string().split(' ').next().unwrap().parse().unwrap();
        assert!(payoff > outstanding, "the principal left and today's interest: {refused}");
        let closing = loans::repay(&w.engine, &id, payoff, RepaymentMode::Payoff, None).await.unwrap().into_inner();
        assert_eq!(closing.loan.status, DrawdownStatus::Closed { reason: Reason::PaidOff });
        assert_eq!(closing.outstanding_principal_minor, 0);
        let interest_today: i64 = closing.allocation.shares.iter()
            .filter(|s| s.component == lendcore_domain::allocation::Component::Interest).map(|s| s.amount_minor).sum();
        assert!(interest_today > 0 && interest_today < first.interest_minor, "{interest_today}");
        assert_eq!(payoff, outstanding + interest_today);
        assert_eq!(closing.allocation.unapplied_minor, 0);
        assert_eq!(w.line().await, (0, 0));
        assert!(w.topics(&id).await.contains(&"loan.paid_off".to_owned()));
        let again = loans::repay(&w.engine, &id, 100, RepaymentMode::Installments, None).await.unwrap_err();
        assert_eq!(again.code(), "conflict.loan_not_active");

        let accounts = LoanAccounts { loan_id: id.clone(), channel_id: "sandbox".into(), currency: Currency::Cny };
        let borrower = lendcore_domain::ids::borrower_of(&id).expect("a loan id names its borrower");
        let mut uow = w.engine.store.begin_read_for(borrower).await.unwrap();
        assert_eq!(uow.account_balance(&accounts.account(AccountKind::PrincipalReceivable), Layer::Posted).await.unwrap(), 0);
        assert_eq!(uow.account_balance(&accounts.account(AccountKind::InterestReceivable), Layer::Posted).await.unwrap(), 0);
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
        let timeline: Vec<String> = uow.drawdown_timeline(&id).await.unwrap().into_iter().map(|t| t.to).collect();
        assert_eq!(timeline, ["quoted", "disbursing", "active", "closed"]);
    }

    async fn repaying_every_installment_closes_the_loan(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct-1").await;
        w.settle().await;
        let total = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown.quote.schedule.total_repaid_minor;
        let receipt = loans::repay(&w.engine, &id, total, RepaymentMode::Installments, None).await.unwrap().into_inner();
        assert_eq!(receipt.loan.status, DrawdownStatus::Closed { reason: Reason::PaidOff });
        assert_eq!(receipt.allocation.unapplied_minor, 0);
        assert_eq!(w.line().await, (0, 0));
    }

    async fn close_of_business_accrues_charges_penalties_after_grace_and_reminds(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(1_000_000, "acct-1").await;
        w.settle().await;
        let loan = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        let first = loan.quote.schedule.installments[0].clone();
        let mut day = loan.quote.schedule.start;
        let mut reminders = 0;
        while day < first.due_date {
            day = day.succ_opt().unwrap();
            reminders += cob::run(&w.engine, day, |_, _| {}).await.unwrap().reminders;
        }
        let loan = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        assert_eq!(loan.servicing.interest_accrued_minor, first.interest_minor, "a period's days add up to its interest");
        assert_eq!(reminders, 2, "three days before and on the due date");

        // Within the three grace days: late, no penalty, still current.
        for _ in 0..3 {
            day = day.succ_opt().unwrap();
            let report = cob::run(&w.engine, day, |_, _| {}).await.unwrap();
            assert_eq!(report.penalty_charged_minor, 0);
        }
        day = day.succ_opt().unwrap();
        let report = cob::run(&w.engine, day, |_, _| {}).await.unwrap();
        assert!(report.penalty_charged_minor > 0, "past grace, penalty from the due date");
        assert_eq!(report.reminders, 1, "the overdue reminder");
        let again = cob::run(&w.engine, day, |_, _| {}).await.unwrap();
        assert_eq!((again.loans_closed, again.penalty_charged_minor, again.reminders), (0, 0, 0), "a date runs once");
        let loan = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        assert_eq!(loan.servicing.delinquency, Some(lendcore_domain::servicing::Delinquency::Dpd1To30));
        assert!(w.topics(&id).await.contains(&"loan.delinquency_changed".to_owned()));

        let owed = loan.dues()[0];
        assert_eq!(owed.penalty_minor, report.penalty_charged_minor);
        let settle_first = owed.penalty_minor + owed.fee_minor + owed.interest_minor + owed.principal_minor;
        let receipt = loans::repay(&w.engine, &id, settle_first, RepaymentMode::Installments, None).await.unwrap().into_inner();
        assert_eq!(receipt.loan.dues()[0].installment, 2, "installment 1 is settled, penalty included");
        let accounts = LoanAccounts { loan_id: id.clone(), channel_id: "collections".into(), currency: Currency::Cny };
        let mut uow = w.engine.store.begin_read().await.unwrap();
        assert_eq!(uow.account_balance(&accounts.account(AccountKind::PenaltyReceivable), Layer::Posted).await.unwrap(), 0);
        let interest_due = uow.account_balance(&accounts.account(AccountKind::InterestReceivable), Layer::Posted).await.unwrap();
        assert!(interest_due > 0, "four days of the second period are accrued and not yet due: {interest_due}");
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
    }

    async fn a_payout_whose_job_died_is_handed_to_a_person_by_close_of_business(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct-1").await;
        // The payout job's worker dies on its last attempt: the job ends dead.
        let mut uow = w.engine.store.begin().await.unwrap();
        let leased = uow
            .lease_jobs(&lendcore_store::LeaseRequest {
                owner: "doomed-worker",
                token: "t-1",
                kinds: &["drawdown.disburse"],
                limit: 10,
                now: w.clock.now(),
                until: w.clock.now() + Duration::seconds(30),
            })
            .await
            .unwrap();
        let job = leased.iter().find(|j| j.id == drawdowns::disburse_job_id(&id)).unwrap();
        uow.fail_job(&job.lease().unwrap(), "worker died", None, w.clock.now()).await.unwrap();
        uow.commit().await.unwrap();

        let report = cob::run(&w.engine, w.clock.now().date_naive(), |_, _| {}).await.unwrap();
        assert_eq!(report.payouts_escalated, 1);
        assert_eq!(w.status(&id).await, DrawdownStatus::ManualReview { reason: Reason::SyncFailure, claim: None });
        assert!(w.topics(&id).await.contains(&"drawdown.manual_review".to_owned()));
        assert_eq!(w.line().await, (0, 100_000), "the hold stays until a person settles the payout");
    }

    async fn a_drawdown_is_quoted_confirmed_and_paid_out_once(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(1_000_000, "acct-1").await;
        assert_eq!(w.line().await, (0, 1_000_000), "held while paying out");
        let promised = LoanAccounts { loan_id: id.clone(), channel_id: "pending".into(), currency: Currency::Cny };
        let pending_principal = |store: Arc<dyn lendcore_store::Store>, account| async move {
            let mut uow = store.begin_read().await.unwrap();
            uow.account_balance(&account, Layer::Pending).await.unwrap()
        };
        let receivable = promised.account(AccountKind::PrincipalReceivable);
        assert_eq!(pending_principal(w.engine.store.clone(), receivable.clone()).await, 1_000_000, "the hold is a pending entry");
        w.settle().await;
        assert_eq!(pending_principal(w.engine.store.clone(), receivable).await, 0, "settled: nothing pending");
        assert_eq!(w.status(&id).await, DrawdownStatus::Active);
        assert_eq!(w.line().await, (1_000_000, 0), "the hold became drawn");
        assert!(w.sandbox.accepted(&format!("{id}:sandbox")));
        let view = drawdowns::get(&w.engine, &id, Language::En).await.unwrap();
        let steps: Vec<_> = view.timeline.iter().map(|t| t.to.as_str()).collect();
        assert_eq!(steps, ["quoted", "disbursing", "active"]);
        assert_eq!(w.topics(&id).await, ["drawdown.quoted", "drawdown.confirmed", "drawdown.paid_out"]);
        let accounts = LoanAccounts { loan_id: id.clone(), channel_id: "sandbox".into(), currency: Currency::Cny };
        let mut uow = w.engine.store.begin_read().await.unwrap();
        assert_eq!(uow.account_balance(&accounts.account(AccountKind::PrincipalReceivable), Layer::Posted).await.unwrap(), 1_000_000);
        assert_eq!(uow.account_balance(&accounts.account(AccountKind::ChannelSettlement), Layer::Posted).await.unwrap(), -999_000);
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
    }

    async fn ids_and_tokens_name_their_borrower_and_old_ones_still_lead_to_theirs(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        assert!(w.line_id.starts_with("b-1."), "{}", w.line_id);
        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        assert!(quoted.drawdown.id.starts_with("b-1."), "{}", quoted.drawdown.id);
        assert!(quoted.confirmation_token.starts_with("b-1."), "the token names its borrower too");
        assert_eq!(lendcore_domain::ids::borrower_of(&quoted.drawdown.id), Some("b-1"));

        // A quote written by the previous build: a bare UUID for an id, a token with no borrower.
        let old_id = "0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6f".to_owned();
        let old_token = "ab".repeat(32);
        let mut old = quoted.drawdown.clone();
        old.id = old_id.clone();
        let step = lendcore_domain::drawdown::Transition {
            from: "new".into(), to: "quoted".into(), reason: None, at: old.created_at, actor: None, note: None,
        };
        let hash = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(old_token.as_bytes()))
        };
        let mut uow = w.engine.store.begin_for("b-1").await.unwrap();
        uow.insert_drawdown(&old, &hash, &step).await.unwrap();
        uow.commit().await.unwrap();

        // Confirmed by its old token, paid out, read and repaid by its old id.
        let view = drawdowns::confirm(&w.engine, &old_token, None).await.unwrap().into_inner();
        assert_eq!((view.drawdown.id.as_str(), &view.drawdown.status), (old_id.as_str(), &DrawdownStatus::Disbursing));
        w.settle().await;
        assert_eq!(w.status(&old_id).await, DrawdownStatus::Active);
        assert!(w.sandbox.accepted(&format!("{old_id}:sandbox")), "its payout reference is the one it always had");
        let repaid = loans::repay(&w.engine, &old_id, 1_000, RepaymentMode::Installments, None).await.unwrap().into_inner();
        assert_eq!(repaid.loan.id, old_id);

        // A token or an id that leads nowhere is not found, whatever borrower it names.
        let unknown = drawdowns::confirm(&w.engine, &format!("b-2.{}", "cd".repeat(32)), None).await.unwrap_err();
        assert_eq!(unknown.code(), "not_found.confirmation");
        let unknown = drawdowns::confirm(&w.engine, &"cd".repeat(32), None).await.unwrap_err();
        assert_eq!(unknown.code(), "not_found.confirmation");
        // Nothing a caller puts in front of a token or an id reaches the database as a
        // borrower unless it can be one: a NUL there is not found, not a database error.
        let odd = drawdowns::confirm(&w.engine, &format!("\0.{}", "cd".repeat(32)), None).await.unwrap_err();
        assert_eq!(odd.code(), "not_found.confirmation");
        let mut request = w.request(100_000, "acct-1");
        request.line_id = format!("\0.{}", quoted.drawdown.id.trim_start_matches("b-1."));
        let odd = drawdowns::quote(&w.engine, request, None).await.unwrap_err();
        assert_eq!(odd.code(), "not_found.credit_line");
        let elsewhere = format!("b-2.{}", quoted.drawdown.id.trim_start_matches("b-1."));
        assert_eq!(drawdowns::get(&w.engine, &elsewhere, Language::En).await.unwrap_err().code(), "not_found.drawdown");
        assert_eq!(drawdowns::get(&w.engine, "0193a4c2-7b1e-7c3d-9f00-000000000000", Language::En).await.unwrap_err().code(), "not_found.drawdown");
    }

    async fn every_fault_mode_ends_in_one_payout_or_none_with_a_reason(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let cases: [(&str, Option<Reason>); 7] = [
            ("acct~reject:channel.account_invalid", Some(Reason::AccountInvalid)),
            ("acct~5xx-after-accept", None),
            ("acct~timeout", None),
            ("acct~lost-answer", None),
            ("acct~delayed:2", None),
            ("acct~fail-later:channel.limit", Some(Reason::ChannelLimit)),
            ("acct~5xx", Some(Reason::SyncFailure)),
        ];
        let mut ids = Vec::new();
        for (account, _) in &cases {
            ids.push(w.draw(100_000, account).await);
        }
        w.settle().await;
        for ((account, reason), id) in cases.iter().zip(&ids) {
            let status = w.status(id).await;
            match reason {
                None => assert_eq!(status, DrawdownStatus::Active, "{account}"),
                Some(Reason::SyncFailure) => {
                    assert_eq!(status, DrawdownStatus::ManualReview { reason: Reason::SyncFailure, claim: None }, "{account}");
                    assert!(w.topics(id).await.contains(&"drawdown.manual_review".to_owned()));
                }
                Some(reason) => {
                    assert_eq!(status, DrawdownStatus::Failed { reason: *reason }, "{account}");
                    assert!(w.topics(id).await.contains(&"drawdown.ended".to_owned()));
                }
            }
        }
        // Four paid, two released, one still held for the person reviewing it.
        assert_eq!(w.line().await, (400_000, 100_000));
        let mut uow = w.engine.store.begin_read().await.unwrap();
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
    }

    async fn a_channel_that_pays_the_wrong_amount_freezes_the_line_and_hands_the_loan_to_a_person(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct~pays-less:1").await;
        w.settle().await;
        assert_eq!(w.status(&id).await, DrawdownStatus::ManualReview { reason: Reason::AbnormalPattern, claim: None });
        assert!(w.topics(&id).await.contains(&"drawdown.manual_review".to_owned()));
        let refused = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap_err();
        assert!(matches!(refused, EngineError::Refused { .. }), "the line is frozen: {refused:?}");
        let staff = timeline::timeline(&w.engine, timeline::Reader::Staff, &id).await.unwrap();
        assert_eq!(staff.reason, Some(Reason::AbnormalPattern), "support sees the cause");
        let own = timeline::timeline(&w.engine, timeline::Reader::Borrower { borrower_id: Some("b-1"), mobile_index: "" }, &id).await.unwrap();
        assert_eq!(own.reason, Some(Reason::RiskContactUs), "the borrower is told to get in touch");
        assert!(own.events.iter().all(|e| e.reason != Some(Reason::AbnormalPattern)), "{own:?}");
    }

    async fn an_unconfirmed_quote_expires_with_its_reason(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        let id = quoted.drawdown.id.clone();
        w.clock.advance(Duration::minutes(16));
        w.runner.poll_once().await.unwrap();
        assert_eq!(w.status(&id).await, DrawdownStatus::Expired { reason: Reason::ConfirmationTimedOut });
        assert_eq!(w.topics(&id).await, ["drawdown.quoted", "drawdown.ended"]);
        let late = drawdowns::confirm(&w.engine, &quoted.confirmation_token, None).await.unwrap_err();
        assert_eq!(late.code(), "conflict.drawdown_state");
        assert_eq!(w.line().await, (0, 0));
    }

    async fn a_line_frozen_between_quote_and_confirm_refuses_with_its_reason(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        credit_lines::change(&w.engine, &w.line_id, LineChange::Freeze { reason: Reason::Overdue, until: None },
            "risk:r".into(), None, None).await.unwrap();
        let view = drawdowns::confirm(&w.engine, &quoted.confirmation_token, None).await.unwrap().into_inner();
        assert_eq!(view.drawdown.status, DrawdownStatus::Refused { reason: Reason::Overdue });
        assert_eq!(w.line().await, (0, 0));
        let refused = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap_err();
        assert!(matches!(refused, EngineError::Refused { reason: Reason::Overdue }), "{refused:?}");
    }

    async fn concurrent_confirmations_never_overdraw_the_line(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let mut tokens = Vec::new();
        for _ in 0..8 {
            tokens.push(drawdowns::quote(&w.engine, w.request(1_000_000, "acct-1"), None).await.unwrap().into_inner().confirmation_token);
        }
        let commits = db.store.commits();
        let confirms = tokens.into_iter().map(|token| {
            let engine = w.engine.clone();
            tokio::spawn(async move {
                loop {
                    match drawdowns::confirm(&engine, &token, None).await {
                        Ok(view) => return view.into_inner().drawdown.status,
                        Err(EngineError::Unavailable(_)) => continue,
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
        });
        let statuses: Vec<DrawdownStatus> = futures::future::join_all(confirms).await.into_iter().map(|r| r.unwrap()).collect();
        let going = statuses.iter().filter(|s| **s == DrawdownStatus::Disbursing).count();
        assert_eq!(going, 3, "a 30,000 line holds three 10,000 drawdowns: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == DrawdownStatus::Disbursing || *s == DrawdownStatus::Refused { reason: Reason::LimitExceeded }));
        assert_eq!(w.line().await, (0, 3_000_000));
        if db.store.backend() == lendcore_store::Backend::Sqlite {
            // They queued for the writer together, so some shared a batch and its COMMIT: the
            // hold is checked against what earlier units of the batch hold, uncommitted.
            assert!(db.store.commits() - commits < 8, "batched: {} commits", db.store.commits() - commits);
        }
    }

    async fn a_replayed_confirmation_returns_the_first_answer(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        let key = IdempotentRequest::new("t", IdempotencyKey::parse("c-1").unwrap(), "POST", "/v1/drawdowns/confirm", quoted.confirmation_token.as_bytes());
        let first = drawdowns::confirm(&w.engine, &quoted.confirmation_token, Some(&key)).await.unwrap();
        let again = drawdowns::confirm(&w.engine, &quoted.confirmation_token, Some(&key)).await.unwrap();
        assert!(again.is_replay());
        assert_eq!(first.into_inner(), again.into_inner());
        assert_eq!(w.line().await, (0, 100_000), "held once");
        let _ = w.clock.now();
    }

    async fn a_maintenance_window_queues_confirmations_pauses_payouts_and_closes_nothing(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let before = w.draw(100_000, "acct~delayed:1").await;
        assert_eq!(w.runner.poll_once().await.unwrap().retried, 1, "pending at the channel");
        let start = w.clock.now() + Duration::hours(1);
        let window = maintenance::schedule(&w.engine, WindowInput {
            starts_at: start,
            ends_at: start + Duration::hours(2),
            message: "Bank year-end close".into(),
            actor: "ops:alice".into(),
        }, None).await.unwrap().into_inner();
        assert_eq!(window.notice_at, w.clock.now(), "starting within the notice period: told at once");
        w.runner.poll_once().await.unwrap();
        let mut uow = w.engine.store.begin_read().await.unwrap();
        let told = uow.outbox_for("borrower", "b-1").await.unwrap();
        drop(uow);
        assert_eq!(told.len(), 1, "one notice per borrower with work in flight");
        assert_eq!(told[0].topic, "maintenance.notice");
        assert_eq!(told[0].payload["reason"], "system.maintenance");

        w.clock.set(start + Duration::minutes(1));
        let waiting = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        // Confirmed during the window: held on the line and queued, not refused, not paid.
        let confirmed = drawdowns::confirm(&w.engine, &waiting.confirmation_token, None).await.unwrap().into_inner();
        let queued = confirmed.drawdown.id.clone();
        assert_eq!(confirmed.drawdown.status, DrawdownStatus::QueuedForMaintenance { until: start + Duration::hours(2) });
        assert!(w.topics(&queued).await.contains(&"drawdown.queued_for_maintenance".to_owned()));
        // The payout in flight waits too, without using up its attempts.
        let mut postponed = 0;
        for _ in 0..5 {
            w.clock.advance(Duration::minutes(11));
            let report = w.runner.poll_once().await.unwrap();
            assert_eq!((report.retried, report.dead_lettered), (0, 0), "{report:?}");
            postponed += report.postponed;
        }
        assert!(postponed > 0, "the payout job came due and handed itself back");
        assert_eq!(w.status(&before).await, DrawdownStatus::Disbursing);
        assert_eq!(w.line().await, (0, 200_000), "both held, neither paid, neither released");
        assert!(!w.sandbox.accepted(&format!("{queued}:sandbox")), "nothing sent during the window");
        let job = {
            let mut uow = w.engine.store.begin_read().await.unwrap();
            uow.find_job(&drawdowns::disburse_job_id(&before)).await.unwrap().unwrap()
        };
        assert_eq!(job.attempts, 1, "pausing used no attempt");

        w.clock.set(start + Duration::hours(2));
        w.settle().await;
        assert_eq!(w.status(&before).await, DrawdownStatus::Active);
        assert_eq!(w.status(&queued).await, DrawdownStatus::Active);
        assert_eq!(w.line().await, (200_000, 0));
        let steps: Vec<String> = drawdowns::get(&w.engine, &queued, Language::En).await.unwrap().timeline.into_iter().map(|t| t.to).collect();
        assert_eq!(steps, ["quoted", "queued_for_maintenance", "disbursing", "active"]);
        assert!(w.topics(&queued).await.contains(&"drawdown.resumed".to_owned()));
        let over = maintenance::cancel(&w.engine, &window.window.id, None).await.unwrap_err();
        assert_eq!(over.code(), "conflict.maintenance_window_state");
    }

    async fn a_cancelled_window_releases_what_it_held_at_once(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let window = maintenance::schedule(&w.engine, WindowInput {
            starts_at: w.clock.now(),
            ends_at: w.clock.now() + Duration::hours(3),
            message: "Channel upgrade".into(),
            actor: "ops:alice".into(),
        }, None).await.unwrap().into_inner();
        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        let id = drawdowns::confirm(&w.engine, &quoted.confirmation_token, None).await.unwrap().into_inner().drawdown.id;
        w.runner.poll_once().await.unwrap();
        assert!(matches!(w.status(&id).await, DrawdownStatus::QueuedForMaintenance { .. }));
        maintenance::cancel(&w.engine, &window.window.id, None).await.unwrap();
        // At once, the clock standing still: not at the window's planned end.
        w.runner.poll_once().await.unwrap();
        assert_eq!(w.status(&id).await, DrawdownStatus::Active);
    }

    async fn the_timeline_shows_state_changes_calls_postings_and_notifications_in_order(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct~lost-answer").await;
        w.settle().await;
        loans::repay(&w.engine, &id, 10_000, RepaymentMode::Installments, None).await.unwrap();
        let t = timeline::timeline(&w.engine, timeline::Reader::Staff, &id).await.unwrap();
        assert_eq!(t.state, "active");
        let kinds: std::collections::BTreeSet<_> = t.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.len(), 4, "state changes, calls, postings and notifications: {kinds:?}");
        assert!(t.events.windows(2).all(|p| p[0].at <= p[1].at), "oldest first");
        let summaries: Vec<&str> = t.events.iter().map(|e| e.summary.as_str()).collect();
        assert!(summaries.contains(&"disbursing → active"), "{summaries:?}");
        assert!(summaries.iter().any(|s| s.starts_with("submit to sandbox: unknown")), "{summaries:?}");
        assert!(summaries.iter().any(|s| s.starts_with("repayment (posted): CNY 100.00")), "{summaries:?}");
        let missing = timeline::timeline(&w.engine, timeline::Reader::Staff, "nope").await.unwrap_err();
        assert_eq!(missing.code(), "not_found.loan");

        // The borrower's own view: what happened to their loan, not how the lender's systems
        // did it; another borrower's loan reads exactly like a missing one.
        let own = timeline::timeline(&w.engine, timeline::Reader::Borrower { borrower_id: Some(&t.borrower_id), mobile_index: "" }, &id).await.unwrap();
        let kinds: std::collections::BTreeSet<_> = own.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [timeline::EventKind::StateChange, timeline::EventKind::Posting].into(), "{own:?}");
        let postings = own.events.iter().filter(|e| e.kind == timeline::EventKind::Posting);
        assert!(postings.clone().all(|e| e.detail.is_null()), "no accounts: {own:?}");
        assert!(postings.clone().any(|e| e.summary == "repayment (posted): CNY 100.00"), "{own:?}");
        assert!(own.events.iter().all(|e| !e.summary.contains("(pending)")), "posted money only: {own:?}");
        for reader in [
            timeline::Reader::Borrower { borrower_id: Some("someone-else"), mobile_index: "m-1" },
            timeline::Reader::Borrower { borrower_id: None, mobile_index: "m-1" },
        ] {
            let theirs = timeline::timeline(&w.engine, reader, &id).await.unwrap_err();
            assert_eq!(theirs.to_string(), missing.to_string(), "not found, in the same words");
        }
        let unknown = timeline::timeline(&w.engine, timeline::Reader::Borrower { borrower_id: Some(&t.borrower_id), mobile_index: "" }, "nope").await.unwrap_err();
        assert_eq!(unknown.to_string(), missing.to_string());
    }

    async fn the_daily_close_of_business_is_scheduled_once_runs_in_slices_and_catches_up(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(w.draw(100_000, "acct-1").await);
        }
        w.settle().await;
        let run_after = chrono::NaiveTime::from_hms_opt(0, 30, 0).unwrap();
        let today = w.clock.now().date_naive();
        // 00:40 two days on: the day after tomorrow's 00:30 has passed, so tomorrow is due.
        w.clock.set(chrono::DateTime::from_naive_utc_and_offset(
            (today + Duration::days(2)).and_hms_opt(0, 40, 0).unwrap(), Utc));
        let tomorrow = today + Duration::days(1);
        assert_eq!(cob::due_date(w.clock.now(), run_after), tomorrow);
        // Two processes schedule at once: one job.
        let other = db.second_store().await;
        let (a, b) = tokio::join!(
            cob::schedule_due(w.engine.store.as_ref(), w.clock.as_ref(), run_after),
            cob::schedule_due(other.as_ref(), w.clock.as_ref(), run_after),
        );
        let scheduled: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(scheduled, [tomorrow], "exactly one of them scheduled it");
        assert_eq!(cob::schedule_due(w.engine.store.as_ref(), w.clock.as_ref(), run_after).await.unwrap(), None,
            "nothing more while it runs");
        // Each slice closes one loan and hands the job back without using an attempt.
        let mut postponed = 0;
        for _ in 0..10 {
            postponed += w.runner.poll_once().await.unwrap().postponed;
        }
        assert!(postponed >= 2, "it ran in slices: {postponed}");
        for id in &ids {
            let loan = drawdowns::get(&w.engine, id, Language::En).await.unwrap().drawdown;
            assert_eq!(loan.servicing.last_close, Some(tomorrow));
        }
        let job = {
            let mut uow = w.engine.store.begin_read().await.unwrap();
            uow.find_job(&cob::cob_job_id(tomorrow)).await.unwrap().unwrap()
        };
        assert_eq!(job.status, lendcore_store::JobStatus::Succeeded);
        assert_eq!(job.attempts, 1, "slices are not failed attempts");
        // Three days later with no process running: the missed dates close one by one, in order.
        w.clock.advance(Duration::days(3));
        let mut closed = Vec::new();
        while let Some(date) = cob::schedule_due(w.engine.store.as_ref(), w.clock.as_ref(), run_after).await.unwrap() {
            closed.push(date);
            while w.runner.poll_once().await.unwrap().ran() > 0 {}
        }
        let expected: Vec<_> = (2..=4).map(|d| today + Duration::days(d)).collect();
        assert_eq!(closed, expected);
        let mut uow = w.engine.store.begin_read().await.unwrap();
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
    }

    async fn a_freeze_with_an_end_lifts_itself_and_expiry_is_written_to_the_log(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let freeze = |until| credit_lines::change(&w.engine, &w.line_id,
            LineChange::Freeze { reason: Reason::Overdue, until: Some(until) }, "risk:r".into(), None, None);
        let first_end = w.clock.now() + Duration::days(3);
        freeze(first_end).await.unwrap();
        // Unfrozen by a person, frozen again with a later end: the first timer must not lift it.
        credit_lines::change(&w.engine, &w.line_id, LineChange::Unfreeze, "risk:r".into(), None, None).await.unwrap();
        let second_end = w.clock.now() + Duration::days(5);
        freeze(second_end).await.unwrap();
        // Other changes to the line meanwhile do not stop the freeze from ending.
        credit_lines::change(&w.engine, &w.line_id, LineChange::Limit { limit_minor: 4_000_000 }, "risk:r".into(), None, None).await.unwrap();
        w.clock.set(first_end);
        while w.runner.poll_once().await.unwrap().ran() > 0 {}
        let line = credit_lines::get(&w.engine, &w.line_id).await.unwrap();
        assert_eq!(line.state, lendcore_domain::credit_line::LineState::Frozen);
        w.clock.set(second_end);
        while w.runner.poll_once().await.unwrap().ran() > 0 {}
        let line = credit_lines::get(&w.engine, &w.line_id).await.unwrap();
        assert_eq!(line.state, lendcore_domain::credit_line::LineState::Active);
        let valid_until = line.line.valid_until;
        w.clock.set(valid_until);
        while w.runner.poll_once().await.unwrap().ran() > 0 {}
        let log: Vec<(String, String)> = credit_lines::events(&w.engine, &w.line_id).await.unwrap().into_iter()
            .map(|e| (serde_json::to_value(e.kind).unwrap().as_str().unwrap().to_owned(), e.actor)).collect();
        let kinds: Vec<&str> = log.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["granted", "frozen", "unfrozen", "frozen", "increased", "unfrozen", "expired"]);
        assert_eq!(log[5].1, "system:lendcore", "lifted by lendcore, not by a person");
        let mut uow = w.engine.store.begin_read().await.unwrap();
        let topics: Vec<String> = uow.outbox_for("credit_line", &w.line_id).await.unwrap().into_iter().map(|e| e.topic).collect();
        assert!(topics.contains(&"credit_line.expired".to_owned()), "{topics:?}");
        let quote = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap_err();
        assert!(matches!(quote, EngineError::Refused { reason: Reason::LineExpired }), "{quote:?}");
    }

    async fn a_channel_that_may_have_paid_is_never_failed_over_even_when_it_goes_dark(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        // The first channel is reached through a proxy the test can cut, as a network would.
        let (first_sandbox, first) = common::sandbox(StdDuration::from_secs(2)).await;
        let proxy = Proxy::start(&first).await;
        let (second_sandbox, second) = common::sandbox(StdDuration::from_secs(2)).await;
        let timeout = StdDuration::from_millis(400);
        let channels = vec![common::http_channel("first", &proxy.url, timeout), common::http_channel("second", &second, timeout)];
        let runner = Arc::new(JobRunner::new(w.engine.store.clone(), w.clock.clone(), RunnerConfig {
            worker_id: "failover".into(), lease: Duration::seconds(30), batch: 4, ..RunnerConfig::default()
        })
        .register(DisburseHandler::new(channels)));
        // The first channel pays and hangs before answering; while it hangs, its network goes
        // down: the call's answer is lost and every later call is refused at the door.
        let id = w.draw(100_000, "acct~timeout").await;
        let first_poll = tokio::spawn({
            let runner = runner.clone();
            async move { runner.poll_once().await.unwrap() }
        });
        let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
        while first_sandbox.accepted_count() == 0 {
            assert!(std::time::Instant::now() < deadline, "the first channel never got the payout");
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        proxy.cut();
        first_poll.await.unwrap();
        for _ in 0..20 {
            w.clock.advance(Duration::minutes(11));
            runner.poll_once().await.unwrap();
        }
        // No call after the first reached it; still, it may have paid: no failover.
        assert_eq!(w.status(&id).await, DrawdownStatus::ManualReview { reason: Reason::SyncFailure, claim: None });
        assert_eq!(second_sandbox.accepted_count(), 0, "the second channel was never asked to pay");
        assert!(first_sandbox.paid_minor(&format!("{id}:first")).is_some(), "the first one did pay");
        assert_eq!(w.line().await, (0, 100_000), "held until a person settles it");
        let view = drawdowns::get(&w.engine, &id, Language::En).await.unwrap();
        assert!(view.payout_attempts.iter().all(|a| a.channel_id == "first"));
        assert!(view.payout_attempts.iter().skip(1).all(|a| matches!(a.outcome, Some(PayoutAnswer::Error | PayoutAnswer::NotSent))),
            "{:?}", view.payout_attempts);
    }

    async fn a_refusal_after_an_ambiguous_answer_fails_over_once_the_channel_had_no_record(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        // Two channels served by one sandbox: its first answer to this account is a 5xx (it may
        // have paid), every later one a definite refusal of its own (it is unavailable).
        let (sandbox, url) = common::sandbox(StdDuration::from_secs(2)).await;
        let timeout = StdDuration::from_millis(400);
        let channels = vec![common::http_channel("first", &url, timeout), common::http_channel("second", &url, timeout)];
        let runner = JobRunner::new(w.engine.store.clone(), w.clock.clone(), RunnerConfig {
            worker_id: "seq".into(), lease: Duration::seconds(30), batch: 4, ..RunnerConfig::default()
        })
        .register(DisburseHandler::new(channels));
        let id = w.draw(100_000, "acct~seq:5xx,reject:channel.unavailable").await;
        for _ in 0..12 {
            runner.poll_once().await.unwrap();
            w.clock.advance(Duration::minutes(11));
        }
        let view = drawdowns::get(&w.engine, &id, Language::En).await.unwrap();
        let calls: Vec<(String, PayoutCall, Option<PayoutAnswer>)> = view.payout_attempts.iter()
            .map(|a| (a.channel_id.clone(), a.action, a.outcome)).collect();
        // The first channel said it had nothing, then refused: it certainly did not pay, so the
        // second was asked; it refused as well and was the last, so the payout failed with the
        // channel's reason rather than waiting for a person.
        assert!(calls.contains(&("first".into(), PayoutCall::Query, Some(PayoutAnswer::NotFound))), "{calls:?}");
        assert!(calls.contains(&("first".into(), PayoutCall::Submit, Some(PayoutAnswer::RefusedByChannel))), "{calls:?}");
        assert!(calls.iter().any(|(c, a, _)| c == "second" && *a == PayoutCall::Submit), "failed over: {calls:?}");
        assert_eq!(view.drawdown.status, DrawdownStatus::Failed { reason: Reason::ChannelUnavailable });
        assert_eq!(sandbox.accepted_count(), 0, "nothing was paid");
        assert_eq!(w.line().await, (0, 0), "the hold is released");
    }

    async fn a_payout_whose_worker_dies_on_its_last_attempt_goes_to_a_person_at_once(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct~delayed:1").await;
        db.execute("UPDATE jobs SET max_attempts = 2 WHERE kind = 'drawdown.disburse'").await;
        assert_eq!(w.runner.poll_once().await.unwrap().retried, 1, "pending at the channel");
        // The last attempt is taken by a worker that dies holding it.
        w.clock.advance(Duration::minutes(11));
        let now = w.clock.now();
        let mut uow = w.engine.store.begin().await.unwrap();
        let leased = uow.lease_jobs(&lendcore_store::LeaseRequest {
            owner: "dying", token: "dying-token", kinds: &[lendcore_engine::jobs::kinds::DISBURSE], limit: 1,
            now, until: now + Duration::seconds(30),
        }).await.unwrap();
        uow.commit().await.unwrap();
        assert_eq!(leased.len(), 1);
        w.clock.advance(Duration::minutes(1));
        assert_eq!(w.runner.poll_once().await.unwrap().dead_lettered, 1);
        // At once, not at the next close of business: a person is asked, the borrower told.
        assert_eq!(w.status(&id).await, DrawdownStatus::ManualReview { reason: Reason::SyncFailure, claim: None });
        assert!(w.topics(&id).await.contains(&"drawdown.manual_review".to_owned()));
        assert_eq!(w.line().await, (0, 100_000), "held until settled");
        // Re-driving the dead job asks the channel again, and settles what it confirms.
        let job = lendcore_engine::jobs::redrive_job(&w.engine, &drawdowns::disburse_job_id(&id), None).await.unwrap().into_inner();
        assert_eq!(job.status, "pending");
        w.runner.poll_once().await.unwrap();
        assert_eq!(w.status(&id).await, DrawdownStatus::Active);
        assert_eq!(w.line().await, (100_000, 0));
        let timeline = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().timeline;
        let last = timeline.last().unwrap();
        assert_eq!((last.to.as_str(), last.actor.as_deref()), ("active", Some("system:lendcore")));
        assert!(last.note.as_deref().unwrap().contains("sandbox: succeeded"), "{last:?}");
    }

    async fn an_operator_settles_a_payout_in_review_by_asking_the_channel_or_failing_it(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        db.execute("UPDATE jobs SET max_attempts = 1 WHERE kind = 'drawdown.disburse'").await;
        // Paid, but the channel says `pending` to the next three questions.
        let paid = w.draw(100_000, "acct~delayed:3").await;
        db.execute("UPDATE jobs SET max_attempts = 1 WHERE kind = 'drawdown.disburse'").await;
        w.runner.poll_once().await.unwrap();
        assert!(matches!(w.status(&paid).await, DrawdownStatus::ManualReview { reason: Reason::SyncFailure, .. }));
        let asked = by("ops:alice".into(), review::ask_channels(&w.engine, &paid, None)).await.unwrap().into_inner();
        assert!(matches!(asked.drawdown.status, DrawdownStatus::ManualReview { .. }), "still pending");
        let step = asked.timeline.last().unwrap();
        assert_eq!(step.actor.as_deref(), Some("ops:alice"));
        assert!(step.note.as_deref().unwrap().contains("sandbox: pending"), "{step:?}");
        // While the channel may still pay, it cannot be marked failed.
        let refused = by("ops:alice".into(), review::mark_failed(&w.engine, &paid, Reason::ChannelUnavailable, "gave up", None)).await.unwrap_err();
        assert_eq!(refused.code(), "conflict.payout_may_have_paid");
        let settled = by("ops:alice".into(), review::ask_channels(&w.engine, &paid, None)).await.unwrap().into_inner();
        assert_eq!(settled.drawdown.status, DrawdownStatus::Active, "the channel confirmed it");
        assert_eq!(w.line().await, (100_000, 0));

        // Never paid: the channel answered 5xx and has no record.
        let unpaid = w.draw(200_000, "acct~5xx").await;
        db.execute("UPDATE jobs SET max_attempts = 1 WHERE kind = 'drawdown.disburse'").await;
        w.runner.poll_once().await.unwrap();
        assert!(matches!(w.status(&unpaid).await, DrawdownStatus::ManualReview { .. }));
        let wrong = by("ops:alice".into(), review::mark_failed(&w.engine, &unpaid, Reason::LimitExceeded, "no", None)).await.unwrap_err();
        assert_eq!(wrong.code(), "validation.reason_not_allowed");
        let blank = by("ops:alice".into(), review::mark_failed(&w.engine, &unpaid, Reason::ChannelUnavailable, "  ", None)).await.unwrap_err();
        assert_eq!(blank.code(), "validation.invalid_note");
        let failed = by("ops:alice".into(), review::mark_failed(&w.engine, &unpaid, Reason::ChannelUnavailable, "the channel has no such payout", None)).await.unwrap().into_inner();
        assert_eq!(failed.drawdown.status, DrawdownStatus::Failed { reason: Reason::ChannelUnavailable });
        assert_eq!(w.line().await, (100_000, 0), "its hold is released");
        let step = failed.timeline.last().unwrap();
        assert_eq!((step.to.as_str(), step.actor.as_deref()), ("failed", Some("ops:alice")));
        assert!(step.note.as_deref().unwrap().contains("not_found"), "{step:?}");
        assert!(w.topics(&unpaid).await.contains(&"drawdown.ended".to_owned()), "the borrower is told");
        let again = by("ops:alice".into(), review::ask_channels(&w.engine, &unpaid, None)).await.unwrap_err();
        assert_eq!(again.code(), "conflict.drawdown_state");
        let mut uow = w.engine.store.begin().await.unwrap();
        let (_, pending) = uow.claim_pending_audit(10_000).await.unwrap();
        uow.rollback().await.unwrap();
        let audited: Vec<String> = pending.into_iter()
            .filter(|(_, e)| e.actor == "ops:alice").map(|(_, e)| e.action).collect();
        assert!(audited.contains(&"drawdown.review.asked".to_owned()) && audited.contains(&"drawdown.review.marked_failed".to_owned()), "{audited:?}");
    }

    async fn a_wrong_payout_is_marked_paid_only_with_a_second_operator_and_its_line_decided(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct~pays-less:100").await;
        w.settle().await;
        assert!(matches!(w.status(&id).await, DrawdownStatus::ManualReview { reason: Reason::AbnormalPattern, .. }));
        let mark = |reference: &str| review::PaidMark {
            channel_id: "sandbox".into(), channel_reference: reference.into(), note: "statement shows it".into(),
        };
        let reference = format!("sbx-{id}:sandbox");
        let by_key = by("api_key:k1".into(), review::mark_paid(&w.engine, &id, mark(&reference), None)).await.unwrap_err();
        assert_eq!(by_key.code(), "auth.operator_required");
        let unknown = by("ops:alice".into(), review::mark_paid(&w.engine, &id, review::PaidMark { channel_id: "other".into(), ..mark(&reference) }, None)).await.unwrap_err();
        assert_eq!(unknown.code(), "validation.unknown_channel");
        // The channel paid 100 less than sent: it does not confirm the claim, which waits.
        let claimed = by("ops:alice".into(), review::mark_paid(&w.engine, &id, mark(&reference), None)).await.unwrap().into_inner();
        let DrawdownStatus::ManualReview { claim: Some(claim), .. } = &claimed.drawdown.status else { panic!("{:?}", claimed.drawdown.status) };
        assert_eq!((claim.claimed_by.as_str(), claim.channel_reference.as_str()), ("ops:alice", reference.as_str()));
        assert_eq!(w.line().await, (0, 100_000), "nothing settled on one person's word");
        // Risk keeps the line frozen, with a note, then lifts it.
        let kept = by("ops:rita".into(), review::decide_line(&w.engine, &id, review::LineDecision::KeepFrozen, "until the 100 is recovered", None)).await.unwrap().into_inner();
        assert!(kept.timeline.last().unwrap().note.as_deref().unwrap().starts_with("line kept frozen"));
        let log = credit_lines::events(&w.engine, &w.line_id).await.unwrap();
        let last = log.last().unwrap();
        assert_eq!((last.kind, last.actor.as_str(), last.note.as_deref()),
            (lendcore_domain::credit_line::LineEventKind::FreezeKept, "ops:rita", Some("until the 100 is recovered")));
        by("ops:rita".into(), review::decide_line(&w.engine, &id, review::LineDecision::Unfreeze, "recovered", None)).await.unwrap();
        assert_eq!(credit_lines::get(&w.engine, &w.line_id).await.unwrap().state, lendcore_domain::credit_line::LineState::Active);
        let twice = by("ops:rita".into(), review::decide_line(&w.engine, &id, review::LineDecision::Unfreeze, "again", None)).await.unwrap_err();
        assert_eq!(twice.code(), "conflict.line_not_frozen");
        // The one who claimed cannot approve; a second operator can.
        let checked = |reference: &str, note: &str| review::PaidMark {
            channel_id: "sandbox".into(), channel_reference: reference.into(), note: note.into(),
        };
        let own = by("ops:alice".into(), review::approve_paid(&w.engine, &id, &checked(&reference, "I am sure"), None)).await.unwrap_err();
        assert_eq!(own.code(), "auth.four_eyes");
        let other = by("ops:bob".into(), review::approve_paid(&w.engine, &id, &checked("sbx-other", "checked"), None)).await.unwrap_err();
        assert_eq!(other.code(), "conflict.claim_changed", "an approval names the claim it checked");
        // While the claim waits, the payout is not failed.
        let failing = by("ops:bob".into(), review::mark_failed(&w.engine, &id, Reason::ChannelUnavailable, "no", None)).await.unwrap_err();
        assert_eq!(failing.code(), "conflict.paid_claim_pending");
        let approved = by("ops:bob".into(), review::approve_paid(&w.engine, &id, &checked(&reference, "checked the statement"), None)).await.unwrap().into_inner();
        assert_eq!(approved.drawdown.status, DrawdownStatus::Active);
        assert_eq!(w.line().await, (100_000, 0));
        let step = approved.timeline.last().unwrap();
        assert_eq!(step.actor.as_deref(), Some("ops:bob"));
        assert!(step.note.as_deref().unwrap().contains("ops:alice"), "{step:?}");
        let mut uow = w.engine.store.begin_read().await.unwrap();
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
    }

    async fn a_payout_job_and_a_prompted_query_finding_the_same_wrong_amount_leave_no_dead_job(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct~pays-less:100").await;
        // A callback schedules a query; both it and the payout job run in the same poll.
        let body = serde_json::to_vec(&serde_json::json!({
            "reference": format!("{id}:sandbox"), "channel_reference": "x", "status": "succeeded",
            "amount_minor": 99_900, "currency": "CNY"
        })).unwrap();
        let ts = w.clock.now().timestamp();
        callbacks::receive(&w.engine, "sandbox", Some(&ts.to_string()), Some(&protocol::sign(b"cb-secret", ts, &body)), &body).await.unwrap();
        // The query's first worker dies holding it; another takes it over.
        let now = w.clock.now();
        let mut uow = w.engine.store.begin().await.unwrap();
        let leased = uow.lease_jobs(&lendcore_store::LeaseRequest {
            owner: "dying", token: "dying-token", kinds: &[lendcore_engine::jobs::kinds::DISBURSE], limit: 1,
            now, until: now,
        }).await.unwrap();
        uow.commit().await.unwrap();
        assert_eq!(leased.len(), 1);
        w.settle().await;
        assert!(matches!(w.status(&id).await, DrawdownStatus::ManualReview { reason: Reason::AbnormalPattern, .. }));
        let dead = lendcore_engine::jobs::list_jobs(&w.engine, lendcore_store::JobStatus::Dead, 100).await.unwrap();
        assert!(dead.is_empty(), "work found done is a success: {dead:?}");
    }

    async fn a_quote_an_old_process_left_in_the_body_moves_to_its_row_at_the_upgrade(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        let id = w.draw(100_000, "acct-1").await;
        let before = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        // As a process older than migration 0008 writes it: the quote in the body, no quote row.
        db.execute(match db.store.backend() {
            lendcore_store::Backend::Sqlite => "UPDATE drawdowns SET body = json_set(body, '$.quote', \
                json((SELECT quote FROM drawdown_quotes q WHERE q.drawdown_id = drawdowns.id))); \
                DELETE FROM drawdown_quotes;",
            lendcore_store::Backend::Postgres => "UPDATE drawdowns SET body = (body::jsonb || \
                jsonb_build_object('quote', (SELECT quote::jsonb FROM drawdown_quotes q WHERE q.drawdown_id = drawdowns.id)))::text; \
                DELETE FROM drawdown_quotes;",
        }).await;
        assert_eq!(drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown, before, "read as it was");
        // Migration 0035 moves it to its row, as 0008 moved the others: writes no longer look
        // for a quote in the body.
        let migration = match db.store.backend() {
            lendcore_store::Backend::Sqlite => include_str!("../../store/migrations/sqlite/0035_borrower_routes.sql"),
            lendcore_store::Backend::Postgres => include_str!("../../store/migrations/postgres/0035_borrower_routes.sql"),
        };
        let (_, moving_quotes) = migration.split_once("-- A quote a process older than 0008").expect("the migration moves old quotes");
        db.execute(moving_quotes.split_once('\n').unwrap().1).await;
        assert_eq!(drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown, before, "read as it was");
        w.settle().await;
        cob::run(&w.engine, w.clock.now().date_naive(), |_, _| {}).await.unwrap();
        let after = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        assert_eq!(after.status, DrawdownStatus::Active);
        assert_eq!(after.quote, before.quote, "paid out and closed for a day, the quote intact");
    }

    async fn a_loan_that_moves_between_close_of_business_reading_and_writing_it_is_closed_once(db: &TestDb) {
        let moving = Arc::new(Moving { inner: db.store.clone(), loan: Default::default(), times: Default::default() });
        let w = world(moving.clone(), false).await;
        let id = w.draw(1_000_000, "acct-1").await;
        w.settle().await;
        let before = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        let day = w.clock.now().date_naive().succ_opt().unwrap();
        // Moved once, right before the batch is written: decided again, written once.
        moving.arm(&id, 1);
        let report = cob::run(&w.engine, day, |_, _| {}).await.unwrap();
        assert_eq!(moving.times.load(Ordering::SeqCst), 0, "the loan was moved");
        assert_eq!((report.loans_closed, report.loans_busy, report.complete), (1, 0, true), "{report:?}");
        let after = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        assert_eq!(after.revision, before.revision + 2, "moved, then closed once");
        assert_eq!(after.servicing.last_close, Some(day));
        assert!(report.interest_accrued_minor > 0);
        assert_eq!(after.servicing.interest_accrued_minor, report.interest_accrued_minor, "one day accrued, once");

        // Moved before every write: left for a re-run, nothing written, and the re-run closes it.
        let next = day.succ_opt().unwrap();
        moving.arm(&id, usize::MAX);
        let report = cob::run(&w.engine, next, |_, _| {}).await.unwrap();
        assert_eq!((report.loans_closed, report.loans_busy, report.interest_accrued_minor), (0, 1, 0), "{report:?}");
        let busy = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        assert_eq!(busy.servicing, after.servicing, "nothing of the day was written");
        moving.arm(&id, 0);
        let report = cob::run(&w.engine, next, |_, _| {}).await.unwrap();
        assert_eq!((report.loans_closed, report.loans_busy), (1, 0), "{report:?}");
        let closed = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        assert_eq!(closed.servicing.interest_accrued_minor, after.servicing.interest_accrued_minor + report.interest_accrued_minor);
    }
}

/// A store that moves a loan (a new revision, as a repayment makes) right before each of the
/// next `times` write units of work begins: between close of business reading a batch and
/// writing it.
struct Moving {
    inner: Arc<dyn lendcore_store::Store>,
    loan: std::sync::Mutex<String>,
    times: AtomicUsize,
}

impl Moving {
    fn arm(&self, loan: &str, times: usize) {
        *self.loan.lock().unwrap() = loan.to_owned();
        self.times.store(times, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl lendcore_store::Store for Moving {
    fn backend(&self) -> lendcore_store::Backend {
        self.inner.backend()
    }

    fn commits(&self) -> u64 {
        self.inner.commits()
    }

    async fn begin(
        &self,
    ) -> Result<Box<dyn lendcore_store::UnitOfWork>, lendcore_store::StoreError> {
        let due = self
            .times
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if due {
            let id = self.loan.lock().unwrap().clone();
            let borrower =
                lendcore_domain::ids::borrower_of(&id).expect("a loan id names its borrower");
            let mut uow = self.inner.begin_for(borrower).await?;
            let mut loan = uow.find_drawdown(&id).await?.expect("the loan to move");
            let read = loan.revision;
            loan.revision += 1;
            uow.update_drawdown(&loan, read, None).await?;
            uow.commit().await?;
        }
        self.inner.begin().await
    }

    async fn begin_read(
        &self,
    ) -> Result<Box<dyn lendcore_store::UnitOfWork>, lendcore_store::StoreError> {
        self.inner.begin_read().await
    }

    async fn begin_for(
        &self,
        borrower_id: &str,
    ) -> Result<Box<dyn lendcore_store::BorrowerUnit>, lendcore_store::StoreError> {
        self.inner.begin_for(borrower_id).await
    }

    async fn begin_read_for(
        &self,
        borrower_id: &str,
    ) -> Result<Box<dyn lendcore_store::BorrowerUnit>, lendcore_store::StoreError> {
        self.inner.begin_read_for(borrower_id).await
    }

    async fn migrate(&self) -> Result<lendcore_store::MigrationReport, lendcore_store::StoreError> {
        self.inner.migrate().await
    }

    async fn migration_plan(
        &self,
    ) -> Result<lendcore_store::MigrationPlan, lendcore_store::StoreError> {
        self.inner.migration_plan().await
    }

    async fn readiness(&self) -> Result<(), lendcore_store::StoreError> {
        self.inner.readiness().await
    }

    async fn close(&self) {
        self.inner.close().await
    }
}

/// A TCP proxy to a channel that the test can cut: every connection through it is dropped
/// and new ones are refused, as when a channel's network goes down.
struct Proxy {
    url: String,
    tasks: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let tasks = Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let accepting = tasks.clone();
        tasks.lock().unwrap().spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                accepting.lock().unwrap().spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { url, tasks }
    }

    fn cut(&self) {
        self.tasks.lock().unwrap().abort_all();
    }
}

store_test! {
    async fn a_borrower_31_days_overdue_is_refused_at_quote_and_told_what_to_repay(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        default_policy_in_effect(&w.engine).await;
        let id = w.draw(1_000_000, "acct-1").await;
        w.settle().await;
        let loan = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        assert_eq!(loan.status, DrawdownStatus::Active);
        let first = loan.quote.schedule.installments[0].clone();
        let due = chrono::DateTime::from_naive_utc_and_offset(first.due_date.and_hms_opt(4, 0, 0).unwrap(), Utc);
        w.clock.set(due + Duration::days(31));
        let refused = drawdowns::quote(&w.engine, w.request(200_000, "acct-1"), None).await.unwrap_err();
        let EngineError::RefusedWith { reason, facts } = &refused else { panic!("{refused:?}") };
        assert_eq!(*reason, Reason::Overdue);
        assert!(facts["overdue_minor"].as_i64().unwrap() >= first.total_minor, "{facts}");
        assert_eq!(facts["currency"], "CNY");
        let decisions = lendcore_engine::decisions::list_decisions(&w.engine, "b-1", 10).await.unwrap();
        let declined = &decisions[0];
        assert_eq!(declined.evaluation.outcome.name(), "decline");
        assert_eq!(declined.evaluation.fired[0].table, "overdue");
        assert_eq!(declined.features["days_overdue_now"], Some(lendcore_domain::decision::Value::Number(31)));
        let replayed = lendcore_engine::decisions::replay(&w.engine, "b-1", &declined.id).await.unwrap();
        assert!(replayed.same, "{:?}", replayed.differences);
        assert_eq!(w.line().await.1, 0, "nothing was held");
    }

    async fn a_velocity_rule_holds_a_drawdown_that_an_operator_releases_or_declines(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        default_policy_in_effect(&w.engine).await;
        for _ in 0..3 {
            w.draw(100_000, "acct-1").await;
        }
        // The fourth in a day: held for a person, the borrower told at the quote already.
        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        assert_eq!(quoted.review_before_payout, Some(Reason::RiskTryLater), "the exact cause stays hidden");
        let held = drawdowns::confirm(&w.engine, &quoted.confirmation_token, None).await.unwrap().into_inner();
        assert_eq!(held.drawdown.status, DrawdownStatus::HeldForReview { reason: Reason::Velocity });
        let id = held.drawdown.id.clone();
        assert_eq!(w.line().await, (0, 400_000), "its amount is held on the line meanwhile");
        w.settle().await;
        assert_eq!(w.status(&id).await, DrawdownStatus::HeldForReview { reason: Reason::Velocity }, "no payout while held");
        assert!(w.topics(&id).await.contains(&"drawdown.held".to_owned()));

        let key = |k: &str| IdempotentRequest::new("t", IdempotencyKey::parse(k).unwrap(), "POST", "/v1/drawdowns/x/review/release", k.as_bytes());
        let no_person = drawdowns::held::release(&w.engine, &id, "checked", Some(&key("r-0"))).await.unwrap_err();
        assert_eq!(no_person.code(), "auth.operator_required");
        let released = by("ops:rick".into(), drawdowns::held::release(&w.engine, &id, "called the borrower", Some(&key("r-1")))).await.unwrap().into_inner();
        assert_eq!(released.drawdown.status, DrawdownStatus::Disbursing);
        let step = released.timeline.last().unwrap();
        assert_eq!((step.actor.as_deref(), step.note.as_deref()), (Some("ops:rick"), Some("called the borrower")));
        w.settle().await;
        assert_eq!(w.status(&id).await, DrawdownStatus::Active);
        assert_eq!(w.sandbox.paid_minor(&format!("{id}:sandbox")), Some(100_000 - 1_000), "paid once, net of the fee");

        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        let held = drawdowns::confirm(&w.engine, &quoted.confirmation_token, None).await.unwrap().into_inner();
        let other = held.drawdown.id;
        let wrong = by("ops:rick".into(), drawdowns::held::decline(&w.engine, &other, Reason::ChannelLimit, "no", Some(&key("d-0")))).await.unwrap_err();
        assert_eq!(wrong.code(), "validation.reason_not_allowed");
        let declined = by("ops:rick".into(), drawdowns::held::decline(&w.engine, &other, Reason::Velocity, "too many today", Some(&key("d-1")))).await.unwrap().into_inner();
        assert_eq!(declined.drawdown.status, DrawdownStatus::Refused { reason: Reason::Velocity });
        assert!(w.topics(&other).await.contains(&"drawdown.ended".to_owned()));
        let again = by("ops:rick".into(), drawdowns::held::release(&w.engine, &other, "oops", Some(&key("r-2")))).await.unwrap_err();
        assert_eq!(again.code(), "conflict.drawdown_state");
        let (drawn, held_now) = w.line().await;
        assert_eq!(held_now, 0, "the declined amount is free again (drawn {drawn})");

        // A hold nobody settles ends by itself after a day, its amount given back.
        let quoted = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap().into_inner();
        let lapsed = drawdowns::confirm(&w.engine, &quoted.confirmation_token, None).await.unwrap().into_inner().drawdown.id;
        assert_eq!(w.line().await.1, 100_000);
        w.clock.advance(Duration::hours(23));
        w.settle().await;
        assert!(matches!(w.status(&lapsed).await, DrawdownStatus::HeldForReview { .. }), "not before its time");
        w.clock.advance(Duration::hours(2));
        w.settle().await;
        assert_eq!(w.status(&lapsed).await, DrawdownStatus::Refused { reason: Reason::NotReviewedInTime });
        assert_eq!(w.line().await.1, 0, "its amount given back");
        assert!(w.topics(&lapsed).await.contains(&"drawdown.ended".to_owned()), "and the borrower told");
    }

    async fn the_bureau_report_kept_from_the_application_holds_a_drawdown(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        default_policy_in_effect(&w.engine).await;
        let mut uow = w.engine.store.begin().await.unwrap();
        let report = serde_json::json!({"answer": "found", "lenders_open": 7, "exposure_minor": 25_000_000, "inquiries_3m": 12, "worst_delinquency_days": 120});
        uow.save_bureau_report("b-1", "sandbox", &report, w.clock.now() - Duration::days(3)).await.unwrap();
        uow.commit().await.unwrap();
        // Seven lenders at the bureau: held; 250,000.00 owed there besides: refused at once.
        let refused = drawdowns::quote(&w.engine, w.request(100_000, "acct-1"), None).await.unwrap_err();
        assert_eq!(refused.code(), "credit.multi_lending", "{refused:?}");
        let decisions = lendcore_engine::decisions::list_decisions(&w.engine, "b-1", 10).await.unwrap();
        let features = &decisions[0].features;
        assert_eq!(features["bureau_lenders_open"], Some(lendcore_domain::decision::Value::Number(7)));
        assert!(!features.contains_key("bureau_report_age_days"), "the policy's drawdown rules do not read it, so it is not recorded");
        assert_eq!(features["total_exposure_minor"], Some(lendcore_domain::decision::Value::Number(25_100_000)));
    }

    async fn a_daily_review_warns_then_freezes_the_line_with_notice(db: &TestDb) {
        let w = world(db.store.clone(), false).await;
        default_policy_in_effect(&w.engine).await;
        let id = w.draw(1_000_000, "acct-1").await;
        w.settle().await;
        let loan = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown;
        let due = loan.quote.schedule.installments[0].due_date;
        let at = |days: i64| chrono::DateTime::from_naive_utc_and_offset(due.and_hms_opt(4, 0, 0).unwrap(), Utc) + Duration::days(days);
        let midnight = chrono::NaiveTime::MIN;
        let close_every_date = || async {
            while cob::schedule_due(w.engine.store.as_ref(), w.clock.as_ref(), midnight).await.unwrap().is_some() {
                w.settle().await;
            }
        };
        let told = || async {
            let mut uow = w.engine.store.begin_read().await.unwrap();
            uow.outbox_for("credit_line", &w.line_id).await.unwrap()
        };

        // Twenty days late: warned, and told the limit will be lowered; nothing changes yet.
        w.clock.set(at(20));
        close_every_date().await;
        let events = told().await;
        let warning = events.iter().find(|e| e.topic == "credit_line.warning").expect("warned");
        assert_eq!(warning.payload["warning"], "installment_due_soon");
        let notice = events.iter().find(|e| e.topic == "credit_line.change_scheduled").expect("a notice");
        assert_eq!((notice.payload["change"].as_str(), notice.payload["percent"].as_u64()), (Some("decrease"), Some(20)));
        let limit = credit_lines::get(&w.engine, &w.line_id).await.unwrap().line.limit_minor;
        assert_eq!(limit, 3_000_000, "not before the notice has run");

        // The notice runs out: the limit is lowered, once; at 31 days the freeze is announced,
        // and made a day later.
        for day in 21..=31 {
            w.clock.set(at(day));
            close_every_date().await;
        }
        let line = credit_lines::get(&w.engine, &w.line_id).await.unwrap().line;
        assert_eq!(line.limit_minor, 2_400_000, "lowered by 20% after the notice");
        let notices: Vec<String> = told().await.iter().filter(|e| e.topic == "credit_line.change_scheduled").map(|e| e.payload["change"].as_str().unwrap().to_owned()).collect();
        assert_eq!(notices, ["decrease", "freeze"], "each told once, ahead");
        let warned = told().await.iter().filter(|e| e.topic == "credit_line.warning").count();
        assert_eq!(warned, 2, "twelve days late in a row: warned on the first, and again a week on");
        assert!(matches!(line.status, lendcore_domain::credit_line::LineStatus::Active), "told, not yet frozen");
        w.clock.set(at(32) + Duration::hours(1));
        w.settle().await;
        let line = credit_lines::get(&w.engine, &w.line_id).await.unwrap().line;
        let lendcore_domain::credit_line::LineStatus::Frozen { reason, by, .. } = &line.status else { panic!("{:?}", line.status) };
        assert_eq!((*reason, by.as_str()), (Reason::Overdue, "system:credit-policy"));
        let shown = credit_lines::get_with_decider(&w.engine, &w.line_id, Language::ZhHans).await.unwrap();
        let decider = shown.decided_by.expect("the freeze names what decided it");
        assert!(matches!(&decider.decided_by, lendcore_domain::decision::DecidedBy::Rule { table: Some(t), row: Some(_) } if t == "limit"), "{decider:?}");
        assert!(decider.text.contains("“limit”表"), "in the language asked for: {}", decider.text);
        let decisions = lendcore_engine::decisions::list_decisions(&w.engine, "b-1", 200).await.unwrap();
        assert!(decisions.iter().any(|d| d.subject.kind == "credit_line" && d.evaluation.outcome.name() == "freeze"));
        for d in decisions.iter().take(5) {
            let replayed = lendcore_engine::decisions::replay(&w.engine, "b-1", &d.id).await.unwrap();
            assert!(replayed.same, "{:?}", replayed.differences);
        }
        // A decrease recorded before fired rules carried their percent replays the same.
        let decrease = decisions.iter().find(|d| d.evaluation.fired.iter().any(|f| f.percent.is_some())).expect("the decrease's record");
        let mut older = serde_json::to_value(decrease).unwrap();
        older["id"] = serde_json::json!("older-format");
        for fired in older["evaluation"]["fired"].as_array_mut().unwrap() {
            fired.as_object_mut().unwrap().remove("percent");
        }
        let mut uow = w.engine.store.begin().await.unwrap();
        uow.insert_decision(&lendcore_store::StoredDecision {
            borrower_id: "b-1".into(),
            id: "older-format".into(),
            stage: "line_review".into(),
            subject_type: decrease.subject.kind.clone(),
            subject_id: decrease.subject.id.clone(),
            policy_code: decrease.policy.code.clone(),
            policy_version: decrease.policy.version,
            outcome: decrease.evaluation.outcome.name().into(),
            record: older.to_string(),
            decided_at: decrease.decided_at,
        }).await.unwrap();
        uow.commit().await.unwrap();
        let replayed = lendcore_engine::decisions::replay(&w.engine, "b-1", "older-format").await.unwrap();
        assert!(replayed.same, "{:?}", replayed.differences);

        // Repaid: the next review lifts the freeze the policy made.
        let (_, overdue) = drawdowns::get(&w.engine, &id, Language::En).await.unwrap().drawdown.past_due(w.clock.now().date_naive());
        loans::repay(&w.engine, &id, overdue, RepaymentMode::Installments, None).await.unwrap();
        w.clock.set(at(34));
        close_every_date().await;
        let line = credit_lines::get(&w.engine, &w.line_id).await.unwrap().line;
        assert!(matches!(line.status, lendcore_domain::credit_line::LineStatus::Active), "{:?}", line.status);
        let shown = credit_lines::get_with_decider(&w.engine, &w.line_id, Language::En).await.unwrap();
        assert_eq!(shown.decided_by.map(|d| d.decided_by), Some(lendcore_domain::decision::DecidedBy::Rule { table: Some("limit".into()), row: Some(3) }), "the last limit change, a decrease");
    }
}

/// The default policy, authored by one risk officer and activated by another.
async fn default_policy_in_effect(engine: &Engine) {
    use lendcore_domain::access::Role;
    use lendcore_engine::access::Principal;
    let risk = |name: &str| Principal::Operator {
        id: name.into(),
        username: name.into(),
        role: Role::Risk,
        session_id: "s".into(),
    };
    let document = serde_json::from_str(lendcore_domain::decision::DEFAULT_POLICY).unwrap();
    let code = lendcore_domain::decision::PolicyCode::parse("consumer").unwrap();
    lendcore_engine::decisions::author(engine, &risk("rita"), &code, document, None)
        .await
        .unwrap();
    lendcore_engine::decisions::activate(engine, &risk("rick"), &code, 1, None, None)
        .await
        .unwrap();
}
