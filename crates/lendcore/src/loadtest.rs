//! `lendcore loadtest`: measures the whole service on a database of its own. `cob` fills an
//! empty database with synthetic active loans, then times close of business over them.

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

/// Seeds `loans` active 12-month loans into an empty database (a fresh temporary SQLite file
/// when the configuration names none), runs close of business for the day after they were
/// drawn, and prints the rate.
pub async fn close_of_business(
    config: &Config,
    explicit_db: bool,
    loans: usize,
) -> anyhow::Result<()> {
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
    {
        let mut uow = store.begin_read().await?;
        let existing = uow.list_products(None, 1).await?;
        anyhow::ensure!(
            existing.is_empty(),
            "loadtest writes synthetic loans: give it an empty database (or no --db for a temporary one)"
        );
    }
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
        &engine,
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
        },
    )
    .await?;

    let bar = progress(loans, "seeding");
    let started = Instant::now();
    let mut seeded = 0;
    while seeded < loans {
        let batch = LOANS_PER_LINE.min(loans - seeded);
        let mut uow = store.begin().await?;
        let (mut line, granted) = CreditLine::grant(
            new_id(),
            GrantInput {
                borrower_id: format!("loadtest-{seeded}"),
                currency: "CNY".into(),
                limit_minor: AMOUNT_MINOR * LOANS_PER_LINE as i64,
                valid_from: None,
                valid_until: now + chrono::Duration::days(3650),
                actor: "system:loadtest".into(),
                note: None,
            },
            now,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        line.drawn_minor = AMOUNT_MINOR * batch as i64;
        uow.insert_credit_line(&line, &granted).await?;
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
                revision: 1,
                created_at: now,
                updated_at: now,
            };
            let step = Transition {
                from: "disbursing".into(),
                to: "active".into(),
                reason: None,
                at: now,
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
