//! Email addresses: syntax checks that keep header injection impossible, and the canonical form
//! under which two spellings of one mailbox are one account (SECURITY.md items 2-4).

use crate::error::FieldError;
use unicode_normalization::UnicodeNormalization;

/// An email address that passed validation. Mail goes to `as_entered` (RFC 5321 keeps the local
/// part case-sensitive); uniqueness and look-ups use `canonical`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    as_entered: String,
    canonical: String,
}

const MAX_LOCAL: usize = 64;
const MAX_TOTAL: usize = 254;

/// Zero-width and bidirectional control characters that render as nothing.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}')
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("email", "invalid_email", "is not a valid email address");
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("email", "required", "is required"));
        }
        if trimmed.chars().any(|c| c.is_control()) {
            return Err(invalid());
        }
        let cleaned: String = trimmed.chars().filter(|c| !is_invisible(*c)).collect();
        let (local, domain) = match cleaned.split_once('@') {
            Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@') => (l, d),
            _ => return Err(invalid()),
        };
        if local.chars().any(|c| {
            c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | ':' | '\\' | '"' | '[' | ']')
        }) || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(invalid());
        }
        if local.len() > MAX_LOCAL || cleaned.len() > MAX_TOTAL {
            return Err(FieldError::new("email", "email_too_long", "is too long"));
        }
        // UTS #46 mapping and validation; the domain must have a dot-separated label structure.
        let ascii_domain = idna::domain_to_ascii_strict(domain).map_err(|_| invalid())?;
        if !ascii_domain.contains('.') || ascii_domain.split('.').any(|l| l.is_empty() || l.len() > 63) {
            return Err(invalid());
        }
        let canonical_local: String = local.nfkc().collect::<String>().to_lowercase();
        let canonical = format!("{canonical_local}@{ascii_domain}");
        if canonical.len() > MAX_TOTAL {
            return Err(FieldError::new("email", "email_too_long", "is too long"));
        }
        Ok(Self { as_entered: cleaned, canonical })
    }

    /// What a password must not be: the local part, and the whole address as typed and in
    /// canonical form.
    pub fn identifying_words(&self) -> [&str; 3] {
        [self.local_part(), self.as_entered(), self.canonical()]
    }

    /// The address as the person typed it (less surrounding space and invisible characters).
    pub fn as_entered(&self) -> &str {
        &self.as_entered
    }

    /// The comparison key: NFKC, lower case, IDNA (ASCII) domain.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The part before the `@`, as entered.
    pub fn local_part(&self) -> &str {
        self.as_entered.split('@').next().unwrap_or_default()
    }

    /// Rebuild from stored columns (already validated when first parsed).
    pub fn from_stored(as_entered: String, canonical: String) -> Self {
        Self { as_entered, canonical }
    }
}

/// The canonical key of a login identifier that looks like an email, or `None`.
pub fn canonical_identifier(input: &str) -> Option<String> {
    EmailAddress::parse(input).ok().map(|e| e.canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_mailbox_share_a_canonical_form() {
        let forms = [
            "Alice@EXAMPLE.com",
            " alice@example.com ",
            "ａｌｉｃｅ@example.com",
            "alice\u{200B}@example.com",
            "alice@ＥＸＡＭＰＬＥ.com",
        ];
        for f in forms {
            assert_eq!(EmailAddress::parse(f).unwrap().canonical(), "alice@example.com", "{f:?}");
        }
    }

    #[test]
    fn mail_goes_to_the_address_as_entered() {
        let e = EmailAddress::parse(" Alice@Example.com").unwrap();
        assert_eq!(e.as_entered(), "Alice@Example.com");
    }

    #[test]
    fn unicode_domains_are_stored_as_punycode() {
        let e = EmailAddress::parse("jo@bücher.de").unwrap();
        assert_eq!(e.canonical(), "jo@xn--bcher-kva.de");
    }

    #[test]
    fn header_injection_and_malformed_addresses_are_refused() {
        for bad in [
            "a@b.com\r\nBcc: x@y.com",
            "a\n@b.com",
            "a@@b.com",
            "a@b@c.com",
            "no-at-sign",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "<a>@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@exa_mple.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn length_limits_hold() {
        let local = "a".repeat(65);
        assert_eq!(EmailAddress::parse(&format!("{local}@example.com")).unwrap_err().code, "email_too_long");
        let long_domain = format!("{}.com", ["abcdefghij"; 25].join("."));
        assert!(EmailAddress::parse(&format!("a@{long_domain}")).is_err());
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
    }
}
