//! `lendcore policy simulate` (#14): a backtest of a credit policy on a file of past
//! applications, beside another policy, printed as a table; the applicants the two decide
//! differently go to a CSV. The figures are the engine's (`decisions::simulate`), the same the
//! console gets from `POST /v1/policies/simulate`.

use std::path::Path;

use anyhow::Context;
use lendcore_domain::decision::{Policy, PolicyDocument};
use lendcore_engine::decisions::{self, Applications, PolicySource, Simulation};

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

pub async fn simulate(args: SimulateArgs<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.diff.is_none() || args.against.is_some(),
        "--diff lists the applicants two policies decide differently: give --against too"
    );
    let applications = read_applications(args.applications, args.target, args.bad)?;
    let mut policies = vec![from_file(args.policy)?];
    match args.against {
        Some(Against::File(path)) => policies.push(from_file(path)?),
        Some(Against::Live(config)) => policies.push(live(config).await?),
        None => {}
    }
    let simulation = decisions::decide(&applications, &policies, usize::MAX);
    for note in &simulation.notes {
        eprintln!("note: {note}");
    }
    print!("{}", summary(&simulation));
    if let (Some(path), Some(differences)) = (args.diff, &simulation.differences) {
        let mut writer =
            csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
        let names: Vec<&str> = simulation
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        writer.write_record([
            "row".to_owned(),
            format!("{} outcome", names[0]),
            format!("{} outcome", names[1]),
            format!("{} reasons", names[0]),
            format!("{} reasons", names[1]),
        ])?;
        for d in &differences.rows {
            writer.write_record([
                d.row.to_string(),
                d.outcomes[0].clone(),
                d.outcomes[1].clone(),
                d.reasons[0].join("|"),
                d.reasons[1].join("|"),
            ])?;
        }
        writer.flush()?;
        println!(
            "{} applicants decided differently: {}",
            differences.count,
            path.display()
        );
    }
    Ok(())
}

fn read_applications(path: &Path, target: Option<&str>, bad: &str) -> anyhow::Result<Applications> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Applications::read(std::io::BufReader::new(file), target, bad, usize::MAX).map_err(|v| {
        let all: Vec<&str> = v.all().iter().map(|v| v.message.as_str()).collect();
        anyhow::anyhow!("{}: {}", path.display(), all.join("; "))
    })
}

/// A policy document in a file, named after the file.
fn from_file(path: &Path) -> anyhow::Result<(String, Policy)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let document: PolicyDocument = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a policy document", path.display()))?;
    let name = path
        .file_stem()
        .map_or_else(|| "policy".to_owned(), |s| s.to_string_lossy().into_owned());
    let policy = Policy::compile(document).map_err(|v| anyhow::anyhow!("{name}: {v}"))?;
    Ok((name, policy))
}

/// The policy version in effect in the configured database, named `code@version`.
async fn live(config: &crate::config::Config) -> anyhow::Result<(String, Policy)> {
    let store = crate::serve::open_existing_store(config).await?;
    let engine = lendcore_engine::Engine::new(
        store.clone(),
        std::sync::Arc::new(lendcore_engine::SystemClock),
    );
    let found = decisions::document_of(&engine, PolicySource::Live).await;
    store.close().await;
    let (name, document) = found?;
    let policy = Policy::compile(document).map_err(|v| anyhow::anyhow!("{name}: {v}"))?;
    Ok((name, policy))
}

/// The figures as a table, one column per policy.
fn summary(simulation: &Simulation) -> String {
    let runs = &simulation.policies;
    let n = simulation.applications.max(1) as f64;
    let mut out = format!("{} applications\n", simulation.applications);
    let head: Vec<String> = runs.iter().map(|r| format!("{:>16}", r.name)).collect();
    let row = |label: &str, cells: Vec<String>| format!("{label:<34}{}\n", cells.join(""));
    out.push_str(&row("outcome", head.clone()));
    let outcomes: std::collections::BTreeSet<&String> =
        runs.iter().flat_map(|r| r.outcomes.keys()).collect();
    for outcome in &outcomes {
        let cells = runs
            .iter()
            .map(|r| {
                let c = r.outcomes.get(*outcome).copied().unwrap_or(0);
                format!("{:>9} {:>5.1}%", c, c as f64 / n * 100.0)
            })
            .collect();
        out.push_str(&row(outcome, cells));
    }
    out.push_str(&row("reason (any of the four)", head.clone()));
    let reasons: std::collections::BTreeSet<&String> =
        runs.iter().flat_map(|r| r.reasons.keys()).collect();
    for reason in reasons {
        let cells = runs
            .iter()
            .map(|r| format!("{:>16}", r.reasons.get(reason).copied().unwrap_or(0)))
            .collect();
        out.push_str(&row(reason, cells));
    }
    let scores = runs
        .iter()
        .map(|r| match r.score_percentiles {
            Some([a, b, c]) => format!("{:>16}", format!("{a}/{b}/{c}")),
            None => format!("{:>16}", "-"),
        })
        .collect();
    out.push_str(&row("score p10/p50/p90", scores));
    if simulation.bad_applicants.is_some() {
        out.push_str(&row("bad rate by outcome, by band", head));
        // Outcomes by name, then bands by number.
        let mut groups: Vec<&String> = runs
            .iter()
            .flat_map(|r| r.bad_rates.iter().map(|b| &b.group))
            .collect();
        groups.sort_by_key(|g| {
            let band = g.strip_prefix("band ").and_then(|b| b.parse::<u32>().ok());
            (band, *g)
        });
        groups.dedup();
        for group in groups {
            let cells = runs
                .iter()
                .map(|r| match r.bad_rates.iter().find(|b| &b.group == group) {
                    Some(b) if b.applicants > 0 => format!(
                        "{:>16}",
                        format!("{:.1}% of {}", b.rate * 100.0, b.applicants)
                    ),
                    _ => format!("{:>16}", "-"),
                })
                .collect();
            out.push_str(&row(&format!("  {group}"), cells));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lendcore_domain::decision::{DEFAULT_POLICY, FeatureType, Stage};
    use rand::{Rng, SeedableRng};

    /// Applications with every feature the default policy reads, drawn at random, and an
    /// outcome column.
    fn applications(dir: &Path) -> std::path::PathBuf {
        let document: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
        let policy = Policy::compile(document).unwrap();
        let features: Vec<_> = policy
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
    fn the_table_puts_two_policies_side_by_side_and_the_diff_lists_each_applicant_decided_otherwise()
     {
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

        let read = read_applications(&rows, Some("outcome"), "bad").unwrap();
        let both = [from_file(&live).unwrap(), from_file(&looser).unwrap()];
        let simulation = decisions::decide(&read, &both, usize::MAX);
        let differ = simulation.differences.as_ref().unwrap().count;
        assert!(
            differ > 0,
            "the looser policy decides some applicants otherwise"
        );
        let text = summary(&simulation);
        assert!(
            text.contains("300 applications")
                && text.contains("bad rate by outcome")
                && text.contains("looser")
                && text.contains("band 1"),
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
            std::fs::read_to_string(&diff).unwrap().lines().count() as u64,
            differ + 1,
            "a line per applicant decided otherwise"
        );
    }

    #[test]
    fn a_file_that_is_not_applications_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.csv");
        std::fs::write(&none, "shoe_size,outcome\n42,good\n").unwrap();
        let err = read_applications(&none, None, "bad")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no column"), "{err}");
    }
}
