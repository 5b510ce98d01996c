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

    /// The amount as a person reads it in `language`: the minor units placed by the currency's
    /// exponent, thousands grouped, with the currency as that language writes it:
    /// `CNY 10,000.00` in English, `10,000.00元` in Chinese. The one place money is formatted
    /// for people (notifications, timelines); the API carries minor units.
    pub fn for_people(self, language: crate::reasons::Language) -> String {
        let exponent = self.currency.exponent();
        let scale = 10u64.pow(exponent);
        let magnitude = self.minor.unsigned_abs();
        let (whole, fraction) = (magnitude / scale, magnitude % scale);
        let digits = whole.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if self.minor < 0 { "-" } else { "" };
        let number = match exponent {
            0 => format!("{sign}{grouped}"),
            _ => format!(
                "{sign}{grouped}.{fraction:0width$}",
                width = exponent as usize
            ),
        };
        match (language, self.currency) {
            (crate::reasons::Language::En, currency) => format!("{} {number}", currency.code()),
            (crate::reasons::Language::ZhHans, Currency::Cny) => format!("{number}元"),
            (crate::reasons::Language::ZhHans, Currency::Usd) => format!("{number}美元"),
        }
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

/// As an English reader reads it (see [`Money::for_people`]).
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.for_people(crate::reasons::Language::En))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_money_by_the_currency_s_exponent_in_their_language() {
        use crate::reasons::Language::{En, ZhHans};
        assert_eq!(
            Money::new(123_456, Currency::Cny).to_string(),
            "CNY 1,234.56"
        );
        assert_eq!(
            Money::new(1_000_000, Currency::Cny).for_people(ZhHans),
            "10,000.00元"
        );
        assert_eq!(Money::new(-5, Currency::Usd).for_people(En), "USD -0.05");
        assert_eq!(Money::new(99, Currency::Usd).for_people(ZhHans), "0.99美元");
        assert_eq!(
            Money::new(100_000, Currency::Cny).for_people(En),
            "CNY 1,000.00"
        );
        assert_eq!(
            Money::new(i64::MIN, Currency::Usd).to_string(),
            "USD -92,233,720,368,547,758.08"
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
