//! Crashes: `lendcore serve` is killed (SIGKILL) while payouts are in flight, and
//! `lendcore cob run` is killed half-way through the book. After a restart every job
//! finishes, and lendcore's books agree with what the channel paid: no payout lost, none
//! doubled, no interest accrued twice. And a backup taken while drawdowns flow restores to a
//! sound book that carries on (`lendcore backup` on SQLite, `pg_dump` on PostgreSQL, as
//! docs/OPERATIONS.md says). Stopped gently (SIGTERM), a server hands back the jobs it will
//! not finish, so the next process takes them at once, finishes the request in flight while
//! taking no new ones, and exits 0. Killed with confirmations in flight (on SQLite, some in a
//! batch not yet committed), it loses none it answered as confirmed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lendcore_connectors::channel::sandbox::{Sandbox, SandboxConfig};
use lendcore_domain::calendar::Date;
use lendcore_domain::drawdown::{Drawdown, DrawdownStatus};
use lendcore_domain::ledger::{AccountKind, Layer, LoanAccounts};
use lendcore_domain::money::Currency;
use lendcore_domain::reasons::Reason;
use lendcore_domain::schedule::accrued_interest;
use lendcore_store::{JobStatus, Store};
use lendcore_testkit::{TestDb, store_test};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How each drawdown's account makes the sandbox behave: paid at once, after a while, with the
/// answer lost or late, or refused.
const ACCOUNTS: [&str; 6] = [
    "acct-1",
    "acct-1~delayed:3",
    "acct-1~timeout",
    "acct-1~lost-answer",
    "acct-1~5xx-after-accept",
    "acct-1~reject:channel.account_invalid",
];

async fn sandbox() -> (Arc<Sandbox>, String) {
    hanging_sandbox(Duration::from_secs(3)).await
}

/// The sandbox channel, whose `timeout` mode answers after `hang`.
async fn hanging_sandbox(hang: Duration) -> (Arc<Sandbox>, String) {
    let sandbox = Sandbox::new(SandboxConfig {
        hang,
        callback: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = sandbox.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (sandbox, url)
}

/// Short leases and backoff, so a dead worker's jobs pass on within seconds.
fn config(dir: &std::path::Path, channel_url: &str) {
    std::fs::write(
        dir.join("lendcore.toml"),
        format!(
            "[jobs]\nlease_secs = 5\nidle_poll_ms = 50\nbase_delay_ms = 100\nmax_delay_ms = 1000\nbatch = 16\n\n\
             [cob]\nenabled = false\n\n\
             [[channels]]\nid = \"sandbox\"\nbase_url = \"{channel_url}\"\napi_key = \"k\"\ntimeout_ms = 1000\n"
        ),
    )
    .unwrap();
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    // One key for every retry of this call, as a client that moves money must send.
    let key = uuid::Uuid::new_v4().to_string();
    for _ in 0..50 {
        let response = http
            .post(&url)
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            200 | 201 => return body,
            503 => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("{url}: {other} {body}"),
        }
    }
    panic!("{url}: still unavailable");
}

/// The `cash` product and a line for borrower `b-1` to draw on; the line's id.
async fn product_and_line(http: &reqwest::Client, base: &str) -> String {
    post(
        http,
        format!("{base}/v1/products"),
        json!({
            "code": "cash", "name": "Cash", "kind": "installment", "currency": "CNY",
            "terms": {
                "amount": {"min_minor": 10000, "max_minor": 5000000},
                "terms": {"unit": "month", "options": [12]},
                "rate": {"basis": "annual", "value": "0.18"},
                "repayment_method": "equal_installment",
                "penalty_daily_rate": "0.0005", "grace_days": 3
            }
        }),
    )
    .await;
    let until = (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc3339();
    let line = post(
        http,
        format!("{base}/v1/credit-lines"),
        json!({
            "borrower_id": "b-1", "currency": "CNY", "limit_minor": 100_000_000,
            "valid_until": until
        }),
    )
    .await;
    line["id"].as_str().unwrap().to_owned()
}

/// Quotes and confirms one drawdown; its id.
async fn drawdown(
    http: &reqwest::Client,
    base: &str,
    line_id: &str,
    amount_minor: i64,
    account: &str,
) -> String {
    let quoted = post(
        http,
        format!("{base}/v1/drawdowns/quotes"),
        json!({
            "line_id": line_id, "product_code": "cash", "amount_minor": amount_minor,
            "term": 12, "account": account
        }),
    )
    .await;
    let confirmed = post(
        http,
        format!("{base}/v1/drawdowns/confirm"),
        json!({"confirmation_token": quoted["confirmation_token"]}),
    )
    .await;
    confirmed["drawdown"]["id"].as_str().unwrap().to_owned()
}

async fn all_drawdowns(store: &dyn Store, ids: &[String]) -> Vec<Drawdown> {
    let mut found = Vec::new();
    for id in ids {
        let borrower =
            lendcore_domain::ids::borrower_of(id).expect("a drawdown id names its borrower");
        let mut uow = store.begin_read_for(borrower).await.unwrap();
        found.push(uow.find_drawdown(id).await.unwrap().unwrap());
    }
    found
}

async fn unsettled(store: &dyn Store) -> usize {
    let mut uow = store.begin_read().await.unwrap();
    let mut n = 0;
    for state in ["disbursing", "queued_for_maintenance"] {
        n += uow
            .drawdown_ids_in_state(state, "", 10_000)
            .await
            .unwrap()
            .len();
    }
    n
}

async fn left_to_close(store: &dyn Store, ids: &[String], date: Date) -> usize {
    all_drawdowns(store, ids)
        .await
        .iter()
        .filter(|l| {
            l.status == DrawdownStatus::Active && l.servicing.last_close.is_none_or(|d| d < date)
        })
        .count()
}

fn cob(db_url: &str, dir: &std::path::Path, date: Date) -> std::process::Child {
    std::process::Command::new(common::BIN)
        .args(["cob", "run", "--db", db_url, "--date", &date.to_string()])
        .current_dir(dir)
        .env_remove("LENDCORE_CONFIG")
        .env("LENDCORE_LOG", "warn")
        // Small transactions, so a kill can land between them.
        .env("LENDCORE_COB__BATCH", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

store_test! {
    async fn a_killed_server_and_a_killed_close_of_business_lose_and_double_nothing(db: &TestDb) {
        let (sandbox, channel_url) = sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        config(dir.path(), &channel_url);
        let store = db.second_store().await;
        let first = common::start(&db.url, dir.path(), &[]);
        let http = common::client(&common::api_key(&db.url, dir.path()));
        let base = first.base.clone();
        let line_id = product_and_line(&http, &base).await;

        // Payouts of every kind, most of them paid at once so there is a book to close.
        let mut ids = Vec::new();
        for i in 0..150 {
            let account = if i < 36 { ACCOUNTS[i % ACCOUNTS.len()] } else { ACCOUNTS[0] };
            ids.push(drawdown(&http, &base, &line_id, 100_000 + i as i64, account).await);
            if i == 40 {
                // Kill it while its workers are mid-call, answers lost or late.
                let deadline = Instant::now() + Duration::from_secs(30);
                while sandbox.accepted_count() < 3 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                break;
            }
        }
        let in_flight = unsettled(store.as_ref()).await;
        first.kill();
        eprintln!("killed serve with {in_flight} payout(s) in flight");
        assert!(in_flight > 0, "the server died with payouts in flight");

        let second = common::start(&db.url, dir.path(), &[]);
        let base = second.base.clone();
        for i in ids.len()..150 {
            ids.push(drawdown(&http, &base, &line_id, 100_000 + i as i64, ACCOUNTS[0]).await);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while unsettled(store.as_ref()).await > 0 {
            assert!(Instant::now() < deadline, "payouts still unsettled after the restart");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Every drawdown is settled, and exactly as the channel did it.
        let loans = all_drawdowns(store.as_ref(), &ids).await;
        let mut drawn = 0;
        let mut paid_out = 0;
        let mut uow = store.begin_read().await.unwrap();
        for loan in &loans {
            let channel = sandbox.paid_minor(&format!("{}:sandbox", loan.id));
            let accounts = LoanAccounts { loan_id: loan.id.clone(), channel_id: "sandbox".into(), currency: Currency::Cny };
            let principal = uow.account_balance(&accounts.account(AccountKind::PrincipalReceivable), Layer::Posted).await.unwrap();
            match &loan.status {
                DrawdownStatus::Active => {
                    assert_eq!(channel, Some(loan.quote.schedule.disbursed_minor), "{}: paid once, the amount sent", loan.account);
                    assert_eq!(principal, loan.amount_minor, "{}", loan.account);
                    drawn += loan.amount_minor;
                    paid_out += loan.quote.schedule.disbursed_minor;
                }
                DrawdownStatus::Failed { reason } => {
                    assert_eq!(*reason, Reason::AccountInvalid, "{}", loan.account);
                    assert_eq!(channel, None, "{}: the channel paid nothing", loan.account);
                    assert_eq!(principal, 0);
                }
                other => panic!("{}: left {other:?}", loan.account),
            }
            let pending = LoanAccounts { loan_id: loan.id.clone(), channel_id: "pending".into(), currency: Currency::Cny };
            assert_eq!(uow.account_balance(&pending.account(AccountKind::PrincipalReceivable), Layer::Pending).await.unwrap(), 0);
        }
        let settlement = LoanAccounts { loan_id: String::new(), channel_id: "sandbox".into(), currency: Currency::Cny };
        assert_eq!(uow.account_balance(&settlement.account(AccountKind::ChannelSettlement), Layer::Posted).await.unwrap(), -paid_out,
            "the channel's account shows exactly what it paid");
        let borrower = lendcore_domain::ids::borrower_of(&line_id).expect("a line id names its borrower");
        let line = store.begin_read_for(borrower).await.unwrap().find_credit_line(&line_id).await.unwrap().unwrap();
        assert_eq!((line.drawn_minor, line.held_minor), (drawn, 0));
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
        assert!(uow.list_jobs(JobStatus::Dead, 10).await.unwrap().is_empty(), "no job died");
        drop(uow);

        // Close of business, killed half-way through the book, then run again.
        let active: Vec<&Drawdown> = loans.iter().filter(|l| l.status == DrawdownStatus::Active).collect();
        let start = active[0].quote.schedule.start;
        let mut killed_mid_way = false;
        let mut date = start;
        for _ in 0..5 {
            date = date.succ_opt().unwrap();
            let mut child = cob(&db.url, dir.path(), date);
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let left = left_to_close(store.as_ref(), &ids, date).await;
                if left > 0 && left < active.len() {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    // Only a kill that left loans unclosed was one mid-way.
                    let left = left_to_close(store.as_ref(), &ids, date).await;
                    eprintln!("killed close of business for {date} with {left} of {} loans left", active.len());
                    killed_mid_way = left > 0;
                    break;
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let status = cob(&db.url, dir.path(), date).wait().unwrap();
            assert!(status.success(), "the re-run finishes");
            assert_eq!(left_to_close(store.as_ref(), &ids, date).await, 0);
            if killed_mid_way {
                break;
            }
        }
        assert!(killed_mid_way, "close of business was killed half-way at least once");
        let closed = all_drawdowns(store.as_ref(), &ids).await;
        let mut uow = store.begin_read().await.unwrap();
        for loan in closed.iter().filter(|l| l.status == DrawdownStatus::Active) {
            let expected = accrued_interest(&loan.quote.schedule, loan.quote.schedule.start, date);
            assert_eq!(loan.servicing.last_close, Some(date));
            assert_eq!(loan.servicing.interest_accrued_minor, expected, "accrued once, to the day");
            let accounts = LoanAccounts { loan_id: loan.id.clone(), channel_id: "collections".into(), currency: Currency::Cny };
            let receivable = uow.account_balance(&accounts.account(AccountKind::InterestReceivable), Layer::Posted).await.unwrap();
            assert_eq!(receivable, expected, "the ledger holds the same interest, posted once");
        }
        assert!(uow.unbalanced_entries().await.unwrap().is_empty());
        drop(uow);
        second.kill();
        store.close().await;
    }

    async fn a_server_killed_with_confirmations_in_flight_loses_none_it_answered(db: &TestDb) {
        let (_sandbox, channel_url) = sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        config(dir.path(), &channel_url);
        let store = db.second_store().await;
        let mut server = common::start(&db.url, dir.path(), &[]);
        let http = common::client(&common::api_key(&db.url, dir.path()));
        let line_id = product_and_line(&http, &server.base).await;
        let mut tokens = Vec::new();
        for i in 0..160 {
            let quoted = post(&http, format!("{}/v1/drawdowns/quotes", server.base), json!({
                "line_id": line_id, "product_code": "cash", "amount_minor": 100_000 + i,
                "term": 12, "account": "acct-1"
            })).await;
            tokens.push((quoted["drawdown"]["id"].as_str().unwrap().to_owned(), quoted["confirmation_token"].clone()));
        }

        // Every confirmation at once, so SQLite's writer batches them; the process is killed
        // once some have been answered, with others released into a batch not yet committed.
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sent: Vec<_> = tokens.into_iter().map(|(id, token)| {
            let (http, url, answered) = (http.clone(), format!("{}/v1/drawdowns/confirm", server.base), answered.clone());
            tokio::spawn(async move {
                let response = http.post(url).header("idempotency-key", uuid::Uuid::new_v4().to_string())
                    .json(&json!({"confirmation_token": token})).send().await.ok()?;
                let confirmed = response.status() == reqwest::StatusCode::OK;
                let body: Value = response.json().await.ok()?;
                if confirmed {
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Some((id, confirmed, body))
            })
        }).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while answered.load(std::sync::atomic::Ordering::SeqCst) < 40 {
            assert!(Instant::now() < deadline, "no confirmations answered");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let mut told_confirmed = Vec::new();
        for request in sent {
            if let Some((id, true, body)) = request.await.unwrap() {
                assert_eq!(body["drawdown"]["id"], id.as_str());
                told_confirmed.push(id);
            }
        }
        assert!(told_confirmed.len() < 160, "killed before every answer went out");

        // Every confirmation answered 200 was kept; what was not answered may or may not have
        // been, and the book is sound either way.
        for drawdown in all_drawdowns(store.as_ref(), &told_confirmed).await {
            assert!(!matches!(drawdown.status, DrawdownStatus::Quoted { .. }), "{} was answered confirmed but is {:?}", drawdown.id, drawdown.status);
        }
        store.close().await;
        let (status, said) = lendcore(dir.path(), &["verify", "--db", &db.url]);
        assert_eq!(status, Some(0), "the book after the kill: {said}");
    }

    async fn sigterm_hands_back_the_jobs_in_hand_and_exits_cleanly(db: &TestDb) {
        // A payout that hangs far longer than the shutdown's grace, under a lease longer still.
        let (sandbox, channel_url) = hanging_sandbox(Duration::from_secs(60)).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lendcore.toml"), format!(
            "[server]\nrequest_timeout_ms = 2000\nshutdown_grace_ms = 2000\n\n\
             [jobs]\nlease_secs = 120\nidle_poll_ms = 50\n\n[cob]\nenabled = false\n\n\
             [[channels]]\nid = \"sandbox\"\nbase_url = \"{channel_url}\"\napi_key = \"k\"\ntimeout_ms = 30000\n"
        )).unwrap();
        let store = db.second_store().await;
        let mut first = common::start(&db.url, dir.path(), &[]);
        let http = common::client(&common::api_key(&db.url, dir.path()));
        let line_id = product_and_line(&http, &first.base).await;
        let id = drawdown(&http, &first.base, &line_id, 100_000, "acct-1~timeout").await;
        let job_id = format!("disburse:{id}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while sandbox.accepted_count() < 1 {
            assert!(Instant::now() < deadline, "the payout never reached the channel");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let running = store.begin_read().await.unwrap().find_job(&job_id).await.unwrap().unwrap();
        assert_eq!((running.status, running.attempts), (JobStatus::Running, 1), "{running:?}");

        // A request in flight when the signal comes: its headers and half its body sent.
        let body = json!({"borrower_id": "b-2", "currency": "CNY", "limit_minor": 100_000,
            "valid_until": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339()}).to_string();
        let address = first.base.trim_start_matches("http://").to_owned();
        let mut in_flight = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!("POST /v1/credit-lines HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
            content-type: application/json\r\ncontent-length: {}\r\n\r\n", common::api_key(&db.url, dir.path()), body.len());
        let (half, rest) = body.split_at(body.len() / 2);
        in_flight.write_all(format!("{head}{half}").as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;

        let pid = first.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(first.child.try_wait().unwrap().is_none(), "still in its grace, finishing the request in flight");
        assert!(http.get(format!("{}/healthz", first.base)).send().await.is_err(), "no longer taking requests");
        // The rest of the body, within the grace: the request is answered in full.
        in_flight.write_all(rest.as_bytes()).await.unwrap();
        let mut answer = String::new();
        in_flight.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert!(answer.contains(r#""borrower_id":"b-2""#), "{answer}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let exited = loop {
            if let Some(status) = first.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(exited.success(), "exit status {exited}");

        // Handed back: due now, leased by no one, its interrupted attempt not counted, though the
        // lease it held had nearly two minutes to run.
        let released = store.begin_read().await.unwrap().find_job(&job_id).await.unwrap().unwrap();
        assert_eq!((released.status, released.attempts, released.lease_owner.as_deref()), (JobStatus::Pending, 0, None), "{released:?}");
        assert!(released.run_at <= chrono::Utc::now(), "{released:?}");
        // The next process takes it at once.
        let second = common::start(&db.url, dir.path(), &[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = store.begin_read().await.unwrap().find_job(&job_id).await.unwrap().unwrap();
            if job.attempts >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the handed-back job was not taken: {job:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        second.kill();
        assert_eq!(sandbox.paid_minor(&format!("{id}:sandbox")), Some(100_000), "paid once, whoever ran it");
        store.close().await;
    }
}

/// `lendcore` run to its end in `dir`: its exit status and what it printed.
fn lendcore(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(common::BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("LENDCORE_CONFIG")
        .env("LENDCORE_LOG", "warn")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), said)
}

store_test! {
    async fn a_backup_taken_while_drawdowns_flow_restores_verifies_and_carries_on(db: &TestDb) {
        let (_sandbox, channel_url) = sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        config(dir.path(), &channel_url);
        let live = db.url.clone();
        let server = common::start(&live, dir.path(), &[]);
        let http = common::client(&common::api_key(&live, dir.path()));
        let base = server.base.clone();
        let line_id = product_and_line(&http, &base).await;

        // Drawdowns flow, some paid at once, some slow, before, while and after the copy is
        // taken: they stop only once some were confirmed after it, however long it took.
        let confirmed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flow = {
            let (http, base, line_id, confirmed, stop) = (http.clone(), base.clone(), line_id.clone(), confirmed.clone(), stop.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..10_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    ids.push(drawdown(&http, &base, &line_id, 100_000 + i, ACCOUNTS[i as usize % 3]).await);
                    confirmed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                ids
            })
        };
        while confirmed.load(std::sync::atomic::Ordering::Relaxed) < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = confirmed.load(std::sync::atomic::Ordering::Relaxed);
        let copy = Backup::take(db, dir.path()).await;
        let during = confirmed.load(std::sync::atomic::Ordering::Relaxed);
        while confirmed.load(std::sync::atomic::Ordering::Relaxed) < during + 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let ids = flow.await.unwrap();
        assert!(during < ids.len(), "drawdowns were still flowing after the copy ({during})");
        server.kill();
        let (status, said) = lendcore(dir.path(), &["verify", "--db", &live]);
        assert_eq!(status, Some(0), "the live database after the load: {said}");

        // Restored elsewhere, the copy is sound, and work carries on from it.
        let restored = copy.restore(dir.path()).await;
        let store = lendcore_store::connect(&restored, &Default::default()).await.unwrap();
        let kept = all_drawdowns(store.as_ref(), &ids[..before]).await.len();
        assert_eq!(kept, before, "every drawdown confirmed before the copy began is in it");
        let resumed = common::start(&restored, dir.path(), &[]);
        let more = drawdown(&http, &resumed.base, &line_id, 200_000, ACCOUNTS[0]).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while unsettled(store.as_ref()).await > 0 {
            assert!(Instant::now() < deadline, "payouts in flight in the copy never settled");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let paid = all_drawdowns(store.as_ref(), &[more]).await;
        assert_eq!(paid[0].status, DrawdownStatus::Active);
        resumed.kill();
        store.close().await;
        let (status, said) = lendcore(dir.path(), &["verify", "--db", &restored]);
        assert_eq!(status, Some(0), "the copy after it carried on: {said}");
        copy.drop_restored().await;
    }
}

/// A copy of a test's database taken while it serves, as docs/OPERATIONS.md says to take one:
/// `lendcore backup` on SQLite, `pg_dump -Fc` on PostgreSQL.
enum Backup {
    Sqlite {
        copy: std::path::PathBuf,
    },
    Postgres {
        dump: std::path::PathBuf,
        base_url: String,
        schema: String,
        restored_db: String,
    },
}

impl Backup {
    async fn take(db: &TestDb, dir: &std::path::Path) -> Backup {
        let backup = match db.postgres_schema() {
            None => Backup::Sqlite {
                copy: dir.join("copy.sqlite3"),
            },
            Some((base_url, schema)) => Backup::Postgres {
                dump: dir.join("lendcore.dump"),
                base_url: base_url.to_owned(),
                schema: schema.to_owned(),
                restored_db: format!("restored_{schema}"),
            },
        };
        let (status, said) = match &backup {
            Backup::Sqlite { copy } => {
                let args: Vec<String> =
                    ["backup", "--db", &db.url, "--out", copy.to_str().unwrap()]
                        .map(str::to_owned)
                        .into();
                let (at, taking) = (dir.to_owned(), args.clone());
                let (status, said) = tokio::task::spawn_blocking(move || {
                    lendcore(&at, &taking.iter().map(String::as_str).collect::<Vec<_>>())
                })
                .await
                .unwrap();
                assert!(said.contains("checked intact"), "{said}");
                let (again, refused) =
                    lendcore(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
                assert_ne!(again, Some(0), "a backup never overwrites one: {refused}");
                assert!(refused.contains("exists already"), "{refused}");
                (status, said)
            }
            Backup::Postgres {
                dump,
                base_url,
                schema,
                ..
            } => {
                let args: Vec<String> =
                    ["-Fc", "-n", schema, "-f", dump.to_str().unwrap(), base_url]
                        .map(str::to_owned)
                        .into();
                tokio::task::spawn_blocking(move || {
                    tool(
                        "pg_dump",
                        &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    )
                })
                .await
                .unwrap()
            }
        };
        assert_eq!(status, Some(0), "{said}");
        backup
    }

    /// Puts the copy back into a new database and verifies it; the new database's URL.
    async fn restore(&self, dir: &std::path::Path) -> String {
        match self {
            Backup::Sqlite { copy } => {
                let restored = format!("sqlite://{}", dir.join("restored.sqlite3").display());
                let restore = [
                    "restore",
                    "--from",
                    copy.to_str().unwrap(),
                    "--db",
                    &restored,
                ];
                let (status, said) = lendcore(dir, &restore);
                assert_eq!(status, Some(0), "{said}");
                assert!(said.contains("the database is sound"), "{said}");
                let (status, said) = lendcore(dir, &restore);
                assert_ne!(status, Some(0), "{said}");
                assert!(
                    said.contains("--replace"),
                    "an existing database is replaced only when asked: {said}"
                );
                restored
            }
            Backup::Postgres {
                dump,
                base_url,
                schema,
                restored_db,
            } => {
                let (server, _) = base_url
                    .rsplit_once('/')
                    .expect("LENDCORE_TEST_PG is a URL naming a database");
                let (status, said) = tool(
                    "psql",
                    &[
                        base_url,
                        "-q",
                        "-c",
                        &format!("CREATE DATABASE {restored_db}"),
                    ],
                );
                assert_eq!(status, Some(0), "{said}");
                let new_db = format!("{server}/{restored_db}");
                let (status, said) = tool("pg_restore", &["-d", &new_db, dump.to_str().unwrap()]);
                assert_eq!(status, Some(0), "{said}");
                let restored = format!("{new_db}?options=-csearch_path%3D{schema}");
                let (status, said) = lendcore(dir, &["verify", "--db", &restored]);
                assert_eq!(status, Some(0), "the restored copy: {said}");
                restored
            }
        }
    }

    async fn drop_restored(self) {
        if let Backup::Postgres {
            base_url,
            restored_db,
            ..
        } = self
        {
            let (status, said) = tool(
                "psql",
                &[
                    &base_url,
                    "-q",
                    "-c",
                    &format!("DROP DATABASE {restored_db} WITH (FORCE)"),
                ],
            );
            assert_eq!(status, Some(0), "{said}");
        }
    }
}

/// A PostgreSQL client tool run to its end: its exit status and what it printed.
fn tool(program: &str, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), said)
}
