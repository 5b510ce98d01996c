//! `lendcore loadtest`: measures the whole service on a database of its own. `cob` fills an
//! empty database with synthetic active loans, then times close of business over them;
//! `drawdowns` confirms quoted drawdowns over HTTP from concurrent clients and reports the
//! rate and the latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// How confirmations are offered.
#[derive(Debug, Clone, Copy)]
pub enum Offered {
    /// `clients` each send their next confirmation when the last one is answered.
    Closed { clients: usize },
    /// Confirmations start on a Poisson schedule, `rate` a second on average, whatever the
    /// answers; each is timed from when it was due, so queueing shows in its latency.
    Open { rate: f64 },
}

/// What to measure, and how.
#[derive(Debug, Clone, Copy)]
pub struct DrawdownLoad {
    pub requests: usize,
    pub offered: Offered,
    /// With the default credit policy in effect, every confirmation runs its risk check and
    /// keeps its decision record.
    pub policy: bool,
    /// Print the full report: percentiles, errors by code, bytes written and commits.
    pub report: bool,
    /// Seed this many active loans first and run close of business over them while the
    /// confirmations are measured: what a borrower waits while the night's batch runs.
    pub during_cob: Option<usize>,
}

/// Confirms `load.requests` drawdowns over HTTP, each a borrower's first on a line of its own,
/// after quoting them, and reports the rate of confirmations and their latencies.
pub async fn drawdowns(
    config: &Config,
    explicit_db: bool,
    load: DrawdownLoad,
) -> anyhow::Result<()> {
    match load.offered {
        Offered::Closed { clients } => anyhow::ensure!(
            clients >= 1 && load.requests >= clients,
            "need at least one request per client"
        ),
        Offered::Open { rate } => anyhow::ensure!(
            rate.is_finite() && rate > 0.0 && load.requests >= 1,
            "need a rate above 0 and at least one request"
        ),
    }
    let (store, scratch) = scratch_store(config, explicit_db).await?;
    // The reference runs on the same disk as the database.
    let dir = scratch
        .clone()
        .unwrap_or_else(|| sqlite_directory(config.database_url()));
    let outcome = drawdowns_on(store.clone(), config, load, &dir).await;
    store.close().await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

async fn drawdowns_on(
    store: Arc<dyn Store>,
    config: &Config,
    load: DrawdownLoad,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut engine = Engine::new(store.clone(), clock.clone());
    engine.cob_batch = config.cob.batch;
    let engine = Arc::new(engine);
    let code = seed_product(&engine).await?;
    if load.policy {
        default_policy_in_effect(&engine).await?;
    }
    let cob_date = match load.during_cob {
        Some(loans) => Some(seed_loans(&engine, &code, loans).await?),
        None => None,
    };
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
    let requests = match load.offered {
        Offered::Closed { clients } => load.requests / clients * clients,
        Offered::Open { .. } => load.requests,
    };
    let now = clock.now();
    // Quotes first, unmeasured: the figure is the confirmation, where money is held.
    let bar = progress(requests, "quoting");
    let mut tokens: Vec<String> = Vec::with_capacity(requests);
    for n in 0..requests {
        let borrower = format!("loadtest-{n}");
        let mut uow = store.begin_for(&borrower).await?;
        let line = insert_line(uow.as_mut(), AMOUNT_MINOR, 0, now).await?;
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
        tokens.push(quoted.confirmation_token);
        bar.inc(1);
    }
    bar.finish();
    let database = config
        .database_url()
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap_or_default()
        .to_owned();
    // Marks where the measured phase begins, for a profiler switched on there (callgrind's
    // `--instr-atstart=no` with `callgrind_control -i on`).
    eprintln!("measuring: confirming {requests} drawdowns");
    let before = Counters::read(store.as_ref(), &database);
    let started = Instant::now();
    let cob = cob_date.map(|date| {
        let engine = engine.clone();
        tokio::spawn(async move {
            let began = started.elapsed();
            let report = lendcore_engine::cob::run(&engine, date, |_, _| ()).await;
            (began..started.elapsed(), report)
        })
    });
    let url = format!("{base}/v1/drawdowns/confirm");
    let samples = match load.offered {
        Offered::Closed { clients } => closed_loop(&http, &url, tokens, clients, started).await?,
        Offered::Open { rate } => open_loop(&http, &url, tokens, rate).await?,
    };
    let secs = started.elapsed().as_secs_f64();
    let after = Counters::read(store.as_ref(), &database);
    let cob = match cob {
        Some(running) => {
            let (ran, report) = running.await?;
            let report = report?;
            anyhow::ensure!(
                report.complete && report.loans_busy == 0,
                "close of business did not close every loan: {report:?}"
            );
            Some((ran, report.loans_closed))
        }
        None => None,
    };
    let _ = stop.send(());
    server.await??;
    let report = Report::of(&samples, secs, &before, &after);
    // The same run's reference, measured after the service has stopped taking the machine.
    let reference = match (load.report, store.backend()) {
        (true, lendcore_store::Backend::Sqlite) => {
            let dir = dir.to_owned();
            eprintln!("measuring the reference: the confirmation's writes alone (bench/sqlite)");
            let units = requests.clamp(5_000, 50_000);
            Some(
                tokio::task::spawn_blocking(move || crate::reference::sqlite(&dir, units))
                    .await??,
            )
        }
        (_, _) => None,
    };
    let offered = match load.offered {
        Offered::Closed { clients } => format!("{clients} clients"),
        Offered::Open { rate } => format!("open loop at {rate}/s, Poisson"),
    };
    let policy = if load.policy {
        ", risk-checked by the default policy"
    } else {
        ""
    };
    print!(
        "{}",
        report.text(
            &format!("{}, {offered}{policy}", store.backend().as_str()),
            load.report
        )
    );
    if let Some((ran, loans)) = cob {
        print!("{}", during_and_after(&samples, &ran, loans));
    }
    if let Some(reference) = reference {
        let rate = report.confirmed as f64 / report.secs;
        println!(
            "reference, the same run (bench/sqlite, one thread, prepared statements): {:.0} \
             units/s group-committed ({} per COMMIT), {:.0}/s a COMMIT each; lendcore \
             confirmed {:.3} of the group-committed figure, {:.2} of the one-by-one",
            reference.grouped,
            crate::reference::PER_COMMIT,
            reference.single,
            rate / reference.grouped,
            rate / reference.single
        );
    }
    anyhow::ensure!(
        report.failed == 0,
        "{} confirmation(s) failed",
        report.failed
    );
    Ok(())
}

/// The directory of a `sqlite://PATH` database: the reference runs on the same disk.
fn sqlite_directory(url: &str) -> std::path::PathBuf {
    let path = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or_default();
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf)
}

/// One confirmation: when it was due (since the measured phase began), how long it took
/// (from when it was due, in open loop) and the code it was refused with, if it was.
struct Sample {
    due: Duration,
    latency: Duration,
    error: Option<String>,
}

/// The latencies of the confirmations due while close of business ran (`ran`, since the
/// measured phase began) beside those of the rest.
fn during_and_after(samples: &[Sample], ran: &std::ops::Range<Duration>, loans: usize) -> String {
    let line = |during: bool| {
        let these: Vec<&Sample> = samples
            .iter()
            .filter(|s| ran.contains(&s.due) == during)
            .collect();
        let sent =
            crate::stress::sent_latencies_ms(these.iter().map(|s| (s.latency, s.error.as_deref())));
        let at = |q| crate::stress::nearest_rank(&sent, q);
        format!(
            "{} confirmations, {} not confirmed; latency (ms) p50 {:.2}  p90 {:.2}  p99 {:.2}  \
             max {:.2}",
            these.len(),
            these.iter().filter(|s| s.error.is_some()).count(),
            at(0.50),
            at(0.90),
            at(0.99),
            sent.last().copied().unwrap_or(0.0)
        )
    };
    let secs = (ran.end - ran.start).as_secs_f64();
    format!(
        "close of business over {loans} loans ran from {:.1} s to {:.1} s ({:.0} loans/s)\n\
         due while it ran: {}\n\
         due outside it: {}\n",
        ran.start.as_secs_f64(),
        ran.end.as_secs_f64(),
        loans as f64 / secs,
        line(true),
        line(false)
    )
}

/// Confirms each token once, `clients` at a time, each client sending its next when the last
/// is answered.
async fn closed_loop(
    http: &reqwest::Client,
    url: &str,
    tokens: Vec<String>,
    clients: usize,
    started: Instant,
) -> anyhow::Result<Vec<Sample>> {
    let per_client = tokens.len() / clients;
    let mut tokens = tokens.into_iter().enumerate();
    let runs: Vec<_> = (0..clients)
        .map(|_| {
            let mine: Vec<(usize, String)> = tokens.by_ref().take(per_client).collect();
            let (http, url) = (http.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(mine.len());
                for (n, token) in mine {
                    let due = Instant::now();
                    let error = confirm(&http, &url, n, &token).await.err();
                    samples.push(Sample {
                        due: due - started,
                        latency: due.elapsed(),
                        error,
                    });
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for run in futures::future::join_all(runs).await {
        samples.extend(run?);
    }
    Ok(samples)
}

/// Confirms each token once, starting them on a Poisson schedule at `rate` a second whatever
/// the answers (at most [`crate::stress::MAX_IN_FLIGHT`] at once: past that one is refused
/// unsent, as `client.saturated`).
async fn open_loop(
    http: &reqwest::Client,
    url: &str,
    tokens: Vec<String>,
    rate: f64,
) -> anyhow::Result<Vec<Sample>> {
    use rand::SeedableRng;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let mut due = start;
    let mut tasks = Vec::with_capacity(tokens.len());
    for (n, token) in tokens.into_iter().enumerate() {
        due += crate::stress::poisson_gap(&mut rng, rate);
        tokio::time::sleep_until(due).await;
        if in_flight.fetch_add(1, Ordering::SeqCst) >= crate::stress::MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            tasks.push(tokio::spawn(async move {
                Sample {
                    due: due - start,
                    latency: Duration::ZERO,
                    error: Some(crate::stress::SATURATED.to_owned()),
                }
            }));
            continue;
        }
        let (http, url, in_flight) = (http.clone(), url.to_owned(), in_flight.clone());
        tasks.push(tokio::spawn(async move {
            let error = confirm(&http, &url, n, &token).await.err();
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Sample {
                due: due - start,
                latency: due.elapsed(),
                error,
            }
        }));
    }
    let mut samples = Vec::with_capacity(tasks.len());
    for task in tasks {
        samples.push(task.await?);
    }
    Ok(samples)
}

/// Confirms one drawdown; the code it was refused with, if it was.
async fn confirm(http: &reqwest::Client, url: &str, n: usize, token: &str) -> Result<(), String> {
    let response = http
        .post(url)
        .header("idempotency-key", format!("lt-{n}"))
        .json(&serde_json::json!({ "confirmation_token": token }))
        .send()
        .await
        .map_err(|e| crate::stress::transport_code(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Err(crate::stress::refusal_code(status, &body))
}

/// What the machine counts, read before and after the measured phase.
struct Counters {
    /// CPU seconds of this process (server and clients).
    own_cpu: Option<f64>,
    /// CPU seconds of the PostgreSQL backends serving the database.
    postgres_cpu: Option<f64>,
    /// Bytes this process had the kernel write to storage (`/proc/self/io` write_bytes, less
    /// the cancelled): the SQLite database and its WAL.
    own_written: Option<u64>,
    /// The same for every PostgreSQL process on this machine: backends, WAL writer,
    /// checkpointer.
    postgres_written: Option<u64>,
    /// Write transactions this process committed.
    commits: u64,
}

impl Counters {
    fn read(store: &dyn Store, database: &str) -> Counters {
        Counters {
            own_cpu: own_cpu_seconds(),
            postgres_cpu: postgres_cpu_seconds(database),
            own_written: std::fs::read_to_string("/proc/self/io")
                .ok()
                .and_then(|io| written_bytes_in(&io)),
            postgres_written: postgres_written_bytes(),
            commits: store.commits(),
        }
    }
}

/// A run's figures.
struct Report {
    confirmed: usize,
    failed: usize,
    secs: f64,
    /// Of every confirmation sent, refused ones included, in milliseconds.
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    errors: std::collections::BTreeMap<String, usize>,
    commits: u64,
    own_cpu_us: Option<f64>,
    postgres_cpu_us: Option<f64>,
    own_written: Option<u64>,
    postgres_written: Option<u64>,
}

impl Report {
    fn of(samples: &[Sample], secs: f64, before: &Counters, after: &Counters) -> Report {
        let sent = crate::stress::sent_latencies_ms(
            samples.iter().map(|s| (s.latency, s.error.as_deref())),
        );
        let at = |q| crate::stress::nearest_rank(&sent, q);
        let mut errors = std::collections::BTreeMap::new();
        for code in samples.iter().filter_map(|s| s.error.clone()) {
            *errors.entry(code).or_insert(0) += 1;
        }
        let failed: usize = errors.values().sum();
        let confirmed = samples.len() - failed;
        let per = |b: Option<f64>, a: Option<f64>| {
            b.zip(a)
                .map(|(b, a)| (a - b) * 1e6 / confirmed.max(1) as f64)
        };
        Report {
            confirmed,
            failed,
            secs,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: sent.last().copied().unwrap_or(0.0),
            errors,
            commits: after.commits - before.commits,
            own_cpu_us: per(before.own_cpu, after.own_cpu),
            postgres_cpu_us: per(before.postgres_cpu, after.postgres_cpu),
            own_written: before
                .own_written
                .zip(after.own_written)
                .map(|(b, a)| a.saturating_sub(b)),
            postgres_written: before
                .postgres_written
                .zip(after.postgres_written)
                .map(|(b, a)| a.saturating_sub(b)),
        }
    }

    fn text(&self, what: &str, full: bool) -> String {
        let mut out = format!(
            "drawdowns confirmed over HTTP ({what}): {} in {:.1} s = {:.0}/s; latency p50 {:.1} \
             ms, p99 {:.1} ms, max {:.1} ms; {} not confirmed\n",
            self.confirmed,
            self.secs,
            self.confirmed as f64 / self.secs,
            self.p50,
            self.p99,
            self.max,
            self.failed
        );
        // CPU time moves far less with the machine's load than throughput does: the figure to
        // compare two builds by on a shared machine.
        if let Some(own) = self.own_cpu_us {
            let database = self
                .postgres_cpu_us
                .map_or(String::new(), |pg| format!(", PostgreSQL {pg:.0} µs"));
            out.push_str(&format!(
                "CPU per confirmation: lendcore (server and clients, one process) {own:.0} µs{database}\n"
            ));
        }
        if !full {
            return out;
        }
        out.push_str(&format!(
            "latency (ms, from when each was due): p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n",
            self.p50, self.p90, self.p99, self.max
        ));
        if self.errors.is_empty() {
            out.push_str("errors: none\n");
        }
        for (code, count) in &self.errors {
            out.push_str(&format!("error {code}: {count}\n"));
        }
        let per_confirmation = |bytes: u64| bytes as f64 / self.confirmed.max(1) as f64 / 1024.0;
        if let Some(own) = self.own_written {
            out.push_str(&format!(
                "written per confirmation: lendcore {:.1} KiB{}\n",
                per_confirmation(own),
                self.postgres_written.map_or(String::new(), |pg| format!(
                    ", PostgreSQL processes {:.1} KiB",
                    per_confirmation(pg)
                ))
            ));
        }
        out.push_str(&format!(
            "commits: {} = {:.0}/s, {:.1} confirmations per commit\n",
            self.commits,
            self.commits as f64 / self.secs,
            self.confirmed as f64 / self.commits.max(1) as f64
        ));
        out
    }
}

/// The bytes a `/proc/PID/io` text says reached storage: `write_bytes` less
/// `cancelled_write_bytes`, the writes to files deleted before the kernel wrote them out (SQLite
/// spills a savepoint's journal to such a file).
fn written_bytes_in(io: &str) -> Option<u64> {
    let field = |name: &str| {
        io.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    let written = field("write_bytes:")?;
    Some(written.saturating_sub(field("cancelled_write_bytes:").unwrap_or(0)))
}

/// Bytes every PostgreSQL process on this machine has had written to storage; `None` without
/// `/proc` or without one.
fn postgres_written_bytes() -> Option<u64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(title) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !title.starts_with(b"postgres:") {
            continue;
        }
        if let Some(n) = std::fs::read_to_string(entry.path().join("io"))
            .ok()
            .and_then(|io| written_bytes_in(&io))
        {
            *total.get_or_insert(0) += n;
        }
    }
    total
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

/// A line of the synthetic borrower `uow` is for, valid for ten years, with `drawn_minor`
/// already drawn.
async fn insert_line(
    uow: &mut dyn lendcore_store::BorrowerUnit,
    limit_minor: i64,
    drawn_minor: i64,
    now: lendcore_domain::Timestamp,
) -> anyhow::Result<CreditLine> {
    let borrower = uow.borrower_id().to_owned();
    let (mut line, granted) = CreditLine::grant(
        lendcore_domain::ids::for_borrower(&borrower, &new_id()),
        GrantInput {
            borrower_id: borrower,
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
    let date = seed_loans(&engine, &code, loans).await?;
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

/// Seeds `loans` active 12-month loans of `code` (a line per [`LOANS_PER_LINE`]), unmeasured;
/// returns the business date close of business is to run for next.
async fn seed_loans(
    engine: &Engine,
    code: &ProductCode,
    loans: usize,
) -> anyhow::Result<lendcore_domain::calendar::Date> {
    let store = &engine.store;
    let now = engine.clock.now();
    let start = now.date_naive();
    let quote = quotes::quote(
        engine,
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
        let borrower = format!("loadtest-loans-{seeded}");
        let mut uow = store.begin_for(&borrower).await?;
        let line = insert_line(
            uow.as_mut(),
            AMOUNT_MINOR * LOANS_PER_LINE as i64,
            AMOUNT_MINOR * batch as i64,
            now,
        )
        .await?;
        for _ in 0..batch {
            let id = lendcore_domain::ids::for_borrower(&borrower, &new_id());
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
    start.succ_opt().context("a date after today")
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

    #[test]
    fn bytes_written_are_read_from_a_proc_io_text() {
        let io = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(super::written_bytes_in(io), Some(8192));
        let cancelled = io.replace("cancelled_write_bytes: 0", "cancelled_write_bytes: 4096");
        assert_eq!(super::written_bytes_in(&cancelled), Some(4096));
        assert_eq!(super::written_bytes_in("rchar: 1\n"), None);
    }

    #[test]
    fn the_report_counts_refusals_by_code_and_times_every_confirmation_sent() {
        let ms = std::time::Duration::from_millis;
        let samples: Vec<super::Sample> = (1..=100)
            .map(|n| super::Sample {
                due: ms(n),
                latency: ms(n),
                error: (n % 50 == 0).then(|| "risk.velocity".to_owned()),
            })
            .chain(std::iter::once(super::Sample {
                due: ms(101),
                latency: ms(0),
                error: Some(crate::stress::SATURATED.to_owned()),
            }))
            .collect();
        let counters = |commits, written| super::Counters {
            own_cpu: None,
            postgres_cpu: None,
            own_written: Some(written),
            postgres_written: None,
            commits,
        };
        let report = super::Report::of(&samples, 2.0, &counters(10, 0), &counters(30, 98 * 1024));
        assert_eq!((report.confirmed, report.failed), (98, 3));
        assert_eq!((report.p50, report.p99, report.max), (50.0, 99.0, 100.0));
        let text = report.text("sqlite", true);
        assert!(
            text.contains("error risk.velocity: 2") && text.contains("error client.saturated: 1"),
            "{text}"
        );
        assert!(
            text.contains("lendcore 1.0 KiB")
                && text.contains("commits: 20 = 10/s, 4.9 confirmations per commit"),
            "{text}"
        );
    }

    #[test]
    fn confirmations_due_while_close_of_business_ran_are_reported_apart() {
        let ms = std::time::Duration::from_millis;
        // Due at 0..100 ms; those due from 40 to 60 ms waited ten times longer.
        let samples: Vec<super::Sample> = (0..100)
            .map(|n| super::Sample {
                due: ms(n),
                latency: if (40..60).contains(&n) { ms(30) } else { ms(3) },
                error: (n == 45).then(|| "system.unavailable".to_owned()),
            })
            .collect();
        let text = super::during_and_after(&samples, &(ms(40)..ms(60)), 1000);
        assert!(
            text.contains("ran from 0.0 s to 0.1 s (50000 loans/s)")
                && text.contains(
                    "due while it ran: 20 confirmations, 1 not confirmed; latency (ms) p50 30.00"
                )
                && text.contains(
                    "due outside it: 80 confirmations, 0 not confirmed; latency (ms) p50 3.00"
                ),
            "{text}"
        );
    }
}
