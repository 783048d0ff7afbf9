//! Invitations: created with their mail, listed, renewed, revoked, and accepted into a user.

use super::*;

const COLUMNS: &str = "SELECT v.id, v.public_id, v.app_id, v.email, v.role, v.invited_by, v.created_at,
        v.expires_at, v.accepted_at, v.revoked_at, u.public_id
     FROM invitations v LEFT JOIN users u ON u.id = v.user_id";

macro_rules! invitation_from {
    ($r:expr) => {
        InvitationRecord {
            key: $r.get(0),
            public_id: $r.get(1),
            app_id: $r.get(2),
            email: $r.get(3),
            role: $r.get(4),
            invited_by: $r.get(5),
            created_at: from_ts($r.get(6)),
            expires_at: from_ts($r.get(7)),
            accepted_at: $r.get::<Option<i64>, _>(8).map(from_ts),
            revoked_at: $r.get::<Option<i64>, _>(9).map(from_ts),
            user_id: $r.get(10),
        }
    };
}

#[async_trait]
impl<DB> Invitations for SqlStore<DB>
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
    async fn create_invitation(
        &self,
        instance: InstanceId,
        new: &NewInvitation,
    ) -> StoreResult<InvitationRecord> {
        let now = ts(new.created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "UPDATE invitations SET revoked_at = $1 WHERE instance_id = $2 AND email_canonical = $3 AND app_id = $4
               AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(instance.0)
        .bind(&new.email_canonical)
        .bind(&new.app_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let key: i64 = sqlx::query_scalar(
            "INSERT INTO invitations (instance_id, public_id, app_id, email, email_canonical, role, secret_hash,
               invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(instance.0)
        .bind(&new.public_id)
        .bind(&new.app_id)
        .bind(&new.email)
        .bind(&new.email_canonical)
        .bind(new.role.as_deref())
        .bind(&new.secret_hash)
        .bind(&new.invited_by)
        .bind(now)
        .bind(ts(new.expires_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        Self::insert_outbox(&mut tx, instance, &new.message).await?;
        Self::insert_audit(&mut tx, &new.audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(InvitationRecord {
            key,
            public_id: new.public_id.clone(),
            app_id: new.app_id.clone(),
            email: new.email.clone(),
            role: new.role.clone(),
            invited_by: new.invited_by.clone(),
            created_at: new.created_at,
            expires_at: new.expires_at,
            accepted_at: None,
            revoked_at: None,
            user_id: None,
        })
    }

    async fn invitations(
        &self,
        instance: InstanceId,
        f: &InvitationFilter,
    ) -> StoreResult<Page<InvitationRecord>> {
        let mut args = Args::default();
        let mut sql = format!("{COLUMNS} WHERE v.instance_id = {}", args.int(instance.0));
        if let Some(app) = &f.app_id {
            sql += &format!(" AND v.app_id = {}", args.text(app));
        }
        if let Some(email) = &f.email_canonical {
            sql += &format!(" AND v.email_canonical = {}", args.text(email));
        }
        if let Some(before) = f.before {
            sql += &format!(" AND v.id < {}", args.int(before));
        }
        sql += &format!(" ORDER BY v.id DESC LIMIT {}", args.int(i64::from(f.limit) + 1));
        let rows = args.bind_to(sqlx::query(&sql)).fetch_all(&self.reader).await.map_err(db_err)?;
        let items = rows.into_iter().map(|r| invitation_from!(r)).collect();
        Ok(Page::of(items, f.limit, |i| i.key))
    }

    async fn invitation(
        &self,
        instance: InstanceId,
        public_id: &str,
    ) -> StoreResult<Option<InvitationRecord>> {
        let sql = format!("{COLUMNS} WHERE v.instance_id = $1 AND v.public_id = $2");
        let row = sqlx::query(&sql)
            .bind(instance.0)
            .bind(public_id)
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| invitation_from!(r)))
    }

    async fn invitation_by_secret(
        &self,
        instance: InstanceId,
        secret_hash: &str,
    ) -> StoreResult<Option<InvitationRecord>> {
        let sql = format!("{COLUMNS} WHERE v.secret_hash = $1 AND v.instance_id = $2");
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .bind(instance.0)
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| invitation_from!(r)))
    }

    async fn renew_invitation(
        &self,
        instance: InstanceId,
        public_id: &str,
        secret_hash: &str,
        expires_at: OffsetDateTime,
        message: &NewOutboxMessage,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE invitations SET secret_hash = $1, expires_at = $2
             WHERE instance_id = $3 AND public_id = $4 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(secret_hash)
        .bind(ts(expires_at))
        .bind(instance.0)
        .bind(public_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if DB::rows_affected(&done) != 1 {
            return Ok(false);
        }
        Self::insert_outbox(&mut tx, instance, message).await?;
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn revoke_invitation(
        &self,
        instance: InstanceId,
        public_id: &str,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE invitations SET revoked_at = $1
             WHERE instance_id = $2 AND public_id = $3 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(instance.0)
        .bind(public_id)
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

    async fn has_live_invitation(
        &self,
        instance: InstanceId,
        email_canonical: &str,
        app_id: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM invitations WHERE instance_id = $1 AND email_canonical = $2
               AND ($3 IS NULL OR app_id = $3) AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $4
             LIMIT 1",
        )
        .bind(instance.0)
        .bind(email_canonical)
        .bind(app_id)
        .bind(ts(now))
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(found.is_some())
    }

    async fn accept_invitation(
        &self,
        instance: InstanceId,
        a: &Acceptance,
    ) -> StoreResult<Result<(i64, InvitationRecord), AcceptError>> {
        let now = ts(a.now);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        // Locked first (two acceptances of one link: one user), then read whole.
        let lock = DB::locked("SELECT id FROM invitations WHERE secret_hash = $1 AND instance_id = $2");
        let locked: Option<i64> = sqlx::query_scalar(&lock)
            .bind(&a.secret_hash)
            .bind(instance.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some(key) = locked else { return Ok(Err(AcceptError::NotFound)) };
        let sql = format!("{COLUMNS} WHERE v.id = $1");
        let row = sqlx::query(&sql).bind(key).fetch_optional(&mut *tx).await.map_err(db_err)?;
        let Some(invitation) = row.map(|r| invitation_from!(r)) else {
            return Ok(Err(AcceptError::NotFound));
        };
        match invitation.status(a.now) {
            InvitationStatus::Pending => {}
            InvitationStatus::Accepted => return Ok(Err(AcceptError::AlreadyUsed)),
            InvitationStatus::Revoked => return Ok(Err(AcceptError::NotFound)),
            InvitationStatus::Expired => return Ok(Err(AcceptError::Expired)),
        }
        let profile = UserProfile::default();
        let user_key = match Self::insert_user(&mut tx, instance, &a.user, &profile, now).await {
            Ok(key) => key,
            Err(StoreError::Unique(UniqueKey::Email)) => return Ok(Err(AcceptError::EmailTaken)),
            Err(e) => return Err(e),
        };
        sqlx::query("UPDATE users SET app_id = $1 WHERE id = $2")
            .bind(&invitation.app_id)
            .bind(user_key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(role) = &invitation.role {
            // An invitation may name a role no configuration made yet.
            sqlx::query(
                "INSERT INTO roles (instance_id, name, description, created_at) VALUES ($1, $2, '', $3)
                 ON CONFLICT (instance_id, name) DO NOTHING",
            )
            .bind(instance.0)
            .bind(role)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            Self::grant_role(&mut tx, instance, user_key, role).await?;
        }
        sqlx::query("UPDATE invitations SET accepted_at = $1, user_id = $2 WHERE id = $3")
            .bind(now)
            .bind(user_key)
            .bind(invitation.key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        Self::insert_audit_of(&mut tx, &a.audit, user_key).await?;
        tx.commit().await.map_err(db_err)?;
        let accepted = InvitationRecord {
            accepted_at: Some(a.now),
            user_id: Some(a.user.public_id.clone()),
            ..invitation
        };
        Ok(Ok((user_key, accepted)))
    }
}
