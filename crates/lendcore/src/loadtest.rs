//! `lendcore loadtest`: measures the whole service on a database of its own. `cob` fills an
//! empty database with synthetic active loans, then times close of business over them;
//! `drawdowns` confirms quoted drawdowns over HTTP from concurrent clients and reports the
//! rate and the latencies.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use lendcore_domain::credit_line::{CreditLine, GrantInput};
use lendcore_domain::drawdown::{Drawdown, DrawdownStatus, Transition};
use lendcore_domain::product::{NewProductInput, ProductCode, ProductKind};
use lendcore_engine::quotes::{self, QuoteRequest};
use lendcore_engine::{Clock, Engine, SystemClock, products};
use lendcore_store::Store;

use crate::config::Config;

/// Loans per line, and per unit of work while seeding.
const LOANS_PER_LINE: usize = 1000;
const AMOUNT_MINOR: i64 = 1_000_000;

/// Where the load test's data lives: a fresh temporary SQLite file, or the empty database the
/// configuration names. Returns the store and the directory to remove afterwards.
async fn scratch_store(
    config: &Config,
    explicit_db: bool,
) -> anyhow::Result<(Arc<dyn Store>, Option<std::path::PathBuf>)> {
    let scratch = (!explicit_db)
        .then(|| std::env::temp_dir().join(format!("lendcore-loadtest-{}", uuid_like())));
    let url = match &scratch {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            format!("sqlite://{}", dir.join("loadtest.sqlite3").display())
        }
        None => config.database_url().to_owned(),
    };
    let store = lendcore_store::connect(&url, &config.connect_options())
        .await
        .with_context(|| format!("opening {}", lendcore_store::redact_url(&url)))?;
    store.migrate().await.context("migrating")?;
    let mut uow = store.begin_read().await?;
    let existing = uow.list_products(None, 1).await?;
    drop(uow);
    anyhow::ensure!(
        existing.is_empty(),
        "loadtest writes synthetic loans: give it an empty database (or no --db for a temporary one)"
    );
    Ok((store, scratch))
}

/// Confirms `requests` drawdowns over HTTP from `clients` concurrent clients, each drawdown a
/// borrower's first on a line of its own, after quoting them, and reports the rate of
/// confirmations and their latencies. With `rate`, clients pace themselves to that many per
/// second overall. With `policy`, the default credit policy is in effect, so every
/// confirmation runs its risk check and keeps its decision record.
pub async fn drawdowns(
    config: &Config,
    explicit_db: bool,
    requests: usize,
    clients: usize,
    rate: Option<u32>,
    policy: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        clients >= 1 && requests >= clients,
        "need at least one request per client"
    );
    let (store, scratch) = scratch_store(config, explicit_db).await?;
    let outcome = drawdowns_on(store.clone(), config, requests, clients, rate, policy).await;
    store.close().await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

async fn drawdowns_on(
    store: Arc<dyn Store>,
    config: &Config,
    requests: usize,
    clients: usize,
    rate: Option<u32>,
    policy: bool,
) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Arc::new(Engine::new(store.clone(), clock.clone()));
    let code = seed_product(&engine).await?;
    if policy {
        default_policy_in_effect(&engine).await?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = lendcore_server::router(engine.clone(), &config.http_limits());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lendcore_server::serve(listener, app, async {
        let _ = stopped.await;
    }));
    // The load comes from a lender's back-end: one API key, as in production.
    let scopes = vec!["drawdowns:write".to_owned(), "drawdowns:read".to_owned()];
    let key =
        lendcore_engine::access::api_keys::create(&engine, "loadtest", None, "loadtest", &scopes)
            .await?
            .key;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse()?,
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let per_client = requests / clients;
    let now = clock.now();
    // Quotes first, unmeasured: the figure is the confirmation, where money is held.
    let bar = progress(per_client * clients, "quoting");
    let mut tokens: Vec<Vec<String>> = Vec::new();
    for client in 0..clients {
        let mut mine = Vec::with_capacity(per_client);
        for n in 0..per_client {
            let mut uow = store.begin().await?;
            let line = insert_line(
                uow.as_mut(),
                &format!("loadtest-{client}-{n}"),
                AMOUNT_MINOR,
                0,
                now,
            )
            .await?;
            uow.commit().await?;
            let quoted = lendcore_engine::drawdowns::quote(
                &engine,
                lendcore_engine::drawdowns::DrawdownRequest {
                    line_id: line.id.clone(),
                    product: code.clone(),
                    amount_minor: AMOUNT_MINOR,
                    term: 12,
                    split: None,
                    account: "acct-1".into(),
                },
                None,
            )
            .await?
            .into_inner();
            mine.push(quoted.confirmation_token);
            bar.inc(1);
        }
        tokens.push(mine);
    }
    bar.finish();
    let pace = rate.map(|r| std::time::Duration::from_secs_f64(clients as f64 / f64::from(r)));
    let database = config
        .database_url()
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap_or_default()
        .to_owned();
    // Marks where the measured phase begins, for a profiler switched on there (callgrind's
    // `--instr-atstart=no` with `callgrind_control -i on`).
    eprintln!(
        "measuring: confirming {} drawdowns from {clients} clients",
        per_client * clients
    );
    let cpu_before = (own_cpu_seconds(), postgres_cpu_seconds(&database));
    let started = Instant::now();
    let runs = tokens.into_iter().enumerate().map(|(client, mine)| {
        let http = http.clone();
        let url = format!("{base}/v1/drawdowns/confirm");
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len());
            let mut refused = 0;
            let mut next = tokio::time::Instant::now();
            for (n, token) in mine.into_iter().enumerate() {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(next).await;
                    next += pace;
                }
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("idempotency-key", format!("lt-{client}-{n}"))
                    .json(&serde_json::json!({ "confirmation_token": token }))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => latencies.push(sent.elapsed()),
                    Ok(_) | Err(_) => refused += 1,
                }
            }
            (latencies, refused)
        })
    });
    let mut latencies = Vec::with_capacity(requests);
    let mut refused = 0;
    for run in futures::future::join_all(runs).await {
        let (mine, failed) = run?;
        latencies.extend(mine);
        refused += failed;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = (own_cpu_seconds(), postgres_cpu_seconds(&database));
    let _ = stop.send(());
    server.await??;
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "drawdowns confirmed over HTTP ({}, {clients} clients{}{}): {} in {secs:.1} s = {:.0}/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {refused} not confirmed",
        store.backend().as_str(),
        if policy {
            ", risk-checked by the default policy"
        } else {
            ""
        },
        rate.map_or(String::new(), |r| format!(", paced at {r}/s")),
        latencies.len(),
        latencies.len() as f64 / secs,
        at(0.50),
        at(0.99),
        at(1.0),
    );
    // CPU time moves far less with the machine's load than throughput does: the figure to
    // compare two builds by on a shared machine.
    let per_confirmation = |before: Option<f64>, after: Option<f64>| {
        before
            .zip(after)
            .map(|(b, a)| (a - b) * 1e6 / latencies.len().max(1) as f64)
    };
    if let Some(own) = per_confirmation(cpu_before.0, cpu_after.0) {
        let database = match store.backend() {
            lendcore_store::Backend::Postgres => per_confirmation(cpu_before.1, cpu_after.1)
                .map_or(String::new(), |pg| format!(", PostgreSQL {pg:.0} µs")),
            lendcore_store::Backend::Sqlite => String::new(),
        };
        println!(
            "CPU per confirmation: lendcore (server and clients, one process) {own:.0} µs{database}"
        );
    }
    anyhow::ensure!(refused == 0, "{refused} confirmation(s) failed");
    Ok(())
}

/// User and system CPU seconds in a `/proc/PID/stat` line (fields 14 and 15, in the kernel's
/// 100 ticks a second).
fn cpu_seconds_in(stat: &str) -> Option<f64> {
    let (_, after_command) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// CPU seconds this process has used; `None` without `/proc`.
fn own_cpu_seconds() -> Option<f64> {
    cpu_seconds_in(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// CPU seconds used so far by the PostgreSQL backends serving `database` on this machine
/// (found by the title a backend gives itself, which names its database); the pool keeps
/// them open through a run. `None` without `/proc` or without such a backend (a server on
/// another machine, in a container).
fn postgres_cpu_seconds(database: &str) -> Option<f64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(title) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let title = String::from_utf8_lossy(&title);
        // `postgres: [CLUSTER:] USER DATABASE CLIENT STATE`, the cluster named on Debian.
        let serves =
            title.starts_with("postgres:") && title.split_whitespace().any(|w| w == database);
        if !serves {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
            *total.get_or_insert(0.0) += cpu_seconds_in(&stat).unwrap_or(0.0);
        }
    }
    total
}

/// A synthetic borrower's line, valid for ten years, with `drawn_minor` already drawn.
async fn insert_line(
    uow: &mut dyn lendcore_store::UnitOfWork,
    borrower: &str,
    limit_minor: i64,
    drawn_minor: i64,
    now: lendcore_domain::Timestamp,
) -> anyhow::Result<CreditLine> {
    let (mut line, granted) = CreditLine::grant(
        new_id(),
        GrantInput {
            borrower_id: borrower.to_owned(),
            currency: "CNY".into(),
            limit_minor,
            rate_tier: None,
            valid_from: None,
            valid_until: now + chrono::Duration::days(3650),
            actor: "system:loadtest".into(),
            note: None,
        },
        now,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    line.drawn_minor = drawn_minor;
    uow.insert_credit_line(&line, &granted).await?;
    Ok(line)
}

/// The default credit policy, authored and activated as two people would.
async fn default_policy_in_effect(engine: &Engine) -> anyhow::Result<()> {
    use lendcore_domain::decision::{DEFAULT_POLICY, PolicyCode};
    let person = |name: &str| lendcore_engine::access::Principal::Operator {
        id: name.to_owned(),
        username: name.to_owned(),
        role: lendcore_domain::access::Role::Risk,
        session_id: "loadtest".to_owned(),
    };
    let code = PolicyCode::parse("consumer").map_err(|e| anyhow::anyhow!("{e}"))?;
    let document = serde_json::from_str(DEFAULT_POLICY)?;
    lendcore_engine::decisions::author(engine, &person("loadtest-maker"), &code, document, None)
        .await?;
    lendcore_engine::decisions::activate(engine, &person("loadtest-checker"), &code, 1, None, None)
        .await?;
    Ok(())
}

/// The product every load test draws under.
async fn seed_product(engine: &Engine) -> anyhow::Result<ProductCode> {
    let code = ProductCode::parse("loadtest-12m").map_err(|e| anyhow::anyhow!("{e}"))?;
    let terms = serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 100000, "max_minor": 5000000},
        "terms": {"unit": "month", "options": [12]},
        "rate": {"basis": "annual", "value": "0.18"},
        "repayment_method": "equal_installment",
        "penalty_daily_rate": "0.0005",
        "grace_days": 3
    }))?;
    products::create_product(
        engine,
        NewProductInput {
            code: code.as_str().to_owned(),
            name: "Loadtest 12 months".into(),
            kind: ProductKind::Installment,
            currency: "CNY".into(),
            terms,
            effective_from: None,
        },
        None,
    )
    .await?;
    Ok(code)
}

/// Seeds `loans` active 12-month loans into an empty database (a fresh temporary SQLite file
/// when the configuration names none), runs close of business for the day after they were
/// drawn, and prints the rate.
pub async fn close_of_business(
    config: &Config,
    explicit_db: bool,
    loans: usize,
) -> anyhow::Result<()> {
    let (store, scratch) = scratch_store(config, explicit_db).await?;
    let outcome = run(store.clone(), loans, config.cob.batch).await;
    store.close().await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

async fn run(store: Arc<dyn Store>, loans: usize, batch: u32) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut engine = Engine::new(store.clone(), clock.clone());
    engine.cob_batch = batch;
    let code = seed_product(&engine).await?;
    let now = clock.now();
    let start = now.date_naive();
    let quote = quotes::quote(
        &engine,
        QuoteRequest {
            product: code.clone(),
            version: None,
            amount_minor: AMOUNT_MINOR,
            term: 12,
            start: Some(start),
            split: None,
            rate_tier: None,
        },
    )
    .await?;

    let bar = progress(loans, "seeding");
    let started = Instant::now();
    let mut seeded = 0;
    while seeded < loans {
        let batch = LOANS_PER_LINE.min(loans - seeded);
        let mut uow = store.begin().await?;
        let line = insert_line(
            uow.as_mut(),
            &format!("loadtest-{seeded}"),
            AMOUNT_MINOR * LOANS_PER_LINE as i64,
            AMOUNT_MINOR * batch as i64,
            now,
        )
        .await?;
        for _ in 0..batch {
            let id = new_id();
            let loan = Drawdown {
                id: id.clone(),
                line_id: line.id.clone(),
                borrower_id: line.borrower_id.clone(),
                product_code: code.clone(),
                product_version: quote.version,
                currency: quote.currency,
                amount_minor: AMOUNT_MINOR,
                account: "acct-1".into(),
                quote: quote.clone(),
                status: DrawdownStatus::Active,
                paid: Vec::new(),
                servicing: Default::default(),
                risk_policy: None,
                revision: 1,
                created_at: now,
                updated_at: now,
            };
            let step = Transition {
                from: "disbursing".into(),
                to: "active".into(),
                reason: None,
                at: now,
                actor: None,
                note: None,
            };
            uow.insert_drawdown(&loan, &id, &step).await?;
        }
        uow.commit().await?;
        seeded += batch;
        bar.set_position(seeded as u64);
    }
    bar.finish();
    println!(
        "seeded {loans} active loans in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let date = start.succ_opt().context("a date after today")?;
    let bar = progress(loans, &format!("close of business {date}"));
    let started = Instant::now();
    let report =
        lendcore_engine::cob::run(&engine, date, |done, _| bar.set_position(done as u64)).await?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "close of business {date} ({}): {} loans closed in {secs:.1} s = {:.0} loans/s; interest accrued {}",
        store.backend().as_str(),
        report.loans_closed,
        report.loans_closed as f64 / secs,
        report.interest_accrued_minor
    );
    anyhow::ensure!(
        report.loans_closed == loans,
        "not every loan was closed: {report:?}"
    );
    Ok(())
}

fn progress(len: usize, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(message.to_owned());
    bar
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_is_read_from_a_proc_stat_line_whatever_the_command_is_called() {
        let stat = "4242 (tokio (worker) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 70 0 0 20 0 9";
        assert_eq!(super::cpu_seconds_in(stat), Some(3.2));
        assert_eq!(super::cpu_seconds_in("garbage"), None);
    }
}
