//! The control plane's records: admin tokens, users as an operator sees them, the audit log.

use super::*;

/// What an admin token may reach: every instance or one, and whether it may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminScope {
    /// `None`: every instance (and what belongs to none: tokens, the whole outbox).
    pub instance: Option<InstanceId>,
    pub read_only: bool,
}

/// A new admin token, as stored (the token itself is shown once, never stored).
#[derive(Debug, Clone)]
pub struct NewAdminToken {
    pub id: String,
    pub secret_hash: String,
    pub prefix: String,
    pub label: String,
    pub scope: AdminScope,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    pub id: String,
    pub secret_hash: String,
    pub prefix: String,
    pub label: String,
    pub scope: AdminScope,
    /// The instance it is scoped to, by name.
    pub instance_name: Option<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Who did something, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin API call, by the token's id.
    Admin(String),
    /// `onramp …` on the host.
    Cli,
    /// A signed-in or signing-up user, by public id.
    User(String),
    /// Someone not (yet) known: a failed login, a signup.
    Anonymous,
    /// onramp itself (retention, FastTrack's release of unconfirmed owners).
    System,
    /// An app, by its API key (an invitation it sent).
    App(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Admin(id) => write!(f, "admin:{id}"),
            Self::Cli => f.write_str("cli"),
            Self::User(id) => write!(f, "user:{id}"),
            Self::Anonymous => f.write_str("anonymous"),
            Self::System => f.write_str("system"),
            Self::App(id) => write!(f, "app:{id}"),
        }
    }
}

/// One entry of the audit log, to write with the change it records.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub instance: Option<InstanceId>,
    /// `user.disabled`, `login.failed`, … (the catalogue is `crate::audit::kinds`).
    pub kind: &'static str,
    pub actor: String,
    pub target: Option<String>,
    /// The user it is about, by public id.
    pub user: Option<String>,
    pub client: Option<String>,
    /// A JSON object; never a secret.
    pub detail: serde_json::Value,
    pub at: OffsetDateTime,
    /// A webhook endpoint wants it as a lifecycle event (`crate::events`): the store marks it
    /// to be published.
    pub publish: bool,
}

/// An audit entry marked to be published, with the user it is about as they are now.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpublishedEvent {
    pub id: i64,
    /// The instance, by id and name.
    pub instance: Option<(InstanceId, String)>,
    pub kind: String,
    /// The user's public id, as the entry recorded it.
    pub user_id: Option<String>,
    /// The user, when they still exist.
    pub user: Option<EventUser>,
    pub detail: serde_json::Value,
    pub at: OffsetDateTime,
}

/// What a lifecycle event says of its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventUser {
    pub public_id: String,
    pub uuid: String,
    pub email: String,
    pub username: Option<String>,
    pub name: String,
    pub status: String,
    pub app_id: Option<String>,
    pub language: String,
}

/// An entry of the audit log as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub instance: Option<String>,
    pub kind: String,
    pub actor: String,
    pub target: Option<String>,
    pub user_id: Option<String>,
    pub client: Option<String>,
    pub detail: serde_json::Value,
    pub at: OffsetDateTime,
}

/// Which audit entries to read: newest first, before `before` (a cursor).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub instance: Option<InstanceId>,
    pub user: Option<String>,
    pub kind: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// Which users to read: newest first, before `before` (a cursor). Every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// A whole canonical address, or the start of one.
    pub email: Option<EmailMatch>,
    pub username_canonical: Option<String>,
    pub phone: Option<String>,
    pub status: Option<UserStatus>,
    pub before: Option<i64>,
    pub limit: u32,
    /// Which sessions are live.
    pub now: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailMatch {
    Exact(String),
    Prefix(String),
}

/// A user as the operator sees them: everything but secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub key: i64,
    pub public_id: String,
    pub uuid: String,
    pub email: String,
    pub username: Option<String>,
    pub name: String,
    pub language: String,
    pub status: UserStatus,
    pub profile: UserProfile,
    /// The app that created it (contract accounts), or the one its account signed up to.
    pub app_id: Option<String>,
    pub account_id: Option<String>,
    pub roles: Vec<String>,
    /// Contract fields (JSON), when it is a contract account.
    pub fields: Option<String>,
    pub created_at: OffsetDateTime,
    pub activated_at: Option<OffsetDateTime>,
    /// Live sessions.
    pub sessions: i64,
    /// Kept from an import (a JSON object).
    pub metadata: Option<String>,
    /// Whether the stored hash is one onramp can verify (an erased or reset-required user has
    /// none).
    pub has_password: bool,
}

/// A page of a listing: its rows and the cursor of the next page, when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// A page of at most `limit` from `rows`, fetched with one more than `limit` to know
    /// whether a next page exists; `key` gives a row's cursor.
    pub fn of(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> i64) -> Self {
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(&key)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// An outbox message as the operator sees it (no payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub instance: String,
    pub kind: String,
    pub recipient: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    /// `pending` or `dead` (or `delivered`).
    pub status: Option<String>,
    pub instance: Option<InstanceId>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// A fresh secret for a user (an admin's resend or required reset), written with its message
/// and audit entry.
#[derive(Debug, Clone)]
pub struct Reissue {
    pub verification: NewVerification,
    pub message: NewOutboxMessage,
    /// Also make the password unusable and revoke every session (a required reset).
    pub clear_password: bool,
    pub audit: NewAuditEvent,
}

/// The stored password of a user who has none that works (a required reset, an erased user):
/// no hash format starts with `!`, so nothing verifies against it.
pub const NO_PASSWORD: &str = "!";

/// An imported user, checked, for the store.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub user: NewUser,
    pub profile: UserProfile,
    /// A JSON object.
    pub metadata: Option<String>,
}

/// What the store made of one imported user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created,
    /// The address is a user of the instance already.
    Duplicate,
    /// The username is another user's.
    UsernameTaken,
}
