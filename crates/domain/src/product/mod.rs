//! Loan products: a code, a kind and a currency that never change, and a sequence of versions
//! whose terms take effect at a given time. A version that has taken effect is immutable; a
//! product can be retired from an end time on.

mod terms;

pub use terms::*;

use serde::{Deserialize, Serialize};

use crate::money::Currency;
use crate::validation::{Collector, Violations};
use crate::{Timestamp, to_millis};

const MAX_NAME_CHARS: usize = 120;

/// A product's public identifier, e.g. `cash-12m`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[a-z0-9][a-z0-9_-]{1,31}$", example = "cash-12m"))]
#[serde(try_from = "String", into = "String")]
pub struct ProductCode(String);

impl ProductCode {
    pub fn parse(s: &str) -> Result<Self, Violations> {
        if is_code(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Violations::single(
                "code",
                "validation.invalid_product_code",
                "product codes are 2-32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProductCode {
    type Error = Violations;
    fn try_from(s: String) -> Result<Self, Violations> {
        ProductCode::parse(&s)
    }
}

impl From<ProductCode> for String {
    fn from(code: ProductCode) -> String {
        code.0
    }
}

impl std::fmt::Display for ProductCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// A fixed amount repaid in installments.
    Installment,
    /// A credit line drawn and repaid freely, with daily interest.
    Revolving,
}

impl ProductKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductKind::Installment => "installment",
            ProductKind::Revolving => "revolving",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "installment" => Some(ProductKind::Installment),
            "revolving" => Some(ProductKind::Revolving),
            _ => None,
        }
    }

    fn allows(self, method: RepaymentMethod) -> bool {
        match (self, method) {
            (ProductKind::Installment, RepaymentMethod::RevolvingDaily) => false,
            (
                ProductKind::Installment,
                RepaymentMethod::EqualInstallment
                | RepaymentMethod::EqualPrincipal
                | RepaymentMethod::InterestOnly
                | RepaymentMethod::Bullet,
            ) => true,
            (ProductKind::Revolving, RepaymentMethod::RevolvingDaily) => true,
            (
                ProductKind::Revolving,
                RepaymentMethod::EqualInstallment
                | RepaymentMethod::EqualPrincipal
                | RepaymentMethod::InterestOnly
                | RepaymentMethod::Bullet,
            ) => false,
        }
    }
}

/// Where a product stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// No version has taken effect yet.
    Scheduled,
    /// A version is in effect and no end is set.
    Active,
    /// In effect, with an end time in the future.
    Retiring,
    /// Past its end time: no new business.
    Retired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductVersion {
    /// 1 for the first version, then counting up.
    pub version: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub effective_from: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = ProductTermsInput))]
    pub terms: ProductTerms,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
}

/// A product with every version, as stored. `revision` counts the writes to it and keys caches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    pub id: String,
    pub code: ProductCode,
    pub name: String,
    pub kind: ProductKind,
    pub currency: Currency,
    /// From this instant on the product takes no new business.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub ends_at: Option<Timestamp>,
    pub revision: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
    /// Ascending by `version`, and so by `effective_from`.
    pub versions: Vec<ProductVersion>,
}

/// What the API shows of a product at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductView {
    #[serde(flatten)]
    pub product: Product,
    pub status: ProductStatus,
    /// The version in effect at `as_of`, if any.
    pub current_version: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub as_of: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error(transparent)]
    Invalid(#[from] Violations),
    #[error("product {0} is retired and takes no changes")]
    Retired(ProductCode),
    #[error("version {0} has taken effect and can no longer change")]
    VersionEffective(u32),
    #[error("version {0} does not exist")]
    VersionNotFound(u32),
}

impl ProductError {
    pub fn code(&self) -> &'static str {
        match self {
            ProductError::Invalid(v) => v.first().code,
            ProductError::Retired(_) => "conflict.product_retired",
            ProductError::VersionEffective(_) => "conflict.product_version_effective",
            ProductError::VersionNotFound(_) => "not_found.product_version",
        }
    }
}

/// Everything needed to create a product, unparsed.
#[derive(Debug, Clone)]
pub struct NewProductInput {
    pub code: String,
    pub name: String,
    pub kind: ProductKind,
    pub currency: String,
    pub terms: ProductTermsInput,
    pub effective_from: Option<Timestamp>,
}

impl Product {
    /// A product with its first version. `id` is chosen by the caller.
    pub fn create(
        id: String,
        input: NewProductInput,
        now: Timestamp,
    ) -> Result<Self, ProductError> {
        let mut found = Collector::default();
        let code = found.take(ProductCode::parse(&input.code));
        let name = found.take(parse_name(&input.name));
        let currency = Currency::parse(&input.currency);
        if currency.is_none() {
            found.add(
                "currency",
                "validation.unsupported_currency",
                "currency must be one of CNY, USD",
            );
        }
        let terms = found.take(parse_terms_for(input.kind, input.terms));
        let now = to_millis(now);
        let effective_from = to_millis(input.effective_from.unwrap_or(now));
        if effective_from < now {
            found.add(
                "effective_from",
                "validation.effective_from_in_past",
                "effective_from must not be in the past; omit it to take effect now",
            );
        }
        let product = match (code, name, currency, terms) {
            (Some(code), Some(name), Some(currency), Some(terms)) => Some(Product {
                id,
                code,
                name,
                kind: input.kind,
                currency,
                ends_at: None,
                revision: 1,
                created_at: now,
                updated_at: now,
                versions: vec![ProductVersion {
                    version: 1,
                    effective_from,
                    terms,
                    created_at: now,
                }],
            }),
            _ => None,
        };
        Ok(found.finish(product)?)
    }

    /// The version in effect at `at`: the latest one whose `effective_from` has passed.
    pub fn version_at(&self, at: Timestamp) -> Option<&ProductVersion> {
        self.versions.iter().rev().find(|v| v.effective_from <= at)
    }

    pub fn status(&self, at: Timestamp) -> ProductStatus {
        match (self.ends_at, self.version_at(at)) {
            (Some(ends_at), _) if ends_at <= at => ProductStatus::Retired,
            (_, None) => ProductStatus::Scheduled,
            (Some(_), Some(_)) => ProductStatus::Retiring,
            (None, Some(_)) => ProductStatus::Active,
        }
    }

    pub fn view(self, at: Timestamp) -> ProductView {
        ProductView {
            status: self.status(at),
            current_version: self.version_at(at).map(|v| v.version),
            product: self,
            as_of: at,
        }
    }

    /// Appends a version taking effect at `effective_from` (now if absent). Returns its number.
    pub fn add_version(
        &mut self,
        terms: ProductTermsInput,
        effective_from: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u32, ProductError> {
        let now = to_millis(now);
        self.refuse_if_retired(now)?;
        let terms = parse_terms_for(self.kind, terms)?;
        let effective_from = to_millis(effective_from.unwrap_or(now));
        let previous = self.versions.last().map(|v| v.effective_from);
        self.check_effective_from(effective_from, previous, None, now)?;
        let version = self.versions.last().map_or(1, |v| v.version + 1);
        self.versions.push(ProductVersion {
            version,
            effective_from,
            terms,
            created_at: now,
        });
        self.touch(now);
        Ok(version)
    }

    /// Replaces a version that has not taken effect yet.
    pub fn replace_scheduled_version(
        &mut self,
        version: u32,
        terms: ProductTermsInput,
        effective_from: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), ProductError> {
        let now = to_millis(now);
        self.refuse_if_retired(now)?;
        let index = self
            .versions
            .iter()
            .position(|v| v.version == version)
            .ok_or(ProductError::VersionNotFound(version))?;
        if self.versions[index].effective_from <= now {
            return Err(ProductError::VersionEffective(version));
        }
        let terms = parse_terms_for(self.kind, terms)?;
        let effective_from =
            to_millis(effective_from.unwrap_or(self.versions[index].effective_from));
        let previous = index
            .checked_sub(1)
            .map(|i| self.versions[i].effective_from);
        let next = self.versions.get(index + 1).map(|v| v.effective_from);
        self.check_effective_from(effective_from, previous, next, now)?;
        let slot = &mut self.versions[index];
        slot.terms = terms;
        slot.effective_from = effective_from;
        slot.created_at = now;
        self.touch(now);
        Ok(())
    }

    /// Sets (or moves) the end of the product. In-flight business is not touched by this: it
    /// finishes under the version it started with.
    pub fn retire(&mut self, ends_at: Timestamp, now: Timestamp) -> Result<(), ProductError> {
        let (ends_at, now) = (to_millis(ends_at), to_millis(now));
        self.refuse_if_retired(now)?;
        if ends_at < now {
            return Err(Violations::single(
                "ends_at",
                "validation.ends_at_in_past",
                "ends_at must not be in the past",
            )
            .into());
        }
        if let Some(last) = self.versions.last()
            && ends_at <= last.effective_from
            && last.effective_from > now
        {
            return Err(Violations::single(
                "ends_at",
                "validation.ends_before_scheduled_version",
                format!(
                    "version {} is scheduled for {}; end the product after it or replace that version first",
                    last.version, last.effective_from
                ),
            )
            .into());
        }
        self.ends_at = Some(ends_at);
        self.touch(now);
        Ok(())
    }

    fn refuse_if_retired(&self, now: Timestamp) -> Result<(), ProductError> {
        match self.status(now) {
            ProductStatus::Retired => Err(ProductError::Retired(self.code.clone())),
            ProductStatus::Scheduled | ProductStatus::Active | ProductStatus::Retiring => Ok(()),
        }
    }

    fn check_effective_from(
        &self,
        effective_from: Timestamp,
        previous: Option<Timestamp>,
        next: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), ProductError> {
        let problem = if effective_from < now {
            Some((
                "validation.effective_from_in_past",
                "effective_from must not be in the past; omit it to take effect now".to_owned(),
            ))
        } else if previous.is_some_and(|p| effective_from <= p) {
            Some((
                "validation.effective_from_not_after_previous",
                "effective_from must be later than the previous version's".to_owned(),
            ))
        } else if next.is_some_and(|n| effective_from >= n) {
            Some((
                "validation.effective_from_not_before_next",
                "effective_from must be earlier than the next version's".to_owned(),
            ))
        } else if self.ends_at.is_some_and(|end| effective_from >= end) {
            Some((
                "validation.effective_from_after_end",
                "effective_from must be before the product's end".to_owned(),
            ))
        } else {
            None
        };
        match problem {
            Some((code, message)) => {
                Err(Violations::single("effective_from", code, message).into())
            }
            None => Ok(()),
        }
    }

    fn touch(&mut self, now: Timestamp) {
        self.revision += 1;
        self.updated_at = now;
    }
}

fn parse_name(name: &str) -> Result<String, Violations> {
    let trimmed = name.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_NAME_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(Violations::single(
            "name",
            "validation.invalid_name",
            format!("name must be 1-{MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn parse_terms_for(
    kind: ProductKind,
    input: ProductTermsInput,
) -> Result<ProductTerms, Violations> {
    let method = input.repayment_method;
    let mut found = Collector::default();
    if !kind.allows(method) {
        found.add(
            "terms.repayment_method",
            "validation.method_not_allowed_for_kind",
            format!(
                "{} products cannot use {} repayment",
                kind.as_str(),
                method.as_str()
            ),
        );
    }
    let terms = found.take(ProductTerms::parse(input).map_err(|v| v.within("terms")));
    found.finish(terms)
}

#[cfg(test)]
mod tests;
