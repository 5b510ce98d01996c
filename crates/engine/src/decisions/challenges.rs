//! Champion and challenger (`domain/src/decision/challenge.rs`): starting and ending a
//! challenge (audited), which policy decides an application a challenge takes part in, and
//! the comparison of both sides' decisions.

use std::collections::BTreeMap;
use std::sync::Arc;

use lendcore_domain::decision::{
    Challenge, ChallengeError, ChallengeMode, Evaluation, PolicyCode, PolicyRef, Side,
};
use lendcore_store::{
    ChallengeDecision, ChallengeTallies, MAX_CHALLENGES, SideFigures, StoreError, UnitOfWork,
};
use serde::{Deserialize, Serialize};

use super::policies::CompiledVersion;
use super::record::{BesideDecision, DecisionRecord};
use crate::access::Principal;
use crate::idempotency::{self, IdempotentRequest, Outcome};
use crate::{Engine, EngineError, new_id};

/// How many buckets the comparison cuts the scores given into.
const SCORE_BUCKETS: i64 = 10;

fn not_found() -> EngineError {
    EngineError::not_found("not_found.challenge", "no challenge with that id")
}

fn refused(e: ChallengeError) -> EngineError {
    if let Some(violations) = e.violations() {
        return EngineError::Invalid(violations);
    }
    match e {
        ChallengeError::SameAuthor => EngineError::forbidden(e.code(), e.to_string()),
        ChallengeError::IsChampion(_)
        | ChallengeError::AlreadyEnded
        | ChallengeError::ShareOutOfRange => EngineError::conflict(e.code(), e.to_string()),
    }
}

/// Starts a challenge of policy `code` version `version` against the version in effect.
pub async fn start(
    engine: &Engine,
    principal: &Principal,
    code: &PolicyCode,
    version: u32,
    share_percent: u8,
    mode: ChallengeMode,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<Challenge>, EngineError> {
    let actor = principal.actor();
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let target = uow
        .find_policy_version(code, version)
        .await?
        .ok_or_else(|| {
            EngineError::not_found(
                "not_found.policy_version",
                format!("policy {code} has no version {version}"),
            )
        })?;
    let champion = uow
        .policy_in_effect(now)
        .await?
        .map(|(code, version)| PolicyRef {
            code: code.as_str().to_owned(),
            version,
        });
    let challenge = Challenge::start(
        new_id(),
        &target,
        champion.as_ref(),
        share_percent,
        mode,
        &actor,
        now,
    )
    .map_err(refused)?;
    if let Some(running) = uow.running_policy_challenge().await? {
        return Err(EngineError::conflict(
            "conflict.challenge_running",
            format!(
                "challenge {} ({} version {}) is running: end it first",
                running.id, running.challenger.code, running.challenger.version
            ),
        ));
    }
    match uow.insert_policy_challenge(&challenge).await {
        // The read above saw none; another request's insert won the race since.
        Err(StoreError::Duplicate(_)) => {
            return Err(EngineError::conflict(
                "conflict.challenge_running",
                "another challenge started a moment ago: end it first",
            ));
        }
        other => other?,
    }
    crate::audit::record(
        uow.as_mut(),
        &actor,
        "policy.challenge_started",
        ("challenge", &challenge.id),
        serde_json::json!({
            "policy": challenge.challenger,
            "share_percent": challenge.share_percent,
            "mode": challenge.mode,
            "champion": champion,
        }),
        now,
    )
    .await?;
    idempotency::record(uow.as_mut(), request, &challenge, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(challenge))
}

/// Ends a running challenge: from now on the champion alone decides.
pub async fn end(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    request: Option<&IdempotentRequest>,
) -> Result<Outcome<Challenge>, EngineError> {
    let actor = principal.actor();
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if let Some(done) = idempotency::claim(uow.as_mut(), request, now).await? {
        return idempotency::replayed(uow, done).await;
    }
    let mut challenge = uow.find_policy_challenge(id).await?.ok_or_else(not_found)?;
    challenge.end(&actor, now).map_err(refused)?;
    match uow.end_policy_challenge(&challenge).await {
        Err(StoreError::Stale(_)) => return Err(refused(ChallengeError::AlreadyEnded)),
        other => other?,
    }
    crate::audit::record(
        uow.as_mut(),
        &actor,
        "policy.challenge_ended",
        ("challenge", &challenge.id),
        serde_json::json!({ "policy": challenge.challenger }),
        now,
    )
    .await?;
    idempotency::record(uow.as_mut(), request, &challenge, now).await?;
    uow.commit().await?;
    Ok(Outcome::Fresh(challenge))
}

/// The latest challenges, newest first; of one policy when `code` is given.
pub async fn list(
    engine: &Engine,
    code: Option<&PolicyCode>,
) -> Result<Vec<Challenge>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    Ok(uow
        .list_policy_challenges(code.map(PolicyCode::as_str), MAX_CHALLENGES)
        .await?)
}

pub async fn get(engine: &Engine, id: &str) -> Result<Challenge, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    uow.find_policy_challenge(id).await?.ok_or_else(not_found)
}

/// The challenger that takes part in this borrower's application decision under `champion`,
/// if a challenge runs, takes them, and challenges some other version.
pub(crate) async fn contender(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    champion: &CompiledVersion,
    borrower_id: &str,
) -> Result<Option<(Challenge, Arc<CompiledVersion>)>, EngineError> {
    let Some(challenge) = uow.running_policy_challenge().await? else {
        return Ok(None);
    };
    let is_champion = challenge.challenger.code == champion.version.code.as_str()
        && challenge.challenger.version == champion.version.version;
    if is_champion || !challenge.takes(borrower_id) {
        return Ok(None);
    }
    let code = super::policies::stored_code(&challenge.challenger.code)?;
    let compiled = engine
        .policies
        .get(uow, &code, challenge.challenger.version)
        .await?;
    Ok(Some((challenge, compiled)))
}

pub(crate) fn policy_of(compiled: &CompiledVersion) -> PolicyRef {
    PolicyRef {
        code: compiled.version.code.as_str().to_owned(),
        version: compiled.version.version,
    }
}

/// One side of a challenged decision: the policy version and its evaluation.
pub(crate) struct Decision<'a> {
    pub compiled: &'a CompiledVersion,
    pub evaluation: Evaluation,
}

/// The applied side's policy and evaluation, and the other side as recorded beside it.
pub(crate) fn settle(
    challenge: &Challenge,
    champion: Decision<'_>,
    challenger: Decision<'_>,
) -> (PolicyRef, String, Evaluation, BesideDecision) {
    let other_side = challenge.applied_side().other();
    let (applied, other) = match other_side {
        Side::Challenger => (champion, challenger),
        Side::Champion => (challenger, champion),
    };
    let beside = BesideDecision {
        challenge_id: challenge.id.clone(),
        side: other_side,
        policy: policy_of(other.compiled),
        policy_sha256: other.compiled.version.sha256.clone(),
        evaluation: other.evaluation,
    };
    (
        policy_of(applied.compiled),
        applied.compiled.version.sha256.clone(),
        applied.evaluation,
        beside,
    )
}

fn figures(evaluation: &Evaluation) -> SideFigures {
    SideFigures {
        outcome: evaluation.outcome.name().to_owned(),
        score: evaluation.score.as_ref().map(|s| s.value),
        reason: evaluation.reasons.first().map(|r| r.code().to_owned()),
    }
}

/// Counts a record with a challenger's part in the comparison, in `uow`.
pub(crate) async fn tally(
    uow: &mut dyn UnitOfWork,
    record: &DecisionRecord,
) -> Result<(), EngineError> {
    let Some(beside) = &record.beside else {
        return Ok(());
    };
    let applied = beside.side.other();
    let (champion, champion_eval, challenger_eval) = match applied {
        Side::Champion => (&record.policy, &record.evaluation, &beside.evaluation),
        Side::Challenger => (&beside.policy, &beside.evaluation, &record.evaluation),
    };
    uow.insert_challenge_decision(&ChallengeDecision {
        borrower_id: record.borrower_id.clone(),
        decision_id: record.id.clone(),
        challenge_id: beside.challenge_id.clone(),
        champion: champion.clone(),
        champion_side: figures(champion_eval),
        challenger_side: figures(challenger_eval),
        applied,
        decided_at: record.decided_at,
    })
    .await?;
    Ok(())
}

/// Both policies' decisions in a challenge, side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comparison {
    pub challenge: Challenge,
    /// Decisions the challenger took part in.
    pub decisions: u64,
    /// Decisions where both policies reached the same outcome.
    pub agreed: u64,
    pub champion: SideSummary,
    pub challenger: SideSummary,
    /// Every pair of outcomes that occurred (champion's, challenger's) with its count.
    pub outcome_pairs: Vec<OutcomePairView>,
    /// The scores each side gave, in buckets of equal width.
    pub scores: Vec<ScoreBucket>,
    /// The champion versions the challenger was compared with (the champion may change
    /// during a challenge), with their decisions.
    pub champion_versions: Vec<VersionCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SideSummary {
    /// Decisions by outcome (`approve`, `decline`, `refer`, `request_documents`).
    pub outcomes: BTreeMap<String, u64>,
    /// Approvals as a share of the decisions, 0 to 1.
    pub approval_rate: f64,
    /// Decisions by first reason given (`none` for those without one).
    pub reasons: BTreeMap<String, u64>,
    /// The mean score given, when any was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_score: Option<f64>,
    /// Decisions where this side's outcome is the one the borrower got.
    pub applied: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomePairView {
    pub champion: String,
    pub challenger: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreBucket {
    /// Scores from `from` to `to`, both included.
    pub from: i64,
    pub to: i64,
    pub champion: u64,
    pub challenger: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionCount {
    pub policy: PolicyRef,
    pub decisions: u64,
}

/// The comparison of a challenge: the one given, or else the latest of policy `code`.
pub async fn comparison(
    engine: &Engine,
    code: &PolicyCode,
    challenge_id: Option<&str>,
) -> Result<Comparison, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let challenge = match challenge_id {
        Some(id) => uow
            .find_policy_challenge(id)
            .await?
            .filter(|c| c.challenger.code == code.as_str())
            .ok_or_else(|| {
                EngineError::not_found(
                    "not_found.challenge",
                    format!("policy {code} has no challenge {id}"),
                )
            })?,
        None => uow
            .list_policy_challenges(Some(code.as_str()), 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                EngineError::not_found(
                    "not_found.challenge",
                    format!("policy {code} has never challenged the policy in effect"),
                )
            })?,
    };
    let tallies = uow.challenge_tallies(&challenge.id, SCORE_BUCKETS).await?;
    Ok(compare(challenge, &tallies))
}

fn compare(challenge: Challenge, tallies: &ChallengeTallies) -> Comparison {
    let summary = |side: Side| {
        let mut outcomes = BTreeMap::new();
        let (mut sum, mut scored, mut applied) = (0i128, 0u64, 0u64);
        for pair in &tallies.pairs {
            let (outcome, score_sum, n) = match side {
                Side::Champion => (
                    &pair.champion,
                    pair.champion_score_sum,
                    pair.champion_scored,
                ),
                Side::Challenger => (
                    &pair.challenger,
                    pair.challenger_score_sum,
                    pair.challenger_scored,
                ),
            };
            *outcomes.entry(outcome.clone()).or_insert(0) += pair.count;
            sum += i128::from(score_sum);
            scored += n;
            if pair.applied == side {
                applied += pair.count;
            }
        }
        let total: u64 = outcomes.values().sum();
        let approvals = outcomes.get("approve").copied().unwrap_or(0);
        let reasons = tallies
            .reasons
            .iter()
            .filter(|(s, _, _)| *s == side)
            .map(|(_, reason, n)| (reason.clone().unwrap_or_else(|| "none".to_owned()), *n))
            .collect();
        SideSummary {
            outcomes,
            approval_rate: ratio(approvals, total),
            reasons,
            mean_score: (scored > 0).then(|| sum as f64 / scored as f64),
            applied,
        }
    };
    let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
    for pair in &tallies.pairs {
        *pairs
            .entry((pair.champion.clone(), pair.challenger.clone()))
            .or_insert(0) += pair.count;
    }
    let decisions = pairs.values().sum();
    let agreed = pairs
        .iter()
        .filter(|((a, b), _)| a == b)
        .map(|(_, n)| n)
        .sum();
    let mut buckets: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for (side, bucket, n) in &tallies.scores {
        let entry = buckets.entry(*bucket).or_insert((0, 0));
        match side {
            Side::Champion => entry.0 += n,
            Side::Challenger => entry.1 += n,
        }
    }
    let width = tallies.score_width;
    Comparison {
        decisions,
        agreed,
        champion: summary(Side::Champion),
        challenger: summary(Side::Challenger),
        outcome_pairs: pairs
            .into_iter()
            .map(|((champion, challenger), count)| OutcomePairView {
                champion,
                challenger,
                count,
            })
            .collect(),
        scores: buckets
            .into_iter()
            .map(|(b, (champion, challenger))| {
                let from = tallies.score_lo.saturating_add(b.saturating_mul(width));
                ScoreBucket {
                    from,
                    to: from.saturating_add(width - 1),
                    champion,
                    challenger,
                }
            })
            .collect(),
        champion_versions: tallies
            .champions
            .iter()
            .map(|(policy, n)| VersionCount {
                policy: policy.clone(),
                decisions: *n,
            })
            .collect(),
        challenge,
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Four places: a rate on a page, not a figure anything sums.
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}
