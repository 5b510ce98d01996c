//! Credit policies (reference data) and the decisions made under them (a borrower's records:
//! every statement on them names the borrower).

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::borrower::ChangedField;
use lendcore_domain::credit_line::CreditLine;
use lendcore_domain::decision::{Activation, PolicyCode, PolicyDocument, PolicyVersion};
use lendcore_domain::drawdown::Drawdown;

use crate::StoreError;
use crate::pending::{Cell, PendingRows};
use crate::sql::from_row;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::{PENDING_DECISIONS, SqlUnitOfWork};

/// The most policy versions one read returns: policies are few and change rarely.
pub const MAX_POLICY_VERSIONS: u32 = 1000;

/// A decision as kept: what the engine needs to find it, and the record as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDecision {
    pub borrower_id: String,
    pub id: String,
    /// `application`, `drawdown` or `line_review`.
    pub stage: String,
    /// `application`, `drawdown` or `credit_line`.
    pub subject_type: String,
    pub subject_id: String,
    pub policy_code: String,
    pub policy_version: u32,
    pub outcome: String,
    /// The record as JSON text, stored as it was hashed into the audit chain.
    pub record: String,
    pub decided_at: Timestamp,
}

/// The most drawdowns of one borrower a credit decision reads.
pub const MAX_RISK_DRAWDOWNS: i64 = 1000;

/// What a credit decision reads of one borrower, read in one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskRecords {
    /// The borrower's sealed personal record and when they registered; `None` if unknown.
    pub borrower: Option<RiskBorrower>,
    pub lines: Vec<CreditLine>,
    /// Drawdowns on those lines that are running loans, or changed at or after the `since`
    /// asked for (a loan repaid last week after being late is one; quotes, and drawdowns that
    /// ended unconfirmed or refused, are left out), newest first, at most
    /// [`MAX_RISK_DRAWDOWNS`].
    pub drawdowns: Vec<Drawdown>,
    /// Every change of contact or payment details: which, and when.
    pub changes: Vec<(ChangedField, Timestamp)>,
    /// The bureau's latest answer kept: who answered, what, and when.
    pub bureau: Option<(String, serde_json::Value, Timestamp)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RiskBorrower {
    /// Sealed by the engine; opened only when a policy reads age or region.
    pub personal: String,
    pub registered_at: Timestamp,
}

#[async_trait]
pub trait PolicyRepository {
    /// [`StoreError::Duplicate`] if the code is taken.
    async fn insert_credit_policy(
        &mut self,
        code: &PolicyCode,
        by: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// [`StoreError::Duplicate`] if another request added this version number first.
    async fn insert_policy_version(&mut self, version: &PolicyVersion) -> Result<(), StoreError>;

    /// Records the activation of a version not activated before; [`StoreError::Stale`] if
    /// another request activated it meanwhile.
    async fn activate_policy_version(&mut self, version: &PolicyVersion) -> Result<(), StoreError>;

    async fn find_policy_version(
        &mut self,
        code: &PolicyCode,
        version: u32,
    ) -> Result<Option<PolicyVersion>, StoreError>;

    /// Every version of every policy (at most [`MAX_POLICY_VERSIONS`]), by code and version.
    async fn policy_versions(&mut self) -> Result<Vec<PolicyVersion>, StoreError>;

    /// The highest version number of a policy, if it has any.
    async fn latest_policy_version(&mut self, code: &PolicyCode)
    -> Result<Option<u32>, StoreError>;

    /// The code and version in effect at `at`: the activated version with the latest
    /// effective time not after it (one indexed read, for every decision).
    async fn policy_in_effect(
        &mut self,
        at: Timestamp,
    ) -> Result<Option<(PolicyCode, u32)>, StoreError>;
}

#[async_trait]
pub trait DecisionRepository {
    async fn insert_decision(&mut self, decision: &StoredDecision) -> Result<(), StoreError>;

    async fn find_decision(
        &mut self,
        borrower_id: &str,
        id: &str,
    ) -> Result<Option<StoredDecision>, StoreError>;

    /// The borrower's decisions about one subject, newest first.
    async fn decisions_about(
        &mut self,
        borrower_id: &str,
        subject_type: &str,
        subject_id: &str,
    ) -> Result<Vec<StoredDecision>, StoreError>;

    /// Keeps the bureau's latest answer about a borrower (JSON), replacing the one before.
    async fn save_bureau_report(
        &mut self,
        borrower_id: &str,
        bureau: &str,
        inquiry: &serde_json::Value,
        asked_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Everything a credit decision reads of a borrower, in one statement: their record, lines,
    /// the drawdowns that matter since `since`, changes of details and the bureau's answer.
    async fn risk_records(
        &mut self,
        borrower_id: &str,
        since: Timestamp,
    ) -> Result<RiskRecords, StoreError>;

    /// The borrower's latest `limit` decisions, newest first (ids are time-ordered).
    async fn list_decisions(
        &mut self,
        borrower_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDecision>, StoreError>;
}

struct VersionRow {
    code: String,
    version: i64,
    document: String,
    sha256: String,
    authored_by: String,
    authored_at_ms: i64,
    activated_by: Option<String>,
    activated_at_ms: Option<i64>,
    effective_from_ms: Option<i64>,
}
from_row!(VersionRow {
    code,
    version,
    document,
    sha256,
    authored_by,
    authored_at_ms,
    activated_by,
    activated_at_ms,
    effective_from_ms
});

const SELECT_VERSION: &str = "SELECT code, version, document, sha256, authored_by, \
     authored_at_ms, activated_by, activated_at_ms, effective_from_ms FROM credit_policy_versions";

const TABLE: &str = "credit_policy_versions";

fn version_from_row(row: VersionRow) -> Result<PolicyVersion, StoreError> {
    let code = PolicyCode::parse(&row.code).map_err(|e| StoreError::corrupt(TABLE, e))?;
    let document: PolicyDocument =
        serde_json::from_str(&row.document).map_err(|e| StoreError::corrupt(TABLE, e))?;
    let activation = match (
        row.activated_by,
        from_opt_ms(TABLE, row.activated_at_ms)?,
        from_opt_ms(TABLE, row.effective_from_ms)?,
    ) {
        (Some(by), Some(at), Some(effective_from)) => Some(Activation {
            by,
            at,
            effective_from,
        }),
        (None, None, None) => None,
        _ => return Err(StoreError::corrupt(TABLE, "a half-recorded activation")),
    };
    Ok(PolicyVersion {
        code,
        version: u32::try_from(row.version).map_err(|e| StoreError::corrupt(TABLE, e))?,
        document,
        sha256: row.sha256,
        authored_by: row.authored_by,
        authored_at: from_ms(TABLE, row.authored_at_ms)?,
        activation,
    })
}

#[async_trait]
impl PolicyRepository for SqlUnitOfWork {
    async fn insert_credit_policy(
        &mut self,
        code: &PolicyCode,
        by: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "INSERT INTO credit_policies (code, created_by, created_at_ms) VALUES \
                ($1, $2, $3)",
            )
            .bind(code.as_str())
            .bind(by)
            .bind(to_ms(now)),
        )
        .await?;
        Ok(())
    }

    async fn insert_policy_version(&mut self, version: &PolicyVersion) -> Result<(), StoreError> {
        let document = serde_json::to_string(&version.document)
            .map_err(|e| StoreError::InvalidValue(e.to_string()))?;
        self.execute(
            self.sql(
                "INSERT INTO credit_policy_versions (code, version, document, sha256, \
                authored_by, authored_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(version.code.as_str())
            .bind(i64::from(version.version))
            .bind(&document)
            .bind(&version.sha256)
            .bind(&version.authored_by)
            .bind(to_ms(version.authored_at)),
        )
        .await?;
        Ok(())
    }

    async fn activate_policy_version(&mut self, version: &PolicyVersion) -> Result<(), StoreError> {
        let Some(activation) = &version.activation else {
            return Err(StoreError::InvalidValue(
                "activating a version needs its activation".to_owned(),
            ));
        };
        let updated = self
            .execute(
                self.sql(
                    "UPDATE credit_policy_versions SET activated_by = $1, activated_at_ms \
                = $2, effective_from_ms = $3 WHERE code = $4 AND version = $5 AND \
                activated_at_ms IS NULL",
                )
                .bind(&activation.by)
                .bind(to_ms(activation.at))
                .bind(to_ms(activation.effective_from))
                .bind(version.code.as_str())
                .bind(i64::from(version.version)),
            )
            .await?;
        match updated {
            1 => Ok(()),
            _ => Err(StoreError::Stale("policy version")),
        }
    }

    async fn find_policy_version(
        &mut self,
        code: &PolicyCode,
        version: u32,
    ) -> Result<Option<PolicyVersion>, StoreError> {
        let sql = format!("{SELECT_VERSION} WHERE code = $1 AND version = $2");
        let row: Option<VersionRow> = self
            .fetch_optional(self.sql(&sql).bind(code.as_str()).bind(i64::from(version)))
            .await?;
        row.map(version_from_row).transpose()
    }

    async fn policy_versions(&mut self) -> Result<Vec<PolicyVersion>, StoreError> {
        let sql = format!("{SELECT_VERSION} ORDER BY code, version LIMIT $1");
        let rows: Vec<VersionRow> = self
            .fetch_all(self.sql(&sql).bind(i64::from(MAX_POLICY_VERSIONS)))
            .await?;
        rows.into_iter().map(version_from_row).collect()
    }

    async fn latest_policy_version(
        &mut self,
        code: &PolicyCode,
    ) -> Result<Option<u32>, StoreError> {
        let latest: Option<i64> = self
            .fetch_one::<(_,)>(
                self.sql("SELECT MAX(version) FROM credit_policy_versions WHERE code = $1")
                    .bind(code.as_str()),
            )
            .await
            .map(|(v,)| v)?;
        latest
            .map(|v| u32::try_from(v).map_err(|e| StoreError::corrupt(TABLE, e)))
            .transpose()
    }

    async fn policy_in_effect(
        &mut self,
        at: Timestamp,
    ) -> Result<Option<(PolicyCode, u32)>, StoreError> {
        let row: Option<(String, i64)> = self
            .fetch_optional(
                self.sql(
                    "SELECT code, version FROM credit_policy_versions WHERE \
                        effective_from_ms <= $1 ORDER BY effective_from_ms DESC, \
                        activated_at_ms DESC LIMIT 1",
                )
                .bind(to_ms(at)),
            )
            .await?;
        row.map(|(code, version)| {
            Ok((
                PolicyCode::parse(&code).map_err(|e| StoreError::corrupt(TABLE, e))?,
                u32::try_from(version).map_err(|e| StoreError::corrupt(TABLE, e))?,
            ))
        })
        .transpose()
    }
}

struct DecisionRow {
    borrower_id: String,
    id: String,
    stage: String,
    subject_type: String,
    subject_id: String,
    policy_code: String,
    policy_version: i64,
    outcome: String,
    record: String,
    decided_at_ms: i64,
}
from_row!(DecisionRow {
    borrower_id,
    id,
    stage,
    subject_type,
    subject_id,
    policy_code,
    policy_version,
    outcome,
    record,
    decided_at_ms
});

const SELECT_DECISION: &str = "SELECT borrower_id, id, stage, subject_type, subject_id, \
     policy_code, policy_version, outcome, record, decided_at_ms FROM credit_decisions";

fn decision_from_row(row: DecisionRow) -> Result<StoredDecision, StoreError> {
    const TABLE: &str = "credit_decisions";
    Ok(StoredDecision {
        borrower_id: row.borrower_id,
        id: row.id,
        stage: row.stage,
        subject_type: row.subject_type,
        subject_id: row.subject_id,
        policy_code: row.policy_code,
        policy_version: u32::try_from(row.policy_version)
            .map_err(|e| StoreError::corrupt(TABLE, e))?,
        outcome: row.outcome,
        record: row.record,
        decided_at: from_ms(TABLE, row.decided_at_ms)?,
    })
}

#[async_trait]
impl DecisionRepository for SqlUnitOfWork {
    async fn insert_decision(&mut self, decision: &StoredDecision) -> Result<(), StoreError> {
        self.pending[PENDING_DECISIONS].push(vec![
            Cell::Text(decision.borrower_id.clone()),
            Cell::Text(decision.id.clone()),
            Cell::Text(decision.stage.clone()),
            Cell::Text(decision.subject_type.clone()),
            Cell::Text(decision.subject_id.clone()),
            Cell::Text(decision.policy_code.clone()),
            Cell::Number(i64::from(decision.policy_version)),
            Cell::Text(decision.outcome.clone()),
            Cell::Text(decision.record.clone()),
            Cell::Number(to_ms(decision.decided_at)),
        ]);
        Ok(())
    }

    async fn find_decision(
        &mut self,
        borrower_id: &str,
        id: &str,
    ) -> Result<Option<StoredDecision>, StoreError> {
        self.flush_pending().await?;
        let sql = format!("{SELECT_DECISION} WHERE borrower_id = $1 AND id = $2");
        let row: Option<DecisionRow> = self
            .fetch_optional(self.sql(&sql).bind(borrower_id).bind(id))
            .await?;
        row.map(decision_from_row).transpose()
    }

    async fn decisions_about(
        &mut self,
        borrower_id: &str,
        subject_type: &str,
        subject_id: &str,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        self.flush_pending().await?;
        let sql = format!(
            "{SELECT_DECISION} WHERE borrower_id = $1 AND subject_type = $2 AND subject_id = $3 \
             ORDER BY decided_at_ms DESC, id DESC LIMIT 100"
        );
        let rows: Vec<DecisionRow> = self
            .fetch_all(
                self.sql(&sql)
                    .bind(borrower_id)
                    .bind(subject_type)
                    .bind(subject_id),
            )
            .await?;
        rows.into_iter().map(decision_from_row).collect()
    }

    async fn save_bureau_report(
        &mut self,
        borrower_id: &str,
        bureau: &str,
        inquiry: &serde_json::Value,
        asked_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "INSERT INTO bureau_reports (borrower_id, bureau, inquiry, \
                asked_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (borrower_id) DO \
                UPDATE SET bureau = excluded.bureau, inquiry = excluded.inquiry, \
                asked_at_ms = excluded.asked_at_ms WHERE bureau_reports.asked_at_ms \
                <= excluded.asked_at_ms",
            )
            .bind(borrower_id)
            .bind(bureau)
            .bind(inquiry.to_string())
            .bind(to_ms(asked_at)),
        )
        .await?;
        Ok(())
    }

    async fn risk_records(
        &mut self,
        borrower_id: &str,
        since: Timestamp,
    ) -> Result<RiskRecords, StoreError> {
        let rows: Vec<RiskRow> = self
            .fetch_all(
                self.sql(RISK_RECORDS)
                    .bind(borrower_id)
                    .bind(to_ms(since))
                    .bind(MAX_RISK_DRAWDOWNS),
            )
            .await?;
        let mut found = RiskRecords {
            borrower: None,
            lines: Vec::new(),
            drawdowns: Vec::new(),
            changes: Vec::new(),
            bureau: None,
        };
        for row in rows {
            row.add_to(&mut found, borrower_id)?;
        }
        // A union's order is not promised, whatever its parts' order.
        found
            .drawdowns
            .sort_by_key(|d| std::cmp::Reverse(d.created_at));
        Ok(found)
    }

    async fn list_decisions(
        &mut self,
        borrower_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        self.flush_pending().await?;
        let sql = format!("{SELECT_DECISION} WHERE borrower_id = $1 ORDER BY id DESC LIMIT $2");
        let rows: Vec<DecisionRow> = self
            .fetch_all(self.sql(&sql).bind(borrower_id).bind(i64::from(limit)))
            .await?;
        rows.into_iter().map(decision_from_row).collect()
    }
}

/// One statement for everything a decision reads of a borrower (a round trip, or one hand-off
/// to SQLite's worker, instead of five): each part's rows tagged by `kind`, in columns wide
/// enough for the widest (a line). `$drawdowns` selects the drawdowns' `body` and `quote`.
macro_rules! risk_records {
    ($drawdowns:literal) => {
        concat!(
            "SELECT 'line' AS kind, id AS t1, currency AS t2, status AS t3, rate_tier AS t4, \
               limit_minor AS n1, drawn_minor AS n2, held_minor AS n3, valid_from_ms AS n4, \
               valid_until_ms AS n5, revision AS n6, created_at_ms AS n7, updated_at_ms AS n8 \
             FROM credit_lines WHERE borrower_id = $1 \
             UNION ALL \
             SELECT 'drawdown', body, quote, CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
               CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT) \
             FROM (",
            $drawdowns,
            ") AS recent \
             UNION ALL \
             SELECT 'change', field, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
               at_ms, \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT) \
             FROM borrower_changes WHERE borrower_id = $1 \
             UNION ALL \
             SELECT 'bureau', bureau, inquiry, CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
               asked_at_ms, \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT) \
             FROM bureau_reports WHERE borrower_id = $1 \
             UNION ALL \
             SELECT 'borrower', personal, CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
               CAST(NULL AS TEXT), created_at_ms, \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BIGINT) \
             FROM borrowers WHERE id = $1"
        )
    };
}

/// The borrower's drawdowns newest first, straight from the index by borrower and age: no
/// sort and, on SQLite, no temporary table (each one a page allocated and zeroed per decision).
const RISK_RECORDS: &str = risk_records!(
    "SELECT d.body, q.quote FROM drawdowns d \
       LEFT JOIN drawdown_quotes q ON q.borrower_id = d.borrower_id AND q.drawdown_id = d.id \
     WHERE d.borrower_id = $1 \
       AND (d.state = 'active' \
            OR (d.updated_at_ms >= $2 \
                AND d.state <> 'quoted' AND d.state <> 'expired' AND d.state <> 'refused')) \
     ORDER BY d.created_at_ms DESC LIMIT $3"
);

struct RiskRow {
    kind: String,
    t1: Option<String>,
    t2: Option<String>,
    t3: Option<String>,
    t4: Option<String>,
    n1: Option<i64>,
    n2: Option<i64>,
    n3: Option<i64>,
    n4: Option<i64>,
    n5: Option<i64>,
    n6: Option<i64>,
    n7: Option<i64>,
    n8: Option<i64>,
}
crate::sql::from_row!(RiskRow {
    kind,
    t1,
    t2,
    t3,
    t4,
    n1,
    n2,
    n3,
    n4,
    n5,
    n6,
    n7,
    n8
});

impl RiskRow {
    fn add_to(self, found: &mut RiskRecords, borrower_id: &str) -> Result<(), StoreError> {
        fn text<T>(v: Option<T>, table: &'static str) -> Result<T, StoreError> {
            v.ok_or_else(|| StoreError::corrupt(table, "a column that is never null is null"))
        }
        let number = text::<i64>;
        match self.kind.as_str() {
            "line" => {
                const T: &str = "credit_lines";
                found.lines.push(crate::credit_lines::line_from_row(
                    crate::credit_lines::LineRow {
                        id: text(self.t1, T)?,
                        borrower_id: borrower_id.to_owned(),
                        currency: text(self.t2, T)?,
                        status: text(self.t3, T)?,
                        rate_tier: self.t4,
                        limit_minor: number(self.n1, T)?,
                        drawn_minor: number(self.n2, T)?,
                        held_minor: number(self.n3, T)?,
                        valid_from_ms: number(self.n4, T)?,
                        valid_until_ms: number(self.n5, T)?,
                        revision: number(self.n6, T)?,
                        created_at_ms: number(self.n7, T)?,
                        updated_at_ms: number(self.n8, T)?,
                    },
                )?);
            }
            "drawdown" => found.drawdowns.push(
                crate::drawdowns::BodyRow {
                    body: text(self.t1, "drawdowns")?,
                    quote: self.t2,
                }
                .parse()?,
            ),
            "change" => {
                const T: &str = "borrower_changes";
                let field = text(self.t1, T)?;
                let field = crate::borrowers::parse_field(&field)
                    .ok_or_else(|| StoreError::corrupt(T, format!("field {field}")))?;
                found
                    .changes
                    .push((field, from_ms(T, number(self.n1, T)?)?));
            }
            "bureau" => {
                const T: &str = "bureau_reports";
                let inquiry = text(self.t2, T)?;
                found.bureau = Some((
                    text(self.t1, T)?,
                    serde_json::from_str(&inquiry).map_err(|e| StoreError::corrupt(T, e))?,
                    from_ms(T, number(self.n1, T)?)?,
                ));
            }
            "borrower" => {
                const T: &str = "borrowers";
                found.borrower = Some(RiskBorrower {
                    personal: text(self.t1, T)?,
                    registered_at: from_ms(T, number(self.n1, T)?)?,
                });
            }
            other => {
                return Err(StoreError::corrupt(
                    "risk records",
                    format!("unknown part {other}"),
                ));
            }
        }
        Ok(())
    }
}

/// Where decision records wait for their unit of work to commit.
pub(crate) const fn pending_rows() -> PendingRows {
    PendingRows::new(
        "credit_decisions (borrower_id, id, stage, subject_type, subject_id, policy_code, \
         policy_version, outcome, record, decided_at_ms)",
        10,
    )
}
