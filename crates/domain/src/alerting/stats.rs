//! How far a count lies above its history. Counts of rare events are small and often zero, so
//! the spread is never taken below a Poisson floor (the square root of the centre, at least
//! one): a quiet series with one event more than usual is not an anomaly.

use serde::{Deserialize, Serialize};

/// A count against its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Deviation {
    /// The baseline: a median, or an exponentially weighted mean.
    pub centre: f64,
    /// The spread the score is counted in.
    pub spread: f64,
    /// `(value - centre) / spread`: how many spreads above the baseline.
    pub score: f64,
}

/// The scale that makes a median absolute deviation estimate a normal standard deviation.
const MAD_SCALE: f64 = 1.4826;

fn floor(centre: f64) -> f64 {
    centre.max(1.0).sqrt()
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// `value` against the median and median absolute deviation of `history`; `None` without
/// history.
pub fn robust_deviation(value: f64, history: &[f64]) -> Option<Deviation> {
    if history.is_empty() {
        return None;
    }
    let mut sorted = history.to_vec();
    sorted.sort_by(f64::total_cmp);
    let centre = median(&sorted);
    let mut spreads: Vec<f64> = sorted.iter().map(|x| (x - centre).abs()).collect();
    spreads.sort_by(f64::total_cmp);
    let spread = (MAD_SCALE * median(&spreads)).max(floor(centre));
    Some(Deviation {
        centre,
        spread,
        score: (value - centre) / spread,
    })
}

/// `value` against an exponentially weighted mean and standard deviation of `history` (oldest
/// first, each newer one weighing `weight`); `None` without history.
pub fn ewma_deviation(value: f64, history: &[f64], weight: f64) -> Option<Deviation> {
    let (first, rest) = history.split_first()?;
    let (mut mean, mut variance) = (*first, 0.0_f64);
    for x in rest {
        let diff = x - mean;
        mean += weight * diff;
        variance = (1.0 - weight) * (variance + weight * diff * diff);
    }
    let spread = variance.sqrt().max(floor(mean));
    Some(Deviation {
        centre: mean,
        spread,
        score: (value - mean) / spread,
    })
}
