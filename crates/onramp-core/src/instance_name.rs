//! Instance names: DNS labels, because an instance lives at `{name}.{base_domain}`. FastTrack
//! names a new instance from the email's local part (`joe@…` becomes `joe`), refuses reserved
//! names, and appends a suffix on collision (`joe`, `joe-2`, `joe-3`, …).

use crate::error::FieldError;

/// The longest DNS label.
pub const MAX_LEN: usize = 63;

/// Names an instance may never have: they would shadow onramp's own hosts or common services,
/// or lend a phishing page an official-looking address (`paypal`, `billing`, `security`).
/// Operators add their own for FastTrack with `fast_track.reserved_names`.
pub const RESERVED: &[&str] = &[
    "abuse",
    "account",
    "accounts",
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "cdn",
    "dashboard",
    "default",
    "dev",
    "docs",
    "ftp",
    "help",
    "hostmaster",
    "imap",
    "internal",
    "invoice",
    "invoices",
    "localhost",
    "login",
    "mail",
    "ns1",
    "ns2",
    "onramp",
    "pay",
    "payment",
    "payments",
    "paypal",
    "platform",
    "pop",
    "postmaster",
    "root",
    "secure",
    "security",
    "signup",
    "smtp",
    "static",
    "status",
    "support",
    "test",
    "verify",
    "webmaster",
    "www",
];

/// Is `name` a valid instance name (lower-case letters, digits and inner hyphens)?
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LEN
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// The base name for an email's local part: lower-cased, every run of characters other than
/// ASCII letters and digits turned into one `-`, trimmed, cut to leave room for a suffix.
pub fn base_from_local_part(local_part: &str) -> Result<String, FieldError> {
    let mut out = String::new();
    for c in local_part.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(MAX_LEN - 6).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    if trimmed.is_empty() {
        return Err(FieldError::new("email", "instance_name_unusable", "gives no usable instance name"));
    }
    Ok(trimmed)
}

/// The `n`th candidate (0-based) for a base: `joe`, `joe-2`, `joe-3`, … A reserved base starts
/// at its first suffix (`admin-2`), so reserved names are never taken but users still get in.
pub fn candidate(base: &str, n: u32) -> String {
    let first = if is_reserved(base) { 1 } else { 0 };
    match n + first {
        0 => base.to_owned(),
        k => format!("{base}-{}", k + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_example_keeps_its_name() {
        assert_eq!(base_from_local_part("joe").unwrap(), "joe");
    }

    #[test]
    fn local_parts_are_sanitised() {
        assert_eq!(base_from_local_part("Joe.Blow+test").unwrap(), "joe-blow-test");
        assert_eq!(base_from_local_part("__joe__").unwrap(), "joe");
        assert_eq!(base_from_local_part("jöe").unwrap(), "j-e");
        assert_eq!(base_from_local_part("a..b").unwrap(), "a-b");
        assert_eq!(base_from_local_part("+++").unwrap_err().code, "instance_name_unusable");
        let long = base_from_local_part(&"x".repeat(80)).unwrap();
        assert!(long.len() <= MAX_LEN - 6 && is_valid(&long));
    }

    #[test]
    fn collisions_get_suffixes() {
        assert_eq!(candidate("joe", 0), "joe");
        assert_eq!(candidate("joe", 1), "joe-2");
        assert_eq!(candidate("joe", 2), "joe-3");
    }

    #[test]
    fn reserved_names_are_never_candidates() {
        for r in RESERVED {
            assert_ne!(candidate(r, 0), *r);
            assert!(is_valid(&candidate(r, 0)));
        }
        assert_eq!(candidate("admin", 0), "admin-2");
    }

    #[test]
    fn validity_follows_dns_label_rules() {
        assert!(is_valid("joe-2"));
        for bad in ["", "-joe", "joe-", "Joe", "jo_e", &"x".repeat(64)] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }
}
