//! onramp's `Store` port on sqlx. One module per database (`sqlite` now; `postgres` is the
//! sibling that issue 3 adds), each with its own migrations; nothing in here branches on the
//! database inside a query function.

use onramp_core::ports::{Store, StoreError};
use std::sync::Arc;

pub mod sqlite;
mod util;

/// Pool and timeout settings shared by the backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_connections: 8, acquire_timeout: std::time::Duration::from_secs(5) }
    }
}

/// Open the database named by `url` (`sqlite://path` or `sqlite::memory:`).
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(sqlite::SqliteStore::connect(url, options).await?));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Err(StoreError::Other(
            "PostgreSQL is not supported by this build yet; use a sqlite:// database_url".into(),
        ));
    }
    Err(StoreError::Other(format!(
        "database_url must start with sqlite:// (got {})",
        url.split(':').next().unwrap_or_default()
    )))
}
