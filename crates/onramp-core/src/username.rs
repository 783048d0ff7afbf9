//! Usernames: display form plus a canonical key (NFKC, lower case, UTS #39 skeleton) so that
//! confusable spellings collide (CVE-2021-3424), and no `@` so no username can equal another
//! user's email (CVE-2021-3754).

use crate::error::FieldError;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    canonical: String,
}

pub const MIN_USERNAME_CHARS: usize = 8;
pub const MAX_USERNAME_CHARS: usize = 64;

/// The comparison key of a username: confusables map to one skeleton.
pub fn username_key(input: &str) -> String {
    let lowered: String = input.trim().nfkc().collect::<String>().to_lowercase();
    unicode_security::skeleton(&lowered).collect::<String>().to_lowercase()
}

impl Username {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let display: String = input.trim().nfkc().collect();
        let chars = display.chars().count();
        if chars < MIN_USERNAME_CHARS {
            return Err(FieldError::new(
                "username",
                "username_too_short",
                &format!("must be at least {MIN_USERNAME_CHARS} characters"),
            ));
        }
        if chars > MAX_USERNAME_CHARS {
            return Err(FieldError::new(
                "username",
                "username_too_long",
                &format!("must be at most {MAX_USERNAME_CHARS} characters"),
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !display.chars().all(allowed) {
            return Err(FieldError::new(
                "username",
                "invalid_username",
                "may contain only letters, digits, '.', '_' and '-'",
            ));
        }
        let canonical = username_key(&display);
        Ok(Self { display, canonical })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// A readable base for a generated username: the ASCII letters and digits of a name,
    /// lower-cased and joined with '.', e.g. "June Doe" -> "june.doe".
    pub fn base_from_name(name: &str) -> String {
        let words: Vec<String> = name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| w.to_ascii_lowercase())
            .collect();
        let base = words.join(".");
        let base: String = base.chars().take(40).collect();
        if base.is_empty() { "user".into() } else { base }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusable_spellings_share_a_key() {
        // Latin "paypal.inc" and one with a Cyrillic 'а'.
        assert_eq!(username_key("paypal.inc"), username_key("p\u{430}ypal.inc"));
        assert_eq!(username_key("JuneDoe99"), username_key("junedoe99"));
    }

    #[test]
    fn usernames_may_not_look_like_emails() {
        assert_eq!(Username::parse("june@doe.com").unwrap_err().code, "invalid_username");
    }

    #[test]
    fn short_usernames_are_refused() {
        assert_eq!(Username::parse("junedoe").unwrap_err().code, "username_too_short");
        assert!(Username::parse("junedoe1").is_ok());
    }

    #[test]
    fn names_give_readable_bases() {
        assert_eq!(Username::base_from_name("June Doe"), "june.doe");
        assert_eq!(Username::base_from_name("Zoë O'Brien"), "zo.o.brien");
        assert_eq!(Username::base_from_name("李"), "user");
    }
}
