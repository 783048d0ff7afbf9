//! The control plane: admin tokens and the audit log.

use super::*;

const TOKEN_COLUMNS: &str = "SELECT t.id, t.secret_hash, t.prefix, t.label, t.instance_id, t.read_only,
        t.created_at, t.revoked_at, i.name
     FROM admin_tokens t LEFT JOIN instances i ON i.id = t.instance_id";

macro_rules! token_from {
    ($r:expr) => {
        AdminTokenRecord {
            id: $r.get(0),
            secret_hash: $r.get(1),
            prefix: $r.get(2),
            label: $r.get(3),
            scope: AdminScope { instance: $r.get::<Option<i64>, _>(4).map(InstanceId), read_only: $r.get(5) },
            created_at: from_ts($r.get(6)),
            revoked_at: $r.get::<Option<i64>, _>(7).map(from_ts),
            instance_name: $r.get(8),
        }
    };
}

#[async_trait]
impl<DB> AdminTokens for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    i64: Value<DB>,
    bool: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<String>: Value<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    async fn create_admin_token(&self, t: &NewAdminToken, audit: &NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO admin_tokens (id, secret_hash, prefix, label, instance_id, read_only, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(&t.secret_hash)
        .bind(&t.prefix)
        .bind(&t.label)
        .bind(t.scope.instance.map(|i| i.0))
        .bind(t.scope.read_only)
        .bind(ts(t.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn admin_token_by_hash(&self, secret_hash: &str) -> StoreResult<Option<AdminTokenRecord>> {
        let row = sqlx::query(&format!("{TOKEN_COLUMNS} WHERE t.secret_hash = $1"))
            .bind(secret_hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| token_from!(r)))
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>> {
        let rows = sqlx::query(&format!("{TOKEN_COLUMNS} ORDER BY t.created_at, t.id"))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| token_from!(r)).collect())
    }

    async fn revoke_admin_token(
        &self,
        id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done =
            sqlx::query("UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

#[async_trait]
impl<DB> AuditLog for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    i64: Value<DB>,
    bool: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<String>: Value<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    async fn record_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        Self::insert_audit(&mut tx, event).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn audit_events(&self, f: &AuditFilter) -> StoreResult<Page<AuditEvent>> {
        let mut args = Args::default();
        let mut sql = String::from(
            "SELECT a.id, i.name, a.type, a.actor, a.target, a.user_id, a.client, a.detail, a.created_at
             FROM audit_log a LEFT JOIN instances i ON i.id = a.instance_id WHERE 1 = 1",
        );
        if let Some(instance) = f.instance {
            sql += &format!(" AND a.instance_id = {}", args.int(instance.0));
        }
        if let Some(user) = &f.user {
            sql += &format!(" AND a.user_id = {}", args.text(user));
        }
        if let Some(kind) = &f.kind {
            sql += &format!(" AND a.type = {}", args.text(kind));
        }
        if let Some(since) = f.since {
            sql += &format!(" AND a.created_at >= {}", args.int(ts(since)));
        }
        if let Some(before) = f.before {
            sql += &format!(" AND a.id < {}", args.int(before));
        }
        sql += &format!(" ORDER BY a.id DESC LIMIT {}", args.int(i64::from(f.limit) + 1));
        let rows = args.bind_to(sqlx::query(&sql)).fetch_all(&self.reader).await.map_err(db_err)?;
        let events = rows
            .into_iter()
            .map(|r| AuditEvent {
                id: r.get(0),
                instance: r.get(1),
                kind: r.get(2),
                actor: r.get(3),
                target: r.get(4),
                user_id: r.get(5),
                client: r.get(6),
                detail: serde_json::from_str(&r.get::<String, _>(7)).unwrap_or(serde_json::Value::Null),
                at: from_ts(r.get(8)),
            })
            .collect();
        Ok(Page::of(events, f.limit, |e| e.id))
    }

    async fn prune_audit(&self, before: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        // From the oldest id: entries are written in time order, so the old ones are the first
        // rows of the key, and this reads at most `limit` of them whatever the log's size.
        let done = sqlx::query(
            "DELETE FROM audit_log WHERE id IN
               (SELECT id FROM (SELECT id, created_at FROM audit_log ORDER BY id LIMIT $2) oldest
                WHERE created_at < $1)",
        )
        .bind(ts(before))
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(DB::rows_affected(&done))
    }

    async fn unpublished_events(&self, limit: u32) -> StoreResult<Vec<UnpublishedEvent>> {
        let rows = sqlx::query(
            "SELECT a.id, a.instance_id, i.name, a.type, a.user_id, a.detail, a.created_at,
               u.public_id, u.uuid, u.email, u.username, u.name, u.status, COALESCE(u.app_id, ac.app_id), u.language
             FROM audit_log a
             LEFT JOIN instances i ON i.id = a.instance_id
             LEFT JOIN users u ON u.instance_id = a.instance_id AND u.public_id = a.user_id
             LEFT JOIN accounts ac ON ac.id = u.account_id
             WHERE a.publish IS NOT NULL ORDER BY a.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let instance: Option<i64> = r.get(1);
                let name: Option<String> = r.get(2);
                let user: Option<String> = r.get(7);
                UnpublishedEvent {
                    id: r.get(0),
                    instance: instance.zip(name).map(|(id, name)| (InstanceId(id), name)),
                    kind: r.get(3),
                    user_id: r.get(4),
                    detail: serde_json::from_str(&r.get::<String, _>(5)).unwrap_or(serde_json::Value::Null),
                    at: from_ts(r.get(6)),
                    user: user.map(|public_id| EventUser {
                        public_id,
                        uuid: r.get(8),
                        email: r.get(9),
                        username: r.get(10),
                        name: r.get(11),
                        status: r.get(12),
                        app_id: r.get(13),
                        language: r.get(14),
                    }),
                }
            })
            .collect())
    }

    async fn publish_event(&self, id: i64, messages: &[(InstanceId, NewOutboxMessage)]) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let cleared =
            sqlx::query("UPDATE audit_log SET publish = NULL WHERE id = $1 AND publish IS NOT NULL")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        if DB::rows_affected(&cleared) != 1 {
            return Ok(false);
        }
        for (instance, message) in messages {
            Self::insert_outbox(&mut tx, *instance, message).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

/// The `publish` column of an entry: 1 when it is to be published, else NULL.
fn publish_mark(e: &NewAuditEvent) -> Option<i64> {
    e.publish.then_some(1)
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    i64: Value<DB>,
    bool: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<String>: Value<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    /// Write an audit entry about the user with key `user_key`, naming them by public id where
    /// the entry does not yet (a link or code found them).
    pub(super) async fn insert_audit_of(
        tx: &mut Tx<'_, DB>,
        e: &NewAuditEvent,
        user_key: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (instance_id, type, actor, target, user_id, client, detail, created_at, publish)
             SELECT $1, $2, $3, COALESCE($4, u.public_id), COALESCE($5, u.public_id), $6, $7, $8, $10
             FROM users u WHERE u.id = $9",
        )
        .bind(e.instance.map(|i| i.0))
        .bind(e.kind)
        .bind(&e.actor)
        .bind(e.target.as_deref())
        .bind(e.user.as_deref())
        .bind(e.client.as_deref())
        .bind(e.detail.to_string())
        .bind(ts(e.at))
        .bind(user_key)
        .bind(publish_mark(e))
        .execute(&mut **tx)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    /// Write an audit entry in the transaction of the change it records.
    pub(super) async fn insert_audit(tx: &mut Tx<'_, DB>, e: &NewAuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (instance_id, type, actor, target, user_id, client, detail, created_at, publish)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.instance.map(|i| i.0))
        .bind(e.kind)
        .bind(&e.actor)
        .bind(e.target.as_deref())
        .bind(e.user.as_deref())
        .bind(e.client.as_deref())
        .bind(e.detail.to_string())
        .bind(ts(e.at))
        .bind(publish_mark(e))
        .execute(&mut **tx)
        .await
        .map_err(db_err)
        .map(|_| ())
    }
}
