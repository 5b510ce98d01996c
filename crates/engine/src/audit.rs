//! The audit chain: each state change and operator action records an entry in its own unit of
//! work ([`record`]); the sealer ([`seal`], run every second by `serve`) chains pending entries
//! in order, one sealer at a time; [`verify`] walks the chain and names the first broken link.

use lendcore_domain::Timestamp;
use lendcore_domain::audit::{AuditEntry, AuditRecord, ChainBreak, GENESIS, Verifier};
use lendcore_store::{OutboxEvent, Store, UnitOfWork};

use crate::{EngineError, new_id};

const BATCH: u32 = 500;

/// Records an entry in the caller's unit of work: it commits, or vanishes, with the change.
pub async fn record(
    uow: &mut dyn UnitOfWork,
    actor: &str,
    action: &str,
    subject: (&str, &str),
    detail: serde_json::Value,
    at: Timestamp,
) -> Result<(), EngineError> {
    record_text(uow, actor, action, subject, detail.to_string(), at).await
}

/// [`record`] with the detail already written as JSON text (by a typed value on a hot path,
/// without building a JSON tree first).
pub async fn record_text(
    uow: &mut dyn UnitOfWork,
    actor: &str,
    action: &str,
    subject: (&str, &str),
    detail: String,
    at: Timestamp,
) -> Result<(), EngineError> {
    let entry = AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject_type: subject.0.to_owned(),
        subject_id: subject.1.to_owned(),
        detail,
    };
    uow.append_audit(&new_id(), &entry).await?;
    Ok(())
}

/// Announces a business event: the outbox row that tells the world, and the audit entry that
/// records it, `actor` having done it, both in the caller's unit of work.
pub async fn announce(
    uow: &mut dyn UnitOfWork,
    event: OutboxEvent,
    actor: &str,
) -> Result<(), EngineError> {
    uow.append_outbox(&event).await?;
    record_event(uow, &event, actor).await
}

/// Records what an outbox event announces, as done by `actor`.
pub async fn record_event(
    uow: &mut dyn UnitOfWork,
    event: &OutboxEvent,
    actor: &str,
) -> Result<(), EngineError> {
    record(
        uow,
        actor,
        &event.topic,
        (&event.aggregate_type, &event.aggregate_id),
        event.payload.clone(),
        event.created_at,
    )
    .await
}

/// Who the audit names for what lendcore does by itself (jobs, timers, the channel's answers).
pub const SYSTEM: &str = "system:lendcore";

/// Chains every pending entry; returns how many it sealed.
pub async fn seal(store: &dyn Store) -> Result<usize, EngineError> {
    let mut sealed = 0;
    loop {
        // Look before taking the writer (SQLite) or the chain's lock (PostgreSQL).
        if store.begin_read().await?.pending_audit_count().await? == 0 {
            return Ok(sealed);
        }
        let mut uow = store.begin().await?;
        let (head, pending) = uow.claim_pending_audit(BATCH).await?;
        if pending.is_empty() {
            return Ok(sealed);
        }
        let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_owned()));
        let mut records = Vec::with_capacity(pending.len());
        let mut ids = Vec::with_capacity(pending.len());
        for (id, entry) in pending {
            seq += 1;
            let record = AuditRecord::chain(seq, &prev, entry);
            prev = record.hash.clone();
            records.push(record);
            ids.push(id);
        }
        uow.seal_audit(&records, &ids).await?;
        uow.commit().await?;
        sealed += records.len();
        metrics::counter!("lendcore_audit_sealed_total").increment(records.len() as u64);
        count_decisions(&records);
    }
}

/// What the decisions' audit entries say, as `decision.made` writes it.
#[derive(serde::Deserialize)]
struct DecisionMade {
    subject: DecisionSubjectType,
    outcome: String,
    reasons: Vec<lendcore_domain::reasons::Reason>,
}

#[derive(serde::Deserialize)]
struct DecisionSubjectType {
    #[serde(rename = "type")]
    kind: String,
}

/// Counts credit decisions by subject and outcome, and their reasons, once each: sealing takes
/// every committed entry exactly once (one sealer at a time), so a decision whose unit of work
/// rolled back is never counted.
fn count_decisions(records: &[AuditRecord]) {
    for record in records.iter().filter(|r| r.entry.action == "decision.made") {
        let Ok(made) = serde_json::from_str::<DecisionMade>(&record.entry.detail) else {
            continue;
        };
        metrics::counter!("lendcore_credit_decisions_total",
            "subject" => made.subject.kind.clone(), "outcome" => made.outcome)
        .increment(1);
        for reason in made.reasons {
            metrics::counter!("lendcore_credit_decision_reasons_total",
                "subject" => made.subject.kind.clone(), "reason" => reason.code())
            .increment(1);
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub records: u64,
    /// The hash of the last record: publish it to make a rewrite of the whole chain evident.
    pub head: String,
    /// Entries recorded but not chained yet (the sealer runs every second).
    pub pending: u64,
    /// The first broken link, if any.
    pub broken: Option<ChainBreak>,
}

/// A record's hash published earlier (exported, timestamped elsewhere): the chain must still
/// hold that record with that hash, which catches a rewrite of everything after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// `SEQ:HASH`, as `lendcore audit export` prints it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s.split_once(':').ok_or("an anchor is SEQ:HASH")?;
        let seq = seq
            .parse()
            .map_err(|_| "an anchor's SEQ is a record number")?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("an anchor's HASH is 64 hex digits".to_owned());
        }
        Ok(Anchor { seq, hash })
    }
}

/// Walks the whole chain from its first record, reading it in pages, handing each record to
/// `each` (an export writes it out), and checks it against `anchor` if given.
pub async fn verify(
    store: &dyn Store,
    anchor: Option<&Anchor>,
    mut each: impl FnMut(&AuditRecord) -> Result<(), EngineError>,
) -> Result<Verification, EngineError> {
    let mut verifier = Verifier::default();
    let mut after = 0;
    let mut broken = None;
    'pages: loop {
        let records = {
            let mut uow = store.begin_read().await?;
            uow.audit_records(after, BATCH).await?
        };
        let Some(last) = records.last().map(|r| r.seq) else {
            break;
        };
        for record in &records {
            if let Err(found) = verifier.check(record) {
                broken = Some(found);
                break 'pages;
            }
            if let Some(anchor) = anchor
                && anchor.seq == record.seq
                && anchor.hash != record.hash
            {
                broken = Some(ChainBreak::NotAnchored { seq: anchor.seq });
                break 'pages;
            }
            each(record)?;
        }
        after = last;
    }
    let pending = {
        let mut uow = store.begin_read().await?;
        uow.pending_audit_count().await?
    };
    let verified = verifier.finish();
    if let Some(anchor) = anchor
        && broken.is_none()
        && u64::try_from(anchor.seq).map_or(true, |seq| seq > verified.records)
    {
        // The anchored record is gone: the tail was cut back past it.
        broken = Some(ChainBreak::NotAnchored { seq: anchor.seq });
    }
    Ok(Verification {
        records: verified.records,
        head: verified.head,
        pending,
        broken,
    })
}
