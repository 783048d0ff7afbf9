//! Users as the operator manages them: find, read, disable, enable, reissue a secret, erase.

use super::*;

/// A user record's columns (see `record_from`); `$1` is now (for live sessions).
const RECORD: &str = "SELECT u.id, u.public_id, u.uuid, u.email, u.username, u.name, u.language, u.status,
        u.first_name, u.last_name, u.display_name, u.company, u.phone,
        COALESCE(u.app_id, a.app_id), a.public_id, u.profile, u.created_at, u.activated_at,
        CAST(CASE WHEN u.password_hash LIKE '!%' THEN 0 ELSE 1 END AS BIGINT),
        u.metadata,
        (SELECT COUNT(*) FROM sessions s
          WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > $1)
     FROM users u LEFT JOIN accounts a ON a.id = u.account_id";

#[async_trait]
impl<DB> ManagedUsers for SqlStore<DB>
where
    DB: Dialect + sqlx::database::HasStatementCache,
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
    async fn find_users(&self, instance: InstanceId, f: &UserFilter) -> StoreResult<Page<UserRecord>> {
        let mut args = Args::default();
        args.int(f.now.map(ts).unwrap_or(0));
        let mut sql = format!("{RECORD} WHERE u.instance_id = {}", args.int(instance.0));
        match &f.email {
            Some(EmailMatch::Exact(e)) => sql += &format!(" AND u.email_canonical = {}", args.text(e)),
            Some(EmailMatch::Prefix(p)) => {
                // A range the index serves, then the prefix itself (collations differ on the
                // range's edges).
                let (low, high) = (args.text(p), args.text(&format!("{p}\u{10ffff}")));
                sql += &format!(
                    " AND u.email_canonical >= {low} AND u.email_canonical < {high}
                      AND substr(u.email_canonical, 1, length({low})) = {low}"
                );
            }
            None => {}
        }
        if let Some(u) = &f.username_canonical {
            sql += &format!(" AND u.username_canonical = {}", args.text(u));
        }
        if let Some(p) = &f.phone {
            sql += &format!(" AND u.phone = {}", args.text(p));
        }
        if let Some(s) = f.status {
            sql += &format!(" AND u.status = {}", args.text(s.as_str()));
        }
        if let Some(before) = f.before {
            sql += &format!(" AND u.id < {}", args.int(before));
        }
        sql += &format!(" ORDER BY u.id DESC LIMIT {}", args.int(i64::from(f.limit) + 1));
        let rows = args.bind_to(sqlx::query(&sql)).fetch_all(&self.reader).await.map_err(db_err)?;
        let users = self.with_roles(rows.iter().map(Self::record_from).collect()).await?;
        Ok(Page::of(users, f.limit, |u| u.key))
    }

    async fn user_record(
        &self,
        instance: InstanceId,
        public_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(&format!("{RECORD} WHERE u.instance_id = $2 AND u.public_id = $3"))
            .bind(ts(now))
            .bind(instance.0)
            .bind(public_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        let users = self.with_roles(row.iter().map(Self::record_from).collect()).await?;
        Ok(users.into_iter().next())
    }

    async fn users_after(
        &self,
        instance: InstanceId,
        after: i64,
        limit: u32,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query(&format!(
            "{RECORD} WHERE u.instance_id = $2 AND u.id > $3 AND u.status <> 'deleted' ORDER BY u.id LIMIT $4"
        ))
        .bind(ts(now))
        .bind(instance.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        self.with_roles(rows.iter().map(Self::record_from).collect()).await
    }

    async fn set_user_enabled(
        &self,
        instance: InstanceId,
        user_key: i64,
        enabled: bool,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let sql = if enabled {
            "UPDATE users SET status = CASE WHEN activated_at IS NULL THEN 'pending' ELSE 'active' END
              WHERE instance_id = $1 AND id = $2 AND status = 'inactive'"
        } else {
            "UPDATE users SET status = 'inactive'
              WHERE instance_id = $1 AND id = $2 AND status NOT IN ('inactive', 'deleted')"
        };
        let done =
            sqlx::query(sql).bind(instance.0).bind(user_key).execute(&mut *tx).await.map_err(db_err)?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        if !enabled {
            Self::end_sessions(&mut tx, instance, user_key, ts(audit.at)).await?;
            Self::void_secrets(&mut tx, user_key, None, ts(audit.at)).await?;
        }
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn revoke_user_sessions(
        &self,
        instance: InstanceId,
        user_key: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let n = Self::end_sessions(&mut tx, instance, user_key, ts(audit.at)).await?;
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(n)
    }

    async fn reissue_secret(&self, instance: InstanceId, user_key: i64, r: &Reissue) -> StoreResult<()> {
        let now = ts(r.audit.at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        Self::void_secrets(&mut tx, user_key, Some(r.verification.purpose), now).await?;
        if r.clear_password {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE instance_id = $2 AND id = $3")
                .bind(NO_PASSWORD)
                .bind(instance.0)
                .bind(user_key)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            Self::end_sessions(&mut tx, instance, user_key, now).await?;
        }
        Self::insert_verification(&mut tx, instance, user_key, &r.verification, now).await?;
        Self::insert_outbox(&mut tx, instance, &r.message).await?;
        Self::insert_audit(&mut tx, &r.audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn import_users(
        &self,
        instance: InstanceId,
        users: &[ImportedUser],
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<ImportOutcome>> {
        // Set-based: the batch's known addresses in one look, its users in one statement, their
        // audit entries in one more, whatever the batch's size (three round trips, not three
        // per row: a row-at-a-time import slows as the table grows).
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let now = ts(audit.at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut args = Args::default();
        let instance_arg = args.int(instance.0);
        let wanted: Vec<String> = users.iter().map(|u| args.text(&u.user.email_canonical)).collect();
        let sql = format!(
            "SELECT email_canonical FROM users WHERE instance_id = {instance_arg} AND email_canonical IN ({})",
            wanted.join(", ")
        );
        // Planned afresh every time: a plan cached while the table was small would walk the
        // whole instance once it is not (PostgreSQL keeps a prepared statement's generic plan).
        let known: std::collections::HashSet<String> = args
            .bind_to(sqlx::query(&sql))
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        // New addresses, each once (a second row of one address is its duplicate).
        let mut seen = std::collections::HashSet::new();
        let fresh: Vec<&ImportedUser> = users
            .iter()
            .filter(|u| {
                !known.contains(&u.user.email_canonical) && seen.insert(u.user.email_canonical.clone())
            })
            .collect();
        let fresh_ids: std::collections::HashSet<&str> =
            fresh.iter().map(|u| u.user.public_id.as_str()).collect();
        let mut created = std::collections::HashSet::new();
        if !fresh.is_empty() {
            let mut args = Args::default();
            let mut rows = Vec::with_capacity(fresh.len());
            for i in &fresh {
                let u = &i.user;
                let values = [
                    args.int(instance.0),
                    args.text(&u.public_id),
                    args.text(&u.uuid.to_string()),
                    args.text(&u.email),
                    args.text(&u.email_canonical),
                    args.opt_text(u.username.as_deref()),
                    args.opt_text(u.username_canonical.as_deref()),
                    args.text(&u.name),
                    args.text(&u.language),
                    args.text(u.status.as_str()),
                    args.text(&u.password_hash),
                    args.int(now),
                    args.opt_int((u.status != UserStatus::Pending).then_some(now)),
                    args.opt_text(i.profile.first_name.as_deref()),
                    args.opt_text(i.profile.last_name.as_deref()),
                    args.opt_text(i.profile.display_name.as_deref()),
                    args.opt_text(i.profile.phone.as_deref()),
                    args.opt_text(i.metadata.as_deref()),
                ];
                rows.push(format!("({})", values.join(", ")));
            }
            // Any other unique rule (the username) leaves its row out; the row says so.
            let sql = format!(
                "INSERT INTO users (instance_id, public_id, uuid, email, email_canonical, username,
                   username_canonical, name, language, status, password_hash, created_at, activated_at,
                   first_name, last_name, display_name, phone, metadata)
                 VALUES {} ON CONFLICT DO NOTHING RETURNING public_id",
                rows.join(", ")
            );
            created = args
                .bind_to(sqlx::query(&sql))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
        }
        if !created.is_empty() {
            let mut args = Args::default();
            let mut rows = Vec::with_capacity(created.len());
            let (kind, actor, client, detail, at) = (
                args.text(audit.kind),
                args.text(&audit.actor),
                args.opt_text(audit.client.as_deref()),
                args.text(&audit.detail.to_string()),
                args.int(now),
            );
            let inst = args.opt_int(audit.instance.map(|i| i.0));
            for id in users.iter().map(|u| &u.user.public_id).filter(|id| created.contains(*id)) {
                let id = args.text(id);
                rows.push(format!("({inst}, {kind}, {actor}, {id}, {id}, {client}, {detail}, {at})"));
            }
            let sql = format!(
                "INSERT INTO audit_log (instance_id, type, actor, target, user_id, client, detail, created_at) VALUES {}",
                rows.join(", ")
            );
            args.bind_to(sqlx::query(&sql)).execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(users
            .iter()
            .map(|u| {
                if created.contains(&u.user.public_id) {
                    ImportOutcome::Created
                } else if fresh_ids.contains(u.user.public_id.as_str()) {
                    // A new address whose row another unique rule (the username) refused.
                    ImportOutcome::UsernameTaken
                } else {
                    ImportOutcome::Duplicate
                }
            })
            .collect())
    }

    async fn erase_user(
        &self,
        instance: InstanceId,
        user_key: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let row: Option<(String, String, Option<String>, Option<i64>)> = sqlx::query_as(&DB::locked(
            "SELECT public_id, email, phone, account_id FROM users
              WHERE instance_id = $1 AND id = $2 AND status <> 'deleted'",
        ))
        .bind(instance.0)
        .bind(user_key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some((public_id, email, phone, account)) = row else { return Ok(false) };
        for table in ["sessions", "verifications", "user_roles", "unique_values", "ext_keys"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user_key)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        // Messages to its addresses: their content goes, and what was not sent never will be.
        sqlx::query(
            "UPDATE outbox SET payload = NULL, recipient = '',
                    status = CASE WHEN status = 'delivered' THEN status ELSE 'dead' END,
                    last_error = CASE WHEN status = 'delivered' THEN last_error ELSE 'erased with its user' END
              WHERE instance_id = $1 AND (recipient = $2 OR recipient = $3)",
        )
        .bind(instance.0)
        .bind(&email)
        .bind(phone.as_deref().unwrap_or(&email))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let tombstone = format!("deleted:{public_id}");
        sqlx::query(
            "UPDATE users SET email = $1, email_canonical = $1, username = NULL, username_canonical = NULL,
                    name = '', first_name = NULL, last_name = NULL, display_name = NULL, company = NULL,
                    phone = NULL, profile = NULL, metadata = NULL, password_hash = $2, status = 'deleted'
              WHERE id = $3",
        )
        .bind(&tombstone)
        .bind(NO_PASSWORD)
        .bind(user_key)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some(account) = account {
            // The account's title may name the person; it goes when no one else is in it.
            sqlx::query(
                "UPDATE accounts SET title = '' WHERE id = $1
                   AND NOT EXISTS (SELECT 1 FROM users WHERE account_id = $1 AND status <> 'deleted')",
            )
            .bind(account)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
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
    fn record_from(r: &DB::Row) -> UserRecord {
        UserRecord {
            key: r.get(0),
            public_id: r.get(1),
            uuid: r.get(2),
            email: r.get(3),
            username: r.get(4),
            name: r.get(5),
            language: r.get(6),
            status: status(r.get::<String, _>(7).as_str()),
            profile: UserProfile {
                first_name: r.get(8),
                last_name: r.get(9),
                display_name: r.get(10),
                company: r.get(11),
                phone: r.get(12),
            },
            app_id: r.get(13),
            account_id: r.get(14),
            roles: Vec::new(),
            fields: r.get(15),
            created_at: from_ts(r.get(16)),
            activated_at: r.get::<Option<i64>, _>(17).map(from_ts),
            has_password: r.get::<i64, _>(18) == 1,
            metadata: r.get(19),
            sessions: r.get(20),
        }
    }

    /// `users` with their roles, in one more query.
    async fn with_roles(&self, mut users: Vec<UserRecord>) -> StoreResult<Vec<UserRecord>> {
        if users.is_empty() {
            return Ok(users);
        }
        let mut args = Args::default();
        let keys: Vec<String> = users.iter().map(|u| args.int(u.key)).collect();
        let sql = format!(
            "SELECT user_id, role FROM user_roles WHERE user_id IN ({}) ORDER BY role",
            keys.join(", ")
        );
        let rows = args.bind_to(sqlx::query(&sql)).fetch_all(&self.reader).await.map_err(db_err)?;
        for r in rows {
            let key: i64 = r.get(0);
            if let Some(u) = users.iter_mut().find(|u| u.key == key) {
                u.roles.push(r.get(1));
            }
        }
        Ok(users)
    }

    /// Revoke a user's live sessions; how many.
    pub(super) async fn end_sessions(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        user_key: i64,
        now: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE instance_id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(instance.0)
        .bind(user_key)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
        Ok(DB::rows_affected(&done))
    }

    /// Void a user's live secrets (of `purpose`, or all).
    async fn void_secrets(
        tx: &mut Tx<'_, DB>,
        user_key: i64,
        purpose: Option<Purpose>,
        now: i64,
    ) -> StoreResult<()> {
        let mut args = Args::default();
        let mut sql = format!(
            "UPDATE verifications SET voided_at = {} WHERE user_id = {} AND consumed_at IS NULL AND voided_at IS NULL",
            args.int(now),
            args.int(user_key)
        );
        if let Some(p) = purpose {
            sql += &format!(" AND purpose = {}", args.text(p.as_str()));
        }
        args.bind_to(sqlx::query(&sql)).execute(&mut **tx).await.map_err(db_err).map(|_| ())
    }
}
