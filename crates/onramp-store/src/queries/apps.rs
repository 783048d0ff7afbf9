use super::*;

const API_KEY_COLUMNS: &str =
    "SELECT id, app_id, secret_hash, prefix, label, source, created_at, revoked_at FROM api_keys";

#[async_trait]
impl<DB> Apps for SqlStore<DB>
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
    async fn create_api_key(
        &self,
        instance: InstanceId,
        key: &NewApiKey,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        Self::insert_api_key(&mut tx, instance, key).await?;
        if let Some(audit) = audit {
            Self::insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn api_key_by_hash(
        &self,
        instance: InstanceId,
        secret_hash: &str,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!("{API_KEY_COLUMNS} WHERE instance_id = $1 AND secret_hash = $2"))
            .bind(instance.0)
            .bind(secret_hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(row.as_ref().map(Self::api_key_from))
    }

    async fn list_api_keys(&self, instance: InstanceId) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows =
            sqlx::query(&format!("{API_KEY_COLUMNS} WHERE instance_id = $1 ORDER BY app_id, created_at, id"))
                .bind(instance.0)
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        Ok(rows.iter().map(Self::api_key_from).collect())
    }

    async fn revoke_api_key(
        &self,
        instance: InstanceId,
        id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE instance_id = $2 AND id = $3 AND revoked_at IS NULL",
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

    async fn sync_config_api_keys(
        &self,
        instance: InstanceId,
        app_id: &str,
        keys: &[NewApiKey],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let now = ts(now);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, secret_hash FROM api_keys WHERE instance_id = $1 AND app_id = $2 AND source = 'config'
               AND revoked_at IS NULL",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        for (id, hash) in &existing {
            if !keys.iter().any(|k| &k.secret_hash == hash) {
                sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        for key in keys {
            let known: Option<String> = sqlx::query_scalar("SELECT id FROM api_keys WHERE secret_hash = $1")
                .bind(&key.secret_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            if known.is_none() {
                Self::insert_api_key(&mut tx, instance, key).await?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn app_settings(&self, instance: InstanceId, app_id: &str) -> StoreResult<AppSettings> {
        let row: Option<(Option<String>, Option<i64>, String, bool, String)> = sqlx::query_as(
            "SELECT default_contract, ext_key_type, allowed_origins, browser_partner_calls, reads_accounts_of
             FROM app_settings WHERE instance_id = $1 AND app_id = $2",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row
            .map(|(default_contract, ext_key_type, origins, browser_partner_calls, readers)| AppSettings {
                default_contract,
                ext_key_type,
                allowed_origins: serde_json::from_str(&origins).unwrap_or_default(),
                browser_partner_calls,
                reads_accounts_of: serde_json::from_str(&readers).unwrap_or_default(),
            })
            .unwrap_or_default())
    }

    async fn app_origins(&self, instance: InstanceId) -> StoreResult<Vec<onramp_core::origin::AppOrigins>> {
        let rows: Vec<(String, String, Option<String>, Option<bool>)> = sqlx::query_as(
            "SELECT a.id, a.signup_url, s.allowed_origins, s.browser_partner_calls
             FROM apps a LEFT JOIN app_settings s ON s.instance_id = a.instance_id AND s.app_id = a.id
             WHERE a.instance_id = $1 ORDER BY a.id",
        )
        .bind(instance.0)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(app_id, signup_url, origins, partner)| onramp_core::origin::AppOrigins {
                app_id,
                signup_url,
                allowed_origins: origins.and_then(|o| serde_json::from_str(&o).ok()).unwrap_or_default(),
                browser_partner_calls: partner.unwrap_or(false),
            })
            .collect())
    }

    async fn set_app_settings(
        &self,
        instance: InstanceId,
        app_id: &str,
        settings: &AppSettings,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let s = settings;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let origins =
            serde_json::to_string(&s.allowed_origins).map_err(|e| StoreError::Other(e.to_string()))?;
        let readers =
            serde_json::to_string(&s.reads_accounts_of).map_err(|e| StoreError::Other(e.to_string()))?;
        sqlx::query(
            "INSERT INTO app_settings (instance_id, app_id, default_contract, ext_key_type, allowed_origins,
               browser_partner_calls, reads_accounts_of) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (instance_id, app_id) DO UPDATE SET default_contract = excluded.default_contract,
               ext_key_type = excluded.ext_key_type, allowed_origins = excluded.allowed_origins,
               browser_partner_calls = excluded.browser_partner_calls,
               reads_accounts_of = excluded.reads_accounts_of",
        )
        .bind(instance.0)
        .bind(app_id)
        .bind(&s.default_contract)
        .bind(s.ext_key_type)
        .bind(origins)
        .bind(s.browser_partner_calls)
        .bind(readers)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some(audit) = audit {
            Self::insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn apply_app(&self, instance: InstanceId, spec: &AppSpec) -> StoreResult<()> {
        let app = &spec.app;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO apps (instance_id, id, name, signup_url, activation_token_in_response, schema_version)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT(instance_id, id) DO UPDATE SET name = excluded.name, signup_url = excluded.signup_url,
               activation_token_in_response = excluded.activation_token_in_response,
               schema_version = excluded.schema_version",
        )
        .bind(instance.0)
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.signup_url)
        .bind(app.activation_token_in_response)
        .bind(&app.schema_version)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM domains WHERE instance_id = $1 AND app_id = $2")
            .bind(instance.0)
            .bind(&app.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (position, d) in spec.domains.iter().enumerate() {
            sqlx::query(
                "INSERT INTO domains (instance_id, id, app_id, position, title, description, help, allow_signup)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(instance.0)
            .bind(&d.id)
            .bind(&app.id)
            .bind(position as i64)
            .bind(&d.title)
            .bind(&d.description)
            .bind(&d.help)
            .bind(d.allow_signup)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn app(&self, instance: InstanceId, app_id: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(
            "SELECT id, name, signup_url, activation_token_in_response, schema_version FROM apps
             WHERE instance_id = $1 AND id = $2",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| app_from!(r, 0)))
    }

    async fn app_domains(&self, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Domain>> {
        let rows = sqlx::query(
            "SELECT id, title, description, help, allow_signup FROM domains
             WHERE instance_id = $1 AND app_id = $2 ORDER BY position",
        )
        .bind(instance.0)
        .bind(app_id)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| domain_from!(r, 0)).collect())
    }

    async fn signup_domain(
        &self,
        instance: InstanceId,
        domain_id: &str,
    ) -> StoreResult<Option<(App, Domain)>> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.signup_url, a.activation_token_in_response, a.schema_version,
                    d.id, d.title, d.description, d.help, d.allow_signup
             FROM domains d JOIN apps a ON a.instance_id = d.instance_id AND a.id = d.app_id
             WHERE d.instance_id = $1 AND d.id = $2",
        )
        .bind(instance.0)
        .bind(domain_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| (app_from!(r, 0), domain_from!(r, 5))))
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
    pub(super) async fn insert_api_key(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        k: &NewApiKey,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, instance_id, app_id, secret_hash, prefix, label, source, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.id)
        .bind(instance.0)
        .bind(&k.app_id)
        .bind(&k.secret_hash)
        .bind(&k.prefix)
        .bind(&k.label)
        .bind(k.source)
        .bind(ts(k.created_at))
        .execute(&mut **tx)
        .await
        .map_err(db_err)
        .map(|_| ())
    }

    pub(super) fn api_key_from(r: &DB::Row) -> ApiKeyRecord {
        ApiKeyRecord {
            id: r.get(0),
            app_id: r.get(1),
            secret_hash: r.get(2),
            prefix: r.get(3),
            label: r.get(4),
            source: r.get(5),
            created_at: from_ts(r.get(6)),
            revoked_at: r.get::<Option<i64>, _>(7).map(from_ts),
        }
    }
}
