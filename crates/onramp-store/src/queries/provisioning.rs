use super::*;

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
    /// Insert the instance (state `provisioning`) with its key, roles and default app.
    pub(super) async fn insert_instance(tx: &mut Tx<'_, DB>, new: &NewInstance) -> StoreResult<Instance> {
        let now = ts(new.created_at);
        let (base, exact, avoid) = match &new.naming {
            InstanceNaming::Exact(name) => (name.clone(), true, &[][..]),
            InstanceNaming::FirstFree { base, avoid } => (base.clone(), false, &avoid[..]),
        };
        let mut found = None;
        // A concurrent transaction may take a candidate between our look and our insert;
        // `ON CONFLICT DO NOTHING` then yields no row (PostgreSQL waits for that
        // transaction first) and the next look sees its name.
        for _ in 0..8 {
            let candidates = if exact {
                vec![base.clone()]
            } else {
                // `base` and every `base-…`: the names from `base-` up to (not including)
                // `base.`, the character after '-', so the unique index on names serves it.
                let taken: std::collections::HashSet<String> = sqlx::query_scalar(
                    "SELECT name FROM instances WHERE name = $1 OR (name >= $2 AND name < $3)",
                )
                .bind(&base)
                .bind(format!("{base}-"))
                .bind(format!("{base}."))
                .fetch_all(&mut **tx)
                .await
                .map_err(db_err)?
                .into_iter()
                .collect();
                crate::sql::free_candidates(&base, &taken, avoid, 4)
            };
            for name in candidates {
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO instances (name, status, created_at) VALUES ($1, 'provisioning', $2)
                     ON CONFLICT (name) DO NOTHING RETURNING id",
                )
                .bind(&name)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?;
                if let Some(id) = id {
                    found = Some(Instance { id: InstanceId(id), name });
                    break;
                }
            }
            if found.is_some() || exact {
                break;
            }
        }
        let instance = found.ok_or(StoreError::Unique(UniqueKey::InstanceName))?;
        Self::insert_signing_key(tx, instance.id.0, &new.key).await?;
        for role in &new.roles {
            sqlx::query(
                "INSERT INTO roles (instance_id, name, description, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(instance.id.0)
            .bind(&role.name)
            .bind(&role.description)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        }
        let app = &new.app;
        sqlx::query(
            "INSERT INTO apps (instance_id, id, name, signup_url, activation_token_in_response, schema_version)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(instance.id.0)
        .bind(&app.id)
        .bind(&app.name)
        .bind(app.signup_url.replace("{instance}", &instance.name))
        .bind(app.activation_token_in_response)
        .bind(&app.schema_version)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
        Ok(instance)
    }

    /// Insert a user with profile fields; returns its key.
    pub(super) async fn insert_user(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        u: &NewUser,
        p: &UserProfile,
        now: i64,
    ) -> StoreResult<i64> {
        let activated_at = (u.status == UserStatus::Active).then_some(now);
        sqlx::query_scalar(
            "INSERT INTO users (instance_id, public_id, uuid, email, email_canonical, username,
               username_canonical, name, language, status, password_hash, created_at, activated_at,
               first_name, last_name, display_name, company, phone, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
             RETURNING id",
        )
        .bind(instance.0)
        .bind(&u.public_id)
        .bind(u.uuid.to_string())
        .bind(&u.email)
        .bind(&u.email_canonical)
        .bind(&u.username)
        .bind(&u.username_canonical)
        .bind(&u.name)
        .bind(&u.language)
        .bind(u.status.as_str())
        .bind(&u.password_hash)
        .bind(now)
        .bind(activated_at)
        .bind(&p.first_name)
        .bind(&p.last_name)
        .bind(&p.display_name)
        .bind(&p.company)
        .bind(&p.phone)
        .bind(metadata_text(&u.metadata))
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)
    }

    pub(super) async fn grant_role(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        user: i64,
        role: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO user_roles (instance_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(instance.0)
            .bind(user)
            .bind(role)
            .execute(&mut **tx)
            .await
            .map_err(db_err)
            .map(|_| ())
    }

    pub(super) async fn provision_fast_track_in(
        tx: &mut Tx<'_, DB>,
        new: &NewFastTrack,
    ) -> StoreResult<Provisioned> {
        let now = ts(new.instance.created_at);
        let platform: i64 = sqlx::query_scalar("SELECT id FROM instances WHERE name = $1")
            .bind(PLATFORM_INSTANCE)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::Other("the platform instance is missing".into()))?;
        let owner_key = Self::insert_user(tx, InstanceId(platform), &new.owner, &new.profile, now).await?;
        Self::insert_verification(tx, InstanceId(platform), owner_key, &new.claim, now).await?;
        Self::insert_audit_of(tx, &new.audit, owner_key).await?;
        let instance = Self::insert_instance(tx, &new.instance).await?;
        sqlx::query("UPDATE instances SET owner_user_id = $1 WHERE id = $2")
            .bind(owner_key)
            .bind(instance.id.0)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        let admin_key = Self::insert_user(tx, instance.id, &new.admin, &new.profile, now).await?;
        Self::grant_role(tx, instance.id, admin_key, &new.admin_role).await?;
        Self::insert_verification(tx, instance.id, admin_key, &new.login, now).await?;
        Ok(Provisioned { instance, owner_key, admin_key })
    }

    pub(super) async fn finish_provisioning_in(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        database: &str,
        message: Option<(InstanceId, &NewOutboxMessage)>,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE instances SET status = 'active', status_detail = NULL, database_ref = $1
             WHERE id = $2 AND status IN ('provisioning', 'provisioning_failed')",
        )
        .bind(database)
        .bind(instance.0)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
        if DB::rows_affected(&done) != 1 {
            return Err(StoreError::Other("the instance is not being provisioned".into()));
        }
        if let Some((from, message)) = message {
            Self::insert_outbox(tx, from, message).await?;
        }
        Ok(())
    }

    pub(super) async fn discard_instance_in(tx: &mut Tx<'_, DB>, instance: InstanceId) -> StoreResult<bool> {
        Self::remove_instance_in(tx, instance, &["provisioning", "provisioning_failed"]).await
    }

    /// Delete an instance in one of `statuses` with every row it has (its audit entries stay,
    /// the record of what happened) and the platform user who owns it, unless it owns another.
    pub(super) async fn remove_instance_in(
        tx: &mut Tx<'_, DB>,
        instance: InstanceId,
        statuses: &[&str],
    ) -> StoreResult<bool> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as(&DB::locked("SELECT status, owner_user_id FROM instances WHERE id = $1"))
                .bind(instance.0)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?;
        let Some((status, owner)) = row else { return Ok(false) };
        if !statuses.contains(&status.as_str()) {
            return Err(StoreError::Other(format!("an instance that is {status} is not deleted")));
        }
        for sql in [
            "DELETE FROM admin_tokens WHERE instance_id = $1",
            "DELETE FROM invitations WHERE instance_id = $1",
            "DELETE FROM user_roles WHERE instance_id = $1",
            "DELETE FROM sessions WHERE instance_id = $1",
            "DELETE FROM verifications WHERE instance_id = $1",
            "DELETE FROM outbox WHERE instance_id = $1",
            "DELETE FROM domains WHERE instance_id = $1",
            "DELETE FROM api_keys WHERE instance_id = $1",
            "DELETE FROM contracts WHERE instance_id = $1",
            "DELETE FROM app_settings WHERE instance_id = $1",
            "DELETE FROM apps WHERE instance_id = $1",
            "DELETE FROM unique_values WHERE instance_id = $1",
            "DELETE FROM ext_keys WHERE instance_id = $1",
            "DELETE FROM users WHERE instance_id = $1",
            "DELETE FROM accounts WHERE instance_id = $1",
            "DELETE FROM roles WHERE instance_id = $1",
            "DELETE FROM instance_settings WHERE instance_id = $1",
            "DELETE FROM signing_keys WHERE instance_id = $1",
            "DELETE FROM instances WHERE id = $1",
        ] {
            sqlx::query(sql).bind(instance.0).execute(&mut **tx).await.map_err(db_err)?;
        }
        // The dashboard user goes with the instance it was made for, unless it owns another.
        if let Some(owner) = owner {
            let owns_more: Option<i64> =
                sqlx::query_scalar("SELECT id FROM instances WHERE owner_user_id = $1 LIMIT 1")
                    .bind(owner)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_err)?;
            if owns_more.is_none() {
                for sql in [
                    "DELETE FROM user_roles WHERE user_id = $1",
                    "DELETE FROM sessions WHERE user_id = $1",
                    "DELETE FROM verifications WHERE user_id = $1",
                    "DELETE FROM users WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(owner).execute(&mut **tx).await.map_err(db_err)?;
                }
            }
        }
        Ok(true)
    }

    pub(super) async fn insert_signing_key(
        tx: &mut Tx<'_, DB>,
        instance_id: i64,
        key: &SigningKeyRecord,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (instance_id, kid, pkcs8_der, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(instance_id)
        .bind(&key.kid)
        .bind(&key.pkcs8_der)
        .bind(ts(key.created_at))
        .execute(&mut **tx)
        .await
        .map_err(db_err)
        .map(|_| ())
    }
}
