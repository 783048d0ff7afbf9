use super::*;

#[async_trait]
impl<DB> Sessions for SqlStore<DB>
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
    async fn create_session(
        &self,
        instance: InstanceId,
        s: &SessionRecord,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn session(&self, instance: InstanceId, id: &str) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id, user_id, user_public_id, issued_at, expires_at, revoked_at FROM sessions
             WHERE instance_id = $1 AND id = $2",
        )
        .bind(instance.0)
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| session_from!(r)))
    }

    async fn revoke_session(
        &self,
        instance: InstanceId,
        id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE instance_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(instance.0)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if DB::rows_affected(&done) != 1 {
            return Ok(false);
        }
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}
