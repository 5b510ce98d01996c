//! Product reads are cached by revision. Every read asks the database for the product's current
//! revision (one indexed lookup) and uses the cached copy only if it has that revision, so a
//! write is visible on the very next read, even one made by another process. Writes through
//! this process also drop their entry at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lendcore_domain::product::{Product, ProductCode};
use lendcore_store::UnitOfWork;

use crate::EngineError;

#[derive(Default)]
pub(crate) struct ProductCache {
    entries: Mutex<HashMap<ProductCode, Arc<Product>>>,
}

impl ProductCache {
    pub(crate) async fn get(
        &self,
        uow: &mut dyn UnitOfWork,
        code: &ProductCode,
    ) -> Result<Option<Arc<Product>>, EngineError> {
        let Some(revision) = uow.product_revision(code).await? else {
            self.invalidate(code);
            return Ok(None);
        };
        if let Some(hit) = self.lookup(code).filter(|p| p.revision == revision) {
            metrics::counter!("lendcore_cache_reads_total", "cache" => "product", "result" => "hit")
                .increment(1);
            return Ok(Some(hit));
        }
        metrics::counter!("lendcore_cache_reads_total", "cache" => "product", "result" => "miss")
            .increment(1);
        let Some(product) = uow.find_product(code).await? else {
            self.invalidate(code);
            return Ok(None);
        };
        let product = Arc::new(product);
        self.entries().insert(code.clone(), Arc::clone(&product));
        Ok(Some(product))
    }

    pub(crate) fn invalidate(&self, code: &ProductCode) {
        self.entries().remove(code);
    }

    fn lookup(&self, code: &ProductCode) -> Option<Arc<Product>> {
        self.entries().get(code).cloned()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<ProductCode, Arc<Product>>> {
        // A panic while holding the lock cannot leave the map half-written; keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
