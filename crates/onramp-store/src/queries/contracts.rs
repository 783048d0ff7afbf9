use super::*;

/// A user's SMS code, as the verification row holds it.
pub(super) struct SmsCode {
    id: i64,
    hash: String,
    expires_at: i64,
    attempts: i64,
    /// Neither used nor voided.
    live: bool,
}

#[async_trait]
impl<DB> Contracts for SqlStore<DB>
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
    async fn put_contract(
        &self,
        instance: InstanceId,
        app_id: &str,
        contract: &Contract,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let c = contract;
        let fields = serde_json::to_string(&c.fields).map_err(|e| StoreError::Other(e.to_string()))?;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO contracts (instance_id, app_id, id, fields) VALUES ($1, $2, $3, $4)
             ON CONFLICT (instance_id, app_id, id) DO UPDATE SET fields = excluded.fields",
        )
        .bind(instance.0)
        .bind(app_id)
        .bind(&c.id)
        .bind(fields)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some(audit) = audit {
            Self::insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn contract(&self, instance: InstanceId, app_id: &str, id: &str) -> StoreResult<Option<Contract>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT id, fields FROM contracts WHERE instance_id = $1 AND app_id = $2 AND id = $3",
        )
        .bind(instance.0)
        .bind(app_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        row.map(|(id, fields)| Self::contract_from(id, &fields)).transpose()
    }

    async fn contracts(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Contract>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, fields FROM contracts WHERE instance_id = $1 AND app_id = $2 ORDER BY id",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(|(id, fields)| Self::contract_from(id, &fields)).collect()
    }

    async fn create_contract_account(
        &self,
        instance: InstanceId,
        account: &NewContractAccount,
    ) -> StoreResult<ContractOutcome> {
        let a = account;
        let now = ts(a.created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for (field, value) in &a.unique {
            let holder: Option<(i64, String)> = sqlx::query_as(
                "SELECT u.id, u.status FROM unique_values v JOIN users u ON u.id = v.user_id
                 WHERE v.instance_id = $1 AND v.field = $2 AND v.value = $3",
            )
            .bind(instance.0)
            .bind(field)
            .bind(value)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            if let Some((dp_key, st)) = holder {
                return Ok(ContractOutcome::Exists { dp_key, field: field.clone(), status: status(&st) });
            }
        }
        let profile = UserProfile { phone: a.phone.clone(), ..Default::default() };
        let dp_key = Self::insert_user(&mut tx, instance, &a.user, &profile, now).await?;
        sqlx::query("UPDATE users SET profile = $1, app_id = $2 WHERE id = $3")
            .bind(&a.profile)
            .bind(&a.app_id)
            .bind(dp_key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (field, value) in &a.unique {
            sqlx::query(
                "INSERT INTO unique_values (instance_id, field, value, user_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(instance.0)
            .bind(field)
            .bind(value)
            .bind(dp_key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        if let Some((key_type, key)) = &a.ext_key {
            sqlx::query(
                "INSERT INTO ext_keys (instance_id, key_type, ext_key, user_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(instance.0)
            .bind(key_type)
            .bind(key)
            .bind(dp_key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        if let Some((verification, message)) = &a.sms {
            Self::insert_verification(&mut tx, instance, dp_key, verification, now).await?;
            Self::insert_outbox(&mut tx, instance, message).await?;
        }
        Self::insert_audit_of(&mut tx, &a.audit, dp_key).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ContractOutcome::Created { dp_key })
    }

    async fn contract_account(
        &self,
        instance: InstanceId,
        dp_key: i64,
    ) -> StoreResult<Option<ContractAccount>> {
        let row: Option<(i64, Option<String>, String, String, Option<String>, Option<String>, String)> = sqlx::query_as(
            "SELECT id, app_id, uuid, status, profile, phone, language FROM users WHERE instance_id = $1 AND id = $2",
        )
        .bind(instance.0)
        .bind(dp_key)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        let Some((dp_key, app_id, uuid, st, profile, phone, language)) = row else { return Ok(None) };
        let ext_keys: Vec<(i64, String)> =
            sqlx::query_as("SELECT key_type, ext_key FROM ext_keys WHERE user_id = $1 ORDER BY key_type")
                .bind(dp_key)
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        Ok(Some(ContractAccount {
            dp_key,
            app_id,
            uuid,
            status: status(&st),
            profile,
            phone,
            language,
            ext_keys,
        }))
    }

    async fn verify_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        code_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
        audit: &NewAuditEvent,
    ) -> StoreResult<Result<(), SmsCodeError>> {
        let now = ts(now);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let Some(SmsCode { id, hash, expires_at: expires, attempts, live: true }) =
            Self::latest_sms_code(&mut tx, instance, dp_key).await?
        else {
            return Ok(Err(SmsCodeError::NoCode));
        };
        if expires <= now {
            return Ok(Err(SmsCodeError::Expired));
        }
        if !bool::from(subtle::ConstantTimeEq::ct_eq(hash.as_bytes(), code_hash.as_bytes())) {
            let voided = (attempts + 1 >= i64::from(max_attempts)).then_some(now);
            sqlx::query("UPDATE verifications SET attempts = attempts + 1, voided_at = $1 WHERE id = $2")
                .bind(voided)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            return Ok(Err(SmsCodeError::Wrong));
        }
        sqlx::query("UPDATE verifications SET consumed_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE users SET status = 'active', activated_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(dp_key)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        Self::insert_audit_of(&mut tx, audit, dp_key).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Ok(()))
    }

    async fn resend_sms(
        &self,
        instance: InstanceId,
        dp_key: i64,
        verification: &NewVerification,
        message: &NewOutboxMessage,
        max_attempts: u32,
    ) -> StoreResult<bool> {
        let v = verification;
        let m = message;
        let now = ts(m.created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let pending: Option<String> =
            sqlx::query_scalar("SELECT status FROM users WHERE instance_id = $1 AND id = $2")
                .bind(instance.0)
                .bind(dp_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if pending.as_deref() != Some("pending") {
            return Ok(false);
        }
        // The failures so far stay with the account: a new code does not reset them.
        let attempts =
            Self::latest_sms_code(&mut tx, instance, dp_key).await?.map(|c| c.attempts).unwrap_or(0);
        if attempts >= i64::from(max_attempts) {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE verifications SET voided_at = $1 WHERE user_id = $2 AND purpose = 'sms'
               AND consumed_at IS NULL AND voided_at IS NULL",
        )
        .bind(now)
        .bind(dp_key)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        Self::insert_verification(&mut tx, instance, dp_key, v, now).await?;
        sqlx::query("UPDATE verifications SET attempts = $1 WHERE user_id = $2 AND secret_hash = $3")
            .bind(attempts)
            .bind(dp_key)
            .bind(&v.secret_hash)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        Self::insert_outbox(&mut tx, instance, m).await?;
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
    pub(super) fn contract_from(id: String, fields: &str) -> StoreResult<Contract> {
        let fields =
            serde_json::from_str(fields).map_err(|e| StoreError::Other(format!("contract {id}: {e}")))?;
        Ok(Contract { id, fields })
    }

    /// The user's newest SMS code.
    pub(super) async fn latest_sms_code(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        dp_key: i64,
    ) -> StoreResult<Option<SmsCode>> {
        let row = sqlx::query(&DB::locked(
            "SELECT id, secret_hash, expires_at, attempts, consumed_at, voided_at FROM verifications
             WHERE instance_id = $1 AND user_id = $2 AND purpose = 'sms' ORDER BY id DESC LIMIT 1",
        ))
        .bind(instance.0)
        .bind(dp_key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| SmsCode {
            id: r.get(0),
            hash: r.get(1),
            expires_at: r.get(2),
            attempts: r.get(3),
            live: r.get::<Option<i64>, _>(4).is_none() && r.get::<Option<i64>, _>(5).is_none(),
        }))
    }
}
