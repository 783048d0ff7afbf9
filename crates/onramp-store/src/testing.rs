//! Throw-away PostgreSQL databases for tests: each test creates its own and drops it after.
//!
//! The server is found at `ONRAMP_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth, as on the project's machines).

use sqlx::Connection;
use sqlx::postgres::PgConnection;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists until this value is dropped.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

fn admin_url() -> String {
    std::env::var("ONRAMP_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into())
}

/// `url` with its database name replaced by `name` (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(base);
    format!("{server}/{name}{query}")
}

impl TestDatabase {
    /// Create a fresh, empty database. The error says how to start a server when none answers.
    pub async fn create() -> Result<Self, String> {
        let admin_url = admin_url();
        let mut conn = PgConnection::connect(&admin_url).await.map_err(|e| {
            format!(
                "PostgreSQL is needed for these tests and did not answer at {admin_url}: {e}.\n\
                 Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
                 (or point ONRAMP_TEST_DATABASE_URL at a server where this user may create databases)"
            )
        })?;
        let mut suffix = [0u8; 8];
        rand_suffix(&mut suffix);
        let name = format!("onramp_test_{}", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(Self { url: with_database(&admin_url, &name), admin_url, name })
    }
}

fn rand_suffix(out: &mut [u8]) {
    // Uniqueness, not secrecy: the process id, the time and a counter are enough.
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    #[allow(clippy::disallowed_methods)] // test database names only
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mixed =
        (u64::from(std::process::id()) << 40) ^ (nanos as u64) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (i, b) in out.iter_mut().enumerate() {
        *b = (mixed >> (8 * (i % 8))) as u8;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h/postgres", "x"), "postgres://u@h/x");
    }
}
