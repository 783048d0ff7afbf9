//! The password policy (NIST SP 800-63B, ASVS 5.0 6.2; SECURITY.md items 10-13): length in code
//! points, no composition rules, no truncation, a blocklist of common passwords, context words.

use crate::error::FieldError;
use std::collections::HashSet;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

/// The 10,000 most common passwords, ranked, from the frequency list that the `zxcvbn` crate
/// carries (MIT licence). Shipped inside the binary.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn blocklist() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

/// The number of passwords in the shipped blocklist.
pub fn blocklist_len() -> usize {
    blocklist().len()
}

#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_chars: 8, max_chars: 1024 }
    }
}

/// A password that passed the policy, in NFKC form: NFC and NFD spellings of one password hash
/// alike. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Normalise a password for verification only (no policy: the stored hash decides).
    pub fn for_verification(input: &str) -> Self {
        Self(input.nfkc().collect())
    }
}

fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    !matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Unassigned
    ) && !matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{034F}' | '\u{180B}'..='\u{180F}' | '\u{FE00}'..='\u{FE0F}')
}

impl PasswordPolicy {
    /// Check `input` against the policy. `context` holds words the password must not be or
    /// contain as its whole (the username, the email's local part, the instance name, ...).
    pub fn check(&self, field: &'static str, input: &str, context: &[&str]) -> Result<Password, FieldError> {
        let normalized: String = input.nfkc().collect();
        // Only what can be seen counts towards the length: zero-width spaces, joiners, bidi
        // controls and other format or control characters add nothing an attacker must guess.
        let chars = normalized.chars().filter(|c| is_visible(*c)).count();
        if chars == 0 {
            return Err(FieldError::new(field, "required", "is required"));
        }
        if chars < self.min_chars {
            return Err(FieldError::new(
                field,
                "password_too_short",
                &format!("must be at least {} characters", self.min_chars),
            ));
        }
        if chars > self.max_chars {
            return Err(FieldError::new(
                field,
                "password_too_long",
                &format!("must be at most {} characters", self.max_chars),
            ));
        }
        let lower = normalized.to_lowercase();
        if blocklist().contains(lower.as_str()) {
            return Err(FieldError::new(field, "password_too_common", "is too common; choose another"));
        }
        // The word itself, or the word with only digits and symbols before or after it.
        let no_letters = |s: &str| !s.chars().any(char::is_alphabetic);
        let mentions_context = context.iter().map(|w| w.trim().to_lowercase()).any(|w| {
            w.chars().count() >= 3
                && (lower.strip_prefix(w.as_str()).is_some_and(no_letters)
                    || lower.strip_suffix(w.as_str()).is_some_and(no_letters))
        });
        if mentions_context {
            return Err(FieldError::new(
                field,
                "password_contains_context",
                "must not be your username, email or the service's name",
            ));
        }
        Ok(Password(normalized))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::default()
    }

    #[test]
    fn the_blocklist_ships_ten_thousand_passwords() {
        assert_eq!(blocklist_len(), 10_000);
    }

    #[test]
    fn length_counts_code_points_not_bytes() {
        // 8 code points, 24 bytes: long enough.
        assert!(policy().check("password", "ääääääää", &[]).is_ok());
        // 7 code points, 21 bytes: too short.
        assert_eq!(policy().check("password", "äääääää", &[]).unwrap_err().code, "password_too_short");
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for p in ["password", "PASSWORD1", "12345678", "Iloveyou"] {
            let code = policy().check("password", p, &[]).unwrap_err().code;
            assert!(code == "password_too_common" || code == "password_too_short", "{p}: {code}");
        }
        assert_eq!(policy().check("password", "baseball", &[]).unwrap_err().code, "password_too_common");
    }

    #[test]
    fn context_words_are_refused() {
        for p in ["junedoe2024", "JuneDoe!!", "2024junedoe", "junedoe12024"] {
            let err = policy().check("password", p, &["junedoe", "junedoe12"]).unwrap_err();
            assert_eq!(err.code, "password_contains_context", "{p}");
        }
        assert!(policy().check("password", "junedoe rides bikes", &["junedoe"]).is_ok());
    }

    #[test]
    fn invisible_characters_do_not_count_towards_the_length() {
        for p in
            ["\u{200B}".repeat(8), "\u{200D}".repeat(12), "\u{2066}\u{2069}".repeat(5), "\u{FEFF}".repeat(9)]
        {
            assert_eq!(policy().check("password", &p, &[]).unwrap_err().code, "required", "{p:?}");
        }
        let padded = format!("abc{}de", "\u{200B}".repeat(6));
        assert_eq!(policy().check("password", &padded, &[]).unwrap_err().code, "password_too_short");
        assert!(
            policy().check("password", "z\u{e9}bre \u{1F993} rayé", &[]).is_ok(),
            "letters, emoji, spaces count"
        );
    }

    #[test]
    fn the_whole_email_is_refused_as_a_password() {
        let err =
            policy().check("password", "June.Doe@AcmeCorp.com", &["june.doe@acmecorp.com"]).unwrap_err();
        assert_eq!(err.code, "password_contains_context");
    }

    #[test]
    fn overlong_passwords_cost_nothing_and_are_refused() {
        let long = "x".repeat(1025);
        assert_eq!(policy().check("password", &long, &[]).unwrap_err().code, "password_too_long");
    }

    #[test]
    fn nfc_and_nfd_spellings_normalise_alike() {
        let nfc = policy().check("password", "caf\u{e9} au lait", &[]).unwrap();
        let nfd = policy().check("password", "cafe\u{301} au lait", &[]).unwrap();
        assert_eq!(nfc.expose(), nfd.expose());
    }

    #[test]
    fn no_composition_rules_apply() {
        assert!(policy().check("password", "correct horse battery staple", &[]).is_ok());
    }

    #[test]
    fn debug_hides_the_value() {
        let p = policy().check("password", "a secret phrase", &[]).unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
