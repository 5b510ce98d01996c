//! The worked example: the German Credit history, 70% to train on and 30% held out
//! (stratified). A held-out AUC depends on the split as much as on the method (from 0.73 to
//! 0.85 here across seeds), so the card is held to a floor on the mean of ten seeded splits
//! (0.786 when written), and the figures are printed for docs/POLICY.md. The well-known Python tools report about 0.80–0.81
//! on their own single split; matching that on a like-for-like split is still open (#14).

use lendcore_scorecard::Dataset;
use lendcore_scorecard::train::{TrainOptions, train};

#[test]
fn the_german_credit_card_ranks_held_out_applicants() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/germancredit.csv");
    let data = Dataset::from_csv(
        std::fs::File::open(file).unwrap(),
        "creditability",
        Some("bad"),
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
