use super::*;

/// Columns of `summary_from!`, after which comes `FROM instances i`.
const SUMMARY_COLUMNS: &str = "SELECT i.name, i.status, i.created_at,
        (SELECT COUNT(*) FROM apps a WHERE a.instance_id = i.id),
        (SELECT COUNT(*) FROM users u WHERE u.instance_id = i.id),
        i.id, i.status_detail, (SELECT o.email FROM users o WHERE o.id = i.owner_user_id), i.database_ref";

#[async_trait]
impl<DB> Instances for SqlStore<DB>
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
    async fn ensure_instance(&self, name: &str, key: SigningKeyRecord) -> StoreResult<Instance> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("INSERT INTO instances (name, created_at) VALUES ($1, $2) ON CONFLICT(name) DO NOTHING")
            .bind(name)
            .bind(ts(key.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let id: i64 = sqlx::query_scalar(&DB::locked("SELECT id FROM instances WHERE name = $1"))
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let has_key: Option<i64> =
            sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM signing_keys WHERE instance_id = $1 LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if has_key.is_none() {
            Self::insert_signing_key(&mut tx, id, &key).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Instance { id: InstanceId(id), name: name.into() })
    }

    async fn instance_by_name(&self, name: &str) -> StoreResult<Option<Instance>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM instances WHERE name = $1 AND status = 'active'")
                .bind(name)
                .fetch_optional(&self.reader)
                .await
                .map_err(db_err)?;
        Ok(id.map(|id| Instance { id: InstanceId(id), name: name.into() }))
    }

    async fn create_instance(&self, new: &NewInstance) -> StoreResult<Instance> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let instance = Self::insert_instance(&mut tx, new).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(instance)
    }

    async fn provision_fast_track(&self, new: &NewFastTrack) -> StoreResult<Provisioned> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let provisioned = Self::provision_fast_track_in(&mut tx, new).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(provisioned)
    }

    async fn finish_provisioning(
        &self,
        instance: InstanceId,
        database: &str,
        message: Option<(InstanceId, &NewOutboxMessage)>,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        Self::finish_provisioning_in(&mut tx, instance, database, message).await?;
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn fast_track_claim(
        &self,
        secret_hash: &str,
        answer: Option<ClaimAnswer>,
        now: OffsetDateTime,
    ) -> StoreResult<Result<FastTrackClaim, RedeemError>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let claim = Self::fast_track_claim_in(&mut tx, secret_hash, answer, ts(now)).await?;
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
        let released = Self::release_unconfirmed_in(
            &mut tx,
            ts(created_before),
            email_canonical,
            ts(now),
            i64::from(limit),
        )
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
        let discarded = Self::discard_instance_in(&mut tx, instance).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(discarded)
    }

    async fn delete_instance(&self, instance: InstanceId, audit: &NewAuditEvent) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let deleted =
            Self::remove_instance_in(&mut tx, instance, &["disabled", "provisioning_failed"]).await?;
        if deleted {
            Self::insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(deleted)
    }

    async fn create_instance_database(
        &self,
        instance: &Instance,
        init_sql: Option<&str>,
    ) -> StoreResult<String> {
        DB::create_instance_database(self, instance, init_sql).await
    }

    async fn drop_instance_database(&self, instance: &Instance) -> StoreResult<()> {
        DB::drop_instance_database(self, instance).await
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

    async fn set_instance_active(
        &self,
        name: &str,
        active: bool,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE instances SET status = $1 WHERE name = $2 AND status IN ('active', 'disabled')",
        )
        .bind(if active { "active" } else { "disabled" })
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if DB::rows_affected(&done) != 1 {
            return Ok(false);
        }
        if let Some(audit) = audit {
            Self::insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn signing_keys(&self, instance: InstanceId) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT kid, pkcs8_der, created_at FROM signing_keys WHERE instance_id = $1")
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
