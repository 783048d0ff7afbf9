//! Phone numbers, held in E.164 (`+16502530000`): how dialogportal and FastTrack store them.

use crate::error::FieldError;

/// A valid phone number, in E.164. Only `parse` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

/// The field code of a number that is not one.
pub const INVALID_PHONE: &str = "invalid_phone";

impl Phone {
    /// A number in any common international spelling (`+1 (650) 253-0000`); a national number
    /// without its country code is not one.
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        phonenumber::parse(None, input.trim())
            .ok()
            .filter(phonenumber::is_valid)
            .map(|n| Self(n.format().mode(phonenumber::Mode::E164).to_string()))
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    INVALID_PHONE,
                    "must be a phone number in international form, like +31 20 123 4567",
                )
            })
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

    fn e164(input: &str) -> Option<String> {
        Phone::parse("phone", input).ok().map(Phone::into_string)
    }

    #[test]
    fn phones_of_one_number_are_one_e164() {
        assert_eq!(e164("+1 (650) 253-0000").as_deref(), Some("+16502530000"));
        assert_eq!(e164("+16502530000").as_deref(), Some("+16502530000"));
        assert_eq!(e164("+31 20 123 4567").as_deref(), Some("+31201234567"));
        assert_eq!(e164("650 253 0000"), None, "national numbers need a country");
        assert_eq!(e164("+1 555"), None);
        assert_eq!(e164("call me"), None);
        assert_eq!(Phone::parse("mobile", "call me").unwrap_err().code, INVALID_PHONE);
    }
}
