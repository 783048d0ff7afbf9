//! Password hashes from the systems people migrate from (issue 13): imported as they are,
//! verified at the user's first login, and then replaced by onramp's Argon2id.
//!
//! Stored as a string that names its algorithm:
//! - PHC strings: `$argon2id$`, `$argon2i$`, `$argon2d$`, `$scrypt$`, `$pbkdf2-sha256$`,
//!   `$pbkdf2-sha512$`;
//! - bcrypt's modular crypt form: `$2a$`, `$2b$`, `$2y$`;
//! - Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`;
//! - Firebase's modified scrypt, with its project parameters, as onramp writes it:
//!   `$firebase-scrypt$m=<mem_cost>,r=<rounds>$<salt>$<salt separator>$<signer key>$<hash>`
//!   (each part standard base64, as Firebase's `auth:export` and console give them).
//!
//! Work factors are bounded, so an imported hash cannot make one login cost minutes.

use aes::cipher::{KeyIvInit, StreamCipher};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

/// A Firebase scrypt hash and its project's parameters (from the console's "password hash
/// parameters").
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct FirebaseScrypt {
    pub hash: String,
    pub salt: String,
    pub salt_separator: String,
    pub signer_key: String,
    pub rounds: u32,
    pub mem_cost: u32,
}

/// Why an imported hash is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

fn unsupported(why: &str) -> Unsupported {
    Unsupported(why.to_owned())
}

const MAX_BCRYPT_COST: u32 = 16;
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;
/// scrypt memory, 128 · r · N bytes.
const MAX_SCRYPT_BYTES: u64 = 256 << 20;
const MAX_ARGON2_KIB: u32 = 1 << 20;
const MAX_ARGON2_T: u32 = 20;

/// Is `stored` a hash of another system (not onramp's own Argon2id)?
pub fn is_foreign(stored: &str) -> bool {
    !stored.starts_with("$argon2id$")
}

/// The stored form of an imported string hash, once its form and work factors are checked.
pub fn accept(hash: &str) -> Result<String, Unsupported> {
    let hash = hash.trim();
    if hash.len() > 1024 {
        return Err(unsupported("is too long to be a password hash"));
    }
    if let Some(rest) = hash.strip_prefix("pbkdf2_sha256$") {
        let parts: Vec<&str> = rest.split('$').collect();
        let [rounds, salt, digest] = parts[..] else {
            return Err(unsupported("is not a Django pbkdf2_sha256$<iterations>$<salt>$<hash>"));
        };
        let rounds: u32 = rounds.parse().map_err(|_| unsupported("has iterations that are not a number"))?;
        if rounds == 0 || rounds > MAX_PBKDF2_ROUNDS || salt.is_empty() || STANDARD.decode(digest).is_err() {
            return Err(unsupported("has iterations out of range or an unreadable salt or hash"));
        }
        return Ok(hash.to_owned());
    }
    if ["$2a$", "$2b$", "$2y$", "$2x$"].iter().any(|p| hash.starts_with(p)) {
        let parts = hash.parse::<bcrypt::HashParts>().map_err(|_| unsupported("is not a bcrypt hash"))?;
        if parts.get_cost() > MAX_BCRYPT_COST {
            return Err(unsupported(&format!("has a bcrypt cost over {MAX_BCRYPT_COST}")));
        }
        return Ok(hash.to_owned());
    }
    if hash.starts_with("$firebase-scrypt$") {
        parse_firebase(hash)?;
        return Ok(hash.to_owned());
    }
    let phc = PasswordHash::new(hash)
        .map_err(|_| unsupported("is not a hash in a known form (PHC, bcrypt, Django, Firebase)"))?;
    let param = |name: &str| phc.params.get_decimal(name).unwrap_or(0);
    match phc.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => {
            if param("m") > MAX_ARGON2_KIB || param("t") > MAX_ARGON2_T || param("p") > 16 {
                return Err(unsupported("has Argon2 parameters over the limits (m 1 GiB, t 20, p 16)"));
            }
        }
        "scrypt" => {
            let (ln, r, p) = (param("ln"), param("r"), param("p"));
            if ln > 30 || p > 16 || 128 * u64::from(r) * (1u64 << ln) > MAX_SCRYPT_BYTES {
                return Err(unsupported("has scrypt parameters over the limits (256 MiB, p 16)"));
            }
        }
        "pbkdf2-sha256" | "pbkdf2-sha512" => {
            if param("i") == 0 || param("i") > MAX_PBKDF2_ROUNDS {
                return Err(unsupported("has PBKDF2 iterations out of range"));
            }
        }
        other => return Err(unsupported(&format!("uses {other}, which onramp cannot verify"))),
    }
    if phc.hash.is_none() || phc.salt.is_none() {
        return Err(unsupported("has no salt or no hash"));
    }
    Ok(hash.to_owned())
}

/// The stored form of a Firebase scrypt hash and its parameters.
pub fn accept_firebase(f: &FirebaseScrypt) -> Result<String, Unsupported> {
    let stored = format!(
        "$firebase-scrypt$m={},r={}${}${}${}${}",
        f.mem_cost, f.rounds, f.salt, f.salt_separator, f.signer_key, f.hash
    );
    parse_firebase(&stored)?;
    Ok(stored)
}

struct Firebase {
    mem_cost: u32,
    rounds: u32,
    salt: Vec<u8>,
    separator: Vec<u8>,
    signer_key: Vec<u8>,
    hash: Vec<u8>,
}

fn parse_firebase(stored: &str) -> Result<Firebase, Unsupported> {
    let bad = || unsupported("is not a Firebase scrypt hash with its parameters");
    let rest = stored.strip_prefix("$firebase-scrypt$").ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('$').collect();
    let [params, salt, separator, signer_key, hash] = parts[..] else { return Err(bad()) };
    let (mut mem_cost, mut rounds) = (0, 0);
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => mem_cost = v.parse().map_err(|_| bad())?,
            Some(("r", v)) => rounds = v.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    if !(1..=20).contains(&mem_cost) || !(1..=32).contains(&rounds) {
        return Err(unsupported("has Firebase parameters out of range (mem_cost 1-20, rounds 1-32)"));
    }
    let decode = |s: &str| STANDARD.decode(s).map_err(|_| bad());
    let f = Firebase {
        mem_cost,
        rounds,
        salt: decode(salt)?,
        separator: decode(separator)?,
        signer_key: decode(signer_key)?,
        hash: decode(hash)?,
    };
    if f.hash.is_empty() || f.signer_key.is_empty() {
        return Err(bad());
    }
    Ok(f)
}

/// Does `password` match the foreign hash `stored`? An error when it cannot be read (it was
/// checked on import, so that is a bug or a changed row).
pub fn verify(stored: &str, password: &[u8]) -> Result<bool, String> {
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        let parts: Vec<&str> = rest.split('$').collect();
        let [rounds, salt, digest] = parts[..] else { return Err("unreadable Django hash".into()) };
        let rounds: u32 = rounds.parse().map_err(|_| "unreadable Django iterations")?;
        let expected = STANDARD.decode(digest).map_err(|e| e.to_string())?;
        let mut out = vec![0u8; expected.len()];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt.as_bytes(), rounds, &mut out);
        return Ok(bool::from(out.ct_eq(&expected)));
    }
    if stored.starts_with("$2") {
        return bcrypt::verify(password, stored).map_err(|e| e.to_string());
    }
    if stored.starts_with("$firebase-scrypt$") {
        let f = parse_firebase(stored).map_err(|e| e.0)?;
        let params = scrypt::Params::new(f.mem_cost as u8, f.rounds, 1, 32).map_err(|e| e.to_string())?;
        let mut salt = f.salt.clone();
        salt.extend_from_slice(&f.separator);
        let mut key = [0u8; 32];
        scrypt::scrypt(password, &salt, &params, &mut key).map_err(|e| e.to_string())?;
        let mut block = f.signer_key.clone();
        let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new((&key).into(), (&[0u8; 16]).into());
        cipher.apply_keystream(&mut block);
        let n = f.hash.len().min(block.len());
        return Ok(n == f.hash.len() && bool::from(block[..n].ct_eq(&f.hash)));
    }
    let phc = PasswordHash::new(stored).map_err(|e| e.to_string())?;
    let verified = match phc.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => argon2::Argon2::default().verify_password(password, &phc),
        "scrypt" => scrypt::Scrypt.verify_password(password, &phc),
        "pbkdf2-sha256" | "pbkdf2-sha512" => pbkdf2::Pbkdf2.verify_password(password, &phc),
        other => return Err(format!("{other} hashes cannot be verified")),
    };
    match verified {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_of_each_prefix_verify() {
        let hash = bcrypt::hash("correct horse", 4).unwrap();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let h = format!("{prefix}{}", &hash[4..]);
            assert_eq!(accept(&h).unwrap(), h);
            assert!(verify(&h, b"correct horse").unwrap());
            assert!(!verify(&h, b"wrong horse").unwrap());
        }
        assert!(accept(&format!("$2b$31${}", &hash[7..])).is_err(), "cost over the limit");
    }

    #[test]
    fn firebase_scrypt_matches_firebases_own_test_vector() {
        // github.com/firebase/scrypt README: "user1password" with the project's parameters.
        let f = FirebaseScrypt {
            hash: "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="
                .into(),
            salt: "42xEC+ixf3L2lw==".into(),
            salt_separator: "Bw==".into(),
            signer_key:
                "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
                    .into(),
            rounds: 8,
            mem_cost: 14,
        };
        let stored = accept_firebase(&f).unwrap();
        assert!(verify(&stored, b"user1password").unwrap());
        assert!(!verify(&stored, b"user2password").unwrap());
        assert!(accept_firebase(&FirebaseScrypt { mem_cost: 40, ..f }).is_err());
    }

    #[test]
    fn django_pbkdf2_verifies() {
        // Django 4's make_password("correct horse", salt="saltsalt", hasher="pbkdf2_sha256") at
        // 1000 iterations, computed here the way Django does.
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"correct horse", b"saltsalt", 1000, &mut out);
        let stored = format!("pbkdf2_sha256$1000$saltsalt${}", STANDARD.encode(out));
        assert_eq!(accept(&stored).unwrap(), stored);
        assert!(verify(&stored, b"correct horse").unwrap());
        assert!(!verify(&stored, b"correct horsf").unwrap());
        assert!(accept("pbkdf2_sha256$0$salt$aGFzaA==").is_err());
    }

    #[test]
    fn phc_scrypt_pbkdf2_and_argon2_variants_verify() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let scrypt_params = scrypt::Params::new(10, 8, 1, 32).unwrap();
        let scrypt =
            scrypt::Scrypt.hash_password_customized(b"pw-one", None, None, scrypt_params, &salt).unwrap();
        let pbkdf2 = pbkdf2::Pbkdf2
            .hash_password_customized(
                b"pw-one",
                Some(pbkdf2::Algorithm::Pbkdf2Sha256.ident()),
                None,
                pbkdf2::Params { rounds: 1000, output_length: 32 },
                &salt,
            )
            .unwrap();
        let argon2i = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw-one", &salt)
        .unwrap();
        for h in [scrypt.to_string(), pbkdf2.to_string(), argon2i.to_string()] {
            assert_eq!(accept(&h).unwrap(), h);
            assert!(verify(&h, b"pw-one").unwrap(), "{h}");
            assert!(!verify(&h, b"pw-two").unwrap(), "{h}");
        }
        assert!(accept("$md5$abc").is_err());
        assert!(accept("plain text").is_err());
        assert!(accept("$scrypt$ln=25,r=8,p=1$c2FsdA$aGFzaA").is_err(), "4 GiB of memory");
    }
}
