//! The ids of lendcore's resources, as types: parsed once where they arrive (a path, a body),
//! so nothing that cannot be an id reaches a query, and a loan's id is not taken for a line's.
//! An id is 1-128 visible ASCII characters: lendcore makes UUIDs, a borrower's resources get
//! their borrower's id in front of theirs ([`for_borrower`]), and lenders' own borrower ids
//! (up to 64 characters) fit too.

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

/// The longest id: a borrower's id (at most 64 characters), a dot and a UUID fit.
pub const MAX_ID_LEN: usize = 128;

fn well_formed(raw: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic())
}

/// The id of a borrower's new resource (a credit line, a drawdown): `<borrower id>.<unique>`,
/// where `unique` is a fresh UUID. The borrower is read back from the id alone
/// ([`borrower_of`]), so a request or a channel's callback that names the resource is routed
/// to its borrower's rows before the first query (issue #16, docs/SCALING.md).
pub fn for_borrower(borrower_id: &str, unique: &str) -> String {
    format!("{borrower_id}.{unique}")
}

/// The borrower an id made by [`for_borrower`] belongs to; `None` for any other id, such as
/// one minted before ids carried their borrower, or one whose front cannot be a borrower's id.
pub fn borrower_of(id: &str) -> Option<&str> {
    let (borrower, unique) = id.rsplit_once('.')?;
    (could_be_borrower(borrower) && is_uuid(unique)).then_some(borrower)
}

/// Whether `text` can be a borrower's id: one lendcore made (a UUID) or a lender's own (at
/// most 64 visible characters). What a caller puts in front of an id or a token is routed on
/// only if it can: nothing else is named to the database as a borrower.
pub fn could_be_borrower(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

/// `8-4-4-4-12` hexadecimal digits, as a UUID is written: every id lendcore minted before ids
/// carried their borrower was one, so only such an id is looked up among the old routes.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
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
                        Err(format!("a {} id is 1-{MAX_ID_LEN} visible characters", $noun))
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
    fn an_id_is_one_to_a_hundred_and_twenty_eight_visible_characters() {
        assert!(DrawdownId::parse("0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6f").is_some());
        assert!(DrawdownId::parse(&"x".repeat(128)).is_some());
        for bad in ["", " ", "a b", "\0", "é", &"x".repeat(129)] {
            assert!(DrawdownId::parse(bad).is_none(), "{bad:?}");
            assert!(serde_json::from_value::<LineId>(serde_json::json!(bad)).is_err());
        }
        let id = LineId::parse("l-1").unwrap();
        assert_eq!((id.as_str(), id.to_string()), ("l-1", "l-1".to_owned()));
        assert_eq!(serde_json::to_value(&id).unwrap(), serde_json::json!("l-1"));
    }

    #[test]
    fn an_id_made_for_a_borrower_names_the_borrower() {
        let unique = "0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6f";
        for borrower in [
            "b-42",
            "lender:7.a",
            &"x".repeat(64),
            "0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6f",
        ] {
            let id = for_borrower(borrower, unique);
            assert_eq!(borrower_of(&id), Some(borrower), "{id}");
            assert!(DrawdownId::parse(&id).is_some(), "{id} is an id");
        }
        // Ids from before #16, and ids that only look alike, name no borrower.
        for other in [
            unique,
            ".0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6f",
            "b.not-a-uuid",
            "b.",
            "b",
        ] {
            assert_eq!(borrower_of(other), None, "{other}");
        }
        assert_eq!(
            borrower_of("b.0193a4c2-7b1e-7c3d-9f00-1a2b3c4d5e6"),
            None,
            "a digit short"
        );
        // A front that cannot be a borrower's id names none.
        for front in ["\0", "a b", "é", &"x".repeat(65)] {
            assert_eq!(borrower_of(&for_borrower(front, unique)), None, "{front:?}");
        }
    }
}
