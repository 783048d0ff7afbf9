//! Language tags (BCP 47), as users and partner apps send them.

/// A BCP 47 language tag, lower-cased (`nl`, `en-gb`, `zh-hant-tw`).
pub fn language_tag(input: &str) -> Option<String> {
    let tag = input.trim().to_ascii_lowercase().replace('_', "-");
    let mut parts = tag.split('-');
    let primary = parts.next()?;
    let primary_ok = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let rest_ok = parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    (primary_ok && rest_ok && tag.len() <= 35).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_follow_bcp47_shape() {
        assert_eq!(language_tag("nl").as_deref(), Some("nl"));
        assert_eq!(language_tag("en-GB").as_deref(), Some("en-gb"));
        assert_eq!(language_tag("en_gb").as_deref(), Some("en-gb"));
        assert_eq!(language_tag("zh-Hant-TW").as_deref(), Some("zh-hant-tw"));
        for bad in ["", "e", "english", "en-", "nl!", "12"] {
            assert_eq!(language_tag(bad), None, "{bad}");
        }
    }
}
