//! Signed links (resume an application, sign a contract, view a loan): purpose-bound,
//! time-limited and tamper-evident. A link's token carries its purpose, its subject, when it
//! expires and a nonce (for single use), signed with HMAC-SHA256 under a key of its own; what
//! is wrong with a token is told with a reason from the catalogue (`link.expired`,
//! `link.invalid`), so opening a bad link always explains itself and offers a new one.
//!
//! The token is `v1.<payload>.<signature>`, both parts hex: the payload is
//! `purpose|subject|expires_at_ms|nonce`. Nothing personal goes in a link: the subject is an id.
//!
//! Issued links are also kept in the store (`issued.rs`): whose they are, whether they may be
//! used once, whether they were used or renewed, and a reminder before they expire.

mod issued;

pub use issued::{
    LinkIssued, LinkOpened, ReminderHandler, ViewLinkSent, issue_link, open_link, renew,
    send_view_link,
};

pub use lendcore_domain::links::{LinkScope, Purpose};

use hmac::{Hmac, Mac};
use lendcore_domain::Timestamp;
use lendcore_domain::reasons::Reason;
use sha2::Sha256;

/// What a valid link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub purpose: Purpose,
    /// The id of what the link opens (an application, a contract, a loan).
    pub subject: String,
    pub expires_at: Timestamp,
    /// Unique per link: what a single-use link is remembered by once used.
    pub nonce: String,
}

/// Why a link does not open, with the reason the borrower is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link expired; a new one can be requested")]
    Expired {
        purpose: Purpose,
        subject: String,
        nonce: String,
    },
    #[error("the link is not valid for this")]
    Invalid,
}

impl LinkError {
    pub fn reason(&self) -> Reason {
        match self {
            LinkError::Expired { .. } => Reason::LinkExpired,
            LinkError::Invalid => Reason::LinkInvalid,
        }
    }
}

/// Signs and checks links under one key.
pub struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(key hidden)")
    }
}

impl LinkSigner {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    /// A token for `purpose` on `subject`, valid until `expires_at`.
    pub fn sign(&self, purpose: Purpose, subject: &str, expires_at: Timestamp) -> String {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let payload = format!(
            "{}|{subject}|{}|{nonce}",
            purpose.as_str(),
            expires_at.timestamp_millis()
        );
        let payload = hex::encode(payload);
        format!("v1.{payload}.{}", self.mac(&payload))
    }

    /// The purpose a genuine token was signed for (before opening it for that purpose).
    pub fn purpose_of(&self, token: &str) -> Option<Purpose> {
        let payload = token.trim().split('.').nth(1)?;
        let payload = String::from_utf8(hex::decode(payload).ok()?).ok()?;
        let purpose = Purpose::parse(payload.split('|').next()?)?;
        // Only a token that opens (at the start of time, so never expired) says anything.
        self.open(token, purpose, Timestamp::MIN_UTC)
            .ok()
            .map(|_| purpose)
    }

    /// Opens a token for `purpose` at `now`. A forged, altered, truncated or misdirected token
    /// is `Invalid`; a genuine one past its time is `Expired`, naming what it was for so a new
    /// one can be offered.
    pub fn open(&self, token: &str, purpose: Purpose, now: Timestamp) -> Result<Link, LinkError> {
        let mut parts = token.trim().split('.');
        let (Some("v1"), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Invalid);
        };
        let signature = hex::decode(signature).map_err(|_| LinkError::Invalid)?;
        let mut mac = self.hmac();
        mac.update(payload.as_bytes());
        // Constant-time comparison: no timing hints for a forger.
        mac.verify_slice(&signature)
            .map_err(|_| LinkError::Invalid)?;
        let payload = hex::decode(payload).map_err(|_| LinkError::Invalid)?;
        let payload = String::from_utf8(payload).map_err(|_| LinkError::Invalid)?;
        let fields: Vec<&str> = payload.split('|').collect();
        let [found, subject, expires_ms, nonce] = fields.as_slice() else {
            return Err(LinkError::Invalid);
        };
        let found = Purpose::parse(found).ok_or(LinkError::Invalid)?;
        let expires_at = expires_ms
            .parse()
            .ok()
            .and_then(Timestamp::from_timestamp_millis)
            .ok_or(LinkError::Invalid)?;
        if found != purpose {
            return Err(LinkError::Invalid);
        }
        if now >= expires_at {
            return Err(LinkError::Expired {
                purpose,
                subject: (*subject).to_owned(),
                nonce: (*nonce).to_owned(),
            });
        }
        Ok(Link {
            purpose,
            subject: (*subject).to_owned(),
            expires_at,
            nonce: (*nonce).to_owned(),
        })
    }

    fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    fn mac(&self, payload: &str) -> String {
        let mut mac = self.hmac();
        mac.update(payload.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
    }

    fn signer() -> LinkSigner {
        LinkSigner::new(b"link-key-for-tests".to_vec())
    }

    #[test]
    fn a_link_opens_for_its_purpose_until_it_expires() {
        let token = signer().sign(
            Purpose::ResumeApplication,
            "app-1",
            now() + Duration::hours(24),
        );
        let link = signer()
            .open(&token, Purpose::ResumeApplication, now())
            .unwrap();
        assert_eq!(
            (link.purpose, link.subject.as_str()),
            (Purpose::ResumeApplication, "app-1")
        );
        let late = signer()
            .open(
                &token,
                Purpose::ResumeApplication,
                now() + Duration::hours(24),
            )
            .unwrap_err();
        assert_eq!(
            late,
            LinkError::Expired {
                purpose: Purpose::ResumeApplication,
                subject: "app-1".into(),
                nonce: link.nonce.clone(),
            },
            "an expired link says what it was for, so a new one can be offered"
        );
        assert_eq!(late.reason(), Reason::LinkExpired);
        let other = signer().sign(
            Purpose::ResumeApplication,
            "app-1",
            now() + Duration::hours(24),
        );
        assert_ne!(other, token, "each link has its own nonce");
    }

    #[test]
    fn forged_altered_truncated_or_misdirected_links_do_not_open() {
        let token = signer().sign(Purpose::ViewLoan, "loan-1", now() + Duration::hours(1));
        let wrong_key = LinkSigner::new(b"another key".to_vec());
        assert_eq!(
            wrong_key.open(&token, Purpose::ViewLoan, now()),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            signer().open(&token, Purpose::SignContract, now()),
            Err(LinkError::Invalid),
            "a link for one purpose opens nothing else"
        );
        // The payload rewritten to another subject, signature kept.
        let (_, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged_payload = hex::encode(format!(
            "view_loan|loan-2|{}|00",
            (now() + Duration::hours(1)).timestamp_millis()
        ));
        let forged = format!("v1.{forged_payload}.{signature}");
        for bad in [
            forged.as_str(),
            &token[..token.len() - 2],
            "",
            "v1..",
            "v2.00.00",
            "v1.zz.zz",
            &format!("{token}.extra"),
        ] {
            let refused = signer().open(bad, Purpose::ViewLoan, now()).unwrap_err();
            assert_eq!(refused, LinkError::Invalid, "{bad:?}");
            assert_eq!(refused.reason(), Reason::LinkInvalid);
        }
    }
}
