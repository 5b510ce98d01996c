//! Champion and challenger: challenges (reference data, read by every application decision)
//! and both sides of each decision a challenger took part in (a borrower's rows, keyed by
//! borrower; the comparison counts across borrowers by challenge, a report, not a hot path).

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::decision::{Challenge, ChallengeMode, PolicyRef, Side};

use crate::StoreError;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

/// The most challenges one list returns, newest first.
pub const MAX_CHALLENGES: u32 = 200;

/// Both sides of one decision a challenger took part in.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeDecision {
    pub borrower_id: String,
    pub decision_id: String,
    pub challenge_id: String,
    pub champion: PolicyRef,
    pub champion_side: SideFigures,
    pub challenger_side: SideFigures,
    /// Whose decision the borrower got.
    pub applied: Side,
    pub decided_at: Timestamp,
}

/// What one side decided: its outcome, score and first reason.
#[derive(Debug, Clone, PartialEq)]
pub struct SideFigures {
    pub outcome: String,
    pub score: Option<i64>,
    pub reason: Option<String>,
}

/// A challenge's decisions counted: by the pair of outcomes, by first reason and by score
/// bucket, each side apart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChallengeTallies {
    pub pairs: Vec<OutcomePair>,
    /// (side, first reason, or `None` for decisions without one; count).
    pub reasons: Vec<(Side, Option<String>, u64)>,
    /// (side, bucket, count): bucket `b` holds scores from `score_lo + b * score_width` up to
    /// the next bucket's.
    pub scores: Vec<(Side, i64, u64)>,
    pub score_lo: i64,
    pub score_width: i64,
    /// Champion versions seen, with how many decisions each.
    pub champions: Vec<(PolicyRef, u64)>,
}

/// Decisions where the champion said `champion` and the challenger `challenger`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomePair {
    pub champion: String,
    pub challenger: String,
    pub applied: Side,
    pub count: u64,
    /// Sums of the scores given, for means (decisions without a score left out).
    pub champion_score_sum: i64,
    pub champion_scored: u64,
    pub challenger_score_sum: i64,
    pub challenger_scored: u64,
}

#[async_trait]
pub trait PolicyChallengeRepository {
    /// [`StoreError::Duplicate`] if another challenge is running.
    async fn insert_policy_challenge(&mut self, challenge: &Challenge) -> Result<(), StoreError>;

    /// Records the end of a running challenge; [`StoreError::Stale`] if it ended meanwhile.
    async fn end_policy_challenge(&mut self, challenge: &Challenge) -> Result<(), StoreError>;

    async fn find_policy_challenge(&mut self, id: &str) -> Result<Option<Challenge>, StoreError>;

    /// The challenge running now, if one is (one indexed read, for every decision).
    async fn running_policy_challenge(&mut self) -> Result<Option<Challenge>, StoreError>;

    /// The latest challenges started, newest first, of one policy when `code` is given.
    async fn list_policy_challenges(
        &mut self,
        code: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Challenge>, StoreError>;

    async fn insert_challenge_decision(
        &mut self,
        decision: &ChallengeDecision,
    ) -> Result<(), StoreError>;

    /// Counts a challenge's decisions; the scores given, both sides together, are cut into
    /// `buckets` (at least one) of equal width.
    async fn challenge_tallies(
        &mut self,
        challenge_id: &str,
        buckets: i64,
    ) -> Result<ChallengeTallies, StoreError>;
}

const TABLE: &str = "policy_challenges";
const DECISIONS: &str = "challenge_decisions";

#[derive(sqlx::FromRow)]
struct ChallengeRow {
    id: String,
    code: String,
    version: i64,
    share_percent: i64,
    mode: String,
    started_by: String,
    started_at_ms: i64,
    ended_by: Option<String>,
    ended_at_ms: Option<i64>,
}

const SELECT_CHALLENGE: &str = "SELECT id, code, version, share_percent, mode, started_by, \
     started_at_ms, ended_by, ended_at_ms FROM policy_challenges";

fn challenge_from_row(row: ChallengeRow) -> Result<Challenge, StoreError> {
    Ok(Challenge {
        id: row.id,
        challenger: PolicyRef {
            code: row.code,
            version: u32::try_from(row.version).map_err(|e| StoreError::corrupt(TABLE, e))?,
        },
        share_percent: u8::try_from(row.share_percent)
            .map_err(|e| StoreError::corrupt(TABLE, e))?,
        mode: ChallengeMode::parse(&row.mode)
            .ok_or_else(|| StoreError::corrupt(TABLE, format!("mode {}", row.mode)))?,
        started_by: row.started_by,
        started_at: from_ms(TABLE, row.started_at_ms)?,
        ended_by: row.ended_by,
        ended_at: from_opt_ms(TABLE, row.ended_at_ms)?,
    })
}

fn side(raw: &str, table: &'static str) -> Result<Side, StoreError> {
    Side::parse(raw).ok_or_else(|| StoreError::corrupt(table, format!("side {raw}")))
}

fn count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| StoreError::corrupt(DECISIONS, e))
}

#[async_trait]
impl PolicyChallengeRepository for SqlUnitOfWork {
    async fn insert_policy_challenge(&mut self, challenge: &Challenge) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO policy_challenges (id, code, version, share_percent, mode, started_by, \
             started_at_ms, ended_by, ended_at_ms, running) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&challenge.id)
        .bind(&challenge.challenger.code)
        .bind(i64::from(challenge.challenger.version))
        .bind(i64::from(challenge.share_percent))
        .bind(challenge.mode.as_str())
        .bind(&challenge.started_by)
        .bind(to_ms(challenge.started_at))
        .bind(&challenge.ended_by)
        .bind(challenge.ended_at.map(to_ms))
        .bind(challenge.running().then_some(1i64))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn end_policy_challenge(&mut self, challenge: &Challenge) -> Result<(), StoreError> {
        let (Some(by), Some(at)) = (&challenge.ended_by, challenge.ended_at) else {
            return Err(StoreError::InvalidValue(
                "ending a challenge needs who ended it and when".to_owned(),
            ));
        };
        let updated = on_tx!(self, c => sqlx::query(
            "UPDATE policy_challenges SET ended_by = $1, ended_at_ms = $2, running = NULL \
             WHERE id = $3 AND running = 1",
        )
        .bind(by)
        .bind(to_ms(at))
        .bind(&challenge.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        match updated {
            1 => Ok(()),
            _ => Err(StoreError::Stale("challenge")),
        }
    }

    async fn find_policy_challenge(&mut self, id: &str) -> Result<Option<Challenge>, StoreError> {
        let sql = format!("{SELECT_CHALLENGE} WHERE id = $1");
        let row: Option<ChallengeRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(c)
            .await)?;
        row.map(challenge_from_row).transpose()
    }

    async fn running_policy_challenge(&mut self) -> Result<Option<Challenge>, StoreError> {
        let sql = format!("{SELECT_CHALLENGE} WHERE running = 1");
        let row: Option<ChallengeRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .fetch_optional(c)
            .await)?;
        row.map(challenge_from_row).transpose()
    }

    async fn list_policy_challenges(
        &mut self,
        code: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Challenge>, StoreError> {
        let sql = format!(
            "{SELECT_CHALLENGE} WHERE ($1 IS NULL OR code = $1) \
             ORDER BY started_at_ms DESC, id DESC LIMIT $2"
        );
        let rows: Vec<ChallengeRow> = on_tx!(self, c => sqlx::query_as(&sql)
            .bind(code)
            .bind(i64::from(limit.min(MAX_CHALLENGES)))
            .fetch_all(c)
            .await)?;
        rows.into_iter().map(challenge_from_row).collect()
    }

    async fn insert_challenge_decision(&mut self, d: &ChallengeDecision) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO challenge_decisions (borrower_id, decision_id, challenge_id, \
             champion_code, champion_version, champion_outcome, champion_score, champion_reason, \
             challenger_outcome, challenger_score, challenger_reason, applied, decided_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&d.borrower_id)
        .bind(&d.decision_id)
        .bind(&d.challenge_id)
        .bind(&d.champion.code)
        .bind(i64::from(d.champion.version))
        .bind(&d.champion_side.outcome)
        .bind(d.champion_side.score)
        .bind(&d.champion_side.reason)
        .bind(&d.challenger_side.outcome)
        .bind(d.challenger_side.score)
        .bind(&d.challenger_side.reason)
        .bind(d.applied.as_str())
        .bind(to_ms(d.decided_at))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn challenge_tallies(
        &mut self,
        challenge_id: &str,
        buckets: i64,
    ) -> Result<ChallengeTallies, StoreError> {
        let span: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = on_tx!(self, c => sqlx::query_as(
            "SELECT MIN(champion_score), MAX(champion_score), MIN(challenger_score), \
               MAX(challenger_score) FROM challenge_decisions WHERE challenge_id = $1",
        )
        .bind(challenge_id)
        .fetch_one(c)
        .await)?;
        let lows = [span.0, span.2].into_iter().flatten().min();
        let highs = [span.1, span.3].into_iter().flatten().max();
        let (score_lo, score_width) = match (lows, highs) {
            (Some(lo), Some(hi)) => {
                let range = i128::from(hi) - i128::from(lo) + 1;
                let n = i128::from(buckets.max(1));
                let width = i64::try_from((range + n - 1) / n).unwrap_or(i64::MAX);
                (lo, width.max(1))
            }
            _ => (0, 1),
        };
        type PairRow = (
            String,
            String,
            String,
            i64,
            Option<i64>,
            i64,
            Option<i64>,
            i64,
        );
        let pairs: Vec<PairRow> = on_tx!(self, c => sqlx::query_as(
            "SELECT champion_outcome, challenger_outcome, applied, COUNT(*), \
               CAST(SUM(champion_score) AS BIGINT), COUNT(champion_score), \
               CAST(SUM(challenger_score) AS BIGINT), COUNT(challenger_score) \
             FROM challenge_decisions WHERE challenge_id = $1 \
             GROUP BY champion_outcome, challenger_outcome, applied \
             ORDER BY champion_outcome, challenger_outcome, applied",
        )
        .bind(challenge_id)
        .fetch_all(c)
        .await)?;
        let reasons: Vec<(String, Option<String>, i64)> = on_tx!(self, c => sqlx::query_as(
            "SELECT 'champion', champion_reason, COUNT(*) FROM challenge_decisions \
               WHERE challenge_id = $1 GROUP BY champion_reason \
             UNION ALL \
             SELECT 'challenger', challenger_reason, COUNT(*) FROM challenge_decisions \
               WHERE challenge_id = $1 GROUP BY challenger_reason",
        )
        .bind(challenge_id)
        .fetch_all(c)
        .await)?;
        // Integer division on both databases; every score is at least `score_lo`.
        let scores: Vec<(String, i64, i64)> = on_tx!(self, c => sqlx::query_as(
            "SELECT 'champion', (champion_score - $2) / $3 AS bucket, COUNT(*) \
               FROM challenge_decisions WHERE challenge_id = $1 AND champion_score IS NOT NULL \
               GROUP BY bucket \
             UNION ALL \
             SELECT 'challenger', (challenger_score - $2) / $3 AS bucket, COUNT(*) \
               FROM challenge_decisions WHERE challenge_id = $1 AND challenger_score IS NOT NULL \
               GROUP BY bucket",
        )
        .bind(challenge_id)
        .bind(score_lo)
        .bind(score_width)
        .fetch_all(c)
        .await)?;
        let champions: Vec<(String, i64, i64)> = on_tx!(self, c => sqlx::query_as(
            "SELECT champion_code, champion_version, COUNT(*) FROM challenge_decisions \
             WHERE challenge_id = $1 GROUP BY champion_code, champion_version \
             ORDER BY champion_code, champion_version",
        )
        .bind(challenge_id)
        .fetch_all(c)
        .await)?;
        let mut tallies = ChallengeTallies {
            score_lo,
            score_width,
            ..ChallengeTallies::default()
        };
        for (champion, challenger, applied, n, c_sum, c_n, x_sum, x_n) in pairs {
            tallies.pairs.push(OutcomePair {
                champion,
                challenger,
                applied: side(&applied, DECISIONS)?,
                count: count(n)?,
                champion_score_sum: c_sum.unwrap_or(0),
                champion_scored: count(c_n)?,
                challenger_score_sum: x_sum.unwrap_or(0),
                challenger_scored: count(x_n)?,
            });
        }
        for (who, reason, n) in reasons {
            tallies
                .reasons
                .push((side(&who, DECISIONS)?, reason, count(n)?));
        }
        for (who, bucket, n) in scores {
            tallies
                .scores
                .push((side(&who, DECISIONS)?, bucket, count(n)?));
        }
        for (code, version, n) in champions {
            tallies.champions.push((
                PolicyRef {
                    code,
                    version: u32::try_from(version)
                        .map_err(|e| StoreError::corrupt(DECISIONS, e))?,
                },
                count(n)?,
            ));
        }
        Ok(tallies)
    }
}
