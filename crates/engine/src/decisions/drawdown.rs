//! The risk check of a drawdown, at the quote and again at the confirmation, under the policy
//! version in effect at the quote: overdue installments, velocity, exposure, an unusual
//! amount, a large drawdown soon after a change of details, each a rule of the policy.

use std::time::Instant;

use lendcore_domain::Timestamp;
use lendcore_domain::credit_line::CreditLine;
use lendcore_domain::decision::{
    Feature, FeatureSource, Features, Outcome, PolicyRef, Stage, Value, Warning,
};
use lendcore_domain::drawdown::{Drawdown, RiskCheck};
use lendcore_store::UnitOfWork;

use super::features;
use super::record::{self, DecisionRecord, DecisionSubject, Timings};
use crate::{Engine, EngineError, new_id};

/// What the check found: what it means for the drawdown, the record to keep (none without a
/// policy in effect), and the version it ran under.
pub(crate) struct Checked {
    pub check: RiskCheck,
    pub record: Option<DecisionRecord>,
    pub policy: Option<PolicyRef>,
    pub warnings: Vec<Warning>,
    /// What is overdue now, for a refusal that asks the borrower to repay it.
    pub overdue_minor: i64,
    /// The drawdown's line as the check read it with the borrower's records, when it read them.
    pub line: Option<CreditLine>,
}

/// Checks `drawdown` under the version it was quoted under (or the one in effect now, for a
/// quote), reading the borrower's records in `uow`.
pub(crate) async fn check(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    drawdown: &Drawdown,
    now: Timestamp,
) -> Result<Checked, EngineError> {
    let compiled = match &drawdown.risk_policy {
        Some(pinned) => Some(
            engine
                .policies
                .get(
                    uow,
                    &super::policies::stored_code(&pinned.code)?,
                    pinned.version,
                )
                .await?,
        ),
        None => engine.policies.in_effect(uow, now).await?,
    };
    let Some(compiled) = compiled else {
        return Ok(Checked {
            check: RiskCheck::Pass,
            record: None,
            policy: None,
            warnings: Vec::new(),
            overdue_minor: 0,
            line: None,
        });
    };
    let started = Instant::now();
    let read = compiled.policy.features_read(Stage::Drawdown);
    let mut found = Features::default();
    let mut line = None;
    found.set_number(Feature::AmountMinor, drawdown.amount_minor);
    found.set_number(
        Feature::TermMonths,
        drawdown.quote.schedule.installments.len() as i64,
    );
    let _ = found.set(
        Feature::Product,
        Value::Text(drawdown.product_code.as_str().to_owned()),
    );
    let reads_identity = read.contains(&Feature::AgeYears) || read.contains(&Feature::Region);
    if reads_identity
        || read
            .iter()
            .any(|f| f.definition().source != FeatureSource::Application)
    {
        let records = features::read_records(uow, &drawdown.borrower_id, now).await?;
        if reads_identity {
            let today = features::business_date(now);
            features::set_borrower_identity(
                &mut found,
                engine,
                &drawdown.borrower_id,
                &records,
                today,
            )?;
        }
        let mine = features::set_records(&mut found, &records, now);
        if let Some(largest) = mine.largest_drawdown_minor {
            let ratio = i128::from(drawdown.amount_minor) * 100 / i128::from(largest);
            found.set_number(
                Feature::AmountVersusUsualPercent,
                i64::try_from(ratio).unwrap_or(i64::MAX),
            );
        }
        features::set_stored_bureau(&mut found, &records, &drawdown.borrower_id, now)?;
        line = records
            .lines
            .into_iter()
            .find(|line| line.id == drawdown.line_id);
        let figure = |feature| match found.get(feature) {
            Some(Value::Number(n)) => *n,
            _ => 0,
        };
        let exposure = figure(Feature::DrawnMinor)
            .saturating_add(drawdown.amount_minor)
            .saturating_add(figure(Feature::BureauExposureMinor));
        found.set_number(Feature::TotalExposureMinor, exposure);
    }
    let features_us = elapsed_us(started);
    let evaluating = Instant::now();
    let evaluation = compiled.policy.decide(
        Stage::Drawdown,
        &found,
        lendcore_domain::decision::BureauStatus::NotAsked,
    );
    let evaluate_us = elapsed_us(evaluating);
    let first_reason = || {
        evaluation
            .reasons
            .first()
            .copied()
            .unwrap_or(lendcore_domain::reasons::Reason::RiskContactUs)
    };
    let check = match &evaluation.outcome {
        Outcome::Decline => RiskCheck::Decline(first_reason()),
        Outcome::Hold => RiskCheck::Hold(first_reason()),
        Outcome::Pass => RiskCheck::Pass,
        // Not outcomes of a drawdown check (validation keeps them out): a person looks.
        Outcome::Approve(_)
        | Outcome::Refer
        | Outcome::RequestDocuments
        | Outcome::Keep
        | Outcome::Freeze
        | Outcome::Unfreeze
        | Outcome::Decrease { .. }
        | Outcome::Increase { .. } => {
            RiskCheck::Hold(lendcore_domain::reasons::Reason::RiskContactUs)
        }
    };
    let overdue_minor = match found.get(Feature::OverdueMinor) {
        Some(Value::Number(n)) => *n,
        _ => 0,
    };
    let policy = PolicyRef {
        code: compiled.version.code.as_str().to_owned(),
        version: compiled.version.version,
    };
    let warnings = evaluation.warnings.clone();
    let record = DecisionRecord {
        id: new_id(),
        borrower_id: drawdown.borrower_id.clone(),
        subject: DecisionSubject {
            kind: "drawdown".to_owned(),
            id: drawdown.id.clone(),
        },
        policy: policy.clone(),
        policy_sha256: compiled.version.sha256.clone(),
        inputs: serde_json::json!({
            "line_id": drawdown.line_id,
            "amount_minor": drawdown.amount_minor,
            "currency": drawdown.currency,
            "product": drawdown.product_code,
            "installments": drawdown.quote.schedule.installments.len(),
        }),
        features: found.snapshot(read),
        bureau: None,
        evaluation,
        beside: None,
        timings: Timings {
            features_us,
            bureau_us: 0,
            evaluate_us,
        },
        decided_at: now,
    };
    Ok(Checked {
        check,
        record: Some(record),
        policy: Some(policy),
        warnings,
        overdue_minor,
        line,
    })
}

/// Keeps the record of a check, if there is one, in `uow`.
pub(crate) async fn keep(uow: &mut dyn UnitOfWork, checked: &Checked) -> Result<(), EngineError> {
    match &checked.record {
        Some(record) => record::keep(uow, record).await,
        None => Ok(()),
    }
}

fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
