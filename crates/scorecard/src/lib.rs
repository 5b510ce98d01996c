//! Scorecards trained from a lender's own history (issue #14): every characteristic binned
//! (monotonic binning for numbers, grouping by bad rate for categories, a minimum share per
//! bin, missing values in a bin of their own), weights of evidence and information value per
//! bin, selection by information value, a logistic regression on the weights of evidence, and
//! the points each bin is worth on a chosen scale. How well a card ranks is measured by AUC, KS
//! and Gini. Kept out of the crates the service compiles: only the `lendcore` binary uses it.

pub mod binning;
pub mod data;
pub mod metrics;
pub mod model;
pub mod report;
pub mod train;

pub use binning::{Bin, BinStats, Binned, BinningOptions};
pub use data::{Column, DataError, Dataset, Values, is_missing};
pub use metrics::{Ranking, ranking};
pub use model::{Logistic, fit_logistic};
