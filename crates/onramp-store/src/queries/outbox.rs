use super::*;

#[async_trait]
impl<DB> Outbox for SqlStore<DB>
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
    async fn requeue_dead_outbox(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let now = ts(now);
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
               last_error = NULL WHERE status = 'dead' AND payload IS NOT NULL",
        )
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(DB::rows_affected(&done))
    }

    async fn enqueue(&self, instance: InstanceId, message: &NewOutboxMessage) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        Self::insert_outbox(&mut tx, instance, message).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET lease_until = $1
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $2
                          AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT $3{})
             RETURNING id, instance_id, kind, recipient, message_id, payload, attempts",
            DB::SKIP_LOCKED
        ))
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
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, payload = NULL, lease_until = NULL,
               attempts = attempts + 1 WHERE id = $2",
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
            "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at),
               lease_until = NULL, last_error = $4 WHERE id = $5",
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
        let rows: Vec<(i64, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, kind, status, attempts, last_error FROM outbox
             WHERE status IN ('pending', 'dead') AND last_error IS NOT NULL ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, status, attempts, last_error)| onramp_core::model::OutboxFailure {
                id,
                kind,
                status,
                attempts: u32::try_from(attempts).unwrap_or(0),
                last_error,
            })
            .collect())
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
    pub(super) async fn insert_outbox(
        tx: &mut Tx<'_, DB>,
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
}
