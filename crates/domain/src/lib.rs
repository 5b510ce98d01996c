//! The pure lending domain. Everything here is deterministic: no I/O, no async, no clock of its
//! own (callers pass `now`), no randomness of its own (callers pass the jitter sample).

pub mod access;
pub mod alerting;
pub mod allocation;
pub mod application;
pub mod apr;
pub mod audit;
pub mod borrower;
pub mod calendar;
pub mod case;
pub mod credit_line;
pub mod decision;
pub mod drawdown;
pub mod identity;
pub mod ids;
pub mod incident;
pub mod jobs;
pub mod ledger;
pub mod links;
pub mod maintenance;
pub mod money;
pub mod product;
pub mod quote;
pub mod reasons;
pub mod rounding;
pub mod schedule;
pub mod servicing;
pub mod topic;
pub mod validation;

/// Wall-clock instants are UTC everywhere; business dates come later with their own type.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Instants are kept to the millisecond, the precision both stores hold, so what a caller is
/// told equals what a later read returns. Finer digits a client sends are dropped here.
pub fn to_millis(at: Timestamp) -> Timestamp {
    Timestamp::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}
