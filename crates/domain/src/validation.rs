//! Collecting every problem with an input at once, so a caller fixes a request in one round trip.

use serde::Serialize;

/// One thing wrong with one field of an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Violation {
    /// Path of the offending field, e.g. `terms.amount.min_minor`.
    pub field: String,
    /// Stable machine-readable code, e.g. `validation.amount_out_of_range`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

/// A non-empty list of violations; the first one names the error as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.first().message)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn first(&self) -> &Violation {
        &self.0[0]
    }

    pub fn all(&self) -> &[Violation] {
        &self.0
    }

    /// The same violations with `prefix.` put before every field path.
    pub fn within(mut self, prefix: &str) -> Self {
        for v in &mut self.0 {
            v.field = if v.field.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", v.field)
            };
        }
        self
    }

    pub fn single(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self(vec![Violation {
            field: field.into(),
            code,
            message: message.into(),
        }])
    }
}

/// Gathers violations while an input is parsed field by field.
#[derive(Debug, Default)]
pub struct Collector {
    found: Vec<Violation>,
}

impl Collector {
    pub fn add(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        let found = Violation {
            field: field.into(),
            code,
            message: message.into(),
        };
        // A problem reached twice (a switch checked for each table it leads to) is told once.
        if !self.found.contains(&found) {
            self.found.push(found);
        }
    }

    /// Keeps the value of a successful parse, or records its violations and yields `None`.
    pub fn take<T>(&mut self, parsed: Result<T, Violations>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(violations) => {
                self.found.extend(violations.0);
                None
            }
        }
    }

    pub fn is_clean(&self) -> bool {
        self.found.is_empty()
    }

    /// The built value when nothing was found; the collected violations otherwise. `value` is
    /// `None` exactly when some part failed to parse, and then a violation was recorded.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Violations> {
        match value {
            Some(value) if self.found.is_empty() => Ok(value),
            _ if !self.found.is_empty() => Err(Violations(self.found)),
            _ => Err(Violations::single(
                "",
                "validation.invalid",
                "the input could not be parsed",
            )),
        }
    }
}
