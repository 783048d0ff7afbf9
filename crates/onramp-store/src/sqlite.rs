//! The embedded default store: SQLite in WAL mode. Writes go through a single connection, so
//! transactions never meet `SQLITE_BUSY` on upgrade and single-use checks are serialised; reads
//! use a small pool of their own. Each instance's own database is a file.

use crate::StoreOptions;
use crate::sql::{Dialect, SqlStore};
use crate::util::db_err;
use onramp_core::model::{ActivatedSignup, Instance, InstanceId, NewAuditEvent, NewSignup, RedeemError};
use onramp_core::ports::{StoreError, StoreResult};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub type SqliteStore = SqlStore<Sqlite>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqlStore<Sqlite> {
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad sqlite url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let file = connect.get_filename().to_path_buf();
        let parent = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        if !parent.as_os_str().is_empty() {
            crate::private_fs::create_dir_all(&parent)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", parent.display())))?;
        }
        if file.as_os_str() != ":memory:" {
            crate::private_fs::touch(&file)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", file.display())))?;
        }
        let home = options.instances_dir.clone().unwrap_or_else(|| parent.join("instances"));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(db_err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await
            .map_err(db_err)?;
        Ok(Self { writer, reader, home })
    }
}

impl Dialect for Sqlite {
    /// The directory of instance database files (`{name}.sqlite3`).
    type Home = PathBuf;
    const LOCK: &'static str = "";
    const SKIP_LOCKED: &'static str = "";

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn migrate(pool: &sqlx::SqlitePool) -> StoreResult<()> {
        MIGRATOR.run(pool).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    async fn create_instance_database(
        store: &SqliteStore,
        instance: &Instance,
        init_sql: Option<&str>,
    ) -> StoreResult<String> {
        let path = instance_file(store, instance);
        crate::private_fs::create_dir_all(&store.home)
            .map_err(|e| StoreError::Other(format!("creating {}: {e}", store.home.display())))?;
        remove_database_file(&path).await?;
        crate::private_fs::touch(&path)
            .map_err(|e| StoreError::Other(format!("creating {}: {e}", path.display())))?;
        let created = async {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect_with(
                &SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true),
            )
            .await
            .map_err(db_err)?;
            let mut tx = conn.begin().await.map_err(db_err)?;
            // Written even without init SQL, so the file is a database from the start.
            sqlx::query("PRAGMA user_version = 1").execute(&mut *tx).await.map_err(db_err)?;
            if let Some(sql) = init_sql {
                sqlx::Executor::execute(&mut *tx, sql)
                    .await
                    .map_err(|e| StoreError::Other(format!("the instance init SQL failed: {e}")))?;
            }
            tx.commit().await.map_err(db_err)?;
            conn.close().await.map_err(db_err)
        }
        .await;
        if let Err(e) = created {
            remove_database_file(&path).await?;
            return Err(e);
        }
        Ok(format!("sqlite:{}", path.display()))
    }

    async fn drop_instance_database(store: &SqliteStore, instance: &Instance) -> StoreResult<()> {
        remove_database_file(&instance_file(store, instance)).await
    }

    /// SQLite has no data-modifying CTEs; in-process, its transactions cost no round trips.
    async fn insert_new_signup(_: &sqlx::SqlitePool, _: InstanceId, _: &NewSignup) -> StoreResult<bool> {
        Ok(false)
    }

    async fn activate_signup_at_once(
        _: &sqlx::SqlitePool,
        _: InstanceId,
        _: &str,
        _: i64,
        _: &NewAuditEvent,
    ) -> StoreResult<Option<Result<ActivatedSignup, RedeemError>>> {
        Ok(None)
    }
}

fn instance_file(store: &SqliteStore, instance: &Instance) -> PathBuf {
    store.home.join(format!("{}.sqlite3", instance.name))
}

/// Remove a SQLite database file and its WAL companions, if present.
async fn remove_database_file(path: &Path) -> StoreResult<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match tokio::fs::remove_file(&file).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Other(format!("removing {}: {e}", path.display()))),
        }
    }
    Ok(())
}
