//! The scale-out store: PostgreSQL. Every node points at one database; all state (users,
//! secrets, sessions, signing keys, rate-limit windows, the outbox) lives there. Row locks
//! (`FOR UPDATE`) serialise single-use redemptions; the outbox is claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, so many workers share it without doubling a message.

use crate::StoreOptions;
use crate::shared::SUMMARY_COLUMNS;
use crate::util::{app_from, db_err, domain_from, from_ts, outbox_from, session_from, summary_from, ts};
use async_trait::async_trait;
use onramp_core::model::*;
use onramp_core::ports::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use time::{Duration, OffsetDateTime};

pub struct PostgresStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresStore {
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad postgres url: {e}")))?
            .options([("statement_timeout", options.statement_timeout_ms.to_string())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(db_err)?;
        Ok(Self { pool })
    }
}

fn status(s: &str) -> UserStatus {
    UserStatus::parse(s).unwrap_or(UserStatus::Inactive)
}

crate::shared::shared_queries!(sqlx::Postgres, " FOR UPDATE");

/// The schema that is an instance's own database: named by its key, so it can never collide
/// with another schema or need quoting.
fn instance_schema(instance: &Instance) -> String {
    format!("instance_{}", instance.id.0)
}

impl PostgresStore {
    async fn insert_new_signup(&self, instance: InstanceId, s: &NewSignup) -> StoreResult<()> {
        let (a, u, v, m) = (&s.account, &s.user, &s.verification, &s.message);
        sqlx::query(
            "WITH a AS (
               INSERT INTO accounts (instance_id, public_id, title, country, app_id, domain_id, version_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id),
             u AS (
               INSERT INTO users (instance_id, public_id, uuid, account_id, email, email_canonical, username,
                 username_canonical, name, language, status, password_hash, created_at)
               SELECT $1, $9, $10, a.id, $11, $12, $13, $14, $15, $16, $17, $18, $8 FROM a RETURNING id),
             v AS (
               INSERT INTO verifications (instance_id, user_id, purpose, secret_hash, expires_at, created_at)
               SELECT $1, u.id, $19, $20, $21, $8 FROM u RETURNING id)
             INSERT INTO outbox (instance_id, kind, recipient, message_id, payload, next_attempt_at, created_at)
             SELECT $1, $22, $23, $24, $25, $8, $8 FROM v",
        )
        .bind(instance.0)
        .bind(&a.public_id)
        .bind(&a.title)
        .bind(&a.country)
        .bind(&a.app_id)
        .bind(&a.domain_id)
        .bind(&a.version_id)
        .bind(ts(m.created_at))
        .bind(&u.public_id)
        .bind(u.uuid.to_string())
        .bind(&u.email)
        .bind(&u.email_canonical)
        .bind(&u.username)
        .bind(&u.username_canonical)
        .bind(&u.name)
        .bind(&u.language)
        .bind(u.status.as_str())
        .bind(&u.password_hash)
        .bind(v.purpose.as_str())
        .bind(&v.secret_hash)
        .bind(ts(v.expires_at))
        .bind(&m.kind)
        .bind(&m.recipient)
        .bind(&m.message_id)
        .bind(&m.sealed_payload)
        .execute(&self.pool)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn create_signup_once(&self, instance: InstanceId, s: &NewSignup) -> StoreResult<SignupOutcome> {
        let now = ts(s.message.created_at);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let existing = sqlx::query("SELECT id, status, email, name, account_id FROM users WHERE instance_id = $1 AND email_canonical = $2 FOR UPDATE")
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
                    "SELECT 1::BIGINT FROM verifications WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL
                       AND voided_at IS NULL AND created_at > $3 LIMIT 1",
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
                    "UPDATE users SET email = $1, username = $2, username_canonical = $3, name = $4, language = $5,
                       password_hash = $6 WHERE id = $7",
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
                        "UPDATE accounts SET title = $1, country = $2, app_id = $3, domain_id = $4, version_id = $5 WHERE id = $6",
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
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query(
                    "UPDATE verifications SET voided_at = $1 WHERE user_id = $2 AND consumed_at IS NULL AND voided_at IS NULL",
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
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
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
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
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
}

#[async_trait]
impl Database for PostgresStore {
    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    async fn claim_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        claim_setting_on(&self.pool, name, value).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1::BIGINT").execute(&self.pool).await.map_err(db_err).map(|_| ())
    }
}

#[async_trait]
impl Instances for PostgresStore {
    async fn ensure_instance(&self, name: &str, key: SigningKeyRecord) -> StoreResult<Instance> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("INSERT INTO instances (name, created_at) VALUES ($1, $2) ON CONFLICT(name) DO NOTHING")
            .bind(name)
            .bind(ts(key.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM instances WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let has_key: Option<i64> =
            sqlx::query_scalar("SELECT 1::BIGINT FROM signing_keys WHERE instance_id = $1 LIMIT 1")
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
            sqlx::query_scalar("SELECT id FROM instances WHERE name = $1 AND status = 'active'")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(id.map(|id| Instance { id: InstanceId(id), name: name.into() }))
    }

    async fn create_instance(&self, new: &NewInstance) -> StoreResult<Instance> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let instance = insert_instance(&mut tx, new).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(instance)
    }

    async fn provision_fast_track(&self, new: &NewFastTrack) -> StoreResult<Provisioned> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        finish_provisioning_in(&mut tx, instance, database, message).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn fast_track_claim(
        &self,
        secret_hash: &str,
        answer: Option<ClaimAnswer>,
        now: OffsetDateTime,
    ) -> StoreResult<Result<FastTrackClaim, RedeemError>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        .execute(&self.pool)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn discard_instance(&self, instance: InstanceId) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let discarded = discard_instance_in(&mut tx, instance).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(discarded)
    }

    async fn create_instance_database(
        &self,
        instance: &Instance,
        init_sql: Option<&str>,
    ) -> StoreResult<String> {
        let init_sql = init_sql.map(str::to_owned);
        let schema = instance_schema(instance);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut *tx).await.map_err(db_err)?;
        if let Some(sql) = &init_sql {
            // The init SQL runs inside the new schema: unqualified names land there.
            sqlx::query(&format!("SET LOCAL search_path TO {schema}"))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::Executor::execute(&mut *tx, sql.as_str())
                .await
                .map_err(|e| StoreError::Other(format!("the instance init SQL failed: {e}")))?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(format!("postgres:schema:{schema}"))
    }

    async fn drop_instance_database(&self, instance: &Instance) -> StoreResult<()> {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", instance_schema(instance)))
            .execute(&self.pool)
            .await
            .map_err(db_err)
            .map(|_| ())
    }

    async fn list_instances(&self) -> StoreResult<Vec<InstanceSummary>> {
        let rows = sqlx::query(&format!("{SUMMARY_COLUMNS} FROM instances i ORDER BY i.name"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| summary_from!(r)).collect())
    }

    async fn instance_summary(&self, name: &str) -> StoreResult<Option<InstanceSummary>> {
        let row = sqlx::query(&format!("{SUMMARY_COLUMNS} FROM instances i WHERE i.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn signing_keys(&self, instance: InstanceId) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT kid, pkcs8_der, created_at FROM signing_keys WHERE instance_id = $1")
            .bind(instance.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| SigningKeyRecord { kid: r.get(0), pkcs8_der: r.get(1), created_at: from_ts(r.get(2)) })
            .collect())
    }
}

#[async_trait]
impl InstanceSettings for PostgresStore {
    async fn instance_settings(&self, instance: InstanceId) -> StoreResult<UserServiceSettings> {
        instance_settings_on(&self.pool, instance).await
    }

    async fn set_instance_settings(
        &self,
        instance: InstanceId,
        settings: &UserServiceSettings,
    ) -> StoreResult<()> {
        set_instance_settings_on(&self.pool, instance, settings).await
    }

    async fn ensure_roles(
        &self,
        instance: InstanceId,
        roles: &[RoleSpec],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        ensure_roles_on(&self.pool, instance, roles, ts(now)).await
    }
}

#[async_trait]
impl Apps for PostgresStore {
    async fn create_api_key(&self, instance: InstanceId, key: &NewApiKey) -> StoreResult<()> {
        create_api_key_on(&self.pool, instance, key).await
    }

    async fn api_key_by_hash(
        &self,
        instance: InstanceId,
        secret_hash: &str,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        api_key_by_hash_on(&self.pool, instance, secret_hash).await
    }

    async fn list_api_keys(&self, instance: InstanceId) -> StoreResult<Vec<ApiKeyRecord>> {
        list_api_keys_on(&self.pool, instance).await
    }

    async fn revoke_api_key(&self, instance: InstanceId, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        revoke_api_key_on(&self.pool, instance, id, ts(now)).await
    }

    async fn sync_config_api_keys(
        &self,
        instance: InstanceId,
        app_id: &str,
        keys: &[NewApiKey],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sync_config_api_keys_on(&self.pool, instance, app_id, keys, ts(now)).await
    }

    async fn app_settings(&self, instance: InstanceId, app_id: &str) -> StoreResult<AppSettings> {
        app_settings_on(&self.pool, instance, app_id).await
    }

    async fn app_origins(&self, instance: InstanceId) -> StoreResult<Vec<onramp_core::origin::AppOrigins>> {
        app_origins_on(&self.pool, instance).await
    }

    async fn set_app_settings(
        &self,
        instance: InstanceId,
        app_id: &str,
        settings: &AppSettings,
    ) -> StoreResult<()> {
        set_app_settings_on(&self.pool, instance, app_id, settings).await
    }

    async fn apply_app(&self, instance: InstanceId, spec: &AppSpec) -> StoreResult<()> {
        let app = &spec.app;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO apps (instance_id, id, name, signup_url, activation_token_in_response, schema_version)
             VALUES ($1, $2, $3, $4, $5, $6)
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
        sqlx::query("DELETE FROM domains WHERE instance_id = $1 AND app_id = $2")
            .bind(instance.0)
            .bind(&app.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (position, d) in spec.domains.iter().enumerate() {
            sqlx::query(
                "INSERT INTO domains (instance_id, id, app_id, position, title, description, help, allow_signup)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
             WHERE instance_id = $1 AND id = $2",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| app_from!(r, 0)))
    }

    async fn app_domains(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Domain>> {
        let rows = sqlx::query(
            "SELECT id, title, description, help, allow_signup FROM domains
             WHERE instance_id = $1 AND app_id = $2 ORDER BY position",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_all(&self.pool)
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
             WHERE d.instance_id = $1 AND d.id = $2",
        )
        .bind(instance.0)
        .bind(domain_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| (app_from!(r, 0), domain_from!(r, 5))))
    }
}

#[async_trait]
impl Contracts for PostgresStore {
    async fn put_contract(&self, instance: InstanceId, app_id: &str, contract: &Contract) -> StoreResult<()> {
        put_contract_on(&self.pool, instance, app_id, contract).await
    }

    async fn contract(&self, instance: InstanceId, app_id: &str, id: &str) -> StoreResult<Option<Contract>> {
        contract_on(&self.pool, instance, app_id, id).await
    }

    async fn contracts(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Contract>> {
        contracts_on(&self.pool, instance, app_id).await
    }

    async fn create_contract_account(
        &self,
        instance: InstanceId,
        account: &NewContractAccount,
    ) -> StoreResult<ContractOutcome> {
        create_contract_account_on(&self.pool, instance, account).await
    }

    async fn contract_account(
        &self,
        instance: InstanceId,
        dp_key: i64,
    ) -> StoreResult<Option<ContractAccount>> {
        contract_account_on(&self.pool, instance, dp_key).await
    }

    async fn verify_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        code_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> StoreResult<Result<(), SmsCodeError>> {
        verify_sms_on(&self.pool, instance, dp_key, code_hash, ts(now), max_attempts).await
    }

    async fn resend_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
        max_attempts: u32,
    ) -> StoreResult<bool> {
        resend_sms_on(&self.pool, instance, dp_key, verification, message, max_attempts).await
    }
}

#[async_trait]
impl Signups for PostgresStore {
    async fn register_user(
        &self,
        instance: InstanceId,
        registration: &NewRegistration,
    ) -> StoreResult<RegistrationOutcome> {
        register_user_on(&self.pool, instance, registration).await
    }

    async fn redeem_code(
        &self,
        instance: InstanceId,
        redemption: &CodeRedemption,
    ) -> StoreResult<Result<(i64, String), RedeemError>> {
        redeem_code_on(&self.pool, instance, redemption).await
    }

    async fn create_signup(&self, instance: InstanceId, s: &NewSignup) -> StoreResult<SignupOutcome> {
        // The common case, a new address, in one statement (one round trip, atomic by itself).
        // Any unique violation falls back to the transaction below, which looks at the email
        // first, so the answer is the same as it would have been.
        match self.insert_new_signup(instance, s).await {
            Ok(()) => return Ok(SignupOutcome::Created),
            Err(StoreError::Unique(_)) => {}
            Err(e) => return Err(e),
        }
        // Two first signups of one address race to the unique index; the loser's transaction
        // is rolled back and runs again, and then finds the winner's row.
        for _ in 0..3 {
            match self.create_signup_once(instance, s).await {
                Err(StoreError::Unique(UniqueKey::Email)) => continue,
                other => return other,
            }
        }
        Err(StoreError::Other("signup kept conflicting on the email index".into()))
    }

    async fn activate_signup(
        &self,
        instance: InstanceId,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Result<ActivatedSignup, RedeemError>> {
        let now = ts(now);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let Some(v) = sqlx::query(
            "SELECT id, user_id, expires_at, consumed_at, voided_at FROM verifications
             WHERE instance_id = $1 AND purpose = $2 AND secret_hash = $3 FOR UPDATE",
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
            sqlx::query("UPDATE verifications SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
                .bind(now)
                .bind(vid)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        if consumed.rows_affected() != 1 {
            return Ok(Err(RedeemError::AlreadyUsed));
        }
        sqlx::query(
            "UPDATE users SET status = 'active', activated_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE verifications SET voided_at = $1 WHERE user_id = $2 AND purpose = $3 AND consumed_at IS NULL AND voided_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(Purpose::Activation.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let r = sqlx::query(
            "SELECT a.public_id, u.public_id, a.domain_id, a.version_id
             FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.id = $1",
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
impl Users for PostgresStore {
    async fn user_by_email(
        &self,
        instance: InstanceId,
        email_canonical: &str,
    ) -> StoreResult<Option<UserView>> {
        user_by_email_on(&self.pool, instance, email_canonical).await
    }

    async fn issue_secret(
        &self,
        instance: InstanceId,
        user_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
    ) -> StoreResult<()> {
        issue_secret_on(&self.pool, instance, user_key, verification, message).await
    }

    async fn redeem_secret(
        &self,
        instance: InstanceId,
        purpose: Purpose,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Result<(i64, String), RedeemError>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let redeemed = redeem_secret_in(&mut tx, instance, purpose, secret_hash, ts(now)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(redeemed)
    }

    async fn user_view(&self, instance: InstanceId, user_key: i64) -> StoreResult<Option<UserView>> {
        user_view_in(&self.pool, instance, user_key).await
    }

    async fn login_record(
        &self,
        instance: InstanceId,
        lookup: &LoginLookup,
    ) -> StoreResult<Option<LoginRecord>> {
        let (sql, key) = match lookup {
            LoginLookup::EmailCanonical(k) => (
                "SELECT id, public_id, status, password_hash FROM users WHERE instance_id = $1 AND email_canonical = $2",
                k,
            ),
            LoginLookup::UsernameCanonical(k) => (
                "SELECT id, public_id, status, password_hash FROM users WHERE instance_id = $1 AND username_canonical = $2",
                k,
            ),
        };
        let row =
            sqlx::query(sql).bind(instance.0).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        Ok(row.map(|r| LoginRecord {
            user_key: r.get(0),
            public_id: r.get(1),
            status: status(r.get::<String, _>(2).as_str()),
            password_hash: r.get(3),
        }))
    }

    async fn set_password_hash(&self, instance: InstanceId, user_key: i64, hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE instance_id = $2 AND id = $3")
            .bind(hash)
            .bind(instance.0)
            .bind(user_key)
            .execute(&self.pool)
            .await
            .map_err(db_err)
            .map(|_| ())
    }
}

#[async_trait]
impl Sessions for PostgresStore {
    async fn create_session(&self, instance: InstanceId, s: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (instance_id, id, user_id, user_public_id, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(instance.0)
        .bind(&s.id)
        .bind(s.user_key)
        .bind(&s.user_public_id)
        .bind(ts(s.issued_at))
        .bind(ts(s.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn session(&self, instance: InstanceId, id: &str) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id, user_id, user_public_id, issued_at, expires_at, revoked_at FROM sessions
             WHERE instance_id = $1 AND id = $2",
        )
        .bind(instance.0)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| session_from!(r)))
    }

    async fn revoke_session(&self, instance: InstanceId, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE instance_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(instance.0)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Outbox for PostgresStore {
    async fn requeue_dead_outbox(&self, now: OffsetDateTime) -> StoreResult<u64> {
        requeue_dead_outbox_on(&self.pool, ts(now)).await
    }

    async fn enqueue(&self, instance: InstanceId, message: &NewOutboxMessage) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
            "UPDATE outbox SET lease_until = $1
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $2
                          AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT $3
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, instance_id, kind, recipient, message_id, payload, attempts",
        )
        .bind(ts(now + lease))
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out: Vec<OutboxMessage> = rows.into_iter().map(|r| outbox_from!(r)).collect();
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    async fn outbox_delivered(&self, id: i64, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, payload = NULL, lease_until = NULL,
               attempts = attempts + 1 WHERE id = $2",
        )
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
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
            "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at),
               lease_until = NULL, last_error = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(i64::from(attempts))
        .bind(next)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    async fn outbox_failures(&self, limit: u32) -> StoreResult<Vec<onramp_core::model::OutboxFailure>> {
        outbox_failures_on(&self.pool, limit).await
    }

    async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
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
impl RateLimits for PostgresStore {
    async fn rate_limit_hit(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u32> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let hits: i64 = sqlx::query_scalar(
            "INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
             ON CONFLICT(key, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits",
        )
        .bind(key)
        .bind(ts(window_start))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if hits == 1 {
            // A new window: a good moment to drop windows that ended long ago.
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
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
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    instance: InstanceId,
    user_id: i64,
    v: &NewVerification,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO verifications (instance_id, user_id, purpose, secret_hash, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
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
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    instance: InstanceId,
    m: &NewOutboxMessage,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (instance_id, kind, recipient, message_id, payload, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    instance_id: i64,
    key: &SigningKeyRecord,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO signing_keys (instance_id, kid, pkcs8_der, created_at) VALUES ($1, $2, $3, $4)")
        .bind(instance_id)
        .bind(&key.kid)
        .bind(&key.pkcs8_der)
        .bind(ts(key.created_at))
        .execute(&mut **tx)
        .await
        .map_err(db_err)
        .map(|_| ())
}
