use super::*;

/// An outbox entry's columns (see `entry_from`).
const ENTRY: &str = "SELECT o.id, o.instance_id, i.name, o.kind, o.recipient, o.status, o.attempts,
        o.next_attempt_at, o.last_error, o.created_at
     FROM outbox o JOIN instances i ON i.id = o.instance_id";

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
    async fn requeue_dead_outbox(
        &self,
        instance: Option<InstanceId>,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
               last_error = NULL WHERE status = 'dead' AND payload IS NOT NULL
               AND ($2 IS NULL OR instance_id = $2)",
        )
        .bind(ts(now))
        .bind(instance.map(|i| i.0))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let n = DB::rows_affected(&done);
        if n > 0 {
            let mut audit = audit.clone();
            audit.detail["messages"] = n.into();
            Self::insert_audit(&mut tx, &audit).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(n)
    }

    async fn list_outbox(&self, f: &OutboxFilter) -> StoreResult<Page<OutboxEntry>> {
        let mut args = Args::default();
        let mut sql = format!("{ENTRY} WHERE 1 = 1");
        if let Some(status) = &f.status {
            sql += &format!(" AND o.status = {}", args.text(status));
        }
        if let Some(instance) = f.instance {
            sql += &format!(" AND o.instance_id = {}", args.int(instance.0));
        }
        if let Some(before) = f.before {
            sql += &format!(" AND o.id < {}", args.int(before));
        }
        sql += &format!(" ORDER BY o.id DESC LIMIT {}", args.int(i64::from(f.limit) + 1));
        let rows = args.bind_to(sqlx::query(&sql)).fetch_all(&self.reader).await.map_err(db_err)?;
        let entries = rows.iter().map(|r| Self::entry_from(r).1).collect();
        Ok(Page::of(entries, f.limit, |e| e.id))
    }

    async fn outbox_entry(&self, id: i64) -> StoreResult<Option<(InstanceId, OutboxEntry)>> {
        let row = sqlx::query(&format!("{ENTRY} WHERE o.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(row.as_ref().map(Self::entry_from))
    }

    async fn retry_outbox(&self, id: i64, now: OffsetDateTime, audit: &NewAuditEvent) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
               last_error = NULL WHERE id = $2 AND status IN ('pending', 'dead') AND payload IS NOT NULL",
        )
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
    fn entry_from(r: &DB::Row) -> (InstanceId, OutboxEntry) {
        let entry = OutboxEntry {
            id: r.get(0),
            instance: r.get(2),
            kind: r.get(3),
            recipient: r.get(4),
            status: r.get(5),
            attempts: u32::try_from(r.get::<i64, _>(6)).unwrap_or(0),
            next_attempt_at: from_ts(r.get(7)),
            last_error: r.get(8),
            created_at: from_ts(r.get(9)),
        };
        (InstanceId(r.get(1)), entry)
    }

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
