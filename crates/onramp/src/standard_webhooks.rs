//! Signing as the Standard Webhooks specification has it (<https://www.standardwebhooks.com>),
//! so receivers verify with any of its libraries:
//!
//! ```text
//! webhook-id: msg_…                    the same on every retry of one message
//! webhook-timestamp: 1700000000        seconds, when this attempt was sent
//! webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")> [v1,<…>]
//! ```
//!
//! The key is the base64 after `whsec_` in the secret. While a secret is rotated the old one
//! signs too, each signature separated by a space.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `webhook-signature` value for `body` under every secret in `secrets` (`whsec_…`; one
/// that is not is skipped: configuration refuses them).
pub fn signature(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of a signed request.
pub fn headers(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature(secrets, id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example (standard-webhooks/libraries, the test vectors).
    #[test]
    fn signs_the_specifications_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn an_old_and_a_new_secret_both_sign_during_a_rotation() {
        let sig = signature(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_bm90IHRoZSBzYW1lIGtleSBhdCBhbGw="],
            "msg_1",
            1,
            b"{}",
        );
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.split(' ').all(|s| s.starts_with("v1,")));
    }
}
