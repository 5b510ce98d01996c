//! Conditions as exact sets of feature values: a piece is one set per feature (a feature not
//! named admits anything), a guard a list of disjoint pieces. A switch branch's guard is folded
//! into the rows of the tables it leads to; a row that becomes several pieces becomes several
//! rows, which never overlap, so a first-hit table stays first-hit and a collect table fires a
//! row at most once.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::expr::{Literal, Op, Test};
use crate::decision::features::{Feature, FeatureType};
use crate::decision::policy::CellInput;
use crate::decision::sets::{Set, Values};

pub(super) type Piece = BTreeMap<Feature, Set>;

fn empty_like(full: &Set) -> Set {
    full.minus(full)
}

fn union(feature: Feature, a: &Set, b: &Set) -> Set {
    let full = Set::full(feature);
    full.minus(&full.minus(a).intersect(&full.minus(b)))
}

/// An integer bound from a decimal one, clamped to what an i64 holds.
fn whole(d: Decimal) -> i64 {
    i64::try_from(d).unwrap_or(if d.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn numbers(feature: Feature, lo: i64, hi: i64) -> Set {
    Set::numbers(lo, hi).intersect(&Set::full(feature))
}

/// The values `value op literal` admits for a feature, `null` included only where the
/// comparison holds for it (`!=`).
pub(super) fn compare(feature: Feature, op: Op, literal: &Literal) -> Result<Set, String> {
    let definition = feature.definition();
    let full = Set::full(feature);
    let equal = match (definition.kind, literal) {
        (FeatureType::Number, Literal::Number(d)) => match op {
            Op::Gt => {
                return Ok(numbers(
                    feature,
                    whole(d.floor()).saturating_add(1),
                    i64::MAX,
                ));
            }
            Op::Ge => return Ok(numbers(feature, whole(d.ceil()), i64::MAX)),
            Op::Lt => {
                return Ok(numbers(
                    feature,
                    i64::MIN,
                    whole(d.ceil()).saturating_sub(1),
                ));
            }
            Op::Le => return Ok(numbers(feature, i64::MIN, whole(d.floor()))),
            Op::Eq | Op::Ne if d.fract().is_zero() => numbers(feature, whole(*d), whole(*d)),
            // No whole number equals a fraction.
            Op::Eq | Op::Ne => empty_like(&full),
        },
        (FeatureType::Text, Literal::Text(t)) => match op {
            Op::Eq | Op::Ne => Set {
                missing: false,
                values: Values::Texts {
                    except: false,
                    items: [t.clone()].into(),
                },
            },
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                return Err(format!(
                    "{} is text: lendcore compares text only for equality",
                    definition.name
                ));
            }
        },
        (FeatureType::Flag, Literal::Flag(b)) => match op {
            Op::Eq | Op::Ne => Set {
                missing: false,
                values: Values::Flags { yes: *b, no: !*b },
            },
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                return Err(format!(
                    "{} is a flag: compare it with true or false",
                    definition.name
                ));
            }
        },
        (kind, _) => {
            return Err(format!(
                "{} is a {}: the value compared with it is not",
                definition.name,
                format!("{kind:?}").to_lowercase()
            ));
        }
    };
    Ok(match op {
        Op::Ne => {
            let mut other = full.minus(&equal);
            other.missing = full.missing;
            other
        }
        Op::Eq | Op::Gt | Op::Ge | Op::Lt | Op::Le => equal.intersect(&full),
    })
}

/// The values a unary test admits: any alternative; everything for none.
pub(super) fn unary(feature: Feature, tests: &[Test]) -> Result<Set, String> {
    let full = Set::full(feature);
    if tests.is_empty() {
        return Ok(full);
    }
    let mut admitted = empty_like(&full);
    for test in tests {
        let set = match test {
            Test::Compare(op, literal) => compare(feature, *op, literal)?,
            Test::Range {
                lo,
                lo_included,
                hi,
                hi_included,
            } => {
                if feature.definition().kind != FeatureType::Number {
                    return Err(format!(
                        "{} is not a number: a range cannot test it",
                        feature.name()
                    ));
                }
                let lo = if *lo_included {
                    whole(lo.ceil())
                } else {
                    whole(lo.floor()).saturating_add(1)
                };
                let hi = if *hi_included {
                    whole(hi.floor())
                } else {
                    whole(hi.ceil()).saturating_sub(1)
                };
                numbers(feature, lo, hi)
            }
        };
        admitted = union(feature, &admitted, &set);
    }
    Ok(admitted)
}

/// Both pieces at once; `None` when nothing satisfies both.
pub(super) fn intersect(a: &Piece, b: &Piece) -> Option<Piece> {
    let mut out = a.clone();
    for (feature, set) in b {
        let both = match out.get(feature) {
            Some(mine) => mine.intersect(set),
            None => set.clone(),
        };
        if both.is_empty() {
            return None;
        }
        out.insert(*feature, both);
    }
    Some(out)
}

/// Every input a piece does not admit, as disjoint pieces: not the first condition, or the
/// first and not the second, and so on.
pub(super) fn negate(piece: &Piece) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut prefix = Piece::new();
    for (feature, set) in piece {
        let outside = Set::full(*feature).minus(set);
        if !outside.is_empty() {
            let mut p = prefix.clone();
            p.insert(*feature, outside);
            out.push(p);
        }
        prefix.insert(*feature, set.clone());
    }
    out
}

/// Pieces of both guards that meet.
pub(super) fn meet(a: &[Piece], b: &[Piece]) -> Vec<Piece> {
    a.iter()
        .flat_map(|x| b.iter().filter_map(move |y| intersect(x, y)))
        .collect()
}

/// A piece as policy conditions: one row's `when` each (several when a set is not one
/// condition, e.g. two ranges of one number).
pub(super) fn rows(piece: &Piece) -> Vec<BTreeMap<String, CellInput>> {
    let mut out = vec![BTreeMap::new()];
    for (feature, set) in piece {
        let cells = cells(*feature, set);
        if cells.is_empty() {
            continue;
        }
        out = out
            .into_iter()
            .flat_map(|when| {
                cells.iter().map(move |cell| {
                    let mut when = when.clone();
                    when.insert(feature.name().to_owned(), cell.clone());
                    when
                })
            })
            .collect();
    }
    out
}

/// A set as conditions that never overlap; none when the set is everything.
fn cells(feature: Feature, set: &Set) -> Vec<CellInput> {
    let full = Set::full(feature);
    if full.minus(set).is_empty() {
        return Vec::new();
    }
    let missing = set.missing.then_some(true);
    match &set.values {
        Values::Numbers(spans) => {
            // An end at the feature's own range goes unsaid.
            let (flo, fhi) = feature.definition().range.unwrap_or((i64::MIN, i64::MAX));
            let mut out: Vec<CellInput> = spans
                .iter()
                .map(|(lo, hi)| {
                    let mut cell = CellInput {
                        min: (*lo != flo).then_some(*lo),
                        max: (*hi != fhi).then_some(*hi),
                        ..CellInput::default()
                    };
                    if cell.min.is_none() && cell.max.is_none() {
                        // Any number, but a number: missing stays out.
                        cell.min = Some(flo);
                    }
                    cell
                })
                .collect();
            match out.first_mut() {
                Some(first) => first.missing = missing,
                None => out.push(CellInput {
                    missing,
                    ..CellInput::default()
                }),
            }
            out
        }
        Values::Texts { except, items } => {
            let items: Vec<String> = items.iter().cloned().collect();
            if !except && items.is_empty() {
                return vec![CellInput {
                    missing,
                    ..CellInput::default()
                }];
            }
            vec![CellInput {
                one_of: (!except).then(|| items.clone()),
                not_in: except.then_some(items),
                missing,
                ..CellInput::default()
            }]
        }
        Values::Flags { yes, no } => match (yes, no) {
            (true, true) => vec![
                CellInput {
                    is: Some(true),
                    missing,
                    ..CellInput::default()
                },
                CellInput {
                    is: Some(false),
                    ..CellInput::default()
                },
            ],
            (true, false) | (false, true) => vec![CellInput {
                is: Some(*yes),
                missing,
                ..CellInput::default()
            }],
            (false, false) => vec![CellInput {
                missing,
                ..CellInput::default()
            }],
        },
    }
}
