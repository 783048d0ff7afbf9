//! Phone numbers, in E.164 (`+16502530000`): how dialogportal and FastTrack store them.

/// A phone number in E.164, from any common international spelling.
pub fn e164(input: &str) -> Option<String> {
    let number = phonenumber::parse(None, input.trim()).ok()?;
    phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_of_one_number_are_one_e164() {
        assert_eq!(e164("+1 (650) 253-0000").as_deref(), Some("+16502530000"));
        assert_eq!(e164("+16502530000").as_deref(), Some("+16502530000"));
        assert_eq!(e164("+31 20 123 4567").as_deref(), Some("+31201234567"));
        assert_eq!(e164("650 253 0000"), None, "national numbers need a country");
        assert_eq!(e164("+1 555"), None);
        assert_eq!(e164("call me"), None);
    }
}
