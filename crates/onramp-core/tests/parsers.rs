//! Property tests of the parsers that see raw request input: whatever arrives, they answer
//! (no panic), and what they accept holds the invariants the rest of onramp relies on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use onramp_core::country::CountryCode;
use onramp_core::email::EmailAddress;
use onramp_core::instance_name;
use onramp_core::password::PasswordPolicy;
use onramp_core::username::{Username, username_key};
use proptest::prelude::*;

/// Strings biased towards what breaks parsers: separators, controls, invisibles, wide forms.
fn nasty() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("@".to_owned()),
        Just(".".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{200B}".to_owned()),
        Just("\u{202E}".to_owned()),
        Just("ａ".to_owned()),
        Just("xn--".to_owned()),
        Just(" ".to_owned()),
        "[a-z0-9]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn an_accepted_email_is_safe_and_its_canonical_form_is_stable(input in nasty()) {
        if let Ok(email) = EmailAddress::parse(&input) {
            for form in [email.as_entered(), email.canonical()] {
                prop_assert!(!form.chars().any(char::is_control), "{form:?}");
                prop_assert_eq!(form.matches('@').count(), 1);
                prop_assert!(form.len() <= 254);
            }
            let again = EmailAddress::parse(email.canonical()).expect("a canonical form parses");
            prop_assert_eq!(again.canonical(), email.canonical());
        }
    }

    #[test]
    fn arbitrary_text_never_panics_a_parser(input in any::<String>()) {
        let _ = EmailAddress::parse(&input);
        let _ = Username::parse(&input);
        let _ = username_key(&input);
        let _ = CountryCode::parse("country_id", &input);
        let _ = PasswordPolicy::default().check("password", &input, &[&input]);
        let _ = instance_name::base_from_local_part(&input);
    }

    #[test]
    fn an_accepted_username_holds_no_at_sign_and_keys_stably(input in nasty()) {
        if let Ok(u) = Username::parse(&input) {
            prop_assert!(!u.as_str().contains('@'));
            prop_assert_eq!(username_key(u.as_str()), u.canonical().to_owned());
        }
    }

    #[test]
    fn an_accepted_password_is_within_the_limits(input in any::<String>()) {
        let policy = PasswordPolicy::default();
        if let Ok(p) = policy.check("password", &input, &[]) {
            let n = p.expose().chars().count();
            prop_assert!(n >= policy.min_chars && n <= policy.max_chars);
        }
    }

    #[test]
    fn instance_names_from_any_local_part_are_valid_labels(input in nasty(), n in 0u32..50) {
        if let Ok(base) = instance_name::base_from_local_part(&input) {
            let name = instance_name::candidate(&base, n);
            prop_assert!(instance_name::is_valid(&name), "{name:?}");
            prop_assert!(!instance_name::is_reserved(&name));
        }
    }
}
