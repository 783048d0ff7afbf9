//! Errors of the core, each with a stable machine code.
//!
//! Policy (STYLE.md rule 5): the core and the store return these `thiserror` enums; no sqlx,
//! axum or lettre type appears in them. Each HTTP surface has one function that maps a
//! `CoreError` to its own status and body. `Internal` and `Unavailable` details go to the log,
//! never to a client. `anyhow` is used only in `main`, the CLI and worker loops.

use crate::ports::StoreError;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, message: &str) -> Self {
        Self { field: field.to_owned(), code, message: message.to_owned() }
    }

    /// The same error reported under another field name (surfaces name fields differently).
    pub fn renamed(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The input was understood but some fields are invalid; nothing was changed.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("no such instance")]
    InstanceNotFound,
    #[error("no such app")]
    AppNotFound,
    #[error("no such contract")]
    ContractNotFound,
    #[error("no such account")]
    AccountNotFound,
    #[error("the username is taken")]
    UsernameTaken,
    /// The instance does not take self-registrations.
    #[error("open registration is not enabled")]
    OpenRegistrationDisabled,
    /// The email belongs to a user already (where the surface must say so).
    #[error("the email is taken")]
    EmailTaken,
    #[error("no instance name is free")]
    InstanceNameUnavailable,
    /// A provisioning step failed and was undone (or left for `onramp instance retry`).
    #[error("provisioning failed")]
    ProvisioningFailed,
    #[error("the token is not known")]
    TokenNotFound,
    #[error("the token has expired")]
    TokenExpired,
    #[error("the token was already used")]
    TokenUsed,
    #[error("wrong identifier or password")]
    InvalidCredentials,
    #[error("the account is not activated yet")]
    NotActivated,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the session is not valid")]
    SessionInvalid,
    /// No admin token, or not a live one.
    #[error("admin authentication required")]
    AdminUnauthorized,
    /// The admin token does not reach this instance, or may not change anything.
    #[error("outside the admin token's scope")]
    AdminForbidden,
    #[error("no such user")]
    UserNotFound,
    /// Another thing the operator named does not exist (an admin token, an outbox message).
    #[error("{message}")]
    NotFound { code: &'static str, message: &'static str },
    /// The thing exists but is not in a state that allows this (e.g. resending the
    /// verification of an active user); the message says why.
    #[error("not possible now: {0}")]
    WrongState(&'static str),
    /// Signup is by invitation only, and the address holds no live invitation.
    #[error("signup is by invitation only")]
    InvitationRequired,
    /// The operator's before-signup hook refused the signup, with its own code and message.
    #[error("signup denied by the before-signup hook: {code}")]
    SignupDenied { code: String, message: String },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// Password hashing is saturated; the caller should retry shortly.
    #[error("the service is busy")]
    Busy { retry_after_secs: u64 },
    /// The database cannot be reached.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// When to try again, in seconds, for the errors that pass: a rate limit or a full hash
    /// pool says when; an unreachable database, in a few seconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } | Self::Busy { retry_after_secs } => {
                Some(*retry_after_secs)
            }
            Self::Unavailable(_) => Some(5),
            _ => None,
        }
    }

    /// The stable machine code, the same in every surface that shows one.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::InstanceNotFound => "instance_not_found",
            Self::AppNotFound => "app_not_found",
            Self::ContractNotFound => "contract_not_found",
            Self::AccountNotFound => "account_not_found",
            Self::UsernameTaken => "username_taken",
            Self::EmailTaken => "email_taken",
            Self::OpenRegistrationDisabled => "open_registration_disabled",
            Self::InstanceNameUnavailable => "instance_name_unavailable",
            Self::ProvisioningFailed => "provisioning_failed",
            Self::TokenNotFound => "token_not_found",
            Self::TokenExpired => "token_expired",
            Self::TokenUsed => "token_already_used",
            Self::InvalidCredentials => "invalid_credentials",
            Self::NotActivated => "account_not_activated",
            Self::AccountDisabled => "account_disabled",
            Self::SessionInvalid => "session_invalid",
            Self::AdminUnauthorized => "unauthorized",
            Self::AdminForbidden => "forbidden",
            Self::UserNotFound => "user_not_found",
            Self::NotFound { code, .. } => code,
            Self::WrongState(_) => "wrong_state",
            Self::SignupDenied { .. } => "signup_denied",
            Self::InvitationRequired => "invitation_required",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy { .. } => "service_busy",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// A message safe to show to a client (never the internal detail).
    pub fn public_message(&self) -> String {
        match self {
            Self::Validation(_) => "Some fields are invalid.".into(),
            Self::InstanceNotFound => "No such instance.".into(),
            Self::AppNotFound => "No such app.".into(),
            Self::ContractNotFound => "No such contract.".into(),
            Self::AccountNotFound => "No such account.".into(),
            Self::UsernameTaken => "That username is taken.".into(),
            Self::OpenRegistrationDisabled => "Open Registration is not enabled.".into(),
            Self::EmailTaken => "An account with that email address exists already; log in instead.".into(),
            Self::InstanceNameUnavailable => "No instance name is available for that email address.".into(),
            Self::ProvisioningFailed => {
                "The instance could not be set up and nothing was kept; try again later.".into()
            }
            Self::TokenNotFound => "The token is not valid.".into(),
            Self::TokenExpired => "The token has expired; sign up again for a new one.".into(),
            Self::TokenUsed => "The token was already used.".into(),
            Self::InvalidCredentials => "Wrong username, email or password.".into(),
            Self::NotActivated => "Activate the account from the email we sent before logging in.".into(),
            Self::AccountDisabled => "The account is disabled.".into(),
            Self::SessionInvalid => "The session is not valid; log in again.".into(),
            Self::AdminUnauthorized => "Send a live admin token: Authorization: Bearer <token>.".into(),
            Self::AdminForbidden => "The admin token may not do this.".into(),
            Self::UserNotFound => "No such user.".into(),
            Self::NotFound { message, .. } => (*message).into(),
            Self::WrongState(why) => (*why).into(),
            Self::SignupDenied { message, .. } => message.clone(),
            Self::InvitationRequired => {
                "Sign-up is by invitation only; ask for an invitation to this address.".into()
            }
            Self::RateLimited { .. } => "Too many requests; try again later.".into(),
            Self::Busy { .. } => "The service is busy; try again shortly.".into(),
            Self::Unavailable(_) => "The service is temporarily unavailable.".into(),
            Self::Internal(_) => "Internal error.".into(),
        }
    }

    pub fn field(field: &str, code: &'static str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::model::RedeemError> for CoreError {
    fn from(e: crate::model::RedeemError) -> Self {
        match e {
            crate::model::RedeemError::NotFound => Self::TokenNotFound,
            crate::model::RedeemError::Expired => Self::TokenExpired,
            crate::model::RedeemError::AlreadyUsed => Self::TokenUsed,
        }
    }
}
