//! Conversions shared by the backends.

use onramp_core::ports::{StoreError, UniqueKey};
use time::OffsetDateTime;

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// A user's metadata as the `metadata` column keeps it (JSON text), or NULL.
pub(crate) fn metadata_text(metadata: &Option<serde_json::Value>) -> Option<String> {
    metadata.as_ref().map(serde_json::Value::to_string)
}

pub(crate) fn from_ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The unique indexes whose violation a use case answers on: PostgreSQL names the index,
/// SQLite the columns (`UNIQUE constraint failed: users.instance_id, users.email_canonical`).
const UNIQUE_KEYS: [(&str, &str, UniqueKey); 3] = [
    ("instances_name_key", "instances.name", UniqueKey::InstanceName),
    ("users_email_canonical", "users.email_canonical", UniqueKey::Email),
    ("users_username_canonical", "users.username_canonical", UniqueKey::Username),
];

fn unique_key(constraint: Option<&str>, message: &str) -> UniqueKey {
    UNIQUE_KEYS
        .iter()
        .find(|(index, columns, _)| constraint == Some(*index) || message.ends_with(columns))
        .map(|(_, _, key)| *key)
        .unwrap_or(UniqueKey::Other)
}

/// Map a sqlx error to the port's error; a unique violation names the rule it broke.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Unique(unique_key(d.constraint(), d.message()))
        }
        // PostgreSQL going away: connection exceptions (08), insufficient resources (53),
        // operator intervention (57: shutdown, restart, statement timeout).
        sqlx::Error::Database(d)
            if d.code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("53") || c.starts_with("57")) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

/// Row-to-model mappings used by several queries, each for the columns it names (in this order).
/// Macros, so they read any database's row without restating sqlx's generic bounds.
macro_rules! app_from {
    ($r:expr, $at:expr) => {
        onramp_core::model::App {
            id: $r.get($at),
            name: $r.get($at + 1),
            signup_url: $r.get($at + 2),
            activation_token_in_response: $r.get($at + 3),
            schema_version: $r.get($at + 4),
        }
    };
}

/// Columns: id, title, description, help, allow_signup.
macro_rules! domain_from {
    ($r:expr, $at:expr) => {
        onramp_core::model::Domain {
            id: $r.get($at),
            title: $r.get($at + 1),
            description: $r.get($at + 2),
            help: $r.get($at + 3),
            allow_signup: $r.get($at + 4),
        }
    };
}

/// Columns: id, user_id, user_public_id, issued_at, expires_at, revoked_at.
macro_rules! session_from {
    ($r:expr) => {
        onramp_core::model::SessionRecord {
            id: $r.get(0),
            user_key: $r.get(1),
            user_public_id: $r.get(2),
            issued_at: $crate::util::from_ts($r.get(3)),
            expires_at: $crate::util::from_ts($r.get(4)),
            revoked_at: $r.get::<Option<i64>, _>(5).map($crate::util::from_ts),
        }
    };
}

/// Columns: id, instance_id, kind, recipient, message_id, payload, attempts.
macro_rules! outbox_from {
    ($r:expr) => {
        onramp_core::model::OutboxMessage {
            id: $r.get(0),
            instance_id: onramp_core::model::InstanceId($r.get(1)),
            kind: $r.get(2),
            recipient: $r.get(3),
            message_id: $r.get(4),
            sealed_payload: $r.get::<Option<Vec<u8>>, _>(5).unwrap_or_default(),
            attempts: u32::try_from($r.get::<i64, _>(6)).unwrap_or(0),
        }
    };
}

/// Columns: `shared::SUMMARY_COLUMNS`.
macro_rules! summary_from {
    ($r:expr) => {
        onramp_core::model::InstanceSummary {
            name: $r.get(0),
            status: onramp_core::model::InstanceStatus::parse(&$r.get::<String, _>(1)),
            created_at: $crate::util::from_ts($r.get(2)),
            apps: $r.get(3),
            users: $r.get(4),
            id: onramp_core::model::InstanceId($r.get(5)),
            status_detail: $r.get(6),
            owner_email: $r.get(7),
            database: $r.get(8),
        }
    };
}

pub(crate) use {app_from, domain_from, outbox_from, session_from, summary_from};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_are_named_by_their_index_or_columns() {
        // PostgreSQL names the index; SQLite names the columns in its message.
        assert_eq!(unique_key(Some("users_email_canonical"), "duplicate key value"), UniqueKey::Email);
        assert_eq!(unique_key(Some("instances_name_key"), "duplicate key value"), UniqueKey::InstanceName);
        let sqlite = |columns: &str| unique_key(None, &format!("UNIQUE constraint failed: {columns}"));
        assert_eq!(sqlite("users.instance_id, users.email_canonical"), UniqueKey::Email);
        assert_eq!(sqlite("users.instance_id, users.username_canonical"), UniqueKey::Username);
        assert_eq!(sqlite("instances.name"), UniqueKey::InstanceName);
        // A word in a message is not a key: a contract's unique `email` field is another rule.
        assert_eq!(
            sqlite("unique_values.instance_id, unique_values.field, unique_values.value"),
            UniqueKey::Other
        );
        assert_eq!(unique_key(Some("users_public_id"), "email"), UniqueKey::Other);
    }
}
