//! Sealing of outbox payloads: a message may carry an activation token or a generated password,
//! which must survive a crash until delivered (SECURITY.md 26) yet never sit in the database in
//! clear (SECURITY.md 16). Payloads are sealed with XChaCha20-Poly1305 under a key kept outside
//! the database, and dropped once delivered.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

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
