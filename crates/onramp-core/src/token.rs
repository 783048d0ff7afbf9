//! The injected source of secrets and identifiers, and the one-way hash secrets are stored as.

use rand::{Rng, RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};

const ALNUM_LOWER: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

pub trait TokenGenerator: Send + Sync + 'static {
    /// A link token: 32 characters of `[0-9a-z]`, about 165 bits from a CSPRNG.
    fn secret_token(&self) -> String;
    /// A numeric code of `digits` digits from a CSPRNG, for SMS and typed codes.
    fn numeric_code(&self, digits: usize) -> String;
    /// A public identifier: `prefix` + `_` + 16 characters of `[0-9a-z]` (about 82 bits).
    fn public_id(&self, prefix: &str) -> String;
    /// A strong password for users who did not choose one: 20 characters, mixed alphabet.
    fn password(&self) -> String;
    /// Random bytes (salts, nonces).
    fn bytes(&self, out: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsTokenGenerator;

fn pick(alphabet: &[u8], len: usize) -> String {
    let mut rng = OsRng;
    (0..len).map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())])).collect()
}

impl TokenGenerator for OsTokenGenerator {
    fn secret_token(&self) -> String {
        pick(ALNUM_LOWER, 32)
    }

    fn numeric_code(&self, digits: usize) -> String {
        pick(b"0123456789", digits)
    }

    fn public_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", pick(ALNUM_LOWER, 16))
    }

    fn password(&self) -> String {
        // No look-alikes (0/O, 1/l/I) so a password read from an email can be typed.
        pick(b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ", 20)
    }

    fn bytes(&self, out: &mut [u8]) {
        OsRng.fill_bytes(out);
    }
}

/// SHA-256 of a secret, hex encoded: the only form in which a secret from an email is stored.
pub fn secret_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_carry_at_least_128_bits() {
        let token = OsTokenGenerator.secret_token();
        let bits = token.len() as f64 * 36f64.log2();
        assert!(bits >= 128.0, "{bits}");
        assert!(token.bytes().all(|b| ALNUM_LOWER.contains(&b)));
    }

    #[test]
    fn secret_hash_is_sha256_hex() {
        assert_eq!(secret_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn two_tokens_differ() {
        assert_ne!(OsTokenGenerator.secret_token(), OsTokenGenerator.secret_token());
    }
}
