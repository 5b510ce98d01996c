//! Is the book sound? What `lendcore verify` checks after a restore (or at any time, on either
//! store): the audit chain, every journal entry balanced, every line within its limit with its
//! drawn and held amounts explained by its loans and drawdowns, every drawdown in flight with
//! the job that moves it on, and every decision record as its audit entry's digest says. The checks read one snapshot, so a database that is serving
//! is checked as it stood at one instant; the audit chain is walked in pages beside it.

use lendcore_store::{Store, UnitOfWork};
use sha2::{Digest, Sha256};

use crate::EngineError;
use crate::audit::{self, Verification};

/// Ids named per check at most: enough to start from, never a flood.
pub const NAMED_PER_CHECK: u32 = 20;

/// One rule of the book and what breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A stable name, e.g. `lines_within_limit`.
    pub name: &'static str,
    /// What holds when nothing is named.
    pub rule: &'static str,
    /// What breaks it, by id (at most [`NAMED_PER_CHECK`]).
    pub broken_by: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct IntegrityReport {
    pub audit: Verification,
    pub checks: Vec<Check>,
}

impl IntegrityReport {
    pub fn sound(&self) -> bool {
        self.audit.broken.is_none() && self.checks.iter().all(|c| c.broken_by.is_empty())
    }
}

pub async fn verify(store: &dyn Store) -> Result<IntegrityReport, EngineError> {
    let audit = audit::verify(store, None, |_| Ok(())).await?;
    let mut uow = store.begin_read().await?;
    let mut unbalanced = uow.unbalanced_entries().await?;
    unbalanced.truncate(NAMED_PER_CHECK as usize);
    let checks = vec![
        Check {
            name: "journal_entries_balanced",
            rule: "every journal entry's debits equal its credits, per currency",
            broken_by: unbalanced,
        },
        Check {
            name: "lines_within_limit",
            rule: "no line has negative amounts or more drawn and held than its limit",
            broken_by: uow.overdrawn_lines(NAMED_PER_CHECK).await?,
        },
        Check {
            name: "holds_explained",
            rule: "a line's held amount is the sum of its drawdowns holding money",
            broken_by: uow.lines_with_unexplained_holds(NAMED_PER_CHECK).await?,
        },
        Check {
            name: "drawn_equals_ledger",
            rule: "a line's drawn amount is the principal its loans owe in the posted ledger",
            broken_by: uow.lines_drawn_unlike_their_ledger(NAMED_PER_CHECK).await?,
        },
        Check {
            name: "drawdowns_in_flight_have_a_job",
            rule: "every drawdown disbursing, queued for maintenance or held for review has the \
                   job that moves it on",
            broken_by: uow
                .drawdowns_in_flight_without_a_job(NAMED_PER_CHECK)
                .await?,
        },
        Check {
            name: "decisions_match_the_audit_chain",
            rule: "every decision record hashes to the digest its audit entry keeps",
            broken_by: decisions_unlike_their_digest(uow.as_mut()).await?,
        },
    ];
    Ok(IntegrityReport { audit, checks })
}

/// Sets the gauges `/metrics` shows of the last check this process ran: what breaks each rule
/// (at most [`NAMED_PER_CHECK`], 0 when it holds; the audit chain 0 or 1) and when it ran.
pub fn record_gauges(report: &IntegrityReport, at: lendcore_domain::Timestamp) {
    metrics::gauge!("lendcore_integrity_broken", "check" => "audit_chain").set(
        if report.audit.broken.is_some() {
            1.0
        } else {
            0.0
        },
    );
    for check in &report.checks {
        metrics::gauge!("lendcore_integrity_broken", "check" => check.name)
            .set(check.broken_by.len() as f64);
    }
    metrics::gauge!("lendcore_integrity_checked_timestamp_seconds").set(at.timestamp() as f64);
}

/// Decisions read a page at a time; at most [`NAMED_PER_CHECK`] named, as `borrower/decision`.
async fn decisions_unlike_their_digest(
    uow: &mut dyn UnitOfWork,
) -> Result<Vec<String>, EngineError> {
    const PAGE: u32 = 500;
    let mut broken = Vec::new();
    let mut after = (String::new(), String::new());
    loop {
        let page = uow
            .decisions_with_digests((&after.0, &after.1), PAGE)
            .await?;
        for decision in &page {
            let digest = hex::encode(Sha256::digest(decision.record.as_bytes()));
            if decision.record_sha256.as_deref() != Some(digest.as_str()) {
                broken.push(format!("{}/{}", decision.borrower_id, decision.id));
                if broken.len() >= NAMED_PER_CHECK as usize {
                    return Ok(broken);
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => {
                after = (last.borrower_id.clone(), last.id.clone());
            }
            _ => return Ok(broken),
        }
    }
}
