//! `lendcore score train`: a scorecard from a history (a CSV with an outcome column), fitted by
//! `lendcore-scorecard`, reported (IV per characteristic; AUC, KS and Gini on the training and
//! held-out parts) and written as the `scorecard` part of a credit policy (docs/POLICY.md).

use std::path::Path;

use anyhow::Context;
use lendcore_domain::decision::{BinInput, CellInput, CharacteristicInput, ScorecardInput};
use lendcore_domain::reasons::Reason;
use lendcore_scorecard::Dataset;
use lendcore_scorecard::binning::Bin;
use lendcore_scorecard::train::{Left, TrainOptions, Trained, train};

/// What to train on, and how.
pub struct TrainArgs<'a> {
    pub csv: &'a Path,
    pub target: &'a str,
    pub bad: Option<&'a str>,
    pub test_share: f64,
    pub seed: u64,
    /// The card's name in every decision record, e.g. `consumer-2026-12`.
    pub id: &'a str,
    /// Where to write the card (the policy part).
    pub out: Option<&'a Path>,
    /// `column=feature` renames, so the card names lendcore's features.
    pub features: &'a [String],
}

pub fn train_card(args: TrainArgs<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..0.9).contains(&args.test_share),
        "--test-share must be from 0 to 0.9"
    );
    let file =
        std::fs::File::open(args.csv).with_context(|| format!("opening {}", args.csv.display()))?;
    let data = Dataset::from_csv(file, args.target, args.bad)?;
    let (learn, held) = if args.test_share > 0.0 {
        let (learn, held) = data.split(args.test_share, args.seed);
        (learn, Some(held))
    } else {
        (data, None)
    };
    eprintln!(
        "training on {} rows{}",
        learn.rows(),
        held.as_ref()
            .map_or(String::new(), |h| format!(", {} held out", h.rows()))
    );
    let bar = indicatif::ProgressBar::new_spinner();
    let card = train(&learn, TrainOptions::default(), |step| {
        bar.set_message(step.to_owned());
        bar.tick();
    });
    bar.finish_and_clear();
    print!("{}", summary(&card, &learn, held.as_ref()));
    let part = policy_part(&card, args.id, args.features)?;
    let json = serde_json::to_string_pretty(&part)?;
    match args.out {
        Some(path) => {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            println!("scorecard written to {}", path.display());
        }
        None => println!("{json}"),
    }
    Ok(())
}

fn summary(card: &Trained, learn: &Dataset, held: Option<&Dataset>) -> String {
    let mut out = String::from(
        "characteristic                                       IV   bins  on the card\n",
    );
    let mut all: Vec<_> = card.all.iter().collect();
    all.sort_by(|a, b| b.iv.total_cmp(&a.iv));
    for binned in all {
        let status = if card
            .characteristics
            .iter()
            .any(|c| c.binned.name == binned.name)
        {
            "yes".to_owned()
        } else {
            match card.left_out.iter().find(|(name, _)| *name == binned.name) {
                Some((_, Left::WeakIv)) => "no: IV below the floor".to_owned(),
                Some((_, Left::Collinear)) => "no: told by others".to_owned(),
                None => "no".to_owned(),
            }
        };
        out.push_str(&format!(
            "{:<50} {:>6.3} {:>5}  {status}\n",
            binned.name,
            binned.iv,
            binned.bins.len()
        ));
    }
    let show = |part: &str, data: &Dataset| {
        let r = card.ranking(data);
        format!(
            "{part:<10} {:>6} rows  AUC {:.4}  KS {:.4}  Gini {:.4}\n",
            data.rows(),
            r.auc,
            r.ks,
            r.gini
        )
    };
    out.push_str(&show("training", learn));
    if let Some(held) = held {
        out.push_str(&show("held out", held));
    }
    out
}

/// The card as a policy's `scorecard` part. Numbers' cut points become whole numbers (lendcore's
/// features are), a number's range `min`/`below`, a group of categories `in` (the riskiest
/// group `not_in` the others, so it also takes categories never seen), missing its own bin.
fn policy_part(card: &Trained, id: &str, renames: &[String]) -> anyhow::Result<ScorecardInput> {
    let mut names = std::collections::HashMap::new();
    for rename in renames {
        let (column, feature) = rename
            .split_once('=')
            .with_context(|| format!("--feature {rename}: expected COLUMN=FEATURE"))?;
        names.insert(column.to_owned(), feature.to_owned());
    }
    let characteristics = card
        .characteristics
        .iter()
        .map(|c| {
            let others: Vec<String> = c
                .binned
                .bins
                .iter()
                .filter_map(|b| match &b.bin {
                    Bin::Categories {
                        values,
                        others: false,
                    } => Some(values.clone()),
                    Bin::Categories { others: true, .. } | Bin::Range { .. } | Bin::Missing => None,
                })
                .flatten()
                .collect();
            let bins = c
                .binned
                .bins
                .iter()
                .zip(&c.points)
                .map(|(b, &points)| BinInput {
                    when: match &b.bin {
                        Bin::Missing => CellInput {
                            missing: Some(true),
                            ..CellInput::default()
                        },
                        Bin::Range { from, to } => CellInput {
                            min: from.map(|f| f.ceil() as i64),
                            below: to.map(|t| t.ceil() as i64),
                            ..CellInput::default()
                        },
                        Bin::Categories {
                            values,
                            others: false,
                        } => CellInput {
                            one_of: Some(values.clone()),
                            ..CellInput::default()
                        },
                        Bin::Categories { others: true, .. } => CellInput {
                            not_in: Some(others.clone()),
                            ..CellInput::default()
                        },
                    },
                    points,
                })
                .collect();
            CharacteristicInput {
                feature: names
                    .get(&c.binned.name)
                    .cloned()
                    .unwrap_or_else(|| c.binned.name.clone()),
                reason: Reason::ScoreTooLow,
                bins,
            }
        })
        .collect();
    let options = card.options;
    Ok(ScorecardInput {
        id: id.to_owned(),
        base_points: options.base_points.round() as i64,
        base_odds: rust_decimal::Decimal::try_from(options.base_odds)
            .context("the base odds as a decimal")?,
        pdo: options.pdo.round() as i64,
        characteristics,
    })
}
