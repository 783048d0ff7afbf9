//! Sealing of outbox payloads: a message may carry an activation token or a generated password,
//! which must survive a crash until delivered (SECURITY.md 26) yet never sit in the database in
//! clear (SECURITY.md 16). Payloads are sealed with XChaCha20-Poly1305 under a key kept outside
//! the database, and dropped once delivered.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `message` under `key`, hex.
fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { return String::new() };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sealed payload cannot be opened (wrong key or damaged)")]
pub struct SealError;

impl SealKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn seal(&self, nonce: [u8; 24], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut out = nonce.to_vec();
        out.extend(cipher.encrypt(XNonce::from_slice(&nonce), plaintext).map_err(|_| SealError)?);
        Ok(out)
    }

    /// A value that tells keys apart without revealing them: stored in the database at first
    /// start, so a node with another key refuses to start instead of failing to open mail.
    pub fn check_value(&self) -> String {
        hmac_hex(&self.0, &[b"onramp/key-check/v1"])
    }

    /// A keyed hash of a low-entropy secret (a six-digit code): without the key, a dump of the
    /// database does not give the secret back by trying every value. `purpose` separates uses.
    pub fn keyed_hash(&self, purpose: &str, secret: &str) -> String {
        let subkey = hmac_hex(&self.0, &[b"onramp/keyed-hash/v1"]);
        hmac_hex(subkey.as_bytes(), &[purpose.as_bytes(), b"\0", secret.as_bytes()])
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 24 {
            return Err(SealError);
        }
        let (nonce, body) = sealed.split_at(24);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| SealError)
    }
}

#[cfg(test)]
mod keyed_tests {
    use super::*;

    #[test]
    fn keyed_hashes_depend_on_key_purpose_and_secret() {
        let (a, b) = (SealKey::from_bytes([1; 32]), SealKey::from_bytes([2; 32]));
        let h = a.keyed_hash("sms", "123456");
        assert_eq!(h.len(), 64);
        assert_eq!(h, a.keyed_hash("sms", "123456"));
        assert_ne!(h, b.keyed_hash("sms", "123456"));
        assert_ne!(h, a.keyed_hash("other", "123456"));
        assert_ne!(h, a.keyed_hash("sms", "123457"));
        assert_ne!(h, crate::token::secret_hash("123456"), "not the plain SHA-256");
        assert_ne!(a.check_value(), b.check_value());
        assert_eq!(a.check_value(), SealKey::from_bytes([1; 32]).check_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_payload_opens_with_its_key_only() {
        let key = SealKey::from_bytes([7; 32]);
        let sealed = key.seal([1; 24], b"token=abc").unwrap();
        assert!(!sealed.windows(3).any(|w| w == b"abc"));
        assert_eq!(key.open(&sealed).unwrap(), b"token=abc");
        assert_eq!(SealKey::from_bytes([8; 32]).open(&sealed), Err(SealError));
    }
}
