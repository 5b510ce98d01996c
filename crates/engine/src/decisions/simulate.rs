//! Backtests (#14): what a credit policy would have done to a file of past applications,
//! beside another policy: approval rate, the mix of outcomes and of reasons, the scores, with a
//! target column the bad rate by outcome and by band, and the applicants the two decide
//! differently. Decided by the same domain code as live decisions, at the application stage;
//! each column named as a feature (docs/POLICY.md) is that feature, the rest are ignored.
//! `lendcore policy simulate` prints it; `POST /v1/policies/simulate` answers it to the console.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use lendcore_domain::decision::{
    BureauStatus, Evaluation, Feature, FeatureSource, FeatureType, Features, Policy, PolicyCode,
    PolicyDocument, Stage, Value,
};
use lendcore_domain::validation::{Collector, Violations};
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError};

/// Rows of a CSV sent over HTTP; a file that size already takes seconds to decide twice.
pub const MAX_ROWS_OVER_HTTP: usize = 100_000;
/// Applicants decided differently listed in an answer over HTTP; the count is always whole.
pub const MAX_DIFFERENCES_OVER_HTTP: usize = 1_000;
/// Wrong cells reported before reading stops: enough to see the pattern, not a file's worth.
const MAX_CELL_PROBLEMS: usize = 20;
/// Rows decided between two looks at whether the caller is still waiting.
const ROWS_BETWEEN_CHECKS: usize = 1_000;
/// Score buckets of the side-by-side distribution.
const SCORE_BUCKETS: i64 = 20;

/// Past applications as features, with each one's outcome when a target column is named.
#[derive(Debug)]
pub struct Applications {
    features: Vec<Features>,
    /// Whether each applicant turned out bad, when a target column is named.
    bad: Option<Vec<bool>>,
    /// Whether the file gives any of the bureau's features.
    bureau: bool,
    /// The features the file has a column for.
    given: Vec<Feature>,
    notes: Vec<String>,
}

impl Applications {
    /// Reads a CSV whose first line names the columns. Every cell that is not what its feature
    /// takes is reported (up to a few), with its row counted from 1 after the header.
    pub fn read(
        csv: impl Read,
        target: Option<&str>,
        bad_value: &str,
        max_rows: usize,
    ) -> Result<Self, Violations> {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(csv);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| unreadable(&e))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let target_at = match target {
            Some(t) => Some(header.iter().position(|h| h == t).ok_or_else(|| {
                Violations::single(
                    "target",
                    "simulate.no_target_column",
                    format!("the applications have no column {t}"),
                )
            })?),
            None => None,
        };
        let columns: Vec<(usize, Feature)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Feature::parse(h).map(|f| (i, f)))
            .filter(|(_, f)| f.is_known_at(Stage::Application))
            .collect();
        if columns.is_empty() {
            return Err(Violations::single(
                "applications",
                "simulate.no_feature_columns",
                "no column is a feature known at application (GET /v1/features lists them)",
            ));
        }
        let bureau = columns
            .iter()
            .any(|(_, f)| f.definition().source == FeatureSource::Bureau);
        let (mut features, mut bad) = (Vec::new(), Vec::new());
        if target.is_none() && bad_value != "bad" {
            return Err(Violations::single(
                "bad",
                "simulate.bad_without_target",
                "bad names the target's value for a bad outcome: name the target column too",
            ));
        }
        let mut problems = Collector::default();
        let mut counted = 0;
        for (n, record) in reader.records().enumerate() {
            let row = n + 1;
            if row > max_rows {
                return Err(Violations::single(
                    "applications",
                    "simulate.too_many_rows",
                    format!("at most {max_rows} applications at a time"),
                ));
            }
            let record = record.map_err(|e| unreadable(&e))?;
            let mut applicant = Features::default();
            for (i, feature) in &columns {
                let cell = record.get(*i).map(str::trim).unwrap_or_default();
                if cell.is_empty() {
                    continue;
                }
                let set = cell_value(*feature, cell).and_then(|v| {
                    applicant
                        .set(*feature, v)
                        .map_err(|e| format!("{}: {}", e.feature, e.problem))
                });
                if let Err(why) = set {
                    if counted == MAX_CELL_PROBLEMS {
                        problems.add(
                            "applications",
                            "simulate.too_many_bad_cells",
                            format!(
                                "more than {MAX_CELL_PROBLEMS} wrong cells: reading stopped at \
                                 record {row}"
                            ),
                        );
                        return Err(problems.finish(None::<()>).unwrap_err());
                    }
                    counted += 1;
                    problems.add(
                        format!("applications[{row}].{}", feature.name()),
                        "simulate.bad_cell",
                        format!("record {row}: {why}"),
                    );
                }
            }
            features.push(applicant);
            if let Some(t) = target_at {
                bad.push(record.get(t).map(str::trim) == Some(bad_value));
            }
        }
        problems.finish(Some(()))?;
        let mut notes = Vec::new();
        if let Some(t) = target
            && !bad.is_empty()
            && !bad.iter().any(|b| *b)
        {
            notes.push(format!(
                "no applicant's {t} is {bad_value:?}: every bad rate is 0 (is that the value the \
                 file uses for a bad outcome?)"
            ));
        }
        Ok(Applications {
            features,
            bad: target_at.map(|_| bad),
            bureau,
            given: columns.iter().map(|(_, f)| *f).collect(),
            notes,
        })
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }
}

fn unreadable(e: &csv::Error) -> Violations {
    Violations::single(
        "applications",
        "simulate.unreadable_csv",
        format!("the applications are not a CSV lendcore can read: {e}"),
    )
}

fn cell_value(feature: Feature, cell: &str) -> Result<Value, String> {
    match feature.definition().kind {
        FeatureType::Number => cell
            .parse()
            .map(Value::Number)
            .map_err(|_| format!("{} must be a whole number, not {cell:?}", feature.name())),
        FeatureType::Flag => match cell {
            "true" | "1" | "yes" => Ok(Value::Flag(true)),
            "false" | "0" | "no" => Ok(Value::Flag(false)),
            other => Err(format!(
                "{} must be true or false, not {other:?}",
                feature.name()
            )),
        },
        FeatureType::Text => Ok(Value::Text(cell.to_owned())),
    }
}

/// A policy to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// A document not yet authored, named as the caller likes.
    Document {
        name: String,
        document: PolicyDocument,
    },
    /// An authored version.
    Version {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        code: PolicyCode,
        version: u32,
    },
    /// The version in effect now.
    Live,
}

/// What the policies did to the applications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Simulation {
    pub applications: u64,
    /// Applicants the target column names bad, when one is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_applicants: Option<u64>,
    /// The policy simulated first, then the one it is compared with.
    pub policies: Vec<SimulatedPolicy>,
    /// The scores each policy gave, in buckets of equal width: one count per policy.
    pub scores: Vec<ScoreCounts>,
    /// The applicants the two policies decide differently, when there are two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differences: Option<Differences>,
    /// What the analyst should know to read the figures (a feature the file lacks).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimulatedPolicy {
    /// The document's given name, or `code@version`.
    pub name: String,
    /// Decisions by outcome (`approve`, `decline`, `refer`, `request_documents`).
    pub outcomes: BTreeMap<String, u64>,
    /// Approvals as a share of the applications, 0 to 1.
    pub approval_rate: f64,
    /// Decisions giving each reason (a decision gives up to four).
    pub reasons: BTreeMap<String, u64>,
    /// The 10th, 50th and 90th percentile of the scores given, when any was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_percentiles: Option<[i64; 3]>,
    /// With a target column: the bad rate of each outcome, then of each band.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_rates: Vec<BadRate>,
    /// Features the policy reads that the file has no column for: decided as missing.
    pub absent_features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BadRate {
    /// An outcome (`approve`), or a band (`band 3`).
    pub group: String,
    pub applicants: u64,
    pub bad: u64,
    /// `bad / applicants`.
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreCounts {
    /// Scores from `from` to `to`, both included.
    pub from: i64,
    pub to: i64,
    /// Applicants scored in the bucket, per policy in the order of `policies`.
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Differences {
    /// Applicants decided differently, all of them.
    pub count: u64,
    /// The first of them, up to the limit asked for.
    pub rows: Vec<Difference>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Difference {
    /// The applicant's row in the file, counted from 1 after the header.
    pub row: u64,
    /// Each policy's outcome, in the order of `policies`.
    pub outcomes: Vec<String>,
    /// Each policy's reasons.
    pub reasons: Vec<Vec<String>>,
}

/// A backtest asked for over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimulationRequest {
    /// The policy to try.
    pub policy: PolicySource,
    /// What to compare it with: `live`, an authored version, or another document.
    #[serde(default)]
    pub against: Option<PolicySource>,
    /// Past applications as CSV, at most 100,000 rows: the first line names the columns; a
    /// column named as a feature known at application is that feature, the rest are ignored;
    /// an empty cell is a missing value.
    pub applications: String,
    /// The column saying how each applicant turned out, for bad rates.
    #[serde(default)]
    pub target: Option<String>,
    /// The target's value for a bad outcome (`bad` if omitted).
    #[serde(default)]
    pub bad: Option<String>,
}

/// Simulates the request's policy, beside the one it names to compare with, listing at most
/// [`MAX_DIFFERENCES_OVER_HTTP`] applicants decided differently.
pub async fn simulate(
    engine: &Engine,
    request: SimulationRequest,
) -> Result<Simulation, EngineError> {
    let _running = engine.backtests.try_acquire().map_err(|_| {
        EngineError::Unavailable("a backtest is running; retry when it has ended".to_owned())
    })?;
    let mut compiled = Vec::new();
    let sources = std::iter::once(("policy", request.policy))
        .chain(request.against.map(|against| ("against", against)));
    for (field, source) in sources {
        let given = matches!(source, PolicySource::Document { .. });
        let (name, document) = document_of(engine, source).await?;
        // A stored version validated when it was authored: only a document given can be wrong.
        let policy = Policy::compile(document).map_err(|v| {
            if given {
                EngineError::Invalid(v.within(&format!("{field}.document.document")))
            } else {
                EngineError::Internal(format!("stored policy {name} no longer validates: {v}"))
            }
        })?;
        compiled.push((name, policy));
    }
    // A caller gone (a client closed, the request deadline passed) stops the work too.
    let waiting = CallerWaiting::default();
    let still_waiting = waiting.flag();
    // Reading and deciding a large file takes a while: off the threads serving requests.
    tokio::task::spawn_blocking(move || -> Result<Option<Simulation>, EngineError> {
        let bad = request.bad.as_deref().unwrap_or("bad");
        let applications = Applications::read(
            request.applications.as_bytes(),
            request.target.as_deref(),
            bad,
            MAX_ROWS_OVER_HTTP,
        )?;
        Ok(decide_while(
            &applications,
            &compiled,
            MAX_DIFFERENCES_OVER_HTTP,
            &still_waiting,
        ))
    })
    .await
    .map_err(|e| EngineError::Internal(format!("simulation stopped: {e}")))??
    .ok_or_else(|| EngineError::Internal("a backtest stopped with its caller waiting".to_owned()))
}

/// True while the future that made it is alive: dropped with a request, it stops the
/// blocking work that request started.
#[derive(Default)]
struct CallerWaiting(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CallerWaiting {
    fn flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        std::sync::Arc::clone(&self.0)
    }
}

impl Drop for CallerWaiting {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The name and document of a policy to simulate.
pub async fn document_of(
    engine: &Engine,
    source: PolicySource,
) -> Result<(String, PolicyDocument), EngineError> {
    let (code, version) = match source {
        PolicySource::Document { name, document } => return Ok((name, document)),
        PolicySource::Version { code, version } => (code, version),
        PolicySource::Live => {
            let mut uow = engine.store.begin_read().await?;
            uow.policy_in_effect(engine.clock.now())
                .await?
                .ok_or_else(|| {
                    EngineError::not_found(
                        "not_found.policy_in_effect",
                        "no policy is in effect to compare with",
                    )
                })?
        }
    };
    let found = super::get(engine, &code, version).await?;
    let document = found.document.ok_or_else(|| {
        EngineError::Internal(format!(
            "policy {code} version {version} without its document"
        ))
    })?;
    Ok((format!("{code}@{version}"), document))
}

/// Decides every application under each policy and sums it up. Pure: the console's answer
/// and the command line's table come from the same figures.
pub fn decide(
    applications: &Applications,
    policies: &[(String, Policy)],
    max_differences: usize,
) -> Simulation {
    let always = std::sync::atomic::AtomicBool::new(true);
    decide_while(applications, policies, max_differences, &always)
        .unwrap_or_else(|| unreachable!("nobody stops a backtest that nobody can cancel"))
}

/// [`decide`], stopping with `None` once `waiting` turns false.
fn decide_while(
    applications: &Applications,
    policies: &[(String, Policy)],
    max_differences: usize,
    waiting: &std::sync::atomic::AtomicBool,
) -> Option<Simulation> {
    let mut notes = applications.notes.clone();
    let mut runs: Vec<Vec<Evaluation>> = Vec::with_capacity(policies.len());
    for (_, policy) in policies {
        let bureau = bureau_status(policy, applications);
        let mut run = Vec::with_capacity(applications.len());
        for chunk in applications.features.chunks(ROWS_BETWEEN_CHECKS) {
            if !waiting.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            run.extend(
                chunk
                    .iter()
                    .map(|f| policy.decide(Stage::Application, f, bureau)),
            );
        }
        runs.push(run);
    }
    let n = applications.len() as u64;
    let summaries = policies
        .iter()
        .zip(&runs)
        .map(|((name, policy), evaluations)| {
            let absent: Vec<String> = policy
                .features_read(Stage::Application)
                .iter()
                .filter(|f| !applications.given.contains(f))
                .map(|f| f.name().to_owned())
                .collect();
            if !absent.is_empty() {
                // A policy may treat missing quite unlike any real value.
                notes.push(format!(
                    "{name} reads {}, which the file does not give: decided as missing",
                    absent.join(", ")
                ));
            }
            summarise(name, evaluations, applications.bad.as_deref(), absent, n)
        })
        .collect();
    let differences = match runs.as_slice() {
        [first, second] => {
            let mut differences = Differences {
                count: 0,
                rows: Vec::new(),
            };
            for (i, (a, b)) in first.iter().zip(second).enumerate() {
                if a.outcome.name() == b.outcome.name() {
                    continue;
                }
                differences.count += 1;
                if differences.rows.len() < max_differences {
                    differences.rows.push(Difference {
                        row: i as u64 + 1,
                        outcomes: vec![a.outcome.name().to_owned(), b.outcome.name().to_owned()],
                        reasons: vec![reason_codes(a), reason_codes(b)],
                    });
                }
            }
            Some(differences)
        }
        _ => None,
    };
    Some(Simulation {
        applications: n,
        bad_applicants: applications
            .bad
            .as_ref()
            .map(|b| b.iter().filter(|b| **b).count() as u64),
        policies: summaries,
        scores: score_counts(&runs),
        differences,
        notes,
    })
}

/// How the bureau is taken: answered when the file gives its features, as when it does not
/// answer when the file has none of them.
fn bureau_status(policy: &Policy, applications: &Applications) -> BureauStatus {
    let reads_bureau = policy
        .features_read(Stage::Application)
        .iter()
        .any(|f| f.definition().source == FeatureSource::Bureau);
    match (reads_bureau, applications.bureau) {
        (false, _) => BureauStatus::NotAsked,
        (true, true) => BureauStatus::Answered,
        (true, false) => BureauStatus::Unavailable,
    }
}

fn reason_codes(e: &Evaluation) -> Vec<String> {
    e.reasons.iter().map(|r| r.code().to_owned()).collect()
}

fn summarise(
    name: &str,
    evaluations: &[Evaluation],
    bad: Option<&[bool]>,
    absent_features: Vec<String>,
    n: u64,
) -> SimulatedPolicy {
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for e in evaluations {
        *outcomes.entry(e.outcome.name().to_owned()).or_default() += 1;
        for r in &e.reasons {
            *reasons.entry(r.code().to_owned()).or_default() += 1;
        }
    }
    let approved = outcomes.get("approve").copied().unwrap_or(0);
    let mut scores: Vec<i64> = evaluations
        .iter()
        .filter_map(|e| e.score.as_ref().map(|s| s.value))
        .collect();
    scores.sort_unstable();
    // Nearest rank: the lowest score at or below which at least `q` of the scores lie.
    let at = |q: f64| {
        let rank = (scores.len() as f64 * q).ceil() as usize;
        scores[rank.clamp(1, scores.len()) - 1]
    };
    let score_percentiles = (!scores.is_empty()).then(|| [at(0.1), at(0.5), at(0.9)]);
    let bad_rates = match bad {
        Some(bad) => {
            let bands: BTreeSet<u32> = evaluations.iter().filter_map(|e| e.band).collect();
            outcomes
                .keys()
                .map(|o| bad_rate(o.clone(), evaluations, bad, |e| e.outcome.name() == o))
                .chain(bands.into_iter().map(|band| {
                    bad_rate(format!("band {band}"), evaluations, bad, |e| {
                        e.band == Some(band)
                    })
                }))
                .collect()
        }
        None => Vec::new(),
    };
    SimulatedPolicy {
        name: name.to_owned(),
        outcomes,
        approval_rate: if n == 0 {
            0.0
        } else {
            approved as f64 / n as f64
        },
        reasons,
        score_percentiles,
        bad_rates,
        absent_features,
    }
}

/// The bad rate of the decisions `select` picks.
fn bad_rate(
    group: String,
    evaluations: &[Evaluation],
    bad: &[bool],
    select: impl Fn(&Evaluation) -> bool,
) -> BadRate {
    let (mut applicants, mut bads) = (0u64, 0u64);
    for (_, is_bad) in evaluations.iter().zip(bad).filter(|(e, _)| select(e)) {
        applicants += 1;
        bads += u64::from(*is_bad);
    }
    BadRate {
        group,
        applicants,
        bad: bads,
        rate: if applicants == 0 {
            0.0
        } else {
            bads as f64 / applicants as f64
        },
    }
}

/// Every policy's scores over one set of buckets of equal width, so they can be drawn side by
/// side.
fn score_counts(runs: &[Vec<Evaluation>]) -> Vec<ScoreCounts> {
    let all = || {
        runs.iter()
            .flatten()
            .filter_map(|e| e.score.as_ref().map(|s| s.value))
    };
    let (Some(lo), Some(hi)) = (all().min(), all().max()) else {
        return Vec::new();
    };
    // Rounded up: at most SCORE_BUCKETS buckets cover lo..=hi.
    let width = (hi - lo + SCORE_BUCKETS) / SCORE_BUCKETS;
    let mut buckets: Vec<ScoreCounts> = (0..=(hi - lo) / width)
        .map(|k| ScoreCounts {
            from: lo + k * width,
            to: lo + (k + 1) * width - 1,
            counts: vec![0; runs.len()],
        })
        .collect();
    for (p, run) in runs.iter().enumerate() {
        for score in run.iter().filter_map(|e| e.score.as_ref().map(|s| s.value)) {
            buckets[((score - lo) / width) as usize].counts[p] += 1;
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use lendcore_domain::decision::DEFAULT_POLICY;

    fn default_policy() -> Policy {
        Policy::compile(serde_json::from_str(DEFAULT_POLICY).unwrap()).unwrap()
    }

    /// A number feature known at application, with its range.
    fn number_feature() -> (Feature, (i64, i64)) {
        Feature::ALL
            .iter()
            .find_map(|f| {
                let d = f.definition();
                (f.is_known_at(Stage::Application) && d.kind == FeatureType::Number)
                    .then(|| (*f, d.range.unwrap_or((0, 1_000_000))))
            })
            .unwrap()
    }

    #[test]
    fn every_wrong_cell_is_reported_with_its_row_and_column() {
        let (feature, (lo, hi)) = number_feature();
        let name = feature.name();
        let csv = format!("{name},outcome\n{lo},good\nlots,bad\n{hi},good\n{lo}.5,bad\n");
        let err = Applications::read(csv.as_bytes(), Some("outcome"), "bad", 10).unwrap_err();
        let fields: Vec<&str> = err.all().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                format!("applications[2].{name}"),
                format!("applications[4].{name}")
            ]
        );
        assert!(err.all().iter().all(|v| v.code == "simulate.bad_cell"));
        assert!(err.first().message.contains("whole number"), "{err}");
    }

    #[test]
    fn a_file_lendcore_cannot_take_is_refused_with_a_code_saying_why() {
        let (feature, (lo, _)) = number_feature();
        let name = feature.name();
        let code = |csv: &str, target: Option<&str>, max_rows: usize| {
            Applications::read(csv.as_bytes(), target, "bad", max_rows)
                .unwrap_err()
                .first()
                .code
        };
        assert_eq!(
            code("shoe_size\n42\n", None, 10),
            "simulate.no_feature_columns"
        );
        assert_eq!(
            code(&format!("{name}\n{lo}\n"), Some("outcome"), 10),
            "simulate.no_target_column"
        );
        assert_eq!(
            code(&format!("{name}\n{lo}\n{lo},{lo}\n"), None, 10),
            "simulate.unreadable_csv"
        );
        assert_eq!(
            code(&format!("{name}\n{lo}\n{lo}\n{lo}\n"), None, 2),
            "simulate.too_many_rows"
        );
        let fine = Applications::read(format!("{name}\n{lo}\n{lo}\n").as_bytes(), None, "bad", 2);
        assert_eq!(fine.unwrap().len(), 2);
    }

    #[test]
    fn the_figures_add_up_to_the_applications_decided() {
        let (feature, (lo, hi)) = number_feature();
        let name = feature.name();
        let mut csv = format!("{name},outcome\n");
        for k in 0..200i64 {
            let value = lo + (hi.min(lo + 1_000_000) - lo) * k / 199;
            csv.push_str(&format!(
                "{value},{}\n",
                if k % 3 == 0 { "bad" } else { "good" }
            ));
        }
        let applications =
            Applications::read(csv.as_bytes(), Some("outcome"), "bad", 1_000).unwrap();
        let policies = [
            ("a".to_owned(), default_policy()),
            ("b".to_owned(), default_policy()),
        ];
        let simulation = decide(&applications, &policies, 5);
        assert_eq!(simulation.applications, 200);
        assert_eq!(simulation.bad_applicants, Some(67));
        assert_eq!(
            simulation.differences,
            Some(Differences {
                count: 0,
                rows: vec![]
            }),
            "a policy beside itself differs nowhere"
        );
        for (p, run) in simulation.policies.iter().enumerate() {
            assert_eq!(run.outcomes.values().sum::<u64>(), 200);
            let scored: u64 = simulation.scores.iter().map(|b| b.counts[p]).sum();
            assert_eq!(scored, 200, "the default policy scores everyone");
            let by_outcome: Vec<&BadRate> = run
                .bad_rates
                .iter()
                .filter(|b| !b.group.starts_with("band "))
                .collect();
            assert_eq!(by_outcome.iter().map(|b| b.applicants).sum::<u64>(), 200);
            assert_eq!(by_outcome.iter().map(|b| b.bad).sum::<u64>(), 67);
            let approved = run.outcomes.get("approve").copied().unwrap_or(0);
            assert!((run.approval_rate - approved as f64 / 200.0).abs() < 1e-12);
            assert!(
                !run.absent_features.is_empty(),
                "the default policy reads more than one feature"
            );
        }
        assert!(
            simulation
                .scores
                .windows(2)
                .all(|w| w[0].to + 1 == w[1].from),
            "buckets follow each other"
        );
        assert!(
            simulation
                .notes
                .iter()
                .any(|n| n.contains("decided as missing"))
        );
    }
}
