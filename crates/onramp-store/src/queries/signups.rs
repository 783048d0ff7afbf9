use super::*;

#[async_trait]
impl<DB> Signups for SqlStore<DB>
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
    async fn register_user(
        &self,
        instance: InstanceId,
        registration: &NewRegistration,
    ) -> StoreResult<RegistrationOutcome> {
        let r = registration;
        let now = ts(r.created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing = sqlx::query(&DB::locked(
            "SELECT id, status, email, name FROM users WHERE instance_id = $1 AND email_canonical = $2",
        ))
        .bind(instance.0)
        .bind(&r.user.email_canonical)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let (user_key, outcome) = match existing {
            Some(row)
                if status(row.get::<String, _>(1).as_str()) != UserStatus::Pending
                    || r.verification.is_none() =>
            {
                return Ok(RegistrationOutcome::Exists { email: row.get(2), name: row.get(3) });
            }
            Some(row) => {
                let user_key: i64 = row.get(0);
                let since = r.replace_pending_issued_before;
                if Self::issued_since(&mut tx, user_key, Purpose::EmailConfirm, since).await? {
                    return Ok(RegistrationOutcome::PendingRecently);
                }
                // The earlier registrant of this address loses everything they set.
                let (u, p) = (&r.user, &r.profile);
                sqlx::query(
                    "UPDATE users SET email = $1, username = $2, username_canonical = $3, name = $4, language = $5,
                       password_hash = $6, first_name = $7, last_name = $8, display_name = $9, company = $10,
                       phone = $11, metadata = $13 WHERE id = $12",
                )
                .bind(&u.email)
                .bind(&u.username)
                .bind(&u.username_canonical)
                .bind(&u.name)
                .bind(&u.language)
                .bind(&u.password_hash)
                .bind(&p.first_name)
                .bind(&p.last_name)
                .bind(&p.display_name)
                .bind(&p.company)
                .bind(&p.phone)
                .bind(user_key)
                .bind(metadata_text(&u.metadata))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                for sql in [
                    "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                    "UPDATE verifications SET voided_at = $2 WHERE user_id = $1 AND consumed_at IS NULL AND voided_at IS NULL",
                ] {
                    sqlx::query(sql).bind(user_key).bind(now).execute(&mut *tx).await.map_err(db_err)?;
                }
                sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
                    .bind(user_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                (user_key, RegistrationOutcome::ReplacedPending { user_key })
            }
            None => {
                let user_key = Self::insert_user(&mut tx, instance, &r.user, &r.profile, now).await?;
                (user_key, RegistrationOutcome::Created { user_key })
            }
        };
        if let Some(role) = &r.role {
            Self::grant_role(&mut tx, instance, user_key, role).await?;
        }
        if let Some(verification) = &r.verification {
            Self::insert_verification(&mut tx, instance, user_key, verification, now).await?;
        }
        if let Some(message) = &r.message {
            Self::insert_outbox(&mut tx, instance, message).await?;
        }
        Self::insert_audit_of(&mut tx, &r.audit, user_key).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn redeem_code(
        &self,
        instance: InstanceId,
        redemption: &CodeRedemption,
    ) -> StoreResult<Result<(i64, String), RedeemError>> {
        let c = redemption;
        let now = ts(c.now);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let Some(user) = sqlx::query(&DB::locked(
            "SELECT id, public_id FROM users WHERE instance_id = $1 AND email_canonical = $2",
        ))
        .bind(instance.0)
        .bind(&c.email_canonical)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        else {
            return Ok(Err(RedeemError::NotFound));
        };
        let (user_key, public_id): (i64, String) = (user.get(0), user.get(1));
        let found = sqlx::query(
            "SELECT id, purpose, expires_at, consumed_at, voided_at FROM verifications
             WHERE user_id = $1 AND secret_hash = $2",
        )
        .bind(user_key)
        .bind(&c.secret_hash)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .into_iter()
        .find(|v| c.purposes.iter().any(|p| p.as_str() == v.get::<String, _>(1)));
        let Some(v) = found else {
            // A wrong code counts against every live code of the user; enough of them and
            // those codes are void.
            for purpose in &c.purposes {
                sqlx::query(
                    "UPDATE verifications SET attempts = attempts + 1 WHERE user_id = $1 AND purpose = $2
                       AND consumed_at IS NULL AND voided_at IS NULL",
                )
                .bind(user_key)
                .bind(purpose.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                sqlx::query(
                    "UPDATE verifications SET voided_at = $3 WHERE user_id = $1 AND purpose = $2
                       AND consumed_at IS NULL AND voided_at IS NULL AND attempts >= $4",
                )
                .bind(user_key)
                .bind(purpose.as_str())
                .bind(now)
                .bind(i64::from(c.max_attempts))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
            return Ok(Err(RedeemError::NotFound));
        };
        if v.get::<Option<i64>, _>(3).is_some() || v.get::<Option<i64>, _>(4).is_some() {
            return Ok(Err(RedeemError::AlreadyUsed));
        }
        if v.get::<i64, _>(2) <= now {
            return Ok(Err(RedeemError::Expired));
        }
        let consumed =
            sqlx::query("UPDATE verifications SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
                .bind(now)
                .bind(v.get::<i64, _>(0))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        if DB::rows_affected(&consumed) != 1 {
            return Ok(Err(RedeemError::AlreadyUsed));
        }
        sqlx::query(
            "UPDATE users SET password_hash = $1,
               status = CASE WHEN status = 'pending' THEN 'active' ELSE status END,
               activated_at = COALESCE(activated_at, $2) WHERE id = $3",
        )
        .bind(&c.new_password_hash)
        .bind(now)
        .bind(user_key)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for sql in [
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            "UPDATE verifications SET voided_at = $2 WHERE user_id = $1 AND consumed_at IS NULL AND voided_at IS NULL",
        ] {
            sqlx::query(sql).bind(user_key).bind(now).execute(&mut *tx).await.map_err(db_err)?;
        }
        let redeemed = c.purposes.iter().find(|p| p.as_str() == v.get::<String, _>(1));
        let mut audit = c.audit.clone();
        audit.kind = redeemed.map_or(audit.kind, |p| onramp_core::audit::redeemed(*p));
        audit.user = Some(public_id.clone());
        audit.target = Some(public_id.clone());
        Self::insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Ok((user_key, public_id)))
    }

    async fn create_signup(&self, instance: InstanceId, s: &NewSignup) -> StoreResult<SignupOutcome> {
        // The common case, a new address, in one statement where the database can. Any unique
        // violation falls back to the transaction below, which looks at the email first, so
        // the answer is the same as it would have been.
        match DB::insert_new_signup(&self.writer, instance, s).await {
            Ok(true) => return Ok(SignupOutcome::Created),
            Ok(false) | Err(StoreError::Unique(_)) => {}
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
        audit: &NewAuditEvent,
    ) -> StoreResult<Result<ActivatedSignup, RedeemError>> {
        // A task of its own, so a caller that goes away (a client that disconnects, a request
        // timeout) cannot stop it between statements: SQLite's batch would leave its
        // transaction open on the only writer connection. Started, an activation completes.
        let (writer, secret_hash, audit) = (self.writer.clone(), secret_hash.to_owned(), audit.clone());
        tokio::spawn(async move {
            DB::activate_signup_at_once(&writer, instance, &secret_hash, ts(now), &audit).await
        })
        .await
        .map_err(|e| StoreError::Other(format!("the activation task ended: {e}")))?
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
    /// Was a live `purpose` secret issued to `user` after `since`? (An unverified registration
    /// is replaced by a new one only when its mail did not just go out.)
    async fn issued_since(
        tx: &mut Tx<'_, DB>,
        user: i64,
        purpose: Purpose,
        since: OffsetDateTime,
    ) -> StoreResult<bool> {
        let recent: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM verifications WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL
                   AND voided_at IS NULL AND created_at > $3 LIMIT 1",
        )
        .bind(user)
        .bind(purpose.as_str())
        .bind(ts(since))
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
        Ok(recent.is_some())
    }

    pub(super) async fn create_signup_once(
        &self,
        instance: InstanceId,
        s: &NewSignup,
    ) -> StoreResult<SignupOutcome> {
        let now = ts(s.message.created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing = sqlx::query(&DB::locked("SELECT id, status, email, name, account_id FROM users WHERE instance_id = $1 AND email_canonical = $2"))
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
                let since = s.replace_pending_issued_before;
                if Self::issued_since(&mut tx, user_id, Purpose::Activation, since).await? {
                    return Ok(SignupOutcome::PendingRecently);
                }
                let account_id: Option<i64> = r.get(4);
                sqlx::query(
                    "UPDATE users SET email = $1, username = $2, username_canonical = $3, name = $4, language = $5,
                       password_hash = $6, metadata = $8 WHERE id = $7",
                )
                .bind(&s.user.email)
                .bind(&s.user.username)
                .bind(&s.user.username_canonical)
                .bind(&s.user.name)
                .bind(&s.user.language)
                .bind(&s.user.password_hash)
                .bind(user_id)
                .bind(metadata_text(&s.user.metadata))
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
                       username_canonical, name, language, status, password_hash, created_at, metadata)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
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
                .bind(metadata_text(&u.metadata))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                (user_id, SignupOutcome::Created)
            }
        };
        Self::insert_verification(&mut tx, instance, user_id, &s.verification, now).await?;
        Self::insert_outbox(&mut tx, instance, &s.message).await?;
        Self::insert_audit_of(&mut tx, &s.audit, user_id).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }
}
