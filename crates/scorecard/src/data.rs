//! A history as a table: one column per characteristic, numeric where the values present read
//! as numbers, categorical otherwise, and the outcome as bad or not. Empty cells (and `NA`)
//! are missing; so are a few stray words in a column of numbers (`unknown`), told in a note,
//! rather than turning every number into a category of its own.

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
    /// What reading made of the file that the person training should know.
    pub notes: Vec<String>,
}

/// At most this share of a column's present cells, in at most [`MAX_STRAY_WORDS`] distinct
/// words, may fail to read as numbers for the column to stay numeric.
const MAX_STRAY_SHARE: f64 = 0.01;
const MAX_STRAY_WORDS: usize = 3;

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

/// Whether a cell says nothing: empty, `NA` or `null`. Scoring reads cells as training did.
pub fn is_missing(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty() || cell.eq_ignore_ascii_case("na") || cell.eq_ignore_ascii_case("null")
}

impl Dataset {
    /// Reads a CSV with a header row. `bad` names the target's bad value; without it the target
    /// must hold `1` and `0` (or `bad` and `good`, or `true` and `false`). Columns `categorical`
    /// picks are categories whatever their values look like (codes made of digits).
    pub fn from_csv(
        reader: impl std::io::Read,
        target: &str,
        bad: Option<&str>,
        categorical: impl Fn(&str) -> bool,
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
        let mut notes = Vec::new();
        let columns = header
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != t)
            .map(|(i, name)| {
                let cells: Vec<&str> = rows.iter().map(|r| r[i].trim()).collect();
                let number = |c: &str| c.parse::<f64>().ok().filter(|x| x.is_finite());
                let present = cells.iter().filter(|c| !is_missing(c)).count();
                let stray: Vec<&str> = cells
                    .iter()
                    .filter(|c| !is_missing(c) && number(c).is_none())
                    .copied()
                    .collect();
                let words: std::collections::BTreeSet<&str> = stray.iter().copied().collect();
                let numeric = !categorical(name)
                    && stray.len() < present
                    && stray.len() as f64 <= present as f64 * MAX_STRAY_SHARE
                    && words.len() <= MAX_STRAY_WORDS;
                let values =
                    if numeric {
                        if !stray.is_empty() {
                            notes.push(format!(
                            "{name}: {} read as missing ({}): not numbers in a column of numbers",
                            if stray.len() == 1 {
                                "1 cell".to_owned()
                            } else {
                                format!("{} cells", stray.len())
                            },
                            words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(", ")
                        ));
                        }
                        Values::Numeric(
                            cells
                                .iter()
                                .map(|c| (!is_missing(c)).then(|| number(c)).flatten())
                                .collect(),
                        )
                    } else {
                        Values::Categorical(
                            cells
                                .iter()
                                .map(|c| (!is_missing(c)).then(|| (*c).to_owned()))
                                .collect(),
                        )
                    };
                Column {
                    name: name.clone(),
                    values,
                }
            })
            .collect();
        Ok(Dataset {
            columns,
            bad,
            notes,
        })
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
            notes: self.notes.clone(),
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
        let data = Dataset::from_csv(csv.as_bytes(), "outcome", None, |_| false).unwrap();
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
            Dataset::from_csv(csv.as_bytes(), "nope", None, |_| false),
            Err(DataError::NoTarget(_))
        ));
        let blank = "x,y\n1,good\n2,\n";
        assert!(matches!(
            Dataset::from_csv(blank.as_bytes(), "y", Some("bad"), |_| false),
            Err(DataError::NoOutcome(2))
        ));
        let all_good = "x,y\n1,good\n2,good\n";
        assert!(matches!(
            Dataset::from_csv(all_good.as_bytes(), "y", Some("bad"), |_| false),
            Err(DataError::OneOutcome(_))
        ));
    }

    #[test]
    fn a_split_holds_out_the_same_share_of_goods_and_bads_and_repeats_by_seed() {
        let rows: String = (0..100)
            .map(|i| format!("{i},{}\n", if i % 4 == 0 { 1 } else { 0 }))
            .collect();
        let data =
            Dataset::from_csv(format!("x,y\n{rows}").as_bytes(), "y", None, |_| false).unwrap();
        let (train, test) = data.split(0.3, 7);
        assert_eq!(
            (train.rows(), test.rows()),
            (69, 31),
            "23 of the 75 goods, 8 of the 25 bads"
        );
        assert_eq!(test.bad.iter().filter(|b| **b).count(), 8);
        assert_eq!(data.split(0.3, 7), (train, test));
    }

    #[test]
    fn a_few_stray_words_in_numbers_are_missing_and_codes_can_be_categories() {
        let mut csv = String::from("age,region,note,outcome\n");
        for i in 0..300 {
            let age = if i == 7 {
                "unknown".to_owned()
            } else {
                (20 + i % 50).to_string()
            };
            let note = if i % 10 == 0 { "late" } else { "12" };
            csv.push_str(&format!("{age},{},{note},{}\n", 110_000 + i % 3, i % 2));
        }
        let data =
            Dataset::from_csv(csv.as_bytes(), "outcome", None, |name| name == "region").unwrap();
        let Values::Numeric(ages) = &data.columns[0].values else {
            panic!(
                "one stray word leaves age numeric: {:?}",
                data.columns[0].values
            );
        };
        assert_eq!((ages[7], ages[8]), (None, Some(28.0)));
        assert_eq!(data.notes.len(), 1, "{:?}", data.notes);
        assert!(
            data.notes[0].contains("age: 1 cell read") && data.notes[0].contains("\"unknown\"")
        );
        assert!(
            matches!(&data.columns[1].values, Values::Categorical(v) if v[0].as_deref() == Some("110000")),
            "asked to be categories"
        );
        assert!(
            matches!(data.columns[2].values, Values::Categorical(_)),
            "a tenth of the cells are words: a category"
        );
    }
}
