//! The embedded default store: SQLite in WAL mode. Writes go through a single connection, so
//! transactions never meet `SQLITE_BUSY` on upgrade and single-use checks are serialised; reads
//! use a small pool of their own. Each instance's own database is a file.

use crate::StoreOptions;
use crate::sql::{Dialect, SqlStore, activation_outcome};
use crate::util::db_err;
use onramp_core::model::{
    ActivatedSignup, Instance, InstanceId, NewAuditEvent, NewSignup, Purpose, RedeemError,
};
use onramp_core::ports::{StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Row, Sqlite};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;

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
        // The writer checkpoints the WAL every 10,000 pages (about 40 MiB) instead of SQLite's
        // 1,000: at 1,000 a busy writer stopped for a checkpoint several times a second (activation
        // p99 17 ms against 3.5 ms), and fewer checkpoints copy each hot page fewer times.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone().pragma("wal_autocheckpoint", "10000"))
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

    /// SQLite has no data-modifying CTEs; a signup waits for its hash far longer than for its
    /// transaction's round trips to the connection's thread.
    async fn insert_new_signup(_: &sqlx::SqlitePool, _: InstanceId, _: &NewSignup) -> StoreResult<bool> {
        Ok(false)
    }

    /// One round trip to the connection's thread instead of six (see [`ACTIVATION_BATCH`]). On
    /// this VM each round trip is two thread wake-ups on the single writer's critical path.
    async fn activate_signup_at_once(
        pool: &sqlx::SqlitePool,
        instance: InstanceId,
        secret_hash: &str,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Result<ActivatedSignup, RedeemError>> {
        let mut writer = pool.acquire().await.map_err(db_err)?;
        // `fetch_all`, not `fetch_optional`: every statement of the batch must run.
        let rows = sqlx::query(&ACTIVATION_BATCH)
            .bind(now)
            .bind(instance.0)
            .bind(Purpose::Activation.as_str())
            .bind(secret_hash)
            .bind(audit.kind)
            .bind(&audit.actor)
            .bind(audit.client.as_deref())
            .bind(audit.detail.to_string())
            .bind(audit.publish.then_some(1i64))
            .fetch_all(&mut *writer)
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                // A statement failed inside the batch: its transaction is still open.
                if sqlx::query("ROLLBACK").execute(&mut *writer).await.is_err() {
                    writer.detach();
                }
                return Err(db_err(e));
            }
        };
        let Some(v) = rows.first() else { return Ok(Err(RedeemError::NotFound)) };
        Ok(activation_outcome(v.get(0), v.get(1), v.get(2), now, || ActivatedSignup {
            account_id: v.get(3),
            user_id: v.get(4),
            domain_id: v.get(5),
            version_id: v.get(6),
        }))
    }
}

/// An activation as one batch that is its own transaction. Its first statement reads the secret
/// as it was, which decides the answer; every write after it applies only while the secret is
/// live, and the secret is used last, so every write sees it live or none does. Holding the only
/// writer connection is holding the write lock (every other connection is read-only), so
/// nothing else changes between the statements.
static ACTIVATION_BATCH: LazyLock<String> = LazyLock::new(|| {
    const SECRET: &str = "instance_id = $2 AND purpose = $3 AND secret_hash = $4";
    const LIVE: &str = "consumed_at IS NULL AND voided_at IS NULL AND expires_at > $1";
    format!(
        "BEGIN IMMEDIATE;
         SELECT v.expires_at, v.consumed_at, v.voided_at, a.public_id, u.public_id, a.domain_id, a.version_id
         FROM verifications v JOIN users u ON u.id = v.user_id JOIN accounts a ON a.id = u.account_id
         WHERE v.{SECRET};
         INSERT INTO audit_log (instance_id, type, actor, target, user_id, client, detail, created_at, publish)
         SELECT $2, $5, $6, u.public_id, u.public_id, $7, $8, $1, $9
         FROM verifications v JOIN users u ON u.id = v.user_id WHERE v.{SECRET} AND v.{LIVE};
         UPDATE users SET status = 'active', activated_at = $1
         WHERE id = (SELECT user_id FROM verifications WHERE {SECRET} AND {LIVE}) AND status = 'pending';
         UPDATE verifications SET voided_at = $1
         WHERE user_id = (SELECT user_id FROM verifications WHERE {SECRET} AND {LIVE})
           AND purpose = $3 AND secret_hash <> $4 AND consumed_at IS NULL AND voided_at IS NULL;
         UPDATE verifications SET consumed_at = $1 WHERE {SECRET} AND {LIVE};
         COMMIT;"
    )
});

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
