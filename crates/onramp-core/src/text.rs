//! Free text that people type and that reaches mails and pages (names, titles, companies).

/// Characters no name needs: control characters (NUL included, which PostgreSQL cannot store)
/// and the bidirectional overrides and isolates that make a mail read differently from what
/// it says (U+202A-202E, U+2066-2069, and the marks U+200E, U+200F, U+061C).
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Does `s` hold a character no name may?
pub fn has_forbidden(s: &str) -> bool {
    s.chars().any(is_forbidden)
}

/// The message of the `invalid_characters` field error.
pub const FORBIDDEN_MESSAGE: &str = "must not contain control or text-direction characters";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_direction_changes_are_forbidden() {
        for s in ["a\0b", "a\nb", "a\u{7f}", "evil\u{202E}gpj.exe", "\u{2066}x\u{2069}", "a\u{200F}"] {
            assert!(has_forbidden(s), "{s:?}");
        }
        for s in ["José Müller", "李小龙", "محمد", "O'Brien-Smith", "a\u{200D}b"] {
            assert!(!has_forbidden(s), "{s:?}");
        }
    }
}
