//! GoRules' engine set up on the model, as both the parity test and the bench use it.

use std::sync::Arc;

use lendcore_jdm_parity::MODEL;
use zen_engine::model::DecisionContent;
use zen_engine::{Decision, DecisionEngine};

/// The model loaded into zen-engine and compiled (its decision-table indexes and expression
/// cache built): its fastest form.
pub fn zen_decision() -> Decision {
    let content: DecisionContent = serde_json::from_str(MODEL).expect("zen-engine reads the model");
    let mut decision = DecisionEngine::default()
        .create_decision(Arc::new(content))
        .expect("a graph model");
    decision.compile();
    decision
}

/// The single-threaded runtime zen-engine's asynchronous API runs on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}
