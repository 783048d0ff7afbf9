//! Language tags (BCP 47), as users and partner apps send them.

use crate::error::FieldError;

/// A BCP 47 language tag, lower-cased (`nl`, `en-gb`, `zh-hant-tw`). Only `parse` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language(String);

/// The field code of a value that is not a language tag.
pub const INVALID_LANGUAGE: &str = "invalid_language";

impl Language {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let tag = input.trim().to_ascii_lowercase().replace('_', "-");
        let mut parts = tag.split('-');
        let primary = parts.next().unwrap_or_default();
        let primary_ok = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
        let rest_ok =
            parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if primary_ok && rest_ok && tag.len() <= 35 {
            Ok(Self(tag))
        } else {
            Err(FieldError::new(field, INVALID_LANGUAGE, "must be a language tag like nl or en-gb"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(input: &str) -> Option<String> {
        Language::parse("language", input).ok().map(Language::into_string)
    }

    #[test]
    fn language_tags_follow_bcp47_shape() {
        assert_eq!(tag("nl").as_deref(), Some("nl"));
        assert_eq!(tag("en-GB").as_deref(), Some("en-gb"));
        assert_eq!(tag("en_gb").as_deref(), Some("en-gb"));
        assert_eq!(tag("zh-Hant-TW").as_deref(), Some("zh-hant-tw"));
        for bad in ["", "e", "english", "en-", "nl!", "12"] {
            assert_eq!(tag(bad), None, "{bad}");
        }
    }
}
