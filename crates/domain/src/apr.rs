//! APR disclosure: the internal rate of return of the borrower's actual cash flows (what was
//! received net of upfront fees, then every installment with its fees), annualised nominally
//! (periodic rate × periods per year) and effectively ((1 + periodic)^periods − 1), and checked
//! against legal caps.

use rust_decimal::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AprError {
    /// The flows never change sign: nothing was lent, or nothing is repaid.
    #[error("the cash flows have no rate of return")]
    NoRoot,
    /// Bracketing makes this unreachable in practice; reported rather than looping forever.
    #[error("the rate did not converge")]
    NotConverged,
    /// The rate is real but too large to state (an effective rate beyond 10^28).
    #[error("the rate is too large to state")]
    TooLarge,
}

/// Precision of the solved periodic rate.
const TOLERANCE: f64 = 1e-14;
const MAX_ITERATIONS: usize = 500;
const DISCLOSED_DECIMALS: u32 = 10;

/// The periodic internal rate of return of `flows`, one per period from period 0, signed from
/// the borrower's side (what they receive is negative, what they pay positive, or the reverse).
///
/// Newton's method inside a bracket that always contains the root, falling back to bisection
/// whenever a Newton step would leave it: it converges for every flow whose rate lies below
/// 10^9 per period, and reports [`AprError::NoRoot`] otherwise.
pub fn irr(flows: &[f64]) -> Result<f64, AprError> {
    let npv = |rate: f64| -> (f64, f64) {
        let growth = 1.0 + rate;
        let (mut value, mut slope, mut discount) = (0.0, 0.0, 1.0);
        for (k, flow) in flows.iter().enumerate() {
            value += flow * discount;
            slope -= k as f64 * flow * discount / growth;
            discount /= growth;
        }
        (value, slope)
    };
    // The lowest rate tried keeps every discount factor (1 + r)^-k below 1e200, so the value
    // there stays finite however many periods and however large the flows.
    let periods = flows.len().max(1) as f64;
    let mut low = (10f64.powf(-200.0 / periods) - 1.0).max(-0.999_999);
    let mut high = 1.0;
    let (low_value, _) = npv(low);
    let mut high_value = npv(high).0;
    while high_value.signum() == low_value.signum() && high < 1e9 {
        high *= 4.0;
        high_value = npv(high).0;
    }
    if !low_value.is_finite() || high_value.signum() == low_value.signum() {
        return Err(AprError::NoRoot);
    }
    let rising = high_value > low_value;
    let mut rate = 0.0f64.clamp(low, high);
    for _ in 0..MAX_ITERATIONS {
        let (value, slope) = npv(rate);
        if value == 0.0 {
            return Ok(rate);
        }
        if (value > 0.0) == rising {
            high = rate;
        } else {
            low = rate;
        }
        let newton = rate - value / slope;
        let next = if slope != 0.0 && newton > low && newton < high {
            newton
        } else {
            (low + high) / 2.0
        };
        if (next - rate).abs() <= TOLERANCE * rate.abs().max(1.0) || high - low <= TOLERANCE {
            return Ok(next);
        }
        rate = next;
    }
    Err(AprError::NotConverged)
}

/// The annualised cost of a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Apr {
    /// IRR per installment period.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub periodic: Decimal,
    /// periodic × periods per year: the figure usually disclosed in China (综合年化成本, IRR).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub nominal_annual: Decimal,
    /// (1 + periodic)^(periods per year) − 1.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub effective_annual: Decimal,
}

/// The APR of a schedule: the borrower receives `disbursed`, then pays every installment.
pub fn of_schedule(schedule: &Schedule) -> Result<Apr, AprError> {
    let mut flows = Vec::with_capacity(schedule.installments.len() + 1);
    flows.push(-(schedule.disbursed_minor as f64));
    flows.extend(schedule.installments.iter().map(|i| i.total_minor as f64));
    let periodic = irr(&flows)?;
    let per_year = schedule.periods_per_year.to_f64().unwrap_or(12.0);
    let effective = (1.0 + periodic).powf(per_year) - 1.0;
    let decimal = |x: f64| {
        Decimal::from_f64(x)
            .map(|d| d.round_dp(DISCLOSED_DECIMALS))
            .ok_or(AprError::TooLarge)
    };
    Ok(Apr {
        periodic: decimal(periodic)?,
        nominal_annual: decimal(periodic * per_year)?,
        effective_annual: decimal(effective)?,
    })
}

/// Which annualisation a cap is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CapBasis {
    Nominal,
    Effective,
}

/// A legal limit on the APR, e.g. 24% (above it courts do not protect the interest) or 36%
/// (above it the excess is void). A binding cap refuses products and quotes above it; a
/// non-binding one is reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AprCap {
    pub name: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.36"))]
    pub limit: Decimal,
    pub basis: CapBasis,
    pub binding: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CapCheck {
    pub cap: AprCap,
    pub within: bool,
}

impl AprCap {
    pub fn check(&self, apr: &Apr) -> CapCheck {
        let measured = match self.basis {
            CapBasis::Nominal => apr.nominal_annual,
            CapBasis::Effective => apr.effective_annual,
        };
        CapCheck {
            cap: self.clone(),
            within: measured <= self.limit,
        }
    }
}

/// The caps used unless configured otherwise: 24% reported, 36% binding, both nominal.
pub fn default_caps() -> Vec<AprCap> {
    vec![
        AprCap {
            name: "protected".to_owned(),
            limit: Decimal::new(24, 2),
            basis: CapBasis::Nominal,
            binding: false,
        },
        AprCap {
            name: "maximum".to_owned(),
            limit: Decimal::new(36, 2),
            basis: CapBasis::Nominal,
            binding: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irr_solves_known_flows_and_refuses_impossible_ones() {
        // 1000 now, 1100 in a year: 10%.
        let r = irr(&[-1000.0, 1100.0]).unwrap();
        assert!((r - 0.1).abs() < 1e-12, "{r}");
        // Repaying less than received: a negative rate, still found.
        let r = irr(&[-1000.0, 500.0, 400.0]).unwrap();
        assert!(r < 0.0 && r > -0.2, "{r}");
        assert_eq!(irr(&[100.0, 100.0]), Err(AprError::NoRoot));
        assert_eq!(irr(&[-100.0, -100.0]), Err(AprError::NoRoot));
        assert_eq!(irr(&[]), Err(AprError::NoRoot));
        // An absurd rate is still bracketed: 1 now, 1e6 later.
        let r = irr(&[-1.0, 1e6]).unwrap();
        assert!((r - 999_999.0).abs() / 999_999.0 < 1e-9, "{r}");
    }
}
