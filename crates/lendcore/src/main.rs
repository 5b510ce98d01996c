//! The lendcore binary.

mod access;
mod backup;
mod config;
mod decide;
mod demo;
mod import;
mod loadtest;
mod reference;
mod score;
mod serve;
mod simulate;
mod stress;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

/// What every `--db` means.
const DB_HELP: &str = "The database: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB \
    (default: database.url from the configuration, else sqlite://lendcore.sqlite3; \
    the demo's is sqlite://.lendcore/demo.sqlite3)";

/// What every `--bind` means.
const BIND_HELP: &str =
    "The address to listen on, e.g. 127.0.0.1:8080 (default: server.bind from the configuration)";

#[derive(Parser)]
#[command(
    name = "lendcore",
    version,
    about = "An online lending core in which no loan fails silently"
)]
struct Cli {
    /// TOML configuration file (default: ./lendcore.toml if it exists).
    #[arg(long, global = true, env = "LENDCORE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve the API and run the job runner.
    Serve {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        #[arg(long, help = BIND_HELP)]
        bind: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
    },
    /// Serve a local demo: SQLite file under --data-dir, two demo products, URLs printed.
    Demo {
        #[arg(long, help = BIND_HELP)]
        bind: Option<String>,
        /// Where the demo database lives.
        #[arg(long, default_value = ".lendcore")]
        data_dir: PathBuf,
    },
    /// Run the sandbox payment channel: the channel protocol with faults scripted per account
    /// (see docs/CHANNEL_PROTOCOL.md), for rehearsing failures.
    SandboxChannel {
        #[arg(long, default_value = "127.0.0.1:9090")]
        bind: String,
        /// Where to send signed payout callbacks.
        #[arg(long, requires = "callback_secret")]
        callback_url: Option<String>,
        /// The shared secret callbacks are signed with.
        #[arg(long, env = "LENDCORE_SANDBOX_CALLBACK_SECRET", hide_env_values = true)]
        callback_secret: Option<String>,
        /// How long the `timeout` fault hangs before answering, in seconds.
        #[arg(long, default_value_t = 30)]
        hang_secs: u64,
    },
    /// Close of business: accrue interest, charge penalties, update delinquency, queue
    /// reminders for every active loan, once per business date (safe to re-run or resume).
    Cob {
        #[command(subcommand)]
        action: CobAction,
    },
    /// The audit chain: verify it end to end, or export it with its head hash.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Alert rules: export them as a Prometheus rules file (see docs/OPERATIONS.md).
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Credit policies offline (docs/POLICY.md).
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Scorecards from history (docs/POLICY.md).
    Score {
        #[command(subcommand)]
        action: ScoreAction,
    },
    /// Credit decisions: replay a recorded one (see docs/POLICY.md).
    Decide {
        #[command(subcommand)]
        action: DecideAction,
    },
    /// Copy a SQLite database while it serves, through SQLite's online backup API: every
    /// committed unit of work whole, none half-written (PostgreSQL: see docs/OPERATIONS.md).
    Backup {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// Where to write the copy; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Put a backup in place of a SQLite database (stop lendcore first), then verify it.
    Restore {
        /// The backup to restore.
        #[arg(long)]
        from: PathBuf,
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// Replace the database if one exists.
        #[arg(long)]
        replace: bool,
    },
    /// Check a database is sound (after a restore, or any time, on either store): the audit
    /// chain, balanced journal entries, lines within their limits and explained by their loans
    /// and drawdowns, every drawdown in flight with its job, every decision record as its audit
    /// entry's digest says. Exit status 1 if not.
    Verify {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
    },
    /// Measure the service: synthetic load on a database of its own (see docs/PERFORMANCE.md).
    Loadtest {
        #[command(subcommand)]
        action: LoadtestAction,
    },
    /// Operators' accounts: add the first admin (and others) from the command line.
    Operators {
        #[command(subcommand)]
        action: OperatorsAction,
    },
    /// API keys for lenders' back-ends.
    ApiKeys {
        #[command(subcommand)]
        action: ApiKeysAction,
    },
    /// Print the effective configuration, secrets masked.
    Config {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        #[arg(long, help = BIND_HELP)]
        bind: Option<String>,
    },
}

#[derive(Subcommand)]
enum OperatorsAction {
    /// Create an operator; prints their first password and authenticator secret, once.
    Add {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        #[arg(long)]
        username: String,
        /// viewer, support, risk, ops or admin.
        #[arg(long, value_parser = parse_role)]
        role: lendcore_domain::access::Role,
    },
}

#[derive(Subcommand)]
enum ApiKeysAction {
    /// Create a key; prints it on stdout, once.
    Create {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// What uses the key, e.g. "loan-app backend".
        #[arg(long)]
        name: String,
        /// A scope, e.g. drawdowns:write; repeat for more.
        #[arg(long = "scope", required_unless_present = "all_scopes")]
        scopes: Vec<String>,
        /// Every scope there is (for a first admin tool; prefer naming them).
        #[arg(long, conflicts_with = "scopes")]
        all_scopes: bool,
    },
}

fn parse_role(raw: &str) -> Result<lendcore_domain::access::Role, String> {
    lendcore_domain::access::Role::parse(raw)
        .ok_or_else(|| "a role is viewer, support, risk, ops or admin".to_owned())
}

#[derive(Subcommand)]
enum CobAction {
    /// Run it for one business date.
    Run {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// The business date (YYYY-MM-DD); if omitted, the last one that has ended and is due
        /// under `cob.run_after` (usually yesterday, UTC).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check every record's hash and link; name the first broken one (exit status 1).
    Verify {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// A head printed earlier, SEQ:HASH: that record must still be there, unchanged,
        /// which catches a rewrite of the chain's tail.
        #[arg(long)]
        anchor: Option<lendcore_engine::audit::Anchor>,
    },
    /// Write the chain as JSON lines to FILE (verified as it is written) and print the head
    /// hash, to publish or timestamp elsewhere.
    Export {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AlertsAction {
    /// Write the enabled alert rules as Prometheus rules over the counters `/metrics` exports,
    /// for Prometheus and Alertmanager.
    Export {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// Where to write the rules file; standard output if omitted.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DecideAction {
    /// Evaluate a recorded decision again from its recorded features under the policy version
    /// it names; print both answers, or what differs (exit status 1).
    Replay {
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// BORROWER/DECISION: the borrower's id, a slash, the decision's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Turn a model from the GoRules editor (JDM) into decision tables of a policy at one
    /// stage, validated with the rest of the policy; refused with each node's name and why
    /// where it cannot be (docs/POLICY.md).
    Import {
        /// The JSON Decision Model.
        #[arg(long)]
        jdm: PathBuf,
        /// The decision the tables belong to: application, drawdown or line_review.
        #[arg(long)]
        stage: String,
        /// The policy document the tables go into (tables of the same stage and name replaced).
        #[arg(long)]
        into: PathBuf,
        /// PATH=FEATURE: an input field whose last segment names no lendcore feature.
        #[arg(long = "field")]
        fields: Vec<String>,
        /// Where to write the policy (standard output without it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Backtest a policy on a file of applications, beside another: outcomes, reasons,
    /// scores, bad rates by outcome and band, and who the two decide differently.
    Simulate {
        /// The policy document (JSON), as authored.
        #[arg(long)]
        policy: PathBuf,
        /// Past applications: a CSV whose columns are named as features (docs/POLICY.md).
        #[arg(long)]
        applications: PathBuf,
        /// A policy document to compare with, or `live`: the version in effect in the database.
        #[arg(long)]
        against: Option<String>,
        /// The database `--against live` reads.
        #[arg(long, help = DB_HELP)]
        db: Option<String>,
        /// The column holding how each application turned out, for bad rates.
        #[arg(long)]
        target: Option<String>,
        /// The target's bad value.
        #[arg(long, default_value = "bad")]
        bad: String,
        /// Where to write the applicants the two policies decide differently (CSV).
        #[arg(long)]
        diff: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ScoreAction {
    /// Fit a scorecard to a history: bins, weights of evidence, IV, a logistic regression and
    /// points; print how it ranks; write it as a credit policy's `scorecard` part.
    Train {
        /// The history: a CSV with a header row, one row per past applicant.
        #[arg(long)]
        csv: PathBuf,
        /// The column holding the outcome.
        #[arg(long)]
        target: String,
        /// The outcome's bad value (without it: 1, bad or true).
        #[arg(long)]
        bad: Option<String>,
        /// The share of rows held out to measure the card on (stratified).
        #[arg(long, default_value_t = 0.3)]
        test_share: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The card's name, kept in every decision record.
        #[arg(long, default_value = "trained")]
        id: String,
        /// Where to write the card; standard output if omitted.
        #[arg(long)]
        out: Option<PathBuf>,
        /// COLUMN=FEATURE: name a column as the lendcore feature it is (repeatable).
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Write an HTML report: the bins with their WoE, ROC and KS curves, the points.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Score every row of a CSV with a card: points, each characteristic's points, and the
    /// characteristics that cost the most, to check against another tool.
    Apply {
        /// The card, as `score train` wrote it (a policy's `scorecard` part).
        #[arg(long)]
        card: PathBuf,
        /// Rows to score: a CSV with a column per characteristic the card names.
        #[arg(long)]
        csv: PathBuf,
        /// Where to write the scored rows (CSV); standard output if omitted.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LoadtestAction {
    /// Seed active loans into an empty database and time close of business over them.
    Cob {
        /// An empty database to use (sqlite://PATH or postgres://…); a temporary SQLite file,
        /// removed afterwards, if omitted.
        #[arg(long)]
        db: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        loans: usize,
    },
    /// Confirm quoted drawdowns over HTTP from concurrent clients; report rate and latency.
    Drawdowns {
        /// An empty database to use (sqlite://PATH or postgres://…); a temporary SQLite file,
        /// removed afterwards, if omitted.
        #[arg(long)]
        db: Option<String>,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Clients each sending their next confirmation when the last is answered (closed
        /// loop).
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Instead of clients, start confirmations on a Poisson schedule at this many a second
        /// whatever the answers (open loop), each timed from when it was due.
        #[arg(long)]
        rate: Option<f64>,
        /// Put the default credit policy in effect: every confirmation is risk-checked.
        #[arg(long)]
        with_policy: bool,
        /// The full report: p50/p90/p99/max, errors by code, bytes written per confirmation,
        /// commits per second.
        #[arg(long)]
        report: bool,
        /// Seed this many active loans first and run close of business over them while the
        /// confirmations are measured; the latencies of those due while it ran are shown apart.
        #[arg(long)]
        during_cob: Option<usize>,
    },
    /// Stress a running lendcore over its API at an open-loop rate, as borrowers and the
    /// lender's back-end would; report latencies and errors by code (docs/PERFORMANCE.md).
    Run {
        /// apply, drawdown, repay or mixed.
        #[arg(value_enum)]
        scenario: stress::Scenario,
        /// The service, e.g. http://127.0.0.1:8080 (this machine only, unless --allow-remote).
        #[arg(long)]
        url: String,
        /// An API key with the scopes products:write, credit_lines:write, drawdowns:write,
        /// drawdowns:read and loans:write (the demo prints one with every scope).
        #[arg(long, env = "LENDCORE_LOADTEST_KEY")]
        key: String,
        /// Operations started a second, on average (Poisson arrivals).
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Seconds to offer load for.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Shares of payouts the sandbox channel fails: timeout=0.05,5xx=0.02,reject=0.01.
        #[arg(long, default_value = "")]
        faults: stress::Faults,
        /// Write the report as an HTML page too.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Stress a service that is not on this machine.
        #[arg(long)]
        allow_remote: bool,
        /// The sandbox SMS gateway's inbox, where `apply` reads sign-in codes, e.g.
        /// http://127.0.0.1:8082/v1/messages (the demo prints it).
        #[arg(long)]
        sms_inbox: Option<String>,
        /// The inbox's bearer token (the demo's is `demo`).
        #[arg(long)]
        sms_key: Option<String>,
        /// Send each applicant from its own address (X-Forwarded-For), for a service told to
        /// trust it (server.client_ip_header); else sign-ins are limited per machine.
        #[arg(long)]
        forwarded_for: bool,
        /// Seeds the schedule and the mix, so a run can be repeated.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { db, bind } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind })?;
            serve::init_logging(&config)?;
            serve::refuse_offline_migrations(&config).await?;
            serve::run(config, |_, _| async { Ok(()) }).await
        }
        Command::Migrate { db } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            serve::migrate(&config).await
        }
        Command::Demo { bind, data_dir } => demo::run(cli.config.as_deref(), bind, &data_dir).await,
        Command::SandboxChannel {
            bind,
            callback_url,
            callback_secret,
            hang_secs,
        } => sandbox_channel(bind, callback_url, callback_secret, hang_secs).await,
        Command::Cob {
            action: CobAction::Run { db, date },
        } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            serve::close_of_business(&config, date).await
        }
        Command::Audit { action } => {
            let (db, out, anchor) = match action {
                AuditAction::Verify { db, anchor } => (db, None, anchor),
                AuditAction::Export { db, out } => (db, Some(out), None),
            };
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            let intact = serve::audit(&config, out.as_deref(), anchor.as_ref()).await?;
            if !intact {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Alerts {
            action: AlertsAction::Export { db, out },
        } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            serve::export_alert_rules(&config, out.as_deref()).await
        }
        Command::Score {
            action:
                ScoreAction::Train {
                    csv,
                    target,
                    bad,
                    test_share,
                    seed,
                    id,
                    out,
                    features,
                    report,
                },
        } => score::train_card(score::TrainArgs {
            csv: &csv,
            target: &target,
            bad: bad.as_deref(),
            test_share,
            seed,
            id: &id,
            out: out.as_deref(),
            features: &features,
            report: report.as_deref(),
        }),
        Command::Policy {
            action:
                PolicyAction::Import {
                    jdm,
                    stage,
                    into,
                    fields,
                    out,
                },
        } => import::import(import::ImportArgs {
            jdm: &jdm,
            stage: &stage,
            into: &into,
            fields: &fields,
            out: out.as_deref(),
        }),
        Command::Policy {
            action:
                PolicyAction::Simulate {
                    policy,
                    applications,
                    against,
                    db,
                    target,
                    bad,
                    diff,
                },
        } => {
            anyhow::ensure!(
                db.is_none() || against.as_deref() == Some("live"),
                "--db is the database --against live reads: give --against live with it"
            );
            let config = match against.as_deref() {
                Some("live") => Some(Config::load(
                    cli.config.as_deref(),
                    Overrides { db, bind: None },
                )?),
                Some(_) | None => None,
            };
            let against = match (against.as_deref(), config.as_ref()) {
                (Some("live"), Some(config)) => Some(simulate::Against::Live(config)),
                (Some(file), _) => Some(simulate::Against::File(std::path::Path::new(file))),
                (None, _) => None,
            };
            simulate::simulate(simulate::SimulateArgs {
                policy: &policy,
                applications: &applications,
                against,
                target: target.as_deref(),
                bad: &bad,
                diff: diff.as_deref(),
            })
            .await
        }
        Command::Score {
            action: ScoreAction::Apply { card, csv, out },
        } => score::apply_card(&card, &csv, out.as_deref()),
        Command::Decide {
            action: DecideAction::Replay { db, id },
        } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            if !decide::replay(&config, &id).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Backup { db, out } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            backup::backup(&config, &out)
        }
        Command::Restore { from, db, replace } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            if !backup::restore(&config, &from, replace).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Verify { db } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            if !backup::verify(&config).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Loadtest {
            action:
                LoadtestAction::Run {
                    scenario,
                    url,
                    key,
                    rate,
                    duration,
                    faults,
                    html,
                    allow_remote,
                    sms_inbox,
                    sms_key,
                    forwarded_for,
                    seed,
                },
        } => {
            stress::run(stress::Options {
                url,
                key,
                scenario,
                rate,
                duration: std::time::Duration::from_secs(duration),
                faults,
                html,
                allow_remote,
                sms_inbox,
                sms_key,
                forwarded_for,
                seed,
            })
            .await
        }
        Command::Loadtest {
            action: LoadtestAction::Cob { db, loans },
        } => {
            let explicit = db.is_some();
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            loadtest::close_of_business(&config, explicit, loans).await
        }
        Command::Loadtest {
            action:
                LoadtestAction::Drawdowns {
                    db,
                    requests,
                    clients,
                    rate,
                    with_policy,
                    report,
                    during_cob,
                },
        } => {
            let explicit = db.is_some();
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            let load = loadtest::DrawdownLoad {
                requests,
                offered: match rate {
                    Some(rate) => loadtest::Offered::Open { rate },
                    None => loadtest::Offered::Closed { clients },
                },
                policy: with_policy,
                report,
                during_cob,
            };
            loadtest::drawdowns(&config, explicit, load).await
        }
        Command::Operators {
            action: OperatorsAction::Add { db, username, role },
        } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            access::add_operator(&config, &username, role).await
        }
        Command::ApiKeys {
            action:
                ApiKeysAction::Create {
                    db,
                    name,
                    scopes,
                    all_scopes,
                },
        } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            access::create_api_key(&config, &name, &scopes, all_scopes).await
        }
        Command::Config { db, bind } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind })?;
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
    }
}

async fn sandbox_channel(
    bind: String,
    callback_url: Option<String>,
    callback_secret: Option<String>,
    hang_secs: u64,
) -> anyhow::Result<()> {
    use lendcore_connectors::channel::sandbox::{Callback, Sandbox, SandboxConfig};
    let callback = match (callback_url, callback_secret) {
        (Some(url), Some(secret)) => Some(Callback {
            url,
            secret: secret.into_bytes(),
        }),
        _ => None,
    };
    let sandbox = Sandbox::new(SandboxConfig {
        hang: std::time::Duration::from_secs(hang_secs),
        callback,
    });
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!(
        "sandbox channel on http://{}/v1/payouts",
        listener.local_addr()?
    );
    println!("accounts: acct-1 pays; acct-1~MODE misbehaves (see docs/CHANNEL_PROTOCOL.md)");
    axum_serve(listener, sandbox.router()).await
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) -> anyhow::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
