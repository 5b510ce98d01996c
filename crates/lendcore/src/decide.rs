//! `lendcore decide replay BORROWER/DECISION`: a recorded credit decision evaluated again
//! from its recorded inputs under the policy version it names, printed beside the original;
//! the exit status says whether they agree.

use std::sync::Arc;

use anyhow::Context;
use lendcore_engine::{Engine, SystemClock};

use crate::config::Config;

/// Replays one decision; `true` when the answer is the one recorded.
pub async fn replay(config: &Config, reference: &str) -> anyhow::Result<bool> {
    let Some((borrower_id, decision_id)) = reference.split_once('/') else {
        anyhow::bail!(
            "name the decision as BORROWER/DECISION (its borrower's id, a slash, its id), \
             as GET /v1/borrowers/{{id}}/decisions lists them"
        );
    };
    let store = crate::serve::open_existing_store(config).await?;
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    let replay = lendcore_engine::decisions::replay(&engine, borrower_id, decision_id)
        .await
        .with_context(|| format!("replaying decision {reference}"))?;
    println!(
        "decision {decision_id} of borrower {borrower_id}, policy {} version {}",
        replay.policy.code, replay.policy.version
    );
    let outcome = |e: &lendcore_domain::decision::Evaluation| {
        let codes: Vec<&str> = e.reasons.iter().map(|r| r.code()).collect();
        format!("{} [{}]", e.outcome.name(), codes.join(", "))
    };
    println!("recorded  {}", outcome(&replay.recorded));
    println!("replayed  {}", outcome(&replay.replayed));
    if replay.same {
        println!("the same answer");
    } else {
        println!("DIFFERENT:");
        for difference in &replay.differences {
            println!("  {difference}");
        }
    }
    store.close().await;
    Ok(replay.same)
}
