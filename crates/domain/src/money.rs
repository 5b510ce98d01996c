//! Money as integer minor units with a currency. Arithmetic never overflows silently.

use serde::{Deserialize, Serialize};

/// Currencies lendcore books in, with their minor-unit exponents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Currency {
    /// Chinese yuan; minor unit fen (1/100).
    #[serde(rename = "CNY")]
    Cny,
    /// US dollar; minor unit cent (1/100).
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// Number of decimal places of the minor unit.
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Cny | Currency::Usd => 2,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Currency::Cny => "CNY",
            Currency::Usd => "USD",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "CNY" => Some(Currency::Cny),
            "USD" => Some(Currency::Usd),
            _ => None,
        }
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An exact amount: integer minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency mismatch: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflow")]
    Overflow,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scale = 10i64.pow(self.currency.exponent());
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let scale = scale.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = self.currency.exponent() as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_exact() {
        assert_eq!(
            Money::new(123_456, Currency::Cny).to_string(),
            "1234.56 CNY"
        );
        assert_eq!(Money::new(-5, Currency::Usd).to_string(), "-0.05 USD");
        assert_eq!(
            Money::new(i64::MIN, Currency::Usd).to_string(),
            "-92233720368547758.08 USD"
        );
    }

    #[test]
    fn arithmetic_refuses_overflow_and_mixed_currencies() {
        let max = Money::new(i64::MAX, Currency::Cny);
        assert_eq!(
            max.checked_add(Money::new(1, Currency::Cny)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(1, Currency::Cny).checked_add(Money::new(1, Currency::Usd)),
            Err(MoneyError::CurrencyMismatch(Currency::Cny, Currency::Usd))
        );
        assert_eq!(
            Money::new(5, Currency::Cny).checked_sub(Money::new(7, Currency::Cny)),
            Ok(Money::new(-2, Currency::Cny))
        );
    }
}
