//! The lendcore binary.

mod config;
mod demo;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

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
        /// sqlite://path or postgres://user:password@host/db
        #[arg(long)]
        db: Option<String>,
        /// Address to listen on, e.g. 127.0.0.1:8080
        #[arg(long)]
        bind: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long)]
        db: Option<String>,
    },
    /// Serve a local demo: SQLite file under --data-dir, two demo products, URLs printed.
    Demo {
        #[arg(long)]
        bind: Option<String>,
        /// Where the demo database lives.
        #[arg(long, default_value = ".lendcore")]
        data_dir: PathBuf,
    },
    /// Print the effective configuration, secrets masked.
    Config {
        #[arg(long)]
        db: Option<String>,
        #[arg(long)]
        bind: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { db, bind } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind })?;
            serve::init_logging(&config)?;
            serve::run(config, |_, _| async { Ok(()) }).await
        }
        Command::Migrate { db } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind: None })?;
            serve::init_logging(&config)?;
            serve::migrate(&config).await
        }
        Command::Demo { bind, data_dir } => demo::run(cli.config.as_deref(), bind, &data_dir).await,
        Command::Config { db, bind } => {
            let config = Config::load(cli.config.as_deref(), Overrides { db, bind })?;
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
    }
}
