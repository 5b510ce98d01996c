//! What decided an outcome the borrower sees, for the application status, drawdown and credit
//! line views: read from the decision kept, named as the domain says a borrower may read it.

use lendcore_domain::decision::{DecidedBy, Decider};
use lendcore_domain::reasons::Language;
use lendcore_store::{StoredDecision, UnitOfWork};

use super::record::{DecisionRecord, from_stored};
use crate::{Engine, EngineError};

/// Who settled the outcome a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettledBy {
    /// The policy, as the decision recorded.
    Policy,
    /// A person, after the policy referred or held it.
    Person,
}

/// What decided, from a kept decision, in `language`; `None` when nothing in the policy stood
/// in the way (a pass, a line kept) and no person decided.
pub(crate) async fn decider(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    record: &DecisionRecord,
    settled_by: SettledBy,
    language: Language,
) -> Result<Option<Decider>, EngineError> {
    let decided_by = match settled_by {
        SettledBy::Person => Some(DecidedBy::Person),
        SettledBy::Policy => {
            let code = super::policies::stored_code(&record.policy.code)?;
            let compiled = engine
                .policies
                .get(uow, &code, record.policy.version)
                .await?;
            compiled.policy.decided_by(&record.evaluation)
        }
    };
    Ok(decided_by.map(|by| Decider::new(by, record.policy.clone(), record.id.clone(), language)))
}

/// The borrower's latest decision about a subject whose outcome is one of `outcomes`.
pub(crate) async fn latest_about(
    uow: &mut dyn UnitOfWork,
    borrower_id: &str,
    subject_type: &str,
    subject_id: &str,
    outcomes: &[&str],
) -> Result<Option<DecisionRecord>, EngineError> {
    let found: Option<StoredDecision> = uow
        .decisions_about(borrower_id, subject_type, subject_id)
        .await?
        .into_iter()
        .find(|d| outcomes.contains(&d.outcome.as_str()));
    found.map(from_stored).transpose()
}
