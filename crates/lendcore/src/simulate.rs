//! `lendcore policy simulate` (#14): what a credit policy would have done to a file of past
//! applications, beside another policy: approval rate, the mix of outcomes and of reasons, the
//! scores, with a target column the bad rate by outcome and by band, and the applicants the two
//! decide differently. Decided by the same domain code as live decisions, at the application
//! stage; each column named as a feature (docs/POLICY.md) is that feature, the rest are ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use lendcore_domain::decision::{
    BureauStatus, Evaluation, Feature, FeatureSource, FeatureType, Features, Policy,
    PolicyDocument, Stage, Value,
};

/// What a policy is compared with.
pub enum Against<'a> {
    /// A policy document in a file.
    File(&'a Path),
    /// The version in effect in lendcore's database.
    Live(&'a crate::config::Config),
}

pub struct SimulateArgs<'a> {
    pub policy: &'a Path,
    pub applications: &'a Path,
    pub against: Option<Against<'a>>,
    /// The outcome column and its bad value, for bad rates.
    pub target: Option<&'a str>,
    pub bad: &'a str,
    /// Where to write the applicants the two policies decide differently.
    pub diff: Option<&'a Path>,
}

/// One policy's decisions on every row.
struct Run {
    name: String,
    evaluations: Vec<Evaluation>,
}

pub async fn simulate(args: SimulateArgs<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.diff.is_none() || args.against.is_some(),
        "--diff lists the applicants two policies decide differently: give --against too"
    );
    let rows = read_rows(args.applications, args.target, args.bad)?;
    let mut runs = vec![run(args.policy, &rows)?];
    match args.against {
        Some(Against::File(path)) => runs.push(run(path, &rows)?),
        Some(Against::Live(config)) => {
            let (name, document) = live(config).await?;
            runs.push(decide_all(name, document, &rows)?);
        }
        None => {}
    }
    print!("{}", summary(&runs, &rows));
    if let (Some(path), [first, second]) = (args.diff, runs.as_slice()) {
        let mut writer =
            csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
        writer.write_record([
            "row",
            &format!("{} outcome", first.name),
            &format!("{} outcome", second.name),
            &format!("{} reasons", first.name),
            &format!("{} reasons", second.name),
        ])?;
        let mut differ = 0;
        for (n, (a, b)) in first
            .evaluations
            .iter()
            .zip(&second.evaluations)
            .enumerate()
        {
            if a.outcome.name() != b.outcome.name() {
                differ += 1;
                writer.write_record([
                    (n + 1).to_string(),
                    a.outcome.name().to_owned(),
                    b.outcome.name().to_owned(),
                    reasons(a),
                    reasons(b),
                ])?;
            }
        }
        writer.flush()?;
        println!(
            "{differ} applicants decided differently: {}",
            path.display()
        );
    }
    Ok(())
}

fn reasons(e: &Evaluation) -> String {
    e.reasons
        .iter()
        .map(|r| r.code())
        .collect::<Vec<_>>()
        .join("|")
}

/// The applications as features, and each one's outcome when a target is given.
struct Rows {
    features: Vec<Features>,
    bad: Option<Vec<bool>>,
    /// Whether the file gives any of the bureau's features.
    bureau: bool,
    /// The features the file has a column for.
    given: Vec<Feature>,
}

fn read_rows(path: &Path, target: Option<&str>, bad_value: &str) -> anyhow::Result<Rows> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    let target_at = match target {
        Some(t) => Some(
            header
                .iter()
                .position(|h| h == t)
                .with_context(|| format!("{} has no column {t}", path.display()))?,
        ),
        None => None,
    };
    let columns: Vec<(usize, Feature)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Feature::parse(h).map(|f| (i, f)))
        .filter(|(_, f)| f.is_known_at(Stage::Application))
        .collect();
    anyhow::ensure!(
        !columns.is_empty(),
        "no column of {} is a feature known at application (docs/POLICY.md lists them)",
        path.display()
    );
    let bureau = columns
        .iter()
        .any(|(_, f)| f.definition().source == FeatureSource::Bureau);
    let (mut features, mut bad) = (Vec::new(), Vec::new());
    for (n, record) in reader.records().enumerate() {
        let record = record?;
        let mut row = Features::default();
        for (i, feature) in &columns {
            let cell = record.get(*i).map(str::trim).unwrap_or_default();
            if cell.is_empty() {
                continue;
            }
            let value = match feature.definition().kind {
                FeatureType::Number => Value::Number(cell.parse().with_context(|| {
                    format!("row {}: {} must be a whole number", n + 1, feature.name())
                })?),
                FeatureType::Flag => Value::Flag(match cell {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    other => anyhow::bail!(
                        "row {}: {} must be true or false, not {other:?}",
                        n + 1,
                        feature.name()
                    ),
                }),
                FeatureType::Text => Value::Text(cell.to_owned()),
            };
            row.set(*feature, value)
                .with_context(|| format!("row {}", n + 1))?;
        }
        features.push(row);
        if let Some(t) = target_at {
            bad.push(record.get(t).map(str::trim) == Some(bad_value));
        }
    }
    if let Some(t) = target
        && !bad.is_empty()
        && !bad.iter().any(|b| *b)
    {
        eprintln!(
            "warning: no row's {t} is {bad_value:?}: every bad rate will be 0 (is --bad the value \
             the file uses?)"
        );
    }
    Ok(Rows {
        features,
        bad: target_at.map(|_| bad),
        bureau,
        given: columns.iter().map(|(_, f)| *f).collect(),
    })
}

fn run(path: &Path, rows: &Rows) -> anyhow::Result<Run> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let document: PolicyDocument = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a policy document", path.display()))?;
    let name = path
        .file_stem()
        .map_or_else(|| "policy".to_owned(), |s| s.to_string_lossy().into_owned());
    decide_all(name, document, rows)
}

/// The policy version in effect in the configured database, named `code@version`.
async fn live(config: &crate::config::Config) -> anyhow::Result<(String, PolicyDocument)> {
    use lendcore_domain::decision::VersionStatus;
    let store = crate::serve::open_existing_store(config).await?;
    let engine = lendcore_engine::Engine::new(
        store.clone(),
        std::sync::Arc::new(lendcore_engine::SystemClock),
    );
    let versions = lendcore_engine::decisions::list(&engine).await?;
    let in_effect = versions
        .iter()
        .find(|v| v.status == VersionStatus::InEffect)
        .context("no policy is in effect in that database")?;
    let found =
        lendcore_engine::decisions::get(&engine, &in_effect.code, in_effect.version).await?;
    store.close().await;
    let document = found
        .document
        .context("the version in effect came without its document")?;
    Ok((format!("{}@{}", found.code, found.version), document))
}

fn decide_all(name: String, document: PolicyDocument, rows: &Rows) -> anyhow::Result<Run> {
    let policy = Policy::compile(document).map_err(|v| anyhow::anyhow!("{name}: {v}"))?;
    let absent: Vec<&str> = policy
        .features_read(Stage::Application)
        .iter()
        .filter(|f| !rows.given.contains(f))
        .map(|f| f.name())
        .collect();
    if !absent.is_empty() {
        // Decided as missing, which a policy may treat quite unlike any real value.
        eprintln!(
            "note: {name} reads {}, which the file does not give: decided as missing",
            absent.join(", ")
        );
    }
    let reads_bureau = policy
        .features_read(Stage::Application)
        .iter()
        .any(|f| f.definition().source == FeatureSource::Bureau);
    let bureau = match (reads_bureau, rows.bureau) {
        (false, _) => BureauStatus::NotAsked,
        (true, true) => BureauStatus::Answered,
        // The file has none of the bureau's features: decided as when it does not answer.
        (true, false) => BureauStatus::Unavailable,
    };
    Ok(Run {
        name,
        evaluations: rows
            .features
            .iter()
            .map(|f| policy.decide(Stage::Application, f, bureau))
            .collect(),
    })
}

fn summary(runs: &[Run], rows: &Rows) -> String {
    let n = rows.features.len().max(1) as f64;
    let mut out = format!("{} applications\n", rows.features.len());
    let mut outcomes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (k, run) in runs.iter().enumerate() {
        for e in &run.evaluations {
            outcomes
                .entry(e.outcome.name())
                .or_insert_with(|| vec![0; runs.len()])[k] += 1;
            for r in &e.reasons {
                reasons
                    .entry(r.code())
                    .or_insert_with(|| vec![0; runs.len()])[k] += 1;
            }
        }
    }
    let head: Vec<String> = runs.iter().map(|r| format!("{:>16}", r.name)).collect();
    out.push_str(&format!("{:<34}{}\n", "outcome", head.join("")));
    for (outcome, counts) in &outcomes {
        let cells: Vec<String> = counts
            .iter()
            .map(|c| format!("{:>9} {:>5.1}%", c, *c as f64 / n * 100.0))
            .collect();
        out.push_str(&format!("{outcome:<34}{}\n", cells.join("")));
    }
    out.push_str(&format!(
        "{:<34}{}\n",
        "reason (any of the four)",
        head.join("")
    ));
    for (reason, counts) in &reasons {
        let cells: Vec<String> = counts.iter().map(|c| format!("{c:>16}")).collect();
        out.push_str(&format!("{reason:<34}{}\n", cells.join("")));
    }
    let scores: Vec<String> = runs
        .iter()
        .map(|run| {
            let mut s: Vec<i64> = run
                .evaluations
                .iter()
                .filter_map(|e| e.score.as_ref().map(|s| s.value))
                .collect();
            s.sort_unstable();
            let at = |q: f64| s.get(((s.len() as f64 * q) as usize).min(s.len().saturating_sub(1)));
            match (at(0.1), at(0.5), at(0.9)) {
                (Some(a), Some(b), Some(c)) => format!("{:>16}", format!("{a}/{b}/{c}")),
                _ => format!("{:>16}", "-"),
            }
        })
        .collect();
    out.push_str(&format!("{:<34}{}\n", "score p10/p50/p90", scores.join("")));
    if let Some(bad) = &rows.bad {
        out.push_str(&format!("{:<34}{}\n", "bad rate by outcome", head.join("")));
        for outcome in outcomes.keys() {
            let cells: Vec<String> = runs
                .iter()
                .map(|run| rate_where(run, bad, |e| e.outcome.name() == *outcome))
                .collect();
            out.push_str(&format!("  {outcome:<32}{}\n", cells.join("")));
        }
        let bands: std::collections::BTreeSet<u32> = runs
            .iter()
            .flat_map(|r| r.evaluations.iter().filter_map(|e| e.band))
            .collect();
        for band in bands {
            let cells: Vec<String> = runs
                .iter()
                .map(|run| rate_where(run, bad, |e| e.band == Some(band)))
                .collect();
            out.push_str(&format!("  band {band:<27}{}\n", cells.join("")));
        }
    }
    out
}

/// The bad rate of the run's decisions that `select` picks.
fn rate_where(run: &Run, bad: &[bool], select: impl Fn(&Evaluation) -> bool) -> String {
    let of: Vec<bool> = run
        .evaluations
        .iter()
        .zip(bad)
        .filter(|(e, _)| select(e))
        .map(|(_, b)| *b)
        .collect();
    rate(&of)
}

fn rate(of: &[bool]) -> String {
    if of.is_empty() {
        return format!("{:>16}", "-");
    }
    let bads = of.iter().filter(|b| **b).count();
    format!(
        "{:>16}",
        format!(
            "{:.1}% of {}",
            bads as f64 / of.len() as f64 * 100.0,
            of.len()
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lendcore_domain::decision::DEFAULT_POLICY;
    use rand::{Rng, SeedableRng};

    /// Applications with every feature the default policy reads, drawn at random, and an
    /// outcome column.
    fn applications(dir: &Path) -> std::path::PathBuf {
        let document: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
        let policy = Policy::compile(document).unwrap();
        let features: Vec<Feature> = policy
            .features_read(Stage::Application)
            .iter()
            .copied()
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut text: Vec<String> = features.iter().map(|f| f.name().to_owned()).collect();
        text.push("outcome".into());
        let mut out = text.join(",") + "\n";
        for _ in 0..300 {
            let cells: Vec<String> = features
                .iter()
                .map(|f| {
                    let d = f.definition();
                    match d.kind {
                        FeatureType::Number => {
                            let (lo, hi) = d.range.unwrap_or((0, 1000));
                            rng.random_range(lo..=hi.min(lo + 5_000_000)).to_string()
                        }
                        FeatureType::Flag => rng.random_bool(0.3).to_string(),
                        FeatureType::Text => "x".to_owned(),
                    }
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push_str(if rng.random_bool(0.2) {
                ",bad\n"
            } else {
                ",good\n"
            });
        }
        let path = dir.join("applications.csv");
        std::fs::write(&path, out).unwrap();
        path
    }

    #[test]
    fn a_policy_beside_itself_differs_nowhere_and_beside_a_changed_one_where_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let rows = applications(dir.path());
        let live = dir.path().join("live.json");
        std::fs::write(&live, DEFAULT_POLICY).unwrap();
        let mut document: serde_json::Value = serde_json::from_str(DEFAULT_POLICY).unwrap();
        // No knock-out rules, and the lowest band to an underwriter rather than declined.
        document["tables"] = serde_json::json!([]);
        document["bands"][0] = serde_json::json!({"max_score": 170, "outcome": "refer"});
        let looser = dir.path().join("looser.json");
        std::fs::write(&looser, document.to_string()).unwrap();

        let read = read_rows(&rows, Some("outcome"), "bad").unwrap();
        let same = [run(&live, &read).unwrap(), run(&live, &read).unwrap()];
        assert!(
            same[0]
                .evaluations
                .iter()
                .zip(&same[1].evaluations)
                .all(|(a, b)| a.outcome.name() == b.outcome.name())
        );
        let both = [run(&live, &read).unwrap(), run(&looser, &read).unwrap()];
        let differ = both[0]
            .evaluations
            .iter()
            .zip(&both[1].evaluations)
            .filter(|(a, b)| a.outcome.name() != b.outcome.name())
            .count();
        assert!(
            differ > 0,
            "the looser policy decides some applicants otherwise"
        );
        let text = summary(&both, &read);
        assert!(
            text.contains("300 applications")
                && text.contains("bad rate by outcome")
                && text.contains("looser"),
            "{text}"
        );

        let diff = dir.path().join("diff.csv");
        futures::executor::block_on(simulate(SimulateArgs {
            policy: &live,
            applications: &rows,
            against: Some(Against::File(&looser)),
            target: Some("outcome"),
            bad: "bad",
            diff: Some(&diff),
        }))
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&diff).unwrap().lines().count(),
            differ + 1,
            "a line per applicant decided otherwise"
        );
    }

    #[test]
    fn a_file_without_features_or_with_a_bad_number_is_refused_with_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.csv");
        std::fs::write(&none, "shoe_size,outcome\n42,good\n").unwrap();
        let err = read_rows(&none, None, "bad").err().unwrap().to_string();
        assert!(err.contains("no column"), "{err}");
        let feature = Feature::ALL
            .iter()
            .find(|f| {
                f.is_known_at(Stage::Application) && f.definition().kind == FeatureType::Number
            })
            .unwrap();
        let bad_number = dir.path().join("bad.csv");
        std::fs::write(&bad_number, format!("{}\n12\nlots\n", feature.name())).unwrap();
        let err = format!("{:#}", read_rows(&bad_number, None, "bad").err().unwrap());
        assert!(
            err.contains("row 2") && err.contains("whole number"),
            "{err}"
        );
    }
}
