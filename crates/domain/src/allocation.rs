//! How a repayment is split over what is owed: one function, used everywhere, driven by the
//! product's allocation order (data, not code).

use serde::{Deserialize, Serialize};

use crate::validation::Violations;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Penalty,
    Fee,
    Interest,
    Principal,
}

const ALL: [Component; 4] = [
    Component::Penalty,
    Component::Fee,
    Component::Interest,
    Component::Principal,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AllocationScope {
    /// Settle the oldest installment completely, in component order, before the next (default).
    #[default]
    OldestInstallmentFirst,
    /// Settle the first component across every installment, oldest first, then the next.
    ComponentFirst,
}

/// The order in which a repayment settles what is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AllocationOrder {
    /// Every component exactly once, e.g. `["penalty", "fee", "interest", "principal"]`.
    pub components: Vec<Component>,
    #[serde(default)]
    pub scope: AllocationScope,
}

impl Default for AllocationOrder {
    /// Penalty, then fees, then interest, then principal, oldest installment first.
    fn default() -> Self {
        Self {
            components: ALL.to_vec(),
            scope: AllocationScope::default(),
        }
    }
}

impl AllocationOrder {
    /// The order itself, if it names every component exactly once.
    pub fn check(&self) -> Result<AllocationOrder, Violations> {
        let complete =
            self.components.len() == ALL.len() && ALL.iter().all(|c| self.components.contains(c));
        if complete {
            Ok(self.clone())
        } else {
            Err(Violations::single(
                "components",
                "validation.allocation_order_invalid",
                "list each of penalty, fee, interest and principal exactly once",
            ))
        }
    }
}

/// What one installment still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Due {
    pub installment: u32,
    pub penalty_minor: i64,
    pub fee_minor: i64,
    pub interest_minor: i64,
    pub principal_minor: i64,
}

impl Due {
    pub fn of(&self, component: Component) -> i64 {
        match component {
            Component::Penalty => self.penalty_minor,
            Component::Fee => self.fee_minor,
            Component::Interest => self.interest_minor,
            Component::Principal => self.principal_minor,
        }
    }
}

/// One share of a repayment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Share {
    pub installment: u32,
    pub component: Component,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allocation {
    pub shares: Vec<Share>,
    /// What was left once everything owed was settled (an overpayment, to be refunded or kept
    /// as credit: never silently absorbed).
    pub unapplied_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a repayment cannot be negative")]
pub struct NegativePayment;

/// Splits `payment` over `dues` (oldest first) in `order`.
pub fn allocate(
    payment_minor: i64,
    dues: &[Due],
    order: &AllocationOrder,
) -> Result<Allocation, NegativePayment> {
    if payment_minor < 0 {
        return Err(NegativePayment);
    }
    let mut left = payment_minor;
    let mut shares = Vec::new();
    let mut take = |due: &Due, component: Component, left: &mut i64| {
        let amount = due.of(component).max(0).min(*left);
        if amount > 0 {
            *left -= amount;
            shares.push(Share {
                installment: due.installment,
                component,
                amount_minor: amount,
            });
        }
    };
    match order.scope {
        AllocationScope::OldestInstallmentFirst => {
            for due in dues {
                for &component in &order.components {
                    take(due, component, &mut left);
                }
            }
        }
        AllocationScope::ComponentFirst => {
            for &component in &order.components {
                for due in dues {
                    take(due, component, &mut left);
                }
            }
        }
    }
    Ok(Allocation {
        shares,
        unapplied_minor: left,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn due(installment: u32, penalty: i64, fee: i64, interest: i64, principal: i64) -> Due {
        Due {
            installment,
            penalty_minor: penalty,
            fee_minor: fee,
            interest_minor: interest,
            principal_minor: principal,
        }
    }

    #[test]
    fn oldest_installment_first_in_component_order() {
        let dues = [due(1, 10, 5, 100, 800), due(2, 0, 5, 90, 810)];
        let a = allocate(950, &dues, &AllocationOrder::default()).unwrap();
        let got: Vec<(u32, Component, i64)> = a
            .shares
            .iter()
            .map(|s| (s.installment, s.component, s.amount_minor))
            .collect();
        assert_eq!(
            got,
            [
                (1, Component::Penalty, 10),
                (1, Component::Fee, 5),
                (1, Component::Interest, 100),
                (1, Component::Principal, 800),
                (2, Component::Fee, 5),
                (2, Component::Interest, 30),
            ]
        );
        assert_eq!(a.unapplied_minor, 0);
    }

    #[test]
    fn principal_first_and_component_first_are_just_other_orders() {
        let dues = [due(1, 10, 0, 100, 800), due(2, 10, 0, 90, 810)];
        let order = AllocationOrder {
            components: vec![
                Component::Principal,
                Component::Interest,
                Component::Fee,
                Component::Penalty,
            ],
            scope: AllocationScope::ComponentFirst,
        };
        let a = allocate(1700, &dues, &order).unwrap();
        assert_eq!(
            a.shares[0],
            Share {
                installment: 1,
                component: Component::Principal,
                amount_minor: 800
            }
        );
        assert_eq!(
            a.shares[1],
            Share {
                installment: 2,
                component: Component::Principal,
                amount_minor: 810
            }
        );
        assert_eq!(
            a.shares[2],
            Share {
                installment: 1,
                component: Component::Interest,
                amount_minor: 90
            }
        );
        let overpaid = allocate(5000, &dues, &order).unwrap();
        assert_eq!(allocate(-1, &dues, &order), Err(NegativePayment));
        assert_eq!(overpaid.unapplied_minor, 5000 - 1820);
    }

    #[test]
    fn an_order_must_name_every_component_once() {
        let bad = AllocationOrder {
            components: vec![
                Component::Interest,
                Component::Interest,
                Component::Fee,
                Component::Penalty,
            ],
            scope: AllocationScope::default(),
        };
        assert_eq!(
            bad.check().unwrap_err().first().code,
            "validation.allocation_order_invalid"
        );
        assert!(AllocationOrder::default().check().is_ok());
    }

    proptest! {
        #[test]
        fn every_fen_is_accounted_for_and_the_order_is_kept(
            payment in 0i64..100_000,
            owed in proptest::collection::vec((0i64..500, 0i64..500, 0i64..5_000, 0i64..20_000), 1..8),
            component_first in any::<bool>(),
        ) {
            let dues: Vec<Due> = owed.iter().enumerate()
                .map(|(i, &(p, f, n, c))| due(i as u32 + 1, p, f, n, c)).collect();
            let order = AllocationOrder {
                components: ALL.to_vec(),
                scope: if component_first { AllocationScope::ComponentFirst } else { AllocationScope::OldestInstallmentFirst },
            };
            let a = allocate(payment, &dues, &order).unwrap();
            let applied: i64 = a.shares.iter().map(|s| s.amount_minor).sum();
            prop_assert_eq!(applied + a.unapplied_minor, payment);
            let owed_total: i64 = dues.iter().map(|d| ALL.iter().map(|&c| d.of(c)).sum::<i64>()).sum();
            prop_assert_eq!(a.unapplied_minor, (payment - owed_total).max(0));
            for share in &a.shares {
                let d = dues[share.installment as usize - 1];
                prop_assert!(share.amount_minor > 0 && share.amount_minor <= d.of(share.component));
            }
            // Only the last share may be partial: every earlier one settled its item in full.
            for share in a.shares.iter().rev().skip(1) {
                let d = dues[share.installment as usize - 1];
                prop_assert_eq!(share.amount_minor, d.of(share.component));
            }
        }
    }
}
