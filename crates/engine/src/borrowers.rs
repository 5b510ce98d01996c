//! Borrowers: register an individual or an enterprise, read one (masked), change its contact
//! and payment details with a history. Personal data is sealed by the
//! [`Vault`](crate::vault::Vault) before it reaches the store and opened only to mask it or
//! change it.

use lendcore_domain::Timestamp;
use lendcore_domain::borrower::{
    BorrowerChange, BorrowerInput, BorrowerKind, ContactChange, MaskedPersonalData, PersonalData,
};
use lendcore_domain::reasons::Language;
use lendcore_domain::topic::Topic;
use lendcore_domain::validation::Violations;
use lendcore_store::{BorrowerIndex, OutboxEvent, StoreError, StoredBorrower, UnitOfWork};
use serde::{Deserialize, Serialize};

use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Engine, EngineError, new_id};

const STALE_RETRIES: usize = 3;

/// A borrower as callers see it: personal data masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BorrowerView {
    pub id: String,
    pub kind: BorrowerKind,
    pub personal: MaskedPersonalData,
    /// The language they are written to; absent: the lender's default.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub language: Option<Language>,
    pub revision: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

fn view(stored: &StoredBorrower, data: &PersonalData) -> BorrowerView {
    BorrowerView {
        id: stored.id.clone(),
        kind: stored.kind,
        personal: data.masked(),
        language: stored.language,
        revision: stored.revision,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

pub async fn register(
    engine: &Engine,
    input: BorrowerInput,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<BorrowerView>, EngineError> {
    let vault = engine.vault()?;
    let now = lendcore_domain::to_millis(engine.clock.now());
    // Identity numbers carry birth dates on China Standard Time (UTC+8).
    let today_in_china = (now + chrono::Duration::hours(8)).date_naive();
    let language = input.language;
    let (kind, data) = input.parse(today_in_china)?;
    let resident_index = data
        .resident_id
        .as_ref()
        .map(|v| vault.index("resident_id", v.expose()));
    let credit_code_index = data
        .credit_code
        .as_ref()
        .map(|v| vault.index("credit_code", v.expose()));
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    for (index, value) in [
        (BorrowerIndex::ResidentId, &resident_index),
        (BorrowerIndex::CreditCode, &credit_code_index),
    ] {
        if let Some(value) = value
            && !uow.find_borrowers_by(index, value).await?.is_empty()
        {
            return Err(already_registered());
        }
    }
    let id = new_id();
    let stored = StoredBorrower {
        id: id.clone(),
        kind,
        personal: vault.seal(&data, &id)?,
        resident_index,
        credit_code_index,
        mobile_index: data
            .mobile
            .as_ref()
            .map(|m| vault.index("mobile", m.expose())),
        language,
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    match uow.insert_borrower(&stored).await {
        // Registered by a concurrent request between the check and the insert.
        Err(StoreError::Duplicate(_)) => return Err(already_registered()),
        other => other?,
    }
    announce(
        uow.as_mut(),
        Topic::BorrowerRegistered,
        &stored,
        serde_json::json!({}),
        &crate::acting::current(),
        now,
    )
    .await?;
    let view = view(&stored, &data);
    idempotency::record(uow.as_mut(), request, &view, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(view))
}

/// What support looks a borrower up by: one identifier, as the borrower gives it.
#[derive(Clone)]
pub enum Lookup {
    Mobile(String),
    ResidentId(String),
    CreditCode(String),
}

/// Says what is looked up by, never the identifier: logs carry no personal data.
impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Mobile(_) => f.write_str("Lookup::Mobile(hidden)"),
            Lookup::ResidentId(_) => f.write_str("Lookup::ResidentId(hidden)"),
            Lookup::CreditCode(_) => f.write_str("Lookup::CreditCode(hidden)"),
        }
    }
}

/// Finds the borrowers registered with an identifier, through its blind index: the identifier
/// is parsed first (a mistyped one is a 400 naming what is wrong, not an empty list), never
/// stored or logged in clear, and the search is audited with what was searched by and how
/// many were found. Results are masked.
pub async fn find(engine: &Engine, lookup: &Lookup) -> Result<Vec<BorrowerView>, EngineError> {
    let vault = engine.vault()?;
    let now = engine.clock.now();
    let today_in_china = (now + chrono::Duration::hours(8)).date_naive();
    let invalid = |field: &str, code: &'static str, message: String| -> EngineError {
        Violations::single(field, code, message).into()
    };
    let (by, index_kind, index) = match lookup {
        Lookup::Mobile(raw) => {
            let mobile = lendcore_domain::borrower::Mobile::parse(raw)?;
            let index = vault.index("mobile", mobile.expose());
            ("mobile", BorrowerIndex::Mobile, index)
        }
        Lookup::ResidentId(raw) => {
            let id = lendcore_domain::identity::ResidentId::parse(raw, today_in_china)
                .map_err(|e| invalid("resident_id", e.code(), e.to_string()))?;
            let index = vault.index("resident_id", id.expose());
            ("resident_id", BorrowerIndex::ResidentId, index)
        }
        Lookup::CreditCode(raw) => {
            let code = lendcore_domain::identity::CreditCode::parse(raw)
                .map_err(|e| invalid("credit_code", e.code(), e.to_string()))?;
            let index = vault.index("credit_code", code.expose());
            ("credit_code", BorrowerIndex::CreditCode, index)
        }
    };
    let mut uow = engine.store.begin().await?;
    let found = uow.find_borrowers_by(index_kind, &index).await?;
    let views = found
        .iter()
        .map(|stored| Ok(view(stored, &vault.open(&stored.personal, &stored.id)?)))
        .collect::<Result<Vec<_>, EngineError>>()?;
    crate::audit::record(
        uow.as_mut(),
        &crate::acting::current(),
        "borrower.searched",
        ("borrower", "*"),
        serde_json::json!({
            "by": by,
            "found": views.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        }),
        lendcore_domain::to_millis(now),
    )
    .await?;
    uow.commit().await?;
    Ok(views)
}

pub async fn get(engine: &Engine, id: &str) -> Result<BorrowerView, EngineError> {
    let vault = engine.vault()?;
    let mut uow = engine.store.begin_read().await?;
    let stored = uow.find_borrower(id).await?.ok_or_else(|| not_found(id))?;
    Ok(view(&stored, &vault.open(&stored.personal, &stored.id)?))
}

/// Changes the mobile number, address or bank account; each change is kept (masked) in the
/// borrower's history, which risk rules read.
pub async fn change_contact(
    engine: &Engine,
    id: &str,
    change: ContactChange,
    actor: String,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<BorrowerView>, EngineError> {
    let vault = engine.vault()?;
    if !(1..=64).contains(&actor.len()) || !actor.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Violations::single(
            "actor",
            "validation.invalid_actor",
            "actor must be 1-64 visible characters, e.g. borrower:self or ops:alice",
        )
        .into());
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = lendcore_domain::to_millis(engine.clock.now());
        let mut uow = engine.store.begin().await?;
        if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
            return idempotency::replayed(uow, done).await;
        }
        let mut stored = uow.find_borrower(id).await?.ok_or_else(|| not_found(id))?;
        let mut data = vault.open(&stored.personal, &stored.id)?;
        let changed = data.change_contact(change.clone())?;
        if !changed.is_empty() {
            let last_seq = uow.borrower_changes(id).await?.last().map_or(0, |c| c.seq);
            let history: Vec<BorrowerChange> = changed
                .iter()
                .zip(last_seq + 1..)
                .map(|(c, seq)| BorrowerChange {
                    borrower_id: stored.id.clone(),
                    seq,
                    field: c.field,
                    before: c.before.clone(),
                    after: c.after.clone(),
                    actor: actor.clone(),
                    at: now,
                })
                .collect();
            let read_revision = stored.revision;
            stored.personal = vault.seal(&data, &stored.id)?;
            stored.mobile_index = data
                .mobile
                .as_ref()
                .map(|m| vault.index("mobile", m.expose()));
            stored.revision += 1;
            stored.updated_at = now;
            match uow.update_borrower(&stored, read_revision, &history).await {
                // Another change landed meanwhile: decide again on what it left.
                Err(StoreError::Stale(_)) if attempt < STALE_RETRIES => continue,
                other => other?,
            }
            let fields: Vec<_> = history.iter().map(|c| c.field).collect();
            announce(
                uow.as_mut(),
                Topic::BorrowerContactChanged,
                &stored,
                serde_json::json!({ "fields": fields }),
                &actor,
                now,
            )
            .await?;
        }
        let view = view(&stored, &data);
        idempotency::record(uow.as_mut(), request, &view, now).await?;
        uow.commit().await?;
        return Ok(Outcome::Fresh(view));
    }
}

pub async fn changes(engine: &Engine, id: &str) -> Result<Vec<BorrowerChange>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    if uow.find_borrower(id).await?.is_none() {
        return Err(not_found(id));
    }
    Ok(uow.borrower_changes(id).await?)
}

/// An event about a borrower for the outbox: never any personal data.
async fn announce(
    uow: &mut dyn UnitOfWork,
    topic: Topic,
    borrower: &StoredBorrower,
    detail: serde_json::Value,
    actor: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    crate::audit::announce(
        uow,
        OutboxEvent {
        id: new_id(),
        topic: topic.as_str().to_owned(),
        aggregate_type: "borrower".to_owned(),
        aggregate_id: borrower.id.clone(),
        payload: serde_json::json!({ "borrower_id": borrower.id, "kind": borrower.kind, "detail": detail }),
        created_at: now,
        published_at: None,
        },
        actor,
    )
    .await?;
    Ok(())
}

fn not_found(id: &str) -> EngineError {
    EngineError::not_found("not_found.borrower", format!("no borrower with id {id}"))
}

/// Names no borrower: whoever asks learns that the identity is taken, not whose it is.
fn already_registered() -> EngineError {
    EngineError::conflict(
        "conflict.borrower_exists",
        "a borrower with this identity number or credit code is already registered",
    )
}
