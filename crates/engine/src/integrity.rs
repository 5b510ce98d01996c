//! Is the book sound? What `lendcore verify` checks after a restore (or at any time, on either
//! store): the audit chain, every journal entry balanced, every line within its limit with its
//! drawn and held amounts explained by its loans and drawdowns, and every drawdown in flight
//! with the job that moves it on. The checks read one snapshot, so a database that is serving
//! is checked as it stood at one instant; the audit chain is walked in pages beside it.

use lendcore_store::Store;

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
    ];
    Ok(IntegrityReport { audit, checks })
}
