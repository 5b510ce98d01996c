//! Sets of feature values and boxes of them, exact, for validation: a row's condition is a box
//! (one set per feature), and gaps, overlaps and rows nobody reaches are found by intersecting
//! and subtracting boxes. Numbers are integers, so a gap is never lost to rounding.

use std::collections::BTreeSet;
use std::fmt;

use super::features::{Feature, FeatureType};

/// The values one condition admits, and whether it admits a missing value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Set {
    pub missing: bool,
    pub values: Values,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Values {
    /// Sorted, disjoint, non-adjacent closed intervals.
    Numbers(Vec<(i64, i64)>),
    /// `except == false`: exactly `items`; `except == true`: every text but `items`.
    Texts {
        except: bool,
        items: BTreeSet<String>,
    },
    Flags {
        yes: bool,
        no: bool,
    },
}

impl Set {
    /// Every value the feature can take (missing included where it may be missing).
    pub fn full(feature: Feature) -> Set {
        let definition = feature.definition();
        Set {
            missing: definition.may_be_missing,
            values: match definition.kind {
                FeatureType::Number => {
                    let (lo, hi) = definition.range.unwrap_or((i64::MIN, i64::MAX));
                    Values::Numbers(vec![(lo, hi)])
                }
                FeatureType::Text => Values::Texts {
                    except: true,
                    items: BTreeSet::new(),
                },
                FeatureType::Flag => Values::Flags {
                    yes: true,
                    no: true,
                },
            },
        }
    }

    pub fn numbers(lo: i64, hi: i64) -> Set {
        Set {
            missing: false,
            values: Values::Numbers(if lo <= hi { vec![(lo, hi)] } else { vec![] }),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.missing
            && match &self.values {
                Values::Numbers(spans) => spans.is_empty(),
                Values::Texts { except, items } => !except && items.is_empty(),
                Values::Flags { yes, no } => !yes && !no,
            }
    }

    pub fn intersect(&self, other: &Set) -> Set {
        Set {
            missing: self.missing && other.missing,
            values: combine(&self.values, &other.values, false),
        }
    }

    pub fn minus(&self, other: &Set) -> Set {
        Set {
            missing: self.missing && !other.missing,
            values: combine(&self.values, &other.values, true),
        }
    }
}

/// `a ∩ b`, or `a ∖ b` when `subtract`. Sets of different kinds never meet (validation
/// refuses a condition of the wrong type before boxes are built).
fn combine(a: &Values, b: &Values, subtract: bool) -> Values {
    match (a, b) {
        (Values::Numbers(a), Values::Numbers(b)) => {
            let b = if subtract { complement(b) } else { b.clone() };
            Values::Numbers(intersect_spans(a, &b))
        }
        (
            Values::Texts {
                except: ea,
                items: ia,
            },
            Values::Texts {
                except: eb,
                items: ib,
            },
        ) => {
            // Subtracting b is intersecting with its complement: the same items, `except` flipped.
            let eb = *eb != subtract;
            match (*ea, eb) {
                (false, false) => Values::Texts {
                    except: false,
                    items: ia.intersection(ib).cloned().collect(),
                },
                (false, true) => Values::Texts {
                    except: false,
                    items: ia.difference(ib).cloned().collect(),
                },
                (true, false) => Values::Texts {
                    except: false,
                    items: ib.difference(ia).cloned().collect(),
                },
                (true, true) => Values::Texts {
                    except: true,
                    items: ia.union(ib).cloned().collect(),
                },
            }
        }
        (Values::Flags { yes: ya, no: na }, Values::Flags { yes: yb, no: nb }) => Values::Flags {
            yes: *ya && (*yb != subtract),
            no: *na && (*nb != subtract),
        },
        (Values::Numbers(_), _) => Values::Numbers(Vec::new()),
        (Values::Texts { .. }, _) => Values::Texts {
            except: false,
            items: BTreeSet::new(),
        },
        (Values::Flags { .. }, _) => Values::Flags {
            yes: false,
            no: false,
        },
    }
}

fn intersect_spans(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(alo, ahi) in a {
        for &(blo, bhi) in b {
            let (lo, hi) = (alo.max(blo), ahi.min(bhi));
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    }
    out.sort_unstable();
    out
}

fn complement(spans: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut next = Some(i64::MIN);
    for &(lo, hi) in spans {
        if let Some(from) = next
            && from < lo
        {
            out.push((from, lo - 1));
        }
        next = hi.checked_add(1);
    }
    if let Some(from) = next {
        out.push((from, i64::MAX));
    }
    out
}

/// One set per feature: the inputs a condition admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Boxed {
    pub sets: Vec<Set>,
}

impl Boxed {
    pub fn is_empty(&self) -> bool {
        self.sets.iter().any(Set::is_empty)
    }

    pub fn intersect(&self, other: &Boxed) -> Boxed {
        Boxed {
            sets: self
                .sets
                .iter()
                .zip(&other.sets)
                .map(|(a, b)| a.intersect(b))
                .collect(),
        }
    }

    /// `self ∖ other` as disjoint boxes: for each feature in turn, the part outside `other`
    /// on that feature and inside it on every feature before.
    pub fn minus(&self, other: &Boxed) -> Vec<Boxed> {
        if self.intersect(other).is_empty() {
            return vec![self.clone()];
        }
        let mut pieces = Vec::new();
        for i in 0..self.sets.len() {
            let outside = self.sets[i].minus(&other.sets[i]);
            if outside.is_empty() {
                continue;
            }
            let sets = self
                .sets
                .iter()
                .zip(&other.sets)
                .enumerate()
                .map(|(j, (a, b))| match j.cmp(&i) {
                    std::cmp::Ordering::Less => a.intersect(b),
                    std::cmp::Ordering::Equal => outside.clone(),
                    std::cmp::Ordering::Greater => a.clone(),
                })
                .collect();
            pieces.push(Boxed { sets });
        }
        pieces
    }
}

/// What is left of `start` once every box of `taken` is removed, or `None` when working it
/// out would take more than `budget` pieces (then nothing is claimed either way).
pub(crate) fn remainder(start: &Boxed, taken: &[&Boxed], budget: usize) -> Option<Vec<Boxed>> {
    let mut left = vec![start.clone()];
    for cut in taken {
        left = left.iter().flat_map(|piece| piece.minus(cut)).collect();
        if left.is_empty() {
            break;
        }
        if left.len() > budget {
            return None;
        }
    }
    Some(left)
}

/// One input inside a box, as a reader would write it, for messages naming a gap.
pub(crate) struct Example<'a> {
    pub features: &'a [Feature],
    pub boxed: &'a Boxed,
}

impl fmt::Display for Example<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (feature, set) in self.features.iter().zip(&self.boxed.sets) {
            if *set == Set::full(*feature) {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{} ", feature.name())?;
            match &set.values {
                Values::Numbers(spans) if !spans.is_empty() => {
                    let (lo, hi) = spans[0];
                    if lo == hi {
                        write!(f, "{lo}")?;
                    } else {
                        write!(f, "{lo}..={hi}")?;
                    }
                }
                Values::Texts {
                    except: false,
                    items,
                } if !items.is_empty() => {
                    write!(
                        f,
                        "{:?}",
                        items.iter().next().map(String::as_str).unwrap_or("")
                    )?;
                }
                Values::Texts {
                    except: true,
                    items,
                } => {
                    write!(f, "not one of {items:?}")?;
                }
                Values::Flags { yes: true, .. } => f.write_str("true")?,
                Values::Flags { no: true, .. } => f.write_str("false")?,
                Values::Numbers(_) | Values::Texts { .. } | Values::Flags { .. } => {
                    f.write_str("missing")?;
                }
            }
        }
        if first {
            f.write_str("any input")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(except: bool, items: &[&str]) -> Set {
        Set {
            missing: false,
            values: Values::Texts {
                except,
                items: items.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    #[test]
    fn numbers_subtract_exactly_at_the_ends() {
        let all = Set::numbers(0, 100);
        let left = all.minus(&Set::numbers(10, 20));
        assert_eq!(left.values, Values::Numbers(vec![(0, 9), (21, 100)]));
        assert!(Set::numbers(5, 5).minus(&Set::numbers(5, 5)).is_empty());
        assert!(
            !Set::numbers(i64::MIN, i64::MAX)
                .minus(&Set::numbers(i64::MIN, 0))
                .is_empty()
        );
        assert!(
            Set::numbers(i64::MIN, i64::MAX)
                .minus(&Set::numbers(i64::MIN, i64::MAX))
                .is_empty()
        );
    }

    #[test]
    fn texts_and_their_complements() {
        let a = texts(false, &["11", "31"]);
        assert!(a.minus(&texts(false, &["11", "31"])).is_empty());
        assert!(!a.minus(&texts(false, &["11"])).is_empty());
        assert!(a.minus(&texts(true, &["44"])).is_empty());
        assert!(!texts(true, &[]).minus(&texts(false, &["11"])).is_empty());
        assert!(texts(true, &["11"]).minus(&texts(true, &[])).is_empty());
        assert!(
            texts(true, &["11"])
                .intersect(&texts(false, &["11"]))
                .is_empty()
        );
    }

    #[test]
    fn a_missing_value_is_a_value_of_its_own() {
        let full = Set::full(Feature::UtilisationPercent);
        assert!(full.missing);
        let left = full.minus(&Set::numbers(0, 1_000_000));
        assert!(!left.is_empty());
        assert!(left.missing);
    }

    #[test]
    fn boxes_subtract_into_what_is_left() {
        let a = Boxed {
            sets: vec![Set::numbers(0, 10), Set::numbers(0, 10)],
        };
        let b = Boxed {
            sets: vec![Set::numbers(0, 5), Set::numbers(0, 10)],
        };
        let left = a.minus(&b);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].sets[0], Set::numbers(6, 10));
        let c = Boxed {
            sets: vec![Set::numbers(6, 10), Set::numbers(0, 10)],
        };
        assert_eq!(remainder(&a, &[&b, &c], 100), Some(vec![]));
    }
}
