//! The audit chain: every state change and operator action is a record, and each record's hash
//! covers the previous record's hash, so editing, deleting or reordering any record breaks
//! every link after it. [`verify`] walks a chain and names the first broken link; publishing
//! the head hash elsewhere makes even a rewrite of the whole chain detectable.
//!
//! A record's hash is SHA-256 over the previous hash and the record's fields, each
//! length-prefixed (8 bytes, big-endian) so no two different records encode alike. The detail
//! is kept and hashed as JSON text, exactly as stored, so the hash is always recomputed from
//! the very bytes in the database, whatever they hold.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Timestamp;

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(with = "millis")]
    pub at: Timestamp,
    /// Who did it: `ops:alice`, `borrower:…`, `system:lendcore`.
    pub actor: String,
    /// What was done, e.g. `credit_line.frozen`.
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    /// The facts of the change as JSON text (never personal data in clear).
    pub detail: String,
}

/// A record in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1 for the first record, then one more each time.
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// Places `entry` after the record whose hash is `prev_hash` and whose number is `seq - 1`.
    pub fn chain(seq: i64, prev_hash: &str, entry: AuditEntry) -> AuditRecord {
        let hash = hash(seq, prev_hash, &entry);
        AuditRecord {
            seq,
            entry,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

fn hash(seq: i64, prev_hash: &str, entry: &AuditEntry) -> String {
    let mut digest = Sha256::new();
    let mut field = |bytes: &[u8]| {
        digest.update((bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    };
    field(prev_hash.as_bytes());
    field(&seq.to_be_bytes());
    field(&entry.at.timestamp_millis().to_be_bytes());
    field(entry.actor.as_bytes());
    field(entry.action.as_bytes());
    field(entry.subject_type.as_bytes());
    field(entry.subject_id.as_bytes());
    field(entry.detail.as_bytes());
    hex::encode(digest.finalize())
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("record {seq}: its content does not match its hash (edited)")]
    Edited { seq: i64 },
    #[error(
        "record {found} found where record {expected} belongs (a record is missing or out of order)"
    )]
    OutOfSequence { expected: i64, found: i64 },
    #[error(
        "record {seq}: it does not link to the record before it (deleted, reordered or replaced)"
    )]
    BrokenLink { seq: i64 },
    #[error(
        "record {seq} is gone or no longer has the hash published for it (the chain was rewritten from there)"
    )]
    NotAnchored { seq: i64 },
}

/// A chain checked so far: how many records, and the hash of the last (the head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub head: String,
}

/// Checks records one at a time, in the order read, so a chain of any length is verified in
/// constant memory.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    records: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS.to_owned(),
            records: 0,
        }
    }
}

impl Verifier {
    /// Checks the next record: its number, its link to the one before, its own hash.
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        if record.seq != self.expected_seq {
            return Err(ChainBreak::OutOfSequence {
                expected: self.expected_seq,
                found: record.seq,
            });
        }
        if record.prev_hash != self.prev_hash {
            return Err(ChainBreak::BrokenLink { seq: record.seq });
        }
        if hash(record.seq, &record.prev_hash, &record.entry) != record.hash {
            return Err(ChainBreak::Edited { seq: record.seq });
        }
        self.expected_seq += 1;
        self.prev_hash = record.hash.clone();
        self.records += 1;
        Ok(())
    }

    pub fn finish(self) -> Verified {
        Verified {
            records: self.records,
            head: self.prev_hash,
        }
    }
}

/// Verifies a whole chain from its first record.
pub fn verify<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<Verified, ChainBreak> {
    let mut verifier = Verifier::default();
    for record in records {
        verifier.check(record)?;
    }
    Ok(verifier.finish())
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Timestamp;

    pub fn serialize<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(at.timestamp_millis())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let ms = i64::deserialize(d)?;
        Timestamp::from_timestamp_millis(ms)
            .ok_or_else(|| serde::de::Error::custom(format!("instant {ms} ms is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;

    fn entry(n: i64) -> AuditEntry {
        AuditEntry {
            at: Utc.timestamp_millis_opt(1_764_000_000_000 + n).unwrap(),
            actor: format!("ops:user-{}", n % 3),
            action: "credit_line.frozen".into(),
            subject_type: "credit_line".into(),
            subject_id: format!("line-{n}"),
            detail: serde_json::json!({ "reason": "credit.overdue", "n": n }).to_string(),
        }
    }

    fn chain(len: i64) -> Vec<AuditRecord> {
        let mut records = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=len {
            let record = AuditRecord::chain(seq, &prev, entry(seq));
            prev = record.hash.clone();
            records.push(record);
        }
        records
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let records = chain(5);
        let verified = verify(&records).unwrap();
        assert_eq!(verified.records, 5);
        assert_eq!(verified.head, records[4].hash);
        assert_eq!(verify(&[]).unwrap().head, GENESIS);
    }

    #[test]
    fn an_edit_a_deletion_and_a_reordering_are_each_found_at_their_record() {
        let mut edited = chain(5);
        edited[2].entry.actor = "ops:mallory".into();
        assert_eq!(verify(&edited), Err(ChainBreak::Edited { seq: 3 }));

        let mut detail = chain(5);
        detail[1].entry.detail =
            serde_json::json!({ "reason": "credit.overdue", "n": 99 }).to_string();
        assert_eq!(verify(&detail), Err(ChainBreak::Edited { seq: 2 }));

        let mut deleted = chain(5);
        deleted.remove(3);
        assert_eq!(
            verify(&deleted),
            Err(ChainBreak::OutOfSequence {
                expected: 4,
                found: 5
            })
        );

        // Deleted and renumbered to hide it: the next link no longer holds.
        let mut renumbered = chain(5);
        renumbered.remove(3);
        renumbered[3].seq = 4;
        assert!(matches!(
            verify(&renumbered),
            Err(ChainBreak::BrokenLink { seq: 4 })
        ));

        let mut reordered = chain(5);
        reordered.swap(1, 2);
        assert_eq!(
            verify(&reordered),
            Err(ChainBreak::OutOfSequence {
                expected: 2,
                found: 3
            })
        );

        // Rehashing an edited record still breaks the link to it.
        let mut rehashed = chain(5);
        rehashed[2].entry.action = "credit_line.unfrozen".into();
        rehashed[2] =
            AuditRecord::chain(3, &rehashed[2].prev_hash.clone(), rehashed[2].entry.clone());
        assert_eq!(verify(&rehashed), Err(ChainBreak::BrokenLink { seq: 4 }));
    }

    #[test]
    fn a_record_survives_a_round_trip_through_json() {
        let record = chain(1).remove(0);
        let json = serde_json::to_string(&record).unwrap();
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
        assert!(verify(std::slice::from_ref(&back)).is_ok());
    }

    proptest! {
        /// Changing any one character of any field of any record is detected.
        #[test]
        fn any_single_change_is_detected(len in 1i64..12, pick in 0usize..100, field in 0usize..5) {
            let mut records = chain(len);
            let i = pick % records.len();
            let target = &mut records[i].entry;
            match field {
                0 => target.actor.push('x'),
                1 => target.action.push('x'),
                2 => target.subject_id.push('x'),
                3 => target.at += chrono::Duration::milliseconds(1),
                _ => target.detail.push(' '),
            }
            prop_assert!(verify(&records).is_err());
        }
    }
}
