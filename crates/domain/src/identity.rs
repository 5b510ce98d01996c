//! Identifiers of borrowers, parsed rather than validated: a value of these types has the right
//! shape and check character, so nothing downstream checks again. They are personal data:
//! `Debug` and `Display` show them masked, and the clear value is only handed out on request
//! (`expose`), for encryption at rest.
//!
//! - [`ResidentId`]: the 18-character resident identity number (居民身份证号码, GB 11643-1999):
//!   a 6-digit region code, the birth date as YYYYMMDD, a 3-digit sequence, and a check
//!   character from ISO 7064 MOD 11-2 (`0`-`9` or `X`).
//! - [`CreditCode`]: the 18-character unified social credit code of an organisation
//!   (统一社会信用代码, GB 32100-2015), over the 31 characters `0-9A-Z` without `I O S V Z`,
//!   with a check character from MOD 31.

use chrono::{Datelike, NaiveDate};

use crate::calendar::Date;

/// Why an identifier was refused, each with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("an identity number has 18 characters")]
    ResidentIdLength,
    #[error("an identity number is 17 digits and a final digit or X")]
    ResidentIdCharacters,
    #[error("the identity number's region code is not a Chinese province")]
    ResidentIdRegion,
    #[error("the identity number's birth date is not a real date in the past")]
    ResidentIdBirthDate,
    #[error("the identity number's check character does not match: a digit is mistyped")]
    ResidentIdCheck,
    #[error("a unified social credit code has 18 characters")]
    CreditCodeLength,
    #[error("a unified social credit code uses 0-9 and A-Z without I, O, S, V and Z")]
    CreditCodeCharacters,
    #[error("the unified social credit code's check character does not match")]
    CreditCodeCheck,
}

impl IdentityError {
    pub fn code(self) -> &'static str {
        match self {
            IdentityError::ResidentIdLength => "validation.resident_id_length",
            IdentityError::ResidentIdCharacters => "validation.resident_id_characters",
            IdentityError::ResidentIdRegion => "validation.resident_id_region",
            IdentityError::ResidentIdBirthDate => "validation.resident_id_birth_date",
            IdentityError::ResidentIdCheck => "validation.resident_id_check",
            IdentityError::CreditCodeLength => "validation.credit_code_length",
            IdentityError::CreditCodeCharacters => "validation.credit_code_characters",
            IdentityError::CreditCodeCheck => "validation.credit_code_check",
        }
    }
}

/// Province-level region codes: the first two digits of a region code.
const PROVINCES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// A resident identity number with a valid region, birth date and check character.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

impl ResidentId {
    /// Parses a number as typed: surrounding spaces are ignored and a lowercase `x` is read as
    /// `X`. `today` bounds the birth date.
    pub fn parse(raw: &str, today: Date) -> Result<Self, IdentityError> {
        let id = raw.trim().to_ascii_uppercase();
        if id.chars().count() != 18 {
            return Err(IdentityError::ResidentIdLength);
        }
        let bytes = id.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit)
            || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
        {
            return Err(IdentityError::ResidentIdCharacters);
        }
        let province = (bytes[0] - b'0') * 10 + (bytes[1] - b'0');
        if !PROVINCES.contains(&province) {
            return Err(IdentityError::ResidentIdRegion);
        }
        let birth = NaiveDate::parse_from_str(&id[6..14], "%Y%m%d")
            .map_err(|_| IdentityError::ResidentIdBirthDate)?;
        if birth > today || birth.year() < 1900 {
            return Err(IdentityError::ResidentIdBirthDate);
        }
        if resident_check(&bytes[..17]) != bytes[17] {
            return Err(IdentityError::ResidentIdCheck);
        }
        Ok(ResidentId(id))
    }

    pub fn birth_date(&self) -> Date {
        // Parsed on construction, so this cannot fail.
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").unwrap_or_default()
    }

    /// The clear number, for encryption at rest and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `110***********002X`: the region's first three digits and the last four characters.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// ISO 7064 MOD 11-2 over the first 17 digits: weights 2^(17-i) mod 11.
fn resident_check(digits: &[u8]) -> u8 {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize]
}

/// The 31 characters of a unified social credit code, in the order of their values.
const CREDIT_CODE_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A unified social credit code with valid characters and check character.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CreditCode(String);

impl CreditCode {
    /// Parses a code as typed: surrounding spaces are ignored and letters read as uppercase.
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.chars().count() != 18 {
            return Err(IdentityError::CreditCodeLength);
        }
        let values: Option<Vec<u32>> = code
            .bytes()
            .map(|b| {
                CREDIT_CODE_CHARS
                    .iter()
                    .position(|c| *c == b)
                    .map(|p| p as u32)
            })
            .collect();
        let Some(values) = values else {
            return Err(IdentityError::CreditCodeCharacters);
        };
        // Weights 3^i mod 31; the check value makes the weighted sum a multiple of 31.
        let mut weight = 1;
        let mut sum = 0;
        for value in &values[..17] {
            sum += value * weight;
            weight = weight * 3 % 31;
        }
        let check = (31 - sum % 31) % 31;
        if values[17] != check {
            return Err(IdentityError::CreditCodeCheck);
        }
        Ok(CreditCode(code))
    }

    /// The clear code, for storage and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

fn mask(clear: &str) -> String {
    format!("{}***********{}", &clear[..3], &clear[clear.len() - 4..])
}

macro_rules! masked_formatting {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($t), self.masked())
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.masked())
            }
        }
    )*};
}
masked_formatting!(ResidentId, CreditCode);

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::*;

    fn today() -> Date {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn valid_identity_numbers_parse_and_print_masked() {
        let id = ResidentId::parse(" 11010519491231002x ", today()).unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        assert_eq!(id.to_string(), "110***********002X");
        assert_eq!(format!("{id:?}"), "ResidentId(110***********002X)");
        assert!(ResidentId::parse("440308199901010012", today()).is_ok());
    }

    #[test]
    fn every_kind_of_wrong_identity_number_is_refused_with_its_own_code() {
        let cases = [
            ("11010519491231002", IdentityError::ResidentIdLength),
            ("11010519491231002XX", IdentityError::ResidentIdLength),
            ("", IdentityError::ResidentIdLength),
            ("1101051949123100２X", IdentityError::ResidentIdCharacters),
            ("11010519491231002Y", IdentityError::ResidentIdCharacters),
            ("1101051949123100X2", IdentityError::ResidentIdCharacters),
            ("11010519491231 02X", IdentityError::ResidentIdCharacters),
            ("99010519491231002X", IdentityError::ResidentIdRegion),
            ("00010519491231002X", IdentityError::ResidentIdRegion),
            ("110105194912320028", IdentityError::ResidentIdBirthDate),
            ("110105194902300028", IdentityError::ResidentIdBirthDate),
            ("110105203001010028", IdentityError::ResidentIdBirthDate),
            ("110105189912310028", IdentityError::ResidentIdBirthDate),
            ("110105194912310021", IdentityError::ResidentIdCheck),
            ("110101199003077578", IdentityError::ResidentIdCheck),
        ];
        for (raw, expected) in cases {
            assert_eq!(ResidentId::parse(raw, today()), Err(expected), "{raw}");
            assert!(expected.code().starts_with("validation.resident_id_"));
        }
    }

    #[test]
    fn valid_credit_codes_parse_and_wrong_ones_are_refused_with_their_codes() {
        for raw in [
            "91350100M000100Y43",
            "91110000802100433B",
            "9144030071526726xg",
        ] {
            let code = CreditCode::parse(raw).unwrap();
            assert_eq!(code.expose(), raw.to_ascii_uppercase());
        }
        assert_eq!(
            CreditCode::parse("91350100M000100Y43").unwrap().to_string(),
            "913***********0Y43"
        );
        let cases = [
            ("91350100M000100Y4", IdentityError::CreditCodeLength),
            ("91350100M000100Y4I", IdentityError::CreditCodeCharacters),
            ("91350100O000100Y43", IdentityError::CreditCodeCharacters),
            ("91350100M000100Y44", IdentityError::CreditCodeCheck),
            ("91350100M000010Y43", IdentityError::CreditCodeCheck),
        ];
        for (raw, expected) in cases {
            assert_eq!(CreditCode::parse(raw), Err(expected), "{raw}");
        }
    }

    proptest! {
        /// Any 17 digits with a real region and birth date get exactly one check character
        /// that makes them valid, and changing any one digit is caught.
        #[test]
        fn exactly_one_check_character_fits_and_one_mistyped_digit_is_caught(
            province in proptest::sample::select(PROVINCES.to_vec()),
            rest in "[0-9]{4}",
            days in 0i64..38_000,
            sequence in "[0-9]{3}",
            position in 0usize..17,
            bump in 1u8..10,
        ) {
            let birth = NaiveDate::from_ymd_opt(1920, 1, 1).unwrap() + chrono::Duration::days(days);
            let body = format!("{province:02}{rest}{}{sequence}", birth.format("%Y%m%d"));
            let fits: Vec<char> = "0123456789X".chars()
                .filter(|c| ResidentId::parse(&format!("{body}{c}"), today()).is_ok())
                .collect();
            prop_assert_eq!(fits.len(), 1);
            let valid = format!("{body}{}", fits[0]);
            let mut typo = valid.clone().into_bytes();
            typo[position] = b'0' + (typo[position] - b'0' + bump) % 10;
            let typo = String::from_utf8(typo).unwrap();
            prop_assert!(ResidentId::parse(&typo, today()).is_err(), "{} accepted", typo);
        }

        #[test]
        fn one_credit_code_character_changed_is_caught(
            body in "[0-9A-HJ-NP-RTUW-Y]{17}",
            position in 0usize..17,
            bump in 1usize..31,
        ) {
            let fits: Vec<char> = CREDIT_CODE_CHARS.iter().map(|c| *c as char)
                .filter(|c| CreditCode::parse(&format!("{body}{c}")).is_ok())
                .collect();
            prop_assert_eq!(fits.len(), 1);
            let valid = format!("{body}{}", fits[0]).into_bytes();
            let mut typo = valid.clone();
            let at = CREDIT_CODE_CHARS.iter().position(|c| *c == typo[position]).unwrap();
            typo[position] = CREDIT_CODE_CHARS[(at + bump) % 31];
            let typo = String::from_utf8(typo).unwrap();
            prop_assert!(CreditCode::parse(&typo).is_err(), "{} accepted", typo);
        }
    }
}
