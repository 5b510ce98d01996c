//! From a history to a scorecard: bin every characteristic, keep those whose information value
//! reaches the floor, fit the regression on their weights of evidence (dropping, one at a time,
//! any whose weight comes out with the wrong sign, the mark of two telling the same story),
//! and turn each bin into points on the scale asked for.

use crate::binning::{self, Binned, BinningOptions};
use crate::data::Dataset;
use crate::metrics::{Ranking, ranking};
use crate::model::{Logistic, fit_logistic};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    pub binning: BinningOptions,
    /// Characteristics below this information value are left out (0.02: "not predictive").
    pub min_iv: f64,
    /// The scale: `base_points` where the odds of good are `base_odds`, and `pdo` points more
    /// for each doubling of those odds.
    pub base_points: f64,
    pub base_odds: f64,
    pub pdo: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            binning: BinningOptions::default(),
            min_iv: 0.02,
            base_points: 600.0,
            base_odds: 50.0,
            pdo: 20.0,
        }
    }
}

/// A characteristic the card scores: its bins and what each is worth.
#[derive(Debug, Clone, PartialEq)]
pub struct Characteristic {
    pub binned: Binned,
    /// Its regression weight (negative: more weight of evidence, less risk).
    pub weight: f64,
    /// Points per bin, in the bins' order.
    pub points: Vec<i64>,
}

/// Why a characteristic is not on the card.
#[derive(Debug, Clone, PartialEq)]
pub enum Left {
    /// Its information value is below the floor.
    WeakIv,
    /// Its weight came out with the wrong sign: others say what it says.
    Collinear,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    pub characteristics: Vec<Characteristic>,
    /// Every characteristic binned, kept or not, for the report.
    pub all: Vec<Binned>,
    pub left_out: Vec<(String, Left)>,
    pub model: Logistic,
    pub options: TrainOptions,
}

/// Trains on `data`; `progress` hears of each step.
pub fn train(data: &Dataset, options: TrainOptions, mut progress: impl FnMut(&str)) -> Trained {
    let all: Vec<Binned> = data
        .columns
        .iter()
        .map(|c| {
            progress(&format!("binning {}", c.name));
            binning::bin(c, &data.bad, options.binning)
        })
        .collect();
    let mut left_out = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    for (i, b) in all.iter().enumerate() {
        if b.iv >= options.min_iv {
            kept.push(i);
        } else {
            left_out.push((b.name.clone(), Left::WeakIv));
        }
    }
    let woe_of = |i: usize| -> Vec<f64> {
        let bins = all[i].assign(&data.columns[i]);
        bins.iter().map(|&b| all[i].bins[b].woe).collect()
    };
    let columns: Vec<(usize, Vec<f64>)> = kept.iter().map(|&i| (i, woe_of(i))).collect();
    let mut active: Vec<usize> = (0..columns.len()).collect();
    let model = loop {
        progress(&format!(
            "fitting the regression on {} characteristics",
            active.len()
        ));
        let rows: Vec<Vec<f64>> = (0..data.rows())
            .map(|r| active.iter().map(|&c| columns[c].1[r]).collect())
            .collect();
        let model = fit_logistic(&rows, &data.bad);
        let wrong = model
            .weights
            .iter()
            .enumerate()
            .filter(|(_, w)| **w >= 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| k);
        // The last one goes too: a card whose points rise with risk is worse than none.
        match wrong {
            Some(k) => {
                left_out.push((all[columns[active[k]].0].name.clone(), Left::Collinear));
                active.remove(k);
            }
            None => break model,
        }
    };
    let factor = options.pdo / std::f64::consts::LN_2;
    let offset = options.base_points - factor * options.base_odds.ln();
    let share = (offset - factor * model.intercept) / active.len().max(1) as f64;
    let characteristics = active
        .iter()
        .zip(&model.weights)
        .map(|(&c, &weight)| {
            let binned = all[columns[c].0].clone();
            let points = binned
                .bins
                .iter()
                .map(|b| (share - factor * weight * b.woe).round() as i64)
                .collect();
            Characteristic {
                binned,
                weight,
                points,
            }
        })
        .collect();
    Trained {
        characteristics,
        all,
        left_out,
        model,
        options,
    }
}

impl Trained {
    /// Each row's points, and the characteristics' points one by one.
    pub fn score(&self, data: &Dataset) -> Vec<(i64, Vec<i64>)> {
        let per: Vec<Vec<i64>> = self
            .characteristics
            .iter()
            .map(|c| {
                let column = data.columns.iter().find(|col| col.name == c.binned.name);
                match column {
                    Some(column) => c
                        .binned
                        .assign(column)
                        .iter()
                        .map(|&b| c.points[b])
                        .collect(),
                    // A file without the column scores it as missing.
                    None => vec![c.points[c.points.len() - 1]; data.rows()],
                }
            })
            .collect();
        (0..data.rows())
            .map(|r| {
                let each: Vec<i64> = per.iter().map(|p| p[r]).collect();
                (each.iter().sum(), each)
            })
            .collect()
    }

    /// How well the card's points rank `data`'s bads.
    pub fn ranking(&self, data: &Dataset) -> Ranking {
        let risk: Vec<f64> = self.score(data).iter().map(|(p, _)| -(*p as f64)).collect();
        ranking(&risk, &data.bad)
    }
}
