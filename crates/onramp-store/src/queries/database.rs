use super::*;

#[async_trait]
impl<DB> Database for SqlStore<DB>
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
    async fn migrate(&self) -> StoreResult<()> {
        DB::migrate(&self.writer).await
    }

    async fn claim_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO cluster_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        let (stored,): (String,) = sqlx::query_as("SELECT value FROM cluster_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(stored)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT CAST(1 AS BIGINT)").execute(&self.reader).await.map_err(db_err).map(|_| ())
    }
}
