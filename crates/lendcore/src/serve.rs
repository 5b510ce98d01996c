//! Starting the service: logging, store, migrations, job runner, HTTP, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Context;
use chrono::Duration;
use lendcore_connectors::channel::{HttpChannel, HttpChannelConfig, PaymentChannel};
use lendcore_connectors::email::{Mailer, SmtpConfig, SmtpMailer};
use lendcore_connectors::identity::{HttpIdentityProvider, SandboxIdentityProvider};
use lendcore_connectors::sms::{HttpSmsConfig, HttpSmsGateway};
use lendcore_connectors::webhook::{WebhookClient, WebhookEndpoint};
use lendcore_domain::jobs::Backoff;
use lendcore_engine::applications;
use lendcore_engine::cob::{self, CobHandler};
use lendcore_engine::credit_lines::{ExpiryHandler, FreezeEndHandler};
use lendcore_engine::drawdowns::{DisburseHandler, ExpireHandler};
use lendcore_engine::jobs::{JobRunner, RunnerConfig};
use lendcore_engine::maintenance::NoticeHandler;
use lendcore_engine::notify::{self, DeliveryHandler};
use lendcore_engine::products::VersionEffectiveHandler;
use lendcore_engine::{Clock, Engine, SystemClock};
use lendcore_store::{Store, redact_url};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::config::{BureauConfig, Config, IdentityConfig};

pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("LENDCORE_LOG")
        .or_else(|_| EnvFilter::try_new(&config.log.filter))
        .context("log filter")?;
    // Logs go to stderr so stdout carries only what a command prints for people and scripts.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format.as_str() {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("log.format must be text or json, not {other:?}"),
    }
    Ok(())
}

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    lendcore_store::connect(url, &config.connect_options())
        .await
        .with_context(|| format!("opening database {}", redact_url(url)))
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let report = store.migrate().await.context("migrating")?;
    println!(
        "{}: {} migration(s) applied now, {} before",
        redact_url(config.database_url()),
        report.applied_now,
        report.applied_before
    );
    store.close().await;
    Ok(())
}

/// Runs close of business for `date` (if absent, the last date that has ended and is due
/// under `cob.run_after`) with a progress bar on the terminal.
pub async fn close_of_business(
    config: &Config,
    date: Option<chrono::NaiveDate>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    store.migrate().await.context("migrating")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // By default the date the scheduler would close now: the last one that has ended.
    let run_after = config
        .cob_run_after()
        .context("cob.run_after must be a time of day as HH:MM")?;
    let date = date.unwrap_or_else(|| cob::due_date(clock.now(), run_after));
    let mut engine = Engine::new(store.clone(), clock);
    engine.cob_batch = config.cob.batch;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} loans ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("close of business {date}"));
    let report = lendcore_engine::cob::run(&engine, date, |done, seen| {
        bar.set_length(seen as u64);
        bar.set_position(done as u64);
    })
    .await?;
    bar.finish();
    println!(
        "close of business {date}: {} loans closed, {} already done, interest accrued {}, penalty charged {}, {} reminders",
        report.loans_closed,
        report.loans_skipped,
        report.interest_accrued_minor,
        report.penalty_charged_minor,
        report.reminders
    );
    store.close().await;
    Ok(())
}

/// The database the configuration names, for a command that only reads it (an audit, a
/// replay): one that does not exist is reported, not created, and one whose schema is not this
/// build's is refused, as the command needs no right to change it.
pub async fn open_existing_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let options = lendcore_store::ConnectOptions {
        create_if_missing: false,
        ..config.connect_options()
    };
    let store = lendcore_store::connect(url, &options)
        .await
        .with_context(|| format!("opening database {}", redact_url(url)))?;
    store
        .readiness()
        .await
        .context("the database is not ready for this build (run lendcore migrate)")?;
    Ok(store)
}

/// Verifies the audit chain, writing it to `out` as JSON lines if given; prints what it found.
/// `Ok(false)` when the chain is broken.
/// Writes the enabled alert rules as a Prometheus rules file to `out`, or standard output.
pub async fn export_alert_rules(
    config: &Config,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let store = open_existing_store(config).await?;
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    let rules: Vec<_> = lendcore_engine::alerts::list_rules(&engine)
        .await?
        .into_iter()
        .map(|view| view.rule)
        .collect();
    let file = lendcore_domain::alerting::prometheus_rules(&rules);
    match out {
        Some(path) => {
            std::fs::write(path, file).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{file}"),
    }
    store.close().await;
    Ok(())
}

pub async fn audit(
    config: &Config,
    out: Option<&std::path::Path>,
    anchor: Option<&lendcore_engine::audit::Anchor>,
) -> anyhow::Result<bool> {
    use std::io::Write;
    let store = open_existing_store(config).await?;
    let mut file = match out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let report = lendcore_engine::audit::verify(store.as_ref(), anchor, |record| {
        if let Some(file) = file.as_mut() {
            let line = serde_json::to_string(record)
                .map_err(|e| lendcore_engine::EngineError::Internal(e.to_string()))?;
            writeln!(file, "{line}")
                .map_err(|e| lendcore_engine::EngineError::Internal(format!("writing: {e}")))?;
        }
        Ok(())
    })
    .await?;
    if let Some(mut file) = file {
        file.flush()?;
    }
    store.close().await;
    match &report.broken {
        None => {
            println!(
                "audit chain intact: {} record(s), head {}:{}; {} entr(ies) not yet sealed",
                report.records, report.records, report.head, report.pending
            );
            Ok(true)
        }
        Some(broken) => {
            println!(
                "AUDIT CHAIN BROKEN after {} good record(s): {broken}",
                report.records
            );
            Ok(false)
        }
    }
}

/// Chains pending audit entries every second. Any number of processes may: sealing takes the
/// chain for its unit of work, so one seals at a time.
async fn seal_audit(store: Arc<dyn Store>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        if let Err(err) = lendcore_engine::audit::seal(store.as_ref()).await {
            // Unsealed entries are not yet tamper-evident: an operator must hear of it.
            metrics::counter!("lendcore_audit_seal_failures_total").increment(1);
            tracing::error!(error = %err, "could not seal audit entries; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Queues each minute's evaluation of the alert rules, checking every twenty seconds. Every
/// process may: the minute's job has a fixed id, so one process evaluates it.
async fn schedule_alerts(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        if let Err(err) =
            lendcore_engine::alerts::schedule_due(engine.store.as_ref(), engine.clock.as_ref())
                .await
        {
            tracing::warn!(error = %err, "could not schedule the alert rules' evaluation");
        }
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_secs(20)) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Checks the book as `lendcore verify` does, ten minutes after start and then daily, and
/// shows the result on `/metrics` (`lendcore_integrity_broken`); a broken rule is logged as an
/// error. Every process checks for itself: the checks only read.
async fn check_the_book(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let mut wait = StdDuration::from_secs(600);
    while waited(wait, &mut stopped).await {
        // A check of a big book takes a while; stopping does not wait for it.
        let checked = tokio::select! {
            checked = lendcore_engine::integrity::verify(engine.store.as_ref()) => checked,
            _ = stopped.changed() => return,
        };
        match checked {
            Ok(report) => {
                lendcore_engine::integrity::record_gauges(&report, engine.clock.now());
                if !report.sound() {
                    tracing::error!(
                        "the book is not sound: run `lendcore verify` for what breaks which rule"
                    );
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not check the book; trying again"),
        }
        wait = StdDuration::from_secs(24 * 3600);
    }
}

/// Waits `wait`, or less if the process is stopping; false once it is.
async fn waited(wait: StdDuration, stopped: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stopped.changed() => {}
    }
    !*stopped.borrow()
}

/// Prunes sign-in leftovers every hour (and a minute after start). Any number of processes may:
/// each deletes what is due, and what another deleted first is simply gone.
async fn prune_access(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let mut wait = StdDuration::from_secs(60);
    while waited(wait, &mut stopped).await {
        match lendcore_engine::access::housekeeping::prune(&engine).await {
            Ok(pruned) => tracing::info!(
                sessions = pruned.sessions,
                codes = pruned.codes,
                failures = pruned.failures,
                links = pruned.links,
                idempotency_keys = pruned.idempotency_keys,
                "pruned leftovers"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "could not prune sign-in leftovers; trying again later")
            }
        }
        wait = StdDuration::from_secs(3600);
    }
}

/// Refuses to serve a database in use that still lacks a migration a process of the previous
/// build must not run beside (`lendcore_store::OFFLINE_MIGRATIONS`): `serve` migrates as it
/// starts, while the previous build may still be serving. The operator stops it and runs
/// `lendcore migrate` (docs/OPERATIONS.md, "Upgrading"). The demo, alone on its own file,
/// migrates whatever it needs.
pub async fn refuse_offline_migrations(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let plan = store.migration_plan().await;
    store.close().await;
    if let Some(version) = plan.context("reading the migrations applied")?.offline() {
        anyhow::bail!(
            "migration {version:04} re-keys tables the previous build reads: stop every process \
             of the previous build, run `lendcore migrate`, then start this one \
             (docs/OPERATIONS.md, \"Upgrading\")"
        );
    }
    Ok(())
}

/// Migrates, runs `prepare` (the demo seeds data there), then serves until Ctrl-C or SIGTERM.
pub async fn run<F, Fut>(config: Config, prepare: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<Engine>, std::net::SocketAddr) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let store = open_store(&config).await?;
    let report = store.migrate().await.context("migrating")?;
    tracing::info!(
        database = %redact_url(config.database_url()),
        backend = store.backend().as_str(),
        applied_now = report.applied_now,
        "database ready"
    );
    // Bind before `prepare`, so the URLs the demo prints are already being served.
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .with_context(|| format!("binding {}", config.server.bind))?;
    let address = listener.local_addr()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let channels = build_channels(&config)?;
    let mut engine = Engine::new(store.clone(), clock.clone())
        .with_apr_caps(config.lending.apr_caps.clone())
        .with_channels(channels.clone());
    engine.case_response = chrono::Duration::minutes(i64::from(config.support.response_minutes));
    for channel in &config.channels {
        if let Some(secret) = &channel.callback_secret {
            engine = engine
                .with_callback_secret(&channel.id, secret.expose_secret().as_bytes().to_vec());
        }
    }
    let mut engine = with_vault(engine, &config)?;
    match &config.sms {
        Some(sms) => {
            let gateway = HttpSmsGateway::new(HttpSmsConfig {
                base_url: sms.base_url.clone(),
                api_key: sms.api_key.expose_secret().to_owned(),
                timeout: StdDuration::from_millis(sms.timeout_ms),
            })
            .context("the SMS gateway")?;
            engine = engine.with_sms(Arc::new(gateway));
        }
        None => tracing::warn!("no [sms] gateway is configured: borrowers cannot sign in (503)"),
    }
    match &config.identity {
        Some(IdentityConfig::Http {
            base_url,
            api_key,
            methods,
            timeout_ms,
        }) => {
            let provider = HttpIdentityProvider::new(
                base_url,
                api_key.expose_secret().to_owned(),
                methods.clone(),
                StdDuration::from_millis(*timeout_ms),
            )
            .context("the identity provider")?;
            engine = engine.with_identity(Arc::new(provider));
        }
        Some(IdentityConfig::Sandbox) => {
            tracing::warn!(
                "identities are checked by the SANDBOX provider: not for real borrowers"
            );
            engine = engine.with_identity(Arc::new(SandboxIdentityProvider));
        }
        None => {}
    }
    match &config.bureau {
        Some(BureauConfig::Http {
            name,
            base_url,
            api_key,
            timeout_ms,
        }) => {
            let bureau = lendcore_connectors::bureau::HttpCreditBureau::new(
                name,
                base_url,
                api_key.expose_secret().to_owned(),
                StdDuration::from_millis(*timeout_ms),
            )
            .context("the credit bureau")?;
            engine = engine.with_bureau(Arc::new(bureau));
        }
        Some(BureauConfig::Sandbox) => {
            tracing::warn!("credit reports come from the SANDBOX bureau: not for real borrowers");
            engine = engine.with_bureau(Arc::new(lendcore_connectors::bureau::SandboxBureau));
        }
        None => {}
    }
    let engine = Arc::new(engine.with_notifications(notifications(&config)?));
    let installed = lendcore_engine::alerts::install_defaults(&engine).await?;
    if installed > 0 {
        tracing::info!(
            rules = installed,
            "default alert rules put in place (GET /v1/alert-rules)"
        );
    }
    prepare(engine.clone(), address).await?;

    let (stop, stopped) = watch::channel(false);
    let grace = StdDuration::from_millis(config.server.shutdown_grace_ms);
    let runner = config.jobs.enabled.then(|| {
        let runner = JobRunner::new(
            store.clone(),
            clock.clone(),
            RunnerConfig {
                lease: Duration::seconds(config.jobs.lease_secs),
                batch: config.jobs.batch,
                idle_poll: StdDuration::from_millis(config.jobs.idle_poll_ms),
                backoff: Backoff {
                    base_delay: Duration::milliseconds(config.jobs.base_delay_ms),
                    max_delay: Duration::milliseconds(config.jobs.max_delay_ms),
                },
                ..RunnerConfig::default()
            },
        )
        .register(VersionEffectiveHandler)
        .register(ExpireHandler)
        .register(lendcore_engine::drawdowns::held::HoldExpiryHandler)
        .register(DisburseHandler::new(channels.clone()))
        .register(NoticeHandler)
        .register(ExpiryHandler)
        .register(FreezeEndHandler)
        .register(DeliveryHandler::new(&engine))
        .register(applications::TimerHandler)
        .register(lendcore_engine::decisions::DecideHandler::new(
            engine.clone(),
        ))
        .register(lendcore_engine::links::ReminderHandler)
        .register(lendcore_engine::incidents::NoticeHandler)
        .register(lendcore_engine::incidents::OverHandler)
        .register(lendcore_engine::cases::DueHandler)
        .register(lendcore_engine::alerts::EvaluateHandler::new(
            engine.clone(),
        ))
        .register(CobHandler::new(
            StdDuration::from_secs(u64::try_from(config.jobs.lease_secs / 2).unwrap_or(1)),
            config.cob.batch,
        ));
        let stopped = stopped.clone();
        tokio::spawn(async move { runner.run(stopped, grace).await })
    });
    let sealer = tokio::spawn(seal_audit(store.clone(), stopped.clone()));
    let publisher = tokio::spawn(publish_outbox(engine.clone(), stopped.clone()));
    let pruner = tokio::spawn(prune_access(engine.clone(), stopped.clone()));
    let checker = tokio::spawn(check_the_book(engine.clone(), stopped.clone()));
    let alerting = tokio::spawn(schedule_alerts(engine.clone(), stopped.clone()));
    let scheduler = match (config.cob.enabled, config.cob_run_after()) {
        (true, Some(run_after)) => Some(tokio::spawn(schedule_close_of_business(
            store.clone(),
            clock.clone(),
            run_after,
            stopped.clone(),
        ))),
        _ => None,
    };

    tracing::info!(%address, "serving");
    let app = lendcore_server::router(engine, &config.http_limits());
    let mut on_stop = stopped.clone();
    let shutdown = async move {
        let _ = on_stop.wait_for(|s| *s).await;
    };
    let mut server = tokio::spawn(lendcore_server::serve(listener, app, shutdown));

    shutdown_signal().await;
    tracing::info!(
        grace_ms = grace.as_millis(),
        "shutting down: taking no new requests; finishing those in flight and the job batch in hand"
    );
    let _ = stop.send(true);
    // Requests in flight end by their own timeout, within the grace (the configuration sees to
    // it); past the grace, what is left of the server is stopped regardless.
    match tokio::time::timeout(grace, &mut server).await {
        Ok(served) => served??,
        Err(_) => {
            server.abort();
            let _ = server.await;
            tracing::warn!("shutting down: the server had not stopped within the grace");
        }
    }
    if let Some(runner) = runner {
        runner.await?;
    }
    if let Some(scheduler) = scheduler {
        scheduler.await?;
    }
    sealer.await?;
    publisher.await?;
    pruner.await?;
    checker.await?;
    alerting.await?;
    store.close().await;
    Ok(())
}

/// The engine with the vault from `security.pii_key`, if one is configured.
pub fn with_vault(engine: Engine, config: &Config) -> anyhow::Result<Engine> {
    match &config.security.pii_key {
        Some(key) => {
            let vault = lendcore_engine::vault::Vault::from_hex(key.expose_secret())
                .map_err(|e| anyhow::anyhow!("security.pii_key: {e}"))?;
            Ok(engine.with_vault(vault))
        }
        None => {
            tracing::warn!(
                "no security.pii_key is configured: borrowers and operators' second factors \
                 cannot be stored (503)"
            );
            Ok(engine)
        }
    }
}

/// Publishes the outbox into deliveries every second, until stopped.
async fn publish_outbox(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        if let Err(err) = notify::publish(&engine).await {
            metrics::counter!("lendcore_publish_failures_total").increment(1);
            tracing::error!(error = %err, "could not publish the outbox; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Webhooks, the mail server and the borrowers' language, from the configuration.
fn notifications(config: &Config) -> anyhow::Result<notify::Notifications> {
    let webhooks = config
        .webhooks
        .iter()
        .map(|w| WebhookEndpoint {
            id: w.id.clone(),
            url: w.url.clone(),
            secret: w.secret.expose_secret().as_bytes().to_vec(),
            topics: w.topics.clone(),
        })
        .collect::<Vec<_>>();
    let timeout =
        StdDuration::from_millis(config.notifications.webhook_timeout_ms.unwrap_or(10_000));
    let webhook_client = (!webhooks.is_empty())
        .then(|| WebhookClient::new(timeout))
        .transpose()
        .context("the webhook client")?;
    let mailer = match &config.smtp {
        Some(smtp) => Some(Arc::new(
            SmtpMailer::new(SmtpConfig {
                host: smtp.host.clone(),
                port: smtp.port,
                security: smtp.security,
                username: smtp.username.clone(),
                password: smtp.password.as_ref().map(|p| p.expose_secret().to_owned()),
                from: smtp.from.clone(),
                timeout: StdDuration::from_millis(smtp.timeout_ms),
            })
            .map_err(|e| anyhow::anyhow!("[smtp]: {e}"))?,
        ) as Arc<dyn Mailer>),
        None => None,
    };
    Ok(notify::Notifications {
        webhooks,
        webhook_client,
        mailer,
        language: config
            .notifications
            .language
            .unwrap_or(lendcore_domain::reasons::Language::ZhHans),
        link_base_url: config.notifications.link_base_url.clone(),
        operator_url: config.notifications.operator_url.clone(),
    })
}

/// Checks every half minute whether a business date's close is due and schedules it. Every
/// process may do this: the day's job has a fixed id, so it exists and runs once.
async fn schedule_close_of_business(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    run_after: chrono::NaiveTime,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        if let Err(err) = cob::schedule_due(store.as_ref(), clock.as_ref(), run_after).await {
            tracing::warn!(error = %err, "could not schedule close of business; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_secs(30)) => {}
            _ = stopped.changed() => {}
        }
    }
}

fn build_channels(config: &Config) -> anyhow::Result<Vec<Arc<dyn PaymentChannel>>> {
    if config.channels.is_empty() {
        tracing::warn!(
            "no payment channel is configured: confirmed drawdowns will go to manual review"
        );
    }
    config
        .channels
        .iter()
        .map(|c| {
            let channel = HttpChannel::new(HttpChannelConfig {
                id: c.id.clone(),
                base_url: c.base_url.clone(),
                api_key: c.api_key.expose_secret().to_owned(),
                timeout: StdDuration::from_millis(c.timeout_ms),
            })
            .with_context(|| format!("payment channel {}", c.id))?;
            Ok(Arc::new(channel) as Arc<dyn PaymentChannel>)
        })
        .collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
