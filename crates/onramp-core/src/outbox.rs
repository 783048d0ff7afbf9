//! The messages onramp writes to the outbox, by the template that renders them. One list, so
//! the core, the delivery worker (which ships each mail in every language) and the
//! configuration check (which lets an operator replace a built-in message) agree on it.

use serde::{Deserialize, Serialize};

/// A built-in message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// `/v1` signup: the activation link (seed 004).
    SignupActivation,
    /// A signup with an address that has an account already: tells its owner.
    AccountExists,
    /// DreamFactory open registration: the confirmation code (seed 001).
    UserConfirmation,
    /// DreamFactory's and the hosted pages' reset code.
    PasswordReset,
    /// FastEditor partner signup: welcome (seed 002).
    Welcome,
    /// FastTrack: "was it you?" with the confirm and release links (seed 000).
    FastTrackConfirm,
    /// dialogportal: the texted code (seed 003).
    SmsVerification,
    /// An invitation: the link to the hosted page that creates the user.
    Invitation,
}

impl Template {
    /// Every built-in mail; each ships in every language.
    pub const MAILS: [Template; 7] = [
        Self::SignupActivation,
        Self::AccountExists,
        Self::UserConfirmation,
        Self::PasswordReset,
        Self::Welcome,
        Self::FastTrackConfirm,
        Self::Invitation,
    ];

    /// The names of `MAILS`, in order.
    pub const MAILS_NAMES: [&'static str; 7] = {
        let mut names = [""; 7];
        let mut i = 0;
        while i < Self::MAILS.len() {
            names[i] = Self::MAILS[i].name();
            i += 1;
        }
        names
    };

    /// The template's folder name (and the name an operator's template replaces it by).
    pub const fn name(self) -> &'static str {
        match self {
            Self::SignupActivation => "signup_activation",
            Self::AccountExists => "account_exists",
            Self::UserConfirmation => "user_confirmation",
            Self::PasswordReset => "password_reset",
            Self::Welcome => "welcome",
            Self::FastTrackConfirm => "fast_track_confirm",
            Self::SmsVerification => "sms_verification",
            Self::Invitation => "invitation",
        }
    }

    /// Is `name` a built-in mail?
    pub fn is_mail(name: &str) -> bool {
        Self::MAILS.iter().any(|t| t.name() == name)
    }
}

/// What an outbox message (a mail or a text) carries; sealed in the store, rendered by the
/// delivery worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxPayload {
    /// Template folder name, e.g. `signup_activation`.
    pub template: String,
    pub to: String,
    pub language: String,
    pub message_id: String,
    pub vars: serde_json::Value,
    /// The language to use when `language` is not shipped (the instance's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_language: Option<String>,
    /// The mail service to send through (`{instance}/{name}`); none: the global transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}
