//! `lendcore score train`: a scorecard from a history (a CSV with an outcome column), fitted by
//! `lendcore-scorecard`, reported (IV per characteristic; AUC, KS and Gini on the training and
//! held-out parts) and written as the `scorecard` part of a credit policy (docs/POLICY.md).

use std::path::Path;

use anyhow::Context;
use lendcore_domain::decision::{
    BinInput, CellInput, CharacteristicInput, Feature, FeatureType, ScorecardInput, Value,
};
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
    /// Where to write the HTML report.
    pub report: Option<&'a Path>,
}

pub fn train_card(args: TrainArgs<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..0.9).contains(&args.test_share),
        "--test-share must be from 0 to 0.9"
    );
    let file =
        std::fs::File::open(args.csv).with_context(|| format!("opening {}", args.csv.display()))?;
    // A lendcore text feature is a category even when its values are digits (region codes).
    let categorical = |column: &str| {
        let feature = args
            .features
            .iter()
            .filter_map(|r| r.split_once('='))
            .find(|(c, _)| *c == column)
            .map_or(column, |(_, f)| f);
        Feature::parse(feature).is_some_and(|f| f.definition().kind == FeatureType::Text)
    };
    let data = Dataset::from_csv(file, args.target, args.bad, categorical)?;
    for note in &data.notes {
        eprintln!("note: {note}");
    }
    let (learn, held) = if args.test_share > 0.0 {
        let (learn, held) = data.split(args.test_share, args.seed);
        (learn, Some(held))
    } else {
        (data, None)
    };
    let bads = learn.bad.iter().filter(|b| **b).count();
    anyhow::ensure!(
        bads >= 10 && learn.rows() - bads >= 10,
        "the training part has {bads} bad and {} good rows: at least ten of each are needed",
        learn.rows() - bads
    );
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
    anyhow::ensure!(
        !card.characteristics.is_empty(),
        "no characteristic is left on the card (an information value of {} is the floor, and \
         one whose points would rise with risk is left out): the history does not tell goods \
         from bads; nothing is written",
        card.options.min_iv
    );
    if let Some(path) = args.report {
        std::fs::write(
            path,
            lendcore_scorecard::report::html(&card, &learn, held.as_ref()),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
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
    if !card.model.converged {
        out.push_str(&format!(
            "warning: the regression stopped after {} steps without converging; its points are \
             the last reached: check the characteristics for ones that separate goods from bads \
             entirely\n",
            card.model.iterations
        ));
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
        anyhow::ensure!(
            Feature::parse(feature).is_some(),
            "--feature {rename}: {feature} is not a lendcore feature (docs/POLICY.md lists them)"
        );
        anyhow::ensure!(
            card.all.iter().any(|b| b.name == column),
            "--feature {rename}: the file has no column {column}"
        );
        names.insert(column.to_owned(), feature.to_owned());
    }
    // lendcore's features are whole numbers: a fractional cut point would move a value to
    // another bin than training put it in.
    for c in &card.characteristics {
        let fractional = c.binned.bins.iter().any(|b| match &b.bin {
            Bin::Range { from, to } => from.iter().chain(to).any(|x| x.fract() != 0.0),
            Bin::Missing | Bin::Categories { .. } => false,
        });
        anyhow::ensure!(
            !fractional,
            "{} has fractional values: scale it to whole numbers (minor units, days, counts), \
             as lendcore's features are, and train again",
            c.binned.name
        );
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
            let feature = names
                .get(&c.binned.name)
                .cloned()
                .unwrap_or_else(|| c.binned.name.clone());
            // A feature that is never missing takes no bin for it (a policy refuses one), and
            // a history where it was missing is not that feature.
            let never_missing =
                Feature::parse(&feature).is_some_and(|f| !f.definition().may_be_missing);
            let lowest = Feature::parse(&feature)
                .and_then(|f| f.definition().range)
                .map_or(i64::MIN, |(lo, _)| lo);
            let missing_seen = c
                .binned
                .bins
                .iter()
                .any(|b| b.bin == Bin::Missing && b.goods + b.bads > 0);
            anyhow::ensure!(
                !(never_missing && missing_seen),
                "{feature} is never missing in lendcore, but {} is missing in the history",
                c.binned.name
            );
            let bins = c
                .binned
                .bins
                .iter()
                .zip(&c.points)
                .filter(|(b, _)| !(never_missing && b.bin == Bin::Missing))
                .map(|(b, &points)| BinInput {
                    when: match &b.bin {
                        Bin::Missing => CellInput {
                            missing: Some(true),
                            ..CellInput::default()
                        },
                        // A range over every number still takes numbers only: a cell
                        // without bounds would take missing values too.
                        Bin::Range { from, to } => CellInput {
                            min: from
                                .map(|f| f.ceil() as i64)
                                .or_else(|| to.is_none().then_some(lowest)),
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
            Ok(CharacteristicInput {
                feature,
                reason: Reason::ScoreTooLow,
                bins,
            })
        })
        .collect::<anyhow::Result<_>>()?;
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

/// `lendcore score apply`: scores every row of a CSV with a card (a policy's `scorecard` part)
/// and writes, per row, the points, each characteristic's points, and the characteristics that
/// cost the most (as a decision's reasons would name them), for a risk analyst to check against
/// their own tools.
pub fn apply_card(card: &Path, csv: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let part: ScorecardInput = serde_json::from_str(
        &std::fs::read_to_string(card).with_context(|| format!("reading {}", card.display()))?,
    )
    .with_context(|| format!("{} is not a scorecard part", card.display()))?;
    let mut reader =
        csv::Reader::from_path(csv).with_context(|| format!("opening {}", csv.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    let columns: Vec<usize> = part
        .characteristics
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| *h == c.feature)
                .with_context(|| format!("{} has no column {}", csv.display(), c.feature))
        })
        .collect::<anyhow::Result<_>>()?;
    let sink: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut writer = csv::Writer::from_writer(sink);
    let mut head = vec!["row".to_owned(), "points".to_owned()];
    head.extend(
        part.characteristics
            .iter()
            .map(|c| format!("{}_points", c.feature)),
    );
    head.push("reasons".to_owned());
    writer.write_record(&head)?;
    for (n, record) in reader.records().enumerate() {
        let record = record?;
        let scored = score_row(&part, &columns, &record)
            .with_context(|| format!("{} row {}", csv.display(), n + 1))?;
        let mut row = vec![(n + 1).to_string(), scored.points.to_string()];
        row.extend(scored.each.iter().map(i64::to_string));
        row.push(scored.reasons.join("|"));
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(())
}

struct ScoredRow {
    points: i64,
    each: Vec<i64>,
    /// `feature (reason): points lost`, the costliest first, at most four.
    reasons: Vec<String>,
}

/// A row's points; a value no bin of the card takes (text where a number belongs, a value
/// outside every range) is refused by name rather than scored as nothing.
fn score_row(
    part: &ScorecardInput,
    columns: &[usize],
    record: &csv::StringRecord,
) -> anyhow::Result<ScoredRow> {
    let mut lost: Vec<(i64, usize)> = Vec::new();
    let each: Vec<i64> = part
        .characteristics
        .iter()
        .zip(columns)
        .enumerate()
        .map(|(i, (c, &column))| {
            let cell = record.get(column).map(str::trim).unwrap_or_default();
            let value = value_of(kind_of(c), cell);
            let points = c
                .bins
                .iter()
                .find(|b| b.when.takes(value.as_ref()))
                .map(|b| b.points)
                .with_context(|| {
                    let read = match value {
                        None if cell.is_empty() => "(missing)".to_owned(),
                        None => format!("{cell:?} (read as missing)"),
                        Some(_) => format!("{cell:?}"),
                    };
                    format!("{} {read} fits no bin of the card", c.feature)
                })?;
            let best = c.bins.iter().map(|b| b.points).max().unwrap_or(0);
            if best > points {
                lost.push((best - points, i));
            }
            Ok(points)
        })
        .collect::<anyhow::Result<_>>()?;
    lost.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(ScoredRow {
        points: each.iter().sum(),
        reasons: lost
            .iter()
            .take(4)
            .map(|(cost, i)| {
                let c = &part.characteristics[*i];
                format!("{} ({}): {cost}", c.feature, c.reason.code())
            })
            .collect(),
        each,
    })
}

/// What kind of value a characteristic holds: its feature's kind when it names one, else what
/// its bins test (numbers, categories or flags).
fn kind_of(c: &CharacteristicInput) -> FeatureType {
    if let Some(feature) = Feature::parse(&c.feature) {
        return feature.definition().kind;
    }
    let any = |test: fn(&CellInput) -> bool| c.bins.iter().any(|b| test(&b.when));
    if any(|w| w.min.is_some() || w.max.is_some() || w.above.is_some() || w.below.is_some()) {
        FeatureType::Number
    } else if any(|w| w.is.is_some()) {
        FeatureType::Flag
    } else {
        FeatureType::Text
    }
}

/// A CSV cell as training read it and a policy would hold it: empty, `NA` or `null` missing;
/// a number whole (`12`, `12.0`, `1e3`); a word in a column of numbers missing, as training
/// read the few it met; a flag `true`/`1`/`yes` or `false`/`0`/`no`. A flag cell that is
/// neither stays text, which no bin of flags takes.
fn value_of(kind: FeatureType, cell: &str) -> Option<Value> {
    if lendcore_scorecard::is_missing(cell) {
        return None;
    }
    match kind {
        FeatureType::Number => match cell.parse::<i64>() {
            Ok(n) => Some(Value::Number(n)),
            Err(_) => match cell.parse::<f64>() {
                Ok(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e18 => {
                    Some(Value::Number(x as i64))
                }
                // A fraction is no whole number: text, which no range takes.
                Ok(_) => Some(Value::Text(cell.to_owned())),
                Err(_) => None,
            },
        },
        FeatureType::Flag => Some(match cell {
            "true" | "1" | "yes" => Value::Flag(true),
            "false" | "0" | "no" => Value::Flag(false),
            other => Value::Text(other.to_owned()),
        }),
        FeatureType::Text => Some(Value::Text(cell.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The card as written for a policy scores every row as the trainer did: the export's
    /// cells mean what the bins meant.
    #[test]
    fn a_written_card_scores_rows_as_its_training_did() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scorecard/tests/data/germancredit.csv"
        );
        let data = Dataset::from_csv(
            std::fs::File::open(path).unwrap(),
            "creditability",
            Some("bad"),
            |_| false,
        )
        .unwrap();
        let card = train(&data, TrainOptions::default(), |_| {});
        let part = policy_part(&card, "t", &[]).unwrap();
        let expected: Vec<i64> = card.score(&data).iter().map(|(p, _)| *p).collect();
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let columns: Vec<usize> = part
            .characteristics
            .iter()
            .map(|c| header.iter().position(|h| *h == c.feature).unwrap())
            .collect();
        for (n, record) in reader.records().enumerate() {
            let scored = score_row(&part, &columns, &record.unwrap()).unwrap();
            assert_eq!(scored.points, expected[n], "row {n}");
            assert!(scored.reasons.len() <= 4);
        }
    }

    /// A card trained on columns named as lendcore's features goes into a policy as it is.
    #[test]
    fn a_card_of_lendcore_features_compiles_into_a_policy() {
        let rows: String = (0..600)
            .map(|i: i64| {
                let income = 300_000 + (i * 7919 % 60) * 50_000;
                let age = 20 + i % 45;
                let bad = (income < 900_000 && i % 3 == 0) || (age < 25 && i % 4 == 0);
                format!("{income},{age},{}\n", u8::from(bad))
            })
            .collect();
        let data = Dataset::from_csv(
            format!("monthly_income_minor,age_years,outcome\n{rows}").as_bytes(),
            "outcome",
            None,
            |_| false,
        )
        .unwrap();
        let card = train(&data, TrainOptions::default(), |_| {});
        assert_eq!(card.characteristics.len(), 2, "{:?}", card.left_out);
        let part = policy_part(&card, "synthetic", &[]).unwrap();
        let income = &part
            .characteristics
            .iter()
            .find(|c| c.feature == "monthly_income_minor")
            .unwrap()
            .bins;
        assert!(
            income.iter().all(|b| b.when.missing.is_none()),
            "never missing: no bin for it"
        );
        let mut document: lendcore_domain::decision::PolicyDocument =
            serde_json::from_str(lendcore_domain::decision::DEFAULT_POLICY).unwrap();
        document.scorecard = part;
        if let Err(problems) = lendcore_domain::decision::Policy::compile(document) {
            panic!("{problems:?}");
        }
    }

    #[test]
    fn a_value_no_bin_takes_is_refused_by_name() {
        let part = ScorecardInput {
            id: "t".into(),
            base_points: 600,
            base_odds: rust_decimal::Decimal::from(50),
            pdo: 20,
            characteristics: vec![CharacteristicInput {
                feature: "age_years".into(),
                reason: Reason::ScoreTooLow,
                bins: vec![BinInput {
                    when: CellInput {
                        min: Some(18),
                        ..CellInput::default()
                    },
                    points: 10,
                }],
            }],
        };
        let ok = csv::StringRecord::from(vec!["30"]);
        assert_eq!(score_row(&part, &[0], &ok).unwrap().points, 10);
        let text = csv::StringRecord::from(vec!["thirty"]);
        let err = score_row(&part, &[0], &text).err().unwrap().to_string();
        assert!(
            err.contains("age_years \"thirty\" (read as missing) fits no bin"),
            "{err}"
        );
    }

    #[test]
    fn cells_take_what_the_policy_says() {
        let range = CellInput {
            min: Some(10),
            below: Some(20),
            ..CellInput::default()
        };
        let takes = |cell: &CellInput, kind, raw: &str| cell.takes(value_of(kind, raw).as_ref());
        let number = FeatureType::Number;
        assert!(takes(&range, number, "10") && takes(&range, number, "19"));
        assert!(
            takes(&range, number, "1.9e1") && takes(&range, number, "12.0"),
            "whole numbers however written, as training read them"
        );
        assert!(
            !takes(&range, number, "20")
                && !takes(&range, number, "19.5")
                && !takes(&range, number, "abc")
                && !takes(&range, number, "NA")
                && !takes(&range, number, ""),
            "a fraction is no whole number; a word, NA or nothing is missing"
        );
        let missing = CellInput {
            missing: Some(true),
            ..CellInput::default()
        };
        assert!(takes(&missing, number, "NA") && takes(&missing, number, "unknown"));
        assert!(!takes(&missing, number, "1"));
        let others = CellInput {
            not_in: Some(vec!["a".into()]),
            ..CellInput::default()
        };
        let text = FeatureType::Text;
        assert!(
            takes(&others, text, "never seen")
                && !takes(&others, text, "a")
                && !takes(&others, text, "")
        );
        assert!(
            takes(&CellInput::default(), text, "anything")
                && takes(&CellInput::default(), text, ""),
            "an empty cell takes anything, missing included, as in a policy"
        );
    }

    /// A bin over every number (a characteristic split only into present and missing) is
    /// written with a lower bound, so that it does not take missing values too.
    #[test]
    fn a_range_without_bounds_takes_numbers_only() {
        let mut rows = String::from("tenure_days,outcome\n");
        for i in 0..400 {
            let bad = i % 3 == 0;
            // Missing tells bad from good; the number does not.
            let tenure = if bad && i % 2 == 0 { "" } else { "5" };
            rows.push_str(&format!("{tenure},{}\n", u8::from(bad)));
        }
        let data = Dataset::from_csv(rows.as_bytes(), "outcome", None, |_| false).unwrap();
        let card = train(&data, TrainOptions::default(), |_| {});
        let bins = &card.characteristics[0].binned.bins;
        assert_eq!(bins.len(), 2, "present and missing: {bins:?}");
        let part = policy_part(&card, "t", &[]).unwrap();
        let written = &part.characteristics[0].bins;
        let present = written.iter().find(|b| b.when.missing.is_none()).unwrap();
        assert_eq!(present.when.min, Some(i64::MIN), "{written:?}");
        let expected: Vec<i64> = card.score(&data).iter().map(|(p, _)| *p).collect();
        let mut reader = csv::Reader::from_reader(rows.as_bytes());
        for (n, record) in reader.records().enumerate() {
            let scored = score_row(&part, &[0], &record.unwrap()).unwrap();
            assert_eq!(scored.points, expected[n], "row {n}");
        }
    }
}
