//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second steps, six
//! digits — what every authenticator app speaks. A code is accepted one step either side of
//! now (clocks drift), and never for a step at or before the last one accepted (no replay).

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use lendcore_domain::Timestamp;
use sha1::Sha1;

pub const STEP_SECS: i64 = 30;
const DIGITS: u32 = 6;

/// A fresh 160-bit secret, as RFC 4226 recommends.
pub fn new_secret() -> [u8; 20] {
    rand::random()
}

/// The secret as authenticator apps take it when typed in.
pub fn base32(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// What a QR code holds for an authenticator app to enrol the secret.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let escape = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        escape(issuer),
        escape(account),
        base32(secret),
        escape(issuer)
    )
}

pub fn step_at(at: Timestamp) -> i64 {
    at.timestamp().div_euclid(STEP_SECS)
}

/// The code for one time step.
pub fn code(secret: &[u8], step: i64) -> String {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", word % 10u32.pow(DIGITS))
}

/// The step `candidate` is the code for, near `at` and after `last_step`; `None` if none.
pub fn matching_step(secret: &[u8], candidate: &str, at: Timestamp, last_step: i64) -> Option<i64> {
    let candidate = candidate.trim();
    if candidate.len() != DIGITS as usize || !candidate.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(at);
    (now - 1..=now + 1)
        .filter(|step| *step > last_step)
        .find(|step| constant_time_eq(code(secret, *step).as_bytes(), candidate.as_bytes()))
}

/// Compares without stopping at the first difference, so timing tells nothing.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration};

    use super::*;

    /// RFC 6238, appendix B, SHA-1 (eight digits there; the last six are ours).
    #[test]
    fn matches_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (unix, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let at = DateTime::from_timestamp(unix, 0).unwrap();
            assert_eq!(code(secret, step_at(at)), eight[2..], "at {unix}");
        }
    }

    #[test]
    fn accepts_a_step_either_side_and_never_the_same_step_twice() {
        let secret = new_secret();
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let now = step_at(at);
        let current = code(&secret, now);
        assert_eq!(matching_step(&secret, &current, at, 0), Some(now));
        assert_eq!(matching_step(&secret, &current, at, now), None, "replayed");
        let late = at + Duration::seconds(STEP_SECS);
        assert_eq!(matching_step(&secret, &current, late, 0), Some(now));
        let too_late = at + Duration::seconds(3 * STEP_SECS);
        assert_eq!(matching_step(&secret, &current, too_late, 0), None);
        assert_eq!(matching_step(&secret, "12345", at, 0), None);
        assert_eq!(matching_step(&secret, "abcdef", at, 0), None);
    }

    #[test]
    fn the_uri_carries_the_secret_in_base32() {
        let uri = otpauth_uri("lendcore", "ops alice", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/lendcore:ops%20alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=lendcore&algorithm=SHA1&digits=6&period=30"
        );
    }
}
