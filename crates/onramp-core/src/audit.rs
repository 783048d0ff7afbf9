//! The audit log's catalogue of events and how the use cases write them: every admin action and
//! every security event, in the same transaction as the change it records (a failed login,
//! which changes nothing, on its own). The README lists each type with what it carries.

use crate::model::{Actor, Instance, InstanceId, NewAuditEvent};
use time::OffsetDateTime;

/// The event types (stable).
pub mod kinds {
    // Admin actions.
    pub const ADMIN_TOKEN_CREATED: &str = "admin_token.created";
    pub const ADMIN_TOKEN_REVOKED: &str = "admin_token.revoked";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_ENABLED: &str = "user.enabled";
    pub const USER_DELETED: &str = "user.deleted";
    pub const USER_SESSIONS_REVOKED: &str = "user.sessions_revoked";
    pub const USER_VERIFICATION_RESENT: &str = "user.verification_resent";
    pub const USER_PASSWORD_RESET_REQUIRED: &str = "user.password_reset_required";
    pub const USER_IMPORTED: &str = "user.imported";
    pub const OUTBOX_RETRIED: &str = "outbox.retried";
    pub const INSTANCE_CREATED: &str = "instance.created";
    pub const INSTANCE_RETRIED: &str = "instance.retried";
    pub const INSTANCE_ENABLED: &str = "instance.enabled";
    pub const INSTANCE_DISABLED: &str = "instance.disabled";
    pub const INSTANCE_SETTINGS_CHANGED: &str = "instance.settings_changed";
    pub const INSTANCE_DELETED: &str = "instance.deleted";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const APP_ORIGINS_CHANGED: &str = "app.origins_changed";
    pub const CONTRACT_SAVED: &str = "contract.saved";
    pub const INVITATION_CREATED: &str = "invitation.created";
    pub const INVITATION_RESENT: &str = "invitation.resent";
    pub const INVITATION_REVOKED: &str = "invitation.revoked";
    // Security events.
    pub const USER_SIGNED_UP: &str = "user.signed_up";
    pub const USER_ACTIVATED: &str = "user.activated";
    pub const USER_CONFIRMED: &str = "user.confirmed";
    pub const INSTANCE_PROVISIONED: &str = "instance.provisioned";
    pub const USER_PASSWORD_RESET: &str = "user.password_reset";
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub const LOGIN_FAILED: &str = "login.failed";
    pub const LOGIN_LOCKED_OUT: &str = "login.locked_out";
    pub const SESSION_CREATED: &str = "session.created";
    pub const SESSION_REVOKED: &str = "session.revoked";
    pub const FAST_TRACK_PROVISIONED: &str = "fast_track.provisioned";
}

/// An event of `instance` about `user` (a public id), done by `actor` from `client`.
pub fn event(
    kind: &'static str,
    instance: InstanceId,
    actor: Actor,
    user: Option<&str>,
    client: Option<&str>,
    detail: serde_json::Value,
    at: OffsetDateTime,
) -> NewAuditEvent {
    NewAuditEvent {
        instance: Some(instance),
        kind,
        actor: actor.to_string(),
        target: user.map(str::to_owned),
        user: user.map(str::to_owned),
        client: client.map(str::to_owned),
        detail,
        at,
        publish: false,
    }
}

/// A user acting for themselves (a login, a signup, a logout).
pub fn by_user(
    kind: &'static str,
    instance: &Instance,
    user: &str,
    client: Option<&str>,
    at: OffsetDateTime,
) -> NewAuditEvent {
    event(kind, instance.id, Actor::User(user.to_owned()), Some(user), client, serde_json::json!({}), at)
}

/// Someone not signed in (a signup, an activation link, a code), about the user the store
/// creates or finds: the store fills in `user` and `target`.
pub fn pending_user(
    kind: &'static str,
    instance: &Instance,
    client: Option<&str>,
    at: OffsetDateTime,
) -> NewAuditEvent {
    event(kind, instance.id, Actor::Anonymous, None, client, serde_json::json!({}), at)
}

/// A new user of `surface` (and `app`, and on `/v1` its `account`): the store fills in the user.
pub fn signed_up(
    instance: &Instance,
    client: Option<&str>,
    at: OffsetDateTime,
    (surface, app, account): (&str, Option<&str>, Option<&str>),
) -> NewAuditEvent {
    let mut detail = serde_json::json!({ "surface": surface, "app_id": app });
    if let Some(account) = account {
        detail["account_id"] = account.into();
    }
    event(kinds::USER_SIGNED_UP, instance.id, Actor::Anonymous, None, client, detail, at)
}

/// The event type of a redeemed emailed code: a confirmation confirms, a reset resets.
pub fn redeemed(purpose: crate::model::Purpose) -> &'static str {
    match purpose {
        crate::model::Purpose::PasswordReset => kinds::USER_PASSWORD_RESET,
        crate::model::Purpose::EmailConfirm => kinds::USER_CONFIRMED,
        _ => kinds::USER_ACTIVATED,
    }
}
