//! The scale-out store: PostgreSQL. Every node points at one database; all state (users,
//! secrets, sessions, signing keys, rate-limit windows, the outbox) lives there. Row locks
//! (`FOR UPDATE`) serialise single-use redemptions; the outbox is claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, so many workers share it without doubling a message.
//! Each instance's own database is a schema.

use crate::StoreOptions;
use crate::sql::{Dialect, SqlStore, activation_outcome};
use crate::util::{db_err, ts};
use onramp_core::model::{
    ActivatedSignup, Instance, InstanceId, NewAuditEvent, NewSignup, Purpose, RedeemError,
};
use onramp_core::ports::{StoreError, StoreResult};
use sqlx::Postgres;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use std::str::FromStr;

pub type PostgresStore = SqlStore<Postgres>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl SqlStore<Postgres> {
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
        Ok(Self { writer: pool.clone(), reader: pool, home: () })
    }
}

/// The schema that is an instance's own database: named by its key, so it can never collide
/// with another schema or need quoting.
fn instance_schema(instance: &Instance) -> String {
    format!("instance_{}", instance.id.0)
}

impl Dialect for Postgres {
    type Home = ();
    const LOCK: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn migrate(pool: &PgPool) -> StoreResult<()> {
        MIGRATOR.run(pool).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    async fn create_instance_database(
        store: &PostgresStore,
        instance: &Instance,
        init_sql: Option<&str>,
    ) -> StoreResult<String> {
        let schema = instance_schema(instance);
        let mut tx = store.writer.begin().await.map_err(db_err)?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut *tx).await.map_err(db_err)?;
        if let Some(sql) = init_sql {
            // The init SQL runs inside the new schema: unqualified names land there.
            sqlx::query(&format!("SET LOCAL search_path TO {schema}"))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::Executor::execute(&mut *tx, sql)
                .await
                .map_err(|e| StoreError::Other(format!("the instance init SQL failed: {e}")))?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(format!("postgres:schema:{schema}"))
    }

    async fn drop_instance_database(store: &PostgresStore, instance: &Instance) -> StoreResult<()> {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", instance_schema(instance)))
            .execute(&store.writer)
            .await
            .map_err(db_err)
            .map(|_| ())
    }

    /// Data-modifying CTEs: account, user, activation secret and mail in one round trip, atomic
    /// by itself.
    async fn insert_new_signup(pool: &PgPool, instance: InstanceId, s: &NewSignup) -> StoreResult<bool> {
        let (a, u, v, m) = (&s.account, &s.user, &s.verification, &s.message);
        sqlx::query(
            "WITH a AS (
               INSERT INTO accounts (instance_id, public_id, title, country, app_id, domain_id, version_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id),
             u AS (
               INSERT INTO users (instance_id, public_id, uuid, account_id, email, email_canonical, username,
                 username_canonical, name, language, status, password_hash, created_at, metadata)
               SELECT $1, $9, $10, a.id, $11, $12, $13, $14, $15, $16, $17, $18, $8, $31 FROM a RETURNING id),
             v AS (
               INSERT INTO verifications (instance_id, user_id, purpose, secret_hash, expires_at, created_at)
               SELECT $1, u.id, $19, $20, $21, $8 FROM u RETURNING id),
             o AS (
               INSERT INTO outbox (instance_id, kind, recipient, message_id, payload, next_attempt_at, created_at)
               SELECT $1, $22, $23, $24, $25, $8, $8 FROM v RETURNING id)
             INSERT INTO audit_log (instance_id, type, actor, target, user_id, client, detail, created_at, publish)
             SELECT $1, $26, $27, $9, $9, $28, $29, $30, $32 FROM o",
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
        .bind(s.audit.kind)
        .bind(&s.audit.actor)
        .bind(s.audit.client.as_deref())
        .bind(s.audit.detail.to_string())
        .bind(ts(s.audit.at))
        .bind(crate::util::metadata_text(&u.metadata))
        .bind(s.audit.publish.then_some(1i64))
        .execute(pool)
        .await
        .map_err(db_err)
        .map(|_| true)
    }

    /// One round trip instead of six (begin, look, two updates, the audit entry, commit): the
    /// secret is locked and read, and only when it is live is it used, every other live
    /// activation secret of its user voided and the user activated. Data-modifying CTEs run to
    /// completion whether or not the final `SELECT` reads them.
    async fn activate_signup_at_once(
        pool: &PgPool,
        instance: InstanceId,
        secret_hash: &str,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Result<ActivatedSignup, RedeemError>> {
        let row = sqlx::query(
            "WITH v AS (
               SELECT v.id, v.user_id, v.expires_at, v.consumed_at, v.voided_at,
                      a.public_id AS account, u.public_id AS public_user, a.domain_id, a.version_id
               FROM verifications v JOIN users u ON u.id = v.user_id JOIN accounts a ON a.id = u.account_id
               WHERE v.instance_id = $1 AND v.purpose = $2 AND v.secret_hash = $3
               FOR UPDATE OF v),
             live AS (SELECT id, user_id FROM v
                      WHERE consumed_at IS NULL AND voided_at IS NULL AND expires_at > $4),
             used AS (
               UPDATE verifications t
               SET consumed_at = CASE WHEN t.id = live.id THEN CAST($4 AS BIGINT) END,
                   voided_at = CASE WHEN t.id = live.id THEN NULL ELSE CAST($4 AS BIGINT) END
               FROM live
               WHERE t.user_id = live.user_id AND t.purpose = $2 AND t.consumed_at IS NULL AND t.voided_at IS NULL
               RETURNING t.id),
             activated AS (
               UPDATE users SET status = 'active', activated_at = $4
               FROM live WHERE users.id = live.user_id AND users.status = 'pending'
               RETURNING users.id),
             audited AS (
               INSERT INTO audit_log (instance_id, type, actor, target, user_id, client, detail, created_at, publish)
               SELECT $1, $5, $6, v.public_user, v.public_user, $7, $8, $4, $9
               FROM v JOIN live ON live.id = v.id
               RETURNING id)
             SELECT expires_at, consumed_at, voided_at, account, public_user, domain_id, version_id,
                    (SELECT COUNT(*) FROM used)
             FROM v",
        )
        .bind(instance.0)
        .bind(Purpose::Activation.as_str())
        .bind(secret_hash)
        .bind(now)
        .bind(audit.kind)
        .bind(&audit.actor)
        .bind(audit.client.as_deref())
        .bind(audit.detail.to_string())
        .bind(audit.publish.then_some(1i64))
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
        let Some(v) = row else { return Ok(Err(RedeemError::NotFound)) };
        let outcome = activation_outcome(v.get(0), v.get(1), v.get(2), now, || ActivatedSignup {
            account_id: v.get(3),
            user_id: v.get(4),
            domain_id: v.get(5),
            version_id: v.get(6),
        });
        // Live as read, yet the statement used no secret: it counts as used.
        let outcome =
            outcome.and_then(|a| if v.get::<i64, _>(7) == 0 { Err(RedeemError::AlreadyUsed) } else { Ok(a) });
        Ok(outcome)
    }
}
