//! Pruning what sign-in and retries leave behind: ended sessions, old sign-in codes and failed
//! attempts, long-expired links, week-old idempotency keys. Nothing here is evidence — the
//! audit chain keeps who signed in, opened a link or failed, and what each request changed —
//! so rows no limit, session or retry needs are deleted, in batches that never hold a long
//! transaction.

use lendcore_store::{PruneCutoffs, Pruned};

use crate::{Engine, EngineError};

/// An ended session is kept this long, for support reading back a borrower's recent sign-ins.
pub const SESSIONS_KEPT: chrono::Duration = chrono::Duration::days(30);
/// Codes and failures are counted over an hour at most; two days leaves room for questions.
pub const ATTEMPTS_KEPT: chrono::Duration = chrono::Duration::days(2);
/// An expired link still explains itself (`link.expired`, then renewal) for this long; after
/// it, it is `link.invalid`, and the borrower asks for a new one in one step all the same.
pub const LINKS_KEPT: chrono::Duration = chrono::Duration::days(90);
/// A request retried with the same `Idempotency-Key` within a week answers as it first did;
/// after that it is a new request. (Also how long a quote's stored answer, with its
/// confirmation token, is kept.)
pub const IDEMPOTENCY_KEYS_KEPT: chrono::Duration = chrono::Duration::days(7);
const BATCH: u32 = 5_000;

/// Prunes everything due, batch after batch; returns how much.
pub async fn prune(engine: &Engine) -> Result<Pruned, EngineError> {
    let now = engine.clock.now();
    let cutoffs = PruneCutoffs {
        sessions: now - SESSIONS_KEPT,
        attempts: now - ATTEMPTS_KEPT,
        links: now - LINKS_KEPT,
        idempotency_keys: now - IDEMPOTENCY_KEYS_KEPT,
    };
    let mut total = Pruned::default();
    loop {
        let mut uow = engine.store.begin().await?;
        // Processes prune one at a time: two deleting the same rows could deadlock.
        uow.serialise_on("prune-access").await?;
        let pruned = uow.prune_access(&cutoffs, BATCH).await?;
        uow.commit().await?;
        total.sessions += pruned.sessions;
        total.codes += pruned.codes;
        total.failures += pruned.failures;
        total.links += pruned.links;
        total.idempotency_keys += pruned.idempotency_keys;
        let full = u64::from(BATCH);
        if [
            pruned.sessions,
            pruned.codes,
            pruned.links,
            pruned.idempotency_keys,
        ]
        .iter()
        .all(|n| *n < full)
        {
            break;
        }
    }
    for (what, count) in [
        ("sessions", total.sessions),
        ("otp_challenges", total.codes),
        ("auth_failures", total.failures),
        ("links", total.links),
        ("idempotency_keys", total.idempotency_keys),
    ] {
        metrics::counter!("lendcore_pruned_total", "table" => what).increment(count);
    }
    Ok(total)
}
