//! The embedded default store: SQLite in WAL mode. Writes go through a single connection, so
//! transactions never meet `SQLITE_BUSY` on upgrade and single-use checks are serialised; reads
//! use a small pool of their own.

use crate::StoreOptions;
use crate::shared::SUMMARY_COLUMNS;
use crate::util::{app_from, db_err, domain_from, from_ts, outbox_from, session_from, summary_from, ts};
use async_trait::async_trait;
use onramp_core::model::*;
use onramp_core::ports::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use time::{Duration, OffsetDateTime};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Each instance's own database is a file here.
    instances_dir: std::path::PathBuf,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad sqlite url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let file = connect.get_filename().to_path_buf();
        let parent = file.parent().unwrap_or(std::path::Path::new(".")).to_path_buf();
        if !parent.as_os_str().is_empty() {
            crate::private_fs::create_dir_all(&parent)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", parent.display())))?;
        }
        if file.as_os_str() != ":memory:" {
            crate::private_fs::touch(&file)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", file.display())))?;
        }
        let instances_dir = options.instances_dir.clone().unwrap_or_else(|| parent.join("instances"));
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
        Ok(Self { writer, reader, instances_dir })
    }
}

fn status(s: &str) -> UserStatus {
    UserStatus::parse(s).unwrap_or(UserStatus::Inactive)
}

crate::shared::shared_queries!(sqlx::Sqlite, "");

impl SqliteStore {
    fn instance_file(&self, instance: &Instance) -> std::path::PathBuf {
        self.instances_dir.join(format!("{}.sqlite3", instance.name))
    }
}

/// Remove a SQLite database file and its WAL companions, if present.
async fn remove_database_file(path: &std::path::Path) -> StoreResult<()> {
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

#[async_trait]
impl Database for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    async fn claim_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        claim_setting_on(&self.writer, name, value).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(db_err).map(|_| ())
    }
}

#[async_trait]
impl Instances for SqliteStore {
    async fn ensure_instance(&self, name: &str, key: SigningKeyRecord) -> StoreResult<Instance> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("INSERT INTO instances (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING")
            .bind(name)
            .bind(ts(key.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM instances WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let has_key: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM signing_keys WHERE instance_id = ? LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if has_key.is_none() {
            insert_signing_key(&mut tx, id, &key).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Instance { id: InstanceId(id), name: name.into() })
    }

    async fn instance_by_name(&self, name: &str) -> StoreResult<Option<Instance>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM instances WHERE name = ? AND status = 'active'")
                .bind(name)
                .fetch_optional(&self.reader)
                .await
                .map_err(db_err)?;
        Ok(id.map(|id| Instance { id: InstanceId(id), name: name.into() }))
    }

    async fn create_instance(&self, new: &NewInstance) -> StoreResult<Instance> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let instance = insert_instance(&mut tx, new).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(instance)
    }

    async fn provision_fast_track(&self, new: &NewFastTrack) -> StoreResult<Provisioned> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let provisioned = provision_fast_track_in(&mut tx, new).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(provisioned)
    }

    async fn finish_provisioning(
        &self,
        instance: InstanceId,
        database: &str,
        message: Option<(InstanceId, &NewOutboxMessage)>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        finish_provisioning_in(&mut tx, instance, database, message).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn fast_track_claim(
        &self,
        secret_hash: &str,
        answer: Option<ClaimAnswer>,
        now: OffsetDateTime,
    ) -> StoreResult<Result<FastTrackClaim, RedeemError>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let claim = fast_track_claim_in(&mut tx, secret_hash, answer, ts(now)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(claim)
    }

    async fn release_unconfirmed_owners(
        &self,
        created_before: OffsetDateTime,
        email_canonical: Option<&str>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let released =
            release_unconfirmed_in(&mut tx, ts(created_before), email_canonical, ts(now), i64::from(limit))
                .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(released)
    }

    async fn fail_provisioning(&self, instance: InstanceId, detail: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE instances SET status = 'provisioning_failed', status_detail = $1
             WHERE id = $2 AND status IN ('provisioning', 'provisioning_failed')",
        )
        .bind(detail)
        .bind(instance.0)
        .execute(&self.writer)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn discard_instance(&self, instance: InstanceId) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let discarded = discard_instance_in(&mut tx, instance).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(discarded)
    }

    async fn create_instance_database(
        &self,
        instance: &Instance,
        init_sql: Option<&str>,
    ) -> StoreResult<String> {
        // Owned, so the future does not hold a borrow that async-trait cannot name.
        let init_sql = init_sql.map(str::to_owned);
        let path = self.instance_file(instance);
        crate::private_fs::create_dir_all(&self.instances_dir)
            .map_err(|e| StoreError::Other(format!("creating {}: {e}", self.instances_dir.display())))?;
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
            if let Some(sql) = &init_sql {
                sqlx::Executor::execute(&mut *tx, sql.as_str())
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

    async fn drop_instance_database(&self, instance: &Instance) -> StoreResult<()> {
        remove_database_file(&self.instance_file(instance)).await
    }

    async fn list_instances(&self) -> StoreResult<Vec<InstanceSummary>> {
        let rows = sqlx::query(&format!("{SUMMARY_COLUMNS} FROM instances i ORDER BY i.name"))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| summary_from!(r)).collect())
    }

    async fn instance_summary(&self, name: &str) -> StoreResult<Option<InstanceSummary>> {
        let row = sqlx::query(&format!("{SUMMARY_COLUMNS} FROM instances i WHERE i.name = $1"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| summary_from!(r)))
    }

    async fn set_instance_active(&self, name: &str, active: bool) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE instances SET status = $1 WHERE name = $2 AND status IN ('active', 'disabled')",
        )
        .bind(if active { "active" } else { "disabled" })
        .bind(name)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn signing_keys(&self, instance: InstanceId) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT kid, pkcs8_der, created_at FROM signing_keys WHERE instance_id = ?")
            .bind(instance.0)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| SigningKeyRecord { kid: r.get(0), pkcs8_der: r.get(1), created_at: from_ts(r.get(2)) })
            .collect())
    }
}

#[async_trait]
impl InstanceSettings for SqliteStore {
    async fn instance_settings(&self, instance: InstanceId) -> StoreResult<UserServiceSettings> {
        instance_settings_on(&self.reader, instance).await
    }

    async fn set_instance_settings(
        &self,
        instance: InstanceId,
        settings: &UserServiceSettings,
    ) -> StoreResult<()> {
        set_instance_settings_on(&self.writer, instance, settings).await
    }

    async fn ensure_roles(
        &self,
        instance: InstanceId,
        roles: &[RoleSpec],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        ensure_roles_on(&self.writer, instance, roles, ts(now)).await
    }
}

#[async_trait]
impl Apps for SqliteStore {
    async fn create_api_key(&self, instance: InstanceId, key: &NewApiKey) -> StoreResult<()> {
        create_api_key_on(&self.writer, instance, key).await
    }

    async fn api_key_by_hash(
        &self,
        instance: InstanceId,
        secret_hash: &str,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        api_key_by_hash_on(&self.reader, instance, secret_hash).await
    }

    async fn list_api_keys(&self, instance: InstanceId) -> StoreResult<Vec<ApiKeyRecord>> {
        list_api_keys_on(&self.reader, instance).await
    }

    async fn revoke_api_key(&self, instance: InstanceId, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        revoke_api_key_on(&self.writer, instance, id, ts(now)).await
    }

    async fn sync_config_api_keys(
        &self,
        instance: InstanceId,
        app_id: &str,
        keys: &[NewApiKey],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sync_config_api_keys_on(&self.writer, instance, app_id, keys, ts(now)).await
    }

    async fn app_settings(&self, instance: InstanceId, app_id: &str) -> StoreResult<AppSettings> {
        app_settings_on(&self.reader, instance, app_id).await
    }

    async fn app_origins(&self, instance: InstanceId) -> StoreResult<Vec<onramp_core::origin::AppOrigins>> {
        app_origins_on(&self.reader, instance).await
    }

    async fn set_app_settings(
        &self,
        instance: InstanceId,
        app_id: &str,
        settings: &AppSettings,
    ) -> StoreResult<()> {
        set_app_settings_on(&self.writer, instance, app_id, settings).await
    }

    async fn apply_app(&self, instance: InstanceId, spec: &AppSpec) -> StoreResult<()> {
        let app = &spec.app;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO apps (instance_id, id, name, signup_url, activation_token_in_response, schema_version)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(instance_id, id) DO UPDATE SET name = excluded.name, signup_url = excluded.signup_url,
               activation_token_in_response = excluded.activation_token_in_response,
               schema_version = excluded.schema_version",
        )
        .bind(instance.0)
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.signup_url)
        .bind(app.activation_token_in_response)
        .bind(&app.schema_version)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM domains WHERE instance_id = ? AND app_id = ?")
            .bind(instance.0)
            .bind(&app.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (position, d) in spec.domains.iter().enumerate() {
            sqlx::query(
                "INSERT INTO domains (instance_id, id, app_id, position, title, description, help, allow_signup)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(instance.0)
            .bind(&d.id)
            .bind(&app.id)
            .bind(position as i64)
            .bind(&d.title)
            .bind(&d.description)
            .bind(&d.help)
            .bind(d.allow_signup)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn app(&self, instance: InstanceId, app_id: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(
            "SELECT id, name, signup_url, activation_token_in_response, schema_version FROM apps
             WHERE instance_id = ? AND id = ?",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| app_from!(r, 0)))
    }

    async fn app_domains(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Domain>> {
        let rows = sqlx::query(
            "SELECT id, title, description, help, allow_signup FROM domains
             WHERE instance_id = ? AND app_id = ? ORDER BY position",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| domain_from!(r, 0)).collect())
    }

    async fn signup_domain(
        &self,
        instance: InstanceId,
        domain_id: &str,
    ) -> StoreResult<Option<(App, Domain)>> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.signup_url, a.activation_token_in_response, a.schema_version,
                    d.id, d.title, d.description, d.help, d.allow_signup
             FROM domains d JOIN apps a ON a.instance_id = d.instance_id AND a.id = d.app_id
             WHERE d.instance_id = ? AND d.id = ?",
        )
        .bind(instance.0)
        .bind(domain_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| (app_from!(r, 0), domain_from!(r, 5))))
    }
}

#[async_trait]
impl Contracts for SqliteStore {
    async fn put_contract(&self, instance: InstanceId, app_id: &str, contract: &Contract) -> StoreResult<()> {
        put_contract_on(&self.writer, instance, app_id, contract).await
    }

    async fn contract(&self, instance: InstanceId, app_id: &str, id: &str) -> StoreResult<Option<Contract>> {
        contract_on(&self.reader, instance, app_id, id).await
    }

    async fn contracts(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Contract>> {
        contracts_on(&self.reader, instance, app_id).await
    }

    async fn create_contract_account(
        &self,
        instance: InstanceId,
        account: &NewContractAccount,
    ) -> StoreResult<ContractOutcome> {
        create_contract_account_on(&self.writer, instance, account).await
    }

    async fn contract_account(
        &self,
        instance: InstanceId,
        dp_key: i64,
    ) -> StoreResult<Option<ContractAccount>> {
        contract_account_on(&self.reader, instance, dp_key).await
    }

    async fn verify_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        code_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> StoreResult<Result<(), SmsCodeError>> {
        verify_sms_on(&self.writer, instance, dp_key, code_hash, ts(now), max_attempts).await
    }

    async fn resend_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
        max_attempts: u32,
    ) -> StoreResult<bool> {
        resend_sms_on(&self.writer, instance, dp_key, verification, message, max_attempts).await
    }
}

#[async_trait]
impl Signups for SqliteStore {
    async fn register_user(
        &self,
        instance: InstanceId,
        registration: &NewRegistration,
    ) -> StoreResult<RegistrationOutcome> {
        register_user_on(&self.writer, instance, registration).await
    }

    async fn redeem_code(
        &self,
        instance: InstanceId,
        redemption: &CodeRedemption,
    ) -> StoreResult<Result<(i64, String), RedeemError>> {
        redeem_code_on(&self.writer, instance, redemption).await
    }

    async fn create_signup(&self, instance: InstanceId, s: &NewSignup) -> StoreResult<SignupOutcome> {
        let now = ts(s.message.created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing = sqlx::query("SELECT id, status, email, name, account_id FROM users WHERE instance_id = ? AND email_canonical = ?")
            .bind(instance.0)
            .bind(&s.user.email_canonical)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let (user_id, outcome) = match existing {
            Some(r) if status(r.get::<String, _>(1).as_str()) != UserStatus::Pending => {
                return Ok(SignupOutcome::EmailExists { email: r.get(2), name: r.get(3) });
            }
            Some(r) => {
                // An unverified earlier registration of this address: this one replaces it, and
                // every secret issued to it dies (pre-hijacking defence, SECURITY.md 20) --
                // unless it was sent its activation moments ago.
                let user_id: i64 = r.get(0);
                let recent: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM verifications WHERE user_id = ? AND purpose = ? AND consumed_at IS NULL
                       AND voided_at IS NULL AND created_at > ? LIMIT 1",
                )
                .bind(user_id)
                .bind(Purpose::Activation.as_str())
                .bind(ts(s.replace_pending_issued_before))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                if recent.is_some() {
                    return Ok(SignupOutcome::PendingRecently);
                }
                let account_id: Option<i64> = r.get(4);
                sqlx::query(
                    "UPDATE users SET email = ?, username = ?, username_canonical = ?, name = ?, language = ?,
                       password_hash = ? WHERE id = ?",
                )
                .bind(&s.user.email)
                .bind(&s.user.username)
                .bind(&s.user.username_canonical)
                .bind(&s.user.name)
                .bind(&s.user.language)
                .bind(&s.user.password_hash)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if let Some(account_id) = account_id {
                    sqlx::query(
                        "UPDATE accounts SET title = ?, country = ?, app_id = ?, domain_id = ?, version_id = ? WHERE id = ?",
                    )
                    .bind(&s.account.title)
                    .bind(&s.account.country)
                    .bind(&s.account.app_id)
                    .bind(&s.account.domain_id)
                    .bind(&s.account.version_id)
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query(
                    "UPDATE verifications SET voided_at = ? WHERE user_id = ? AND consumed_at IS NULL AND voided_at IS NULL",
                )
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                (user_id, SignupOutcome::ReplacedPending)
            }
            None => {
                let account_id: i64 = sqlx::query_scalar(
                    "INSERT INTO accounts (instance_id, public_id, title, country, app_id, domain_id, version_id, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(instance.0)
                .bind(&s.account.public_id)
                .bind(&s.account.title)
                .bind(&s.account.country)
                .bind(&s.account.app_id)
                .bind(&s.account.domain_id)
                .bind(&s.account.version_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                let u = &s.user;
                let user_id: i64 = sqlx::query_scalar(
                    "INSERT INTO users (instance_id, public_id, uuid, account_id, email, email_canonical, username,
                       username_canonical, name, language, status, password_hash, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(instance.0)
                .bind(&u.public_id)
                .bind(u.uuid.to_string())
                .bind(account_id)
                .bind(&u.email)
                .bind(&u.email_canonical)
                .bind(&u.username)
                .bind(&u.username_canonical)
                .bind(&u.name)
                .bind(&u.language)
                .bind(u.status.as_str())
                .bind(&u.password_hash)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                (user_id, SignupOutcome::Created)
            }
        };
        insert_verification(&mut tx, instance, user_id, &s.verification, now).await?;
        insert_outbox(&mut tx, instance, &s.message).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn activate_signup(
        &self,
        instance: InstanceId,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Result<ActivatedSignup, RedeemError>> {
        let now = ts(now);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let Some(v) = sqlx::query(
            "SELECT id, user_id, expires_at, consumed_at, voided_at FROM verifications
             WHERE instance_id = ? AND purpose = ? AND secret_hash = ?",
        )
        .bind(instance.0)
        .bind(Purpose::Activation.as_str())
        .bind(secret_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        else {
            return Ok(Err(RedeemError::NotFound));
        };
        let (vid, user_id): (i64, i64) = (v.get(0), v.get(1));
        if v.get::<Option<i64>, _>(3).is_some() {
            return Ok(Err(RedeemError::AlreadyUsed));
        }
        if v.get::<Option<i64>, _>(4).is_some() {
            return Ok(Err(RedeemError::NotFound));
        }
        if v.get::<i64, _>(2) <= now {
            return Ok(Err(RedeemError::Expired));
        }
        let consumed =
            sqlx::query("UPDATE verifications SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL")
                .bind(now)
                .bind(vid)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        if consumed.rows_affected() != 1 {
            return Ok(Err(RedeemError::AlreadyUsed));
        }
        sqlx::query(
            "UPDATE users SET status = 'active', activated_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE verifications SET voided_at = ? WHERE user_id = ? AND purpose = ? AND consumed_at IS NULL AND voided_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(Purpose::Activation.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let r = sqlx::query(
            "SELECT a.public_id, u.public_id, a.domain_id, a.version_id
             FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.id = ?",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Ok(ActivatedSignup {
            account_id: r.get(0),
            user_id: r.get(1),
            domain_id: r.get(2),
            version_id: r.get(3),
        }))
    }
}

#[async_trait]
impl Users for SqliteStore {
    async fn user_by_email(
        &self,
        instance: InstanceId,
        email_canonical: &str,
    ) -> StoreResult<Option<UserView>> {
        user_by_email_on(&self.reader, instance, email_canonical).await
    }

    async fn issue_secret(
        &self,
        instance: InstanceId,
        user_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
    ) -> StoreResult<()> {
        issue_secret_on(&self.writer, instance, user_key, verification, message).await
    }

    async fn redeem_secret(
        &self,
        instance: InstanceId,
        purpose: Purpose,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Result<(i64, String), RedeemError>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let redeemed = redeem_secret_in(&mut tx, instance, purpose, secret_hash, ts(now)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(redeemed)
    }

    async fn user_view(&self, instance: InstanceId, user_key: i64) -> StoreResult<Option<UserView>> {
        user_view_in(&self.reader, instance, user_key).await
    }

    async fn login_record(
        &self,
        instance: InstanceId,
        lookup: &LoginLookup,
    ) -> StoreResult<Option<LoginRecord>> {
        let (sql, key) = match lookup {
            LoginLookup::EmailCanonical(k) => (
                "SELECT id, public_id, status, password_hash FROM users WHERE instance_id = ? AND email_canonical = ?",
                k,
            ),
            LoginLookup::UsernameCanonical(k) => (
                "SELECT id, public_id, status, password_hash FROM users WHERE instance_id = ? AND username_canonical = ?",
                k,
            ),
        };
        let row =
            sqlx::query(sql).bind(instance.0).bind(key).fetch_optional(&self.reader).await.map_err(db_err)?;
        Ok(row.map(|r| LoginRecord {
            user_key: r.get(0),
            public_id: r.get(1),
            status: status(r.get::<String, _>(2).as_str()),
            password_hash: r.get(3),
        }))
    }

    async fn set_password_hash(&self, instance: InstanceId, user_key: i64, hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = ? WHERE instance_id = ? AND id = ?")
            .bind(hash)
            .bind(instance.0)
            .bind(user_key)
            .execute(&self.writer)
            .await
            .map_err(db_err)
            .map(|_| ())
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn create_session(&self, instance: InstanceId, s: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (instance_id, id, user_id, user_public_id, issued_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(instance.0)
        .bind(&s.id)
        .bind(s.user_key)
        .bind(&s.user_public_id)
        .bind(ts(s.issued_at))
        .bind(ts(s.expires_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn session(&self, instance: InstanceId, id: &str) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id, user_id, user_public_id, issued_at, expires_at, revoked_at FROM sessions
             WHERE instance_id = ? AND id = ?",
        )
        .bind(instance.0)
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| session_from!(r)))
    }

    async fn revoke_session(&self, instance: InstanceId, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE instance_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(instance.0)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn requeue_dead_outbox(&self, now: OffsetDateTime) -> StoreResult<u64> {
        requeue_dead_outbox_on(&self.writer, ts(now)).await
    }

    async fn enqueue(&self, instance: InstanceId, message: &NewOutboxMessage) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        insert_outbox(&mut tx, instance, message).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "UPDATE outbox SET lease_until = ?1
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?2
                          AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY id LIMIT ?3)
             RETURNING id, instance_id, kind, recipient, message_id, payload, attempts",
        )
        .bind(ts(now + lease))
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(db_err)?;
        let mut out: Vec<OutboxMessage> = rows.into_iter().map(|r| outbox_from!(r)).collect();
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    async fn outbox_delivered(&self, id: i64, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', delivered_at = ?, payload = NULL, lease_until = NULL,
               attempts = attempts + 1 WHERE id = ?",
        )
        .bind(ts(now))
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn outbox_failed(
        &self,
        id: i64,
        attempts: u32,
        retry_at: Option<OffsetDateTime>,
        error: &str,
    ) -> StoreResult<()> {
        let (status, next) = match retry_at {
            Some(at) => ("pending", Some(ts(at))),
            None => ("dead", None),
        };
        sqlx::query(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = COALESCE(?, next_attempt_at),
               lease_until = NULL, last_error = ? WHERE id = ?",
        )
        .bind(status)
        .bind(i64::from(attempts))
        .bind(next)
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn outbox_failures(&self, limit: u32) -> StoreResult<Vec<onramp_core::model::OutboxFailure>> {
        outbox_failures_on(&self.reader, limit).await
    }

    async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM outbox GROUP BY status")
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        let mut counts = OutboxCounts::default();
        for r in rows {
            let n = u64::try_from(r.get::<i64, _>(1)).unwrap_or(0);
            match r.get::<String, _>(0).as_str() {
                "pending" => counts.pending = n,
                "dead" => counts.dead = n,
                "delivered" => counts.sent = n,
                _ => {}
            }
        }
        Ok(counts)
    }
}

#[async_trait]
impl RateLimits for SqliteStore {
    async fn rate_limit_hit(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u32> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let hits: i64 = sqlx::query_scalar(
            "INSERT INTO rate_limits (key, window_start, hits) VALUES (?, ?, 1)
             ON CONFLICT(key, window_start) DO UPDATE SET hits = hits + 1 RETURNING hits",
        )
        .bind(key)
        .bind(ts(window_start))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if hits == 1 {
            // A new window: a good moment to drop windows that ended long ago.
            sqlx::query("DELETE FROM rate_limits WHERE window_start < ?")
                .bind(ts(now - Duration::days(1)))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(u32::try_from(hits).unwrap_or(u32::MAX))
    }
}

async fn insert_verification(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    instance: InstanceId,
    user_id: i64,
    v: &NewVerification,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO verifications (instance_id, user_id, purpose, secret_hash, expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(instance.0)
    .bind(user_id)
    .bind(v.purpose.as_str())
    .bind(&v.secret_hash)
    .bind(ts(v.expires_at))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_err)
    .map(|_| ())
}

async fn insert_outbox(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    instance: InstanceId,
    m: &NewOutboxMessage,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (instance_id, kind, recipient, message_id, payload, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(instance.0)
    .bind(&m.kind)
    .bind(&m.recipient)
    .bind(&m.message_id)
    .bind(&m.sealed_payload)
    .bind(ts(m.created_at))
    .bind(ts(m.created_at))
    .execute(&mut **tx)
    .await
    .map_err(db_err)
    .map(|_| ())
}

async fn insert_signing_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    instance_id: i64,
    key: &SigningKeyRecord,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO signing_keys (instance_id, kid, pkcs8_der, created_at) VALUES (?, ?, ?, ?)")
        .bind(instance_id)
        .bind(&key.kid)
        .bind(&key.pkcs8_der)
        .bind(ts(key.created_at))
        .execute(&mut **tx)
        .await
        .map_err(db_err)
        .map(|_| ())
}
