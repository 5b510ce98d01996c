//! Where ids minted before they carried their borrower lead (issue #16): such an id (a bare
//! UUID) or an open quote's confirmation token names no borrower, so it is looked up here
//! before the borrower's unit of work begins. Ids minted since carry the borrower
//! (`lendcore_domain::ids::borrower_of`) and are never looked up.

use async_trait::async_trait;

use crate::StoreError;
use crate::unit_of_work::SqlUnitOfWork;

#[async_trait]
pub trait RouteRepository {
    /// The borrower `key` (an old line's or drawdown's id, or the hash of an old quote's
    /// confirmation token) belongs to, if it is one.
    async fn legacy_route(&mut self, key: &str) -> Result<Option<String>, StoreError>;
}

#[async_trait]
impl RouteRepository for SqlUnitOfWork {
    async fn legacy_route(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .fetch_optional::<(_,)>(
                self.sql("SELECT borrower_id FROM legacy_routes WHERE id = $1")
                    .bind(key),
            )
            .await?
            .map(|(borrower,)| borrower))
    }
}
