//! `lendcore demo`: a local SQLite database with two demo products, served with the URLs to open.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use lendcore_domain::product::{NewProductInput, ProductCode, ProductKind, ProductTermsInput};
use lendcore_engine::products;
use lendcore_engine::{Engine, EngineError};

use crate::config::{Config, Overrides};
use crate::serve;

pub async fn run(
    config_file: Option<&Path>,
    bind: Option<String>,
    data_dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let db_path = data_dir.join("demo.sqlite3");
    let db_url = format!("sqlite://{}", db_path.display());
    let config = Config::load(
        config_file,
        Overrides {
            db: Some(db_url),
            bind,
        },
    )?;
    serve::init_logging(&config)?;
    let db_shown = std::path::absolute(&db_path).unwrap_or(db_path);
    serve::run(config, move |engine, address| async move {
        seed(&engine).await?;
        let base = format!("http://{address}");
        println!();
        println!("lendcore demo is running. Database: {}", db_shown.display());
        println!();
        println!("  Home            {base}/");
        println!("  API reference   {base}/docs/api");
        println!("  Products        {base}/v1/products");
        println!("  OpenAPI         {base}/openapi.json");
        println!("  Health          {base}/healthz   {base}/readyz");
        println!("  Metrics         {base}/metrics");
        println!();
        println!("Try:  curl -s {base}/v1/products/cash-12m");
        println!("Stop with Ctrl-C.");
        println!();
        Ok(())
    })
    .await
}

/// Creates the demo products unless they exist already (the demo database survives restarts).
async fn seed(engine: &Arc<Engine>) -> anyhow::Result<()> {
    for product in demo_products()? {
        let code = ProductCode::parse(&product.code).map_err(|e| anyhow::anyhow!("{e}"))?;
        match products::get_product(engine, &code).await {
            Ok(_) => continue,
            Err(EngineError::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        products::create_product(engine, product, None)
            .await
            .with_context(|| format!("seeding demo product {code}"))?;
    }
    Ok(())
}

fn demo_products() -> anyhow::Result<Vec<NewProductInput>> {
    let cash: ProductTermsInput = serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 100_000, "max_minor": 5_000_000},
        "terms": {"unit": "month", "options": [3, 6, 12]},
        "rate": {"basis": "annual", "value": "0.18"},
        "repayment_method": "equal_installment",
        "fees": [{"code": "service", "timing": "upfront", "rate": "0.01"}],
        "penalty_daily_rate": "0.0005",
        "grace_days": 3
    }))?;
    let revolving: ProductTermsInput = serde_json::from_value(serde_json::json!({
        "amount": {"min_minor": 10_000, "max_minor": 20_000_000},
        "terms": {"unit": "month", "options": [1, 3, 6, 12]},
        "rate": {"basis": "daily", "value": "0.0004"},
        "repayment_method": "revolving_daily",
        "penalty_daily_rate": "0.0006",
        "grace_days": 3
    }))?;
    Ok(vec![
        NewProductInput {
            code: "cash-12m".into(),
            name: "Cash loan, up to 12 months (等额本息)".into(),
            kind: ProductKind::Installment,
            currency: "CNY".into(),
            terms: cash,
            effective_from: None,
        },
        NewProductInput {
            code: "daily-credit".into(),
            name: "Revolving credit line with daily interest (借呗-style)".into(),
            kind: ProductKind::Revolving,
            currency: "CNY".into(),
            terms: revolving,
            effective_from: None,
        },
    ])
}
