//! Users, their accounts and secrets, sessions, signing keys and the outbox.

use super::*;

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
    /// Erased by the operator: no personal data is left, only this tombstone (for the audit
    /// log's references). It never logs in and its address is free again.
    Deleted,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Unconfirmed => "unconfirmed",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "unconfirmed" => Some(Self::Unconfirmed),
            "deleted" => Some(Self::Deleted),
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
    /// A JSON object to keep with the user (what the before-signup hook or an import handed
    /// over), or none.
    pub metadata: Option<serde_json::Value>,
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
    /// Written when a user is created or replaced (`user.signed_up`).
    pub audit: NewAuditEvent,
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
