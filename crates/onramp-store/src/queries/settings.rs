use super::*;

#[async_trait]
impl<DB> InstanceSettings for SqlStore<DB>
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
    async fn instance_settings(&self, instance: InstanceId) -> StoreResult<UserServiceSettings> {
        let row = sqlx::query(
            "SELECT open_registration, open_reg_role, open_reg_email_service, open_reg_email_template, allow_keyless,
               default_language FROM instance_settings WHERE instance_id = $1",
        )
        .bind(instance.0)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(row
            .map(|r| UserServiceSettings {
                open_registration: r.get(0),
                open_reg_role: r.get(1),
                open_reg_email_service: r.get(2),
                open_reg_email_template: r.get(3),
                allow_keyless: r.get(4),
                default_language: r.get(5),
            })
            .unwrap_or_default())
    }

    async fn set_instance_settings(
        &self,
        instance: InstanceId,
        settings: &UserServiceSettings,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let s = settings;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO instance_settings (instance_id, open_registration, open_reg_role, open_reg_email_service,
               open_reg_email_template, allow_keyless, default_language) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (instance_id) DO UPDATE SET open_registration = excluded.open_registration,
               open_reg_role = excluded.open_reg_role, open_reg_email_service = excluded.open_reg_email_service,
               open_reg_email_template = excluded.open_reg_email_template, allow_keyless = excluded.allow_keyless,
               default_language = excluded.default_language",
        )
        .bind(instance.0)
        .bind(s.open_registration)
        .bind(&s.open_reg_role)
        .bind(&s.open_reg_email_service)
        .bind(&s.open_reg_email_template)
        .bind(s.allow_keyless)
        .bind(&s.default_language)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some(audit) = audit {
            Self::insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn ensure_roles(
        &self,
        instance: InstanceId,
        roles: &[RoleSpec],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let now = ts(now);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for role in roles {
            sqlx::query(
                "INSERT INTO roles (instance_id, name, description, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (instance_id, name) DO NOTHING",
            )
            .bind(instance.0)
            .bind(&role.name)
            .bind(&role.description)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }
}
