//! The rounding policy. Amounts are computed exactly in decimals and rounded to the minor unit
//! only at named points: the installment amount, each period's interest, an equal-principal
//! share, each fee, each day's revolving interest and each day's penalty. Nowhere else.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Round half away from zero to the minor unit (the default).
    #[default]
    HalfUp,
    /// Banker's rounding to the minor unit.
    HalfEven,
    /// Truncate towards zero to the minor unit.
    Down,
}

/// An amount in minor units that does not fit: more than `i64` minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range")]
pub struct AmountOverflow;

impl RoundingMode {
    fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::Down => RoundingStrategy::ToZero,
        }
    }

    /// Rounds an exact amount, already in minor units, to a whole number of them.
    pub fn to_minor(self, exact_minor: Decimal) -> Result<i64, AmountOverflow> {
        let rounded = exact_minor.round_dp_with_strategy(0, self.strategy());
        i64::try_from(rounded).map_err(|_| AmountOverflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_rounds_as_named() {
        let cases = [
            ("2.5", 3, 2, 2),
            ("3.5", 4, 4, 3),
            ("-2.5", -3, -2, -2),
            ("2.4999", 2, 2, 2),
            ("2.5001", 3, 3, 2),
        ];
        for (exact, half_up, half_even, down) in cases {
            let exact: Decimal = exact.parse().unwrap();
            assert_eq!(RoundingMode::HalfUp.to_minor(exact), Ok(half_up), "{exact}");
            assert_eq!(
                RoundingMode::HalfEven.to_minor(exact),
                Ok(half_even),
                "{exact}"
            );
            assert_eq!(RoundingMode::Down.to_minor(exact), Ok(down), "{exact}");
        }
        assert_eq!(
            RoundingMode::HalfUp.to_minor(Decimal::MAX),
            Err(AmountOverflow)
        );
    }
}
