//! Champion and challenger: a policy version tried on a share of live application decisions
//! beside the version in effect (the champion). The share is chosen by a hash of the
//! borrower and the challenge, so a borrower always falls on the same side of one challenge
//! and different challenges try different borrowers. In `shadow` the challenger's decision is
//! only recorded; in `applied` it is the one the borrower gets, the champion's recorded beside.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::versions::{PolicyRef, PolicyVersion};
use crate::validation::Violations;
use crate::{Timestamp, to_millis};

/// Whose decision a borrower in the challenger's share gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChallengeMode {
    /// The champion decides; the challenger's decision is recorded beside it.
    Shadow,
    /// The challenger decides for its share; the champion's decision is recorded beside it.
    Applied,
}

impl ChallengeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeMode::Shadow => "shadow",
            ChallengeMode::Applied => "applied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "shadow" => Some(ChallengeMode::Shadow),
            "applied" => Some(ChallengeMode::Applied),
            _ => None,
        }
    }
}

/// Which of the two policies a recorded decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Champion,
    Challenger,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Champion => "champion",
            Side::Challenger => "challenger",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "champion" => Some(Side::Champion),
            "challenger" => Some(Side::Challenger),
            _ => None,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Champion => Side::Challenger,
            Side::Challenger => Side::Champion,
        }
    }
}

/// A challenge: a policy version deciding beside the champion, for a share of borrowers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    pub id: String,
    pub challenger: PolicyRef,
    /// Percent of borrowers (by hash) whose application decisions the challenger takes part in.
    pub share_percent: u8,
    pub mode: ChallengeMode,
    pub started_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub ended_at: Option<Timestamp>,
}

/// Why a challenge cannot start or end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the share is a whole percent from 1 to 100")]
    ShareOutOfRange,
    #[error("version {0} is the policy in effect: a champion cannot challenge itself")]
    IsChampion(u32),
    #[error(
        "an applied challenger decides for real borrowers: a second person starts it, not its author"
    )]
    SameAuthor,
    #[error("the challenge ended already")]
    AlreadyEnded,
}

impl ChallengeError {
    pub fn code(&self) -> &'static str {
        match self {
            ChallengeError::ShareOutOfRange => "validation.share_out_of_range",
            ChallengeError::IsChampion(_) => "conflict.challenger_is_champion",
            ChallengeError::SameAuthor => "auth.four_eyes",
            ChallengeError::AlreadyEnded => "conflict.challenge_ended",
        }
    }

    /// The bad input, for the ones that are a caller's mistake in a field.
    pub fn violations(&self) -> Option<Violations> {
        match self {
            ChallengeError::ShareOutOfRange => Some(Violations::single(
                "share_percent",
                self.code(),
                self.to_string(),
            )),
            ChallengeError::IsChampion(_)
            | ChallengeError::SameAuthor
            | ChallengeError::AlreadyEnded => None,
        }
    }
}

impl Challenge {
    /// Starts a challenge of `version` against `champion` (the version in effect, if any).
    pub fn start(
        id: String,
        version: &PolicyVersion,
        champion: Option<&PolicyRef>,
        share_percent: u8,
        mode: ChallengeMode,
        by: &str,
        now: Timestamp,
    ) -> Result<Challenge, ChallengeError> {
        if !(1..=100).contains(&share_percent) {
            return Err(ChallengeError::ShareOutOfRange);
        }
        let challenger = PolicyRef {
            code: version.code.as_str().to_owned(),
            version: version.version,
        };
        if champion == Some(&challenger) {
            return Err(ChallengeError::IsChampion(version.version));
        }
        // Shadow decides nothing for anyone; applied does, so it takes a second person as an
        // activation does.
        if mode == ChallengeMode::Applied && version.authored_by == by {
            return Err(ChallengeError::SameAuthor);
        }
        Ok(Challenge {
            id,
            challenger,
            share_percent,
            mode,
            started_by: by.to_owned(),
            started_at: to_millis(now),
            ended_by: None,
            ended_at: None,
        })
    }

    pub fn end(&mut self, by: &str, now: Timestamp) -> Result<(), ChallengeError> {
        if self.ended_at.is_some() {
            return Err(ChallengeError::AlreadyEnded);
        }
        self.ended_by = Some(by.to_owned());
        self.ended_at = Some(to_millis(now));
        Ok(())
    }

    pub fn running(&self) -> bool {
        self.ended_at.is_none()
    }

    /// Whether the challenger takes part in this borrower's decisions.
    pub fn takes(&self, borrower_id: &str) -> bool {
        bucket(&self.id, borrower_id) < u64::from(self.share_percent)
    }

    /// Which side decides for a borrower the challenger takes part for.
    pub fn applied_side(&self) -> Side {
        match self.mode {
            ChallengeMode::Shadow => Side::Champion,
            ChallengeMode::Applied => Side::Challenger,
        }
    }
}

/// The borrower's bucket in this challenge, 0-99: uniform over borrowers, fixed for one pair,
/// unrelated between challenges.
fn bucket(challenge_id: &str, borrower_id: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(challenge_id.as_bytes())
        .chain_update(b":")
        .chain_update(borrower_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 100
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{DEFAULT_POLICY, PolicyCode};
    use chrono::TimeZone;

    fn version(author: &str) -> PolicyVersion {
        PolicyVersion::author(
            PolicyCode::parse("consumer").unwrap(),
            2,
            serde_json::from_str(DEFAULT_POLICY).unwrap(),
            "00".to_owned(),
            author,
            chrono::Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        )
    }

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap()
    }

    fn challenge(share: u8) -> Challenge {
        Challenge::start(
            "c-1".to_owned(),
            &version("risk:ana"),
            None,
            share,
            ChallengeMode::Shadow,
            "risk:ana",
            now(),
        )
        .unwrap()
    }

    #[test]
    fn the_share_taken_is_close_to_the_share_asked_and_fixed_per_borrower() {
        let borrowers: Vec<String> = (0..20_000).map(|i| format!("b-{i}")).collect();
        for share in [1u8, 10, 50, 100] {
            let c = challenge(share);
            let taken = borrowers.iter().filter(|b| c.takes(b)).count();
            let expected = 20_000 * usize::from(share) / 100;
            // Three standard deviations of a binomial count, and at least one borrower.
            let p = f64::from(share) / 100.0;
            let slack = (3.0 * (20_000.0 * p * (1.0 - p)).sqrt()).ceil() as usize + 1;
            assert!(
                taken.abs_diff(expected) <= slack,
                "share {share}: {taken} of 20000, expected {expected} ± {slack}"
            );
            assert!(borrowers.iter().all(|b| c.takes(b) == c.takes(b)));
        }
        let mut other = challenge(50);
        other.id = "c-2".to_owned();
        let half = challenge(50);
        let same = borrowers
            .iter()
            .filter(|b| half.takes(b) == other.takes(b))
            .count();
        assert!(
            (9_000..=11_000).contains(&same),
            "two challenges agree on {same} of 20000 borrowers: they should be unrelated"
        );
    }

    #[test]
    fn starting_checks_the_share_the_champion_and_the_second_person() {
        let v = version("risk:ana");
        let start = |champion: Option<&PolicyRef>, share, mode, by: &str| {
            Challenge::start("c".to_owned(), &v, champion, share, mode, by, now())
        };
        assert_eq!(
            start(None, 0, ChallengeMode::Shadow, "risk:bo"),
            Err(ChallengeError::ShareOutOfRange)
        );
        assert_eq!(
            start(None, 101, ChallengeMode::Shadow, "risk:bo"),
            Err(ChallengeError::ShareOutOfRange)
        );
        let itself = PolicyRef {
            code: "consumer".to_owned(),
            version: 2,
        };
        assert_eq!(
            start(Some(&itself), 10, ChallengeMode::Shadow, "risk:bo"),
            Err(ChallengeError::IsChampion(2))
        );
        assert_eq!(
            start(None, 10, ChallengeMode::Applied, "risk:ana"),
            Err(ChallengeError::SameAuthor)
        );
        assert!(start(None, 10, ChallengeMode::Shadow, "risk:ana").is_ok());
        let mut applied = start(None, 10, ChallengeMode::Applied, "risk:bo").unwrap();
        assert_eq!(applied.applied_side(), Side::Challenger);
        assert!(applied.running());
        applied.end("risk:ana", now()).unwrap();
        assert!(!applied.running());
        assert_eq!(
            applied.end("risk:ana", now()),
            Err(ChallengeError::AlreadyEnded)
        );
    }
}
