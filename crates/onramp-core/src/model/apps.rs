//! Apps and instance settings: API keys, open registration, contracts and their accounts.

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserServiceSettings {
    /// `POST /api/v2/user/register` is refused unless this is on.
    pub open_registration: bool,
    /// The role self-registered users get.
    pub open_reg_role: Option<String>,
    /// The mail service that sends the confirmation (`default` = `[mail]`); none: no
    /// confirmation, the password is required at registration.
    pub open_reg_email_service: Option<String>,
    /// The confirmation mail's template (a built-in default when none).
    pub open_reg_email_template: Option<String>,
    /// Registration without an application API key.
    pub allow_keyless: bool,
    /// The language of mail when the reader's own is not shipped (`en-gb` → `en` → this).
    pub default_language: Option<String>,
}

/// Where an API key came from: the configuration file (synced at start) or the CLI.
pub mod api_key_source {
    pub const CONFIG: &str = "config";
    pub const CLI: &str = "cli";
}

/// An application API key to store: only its SHA-256 and a short prefix to recognise it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: String,
    pub app_id: String,
    pub secret_hash: String,
    pub prefix: String,
    pub label: String,
    pub source: &'static str,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub app_id: String,
    pub secret_hash: String,
    pub prefix: String,
    pub label: String,
    pub source: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A self-registration (DreamFactory open registration): the user, and when confirmation is
/// on, the confirmation secret and its mail; committed together.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub user: NewUser,
    pub profile: UserProfile,
    pub role: Option<String>,
    /// The confirmation secret, when the user must confirm.
    pub verification: Option<NewVerification>,
    /// The mail that goes with the registration (a confirmation or a welcome).
    pub message: Option<NewOutboxMessage>,
    /// As `NewSignup::replace_pending_issued_before`.
    pub replace_pending_issued_before: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// Written when a user is created or replaced (`user.signed_up`).
    pub audit: NewAuditEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    Created {
        user_key: i64,
    },
    /// A pending registration of the address was replaced; its secrets, password and
    /// sessions are void.
    ReplacedPending {
        user_key: i64,
    },
    /// The address belongs to an active or disabled user; nothing was written.
    Exists {
        email: String,
        name: String,
    },
    /// A pending registration was mailed moments ago; nothing was written.
    PendingRecently,
}

/// Redeem an emailed code for a user named by email, setting a new password (DreamFactory's
/// `POST /api/v2/user/password`).
#[derive(Debug, Clone)]
pub struct CodeRedemption {
    pub email_canonical: String,
    pub purposes: Vec<Purpose>,
    pub secret_hash: String,
    pub new_password_hash: String,
    pub now: OffsetDateTime,
    /// Wrong codes a user's live codes survive; then they are void.
    pub max_attempts: u32,
    /// Written when a code is redeemed, its type that of the code's purpose
    /// (`audit::redeemed`), its user filled in.
    pub audit: NewAuditEvent,
}

/// The type of a dialogportal contract field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Email,
    Phone,
    Password,
    Date,
    Bool,
    Int,
}

/// One field of a contract: what a caller must send, and how it is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractField {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// No two accounts of the instance share a value; a match means "the account exists".
    #[serde(default)]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// A regular expression the whole value must match (strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `sms`: the account stays pending until the phone proves itself with a texted code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
}

/// A named, ordered set of fields agreed between an app and onramp (dialogportal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub id: String,
    pub fields: Vec<ContractField>,
}

/// Per-app settings of the contract surface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSettings {
    pub default_contract: Option<String>,
    /// Assign an external key of this type to every account the app creates.
    pub ext_key_type: Option<i64>,
    /// Web origins whose pages may call the instance from a browser (CORS), besides the
    /// origin of the app's `signup_url`.
    pub allowed_origins: Vec<String>,
    /// Those origins may also call the server-to-server surfaces (partner signup, contracts).
    pub browser_partner_calls: bool,
    /// Apps of the instance whose contract accounts this app may read too (its own it always may).
    pub reads_accounts_of: Vec<String>,
}

/// A contract account to create, with what makes it unique; one transaction.
#[derive(Debug, Clone)]
pub struct NewContractAccount {
    pub user: NewUser,
    /// The app creating it: the account's owner.
    pub app_id: String,
    /// The contract fields as stored (JSON object), never the password.
    pub profile: String,
    pub phone: Option<String>,
    /// `(field, normalised value)` pairs no other account may hold.
    pub unique: Vec<(String, String)>,
    pub ext_key: Option<(i64, String)>,
    /// The SMS code and its message, when the phone must be verified.
    pub sms: Option<(NewVerification, NewOutboxMessage)>,
    pub created_at: OffsetDateTime,
    /// Written when the account is created (`user.signed_up`).
    pub audit: NewAuditEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractOutcome {
    Created {
        dp_key: i64,
    },
    /// An account holds one of the unique values already.
    Exists {
        dp_key: i64,
        field: String,
        status: UserStatus,
    },
}

/// A contract account as "Get Account Data" shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractAccount {
    pub dp_key: i64,
    /// The app that created it (none: not a contract account, or made before owners were kept).
    pub app_id: Option<String>,
    pub uuid: String,
    pub status: UserStatus,
    pub profile: Option<String>,
    pub phone: Option<String>,
    pub language: String,
    pub ext_keys: Vec<(i64, String)>,
}

/// Why a texted code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsCodeError {
    /// No live code (none sent, used, or voided after too many tries).
    NoCode,
    Wrong,
    Expired,
}

/// What an app lets browsers do, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOrigins {
    pub app_id: String,
    pub signup_url: String,
    pub allowed_origins: Vec<String>,
    /// Browsers may also call the server-to-server surfaces on this app's behalf.
    pub browser_partner_calls: bool,
}
