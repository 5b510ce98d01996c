//! Personal data at rest: sealed with AES-256-GCM under a key from configuration, never stored
//! or logged in clear. Values that must be found again (a resident identity number, a credit
//! code, a mobile number) are also kept as a keyed hash — a blind index — so a lookup needs no
//! decryption and the index alone reveals nothing.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use lendcore_domain::borrower::{BankAccount, Email, Mobile, PersonalData};
use lendcore_domain::identity::{CreditCode, ResidentId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::EngineError;

/// Marks the format of a sealed value, so a later scheme can read the old ones.
const VERSION: &str = "v1";

/// Seals and opens personal data, and derives blind indexes. Built from one 32-byte master
/// key; the encryption and index keys are derived from it, each for its purpose.
pub struct Vault {
    cipher: Aes256Gcm,
    index_key: [u8; 32],
    link_key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(keys hidden)")
    }
}

/// The sealed form: the clear values, as the domain parsed them.
#[derive(Serialize, Deserialize)]
struct Clear {
    name: String,
    resident_id: Option<String>,
    credit_code: Option<String>,
    legal_representative: Option<String>,
    mobile: Option<String>,
    email: Option<String>,
    address: Option<String>,
    bank_account: Option<String>,
}

impl Vault {
    /// `master_key_hex`: 64 hex digits (32 random bytes, e.g. `openssl rand -hex 32`).
    pub fn from_hex(master_key_hex: &str) -> Result<Self, String> {
        let bytes = hex::decode(master_key_hex.trim())
            .map_err(|_| "the personal data key must be 64 hex digits".to_owned())?;
        let master: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the personal data key must be 32 bytes (64 hex digits)".to_owned())?;
        let derive = |purpose: &[u8]| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&master)
                .expect("HMAC takes keys of any length");
            mac.update(purpose);
            mac.finalize().into_bytes().into()
        };
        let encryption_key = derive(b"lendcore personal data encryption v1");
        Ok(Self {
            cipher: Aes256Gcm::new(&encryption_key.into()),
            index_key: derive(b"lendcore personal data index v1"),
            link_key: derive(b"lendcore signed links v1"),
        })
    }

    /// `v1:` + hex of a fresh 96-bit nonce and the ciphertext with its tag. The sealed value is
    /// bound to `owner` (the borrower's id): copied into another borrower's row, it will not
    /// open.
    pub fn seal(&self, data: &PersonalData, owner: &str) -> Result<String, EngineError> {
        let clear = Clear {
            name: data.name.clone(),
            resident_id: data.resident_id.as_ref().map(|v| v.expose().to_owned()),
            credit_code: data.credit_code.as_ref().map(|v| v.expose().to_owned()),
            legal_representative: data.legal_representative.clone(),
            mobile: data.mobile.as_ref().map(|v| v.expose().to_owned()),
            email: data.email.as_ref().map(|v| v.expose().to_owned()),
            address: data.address.clone(),
            bank_account: data.bank_account.as_ref().map(|v| v.expose().to_owned()),
        };
        let plain = serde_json::to_vec(&clear)
            .map_err(|e| EngineError::Internal(format!("sealing: {e}")))?;
        self.seal_bytes(&plain, owner)
    }

    /// Seals any secret (a second factor's key) for `owner`, in the same format.
    pub fn seal_bytes(&self, plain: &[u8], owner: &str) -> Result<String, EngineError> {
        let nonce_bytes: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: plain,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| EngineError::Internal("sealing failed".to_owned()))?;
        Ok(format!(
            "{VERSION}:{}{}",
            hex::encode(nonce_bytes),
            hex::encode(sealed)
        ))
    }

    /// Opens what [`Vault::seal`] sealed for `owner`; a wrong key, a tampered value or another
    /// owner's value is an error, never garbage.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<PersonalData, EngineError> {
        let corrupt = |why: &str| EngineError::Internal(format!("sealed personal data: {why}"));
        let plain = self.open_bytes(sealed, owner)?;
        let clear: Clear = serde_json::from_slice(&plain).map_err(|_| corrupt("not JSON"))?;
        // Parsed when sealed, so parsing again succeeds; a failure means the data is corrupt.
        let far_future = chrono::NaiveDate::MAX;
        Ok(PersonalData {
            name: clear.name,
            resident_id: clear
                .resident_id
                .map(|v| ResidentId::parse(&v, far_future).map_err(|_| corrupt("resident_id")))
                .transpose()?,
            credit_code: clear
                .credit_code
                .map(|v| CreditCode::parse(&v).map_err(|_| corrupt("credit_code")))
                .transpose()?,
            legal_representative: clear.legal_representative,
            mobile: clear
                .mobile
                .map(|v| Mobile::parse(&v).map_err(|_| corrupt("mobile")))
                .transpose()?,
            email: clear
                .email
                .map(|v| Email::parse(&v).map_err(|_| corrupt("email")))
                .transpose()?,
            address: clear.address,
            bank_account: clear
                .bank_account
                .map(|v| BankAccount::parse(&v).map_err(|_| corrupt("bank_account")))
                .transpose()?,
        })
    }

    /// Opens what [`Vault::seal_bytes`] sealed for `owner`.
    pub fn open_bytes(&self, sealed: &str, owner: &str) -> Result<Vec<u8>, EngineError> {
        let corrupt = |why: &str| EngineError::Internal(format!("sealed value: {why}"));
        let body = sealed
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or_else(|| corrupt("unknown format"))?;
        let bytes = hex::decode(body).map_err(|_| corrupt("not hex"))?;
        if bytes.len() < 12 {
            return Err(corrupt("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| corrupt("does not open with this key, or was altered"))
    }

    /// The signer of links (resume an application, sign a contract), under a key of its own.
    pub fn link_signer(&self) -> crate::links::LinkSigner {
        crate::links::LinkSigner::new(self.link_key.to_vec())
    }

    /// The blind index of `value` as a `kind` of identifier: equal values give equal indexes;
    /// without the key, an index says nothing about its value.
    pub fn index(&self, kind: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key)
            .expect("HMAC takes keys of any length");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use lendcore_domain::borrower::{BorrowerInput, BorrowerKind};

    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn data() -> PersonalData {
        BorrowerInput {
            kind: Some(BorrowerKind::Individual),
            name: "张三".into(),
            resident_id: Some("11010519491231002X".into()),
            mobile: Some("13812345678".into()),
            ..BorrowerInput::default()
        }
        .parse(chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap())
        .unwrap()
        .1
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_shows_nothing_in_clear() {
        let vault = Vault::from_hex(KEY).unwrap();
        let sealed = vault.seal(&data(), "b-1").unwrap();
        assert!(sealed.starts_with("v1:"));
        for clear in ["11010519491231002X", "13812345678", "张三"] {
            assert!(!sealed.contains(clear));
        }
        assert_eq!(vault.open(&sealed, "b-1").unwrap(), data());
        assert!(vault.open(&sealed, "b-2").is_err(), "bound to its borrower");
        assert_ne!(
            vault.seal(&data(), "b-1").unwrap(),
            sealed,
            "a fresh nonce every time"
        );
        let other = Vault::from_hex(&KEY.replace("1f", "20")).unwrap();
        assert!(
            other.open(&sealed, "b-1").is_err(),
            "another key cannot open it"
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert!(
            vault
                .open(&String::from_utf8(tampered).unwrap(), "b-1")
                .is_err()
        );
        assert!(format!("{vault:?}").contains("hidden"));
    }

    #[test]
    fn blind_indexes_match_equal_values_only_and_need_the_key() {
        let vault = Vault::from_hex(KEY).unwrap();
        let a = vault.index("resident_id", "11010519491231002X");
        assert_eq!(a, vault.index("resident_id", "11010519491231002X"));
        assert_ne!(a, vault.index("resident_id", "440308199901010012"));
        assert_ne!(
            a,
            vault.index("mobile", "11010519491231002X"),
            "kinds do not collide"
        );
        let other = Vault::from_hex(&KEY.replace("1f", "20")).unwrap();
        assert_ne!(a, other.index("resident_id", "11010519491231002X"));
        assert!(Vault::from_hex("abc").is_err());
        assert!(Vault::from_hex(&"00".repeat(31)).is_err());
    }
}
