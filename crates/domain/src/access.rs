//! Who may do what: operators' roles, API keys' scopes, and the permissions both are checked
//! against; plus the rate limits that keep codes and passwords from being guessed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::validation::{Collector, Violations};

/// One thing a caller may be allowed to do. An API key's scopes are a set of these; an
/// operator's role grants a fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Permission {
    #[serde(rename = "products:read")]
    ProductsRead,
    #[serde(rename = "products:write")]
    ProductsWrite,
    #[serde(rename = "borrowers:read")]
    BorrowersRead,
    #[serde(rename = "borrowers:write")]
    BorrowersWrite,
    #[serde(rename = "applications:read")]
    ApplicationsRead,
    #[serde(rename = "applications:decide")]
    ApplicationsDecide,
    #[serde(rename = "credit_lines:read")]
    CreditLinesRead,
    #[serde(rename = "credit_lines:write")]
    CreditLinesWrite,
    #[serde(rename = "drawdowns:read")]
    DrawdownsRead,
    #[serde(rename = "drawdowns:write")]
    DrawdownsWrite,
    #[serde(rename = "loans:read")]
    LoansRead,
    #[serde(rename = "loans:write")]
    LoansWrite,
    #[serde(rename = "policies:read")]
    PoliciesRead,
    /// Authoring credit policy versions and activating another person's.
    #[serde(rename = "policies:write")]
    PoliciesWrite,
    #[serde(rename = "operations:read")]
    OperationsRead,
    #[serde(rename = "operations:write")]
    OperationsWrite,
    #[serde(rename = "access:admin")]
    AccessAdmin,
}

impl Permission {
    pub const ALL: &'static [Permission] = &[
        Permission::ProductsRead,
        Permission::ProductsWrite,
        Permission::BorrowersRead,
        Permission::BorrowersWrite,
        Permission::ApplicationsRead,
        Permission::ApplicationsDecide,
        Permission::CreditLinesRead,
        Permission::CreditLinesWrite,
        Permission::DrawdownsRead,
        Permission::DrawdownsWrite,
        Permission::LoansRead,
        Permission::LoansWrite,
        Permission::PoliciesRead,
        Permission::PoliciesWrite,
        Permission::OperationsRead,
        Permission::OperationsWrite,
        Permission::AccessAdmin,
    ];

    /// The scope's name, e.g. `credit_lines:write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ProductsRead => "products:read",
            Permission::ProductsWrite => "products:write",
            Permission::BorrowersRead => "borrowers:read",
            Permission::BorrowersWrite => "borrowers:write",
            Permission::ApplicationsRead => "applications:read",
            Permission::ApplicationsDecide => "applications:decide",
            Permission::CreditLinesRead => "credit_lines:read",
            Permission::CreditLinesWrite => "credit_lines:write",
            Permission::DrawdownsRead => "drawdowns:read",
            Permission::DrawdownsWrite => "drawdowns:write",
            Permission::LoansRead => "loans:read",
            Permission::LoansWrite => "loans:write",
            Permission::PoliciesRead => "policies:read",
            Permission::PoliciesWrite => "policies:write",
            Permission::OperationsRead => "operations:read",
            Permission::OperationsWrite => "operations:write",
            Permission::AccessAdmin => "access:admin",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.iter().copied().find(|p| p.as_str() == s)
    }

    fn is_read(self) -> bool {
        match self {
            Permission::ProductsRead
            | Permission::BorrowersRead
            | Permission::ApplicationsRead
            | Permission::CreditLinesRead
            | Permission::DrawdownsRead
            | Permission::LoansRead
            | Permission::PoliciesRead
            | Permission::OperationsRead => true,
            Permission::ProductsWrite
            | Permission::BorrowersWrite
            | Permission::ApplicationsDecide
            | Permission::CreditLinesWrite
            | Permission::DrawdownsWrite
            | Permission::LoansWrite
            | Permission::PoliciesWrite
            | Permission::OperationsWrite
            | Permission::AccessAdmin => false,
        }
    }
}

/// An operator's role. Every role reads everything (personal data masked); what each may
/// change follows the work it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Helps borrowers: changes their contact and payment details.
    Support,
    /// Decides credit: underwrites applications; grants, limits, freezes and closes lines;
    /// authors credit policies and activates those another person authored.
    Risk,
    /// Runs the service: products, maintenance windows, jobs, repayments posted by hand.
    Ops,
    /// All of the above, and who may sign in: operators and API keys.
    Admin,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::Viewer,
        Role::Support,
        Role::Risk,
        Role::Ops,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Support => "support",
            Role::Risk => "risk",
            Role::Ops => "ops",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    pub fn permits(self, permission: Permission) -> bool {
        if permission.is_read() {
            return true;
        }
        match self {
            Role::Viewer => false,
            Role::Support => permission == Permission::BorrowersWrite,
            Role::Risk => matches!(
                permission,
                Permission::CreditLinesWrite
                    | Permission::ApplicationsDecide
                    | Permission::PoliciesWrite
            ),
            Role::Ops => matches!(
                permission,
                Permission::ProductsWrite | Permission::OperationsWrite | Permission::LoansWrite
            ),
            Role::Admin => true,
        }
    }
}

/// An API key's scopes, parsed: at least one, each known, no repeats folded silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Permission>);

impl Scopes {
    pub fn parse(raw: &[String]) -> Result<Scopes, Violations> {
        let mut violations = Collector::default();
        let mut set = BTreeSet::new();
        if raw.is_empty() {
            violations.add(
                "scopes",
                "validation.scopes_empty",
                "name at least one scope, e.g. drawdowns:write",
            );
        }
        for (i, scope) in raw.iter().enumerate() {
            match Permission::parse(scope) {
                Some(p) => {
                    set.insert(p);
                }
                None => violations.add(
                    format!("scopes[{i}]"),
                    "validation.unknown_scope",
                    format!(
                        "unknown scope; known scopes are {}",
                        Permission::ALL
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        violations.finish(Some(Scopes(set)))
    }

    pub fn all() -> Scopes {
        Scopes(Permission::ALL.iter().copied().collect())
    }

    pub fn contains(&self, permission: Permission) -> bool {
        self.0.contains(&permission)
    }

    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    /// Space-separated, as stored.
    pub fn to_text(&self) -> String {
        self.iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads [`Scopes::to_text`]; `None` if a stored scope is unknown.
    pub fn from_text(text: &str) -> Option<Scopes> {
        text.split_whitespace()
            .map(Permission::parse)
            .collect::<Option<BTreeSet<_>>>()
            .map(Scopes)
    }
}

/// At most `max` events per `window`: how often a code may be sent to a number, how many
/// wrong passwords an operator may type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: chrono::Duration,
}

impl RateLimit {
    pub const fn new(max: u32, window: chrono::Duration) -> Self {
        Self { max, window }
    }

    /// Where the window being counted starts, seen from `now`.
    pub fn since(&self, now: Timestamp) -> Timestamp {
        now - self.window
    }

    /// Given the times of the events within the window, `None` if one more is allowed, or how
    /// long until it is (when the oldest counted event leaves the window).
    pub fn wait(&self, events: &[Timestamp], now: Timestamp) -> Option<chrono::Duration> {
        let since = self.since(now);
        let mut recent: Vec<Timestamp> = events.iter().copied().filter(|t| *t > since).collect();
        if (recent.len() as u64) < u64::from(self.max) {
            return None;
        }
        recent.sort();
        let excess = recent.len() - self.max as usize;
        let frees_at = recent[excess] + self.window;
        Some((frees_at - now).max(chrono::Duration::seconds(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn scopes_and_roles_round_trip_by_name() {
        for &p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
        for &r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        let all = Scopes::all();
        assert_eq!(Scopes::from_text(&all.to_text()), Some(all));
        assert_eq!(Scopes::from_text("products:read bogus"), None);
    }

    #[test]
    fn unknown_or_missing_scopes_are_named() {
        let err = Scopes::parse(&[]).unwrap_err();
        assert_eq!(err.first().code, "validation.scopes_empty");
        let err = Scopes::parse(&["products:read".into(), "root".into()]).unwrap_err();
        assert_eq!(err.first().code, "validation.unknown_scope");
        assert_eq!(err.first().field, "scopes[1]");
    }

    #[test]
    fn roles_grant_what_their_work_needs_and_no_more() {
        for &p in Permission::ALL {
            assert!(Role::Admin.permits(p));
            assert_eq!(Role::Viewer.permits(p), p.is_read(), "{p:?}");
        }
        assert!(Role::Risk.permits(Permission::CreditLinesWrite));
        assert!(!Role::Risk.permits(Permission::ProductsWrite));
        assert!(Role::Support.permits(Permission::BorrowersWrite));
        assert!(!Role::Support.permits(Permission::CreditLinesWrite));
        assert!(Role::Ops.permits(Permission::OperationsWrite));
        for role in [Role::Viewer, Role::Support, Role::Risk, Role::Ops] {
            assert!(!role.permits(Permission::AccessAdmin), "{role:?}");
        }
    }

    #[test]
    fn a_rate_limit_says_how_long_to_wait() {
        let limit = RateLimit::new(3, Duration::minutes(10));
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let at = |mins: i64| now - Duration::minutes(mins);
        assert_eq!(limit.wait(&[at(1), at(2)], now), None);
        assert_eq!(
            limit.wait(&[at(1), at(2), at(4)], now),
            Some(Duration::minutes(6)),
            "the oldest of the three leaves the window in six minutes"
        );
        assert_eq!(
            limit.wait(&[at(1), at(2), at(11)], now),
            None,
            "old ones drop out"
        );
    }
}
