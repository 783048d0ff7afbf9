//! onramp's storage ports on sqlx, for SQLite (the embedded default) and PostgreSQL (for
//! scale-out). The queries are written once (`queries/`, one file per aggregate) for
//! [`sql::SqlStore`]; each database's module supplies only what truly differs (`sql::Dialect`):
//! connecting, its migrations, the row-lock clause and where an instance's own database lives.

use onramp_core::ports::{Store, StoreError};
use std::sync::Arc;

pub mod postgres;
pub mod private_fs;
mod queries;
pub mod sql;
pub mod sqlite;
pub mod testing;
mod util;

/// Pool and timeout settings shared by the backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
    /// PostgreSQL only: statements running longer are cancelled.
    pub statement_timeout_ms: u64,
    /// SQLite only: where each instance's own database file goes (`{name}.sqlite3`); defaults
    /// to `instances/` beside the main database file.
    pub instances_dir: Option<std::path::PathBuf>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: std::time::Duration::from_secs(5),
            statement_timeout_ms: 10_000,
            instances_dir: None,
        }
    }
}

/// Open the database named by `url` (`sqlite://path` or `sqlite::memory:`).
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(sqlite::SqliteStore::connect(url, options).await?));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Ok(Arc::new(postgres::PostgresStore::connect(url, options).await?));
    }
    Err(StoreError::Other(format!(
        "database_url must start with sqlite:// or postgres:// (got {})",
        url.split(':').next().unwrap_or_default()
    )))
}
