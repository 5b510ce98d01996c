//! Binning one characteristic against the outcome. Numbers: fine classes at quantiles, merged
//! until the bad rate rises or falls monotonically across them, then down to a few bins by
//! merging the neighbours whose bad rates differ least. Categories: grouped in order of bad
//! rate the same way; neighbours whose bad rates the data cannot tell apart (a chi-square
//! below the floor) are one bin. Every bin holds at least a minimum share of the rows; missing values
//! have a bin of their own. Each bin's weight of evidence is `ln(share of goods / share of
//! bads)` (half a row added to each count, so an empty side stays finite); the
//! characteristic's information value sums `(share of goods − share of bads) × WoE`.

use crate::data::{Column, Values};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinningOptions {
    /// Bins a characteristic ends with, at most (missing apart).
    pub max_bins: usize,
    /// Fine classes numbers start from.
    pub fine_classes: usize,
    /// The least share of the rows with a value a bin may hold.
    pub min_share: f64,
    /// Neighbours whose 2×2 chi-square falls below this are merged (1: about 68% sure they
    /// differ; 3.84 would ask 95%, and on a few hundred rows keeps too little).
    pub min_chi_square: f64,
    /// Numbers' bad rates must rise or fall across their bins (a card a person can explain).
    pub monotonic: bool,
}

impl Default for BinningOptions {
    fn default() -> Self {
        Self {
            max_bins: 6,
            fine_classes: 20,
            min_share: 0.05,
            min_chi_square: 1.0,
            monotonic: true,
        }
    }
}

/// Which values a bin holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Bin {
    Missing,
    /// `from <= x < to`; an open end is unbounded.
    Range {
        from: Option<f64>,
        to: Option<f64>,
    },
    /// These categories; `others` also takes every category not seen in training.
    Categories {
        values: Vec<String>,
        others: bool,
    },
}

impl Bin {
    fn holds_number(&self, x: f64) -> bool {
        match self {
            Bin::Range { from, to } => from.is_none_or(|f| x >= f) && to.is_none_or(|t| x < t),
            Bin::Missing | Bin::Categories { .. } => false,
        }
    }

    fn holds_category(&self, x: &str) -> bool {
        match self {
            Bin::Categories { values, .. } => values.iter().any(|v| v == x),
            Bin::Missing | Bin::Range { .. } => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BinStats {
    pub bin: Bin,
    pub goods: usize,
    pub bads: usize,
    pub woe: f64,
}

/// A characteristic binned: its bins, in order, and its information value.
#[derive(Debug, Clone, PartialEq)]
pub struct Binned {
    pub name: String,
    pub numeric: bool,
    pub bins: Vec<BinStats>,
    pub iv: f64,
}

/// Counts of goods and bads in a run of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    goods: usize,
    bads: usize,
}

impl Tally {
    fn add(self, other: Tally) -> Tally {
        Tally {
            goods: self.goods + other.goods,
            bads: self.bads + other.bads,
        }
    }

    fn rows(self) -> usize {
        self.goods + self.bads
    }

    fn bad_rate(self) -> f64 {
        if self.rows() == 0 {
            0.0
        } else {
            self.bads as f64 / self.rows() as f64
        }
    }
}

/// A class being merged: its tally and what it holds (cut points or categories).
#[derive(Debug, Clone)]
struct Class<K> {
    tally: Tally,
    key: K,
}

pub fn bin(column: &Column, bad: &[bool], options: BinningOptions) -> Binned {
    let (total_goods, total_bads) = (
        bad.iter().filter(|b| !**b).count(),
        bad.iter().filter(|b| **b).count(),
    );
    let mut missing = Tally::default();
    let mut bins: Vec<(Bin, Tally)> = match &column.values {
        Values::Numeric(values) => {
            let mut present: Vec<(f64, bool)> = Vec::new();
            for (v, b) in values.iter().zip(bad) {
                match v {
                    Some(x) => present.push((*x, *b)),
                    None => missing = missing.add(tally_of(*b)),
                }
            }
            numeric_bins(present, options)
        }
        Values::Categorical(values) => {
            let mut by_value: std::collections::BTreeMap<&str, Tally> = Default::default();
            for (v, b) in values.iter().zip(bad) {
                match v {
                    Some(x) => {
                        let t = by_value.entry(x.as_str()).or_default();
                        *t = t.add(tally_of(*b));
                    }
                    None => missing = missing.add(tally_of(*b)),
                }
            }
            categorical_bins(by_value, options)
        }
    };
    // Missing values keep a bin of their own, even when training had none.
    bins.push((Bin::Missing, missing));
    let woe = |t: Tally| {
        if t.rows() == 0 {
            return 0.0;
        }
        let g = (t.goods as f64 + 0.5) / (total_goods as f64 + 0.5);
        let b = (t.bads as f64 + 0.5) / (total_bads as f64 + 0.5);
        (g / b).ln()
    };
    let stats: Vec<BinStats> = bins
        .into_iter()
        .map(|(bin, t)| BinStats {
            bin,
            goods: t.goods,
            bads: t.bads,
            woe: woe(t),
        })
        .collect();
    let iv = stats
        .iter()
        .map(|s| {
            let g = s.goods as f64 / total_goods.max(1) as f64;
            let b = s.bads as f64 / total_bads.max(1) as f64;
            (g - b) * s.woe
        })
        .sum();
    Binned {
        name: column.name.clone(),
        numeric: matches!(column.values, Values::Numeric(_)),
        bins: stats,
        iv,
    }
}

fn tally_of(bad: bool) -> Tally {
    if bad {
        Tally { goods: 0, bads: 1 }
    } else {
        Tally { goods: 1, bads: 0 }
    }
}

/// Numbers: fine classes at quantiles (a class starts at its smallest value), then merged.
fn numeric_bins(mut present: Vec<(f64, bool)>, options: BinningOptions) -> Vec<(Bin, Tally)> {
    if present.is_empty() {
        return Vec::new();
    }
    present.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = present.len();
    let mut classes: Vec<Class<f64>> = Vec::new();
    let step = (n as f64 / options.fine_classes.max(1) as f64).max(1.0);
    let mut i = 0;
    while i < n {
        let start = present[i].0;
        // At least a step of rows, and never splitting equal values.
        let mut end = ((i as f64 + step).round() as usize).clamp(i + 1, n);
        while end < n && present[end].0 == present[end - 1].0 {
            end += 1;
        }
        let tally = present[i..end]
            .iter()
            .fold(Tally::default(), |t, (_, b)| t.add(tally_of(*b)));
        classes.push(Class { tally, key: start });
        i = end;
    }
    let classes = merge(classes, n, options, options.monotonic);
    let starts: Vec<f64> = classes.iter().map(|c| c.key).collect();
    classes
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let from = (k > 0).then(|| starts[k]);
            let to = starts.get(k + 1).copied();
            (Bin::Range { from, to }, c.tally)
        })
        .collect()
}

/// Categories: one class each, ordered by bad rate, then merged.
fn categorical_bins(
    by_value: std::collections::BTreeMap<&str, Tally>,
    options: BinningOptions,
) -> Vec<(Bin, Tally)> {
    let n: usize = by_value.values().map(|t| t.rows()).sum();
    let mut classes: Vec<Class<Vec<String>>> = by_value
        .into_iter()
        .map(|(v, tally)| Class {
            tally,
            key: vec![v.to_owned()],
        })
        .collect();
    classes.sort_by(|a, b| a.tally.bad_rate().total_cmp(&b.tally.bad_rate()));
    let merged = merge(classes, n, options, false);
    let last = merged.len().saturating_sub(1);
    merged
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            (
                Bin::Categories {
                    values: c.key,
                    others: k == last,
                },
                c.tally,
            )
        })
        .collect()
}

/// Merging keys: a numeric class keeps its start (the lower one's); categories join.
trait Key: Clone {
    fn join(self, upper: Self) -> Self;
}

impl Key for f64 {
    fn join(self, _upper: f64) -> f64 {
        self
    }
}

impl Key for Vec<String> {
    fn join(mut self, upper: Vec<String>) -> Vec<String> {
        self.extend(upper);
        self
    }
}

/// Merges neighbouring classes: first any too small, then (numbers) until the bad rate is
/// monotonic, then those whose difference is not significant, then down to `max_bins`, each
/// time the pair that differs least.
fn merge<K: Key>(
    mut classes: Vec<Class<K>>,
    rows: usize,
    options: BinningOptions,
    monotonic: bool,
) -> Vec<Class<K>> {
    let least = (rows as f64 * options.min_share).ceil() as usize;
    let join_at = |classes: &mut Vec<Class<K>>, i: usize| {
        let upper = classes.remove(i + 1);
        let lower = &mut classes[i];
        lower.tally = lower.tally.add(upper.tally);
        lower.key = lower.key.clone().join(upper.key);
    };
    let closest = |classes: &[Class<K>], among: &dyn Fn(usize) -> bool| -> Option<usize> {
        (0..classes.len().saturating_sub(1))
            .filter(|&i| among(i))
            .min_by(|&a, &b| {
                let gap = |i: usize| {
                    (classes[i].tally.bad_rate() - classes[i + 1].tally.bad_rate()).abs()
                };
                gap(a).total_cmp(&gap(b))
            })
    };
    while classes.len() > 1 {
        let Some(small) = classes.iter().position(|c| c.tally.rows() < least) else {
            break;
        };
        let pair = closest(&classes, &|i| i == small || i + 1 == small).unwrap_or(0);
        join_at(&mut classes, pair);
    }
    if monotonic && classes.len() > 2 {
        let first = classes[0].tally.bad_rate();
        let last = classes[classes.len() - 1].tally.bad_rate();
        let rising = last >= first;
        loop {
            let violation = (0..classes.len() - 1).find(|&i| {
                let (a, b) = (classes[i].tally.bad_rate(), classes[i + 1].tally.bad_rate());
                if rising { b < a } else { b > a }
            });
            match violation {
                Some(i) => join_at(&mut classes, i),
                None => break,
            }
        }
    }
    // Neighbours the data cannot tell apart are one bin (chi-square merging).
    while classes.len() > 1 {
        let (pair, chi) = (0..classes.len() - 1)
            .map(|i| (i, chi_square(classes[i].tally, classes[i + 1].tally)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::INFINITY));
        if chi >= options.min_chi_square {
            break;
        }
        join_at(&mut classes, pair);
    }
    while classes.len() > options.max_bins.max(1) {
        let pair = closest(&classes, &|_| true).unwrap_or(0);
        join_at(&mut classes, pair);
    }
    classes
}

/// Pearson's chi-square of two neighbours' goods and bads (a 2×2 table).
fn chi_square(a: Tally, b: Tally) -> f64 {
    let total = (a.rows() + b.rows()) as f64;
    let goods = (a.goods + b.goods) as f64;
    let bads = (a.bads + b.bads) as f64;
    if total == 0.0 || goods == 0.0 || bads == 0.0 {
        return 0.0;
    }
    [a, b]
        .iter()
        .map(|t| {
            let rows = t.rows() as f64;
            let (expected_good, expected_bad) = (rows * goods / total, rows * bads / total);
            (t.goods as f64 - expected_good).powi(2) / expected_good
                + (t.bads as f64 - expected_bad).powi(2) / expected_bad
        })
        .sum()
}

impl Binned {
    /// The bin a value falls in (the missing bin for `None` and for a category never seen,
    /// unless a bin takes the others).
    pub fn bin_of_number(&self, x: Option<f64>) -> usize {
        let found = x.and_then(|x| self.bins.iter().position(|s| s.bin.holds_number(x)));
        found.unwrap_or(self.bins.len() - 1)
    }

    pub fn bin_of_category(&self, x: Option<&str>) -> usize {
        let Some(x) = x else {
            return self.bins.len() - 1;
        };
        self.bins
            .iter()
            .position(|s| s.bin.holds_category(x))
            .or_else(|| {
                self.bins
                    .iter()
                    .position(|s| matches!(s.bin, Bin::Categories { others: true, .. }))
            })
            .unwrap_or(self.bins.len() - 1)
    }

    /// Each row's bin in `column` (which must be this characteristic's).
    pub fn assign(&self, column: &Column) -> Vec<usize> {
        match &column.values {
            Values::Numeric(v) => v.iter().map(|x| self.bin_of_number(*x)).collect(),
            Values::Categorical(v) => v
                .iter()
                .map(|x| self.bin_of_category(x.as_deref()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(rows: &[(f64, bool)]) -> (Column, Vec<bool>) {
        (
            Column {
                name: "x".into(),
                values: Values::Numeric(rows.iter().map(|(x, _)| Some(*x)).collect()),
            },
            rows.iter().map(|(_, b)| *b).collect(),
        )
    }

    #[test]
    fn a_step_in_the_bad_rate_is_found_and_nothing_else_is_kept() {
        // Below 50 one in ten is bad; from 50 on, one in two: the best binning cuts at 50.
        let rows: Vec<(f64, bool)> = (0..1000)
            .map(|i| {
                let x = f64::from(i % 100);
                let bad = if x < 50.0 { i % 10 == 0 } else { i % 2 == 0 };
                (x, bad)
            })
            .collect();
        let (column, bad) = numbers(&rows);
        let binned = bin(&column, &bad, BinningOptions::default());
        let ranges: Vec<&Bin> = binned.bins.iter().map(|s| &s.bin).collect();
        assert_eq!(
            ranges,
            [
                &Bin::Range {
                    from: None,
                    to: Some(50.0)
                },
                &Bin::Range {
                    from: Some(50.0),
                    to: None
                },
                &Bin::Missing
            ],
            "{binned:?}"
        );
        assert!(
            binned.bins[0].woe > 0.0 && binned.bins[1].woe < 0.0,
            "goods below, bads above"
        );
        // IV of a 10% vs 50% split in halves: well known to be strong.
        assert!(binned.iv > 0.5, "{}", binned.iv);
        assert_eq!(binned.bin_of_number(Some(49.0)), 0);
        assert_eq!(binned.bin_of_number(Some(1e9)), 1);
        assert_eq!(binned.bin_of_number(None), 2);
    }

    #[test]
    fn bins_are_monotonic_hold_a_minimum_share_and_are_few() {
        let rows: Vec<(f64, bool)> = (0..2000)
            .map(|i| {
                let x = f64::from(i % 200);
                // Bad rate rising with x, with noise that a fine class would chase.
                let bad = (i * 7919 % 100) < (10 + (i % 200) / 5 + (i % 3) * 4);
                (x, bad)
            })
            .collect();
        let (column, bad) = numbers(&rows);
        let options = BinningOptions {
            max_bins: 5,
            fine_classes: 20,
            min_share: 0.05,
            ..BinningOptions::default()
        };
        let binned = bin(&column, &bad, options);
        let values = &binned.bins[..binned.bins.len() - 1];
        assert!(values.len() <= 5 && values.len() >= 2, "{binned:?}");
        for pair in values.windows(2) {
            let rate = |s: &BinStats| s.bads as f64 / (s.goods + s.bads) as f64;
            assert!(rate(&pair[1]) >= rate(&pair[0]), "monotonic: {binned:?}");
        }
        assert!(
            values.iter().all(|s| s.goods + s.bads >= 100),
            "5% of 2000 each"
        );
    }

    #[test]
    fn categories_group_by_bad_rate_and_unseen_ones_fall_with_the_last_group() {
        let mut values = Vec::new();
        let mut bad = Vec::new();
        for (category, rate) in [("a", 5), ("b", 6), ("c", 40), ("d", 42), ("rare", 50)] {
            let n = if category == "rare" { 10 } else { 300 };
            for i in 0..n {
                values.push(Some(category.to_owned()));
                bad.push(i * 100 / n < rate);
            }
        }
        values.push(None);
        bad.push(true);
        let column = Column {
            name: "job".into(),
            values: Values::Categorical(values),
        };
        let binned = bin(
            &column,
            &bad,
            BinningOptions {
                max_bins: 2,
                ..BinningOptions::default()
            },
        );
        assert_eq!(binned.bins.len(), 3, "{binned:?}");
        assert_eq!(
            binned.bins[0].bin,
            Bin::Categories {
                values: vec!["a".into(), "b".into()],
                others: false
            }
        );
        let Bin::Categories {
            values: high,
            others,
        } = &binned.bins[1].bin
        else {
            panic!("{binned:?}")
        };
        assert!(
            *others && high.contains(&"rare".to_owned()),
            "the rare category is merged: {binned:?}"
        );
        assert_eq!(binned.bin_of_category(Some("never-seen")), 1);
        assert_eq!(binned.bin_of_category(None), 2);
        assert_eq!((binned.bins[2].goods, binned.bins[2].bads), (0, 1));
    }
}
