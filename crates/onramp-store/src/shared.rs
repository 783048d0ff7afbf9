//! Queries whose SQL is the same on both databases (both accept `$n` placeholders, `RETURNING`
//! and `ON CONFLICT`): instance provisioning, single-use secrets, user views, instance
//! summaries. `shared_queries!` expands them into each backend's module with that backend's
//! transaction type, so there is one copy of the code and each backend's functions stay plain.

/// Columns of `summary_from!`, after which comes `FROM instances i`.
pub(crate) const SUMMARY_COLUMNS: &str = "SELECT i.name, i.status, i.created_at,
        (SELECT COUNT(*) FROM apps a WHERE a.instance_id = i.id),
        (SELECT COUNT(*) FROM users u WHERE u.instance_id = i.id),
        i.id, i.status_detail, (SELECT o.email FROM users o WHERE o.id = i.owner_user_id), i.database_ref";

/// The first free names for `base`, given the names that are taken and those to avoid.
pub(crate) fn free_candidates(
    base: &str,
    taken: &std::collections::HashSet<String>,
    avoid: &[String],
    count: usize,
) -> Vec<String> {
    (0u32..)
        .map(|n| onramp_core::instance_name::candidate(base, n))
        .filter(|name| !taken.contains(name) && !avoid.contains(name))
        .take(count)
        .collect()
}

/// A secret that may still be used, with its user.
pub(crate) struct LiveSecret {
    pub id: i64,
    pub user_key: i64,
    pub expires_at: i64,
    pub public_id: String,
    pub email: String,
}

macro_rules! shared_queries {
    ($db:ty, $for_update:literal) => {
        type Tx<'c> = sqlx::Transaction<'c, $db>;

        /// Insert the instance (state `provisioning`) with its key, roles and default app.
        async fn insert_instance(tx: &mut Tx<'_>, new: &NewInstance) -> StoreResult<Instance> {
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
                    let taken: std::collections::HashSet<String> =
                        sqlx::query_scalar("SELECT name FROM instances WHERE name = $1 OR name LIKE $2")
                            .bind(&base)
                            .bind(format!("{base}-%"))
                            .fetch_all(&mut **tx)
                            .await
                            .map_err(db_err)?
                            .into_iter()
                            .collect();
                    $crate::shared::free_candidates(&base, &taken, avoid, 4)
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
            insert_signing_key(tx, instance.id.0, &new.key).await?;
            for role in &new.roles {
                sqlx::query("INSERT INTO roles (instance_id, name, description, created_at) VALUES ($1, $2, $3, $4)")
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
        async fn insert_user(
            tx: &mut Tx<'_>,
            instance: InstanceId,
            u: &NewUser,
            p: &UserProfile,
            now: i64,
        ) -> StoreResult<i64> {
            let activated_at = (u.status == UserStatus::Active).then_some(now);
            sqlx::query_scalar(
                "INSERT INTO users (instance_id, public_id, uuid, email, email_canonical, username,
                   username_canonical, name, language, status, password_hash, created_at, activated_at,
                   first_name, last_name, display_name, company, phone)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
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
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)
        }

        async fn grant_role(tx: &mut Tx<'_>, instance: InstanceId, user: i64, role: &str) -> StoreResult<()> {
            sqlx::query("INSERT INTO user_roles (instance_id, user_id, role) VALUES ($1, $2, $3)")
                .bind(instance.0)
                .bind(user)
                .bind(role)
                .execute(&mut **tx)
                .await
                .map_err(db_err)
                .map(|_| ())
        }

        async fn provision_fast_track_in(tx: &mut Tx<'_>, new: &NewFastTrack) -> StoreResult<Provisioned> {
            let now = ts(new.instance.created_at);
            let platform: i64 = sqlx::query_scalar("SELECT id FROM instances WHERE name = $1")
                .bind(PLATFORM_INSTANCE)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?
                .ok_or_else(|| StoreError::Other("the platform instance is missing".into()))?;
            let owner_key = insert_user(tx, InstanceId(platform), &new.owner, &new.profile, now).await?;
            insert_verification(tx, InstanceId(platform), owner_key, &new.claim, now).await?;
            let instance = insert_instance(tx, &new.instance).await?;
            sqlx::query("UPDATE instances SET owner_user_id = $1 WHERE id = $2")
                .bind(owner_key)
                .bind(instance.id.0)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            let admin_key = insert_user(tx, instance.id, &new.admin, &new.profile, now).await?;
            grant_role(tx, instance.id, admin_key, &new.admin_role).await?;
            insert_verification(tx, instance.id, admin_key, &new.login, now).await?;
            Ok(Provisioned { instance, owner_key, admin_key })
        }

        async fn finish_provisioning_in(
            tx: &mut Tx<'_>,
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
            if done.rows_affected() != 1 {
                return Err(StoreError::Other("the instance is not being provisioned".into()));
            }
            if let Some((from, message)) = message {
                insert_outbox(tx, from, message).await?;
            }
            Ok(())
        }

        async fn discard_instance_in(tx: &mut Tx<'_>, instance: InstanceId) -> StoreResult<bool> {
            let row: Option<(String, Option<i64>)> = sqlx::query_as(concat!(
                "SELECT status, owner_user_id FROM instances WHERE id = $1",
                $for_update
            ))
            .bind(instance.0)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
            let Some((status, owner)) = row else { return Ok(false) };
            if status != "provisioning" && status != "provisioning_failed" {
                return Err(StoreError::Other("only an instance that never became active is discarded".into()));
            }
            for sql in [
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
                let owns_more: Option<i64> = sqlx::query_scalar("SELECT id FROM instances WHERE owner_user_id = $1 LIMIT 1")
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

        async fn platform_id(tx: &mut Tx<'_>) -> StoreResult<i64> {
            sqlx::query_scalar("SELECT id FROM instances WHERE name = $1")
                .bind(PLATFORM_INSTANCE)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?
                .ok_or_else(|| StoreError::Other("the platform instance is missing".into()))
        }

        /// A FastTrack claim secret, looked at (`answer: None`) or used.
        async fn fast_track_claim_in(
            tx: &mut Tx<'_>,
            secret_hash: &str,
            answer: Option<ClaimAnswer>,
            now: i64,
        ) -> StoreResult<Result<FastTrackClaim, RedeemError>> {
            let platform = platform_id(tx).await?;
            let v = match live_secret_in(tx, InstanceId(platform), Purpose::FastTrackClaim, secret_hash, now).await? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let (owner, expires_at) = (v.user_key, v.expires_at);
            let instance: Option<String> =
                sqlx::query_scalar("SELECT name FROM instances WHERE owner_user_id = $1 ORDER BY id LIMIT 1")
                    .bind(owner)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_err)?;
            let claim = FastTrackClaim {
                owner_key: owner,
                email: v.email,
                instance,
                expires_at: from_ts(expires_at),
            };
            let Some(answer) = answer else { return Ok(Ok(claim)) };
            sqlx::query("UPDATE verifications SET consumed_at = $1 WHERE id = $2")
                .bind(now)
                .bind(v.id)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            match answer {
                ClaimAnswer::Confirm => {
                    sqlx::query("UPDATE users SET status = 'active', activated_at = $1 WHERE id = $2 AND status = 'unconfirmed'")
                        .bind(now)
                        .bind(owner)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                ClaimAnswer::Release => {
                    release_owner_in(tx, owner, now, "released: the owner of the address said the FastTrack was not theirs").await?;
                }
            }
            Ok(Ok(claim))
        }

        /// Release a FastTrack's address: the instances the dashboard user owns are disabled
        /// (with every session in them revoked) and lose their owner; the dashboard user, its
        /// sessions and secrets are deleted, so the address may FastTrack again.
        async fn release_owner_in(tx: &mut Tx<'_>, owner: i64, now: i64, why: &str) -> StoreResult<Vec<String>> {
            let owned: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM instances WHERE owner_user_id = $1")
                .bind(owner)
                .fetch_all(&mut **tx)
                .await
                .map_err(db_err)?;
            for (id, _) in &owned {
                sqlx::query("UPDATE instances SET status = 'disabled', status_detail = $1, owner_user_id = NULL WHERE id = $2")
                    .bind(why)
                    .bind(id)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE instance_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            for sql in [
                "DELETE FROM user_roles WHERE user_id = $1",
                "DELETE FROM sessions WHERE user_id = $1",
                "DELETE FROM verifications WHERE user_id = $1",
                "DELETE FROM users WHERE id = $1",
            ] {
                sqlx::query(sql).bind(owner).execute(&mut **tx).await.map_err(db_err)?;
            }
            Ok(owned.into_iter().map(|(_, name)| name).collect())
        }

        /// Release the dashboard users still unconfirmed that were created before `cutoff`
        /// (only the one of `email_canonical` when given), at most `limit`; the names of the
        /// instances disabled.
        async fn release_unconfirmed_in(
            tx: &mut Tx<'_>,
            cutoff: i64,
            email_canonical: Option<&str>,
            now: i64,
            limit: i64,
        ) -> StoreResult<Vec<String>> {
            let platform = platform_id(tx).await?;
            let owners: Vec<i64> = sqlx::query_scalar(concat!(
                "SELECT id FROM users WHERE instance_id = $1 AND status = 'unconfirmed' AND created_at < $2
                 AND (CAST($3 AS TEXT) IS NULL OR email_canonical = $3) ORDER BY id LIMIT $4",
                $for_update
            ))
            .bind(platform)
            .bind(cutoff)
            .bind(email_canonical)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_err)?;
            let why = "released: the address was not confirmed in time";
            let mut released = Vec::new();
            for owner in owners {
                released.extend(release_owner_in(tx, owner, now, why).await?);
            }
            Ok(released)
        }

        /// A secret of `purpose` that may still be used (locked for this transaction), or why not:
        /// unknown or voided (`NotFound`), used, or expired.
        async fn live_secret_in(
            tx: &mut Tx<'_>,
            instance: InstanceId,
            purpose: Purpose,
            secret_hash: &str,
            now: i64,
        ) -> StoreResult<Result<$crate::shared::LiveSecret, RedeemError>> {
            let Some(v) = sqlx::query(concat!(
                "SELECT v.id, v.user_id, v.expires_at, v.consumed_at, v.voided_at, u.public_id, u.email
                 FROM verifications v JOIN users u ON u.id = v.user_id
                 WHERE v.instance_id = $1 AND v.purpose = $2 AND v.secret_hash = $3",
                $for_update
            ))
            .bind(instance.0)
            .bind(purpose.as_str())
            .bind(secret_hash)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?
            else {
                return Ok(Err(RedeemError::NotFound));
            };
            if v.get::<Option<i64>, _>(3).is_some() {
                return Ok(Err(RedeemError::AlreadyUsed));
            }
            if v.get::<Option<i64>, _>(4).is_some() {
                return Ok(Err(RedeemError::NotFound));
            }
            let expires_at: i64 = v.get(2);
            if expires_at <= now {
                return Ok(Err(RedeemError::Expired));
            }
            Ok(Ok($crate::shared::LiveSecret { id: v.get(0), user_key: v.get(1), expires_at, public_id: v.get(5), email: v.get(6) }))
        }

        async fn redeem_secret_in(
            tx: &mut Tx<'_>,
            instance: InstanceId,
            purpose: Purpose,
            secret_hash: &str,
            now: i64,
        ) -> StoreResult<Result<(i64, String), RedeemError>> {
            let v = match live_secret_in(tx, instance, purpose, secret_hash, now).await? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let consumed = sqlx::query("UPDATE verifications SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
                .bind(now)
                .bind(v.id)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            if consumed.rows_affected() != 1 {
                return Ok(Err(RedeemError::AlreadyUsed));
            }
            Ok(Ok((v.user_key, v.public_id)))
        }

        /// The columns of a user view, then its role (one row per role).
        const USER_VIEW: &str = "SELECT u.id, u.public_id, u.email, u.name, u.status, u.first_name, u.last_name,
                u.display_name, u.company, u.phone, r.role
             FROM users u LEFT JOIN user_roles r ON r.user_id = u.id";

        /// A user and its roles from `USER_VIEW` rows.
        fn user_view_of(rows: &[<$db as sqlx::Database>::Row]) -> Option<UserView> {
            let r = rows.first()?;
            Some(UserView {
                key: r.get(0),
                public_id: r.get(1),
                email: r.get(2),
                name: r.get(3),
                status: status(r.get::<String, _>(4).as_str()),
                profile: UserProfile {
                    first_name: r.get(5),
                    last_name: r.get(6),
                    display_name: r.get(7),
                    company: r.get(8),
                    phone: r.get(9),
                },
                roles: rows.iter().filter_map(|row| row.get::<Option<String>, _>(10)).collect(),
            })
        }

        async fn user_view_in(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            user_key: i64,
        ) -> StoreResult<Option<UserView>> {
            let rows = sqlx::query(&format!("{USER_VIEW} WHERE u.instance_id = $1 AND u.id = $2 ORDER BY r.role"))
                .bind(instance.0)
                .bind(user_key)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            Ok(user_view_of(&rows))
        }

        // --- user service settings, roles, API keys ---

        async fn instance_settings_on(pool: &sqlx::Pool<$db>, instance: InstanceId) -> StoreResult<UserServiceSettings> {
            let row = sqlx::query(
                "SELECT open_registration, open_reg_role, open_reg_email_service, open_reg_email_template, allow_keyless,
                   default_language FROM instance_settings WHERE instance_id = $1",
            )
            .bind(instance.0)
            .fetch_optional(pool)
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

        async fn set_instance_settings_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            s: &UserServiceSettings,
        ) -> StoreResult<()> {
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
            .execute(pool)
            .await
            .map_err(db_err)
            .map(|_| ())
        }

        async fn ensure_roles_on(pool: &sqlx::Pool<$db>, instance: InstanceId, roles: &[RoleSpec], now: i64) -> StoreResult<()> {
            let mut tx = pool.begin().await.map_err(db_err)?;
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

        async fn insert_api_key(tx: &mut Tx<'_>, instance: InstanceId, k: &NewApiKey) -> StoreResult<()> {
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

        async fn create_api_key_on(pool: &sqlx::Pool<$db>, instance: InstanceId, k: &NewApiKey) -> StoreResult<()> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            insert_api_key(&mut tx, instance, k).await?;
            tx.commit().await.map_err(db_err)
        }

        const API_KEY_COLUMNS: &str = "SELECT id, app_id, secret_hash, prefix, label, source, created_at, revoked_at FROM api_keys";

        fn api_key_from(r: &<$db as sqlx::Database>::Row) -> ApiKeyRecord {
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

        async fn api_key_by_hash_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            hash: &str,
        ) -> StoreResult<Option<ApiKeyRecord>> {
            let row = sqlx::query(&format!("{API_KEY_COLUMNS} WHERE instance_id = $1 AND secret_hash = $2"))
                .bind(instance.0)
                .bind(hash)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            Ok(row.as_ref().map(api_key_from))
        }

        async fn list_api_keys_on(pool: &sqlx::Pool<$db>, instance: InstanceId) -> StoreResult<Vec<ApiKeyRecord>> {
            let rows = sqlx::query(&format!("{API_KEY_COLUMNS} WHERE instance_id = $1 ORDER BY app_id, created_at, id"))
                .bind(instance.0)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            Ok(rows.iter().map(api_key_from).collect())
        }

        async fn revoke_api_key_on(pool: &sqlx::Pool<$db>, instance: InstanceId, id: &str, now: i64) -> StoreResult<bool> {
            let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE instance_id = $2 AND id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(instance.0)
                .bind(id)
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(done.rows_affected() == 1)
        }

        async fn sync_config_api_keys_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            app_id: &str,
            keys: &[NewApiKey],
            now: i64,
        ) -> StoreResult<()> {
            let mut tx = pool.begin().await.map_err(db_err)?;
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
                    insert_api_key(&mut tx, instance, key).await?;
                }
            }
            tx.commit().await.map_err(db_err)
        }

        // --- open registration, codes ---

        async fn register_user_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            r: &NewRegistration,
        ) -> StoreResult<RegistrationOutcome> {
            let now = ts(r.created_at);
            let mut tx = pool.begin().await.map_err(db_err)?;
            let existing = sqlx::query(concat!(
                "SELECT id, status, email, name FROM users WHERE instance_id = $1 AND email_canonical = $2",
                $for_update
            ))
            .bind(instance.0)
            .bind(&r.user.email_canonical)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let (user_key, outcome) = match existing {
                Some(row) if status(row.get::<String, _>(1).as_str()) != UserStatus::Pending || r.verification.is_none() => {
                    return Ok(RegistrationOutcome::Exists { email: row.get(2), name: row.get(3) });
                }
                Some(row) => {
                    let user_key: i64 = row.get(0);
                    let recent: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM verifications WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL
                           AND voided_at IS NULL AND created_at > $3 LIMIT 1",
                    )
                    .bind(user_key)
                    .bind(Purpose::EmailConfirm.as_str())
                    .bind(ts(r.replace_pending_issued_before))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if recent.is_some() {
                        return Ok(RegistrationOutcome::PendingRecently);
                    }
                    // The earlier registrant of this address loses everything they set.
                    let (u, p) = (&r.user, &r.profile);
                    sqlx::query(
                        "UPDATE users SET email = $1, username = $2, username_canonical = $3, name = $4, language = $5,
                           password_hash = $6, first_name = $7, last_name = $8, display_name = $9, company = $10,
                           phone = $11 WHERE id = $12",
                    )
                    .bind(&u.email)
                    .bind(&u.username)
                    .bind(&u.username_canonical)
                    .bind(&u.name)
                    .bind(&u.language)
                    .bind(&u.password_hash)
                    .bind(&p.first_name)
                    .bind(&p.last_name)
                    .bind(&p.display_name)
                    .bind(&p.company)
                    .bind(&p.phone)
                    .bind(user_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    for sql in [
                        "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                        "UPDATE verifications SET voided_at = $2 WHERE user_id = $1 AND consumed_at IS NULL AND voided_at IS NULL",
                    ] {
                        sqlx::query(sql).bind(user_key).bind(now).execute(&mut *tx).await.map_err(db_err)?;
                    }
                    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
                        .bind(user_key)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    (user_key, RegistrationOutcome::ReplacedPending { user_key })
                }
                None => {
                    let user_key = insert_user(&mut tx, instance, &r.user, &r.profile, now).await?;
                    (user_key, RegistrationOutcome::Created { user_key })
                }
            };
            if let Some(role) = &r.role {
                grant_role(&mut tx, instance, user_key, role).await?;
            }
            if let Some(verification) = &r.verification {
                insert_verification(&mut tx, instance, user_key, verification, now).await?;
            }
            if let Some(message) = &r.message {
                insert_outbox(&mut tx, instance, message).await?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok(outcome)
        }

        async fn redeem_code_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            c: &CodeRedemption,
        ) -> StoreResult<Result<(i64, String), RedeemError>> {
            let now = ts(c.now);
            let mut tx = pool.begin().await.map_err(db_err)?;
            let Some(user) = sqlx::query(concat!(
                "SELECT id, public_id FROM users WHERE instance_id = $1 AND email_canonical = $2",
                $for_update
            ))
            .bind(instance.0)
            .bind(&c.email_canonical)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            else {
                return Ok(Err(RedeemError::NotFound));
            };
            let (user_key, public_id): (i64, String) = (user.get(0), user.get(1));
            let found = sqlx::query(
                "SELECT id, purpose, expires_at, consumed_at, voided_at FROM verifications
                 WHERE user_id = $1 AND secret_hash = $2",
            )
            .bind(user_key)
            .bind(&c.secret_hash)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
            .into_iter()
            .find(|v| c.purposes.iter().any(|p| p.as_str() == v.get::<String, _>(1)));
            let Some(v) = found else {
                // A wrong code counts against every live code of the user; enough of them and
                // those codes are void.
                for purpose in &c.purposes {
                    sqlx::query(
                        "UPDATE verifications SET attempts = attempts + 1 WHERE user_id = $1 AND purpose = $2
                           AND consumed_at IS NULL AND voided_at IS NULL",
                    )
                    .bind(user_key)
                    .bind(purpose.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    sqlx::query(
                        "UPDATE verifications SET voided_at = $3 WHERE user_id = $1 AND purpose = $2
                           AND consumed_at IS NULL AND voided_at IS NULL AND attempts >= $4",
                    )
                    .bind(user_key)
                    .bind(purpose.as_str())
                    .bind(now)
                    .bind(i64::from(c.max_attempts))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)?;
                return Ok(Err(RedeemError::NotFound));
            };
            if v.get::<Option<i64>, _>(3).is_some() || v.get::<Option<i64>, _>(4).is_some() {
                return Ok(Err(RedeemError::AlreadyUsed));
            }
            if v.get::<i64, _>(2) <= now {
                return Ok(Err(RedeemError::Expired));
            }
            let consumed = sqlx::query("UPDATE verifications SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
                .bind(now)
                .bind(v.get::<i64, _>(0))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if consumed.rows_affected() != 1 {
                return Ok(Err(RedeemError::AlreadyUsed));
            }
            sqlx::query(
                "UPDATE users SET password_hash = $1,
                   status = CASE WHEN status = 'pending' THEN 'active' ELSE status END,
                   activated_at = COALESCE(activated_at, $2) WHERE id = $3",
            )
            .bind(&c.new_password_hash)
            .bind(now)
            .bind(user_key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            for sql in [
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                "UPDATE verifications SET voided_at = $2 WHERE user_id = $1 AND consumed_at IS NULL AND voided_at IS NULL",
            ] {
                sqlx::query(sql).bind(user_key).bind(now).execute(&mut *tx).await.map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok(Ok((user_key, public_id)))
        }

        async fn user_by_email_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            canonical: &str,
        ) -> StoreResult<Option<UserView>> {
            // One round trip whether or not the address is known: a reset must not answer
            // later for a known address.
            let rows = sqlx::query(&format!("{USER_VIEW} WHERE u.instance_id = $1 AND u.email_canonical = $2 ORDER BY r.role"))
                .bind(instance.0)
                .bind(canonical)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            Ok(user_view_of(&rows))
        }

        async fn issue_secret_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            user_key: i64,
            v: &NewVerification,
            m: &NewOutboxMessage,
        ) -> StoreResult<()> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            insert_verification(&mut tx, instance, user_key, v, ts(m.created_at)).await?;
            insert_outbox(&mut tx, instance, m).await?;
            tx.commit().await.map_err(db_err)
        }

        async fn requeue_dead_outbox_on(pool: &sqlx::Pool<$db>, now: i64) -> StoreResult<u64> {
            let done = sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
                   last_error = NULL WHERE status = 'dead' AND payload IS NOT NULL",
            )
            .bind(now)
            .execute(pool)
            .await
            .map_err(db_err)?;
            Ok(done.rows_affected())
        }

        // --- contracts ---

        async fn app_settings_on(pool: &sqlx::Pool<$db>, instance: InstanceId, app_id: &str) -> StoreResult<AppSettings> {
            let row: Option<(Option<String>, Option<i64>, String, bool, String)> = sqlx::query_as(
                "SELECT default_contract, ext_key_type, allowed_origins, browser_partner_calls, reads_accounts_of
                 FROM app_settings WHERE instance_id = $1 AND app_id = $2",
            )
            .bind(instance.0)
            .bind(app_id)
            .fetch_optional(pool)
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

        async fn app_origins_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
        ) -> StoreResult<Vec<onramp_core::origin::AppOrigins>> {
            let rows: Vec<(String, String, Option<String>, Option<bool>)> = sqlx::query_as(
                "SELECT a.id, a.signup_url, s.allowed_origins, s.browser_partner_calls
                 FROM apps a LEFT JOIN app_settings s ON s.instance_id = a.instance_id AND s.app_id = a.id
                 WHERE a.instance_id = $1 ORDER BY a.id",
            )
            .bind(instance.0)
            .fetch_all(pool)
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

        async fn set_app_settings_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            app_id: &str,
            s: &AppSettings,
        ) -> StoreResult<()> {
            let origins = serde_json::to_string(&s.allowed_origins).map_err(|e| StoreError::Other(e.to_string()))?;
            let readers = serde_json::to_string(&s.reads_accounts_of).map_err(|e| StoreError::Other(e.to_string()))?;
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
            .execute(pool)
            .await
            .map_err(db_err)
            .map(|_| ())
        }

        async fn put_contract_on(pool: &sqlx::Pool<$db>, instance: InstanceId, app_id: &str, c: &Contract) -> StoreResult<()> {
            let fields = serde_json::to_string(&c.fields).map_err(|e| StoreError::Other(e.to_string()))?;
            sqlx::query(
                "INSERT INTO contracts (instance_id, app_id, id, fields) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (instance_id, app_id, id) DO UPDATE SET fields = excluded.fields",
            )
            .bind(instance.0)
            .bind(app_id)
            .bind(&c.id)
            .bind(fields)
            .execute(pool)
            .await
            .map_err(db_err)
            .map(|_| ())
        }

        fn contract_from(id: String, fields: &str) -> StoreResult<Contract> {
            let fields = serde_json::from_str(fields).map_err(|e| StoreError::Other(format!("contract {id}: {e}")))?;
            Ok(Contract { id, fields })
        }

        async fn contract_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            app_id: &str,
            id: &str,
        ) -> StoreResult<Option<Contract>> {
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT id, fields FROM contracts WHERE instance_id = $1 AND app_id = $2 AND id = $3")
                    .bind(instance.0)
                    .bind(app_id)
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .map_err(db_err)?;
            row.map(|(id, fields)| contract_from(id, &fields)).transpose()
        }

        async fn contracts_on(pool: &sqlx::Pool<$db>, instance: InstanceId, app_id: &str) -> StoreResult<Vec<Contract>> {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, fields FROM contracts WHERE instance_id = $1 AND app_id = $2 ORDER BY id")
                    .bind(instance.0)
                    .bind(app_id)
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)?;
            rows.into_iter().map(|(id, fields)| contract_from(id, &fields)).collect()
        }

        async fn create_contract_account_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            a: &NewContractAccount,
        ) -> StoreResult<ContractOutcome> {
            let now = ts(a.created_at);
            let mut tx = pool.begin().await.map_err(db_err)?;
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
            let dp_key = insert_user(&mut tx, instance, &a.user, &profile, now).await?;
            sqlx::query("UPDATE users SET profile = $1, app_id = $2 WHERE id = $3")
                .bind(&a.profile)
                .bind(&a.app_id)
                .bind(dp_key)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            for (field, value) in &a.unique {
                sqlx::query("INSERT INTO unique_values (instance_id, field, value, user_id) VALUES ($1, $2, $3, $4)")
                    .bind(instance.0)
                    .bind(field)
                    .bind(value)
                    .bind(dp_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            if let Some((key_type, key)) = &a.ext_key {
                sqlx::query("INSERT INTO ext_keys (instance_id, key_type, ext_key, user_id) VALUES ($1, $2, $3, $4)")
                    .bind(instance.0)
                    .bind(key_type)
                    .bind(key)
                    .bind(dp_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            if let Some((verification, message)) = &a.sms {
                insert_verification(&mut tx, instance, dp_key, verification, now).await?;
                insert_outbox(&mut tx, instance, message).await?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok(ContractOutcome::Created { dp_key })
        }

        async fn contract_account_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            dp_key: i64,
        ) -> StoreResult<Option<ContractAccount>> {
            let row: Option<(i64, Option<String>, String, String, Option<String>, Option<String>, String)> = sqlx::query_as(
                "SELECT id, app_id, uuid, status, profile, phone, language FROM users WHERE instance_id = $1 AND id = $2",
            )
            .bind(instance.0)
            .bind(dp_key)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
            let Some((dp_key, app_id, uuid, st, profile, phone, language)) = row else { return Ok(None) };
            let ext_keys: Vec<(i64, String)> =
                sqlx::query_as("SELECT key_type, ext_key FROM ext_keys WHERE user_id = $1 ORDER BY key_type")
                    .bind(dp_key)
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)?;
            Ok(Some(ContractAccount { dp_key, app_id, uuid, status: status(&st), profile, phone, language, ext_keys }))
        }

        /// The user's newest SMS code: id, secret hash, expiry, attempts, live?
        async fn latest_sms_code(tx: &mut Tx<'_>, instance: InstanceId, dp_key: i64) -> StoreResult<Option<(i64, String, i64, i64, bool)>> {
            let row: Option<(i64, String, i64, i64, Option<i64>, Option<i64>)> = sqlx::query_as(concat!(
                "SELECT id, secret_hash, expires_at, attempts, consumed_at, voided_at FROM verifications
                 WHERE instance_id = $1 AND user_id = $2 AND purpose = 'sms' ORDER BY id DESC LIMIT 1",
                $for_update
            ))
            .bind(instance.0)
            .bind(dp_key)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
            Ok(row.map(|(id, hash, expires, attempts, consumed, voided)| {
                (id, hash, expires, attempts, consumed.is_none() && voided.is_none())
            }))
        }

        async fn verify_sms_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            dp_key: i64,
            code_hash: &str,
            now: i64,
            max_attempts: u32,
        ) -> StoreResult<Result<(), SmsCodeError>> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let Some((id, hash, expires, attempts, true)) = latest_sms_code(&mut tx, instance, dp_key).await? else {
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
            sqlx::query("UPDATE users SET status = 'active', activated_at = $1 WHERE id = $2 AND status = 'pending'")
                .bind(now)
                .bind(dp_key)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(Ok(()))
        }

        async fn resend_sms_on(
            pool: &sqlx::Pool<$db>,
            instance: InstanceId,
            dp_key: i64,
            v: &NewVerification,
            m: &NewOutboxMessage,
            max_attempts: u32,
        ) -> StoreResult<bool> {
            let now = ts(m.created_at);
            let mut tx = pool.begin().await.map_err(db_err)?;
            let pending: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE instance_id = $1 AND id = $2")
                .bind(instance.0)
                .bind(dp_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            if pending.as_deref() != Some("pending") {
                return Ok(false);
            }
            // The failures so far stay with the account: a new code does not reset them.
            let attempts = latest_sms_code(&mut tx, instance, dp_key).await?.map(|c| c.3).unwrap_or(0);
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
            insert_verification(&mut tx, instance, dp_key, v, now).await?;
            sqlx::query("UPDATE verifications SET attempts = $1 WHERE user_id = $2 AND secret_hash = $3")
                .bind(attempts)
                .bind(dp_key)
                .bind(&v.secret_hash)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            insert_outbox(&mut tx, instance, m).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        }

        async fn claim_setting_on(pool: &sqlx::Pool<$db>, name: &str, value: &str) -> StoreResult<String> {
            sqlx::query("INSERT INTO cluster_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(value)
                .execute(pool)
                .await
                .map_err(db_err)?;
            let (stored,): (String,) = sqlx::query_as("SELECT value FROM cluster_settings WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            Ok(stored)
        }

        async fn outbox_failures_on(pool: &sqlx::Pool<$db>, limit: u32) -> StoreResult<Vec<onramp_core::model::OutboxFailure>> {
            let rows: Vec<(i64, String, String, i64, String)> = sqlx::query_as(
                "SELECT id, kind, status, attempts, last_error FROM outbox
                 WHERE status IN ('pending', 'dead') AND last_error IS NOT NULL ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
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
    };
}

pub(crate) use shared_queries;
