//! Product use cases: create, add a version, replace a scheduled version, retire, read.

mod cache;
mod effective;

use lendcore_domain::Timestamp;
use lendcore_domain::jobs::DEFAULT_MAX_ATTEMPTS;
use lendcore_domain::product::{
    NewProductInput, Product, ProductCode, ProductError, ProductTermsInput, ProductView,
};
use lendcore_domain::quote;
use lendcore_domain::topic::Topic;
use lendcore_store::{NewJob, OutboxEvent, StoreError, UnitOfWork};

pub(crate) use cache::ProductCache;
pub use effective::VersionEffectiveHandler;

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Engine, EngineError, new_id};

/// How often a write that lost an optimistic race re-reads and decides again before giving up.
const STALE_RETRIES: usize = 3;
const MAX_PAGE: u32 = 200;

pub async fn create_product(
    engine: &Engine,
    input: NewProductInput,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<ProductView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let product = Product::create(new_id(), input, now)?;
    within_caps(engine, &product, 1, now)?;
    match uow.insert_product(&product).await {
        Err(StoreError::Duplicate(_)) => {
            return Err(EngineError::conflict(
                "conflict.product_code_taken",
                format!("a product with code {} already exists", product.code),
            ));
        }
        other => other?,
    }
    announce(uow.as_mut(), &product, Topic::ProductCreated, 1, now).await?;
    let view = product.view(now);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    engine.products.invalidate(&view.product.code);
    Ok(Outcome::Fresh(view))
}

pub async fn add_product_version(
    engine: &Engine,
    code: &ProductCode,
    terms: ProductTermsInput,
    effective_from: Option<Timestamp>,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<ProductView>, EngineError> {
    change_product(
        engine,
        code,
        request,
        Topic::ProductVersionAdded,
        |product, now| product.add_version(terms.clone(), effective_from, now),
    )
    .await
}

pub async fn replace_scheduled_version(
    engine: &Engine,
    code: &ProductCode,
    version: u32,
    terms: ProductTermsInput,
    effective_from: Option<Timestamp>,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<ProductView>, EngineError> {
    change_product(
        engine,
        code,
        request,
        Topic::ProductVersionReplaced,
        |product, now| {
            product
                .replace_scheduled_version(version, terms.clone(), effective_from, now)
                .map(|()| version)
        },
    )
    .await
}

pub async fn retire_product(
    engine: &Engine,
    code: &ProductCode,
    ends_at: Timestamp,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<ProductView>, EngineError> {
    change_product(
        engine,
        code,
        request,
        Topic::ProductRetirementScheduled,
        |product, now| product.retire(ends_at, now).map(|()| 0),
    )
    .await
}

/// Reads a product through the cache; a write anywhere is visible on the very next read.
pub async fn get_product(engine: &Engine, code: &ProductCode) -> Result<ProductView, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let product = engine
        .products
        .get(uow.as_mut(), code)
        .await?
        .ok_or_else(|| product_not_found(code))?;
    Ok(product.as_ref().clone().view(now))
}

/// Products by code, `limit` (at most 200) at a time, starting after `after`.
pub async fn list_products(
    engine: &Engine,
    after: Option<&ProductCode>,
    limit: u32,
) -> Result<Vec<ProductView>, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let products = uow.list_products(after, limit.clamp(1, MAX_PAGE)).await?;
    Ok(products.into_iter().map(|p| p.view(now)).collect())
}

/// Load, decide, write, commit; again from the start if another writer got there first.
/// `decide` returns the version number the change concerns (0 for the product as a whole).
async fn change_product(
    engine: &Engine,
    code: &ProductCode,
    request: Option<&IdempotentRequest>,
    topic: Topic,
    decide: impl Fn(&mut Product, Timestamp) -> Result<u32, ProductError>,
) -> Result<Outcome<ProductView>, EngineError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = engine.clock.now();
        let mut uow = engine.store.begin().await?;
        if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
            return idempotency::replayed(uow, done).await;
        }
        let mut product = uow
            .find_product(code)
            .await?
            .ok_or_else(|| product_not_found(code))?;
        let read_revision = product.revision;
        let version = decide(&mut product, now)?;
        within_caps(engine, &product, version, now)?;
        match uow.update_product(&product, read_revision, now).await {
            Err(StoreError::Stale(_)) if attempt < STALE_RETRIES => continue,
            other => other?,
        }
        announce(uow.as_mut(), &product, topic, version, now).await?;
        let view = product.view(now);
        idempotency::record(uow.as_mut(), request, &view, now).await?;
        uow.commit().await?;
        engine.products.invalidate(code);
        return Ok(Outcome::Fresh(view));
    }
}

/// Writes the outbox event for a change and, when the change schedules a version for later, the
/// job that announces it once it takes effect.
async fn announce(
    uow: &mut dyn UnitOfWork,
    product: &Product,
    topic: Topic,
    version: u32,
    now: Timestamp,
) -> Result<(), EngineError> {
    let scheduled = product
        .versions
        .iter()
        .find(|v| v.version == version && v.effective_from > now);
    let payload = serde_json::json!({
        "code": product.code,
        "revision": product.revision,
        "version": (version > 0).then_some(version),
        "effective_from": scheduled.map(|v| v.effective_from),
        "ends_at": product.ends_at,
    });
    crate::audit::announce(
        uow,
        OutboxEvent {
            id: new_id(),
            topic: topic.as_str().to_owned(),
            aggregate_type: "product".to_owned(),
            aggregate_id: product.id.clone(),
            payload,
            created_at: now,
            published_at: None,
        },
        &crate::acting::current(),
    )
    .await?;
    if let Some(v) = scheduled {
        uow.enqueue_job(&effective::job(product, v), now).await?;
    }
    Ok(())
}

/// New or changed terms must not let any quote exceed a binding APR cap.
fn within_caps(
    engine: &Engine,
    product: &Product,
    version: u32,
    now: Timestamp,
) -> Result<(), EngineError> {
    let Some(changed) = product.versions.iter().find(|v| v.version == version) else {
        return Ok(());
    };
    quote::check_within_caps(
        product.kind,
        &changed.terms,
        &engine.apr_caps,
        now.date_naive(),
    )?;
    Ok(())
}

pub(crate) fn product_not_found(code: &ProductCode) -> EngineError {
    EngineError::not_found("not_found.product", format!("no product with code {code}"))
}

pub(crate) fn new_job(kind: &str, payload: serde_json::Value, run_at: Timestamp) -> NewJob {
    NewJob {
        id: new_id(),
        kind: kind.to_owned(),
        payload,
        run_at,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
    }
}
