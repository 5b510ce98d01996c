//! Deciding an application being assessed: under the policy version it was submitted under
//! (or the one in effect, if none was then), on features from the form, the borrower's records
//! and the bureau. The bureau is asked outside any transaction; the outcome, the record and
//! the announcement are written in one.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use lendcore_connectors::bureau::{BureauSubject, Inquiry};
use lendcore_domain::Timestamp;
use lendcore_domain::application::{Application, ApplicationStatus, Assessment, Offer};
use lendcore_domain::decision::{
    BureauStatus, Feature, FeatureSource, Features, Outcome, Side, Stage,
};
use lendcore_store::{Job, NewJob, StoreError, UnitOfWork};

use super::challenges;
use super::features;
use super::policies::CompiledVersion;
use super::record::{self, BureauCall, DecisionRecord, DecisionSubject, Timings};
use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::{Engine, EngineError, new_id};

/// How long after verification the safety-net job decides an application the request did
/// not (its process stopped, the database was busy): long enough that it rarely races the
/// request, short enough that nobody waits long.
const SAFETY_NET_DELAY_SECS: i64 = 60;

/// Queues the decision of an application just put to assessment, in the same unit of work.
pub(crate) async fn schedule(
    uow: &mut dyn UnitOfWork,
    app: &Application,
    now: Timestamp,
) -> Result<(), EngineError> {
    uow.enqueue_job_once(
        &NewJob {
            id: format!("application:{}:decide", app.id),
            kind: kinds::DECIDE_APPLICATION.to_owned(),
            payload: serde_json::json!({ "application_id": app.id }),
            run_at: now + chrono::Duration::seconds(SAFETY_NET_DELAY_SECS),
            max_attempts: 5,
        },
        now,
    )
    .await?;
    Ok(())
}

/// What deciding found to write.
enum Decided {
    /// No policy is in effect: a person decides.
    NoPolicy,
    Record(Box<DecisionRecord>),
}

/// Decides the application if it is being assessed, and returns it as it then stands.
pub async fn decide(engine: &Engine, application_id: &str) -> Result<Application, EngineError> {
    let started = Instant::now();
    let now = engine.clock.now();
    let mut uow = engine.store.begin_read().await?;
    let Some((app, sealed)) = uow.find_application(application_id).await? else {
        return Err(EngineError::not_found(
            "not_found.application",
            "no application with that id",
        ));
    };
    if app.status != ApplicationStatus::Assessing {
        return Ok(app);
    }
    let Some(borrower_id) = app.borrower_id.clone() else {
        return Err(EngineError::Internal(format!(
            "application {application_id} is assessed without a borrower"
        )));
    };
    let compiled = match &app.policy {
        Some(pinned) => Some(
            engine
                .policies
                .get(
                    uow.as_mut(),
                    &super::policies::stored_code(&pinned.code)?,
                    pinned.version,
                )
                .await?,
        ),
        None => engine.policies.in_effect(uow.as_mut(), now).await?,
    };
    let decided = match compiled {
        None => {
            drop(uow);
            Decided::NoPolicy
        }
        Some(compiled) => {
            let form = crate::applications::open_form(engine, &sealed, &app.id)?;
            let records = features::read_records(uow.as_mut(), &borrower_id, now).await?;
            if records.borrower.is_none() {
                return Err(EngineError::Internal(format!(
                    "borrower {borrower_id} of {application_id} is gone"
                )));
            }
            let today = features::business_date(now);
            let mut found = Features::default();
            features::set_form(&mut found, &form, today);
            features::set_applications(&mut found, uow.as_mut(), &app.owner, now).await?;
            features::set_records(&mut found, &records, now);
            let contender =
                challenges::contender(engine, uow.as_mut(), &compiled, &borrower_id).await?;
            drop(uow);
            let features_us = elapsed_us(started);

            let decision_id = new_id();
            // What either policy reads is loaded, asked and recorded: both decide on the same.
            let mut read = compiled.policy.features_read(Stage::Application).clone();
            if let Some((_, challenger)) = &contender {
                read.extend(challenger.policy.features_read(Stage::Application));
            }
            let reads_bureau = |c: &CompiledVersion| {
                c.policy
                    .features_read(Stage::Application)
                    .iter()
                    .any(|f| f.definition().source == FeatureSource::Bureau)
            };
            // Only the decision the borrower gets may cost them an inquiry at the bureau.
            let applied = match &contender {
                Some((challenge, challenger)) if challenge.applied_side() == Side::Challenger => {
                    challenger.as_ref()
                }
                Some(_) | None => compiled.as_ref(),
            };
            let asked = Instant::now();
            let bureau = if reads_bureau(applied) {
                let inquiry = match &engine.bureau {
                    Some(bureau) => {
                        let subject = BureauSubject {
                            reference: decision_id.clone(),
                            name: form.name.clone().unwrap_or_default(),
                            resident_id: form.resident_id.clone().unwrap_or_default(),
                        };
                        (bureau.name().to_owned(), bureau.inquire(&subject).await)
                    }
                    None => (
                        "none".to_owned(),
                        Inquiry::Unavailable {
                            detail: "no credit bureau is configured".to_owned(),
                        },
                    ),
                };
                if let Inquiry::Unavailable { detail } = &inquiry.1 {
                    tracing::warn!(application = %application_id, bureau = %inquiry.0, %detail,
                        "the credit bureau did not answer; the policy says what happens");
                }
                features::set_bureau(&mut found, &inquiry.1);
                Some(BureauCall {
                    bureau: inquiry.0,
                    inquiry: inquiry.1,
                    elapsed_ms: u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX),
                })
            } else {
                None
            };
            let bureau_us = elapsed_us(asked);
            // Each policy is told of the bureau as it concerns it: one that reads none was not
            // asked; one that reads it while the bureau was not asked for it (a challenger
            // beside the decision applied) decides as when the bureau does not answer.
            let status = |c: &CompiledVersion| match (reads_bureau(c), &bureau) {
                (false, _) => BureauStatus::NotAsked,
                (
                    true,
                    None
                    | Some(BureauCall {
                        inquiry: Inquiry::Unavailable { .. },
                        ..
                    }),
                ) => BureauStatus::Unavailable,
                (true, Some(_)) => BureauStatus::Answered,
            };
            let evaluating = Instant::now();
            let evaluation = compiled
                .policy
                .decide(Stage::Application, &found, status(&compiled));
            let (policy, policy_sha256, evaluation, beside) = match &contender {
                None => (
                    challenges::policy_of(&compiled),
                    compiled.version.sha256.clone(),
                    evaluation,
                    None,
                ),
                Some((challenge, challenger)) => {
                    let theirs =
                        challenger
                            .policy
                            .decide(Stage::Application, &found, status(challenger));
                    let (policy, sha256, applied, beside) = challenges::settle(
                        challenge,
                        challenges::Decision {
                            compiled: &compiled,
                            evaluation,
                        },
                        challenges::Decision {
                            compiled: challenger,
                            evaluation: theirs,
                        },
                    );
                    (policy, sha256, applied, Some(beside))
                }
            };
            let evaluate_us = elapsed_us(evaluating);
            Decided::Record(Box::new(DecisionRecord {
                id: decision_id,
                borrower_id: borrower_id.clone(),
                subject: DecisionSubject {
                    kind: "application".to_owned(),
                    id: app.id.clone(),
                },
                policy,
                policy_sha256,
                inputs: serde_json::json!({
                    "requested_limit_minor": form.requested_limit_minor,
                    "monthly_income_minor": form.monthly_income_minor,
                    "age_years": found.get(Feature::AgeYears),
                    "region": found.get(Feature::Region),
                }),
                features: found.snapshot(&read),
                bureau,
                evaluation,
                beside,
                timings: Timings {
                    features_us,
                    bureau_us,
                    evaluate_us,
                },
                decided_at: now,
            }))
        }
    };
    write(engine, application_id, app.revision, decided).await
}

fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What the application becomes.
fn assessment(record: &DecisionRecord) -> Assessment {
    let evaluation = &record.evaluation;
    let because = |what: &str| {
        let mut note = format!(
            "{what} by credit policy {} version {}",
            record.policy.code, record.policy.version
        );
        if let Some(score) = &evaluation.score {
            note.push_str(&format!(", score {}", score.value));
        }
        if let Some(bureau) = record::bureau_note(&evaluation.bureau) {
            note.push_str(&format!("; {bureau}"));
        }
        for explained in &evaluation.explanation {
            note.push_str(&format!(
                "; {}: {}",
                explained.reason.code(),
                explained.because
            ));
        }
        note
    };
    match &evaluation.outcome {
        Outcome::Approve(terms) => Assessment::Approve(Offer {
            limit_minor: terms.limit_minor,
            currency: terms.currency.clone(),
            valid_days: terms.valid_days,
            rate_tier: terms.rate_tier.clone(),
        }),
        Outcome::Decline => Assessment::Decline(evaluation.reasons.clone()),
        Outcome::RequestDocuments => Assessment::RequestDocuments(evaluation.reasons.clone()),
        Outcome::Refer => Assessment::Refer(because("referred to an underwriter")),
        // Not outcomes of an application decision; a person looks rather than guess.
        Outcome::Pass
        | Outcome::Hold
        | Outcome::Keep
        | Outcome::Freeze
        | Outcome::Unfreeze
        | Outcome::Decrease { .. }
        | Outcome::Increase { .. } => Assessment::Refer(because("referred (unexpected outcome)")),
    }
}

/// Writes the outcome, if the application still stands as it was read.
async fn write(
    engine: &Engine,
    application_id: &str,
    read: i64,
    decided: Decided,
) -> Result<Application, EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let Some((mut app, _)) = uow.find_application(application_id).await? else {
        return Err(EngineError::Internal(format!(
            "application {application_id} vanished while decided"
        )));
    };
    if app.status != ApplicationStatus::Assessing || app.revision != read {
        // Decided by another worker meanwhile (the request and its safety net raced).
        return Ok(app);
    }
    let (assessment, decision_id) = match &decided {
        Decided::NoPolicy => (
            Assessment::Refer("no credit policy is in effect: an underwriter decides".to_owned()),
            None,
        ),
        Decided::Record(record) => (assessment(record), Some(record.id.clone())),
    };
    app.assessed(assessment, decision_id, now)
        .map_err(crate::applications::state_error)?;
    app.revision += 1;
    match uow.update_application(&app, None, read).await {
        Err(StoreError::Stale(_)) => {
            drop(uow);
            let mut again = engine.store.begin_read().await?;
            return again
                .find_application(application_id)
                .await?
                .map(|(a, _)| a)
                .ok_or_else(|| EngineError::Internal("application vanished".to_owned()));
        }
        other => other?,
    }
    if let Decided::Record(record) = &decided {
        record::keep(uow.as_mut(), record).await?;
        // What the bureau answered serves this borrower's drawdown checks and reviews.
        if let Some(call) = &record.bureau
            && !matches!(call.inquiry, Inquiry::Unavailable { .. })
        {
            let answer = serde_json::to_value(&call.inquiry)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            uow.save_bureau_report(
                &record.borrower_id,
                &call.bureau,
                &answer,
                record.decided_at,
            )
            .await?;
        }
    }
    crate::applications::announce(uow.as_mut(), &app, now).await?;
    uow.commit().await?;
    Ok(app)
}

/// The safety net: decides an application the verifying request did not; when its attempts
/// run out, a person decides it.
pub struct DecideHandler {
    engine: Arc<Engine>,
}

impl DecideHandler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl JobHandler for DecideHandler {
    fn kind(&self) -> &'static str {
        kinds::DECIDE_APPLICATION
    }

    async fn run(&self, job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let Some(id) = job.payload["application_id"].as_str() else {
            return Err(JobFailure::permanent("malformed decision job"));
        };
        match decide(&self.engine, id).await {
            Ok(_) => Ok(JobDone::Succeeded),
            Err(EngineError::NotFound { .. }) => Err(JobFailure::permanent(format!(
                "application {id} does not exist"
            ))),
            Err(e) => Err(JobFailure::retryable(e.to_string())),
        }
    }

    async fn dead_lettered(
        &self,
        store: &dyn lendcore_store::Store,
        job: &Job,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(id) = job.payload["application_id"].as_str() else {
            return Ok(());
        };
        let mut uow = store.begin().await?;
        let Some((mut app, _)) = uow.find_application(id).await? else {
            return Ok(());
        };
        if app.status != ApplicationStatus::Assessing {
            return Ok(());
        }
        let read = app.revision;
        app.assessed(
            Assessment::Refer(
                "the automatic decision failed repeatedly: an underwriter decides".to_owned(),
            ),
            None,
            now,
        )
        .map_err(crate::applications::state_error)?;
        app.revision += 1;
        uow.update_application(&app, None, read).await?;
        tracing::error!(application = %id, "automatic credit decision failed for good; referred to an underwriter");
        crate::applications::announce(uow.as_mut(), &app, now).await?;
        Ok(uow.commit().await?)
    }
}
