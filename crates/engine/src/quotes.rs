//! Quotes: the price of a drawdown under a product version, read-only and never stored.

use lendcore_domain::calendar::Date;
use lendcore_domain::product::{ProductCode, ProductStatus, RepaymentMethod};
use lendcore_domain::quote::{self, Quote, QuoteInput};

use crate::products::product_not_found;
use crate::{Engine, EngineError};

#[derive(Debug, Clone)]
pub struct QuoteRequest {
    pub product: ProductCode,
    /// A specific version (for a scheduled one, say); the version in effect if absent.
    pub version: Option<u32>,
    pub amount_minor: i64,
    pub term: u32,
    /// The drawdown date; today (UTC) if absent.
    pub start: Option<Date>,
    pub split: Option<RepaymentMethod>,
    /// The price tier to quote (a credit line's); the standard rate if absent.
    pub rate_tier: Option<String>,
}

pub async fn quote(engine: &Engine, request: QuoteRequest) -> Result<Quote, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let product = engine
        .products
        .get(uow.as_mut(), &request.product)
        .await?
        .ok_or_else(|| product_not_found(&request.product))?;
    match product.status(now) {
        ProductStatus::Retired => {
            return Err(EngineError::conflict(
                "conflict.product_retired",
                format!(
                    "product {} is retired and takes no new business",
                    product.code
                ),
            ));
        }
        ProductStatus::Scheduled | ProductStatus::Active | ProductStatus::Retiring => {}
    }
    let version = match request.version {
        Some(number) => product
            .versions
            .iter()
            .find(|v| v.version == number)
            .ok_or_else(|| {
                EngineError::not_found(
                    "not_found.product_version",
                    format!("product {} has no version {number}", product.code),
                )
            })?,
        None => product.version_at(now).ok_or_else(|| {
            EngineError::conflict(
                "conflict.product_not_yet_effective",
                format!("no version of product {} is in effect yet", product.code),
            )
        })?,
    };
    if let Some(tier) = &request.rate_tier {
        lendcore_domain::product::check_rate_tier("rate_tier", tier)?;
    }
    let input = QuoteInput {
        amount_minor: request.amount_minor,
        term: request.term,
        start: request.start.unwrap_or_else(|| now.date_naive()),
        split: request.split,
        rate_tier: request.rate_tier,
    };
    Ok(quote::quote(
        &product.code,
        version.version,
        product.kind,
        product.currency,
        &version.terms,
        &input,
        &engine.apr_caps,
    )?)
}
