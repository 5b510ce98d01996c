//! Credentials as the store keeps them: API keys, operators, second factors, sessions, one-time
//! code challenges and failed attempts. The store sees hashes and sealed values only.

use async_trait::async_trait;
use lendcore_domain::Timestamp;

use crate::StoreError;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    pub id: String,
    pub name: String,
    /// SHA-256 of the whole token, hex.
    pub token_hash: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOperator {
    pub id: String,
    pub username: String,
    pub role: String,
    /// argon2id, PHC string.
    pub password_hash: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

/// A time-based second factor. `secret` is sealed for `owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecondFactor {
    /// `operator:{id}` or `borrower:{id}`.
    pub owner: String,
    pub secret: String,
    pub activated_at: Option<Timestamp>,
    /// The last time step a code was accepted for: no code is accepted twice.
    pub last_step: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSubject {
    /// `subject_id` is the blind index of the verified mobile number.
    Borrower,
    /// `subject_id` is the operator's id.
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    Active,
    /// Signed in with the first factor; waits for the second.
    SecondFactor,
}

/// What [`AccessRepository::prune_access`] deletes: what ended before these times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneCutoffs {
    pub sessions: Timestamp,
    pub attempts: Timestamp,
    pub links: Timestamp,
    pub idempotency_keys: Timestamp,
}

/// How many rows one call pruned, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: u64,
    pub codes: u64,
    pub failures: u64,
    pub links: u64,
    pub idempotency_keys: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub id: String,
    pub token_hash: String,
    pub subject: SessionSubject,
    pub subject_id: String,
    pub borrower_id: Option<String>,
    pub stage: SessionStage,
    /// For a session opened from a link: the link's `purpose:subject`, all it may reach.
    pub scope: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    Open,
    Used,
    /// Too many wrong codes: it accepts none any more.
    Exhausted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChallenge {
    pub id: String,
    pub mobile_index: String,
    pub code_hash: String,
    /// Where the request came from (an IP address), for the per-client limit.
    pub client: String,
    pub attempts: i64,
    pub status: ChallengeStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait AccessRepository {
    async fn insert_api_key(&mut self, key: &StoredApiKey) -> Result<(), StoreError>;
    async fn find_api_key_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<StoredApiKey>, StoreError>;
    async fn find_api_key(&mut self, id: &str) -> Result<Option<StoredApiKey>, StoreError>;
    async fn list_api_keys(&mut self) -> Result<Vec<StoredApiKey>, StoreError>;
    /// Revokes a key not revoked yet; false if there was none such.
    async fn revoke_api_key(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError>;

    /// [`StoreError::Duplicate`] if the username is taken.
    async fn insert_operator(&mut self, operator: &StoredOperator) -> Result<(), StoreError>;
    async fn find_operator(&mut self, id: &str) -> Result<Option<StoredOperator>, StoreError>;
    async fn find_operator_by_username(
        &mut self,
        username: &str,
    ) -> Result<Option<StoredOperator>, StoreError>;
    async fn list_operators(&mut self) -> Result<Vec<StoredOperator>, StoreError>;
    async fn disable_operator(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Replaces an enabled operator's password hash; false if there is none such.
    async fn set_operator_password(&mut self, id: &str, hash: &str) -> Result<bool, StoreError>;

    /// Inserts or replaces the owner's second factor.
    async fn put_second_factor(&mut self, factor: &StoredSecondFactor) -> Result<(), StoreError>;
    /// Removes the owner's second factor; false if they had none.
    async fn delete_second_factor(&mut self, owner: &str) -> Result<bool, StoreError>;
    async fn find_second_factor(
        &mut self,
        owner: &str,
    ) -> Result<Option<StoredSecondFactor>, StoreError>;
    /// Accepts a code's time step: activates the factor and moves `last_step` forward, only if
    /// `step` is past it. False if another request used that step (or a later one) first.
    async fn use_second_factor_step(
        &mut self,
        owner: &str,
        step: i64,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    async fn insert_session(&mut self, session: &StoredSession) -> Result<(), StoreError>;
    async fn find_session_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<StoredSession>, StoreError>;
    /// Moves a session waiting for its second factor to active, living until `expires_at`.
    async fn activate_session(
        &mut self,
        id: &str,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn revoke_session(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Revokes every live session that acts as this registered borrower, under whichever
    /// number it was opened; returns how many.
    async fn revoke_sessions_of_borrower(
        &mut self,
        borrower_id: &str,
        at: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Revokes every live session of a subject (an operator disabled); returns how many.
    async fn revoke_sessions_of(
        &mut self,
        subject: SessionSubject,
        subject_id: &str,
        at: Timestamp,
    ) -> Result<u64, StoreError>;

    async fn insert_challenge(&mut self, challenge: &StoredChallenge) -> Result<(), StoreError>;
    async fn find_challenge(&mut self, id: &str) -> Result<Option<StoredChallenge>, StoreError>;
    /// When challenges were created since `since`, for a number or for a client.
    async fn challenge_times(
        &mut self,
        by: ChallengeKey,
        value: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError>;

    /// Counts one attempt at a challenge, atomically: the challenge's code hash and its attempts
    /// now, or `None` if it is not open, is out of attempts (`max`) or has expired.
    async fn count_challenge_attempt(
        &mut self,
        id: &str,
        max: i64,
        now: Timestamp,
    ) -> Result<Option<(String, i64)>, StoreError>;
    /// Moves an open challenge to `status`; false if it was no longer open.
    async fn close_challenge(
        &mut self,
        id: &str,
        status: ChallengeStatus,
    ) -> Result<bool, StoreError>;
    /// Closes every open challenge for a number (a new code replaces them); returns how many.
    async fn close_challenges_of(&mut self, mobile_index: &str) -> Result<u64, StoreError>;
    /// Forgets a challenge whose code was never sent, so it counts against no limit.
    async fn delete_challenge(&mut self, id: &str) -> Result<(), StoreError>;
    /// Challenges created since `since`, whoever asked: the budget across all numbers.
    async fn challenges_since(&mut self, since: Timestamp) -> Result<i64, StoreError>;
    /// Serialises this transaction with any other taking the same `key` until both end
    /// (PostgreSQL: a transaction advisory lock; SQLite: its single writer already does).
    async fn serialise_on(&mut self, key: &str) -> Result<(), StoreError>;

    /// Deletes, at most `batch` of each, the leftovers nothing needs any more: sessions that
    /// ended before `cutoffs.sessions`, sign-in codes and failed attempts from before
    /// `cutoffs.attempts`, links that expired before `cutoffs.links`, idempotency keys claimed
    /// before `cutoffs.idempotency_keys`.
    async fn prune_access(
        &mut self,
        cutoffs: &PruneCutoffs,
        batch: u32,
    ) -> Result<Pruned, StoreError>;

    async fn record_auth_failure(
        &mut self,
        kind: &str,
        subject: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Forgets the recorded attempts of one kind and subject (a success clears its own).
    async fn clear_auth_failures(&mut self, kind: &str, subject: &str) -> Result<(), StoreError>;
    async fn auth_failure_times(
        &mut self,
        kind: &str,
        subject: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKey {
    Mobile,
    Client,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    name: String,
    token_hash: String,
    scopes: String,
    created_by: String,
    created_at_ms: i64,
    revoked_at_ms: Option<i64>,
}

impl ApiKeyRow {
    fn into_key(self) -> Result<StoredApiKey, StoreError> {
        const T: &str = "api_keys";
        Ok(StoredApiKey {
            created_at: from_ms(T, self.created_at_ms)?,
            revoked_at: from_opt_ms(T, self.revoked_at_ms)?,
            id: self.id,
            name: self.name,
            token_hash: self.token_hash,
            scopes: self.scopes,
            created_by: self.created_by,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OperatorRow {
    id: String,
    username: String,
    role: String,
    password_hash: String,
    created_by: String,
    created_at_ms: i64,
    disabled_at_ms: Option<i64>,
}

impl OperatorRow {
    fn into_operator(self) -> Result<StoredOperator, StoreError> {
        const T: &str = "operators";
        Ok(StoredOperator {
            created_at: from_ms(T, self.created_at_ms)?,
            disabled_at: from_opt_ms(T, self.disabled_at_ms)?,
            id: self.id,
            username: self.username,
            role: self.role,
            password_hash: self.password_hash,
            created_by: self.created_by,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SecondFactorRow {
    owner: String,
    secret: String,
    activated_at_ms: Option<i64>,
    last_step: i64,
    created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    token_hash: String,
    subject_type: String,
    subject_id: String,
    borrower_id: Option<String>,
    stage: String,
    scope: Option<String>,
    created_at_ms: i64,
    expires_at_ms: i64,
    revoked_at_ms: Option<i64>,
}

impl SessionRow {
    fn into_session(self) -> Result<StoredSession, StoreError> {
        const T: &str = "sessions";
        let subject = match self.subject_type.as_str() {
            "borrower" => SessionSubject::Borrower,
            "operator" => SessionSubject::Operator,
            other => return Err(StoreError::corrupt(T, format!("subject_type {other}"))),
        };
        let stage = match self.stage.as_str() {
            "active" => SessionStage::Active,
            "second_factor" => SessionStage::SecondFactor,
            other => return Err(StoreError::corrupt(T, format!("stage {other}"))),
        };
        Ok(StoredSession {
            subject,
            stage,
            created_at: from_ms(T, self.created_at_ms)?,
            expires_at: from_ms(T, self.expires_at_ms)?,
            revoked_at: from_opt_ms(T, self.revoked_at_ms)?,
            id: self.id,
            token_hash: self.token_hash,
            subject_id: self.subject_id,
            borrower_id: self.borrower_id,
            scope: self.scope,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ChallengeRow {
    id: String,
    mobile_index: String,
    code_hash: String,
    client: String,
    attempts: i64,
    status: String,
    created_at_ms: i64,
    expires_at_ms: i64,
}

fn subject_str(subject: SessionSubject) -> &'static str {
    match subject {
        SessionSubject::Borrower => "borrower",
        SessionSubject::Operator => "operator",
    }
}

fn stage_str(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::Active => "active",
        SessionStage::SecondFactor => "second_factor",
    }
}

fn status_str(status: ChallengeStatus) -> &'static str {
    match status {
        ChallengeStatus::Open => "open",
        ChallengeStatus::Used => "used",
        ChallengeStatus::Exhausted => "exhausted",
    }
}

const API_KEY_SELECT: &str = "SELECT id, name, token_hash, scopes, created_by, created_at_ms, \
     revoked_at_ms FROM api_keys";
const OPERATOR_SELECT: &str = "SELECT id, username, role, password_hash, created_by, \
     created_at_ms, disabled_at_ms FROM operators";
const SESSION_SELECT: &str = "SELECT id, token_hash, subject_type, subject_id, borrower_id, \
     stage, scope, created_at_ms, expires_at_ms, revoked_at_ms FROM sessions";

#[async_trait]
impl AccessRepository for SqlUnitOfWork {
    async fn insert_api_key(&mut self, k: &StoredApiKey) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO api_keys (id, name, token_hash, scopes, created_by, created_at_ms, \
             revoked_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.token_hash)
        .bind(&k.scopes)
        .bind(&k.created_by)
        .bind(to_ms(k.created_at))
        .bind(k.revoked_at.map(to_ms))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn find_api_key_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<StoredApiKey>, StoreError> {
        let sql = format!("{API_KEY_SELECT} WHERE token_hash = $1");
        let row: Option<ApiKeyRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(token_hash).fetch_optional(c).await)?;
        row.map(ApiKeyRow::into_key).transpose()
    }

    async fn find_api_key(&mut self, id: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let sql = format!("{API_KEY_SELECT} WHERE id = $1");
        let row: Option<ApiKeyRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
        row.map(ApiKeyRow::into_key).transpose()
    }

    async fn list_api_keys(&mut self) -> Result<Vec<StoredApiKey>, StoreError> {
        let sql = format!("{API_KEY_SELECT} ORDER BY created_at_ms, id");
        let rows: Vec<ApiKeyRow> = on_tx!(self, c => sqlx::query_as(&sql).fetch_all(c).await)?;
        rows.into_iter().map(ApiKeyRow::into_key).collect()
    }

    async fn revoke_api_key(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(to_ms(at))
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn insert_operator(&mut self, o: &StoredOperator) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO operators (id, username, role, password_hash, created_by, \
             created_at_ms, disabled_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&o.id)
        .bind(&o.username)
        .bind(&o.role)
        .bind(&o.password_hash)
        .bind(&o.created_by)
        .bind(to_ms(o.created_at))
        .bind(o.disabled_at.map(to_ms))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn find_operator(&mut self, id: &str) -> Result<Option<StoredOperator>, StoreError> {
        let sql = format!("{OPERATOR_SELECT} WHERE id = $1");
        let row: Option<OperatorRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
        row.map(OperatorRow::into_operator).transpose()
    }

    async fn find_operator_by_username(
        &mut self,
        username: &str,
    ) -> Result<Option<StoredOperator>, StoreError> {
        let sql = format!("{OPERATOR_SELECT} WHERE username = $1");
        let row: Option<OperatorRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(username).fetch_optional(c).await)?;
        row.map(OperatorRow::into_operator).transpose()
    }

    async fn list_operators(&mut self) -> Result<Vec<StoredOperator>, StoreError> {
        let sql = format!("{OPERATOR_SELECT} ORDER BY username");
        let rows: Vec<OperatorRow> = on_tx!(self, c => sqlx::query_as(&sql).fetch_all(c).await)?;
        rows.into_iter().map(OperatorRow::into_operator).collect()
    }

    async fn disable_operator(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE operators SET disabled_at_ms = $1 WHERE id = $2 AND disabled_at_ms IS NULL",
        )
        .bind(to_ms(at))
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn revoke_sessions_of_borrower(
        &mut self,
        borrower_id: &str,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        on_tx!(self, c => sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE borrower_id = $2 \
             AND revoked_at_ms IS NULL",
        )
        .bind(to_ms(at))
        .bind(borrower_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)
    }

    async fn set_operator_password(&mut self, id: &str, hash: &str) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE operators SET password_hash = $1 WHERE id = $2 AND disabled_at_ms IS NULL",
        )
        .bind(hash)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn delete_second_factor(&mut self, owner: &str) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query("DELETE FROM second_factors WHERE owner = $1")
            .bind(owner)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn put_second_factor(&mut self, f: &StoredSecondFactor) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO second_factors (owner, secret, activated_at_ms, last_step, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (owner) DO UPDATE SET secret = excluded.secret, \
             activated_at_ms = excluded.activated_at_ms, last_step = excluded.last_step, \
             created_at_ms = excluded.created_at_ms",
        )
        .bind(&f.owner)
        .bind(&f.secret)
        .bind(f.activated_at.map(to_ms))
        .bind(f.last_step)
        .bind(to_ms(f.created_at))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn find_second_factor(
        &mut self,
        owner: &str,
    ) -> Result<Option<StoredSecondFactor>, StoreError> {
        let row: Option<SecondFactorRow> = on_tx!(self, c => sqlx::query_as(
            "SELECT owner, secret, activated_at_ms, last_step, created_at_ms \
             FROM second_factors WHERE owner = $1",
        )
        .bind(owner)
        .fetch_optional(c)
        .await)?;
        row.map(|r| {
            const T: &str = "second_factors";
            Ok(StoredSecondFactor {
                activated_at: from_opt_ms(T, r.activated_at_ms)?,
                created_at: from_ms(T, r.created_at_ms)?,
                owner: r.owner,
                secret: r.secret,
                last_step: r.last_step,
            })
        })
        .transpose()
    }

    async fn use_second_factor_step(
        &mut self,
        owner: &str,
        step: i64,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE second_factors SET last_step = $1, \
             activated_at_ms = COALESCE(activated_at_ms, $2) \
             WHERE owner = $3 AND last_step < $1",
        )
        .bind(step)
        .bind(to_ms(at))
        .bind(owner)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn insert_session(&mut self, s: &StoredSession) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO sessions (id, token_hash, subject_type, subject_id, borrower_id, \
             stage, created_at_ms, expires_at_ms, revoked_at_ms, scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&s.id)
        .bind(&s.token_hash)
        .bind(subject_str(s.subject))
        .bind(&s.subject_id)
        .bind(s.borrower_id.as_deref())
        .bind(stage_str(s.stage))
        .bind(to_ms(s.created_at))
        .bind(to_ms(s.expires_at))
        .bind(s.revoked_at.map(to_ms))
        .bind(s.scope.as_deref())
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn find_session_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        let sql = format!("{SESSION_SELECT} WHERE token_hash = $1");
        let row: Option<SessionRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(token_hash).fetch_optional(c).await)?;
        row.map(SessionRow::into_session).transpose()
    }

    async fn activate_session(
        &mut self,
        id: &str,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE sessions SET stage = 'active', expires_at_ms = $1 WHERE id = $2 \
             AND stage = 'second_factor' AND revoked_at_ms IS NULL",
        )
        .bind(to_ms(expires_at))
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn revoke_session(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(to_ms(at))
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn revoke_sessions_of(
        &mut self,
        subject: SessionSubject,
        subject_id: &str,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE subject_type = $2 AND \
             subject_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(to_ms(at))
        .bind(subject_str(subject))
        .bind(subject_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n)
    }

    async fn insert_challenge(&mut self, ch: &StoredChallenge) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO otp_challenges (id, mobile_index, code_hash, client, attempts, status, \
             created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&ch.id)
        .bind(&ch.mobile_index)
        .bind(&ch.code_hash)
        .bind(&ch.client)
        .bind(ch.attempts)
        .bind(status_str(ch.status))
        .bind(to_ms(ch.created_at))
        .bind(to_ms(ch.expires_at))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn find_challenge(&mut self, id: &str) -> Result<Option<StoredChallenge>, StoreError> {
        let row: Option<ChallengeRow> = on_tx!(self, c => sqlx::query_as(
            "SELECT id, mobile_index, code_hash, client, attempts, status, created_at_ms, \
             expires_at_ms FROM otp_challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await)?;
        row.map(|r| {
            const T: &str = "otp_challenges";
            let status = [
                ChallengeStatus::Open,
                ChallengeStatus::Used,
                ChallengeStatus::Exhausted,
            ]
            .into_iter()
            .find(|s| status_str(*s) == r.status)
            .ok_or_else(|| StoreError::corrupt(T, format!("status {}", r.status)))?;
            Ok(StoredChallenge {
                status,
                created_at: from_ms(T, r.created_at_ms)?,
                expires_at: from_ms(T, r.expires_at_ms)?,
                id: r.id,
                mobile_index: r.mobile_index,
                code_hash: r.code_hash,
                client: r.client,
                attempts: r.attempts,
            })
        })
        .transpose()
    }

    async fn challenge_times(
        &mut self,
        by: ChallengeKey,
        value: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let column = match by {
            ChallengeKey::Mobile => "mobile_index",
            ChallengeKey::Client => "client",
        };
        let sql = format!(
            "SELECT created_at_ms FROM otp_challenges WHERE {column} = $1 AND created_at_ms > $2"
        );
        let times: Vec<i64> = on_tx!(self, c => sqlx::query_scalar(&sql)
            .bind(value)
            .bind(to_ms(since))
            .fetch_all(c)
            .await)?;
        times
            .into_iter()
            .map(|ms| from_ms("otp_challenges", ms))
            .collect()
    }

    async fn count_challenge_attempt(
        &mut self,
        id: &str,
        max: i64,
        now: Timestamp,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row: Option<(String, i64)> = on_tx!(self, c => sqlx::query_as(
            "UPDATE otp_challenges SET attempts = attempts + 1 \
             WHERE id = $1 AND status = 'open' AND attempts < $2 AND expires_at_ms > $3 \
             RETURNING code_hash, attempts",
        )
        .bind(id)
        .bind(max)
        .bind(to_ms(now))
        .fetch_optional(c)
        .await)?;
        Ok(row)
    }

    async fn close_challenge(
        &mut self,
        id: &str,
        status: ChallengeStatus,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE otp_challenges SET status = $1 WHERE id = $2 AND status = 'open'",
        )
        .bind(status_str(status))
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn close_challenges_of(&mut self, mobile_index: &str) -> Result<u64, StoreError> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE otp_challenges SET status = 'exhausted' WHERE mobile_index = $1 AND status = 'open'",
        )
        .bind(mobile_index)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n)
    }

    async fn delete_challenge(&mut self, id: &str) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query("DELETE FROM otp_challenges WHERE id = $1")
            .bind(id)
            .execute(c)
            .await
            .map(drop))?;
        Ok(())
    }

    async fn challenges_since(&mut self, since: Timestamp) -> Result<i64, StoreError> {
        let n: i64 = on_tx!(self, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM otp_challenges WHERE created_at_ms > $1",
        )
        .bind(to_ms(since))
        .fetch_one(c)
        .await)?;
        Ok(n)
    }

    async fn prune_access(
        &mut self,
        cutoffs: &PruneCutoffs,
        batch: u32,
    ) -> Result<Pruned, StoreError> {
        let limit = i64::from(batch);
        // (table, key, time column, cutoff): each pruned by its key, a batch at a time.
        let mut batches = [
            ("sessions", "id", "expires_at_ms", cutoffs.sessions, 0),
            ("otp_challenges", "id", "created_at_ms", cutoffs.attempts, 0),
            ("links", "nonce", "expires_at_ms", cutoffs.links, 0),
        ];
        for (table, key, column, cutoff, deleted) in &mut batches {
            let sql = format!(
                "DELETE FROM {table} WHERE {key} IN \
                 (SELECT {key} FROM {table} WHERE {column} < $1 LIMIT $2)"
            );
            *deleted = on_tx!(self, c => sqlx::query(&sql)
                .bind(to_ms(*cutoff))
                .bind(limit)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        let [(.., sessions), (.., codes), (.., links)] = batches;
        let idempotency_keys = on_tx!(self, c => sqlx::query(
            "DELETE FROM idempotency_keys WHERE (scope, idem_key) IN \
             (SELECT scope, idem_key FROM idempotency_keys WHERE created_at_ms < $1 LIMIT $2)",
        )
        .bind(to_ms(cutoffs.idempotency_keys))
        .bind(limit)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        // Failures have no key of their own; at most a few hours' worth are old at a time.
        let failures = on_tx!(self, c => sqlx::query("DELETE FROM auth_failures WHERE at_ms < $1")
            .bind(to_ms(cutoffs.attempts))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(Pruned {
            sessions,
            codes,
            failures,
            links,
            idempotency_keys,
        })
    }

    async fn serialise_on(&mut self, key: &str) -> Result<(), StoreError> {
        if self.backend() == crate::Backend::Postgres {
            // Per schema, as the sealer's lock is: advisory locks are the whole database's.
            on_tx!(self, c => sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':' || $1))",
            )
                .bind(key)
                .execute(c)
                .await
                .map(drop))?;
        }
        Ok(())
    }

    async fn clear_auth_failures(&mut self, kind: &str, subject: &str) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query("DELETE FROM auth_failures WHERE kind = $1 AND subject = $2")
            .bind(kind)
            .bind(subject)
            .execute(c)
            .await
            .map(drop))?;
        Ok(())
    }

    async fn record_auth_failure(
        &mut self,
        kind: &str,
        subject: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO auth_failures (kind, subject, at_ms) VALUES ($1, $2, $3)",
        )
        .bind(kind)
        .bind(subject)
        .bind(to_ms(at))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn auth_failure_times(
        &mut self,
        kind: &str,
        subject: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let times: Vec<i64> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT at_ms FROM auth_failures WHERE kind = $1 AND subject = $2 AND at_ms > $3",
        )
        .bind(kind)
        .bind(subject)
        .bind(to_ms(since))
        .fetch_all(c)
        .await)?;
        times
            .into_iter()
            .map(|ms| from_ms("auth_failures", ms))
            .collect()
    }
}
