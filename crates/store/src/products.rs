//! Loan products and their versions.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::money::Currency;
use lendcore_domain::product::{Product, ProductCode, ProductKind, ProductVersion};

use crate::StoreError;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

#[async_trait]
pub trait ProductRepository {
    /// Inserts a new product with all its versions. A taken code is [`StoreError::Duplicate`].
    async fn insert_product(&mut self, product: &Product) -> Result<(), StoreError>;

    /// Writes a changed product whose `revision` was `read_revision` when it was loaded.
    /// [`StoreError::Stale`] when someone else wrote it in between; [`StoreError::Immutable`]
    /// when the caller changed a version that had taken effect by `now`.
    async fn update_product(
        &mut self,
        product: &Product,
        read_revision: i64,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    async fn find_product(&mut self, code: &ProductCode) -> Result<Option<Product>, StoreError>;

    /// Only the revision: the cheap question a cache asks before trusting its copy.
    async fn product_revision(&mut self, code: &ProductCode) -> Result<Option<i64>, StoreError>;

    /// Products ordered by code, starting after `after`.
    async fn list_products(
        &mut self,
        after: Option<&ProductCode>,
        limit: u32,
    ) -> Result<Vec<Product>, StoreError>;
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: String,
    code: String,
    name: String,
    kind: String,
    currency: String,
    ends_at_ms: Option<i64>,
    revision: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    product_id: String,
    version: i64,
    effective_from_ms: i64,
    terms: String,
    created_at_ms: i64,
}

const SELECT_PRODUCT: &str = "SELECT id, code, name, kind, currency, ends_at_ms, revision, \
     created_at_ms, updated_at_ms FROM products";
const SELECT_VERSIONS: &str = "SELECT product_id, version, effective_from_ms, terms, created_at_ms \
     FROM product_versions";
/// Inserts a version, or replaces one that has not taken effect by `$6`.
const UPSERT_VERSION: &str = "INSERT INTO product_versions \
     (product_id, version, effective_from_ms, terms, created_at_ms) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (product_id, version) DO UPDATE SET \
     effective_from_ms = excluded.effective_from_ms, terms = excluded.terms, \
     created_at_ms = excluded.created_at_ms \
     WHERE product_versions.effective_from_ms > $6";

#[async_trait]
impl ProductRepository for SqlUnitOfWork {
    async fn insert_product(&mut self, product: &Product) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO products (id, code, name, kind, currency, ends_at_ms, revision, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&product.id)
        .bind(product.code.as_str())
        .bind(&product.name)
        .bind(product.kind.as_str())
        .bind(product.currency.code())
        .bind(product.ends_at.map(to_ms))
        .bind(product.revision)
        .bind(to_ms(product.created_at))
        .bind(to_ms(product.updated_at))
        .execute(c)
        .await
        .map(drop))?;
        for version in &product.versions {
            self.upsert_version(product, version, product.created_at)
                .await?;
        }
        Ok(())
    }

    async fn update_product(
        &mut self,
        product: &Product,
        read_revision: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let updated = on_tx!(self, c => sqlx::query(
            "UPDATE products SET name = $1, ends_at_ms = $2, revision = $3, updated_at_ms = $4 \
             WHERE id = $5 AND revision = $6",
        )
        .bind(&product.name)
        .bind(product.ends_at.map(to_ms))
        .bind(product.revision)
        .bind(to_ms(product.updated_at))
        .bind(&product.id)
        .bind(read_revision)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        if updated != 1 {
            return Err(StoreError::Stale("product"));
        }
        let sql = format!("{SELECT_VERSIONS} WHERE product_id = $1 ORDER BY version");
        let stored: Vec<VersionRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(&product.id)
            .fetch_all(c)
            .await)?;
        let now_ms = to_ms(now);
        for version in &product.versions {
            let number = i64::from(version.version);
            match stored.iter().find(|s| s.version == number) {
                Some(s) if s.effective_from_ms <= now_ms => {
                    if s.effective_from_ms != to_ms(version.effective_from)
                        || s.terms != terms_json(version)?
                    {
                        return Err(immutable(product, version));
                    }
                }
                Some(_) | None => self.upsert_version(product, version, now).await?,
            }
        }
        Ok(())
    }

    async fn find_product(&mut self, code: &ProductCode) -> Result<Option<Product>, StoreError> {
        let sql = format!("{SELECT_PRODUCT} WHERE code = $1");
        let row: Option<ProductRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(code.as_str())
            .fetch_optional(c)
            .await)?;
        let Some(row) = row else { return Ok(None) };
        let sql = format!("{SELECT_VERSIONS} WHERE product_id = $1 ORDER BY version");
        let versions: Vec<VersionRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(&row.id)
            .fetch_all(c)
            .await)?;
        Ok(Some(assemble(row, versions)?))
    }

    async fn product_revision(&mut self, code: &ProductCode) -> Result<Option<i64>, StoreError> {
        Ok(
            on_tx!(self, c => sqlx::query_scalar("SELECT revision FROM products WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(c)
            .await)?,
        )
    }

    async fn list_products(
        &mut self,
        after: Option<&ProductCode>,
        limit: u32,
    ) -> Result<Vec<Product>, StoreError> {
        let sql = format!("{SELECT_PRODUCT} WHERE code > $1 ORDER BY code LIMIT $2");
        let rows: Vec<ProductRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(after.map_or("", ProductCode::as_str))
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?;
        let Some(last) = rows.last() else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "{SELECT_VERSIONS} WHERE product_id IN (SELECT id FROM products WHERE code > $1 AND code <= $2) \
             ORDER BY product_id, version"
        );
        let mut versions: Vec<VersionRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(after.map_or("", ProductCode::as_str))
            .bind(&last.code)
            .fetch_all(c)
            .await)?;
        rows.into_iter()
            .map(|row| {
                let mine: Vec<VersionRow> = versions
                    .extract_if(.., |v| v.product_id == row.id)
                    .collect();
                assemble(row, mine)
            })
            .collect()
    }
}

impl SqlUnitOfWork {
    async fn upsert_version(
        &mut self,
        product: &Product,
        version: &ProductVersion,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let written = on_tx!(self, c => sqlx::query(UPSERT_VERSION)
            .bind(&product.id)
            .bind(i64::from(version.version))
            .bind(to_ms(version.effective_from))
            .bind(terms_json(version)?)
            .bind(to_ms(version.created_at))
            .bind(to_ms(now))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        if written != 1 {
            return Err(immutable(product, version));
        }
        Ok(())
    }
}

fn immutable(product: &Product, version: &ProductVersion) -> StoreError {
    StoreError::Immutable(format!(
        "version {} of product {} took effect and cannot change",
        version.version, product.code
    ))
}

fn terms_json(version: &ProductVersion) -> Result<String, StoreError> {
    serde_json::to_string(&version.terms).map_err(|e| StoreError::corrupt("product_versions", e))
}

fn assemble(row: ProductRow, versions: Vec<VersionRow>) -> Result<Product, StoreError> {
    const T: &str = "products";
    let code = ProductCode::parse(&row.code).map_err(|e| StoreError::corrupt(T, e))?;
    let kind = ProductKind::parse(&row.kind)
        .ok_or_else(|| StoreError::corrupt(T, format!("unknown kind {}", row.kind)))?;
    let currency = Currency::parse(&row.currency)
        .ok_or_else(|| StoreError::corrupt(T, format!("unknown currency {}", row.currency)))?;
    let versions = versions
        .into_iter()
        .map(|v| {
            const V: &str = "product_versions";
            Ok(ProductVersion {
                version: u32::try_from(v.version).map_err(|e| StoreError::corrupt(V, e))?,
                effective_from: from_ms(V, v.effective_from_ms)?,
                terms: serde_json::from_str(&v.terms).map_err(|e| StoreError::corrupt(V, e))?,
                created_at: from_ms(V, v.created_at_ms)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Product {
        id: row.id,
        code,
        name: row.name,
        kind,
        currency,
        ends_at: from_opt_ms(T, row.ends_at_ms)?,
        revision: row.revision,
        created_at: from_ms(T, row.created_at_ms)?,
        updated_at: from_ms(T, row.updated_at_ms)?,
        versions,
    })
}
