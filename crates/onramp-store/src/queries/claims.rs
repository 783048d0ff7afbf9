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
    pub(super) async fn platform_id(tx: &mut Tx<'_, DB>) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT id FROM instances WHERE name = $1")
            .bind(PLATFORM_INSTANCE)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::Other("the platform instance is missing".into()))
    }

    /// A FastTrack claim secret, looked at (`answer: None`) or used.
    pub(super) async fn fast_track_claim_in(
        tx: &mut Tx<'_, DB>,
        secret_hash: &str,
        answer: Option<ClaimAnswer>,
        now: i64,
    ) -> StoreResult<Result<FastTrackClaim, RedeemError>> {
        let platform = Self::platform_id(tx).await?;
        let v =
            match Self::live_secret_in(tx, InstanceId(platform), Purpose::FastTrackClaim, secret_hash, now)
                .await?
            {
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
        let claim =
            FastTrackClaim { owner_key: owner, email: v.email, instance, expires_at: from_ts(expires_at) };
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
                Self::release_owner_in(
                    tx,
                    owner,
                    now,
                    "released: the owner of the address said the FastTrack was not theirs",
                )
                .await?;
            }
        }
        Ok(Ok(claim))
    }

    /// Release a FastTrack's address: the instances the dashboard user owns are disabled
    /// (with every session in them revoked) and lose their owner; the dashboard user, its
    /// sessions and secrets are deleted, so the address may FastTrack again.
    pub(super) async fn release_owner_in(
        tx: &mut Tx<'_, DB>,
        owner: i64,
        now: i64,
        why: &str,
    ) -> StoreResult<Vec<String>> {
        let owned: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, name FROM instances WHERE owner_user_id = $1")
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
    pub(super) async fn release_unconfirmed_in(
        tx: &mut Tx<'_, DB>,
        cutoff: i64,
        email_canonical: Option<&str>,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let platform = Self::platform_id(tx).await?;
        let owners: Vec<i64> = sqlx::query_scalar(&DB::locked(
            "SELECT id FROM users WHERE instance_id = $1 AND status = 'unconfirmed' AND created_at < $2
             AND (CAST($3 AS TEXT) IS NULL OR email_canonical = $3) ORDER BY id LIMIT $4",
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
            released.extend(Self::release_owner_in(tx, owner, now, why).await?);
        }
        Ok(released)
    }
}
