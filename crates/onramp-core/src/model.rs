//! The domain model (ARCHITECTURE.md §2): what the store keeps and the use cases pass around.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The database key of an instance; every store call takes one, so no query crosses instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: InstanceId,
    pub name: String,
}

/// The instance used when the request's host names none.
pub const DEFAULT_INSTANCE: &str = "default";

/// The built-in instance that holds platform (dashboard) users.
pub const PLATFORM_INSTANCE: &str = "platform";

/// An instance as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSummary {
    pub id: InstanceId,
    pub name: String,
    /// `active`, `disabled`, `provisioning` (being set up) or `provisioning_failed` (set up
    /// stopped part-way; `onramp instance retry` completes it).
    pub status: String,
    /// Why provisioning failed.
    pub status_detail: Option<String>,
    pub created_at: OffsetDateTime,
    pub apps: i64,
    pub users: i64,
    /// The platform user who owns it (FastTrack), by email.
    pub owner_email: Option<String>,
    /// Where the instance's own database is (a SQLite file or a PostgreSQL schema).
    pub database: Option<String>,
}

/// Instance states, as stored.
pub mod instance_status {
    pub const ACTIVE: &str = "active";
    pub const DISABLED: &str = "disabled";
    pub const PROVISIONING: &str = "provisioning";
    pub const PROVISIONING_FAILED: &str = "provisioning_failed";
}

/// How a new instance is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceNaming {
    /// Exactly this name, or `Unique(InstanceName)`.
    Exact(String),
    /// The first free candidate for this base (`joe`, `joe-2`, …; see `instance_name`) that
    /// is not one of `avoid` (the operator's reserved names).
    FirstFree { base: String, avoid: Vec<String> },
}

/// A role of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    pub description: String,
}

/// Everything a new instance starts with; written in one transaction, in state `provisioning`.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub naming: InstanceNaming,
    pub key: SigningKeyRecord,
    pub roles: Vec<RoleSpec>,
    /// Its default app.
    pub app: App,
    pub created_at: OffsetDateTime,
}

/// Who a user is beyond their login: the names and contact details a surface collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub company: Option<String>,
    pub phone: Option<String>,
}

/// FastTrack's writes (seed 000, steps 2, 3, 5 and 6), committed together or not at all: the
/// dashboard user in `platform`, the instance, its admin (with the same password hash) holding
/// `admin_role`, the admin's one-time login secret, and the dashboard user's claim secret (the
/// confirmation mail's links: "this was me" and "this was not me").
#[derive(Debug, Clone)]
pub struct NewFastTrack {
    pub instance: NewInstance,
    pub owner: NewUser,
    pub admin: NewUser,
    pub profile: UserProfile,
    pub admin_role: String,
    pub login: NewVerification,
    pub claim: NewVerification,
}

/// What a FastTrack's claim secret is about: the dashboard user and the instance it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastTrackClaim {
    pub owner_key: i64,
    pub email: String,
    /// The instance made with it (gone only if an operator deleted it).
    pub instance: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// What the owner of an address says about a FastTrack made with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimAnswer {
    /// "This was me": the dashboard user becomes `active`.
    Confirm,
    /// "This was not me": the address is released (see `Store::release_owner`).
    Release,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub instance: Instance,
    /// The dashboard user's key (FastTrack's `user.id`).
    pub owner_key: i64,
    pub admin_key: i64,
}

/// A user as pages and session endpoints show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub key: i64,
    pub public_id: String,
    pub email: String,
    pub name: String,
    pub status: UserStatus,
    pub profile: UserProfile,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Pending,
    Active,
    Inactive,
    /// A FastTrack dashboard user whose address is not proven yet: it may use what it made,
    /// but cannot reset its password, and is released when its owner says "this was not me"
    /// or when `fast_track.confirm_within_hours` pass.
    Unconfirmed,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Unconfirmed => "unconfirmed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "unconfirmed" => Some(Self::Unconfirmed),
            _ => None,
        }
    }
}

/// What a verification secret proves; a secret of one purpose never serves another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Activation,
    EmailConfirm,
    Sms,
    PasswordReset,
    FastTrackLogin,
    /// The links of FastTrack's confirmation mail.
    FastTrackClaim,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::EmailConfirm => "email_confirm",
            Self::Sms => "sms",
            Self::PasswordReset => "password_reset",
            Self::FastTrackLogin => "fast_track_login",
            Self::FastTrackClaim => "fast_track_claim",
        }
    }
}

/// A client application of an instance, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    /// Base of activation links.
    pub signup_url: String,
    /// Seed 004 returns the emailed token from `/v1/auth/signup`; `false` returns an opaque
    /// reference instead so only the mailbox owner can activate.
    pub activation_token_in_response: bool,
    /// `ver_…`: changes whenever the app's schema (its domains) changes.
    pub schema_version: String,
}

/// A signup domain of an app (seed 004).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub title: String,
    pub description: String,
    pub help: String,
    pub allow_signup: bool,
}

/// The row a new signup creates for the organisation.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub public_id: String,
    pub title: String,
    pub country: String,
    pub app_id: String,
    pub domain_id: String,
    pub version_id: String,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub public_id: String,
    pub uuid: uuid::Uuid,
    pub email: String,
    pub email_canonical: String,
    pub username: Option<String>,
    pub username_canonical: Option<String>,
    pub name: String,
    pub language: String,
    pub status: UserStatus,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewVerification {
    pub purpose: Purpose,
    pub secret_hash: String,
    pub expires_at: OffsetDateTime,
}

/// A message to deliver, written in the same transaction as the change that caused it. The
/// payload is sealed (it may carry a token or a generated password).
#[derive(Debug, Clone)]
pub struct NewOutboxMessage {
    pub kind: String,
    pub recipient: String,
    pub message_id: String,
    pub sealed_payload: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// All the writes of one `/v1/auth/signup`, committed together or not at all.
#[derive(Debug, Clone)]
pub struct NewSignup {
    pub account: NewAccount,
    pub user: NewUser,
    pub verification: NewVerification,
    pub message: NewOutboxMessage,
    /// A pending registration of the same email whose live activation secret was issued after
    /// this moment is left alone (and nothing is written): a burst of signups sends one mail.
    pub replace_pending_issued_before: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A new account and pending user exist now.
    Created,
    /// The email belonged to a user who never activated: that registration was replaced by
    /// this one and its earlier tokens are void.
    ReplacedPending,
    /// The email belongs to an activated (or disabled) user; nothing was written.
    EmailExists { email: String, name: String },
    /// The email belongs to a pending user who was sent an activation moments ago; nothing
    /// was written.
    PendingRecently,
}

/// What an activation returns (seed 004).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivatedSignup {
    pub account_id: String,
    pub user_id: String,
    pub domain_id: String,
    pub version_id: String,
}

/// Why a secret could not be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemError {
    NotFound,
    Expired,
    AlreadyUsed,
}

/// How a login names its user.
#[derive(Debug, Clone)]
pub enum LoginLookup {
    EmailCanonical(String),
    UsernameCanonical(String),
}

#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user_key: i64,
    pub public_id: String,
    pub status: UserStatus,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub user_key: i64,
    pub user_public_id: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// An instance's Ed25519 signing key (PKCS#8 DER). Kept in the database so every node signs
/// and verifies with the same keys.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub pkcs8_der: Vec<u8>,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// A message claimed by the outbox worker.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub instance_id: InstanceId,
    pub kind: String,
    pub recipient: String,
    pub message_id: String,
    pub sealed_payload: Vec<u8>,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxFailure {
    pub id: i64,
    pub kind: String,
    /// `pending` (will be retried) or `dead`.
    pub status: String,
    pub attempts: u32,
    pub last_error: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub dead: u64,
    pub sent: u64,
}

/// DreamFactory's "user service config" of an instance (seed 001).
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
