//! Conversions shared by the backends.

use onramp_core::ports::StoreError;
use time::OffsetDateTime;

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Map a sqlx error to the port's error; unique violations are named by the column they guard.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            let what = format!("{} {}", d.message(), d.constraint().unwrap_or_default());
            if what.contains("username") {
                StoreError::Unique("username")
            } else if what.contains("email") {
                StoreError::Unique("email")
            } else {
                StoreError::Unique("other")
            }
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
