//! Use cases. Each is one function that loads what it needs, lets the pure domain decide, writes
//! every consequence (state, jobs, outbox, idempotency record) in one unit of work and commits.
//! Also here: the durable job runner and the ports for the clock and, later, channels and
//! notifiers.

pub mod access;
pub mod acting;
pub mod alerts;
pub mod applications;
pub mod audit;
pub mod borrowers;
pub mod callbacks;
pub mod cases;
pub mod clock;
pub mod cob;
pub mod credit_lines;
pub mod decisions;
pub mod drawdowns;
mod error;
pub mod idempotency;
pub mod incidents;
pub mod integrity;
pub mod jobs;
pub mod links;
pub mod loans;
pub mod maintenance;
pub mod notify;
pub mod operations;
pub mod products;
pub mod quotes;
pub mod status;
pub mod timeline;
pub mod vault;

use std::sync::Arc;

use lendcore_connectors::channel::PaymentChannel;
use lendcore_connectors::sms::SmsGateway;
use lendcore_domain::apr::{self, AprCap};
use lendcore_store::Store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::EngineError;
pub use idempotency::{IdempotencyKey, IdempotentRequest, Outcome};

/// What every use case runs against: the store, the clock, the lending policy and the read
/// caches.
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Legal APR caps that products and quotes are checked against.
    pub apr_caps: Vec<AprCap>,
    /// Payment channels, first choice first.
    pub channels: Vec<Arc<dyn PaymentChannel>>,
    /// Secrets channels sign their callbacks with, by channel id.
    pub callback_secrets: std::collections::HashMap<String, Vec<u8>>,
    /// How long a drawdown quote waits for the borrower's confirmation.
    pub confirmation_window: chrono::Duration,
    /// How long before a maintenance window borrowers with work in flight are told.
    pub maintenance_notice: chrono::Duration,
    /// How soon support owes a support case an answer.
    pub case_response: chrono::Duration,
    /// Seals personal data at rest; without it borrowers cannot be stored.
    pub vault: Option<Arc<vault::Vault>>,
    /// Loans close of business closes per unit of work: fewer holds SQLite's writer, which
    /// requests wait for, for less time; more is faster, up to a point (docs/PERFORMANCE.md).
    pub cob_batch: u32,
    /// Sends one-time sign-in codes; without it borrowers cannot sign in.
    pub sms: Option<Arc<dyn SmsGateway>>,
    /// Checks identities by bank card or face; without it only the SMS code method is offered.
    pub identity: Option<Arc<dyn lendcore_connectors::identity::IdentityProvider>>,
    /// Where outbox events are delivered: webhooks, email, and the language borrowers read.
    pub notifications: Arc<notify::Notifications>,
    /// The credit bureau decisions ask; without it, a policy that reads bureau features
    /// decides as its `bureau_unavailable` says.
    pub bureau: Option<Arc<dyn lendcore_connectors::bureau::CreditBureau>>,
    products: products::ProductCache,
    policies: decisions::PolicyCache,
    api_key_cache: access::ApiKeyCache,
    /// One backtest at a time: each takes a core for up to seconds, and the cores serve live
    /// decisions too.
    backtests: tokio::sync::Semaphore,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            apr_caps: apr::default_caps(),
            channels: Vec::new(),
            callback_secrets: std::collections::HashMap::new(),
            confirmation_window: chrono::Duration::minutes(15),
            maintenance_notice: chrono::Duration::hours(24),
            case_response: chrono::Duration::hours(4),
            cob_batch: 200,
            vault: None,
            sms: None,
            identity: None,
            notifications: Arc::default(),
            bureau: None,
            products: products::ProductCache::default(),
            policies: decisions::PolicyCache::default(),
            api_key_cache: access::ApiKeyCache::default(),
            backtests: tokio::sync::Semaphore::new(1),
        }
    }

    pub fn with_apr_caps(mut self, caps: Vec<AprCap>) -> Self {
        self.apr_caps = caps;
        self
    }

    pub fn with_channels(mut self, channels: Vec<Arc<dyn PaymentChannel>>) -> Self {
        self.channels = channels;
        self
    }

    pub fn with_vault(mut self, vault: vault::Vault) -> Self {
        self.vault = Some(Arc::new(vault));
        self
    }

    pub fn with_notifications(mut self, notifications: notify::Notifications) -> Self {
        self.notifications = Arc::new(notifications);
        self
    }

    pub fn with_identity(
        mut self,
        provider: Arc<dyn lendcore_connectors::identity::IdentityProvider>,
    ) -> Self {
        self.identity = Some(provider);
        self
    }

    pub fn with_bureau(
        mut self,
        bureau: Arc<dyn lendcore_connectors::bureau::CreditBureau>,
    ) -> Self {
        self.bureau = Some(bureau);
        self
    }

    pub fn with_sms(mut self, sms: Arc<dyn SmsGateway>) -> Self {
        self.sms = Some(sms);
        self
    }

    /// The vault, or `system.not_configured` when no key was given: personal data and second
    /// factors are sealed with it.
    pub fn vault(&self) -> Result<&Arc<vault::Vault>, EngineError> {
        self.vault.as_ref().ok_or_else(|| {
            EngineError::NotConfigured(
                "no personal data key is configured (security.pii_key): personal data and \
                 second factors cannot be stored"
                    .to_owned(),
            )
        })
    }

    pub fn with_callback_secret(mut self, channel_id: &str, secret: Vec<u8>) -> Self {
        self.callback_secrets.insert(channel_id.to_owned(), secret);
        self
    }
}

/// Identifiers are UUIDv7: unique without coordination, and sorted by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The id of a new resource of `borrower_id` (a credit line, a drawdown): it carries the
/// borrower, so whoever hands it back is routed to the borrower's rows at once (issue #16).
pub(crate) fn new_id_for(borrower_id: &str) -> String {
    lendcore_domain::ids::for_borrower(borrower_id, &new_id())
}

/// The borrower whose line or drawdown `id` is: read from the id, or, for one minted before
/// ids carried their borrower (a bare UUID), looked up. `None` when no such resource can
/// exist.
pub(crate) async fn route(
    store: &dyn lendcore_store::Store,
    id: &str,
) -> Result<Option<String>, lendcore_store::StoreError> {
    if let Some(borrower) = lendcore_domain::ids::borrower_of(id) {
        return Ok(Some(borrower.to_owned()));
    }
    if !lendcore_domain::ids::is_uuid(id) {
        return Ok(None);
    }
    let mut read = store.begin_read().await?;
    read.legacy_route(id).await
}

/// A unit of work on the borrower whose line or drawdown `id` is ([`route`]); `None` when
/// there is no such borrower, so no such line or drawdown.
pub(crate) async fn begin_for_id(
    store: &dyn lendcore_store::Store,
    id: &str,
) -> Result<Option<Box<dyn lendcore_store::BorrowerUnit>>, lendcore_store::StoreError> {
    match route(store, id).await? {
        Some(borrower) => Ok(Some(store.begin_for(&borrower).await?)),
        None => Ok(None),
    }
}

/// [`begin_for_id`], reading one snapshot.
pub(crate) async fn read_for_id(
    store: &dyn lendcore_store::Store,
    id: &str,
) -> Result<Option<Box<dyn lendcore_store::BorrowerUnit>>, lendcore_store::StoreError> {
    match route(store, id).await? {
        Some(borrower) => Ok(Some(store.begin_read_for(&borrower).await?)),
        None => Ok(None),
    }
}
