//! A history as a table: one column per characteristic, numeric where every value present reads
//! as a number, categorical otherwise, and the outcome as bad or not. Empty cells (and `NA`)
//! are missing.

use rand::SeedableRng;
use rand::seq::SliceRandom;

#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub values: Values,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub columns: Vec<Column>,
    /// Whether each row turned out bad.
    pub bad: Vec<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the file cannot be read as CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("no column named {0}")]
    NoTarget(String),
    #[error("the target column's values are not two: give the bad one with --bad (seen: {0})")]
    TargetNotBinary(String),
    #[error("the file has no rows")]
    Empty,
    #[error("both outcomes are needed to train: {0}")]
    OneOutcome(&'static str),
    #[error("row {0} has no outcome: leave it out, or give it one")]
    NoOutcome(usize),
}

fn missing(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty() || cell.eq_ignore_ascii_case("na") || cell.eq_ignore_ascii_case("null")
}

impl Dataset {
    /// Reads a CSV with a header row. `bad` names the target's bad value; without it the target
    /// must hold `1` and `0` (or `bad` and `good`, or `true` and `false`).
    pub fn from_csv(
        reader: impl std::io::Read,
        target: &str,
        bad: Option<&str>,
    ) -> Result<Dataset, DataError> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        let header: Vec<String> = csv.headers()?.iter().map(str::to_owned).collect();
        let t = header
            .iter()
            .position(|h| h == target)
            .ok_or_else(|| DataError::NoTarget(target.to_owned()))?;
        let mut rows: Vec<Vec<String>> = Vec::new();
        for record in csv.records() {
            rows.push(record?.iter().map(str::to_owned).collect());
        }
        if rows.is_empty() {
            return Err(DataError::Empty);
        }
        if let Some(n) = rows.iter().position(|r| r[t].trim().is_empty()) {
            return Err(DataError::NoOutcome(n + 1));
        }
        let outcomes: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[t].trim()).collect();
        let bad_value = match bad {
            Some(value) => value.to_owned(),
            None => ["1", "bad", "true"]
                .into_iter()
                .find(|v| outcomes.contains(v) && outcomes.len() == 2)
                .ok_or_else(|| DataError::TargetNotBinary(format!("{outcomes:?}")))?
                .to_owned(),
        };
        let bad: Vec<bool> = rows.iter().map(|r| r[t].trim() == bad_value).collect();
        if bad.iter().all(|b| *b) {
            return Err(DataError::OneOutcome("every row is bad"));
        }
        if !bad.iter().any(|b| *b) {
            return Err(DataError::OneOutcome(
                "no row is bad (is --bad the target's bad value?)",
            ));
        }
        let columns = header
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != t)
            .map(|(i, name)| {
                let cells: Vec<&str> = rows.iter().map(|r| r[i].as_str()).collect();
                let numeric = cells
                    .iter()
                    .filter(|c| !missing(c))
                    .all(|c| c.trim().parse::<f64>().is_ok_and(f64::is_finite));
                let values = if numeric {
                    Values::Numeric(
                        cells
                            .iter()
                            .map(|c| (!missing(c)).then(|| c.trim().parse().unwrap_or(0.0)))
                            .collect(),
                    )
                } else {
                    Values::Categorical(
                        cells
                            .iter()
                            .map(|c| (!missing(c)).then(|| c.trim().to_owned()))
                            .collect(),
                    )
                };
                Column {
                    name: name.clone(),
                    values,
                }
            })
            .collect();
        Ok(Dataset { columns, bad })
    }

    pub fn rows(&self) -> usize {
        self.bad.len()
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    values: match &c.values {
                        Values::Numeric(v) => {
                            Values::Numeric(indices.iter().map(|&i| v[i]).collect())
                        }
                        Values::Categorical(v) => {
                            Values::Categorical(indices.iter().map(|&i| v[i].clone()).collect())
                        }
                    },
                })
                .collect(),
            bad: indices.iter().map(|&i| self.bad[i]).collect(),
        }
    }

    /// Splits the rows into a training and a held-out part, `test_share` of the goods and of
    /// the bads held out (stratified), at random by `seed`.
    pub fn split(&self, test_share: f64, seed: u64) -> (Dataset, Dataset) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for outcome in [false, true] {
            let mut rows: Vec<usize> = (0..self.rows())
                .filter(|&i| self.bad[i] == outcome)
                .collect();
            rows.shuffle(&mut rng);
            let held = (rows.len() as f64 * test_share).round() as usize;
            test.extend_from_slice(&rows[..held]);
            train.extend_from_slice(&rows[held..]);
        }
        train.sort_unstable();
        test.sort_unstable();
        (self.subset(&train), self.subset(&test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_read_as_numbers_or_categories_with_missing_cells_apart() {
        let csv =
            "age,job,income,outcome\n30,clerk,100,good\n,NA,2.5,bad\n41,\"cook, head\",,good\n";
        let data = Dataset::from_csv(csv.as_bytes(), "outcome", None).unwrap();
        assert_eq!(data.bad, [false, true, false]);
        assert_eq!(
            data.columns[0].values,
            Values::Numeric(vec![Some(30.0), None, Some(41.0)])
        );
        assert_eq!(
            data.columns[1].values,
            Values::Categorical(vec![Some("clerk".into()), None, Some("cook, head".into())])
        );
        assert_eq!(
            data.columns[2].values,
            Values::Numeric(vec![Some(100.0), Some(2.5), None])
        );
        assert!(matches!(
            Dataset::from_csv(csv.as_bytes(), "nope", None),
            Err(DataError::NoTarget(_))
        ));
        let blank = "x,y\n1,good\n2,\n";
        assert!(matches!(
            Dataset::from_csv(blank.as_bytes(), "y", Some("bad")),
            Err(DataError::NoOutcome(2))
        ));
        let all_good = "x,y\n1,good\n2,good\n";
        assert!(matches!(
            Dataset::from_csv(all_good.as_bytes(), "y", Some("bad")),
            Err(DataError::OneOutcome(_))
        ));
    }

    #[test]
    fn a_split_holds_out_the_same_share_of_goods_and_bads_and_repeats_by_seed() {
        let rows: String = (0..100)
            .map(|i| format!("{i},{}\n", if i % 4 == 0 { 1 } else { 0 }))
            .collect();
        let data = Dataset::from_csv(format!("x,y\n{rows}").as_bytes(), "y", None).unwrap();
        let (train, test) = data.split(0.3, 7);
        assert_eq!(
            (train.rows(), test.rows()),
            (69, 31),
            "23 of the 75 goods, 8 of the 25 bads"
        );
        assert_eq!(test.bad.iter().filter(|b| **b).count(), 8);
        assert_eq!(data.split(0.3, 7), (train, test));
    }
}
