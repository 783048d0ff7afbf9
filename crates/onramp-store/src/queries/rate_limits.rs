use super::*;

#[async_trait]
impl<DB> RateLimits for SqlStore<DB>
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
    async fn rate_limit_hit(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u32> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let hits: i64 = sqlx::query_scalar(
            "INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
             ON CONFLICT(key, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits",
        )
        .bind(key)
        .bind(ts(window_start))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if hits == 1 {
            // A new window: a good moment to drop windows that ended long ago.
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
                .bind(ts(now - Duration::days(1)))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(u32::try_from(hits).unwrap_or(u32::MAX))
    }
}
