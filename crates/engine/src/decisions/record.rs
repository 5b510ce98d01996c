//! Decision records: every decision kept as it was made (inputs, features, policy version,
//! what fired, the score, the outcome, the reasons, timings), in the borrower's records, with
//! its digest in the audit chain; and replaying one from what it recorded.

use std::collections::BTreeMap;

use lendcore_connectors::bureau::Inquiry;
use lendcore_domain::Timestamp;
use lendcore_domain::application::PolicyRef;
use lendcore_domain::decision::{BureauStatus, BureauUse, Evaluation, Features, Side, Value};
use lendcore_store::{StoredDecision, UnitOfWork};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Engine, EngineError};

/// Who decides by policy, as the audit chain names it.
pub(crate) const POLICY_ACTOR: &str = "system:credit-policy";

/// What a decision was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionSubject {
    /// `application`, `drawdown` or `credit_line`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// The bureau's part in a decision: whom lendcore asked, what came back, how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BureauCall {
    pub bureau: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub inquiry: Inquiry,
    pub elapsed_ms: u64,
}

/// How long each part of a decision took, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    pub features_us: u64,
    pub bureau_us: u64,
    pub evaluate_us: u64,
}

/// A decision, as kept. Never changed once written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecord {
    pub id: String,
    pub borrower_id: String,
    pub subject: DecisionSubject,
    pub policy: PolicyRef,
    /// The digest of the policy document it ran on; a replay checks it.
    pub policy_sha256: String,
    /// What was asked, as it was asked (amounts, term, product), personal data left out.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub inputs: serde_json::Value,
    /// Every feature the policy read, by name, `null` where missing.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub features: BTreeMap<String, Option<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bureau: Option<BureauCall>,
    pub evaluation: Evaluation,
    /// When a challenger took part: the decision of the other policy, made on the same
    /// features and not applied. `policy` and `evaluation` are always what the borrower got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beside: Option<BesideDecision>,
    pub timings: Timings,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub decided_at: Timestamp,
}

/// The decision a challenge recorded beside the applied one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BesideDecision {
    pub challenge_id: String,
    /// Which side this one is: the challenger in shadow, the champion when the challenger
    /// is applied.
    pub side: Side,
    pub policy: PolicyRef,
    pub policy_sha256: String,
    pub evaluation: Evaluation,
}

impl DecisionRecord {
    /// Whether the bureau answered, as the evaluation was told.
    fn bureau_status(&self) -> BureauStatus {
        match &self.bureau {
            None => BureauStatus::NotAsked,
            Some(BureauCall {
                inquiry: Inquiry::Found(_) | Inquiry::NoFile,
                ..
            }) => BureauStatus::Answered,
            Some(BureauCall {
                inquiry: Inquiry::Unavailable { .. },
                ..
            }) => BureauStatus::Unavailable,
        }
    }

    fn stored(&self) -> Result<StoredDecision, EngineError> {
        Ok(StoredDecision {
            borrower_id: self.borrower_id.clone(),
            id: self.id.clone(),
            stage: self.evaluation.stage.as_str().to_owned(),
            subject_type: self.subject.kind.clone(),
            subject_id: self.subject.id.clone(),
            policy_code: self.policy.code.clone(),
            policy_version: self.policy.version,
            outcome: self.evaluation.outcome.name().to_owned(),
            // Written once, straight from the record: the text stored is the text hashed.
            record: serde_json::to_string(self)
                .map_err(|e| EngineError::Internal(e.to_string()))?,
            decided_at: self.decided_at,
        })
    }
}

pub(crate) fn from_stored(stored: StoredDecision) -> Result<DecisionRecord, EngineError> {
    serde_json::from_str(&stored.record)
        .map_err(|e| EngineError::Internal(format!("decision {}: {e}", stored.id)))
}

/// Keeps a decision in the borrower's records and its digest in the audit chain, in `uow`.
pub(crate) async fn keep(
    uow: &mut dyn UnitOfWork,
    record: &DecisionRecord,
) -> Result<(), EngineError> {
    let stored = record.stored()?;
    let digest = hex::encode(Sha256::digest(stored.record.as_bytes()));
    uow.insert_decision(&stored).await?;
    super::challenges::tally(uow, record).await?;
    let made = Made {
        borrower_id: &record.borrower_id,
        outcome: record.evaluation.outcome.name(),
        reasons: &record.evaluation.reasons,
        record_sha256: &digest,
        subject: &record.subject,
    };
    let detail = serde_json::to_string(&made).map_err(|e| EngineError::Internal(e.to_string()))?;
    crate::audit::record_text(
        uow,
        POLICY_ACTOR,
        "decision.made",
        ("decision", &record.id),
        detail,
        record.decided_at,
    )
    .await
}

/// What the audit chain says of a decision: what an auditor scans for. The rest is in the
/// record, which the digest binds.
#[derive(Serialize)]
struct Made<'a> {
    borrower_id: &'a str,
    outcome: &'a str,
    reasons: &'a [lendcore_domain::reasons::Reason],
    record_sha256: &'a str,
    subject: &'a DecisionSubject,
}

fn not_found() -> EngineError {
    EngineError::not_found(
        "not_found.decision",
        "no decision with that id for that borrower",
    )
}

/// One decision of a borrower.
pub async fn get(
    engine: &Engine,
    borrower_id: &str,
    id: &str,
) -> Result<DecisionRecord, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let stored = uow
        .find_decision(borrower_id, id)
        .await?
        .ok_or_else(not_found)?;
    from_stored(stored)
}

/// The credit policy's decision on an application, for the underwriter who reviews it.
pub async fn of_application(
    engine: &Engine,
    application_id: &str,
) -> Result<DecisionRecord, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let (app, _) = uow.find_application(application_id).await?.ok_or_else(|| {
        EngineError::not_found("not_found.application", "no application with that id")
    })?;
    let (Some(borrower_id), Some(decision_id)) = (&app.borrower_id, &app.decision_id) else {
        return Err(EngineError::not_found(
            "not_found.decision",
            format!(
                "application {application_id} has no automated decision (it is {})",
                app.status.name()
            ),
        ));
    };
    let stored = uow
        .find_decision(borrower_id, decision_id)
        .await?
        .ok_or_else(not_found)?;
    from_stored(stored)
}

/// A borrower's latest decisions, newest first.
pub async fn list(
    engine: &Engine,
    borrower_id: &str,
    limit: u32,
) -> Result<Vec<DecisionRecord>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    uow.list_decisions(borrower_id, limit.clamp(1, 200))
        .await?
        .into_iter()
        .map(from_stored)
        .collect()
}

/// A decision evaluated again from what it recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replay {
    pub decision_id: String,
    pub policy: PolicyRef,
    /// Whether the replay gave exactly the recorded answer.
    pub same: bool,
    /// What differs, part by part (`outcome`, `fired`, `score`, …); empty when the same.
    pub differences: Vec<String>,
    pub recorded: Evaluation,
    pub replayed: Evaluation,
}

/// Evaluates a recorded decision again, from its recorded features and bureau answer under
/// the policy version it names, and says whether the answer is the same.
pub async fn replay(engine: &Engine, borrower_id: &str, id: &str) -> Result<Replay, EngineError> {
    let record = get(engine, borrower_id, id).await?;
    let code = super::policies::stored_code(&record.policy.code)?;
    let mut uow = engine.store.begin_read().await?;
    let compiled = engine
        .policies
        .get(uow.as_mut(), &code, record.policy.version)
        .await?;
    drop(uow);
    if compiled.version.sha256 != record.policy_sha256 {
        return Err(EngineError::conflict(
            "conflict.policy_changed",
            format!(
                "policy {} version {} is not the document the decision ran on (digest {} now, {} recorded)",
                code, record.policy.version, compiled.version.sha256, record.policy_sha256
            ),
        ));
    }
    let features = Features::from_snapshot(&record.features)
        .map_err(|e| EngineError::Internal(format!("decision {id}: {e}")))?;
    let mut replayed =
        compiled
            .policy
            .decide(record.evaluation.stage, &features, record.bureau_status());
    // Records written before fired rules carried their percent say nothing of it: the rule
    // (table and row) names it, so a replay of one is not a difference.
    for (then, now) in record
        .evaluation
        .fired
        .iter()
        .zip(replayed.fired.iter_mut())
    {
        if then.percent.is_none() && then.table == now.table && then.row == now.row {
            now.percent = None;
        }
    }
    let differences = differences(&record.evaluation, &replayed);
    Ok(Replay {
        decision_id: record.id,
        policy: record.policy,
        same: differences.is_empty(),
        differences,
        recorded: record.evaluation,
        replayed,
    })
}

/// The parts of two evaluations that differ, each as `part: recorded → replayed`.
fn differences(recorded: &Evaluation, replayed: &Evaluation) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (
        serde_json::to_value(recorded),
        serde_json::to_value(replayed),
    ) else {
        return vec!["the evaluations cannot be compared".to_owned()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| {
                v.map_or_else(|| "(none)".to_owned(), serde_json::Value::to_string)
            };
            format!("{k}: {} → {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}

/// Whether an evaluation used the bureau, for the application's step note.
pub(crate) fn bureau_note(bureau: &BureauUse) -> Option<&'static str> {
    match bureau {
        BureauUse::UnavailableReferred => {
            Some("the credit bureau did not answer; the policy refers such applications")
        }
        BureauUse::UnavailableDecidedWithout { .. } => {
            Some("the credit bureau did not answer; decided without it under a lower limit")
        }
        BureauUse::Answered | BureauUse::NotAsked => None,
    }
}
