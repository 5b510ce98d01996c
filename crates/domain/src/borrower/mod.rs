//! Borrowers: individuals (name, resident identity number, mobile, email, address) and
//! enterprises (name, unified social credit code, legal representative). Their personal data
//! is parsed here and kept in [`PersonalData`]: what the engine encrypts at rest and shows only
//! masked. Changes to the mobile number, the address and the bank account are logged, as a
//! risk signal.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::calendar::Date;
use crate::identity::{CreditCode, ResidentId};
use crate::validation::{Collector, Violations};

const MAX_NAME_CHARS: usize = 100;
const MAX_ADDRESS_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BorrowerKind {
    Individual,
    Enterprise,
}

/// A mainland mobile number: 11 digits starting `1[3-9]`, stored without `+86`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

impl Mobile {
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        let digits: String = raw
            .trim()
            .trim_start_matches("+86")
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        let bytes = digits.as_bytes();
        if bytes.len() == 11
            && bytes.iter().all(u8::is_ascii_digit)
            && bytes[0] == b'1'
            && (b'3'..=b'9').contains(&bytes[1])
        {
            Ok(Mobile(digits))
        } else {
            Err(Violations::single(
                "mobile",
                "validation.invalid_mobile",
                "mobile must be a mainland mobile number: 11 digits starting 13-19",
            ))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `138****5678`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

/// An email address of a plausible shape; whether it receives mail is for delivery to find out.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        let email = raw.trim().to_owned();
        let plausible = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if plausible {
            Ok(Email(email))
        } else {
            Err(Violations::single(
                "email",
                "validation.invalid_email",
                "email must look like name@example.com",
            ))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `a***@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// A bank card or account number: 12 to 19 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BankAccount(String);

impl BankAccount {
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        if (12..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(BankAccount(digits))
        } else {
            Err(Violations::single(
                "bank_account",
                "validation.invalid_bank_account",
                "bank_account must be 12 to 19 digits",
            ))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `************1234`.
    pub fn masked(&self) -> String {
        format!("************{}", &self.0[self.0.len() - 4..])
    }
}

/// Everything personal about a borrower: encrypted at rest, shown masked.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonalData {
    pub name: String,
    pub resident_id: Option<ResidentId>,
    pub credit_code: Option<CreditCode>,
    pub legal_representative: Option<String>,
    pub mobile: Option<Mobile>,
    pub email: Option<Email>,
    pub address: Option<String>,
    pub bank_account: Option<BankAccount>,
}

impl std::fmt::Debug for BorrowerInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BorrowerInput(personal data hidden)")
    }
}

impl std::fmt::Debug for ContactChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactChange(personal data hidden)")
    }
}

impl std::fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalData(masked)")
    }
}

/// What a borrower looks like to callers: personal fields masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaskedPersonalData {
    pub name: String,
    pub resident_id: Option<String>,
    pub credit_code: Option<String>,
    pub legal_representative: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub bank_account: Option<String>,
}

impl PersonalData {
    pub fn masked(&self) -> MaskedPersonalData {
        MaskedPersonalData {
            name: mask_name(&self.name),
            resident_id: self.resident_id.as_ref().map(ResidentId::masked),
            credit_code: self.credit_code.as_ref().map(CreditCode::masked),
            // A company's legal representative is public record; an individual's address is not.
            legal_representative: self.legal_representative.clone(),
            mobile: self.mobile.as_ref().map(Mobile::masked),
            email: self.email.as_ref().map(Email::masked),
            address: self.address.as_ref().map(|a| mask_address(a)),
            bank_account: self.bank_account.as_ref().map(BankAccount::masked),
        }
    }
}

/// `张*` / `J*** Smith`: the first character, the rest hidden up to the last word.
fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().map(String::from).unwrap_or_default();
    match name.rsplit_once(' ') {
        Some((_, last)) if !last.is_empty() && name.len() > last.len() + 1 => {
            format!("{first}*** {last}")
        }
        _ => format!("{first}*"),
    }
}

/// The first characters (province and city, usually) — at most six, and never more than half
/// of the address — the rest hidden.
fn mask_address(address: &str) -> String {
    let shown = (address.chars().count() / 2).min(6);
    let kept: String = address.chars().take(shown).collect();
    format!("{kept}***")
}

/// A new borrower's details as given, unparsed.
#[derive(Clone, Default)]
pub struct BorrowerInput {
    pub kind: Option<BorrowerKind>,
    pub name: String,
    pub resident_id: Option<String>,
    pub credit_code: Option<String>,
    pub legal_representative: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub bank_account: Option<String>,
    /// The language they are written to; the lender's default when absent. Not personal data:
    /// kept beside it, not sealed with it.
    pub language: Option<crate::reasons::Language>,
}

impl BorrowerInput {
    /// Parses every field, reporting every problem at once. An individual needs a resident
    /// identity number and a mobile number; an enterprise a credit code and a legal
    /// representative. `today` bounds birth dates.
    pub fn parse(self, today: Date) -> Result<(BorrowerKind, PersonalData), Violations> {
        let mut found = Collector::default();
        let kind = self.kind;
        if kind.is_none() {
            found.add(
                "kind",
                "validation.missing_field",
                "kind must be individual or enterprise",
            );
        }
        let name = self.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            found.add(
                "name",
                "validation.invalid_name",
                format!("name must be 1-{MAX_NAME_CHARS} characters without control characters"),
            );
        }
        let individual = kind == Some(BorrowerKind::Individual);
        let enterprise = kind == Some(BorrowerKind::Enterprise);
        let resident_id = match (self.resident_id, individual) {
            (Some(raw), true) => match ResidentId::parse(&raw, today) {
                Ok(id) => Some(id),
                Err(e) => {
                    found.add("resident_id", e.code(), e.to_string());
                    None
                }
            },
            (None, true) => {
                found.add(
                    "resident_id",
                    "validation.missing_field",
                    "an individual needs resident_id",
                );
                None
            }
            (Some(_), false) if enterprise => {
                found.add(
                    "resident_id",
                    "validation.not_allowed",
                    "an enterprise has a credit_code, not a resident_id",
                );
                None
            }
            (_, false) => None,
        };
        let credit_code = match (self.credit_code, enterprise) {
            (Some(raw), true) => match CreditCode::parse(&raw) {
                Ok(code) => Some(code),
                Err(e) => {
                    found.add("credit_code", e.code(), e.to_string());
                    None
                }
            },
            (None, true) => {
                found.add(
                    "credit_code",
                    "validation.missing_field",
                    "an enterprise needs credit_code",
                );
                None
            }
            (Some(_), false) if individual => {
                found.add(
                    "credit_code",
                    "validation.not_allowed",
                    "an individual has a resident_id, not a credit_code",
                );
                None
            }
            (_, false) => None,
        };
        let legal_representative = self.legal_representative.map(|r| r.trim().to_owned());
        match (&legal_representative, enterprise) {
            (Some(r), true)
                if r.is_empty()
                    || r.chars().count() > MAX_NAME_CHARS
                    || r.chars().any(char::is_control) =>
            {
                found.add(
                    "legal_representative",
                    "validation.invalid_name",
                    "legal_representative must be a name",
                );
            }
            (None, true) => found.add(
                "legal_representative",
                "validation.missing_field",
                "an enterprise needs legal_representative",
            ),
            (Some(_), false) if individual => found.add(
                "legal_representative",
                "validation.not_allowed",
                "only an enterprise has a legal_representative",
            ),
            _ => {}
        }
        let mobile = match self.mobile {
            Some(raw) => found.take(Mobile::parse(&raw)),
            None if individual => {
                found.add(
                    "mobile",
                    "validation.missing_field",
                    "an individual needs mobile",
                );
                None
            }
            None => None,
        };
        let email = self.email.and_then(|raw| found.take(Email::parse(&raw)));
        let address = self.address.and_then(|raw| found.take(parse_address(&raw)));
        let bank_account = self
            .bank_account
            .and_then(|raw| found.take(BankAccount::parse(&raw)));
        let parsed = kind.map(|kind| {
            (
                kind,
                PersonalData {
                    name,
                    resident_id,
                    credit_code,
                    legal_representative: legal_representative.filter(|_| enterprise),
                    mobile,
                    email,
                    address,
                    bank_account,
                },
            )
        });
        found.finish(parsed)
    }
}

fn parse_address(raw: &str) -> Result<String, Violations> {
    let address = raw.trim().to_owned();
    if address.is_empty()
        || address.chars().count() > MAX_ADDRESS_CHARS
        || address.chars().any(char::is_control)
    {
        return Err(Violations::single(
            "address",
            "validation.invalid_address",
            format!("address must be 1-{MAX_ADDRESS_CHARS} characters without control characters"),
        ));
    }
    Ok(address)
}

/// Which contact or payment detail changed: each change is a risk signal worth keeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangedField {
    Mobile,
    Address,
    BankAccount,
}

/// One entry of a borrower's change history; values are kept masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BorrowerChange {
    pub borrower_id: String,
    pub seq: i64,
    pub field: ChangedField,
    pub before: Option<String>,
    pub after: String,
    pub actor: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
}

/// A change to a borrower's contact or payment details, unparsed: `None` leaves a field as
/// it is.
#[derive(Clone, Default)]
pub struct ContactChange {
    pub mobile: Option<String>,
    pub address: Option<String>,
    pub bank_account: Option<String>,
}

/// One detail that changed, masked before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub field: ChangedField,
    pub before: Option<String>,
    pub after: String,
}

impl PersonalData {
    /// Applies `change`, returning what changed for the history. A value equal to the current
    /// one is no change.
    pub fn change_contact(&mut self, change: ContactChange) -> Result<Vec<Changed>, Violations> {
        let mut found = Collector::default();
        let mobile = change
            .mobile
            .and_then(|raw| found.take(Mobile::parse(&raw)));
        let address = change
            .address
            .and_then(|raw| found.take(parse_address(&raw)));
        let bank_account = change
            .bank_account
            .and_then(|raw| found.take(BankAccount::parse(&raw)));
        found.finish(Some(()))?;
        let mut changed = Vec::new();
        if let Some(mobile) = mobile
            && self.mobile.as_ref() != Some(&mobile)
        {
            let before = self.mobile.as_ref().map(Mobile::masked);
            changed.push(Changed {
                field: ChangedField::Mobile,
                before,
                after: mobile.masked(),
            });
            self.mobile = Some(mobile);
        }
        if let Some(address) = address
            && self.address.as_ref() != Some(&address)
        {
            let before = self.address.as_deref().map(mask_address);
            changed.push(Changed {
                field: ChangedField::Address,
                before,
                after: mask_address(&address),
            });
            self.address = Some(address);
        }
        if let Some(account) = bank_account
            && self.bank_account.as_ref() != Some(&account)
        {
            let before = self.bank_account.as_ref().map(BankAccount::masked);
            changed.push(Changed {
                field: ChangedField::BankAccount,
                before,
                after: account.masked(),
            });
            self.bank_account = Some(account);
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests;
