//! Session tokens: JWTs signed with the instance's Ed25519 key (published as a JWKS), each
//! recorded in the store so that logout revokes it everywhere.

use crate::model::{Instance, SigningKeyRecord};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The audience of every onramp session token.
pub const AUDIENCE: &str = "onramp";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    /// The instance that issued the token; a token is accepted by that instance only.
    pub inst: String,
    /// The session id, the key of its row in the store.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

/// A new random Ed25519 key.
pub fn generate_key(kid: String, now: OffsetDateTime) -> Result<SigningKeyRecord, String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(SigningKeyRecord { kid, pkcs8_der: der.as_bytes().to_vec(), created_at: now })
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public key, base64url: the JWK's `x`.
    x: String,
}

/// The keys of one instance, newest first.
pub struct KeyRing {
    instance: Instance,
    keys: Vec<Key>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub kid: String,
    pub x: String,
}

impl KeyRing {
    pub fn new(instance: Instance, mut records: Vec<SigningKeyRecord>) -> Result<Self, String> {
        records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        let keys = records
            .into_iter()
            .map(|r| {
                let signing = SigningKey::from_pkcs8_der(&r.pkcs8_der).map_err(|e| e.to_string())?;
                let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
                Ok(Key {
                    encoding: EncodingKey::from_ed_der(&r.pkcs8_der),
                    decoding: DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?,
                    kid: r.kid,
                    x,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if keys.is_empty() {
            return Err(format!("instance {} has no signing key", instance.name));
        }
        Ok(Self { instance, keys })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| e.to_string())
    }

    /// Check signature, audience, instance and expiry (against the injected clock); `None` for
    /// any token this instance did not issue or that has expired.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        // Expiry is checked below against the injected clock, not the system's.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).ok()?.claims;
        (claims.inst == self.instance.name && claims.exp > now.unix_timestamp()).then_some(claims)
    }

    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys
            .iter()
            .map(|k| Jwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: "EdDSA",
                use_: "sig",
                kid: k.kid.clone(),
                x: k.x.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceId;
    use time::macros::datetime;

    fn ring(name: &str) -> KeyRing {
        let now = datetime!(2026-01-01 0:00 UTC);
        let inst = Instance { id: InstanceId(1), name: name.into() };
        KeyRing::new(inst, vec![generate_key(format!("k-{name}"), now).unwrap()]).unwrap()
    }

    fn claims(inst: &str, exp: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: "usr_1".into(),
            aud: AUDIENCE.into(),
            inst: inst.into(),
            sid: "ses_1".into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn a_token_verifies_with_its_own_instance_only() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let a = ring("a");
        let b = ring("b");
        let token = a.sign(&claims("a", now.unix_timestamp() + 60)).unwrap();
        assert!(a.verify(&token, now).is_some());
        assert!(b.verify(&token, now).is_none());
    }

    #[test]
    fn an_expired_or_tampered_token_is_refused() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let a = ring("a");
        let token = a.sign(&claims("a", now.unix_timestamp() + 60)).unwrap();
        assert!(a.verify(&token, now + time::Duration::seconds(61)).is_none());
        let mut tampered = token.clone();
        tampered.replace_range(token.len() - 4.., "AAAA");
        assert!(a.verify(&tampered, now).is_none());
    }

    #[test]
    fn jwks_lists_the_public_key() {
        let a = ring("a");
        let jwks = a.jwks();
        assert_eq!(jwks.len(), 1);
        assert_eq!(jwks[0].kty, "OKP");
        assert_eq!(URL_SAFE_NO_PAD.decode(&jwks[0].x).unwrap().len(), 32);
    }
}
