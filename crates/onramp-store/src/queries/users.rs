use super::*;

/// The columns of a user view, then its role (one row per role).
const USER_VIEW: &str = "SELECT u.id, u.public_id, u.email, u.name, u.status, u.first_name, u.last_name,
        u.display_name, u.company, u.phone, r.role
     FROM users u LEFT JOIN user_roles r ON r.user_id = u.id";

#[async_trait]
impl<DB> Users for SqlStore<DB>
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
    async fn user_by_email(
        &self,
        instance: InstanceId,
        email_canonical: &str,
    ) -> StoreResult<Option<UserView>> {
        // One round trip whether or not the address is known: a reset must not answer
        // later for a known address.
        let rows = sqlx::query(&format!(
            "{USER_VIEW} WHERE u.instance_id = $1 AND u.email_canonical = $2 ORDER BY r.role"
        ))
        .bind(instance.0)
        .bind(email_canonical)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(Self::user_view_of(&rows))
    }

    async fn issue_secret(
        &self,
        instance: InstanceId,
        user_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
    ) -> StoreResult<()> {
        let v = verification;
        let m = message;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        Self::insert_verification(&mut tx, instance, user_key, v, ts(m.created_at)).await?;
        Self::insert_outbox(&mut tx, instance, m).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn redeem_secret(
        &self,
        instance: InstanceId,
        purpose: Purpose,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Result<(i64, String), RedeemError>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let redeemed = Self::redeem_secret_in(&mut tx, instance, purpose, secret_hash, ts(now)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(redeemed)
    }

    async fn user_view(&self, instance: InstanceId, user_key: i64) -> StoreResult<Option<UserView>> {
        let rows =
            sqlx::query(&format!("{USER_VIEW} WHERE u.instance_id = $1 AND u.id = $2 ORDER BY r.role"))
                .bind(instance.0)
                .bind(user_key)
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        Ok(Self::user_view_of(&rows))
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
            sqlx::query(sql).bind(instance.0).bind(key).fetch_optional(&self.reader).await.map_err(db_err)?;
        Ok(row.map(|r| LoginRecord {
            user_key: r.get(0),
            public_id: r.get(1),
            status: status(r.get::<String, _>(2).as_str()),
            password_hash: r.get(3),
        }))
    }

    async fn insert_users(
        &self,
        instance: InstanceId,
        users: &[NewUser],
        created_at: OffsetDateTime,
    ) -> StoreResult<u64> {
        // Rows per statement: 13 values each, well under both databases' limit on parameters.
        const ROWS: usize = 1000;
        let now = ts(created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut inserted = 0;
        for chunk in users.chunks(ROWS) {
            let mut sql = String::from(
                "INSERT INTO users (instance_id, public_id, uuid, email, email_canonical, username,
                   username_canonical, name, language, status, password_hash, created_at, activated_at) VALUES ",
            );
            for row in 0..chunk.len() {
                let n = row * 13;
                let values: Vec<String> = (1..=13).map(|c| format!("${}", n + c)).collect();
                sql.push_str(if row == 0 { "(" } else { ", (" });
                sql.push_str(&values.join(", "));
                sql.push(')');
            }
            let mut insert = sqlx::query(&sql);
            for u in chunk {
                insert = insert
                    .bind(instance.0)
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
                    .bind(now)
                    .bind((u.status == UserStatus::Active).then_some(now));
            }
            let done = insert.execute(&mut *tx).await.map_err(db_err)?;
            inserted += DB::rows_affected(&done);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(inserted)
    }

    async fn set_password_hash(&self, instance: InstanceId, user_key: i64, hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE instance_id = $2 AND id = $3")
            .bind(hash)
            .bind(instance.0)
            .bind(user_key)
            .execute(&self.writer)
            .await
            .map_err(db_err)
            .map(|_| ())
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
    /// A secret of `purpose` that may still be used (locked for this transaction), or why not:
    /// unknown or voided (`NotFound`), used, or expired.
    pub(super) async fn live_secret_in(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        purpose: Purpose,
        secret_hash: &str,
        now: i64,
    ) -> StoreResult<Result<crate::sql::LiveSecret, RedeemError>> {
        let Some(v) = sqlx::query(&DB::locked(
            "SELECT v.id, v.user_id, v.expires_at, v.consumed_at, v.voided_at, u.public_id, u.email
             FROM verifications v JOIN users u ON u.id = v.user_id
             WHERE v.instance_id = $1 AND v.purpose = $2 AND v.secret_hash = $3",
        ))
        .bind(instance.0)
        .bind(purpose.as_str())
        .bind(secret_hash)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        else {
            return Ok(Err(RedeemError::NotFound));
        };
        if v.get::<Option<i64>, _>(3).is_some() {
            return Ok(Err(RedeemError::AlreadyUsed));
        }
        if v.get::<Option<i64>, _>(4).is_some() {
            return Ok(Err(RedeemError::NotFound));
        }
        let expires_at: i64 = v.get(2);
        if expires_at <= now {
            return Ok(Err(RedeemError::Expired));
        }
        Ok(Ok(crate::sql::LiveSecret {
            id: v.get(0),
            user_key: v.get(1),
            expires_at,
            public_id: v.get(5),
            email: v.get(6),
        }))
    }

    pub(super) async fn redeem_secret_in(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        purpose: Purpose,
        secret_hash: &str,
        now: i64,
    ) -> StoreResult<Result<(i64, String), RedeemError>> {
        let v = match Self::live_secret_in(tx, instance, purpose, secret_hash, now).await? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let consumed =
            sqlx::query("UPDATE verifications SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
                .bind(now)
                .bind(v.id)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
        if DB::rows_affected(&consumed) != 1 {
            return Ok(Err(RedeemError::AlreadyUsed));
        }
        Ok(Ok((v.user_key, v.public_id)))
    }

    /// A user and its roles from `USER_VIEW` rows.
    pub(super) fn user_view_of(rows: &[DB::Row]) -> Option<UserView> {
        let r = rows.first()?;
        Some(UserView {
            key: r.get(0),
            public_id: r.get(1),
            email: r.get(2),
            name: r.get(3),
            status: status(r.get::<String, _>(4).as_str()),
            profile: UserProfile {
                first_name: r.get(5),
                last_name: r.get(6),
                display_name: r.get(7),
                company: r.get(8),
                phone: r.get(9),
            },
            roles: rows.iter().filter_map(|row| row.get::<Option<String>, _>(10)).collect(),
        })
    }

    pub(super) async fn insert_verification(
        tx: &mut Tx<'_, DB>,
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
}
