//! Credit decisions (`domain/src/decision`): policy versions authored by one person and
//! activated by another (`policies.rs`); features from the application, lendcore's records of
//! the borrower and the credit bureau (`features.rs`); every decision kept as a record in the
//! borrower's records with its digest in the audit chain, and replayable (`record.rs`).
//! Applications being assessed are decided here (`application.rs`), a running challenger beside
//! the champion for its share of borrowers (`challenges.rs`); what decided an outcome,
//! as the borrower's views name it, is read back in `explain.rs`. A policy not yet live is tried
//! on past applications in `simulate.rs`.

mod application;
mod challenges;
mod drawdown;
mod explain;
mod features;
mod policies;
mod record;
mod review;
mod simulate;

pub(crate) use application::schedule as schedule_application_decision;
pub use application::{DecideHandler, decide as decide_application};
pub use challenges::{
    Comparison, OutcomePairView, ScoreBucket, SideSummary, VersionCount, comparison,
    end as end_challenge, get as get_challenge, list as list_challenges, start as start_challenge,
};
pub(crate) use drawdown::{Checked, check as check_drawdown, keep as keep_check};
pub(crate) use explain::{SettledBy, decider, latest_about};
pub(crate) use policies::PolicyCache;
pub use policies::{
    ImportedPolicy, PolicyCheck, PolicyVersionView, activate, author, check, features, get,
    import_jdm, list,
};
pub use record::{
    BesideDecision, BureauCall, DecisionRecord, DecisionSubject, Replay, Timings,
    get as get_decision, list as list_decisions, of_application, replay,
};
pub(crate) use record::{POLICY_ACTOR, from_stored};
pub(crate) use review::schedule as schedule_line_review;
pub use review::{LineReviewHandler, NOTICE as REVIEW_NOTICE, ReviewApplyHandler};
pub use simulate::{
    Applications, BadRate, Difference, Differences, MAX_DIFFERENCES_OVER_HTTP, MAX_ROWS_OVER_HTTP,
    PolicySource, ScoreCounts, SimulatedPolicy, Simulation, SimulationRequest, decide, document_of,
    simulate,
};
