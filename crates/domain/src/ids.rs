//! The ids of lendcore's resources, as types: parsed once where they arrive (a path, a body),
//! so nothing that cannot be an id reaches a query, and a loan's id is not taken for a line's.
//! An id is 1-64 visible ASCII characters (lendcore makes UUIDs; lenders' own borrower ids
//! fit too).

use serde::{Deserialize, Serialize};

/// What every id type knows of itself: how a missing one is reported.
pub trait Id: Sized {
    /// The resource, as a message names it: `credit line`.
    const NOUN: &'static str;
    /// The code of the answer for one that does not exist: `not_found.credit_line`.
    const NOT_FOUND: &'static str;

    /// The id, if `raw` can be one.
    fn parse(raw: &str) -> Option<Self>;

    fn as_str(&self) -> &str;
}

fn well_formed(raw: &str) -> bool {
    (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic())
}

macro_rules! ids {
    ($( $(#[$doc:meta])* $name:ident => $noun:literal, $code:literal; )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
            #[serde(try_from = "String", into = "String")]
            pub struct $name(String);

            impl $name {
                pub fn as_str(&self) -> &str {
                    &self.0
                }
            }

            impl Id for $name {
                const NOUN: &'static str = $noun;
                const NOT_FOUND: &'static str = $code;

                fn parse(raw: &str) -> Option<Self> {
                    well_formed(raw).then(|| Self(raw.to_owned()))
                }

                fn as_str(&self) -> &str {
                    &self.0
                }
            }

            impl TryFrom<String> for $name {
                type Error = String;
                fn try_from(raw: String) -> Result<Self, String> {
                    if well_formed(&raw) {
                        Ok(Self(raw))
                    } else {
                        Err(format!("a {} id is 1-64 visible characters", $noun))
                    }
                }
            }

            impl From<$name> for String {
                fn from(id: $name) -> String {
                    id.0
                }
            }

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(&self.0)
                }
            }
        )*
    };
}

ids! {
    /// A drawdown, read as a drawdown.
    DrawdownId => "drawdown", "not_found.drawdown";
    /// A paid-out drawdown, read as a loan.
    LoanId => "loan", "not_found.loan";
    LineId => "credit line", "not_found.credit_line";
    BorrowerId => "borrower", "not_found.borrower";
    ApplicationId => "application", "not_found.application";
    DocumentId => "document", "not_found.document";
    DeliveryId => "delivery", "not_found.delivery";
    JobId => "job", "not_found.job";
    WindowId => "maintenance window", "not_found.maintenance_window";
    ApiKeyId => "API key", "not_found.api_key";
    OperatorId => "operator", "not_found.operator";
    DecisionId => "decision", "not_found.decision";
    IncidentId => "incident", "not_found.incident";
    CaseId => "case", "not_found.case";
    ChallengeId => "challenge", "not_found.challenge";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_one_to_sixty_four_visible_characters() {
        assert!(DrawdownId::parse("0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6f").is_some());
        for bad in ["", " ", "a b", "\0", "é", &"x".repeat(65)] {
            assert!(DrawdownId::parse(bad).is_none(), "{bad:?}");
            assert!(serde_json::from_value::<LineId>(serde_json::json!(bad)).is_err());
        }
        let id = LineId::parse("l-1").unwrap();
        assert_eq!((id.as_str(), id.to_string()), ("l-1", "l-1".to_owned()));
        assert_eq!(serde_json::to_value(&id).unwrap(), serde_json::json!("l-1"));
    }
}
