//! `login`, `logout` and session checks.

use crate::audit::{self, kinds};
use crate::common::Common;
use crate::common::client_bucket;
use crate::email::EmailAddress;
use crate::error::CoreError;
use crate::model::*;
use crate::password::Password;
use crate::ports::{AuditLog, Sessions, Users};
use crate::session::{AUDIENCE, Claims};
use crate::username::username_key;
use std::sync::Arc;

/// Logins on every surface, and the sessions they start.
#[derive(Clone)]
pub struct Logins {
    pub(crate) common: Common,
    pub(crate) users: Arc<dyn Users>,
    pub(crate) sessions: Arc<dyn Sessions>,
    pub(crate) audit: Arc<dyn AuditLog>,
}

#[derive(Debug, Clone)]
pub struct LoginInput {
    /// A username or an email address.
    pub identifier: String,
    pub password: String,
    pub client: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub token: String,
    pub session: SessionRecord,
}

const MAX_PASSWORD_BYTES: usize = 4096;

impl Logins {
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn login(&self, instance: &Instance, input: LoginInput) -> Result<LoggedIn, CoreError> {
        let identifier = input.identifier.trim();
        if identifier.is_empty() {
            return Err(CoreError::field("username", "required", "is required"));
        }
        if input.password.is_empty() {
            return Err(CoreError::field("password", "required", "is required"));
        }
        if input.password.len() > MAX_PASSWORD_BYTES || identifier.len() > 320 {
            return Err(CoreError::InvalidCredentials);
        }
        let lookup = if identifier.contains('@') {
            match EmailAddress::parse(identifier) {
                Ok(e) => LoginLookup::EmailCanonical(e.canonical().into()),
                Err(_) => return Err(CoreError::InvalidCredentials),
            }
        } else {
            LoginLookup::UsernameCanonical(username_key(identifier))
        };
        let limits = &self.common.settings.rate_limits;
        if let Some(client) = &input.client {
            self.common
                .budget
                .limit(
                    &format!("login:client:{}:{}", instance.id.0, client_bucket(client)),
                    limits.login_per_client,
                )
                .await?;
        }
        let id_key = match &lookup {
            LoginLookup::EmailCanonical(k) | LoginLookup::UsernameCanonical(k) => k,
        };
        let client = input.client.as_deref();
        let key = format!("login:id:{}:{id_key}", instance.id.0);
        if let Some((retry_after_secs, first)) =
            self.common.budget.count(&key, limits.login_per_identifier).await?
        {
            if first {
                // Once a window: an attacker's every try past the limit writes nothing.
                let detail = serde_json::json!({ "identifier": identifier });
                self.record(kinds::LOGIN_LOCKED_OUT, instance, None, client, detail).await?;
            }
            return Err(CoreError::RateLimited { retry_after_secs });
        }

        let password = Password::for_verification(&input.password);
        let Some(user) = self.users.login_record(instance.id, &lookup).await? else {
            self.common.hasher.verify_dummy(&password).await?;
            let detail = serde_json::json!({ "identifier": identifier, "reason": "unknown_user" });
            self.record(kinds::LOGIN_FAILED, instance, None, client, detail).await?;
            return Err(CoreError::InvalidCredentials);
        };
        let verified = self.common.hasher.verify(&user.password_hash, &password).await?;
        let refused = if !verified.matches {
            Some(("wrong_password", CoreError::InvalidCredentials))
        } else {
            match user.status {
                // A FastTrack owner uses what it made at once (the seed's one-click flow); its
                // address is proven, or the address released, by the confirmation mail.
                UserStatus::Active | UserStatus::Unconfirmed => None,
                UserStatus::Pending => Some(("not_activated", CoreError::NotActivated)),
                UserStatus::Inactive => Some(("disabled", CoreError::AccountDisabled)),
                UserStatus::Deleted => Some(("deleted", CoreError::InvalidCredentials)),
            }
        };
        if let Some((reason, error)) = refused {
            let detail = serde_json::json!({ "identifier": identifier, "reason": reason });
            self.record(kinds::LOGIN_FAILED, instance, Some(&user.public_id), client, detail).await?;
            return Err(error);
        }
        if verified.needs_rehash {
            let fresh = self.common.hasher.hash(&password).await?;
            self.users.set_password_hash(instance.id, user.user_key, &fresh).await?;
        }
        self.start_session(instance, user.user_key, &user.public_id, kinds::LOGIN_SUCCEEDED, client).await
    }

    /// An event that goes with no other write (a refused login).
    async fn record(
        &self,
        kind: &'static str,
        instance: &Instance,
        user: Option<&str>,
        client: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<(), CoreError> {
        let event =
            audit::event(kind, instance.id, Actor::Anonymous, user, client, detail, self.common.now());
        Ok(self.audit.record_audit(&event).await?)
    }

    /// Issue a session for a user who has proven who they are; `kind` is how
    /// (`login.succeeded`, or `session.created` after a code or a link).
    pub async fn start_session(
        &self,
        instance: &Instance,
        user_key: i64,
        user_public_id: &str,
        kind: &'static str,
        client: Option<&str>,
    ) -> Result<LoggedIn, CoreError> {
        let now = self.common.now();
        let session = SessionRecord {
            id: self.common.tokens.public_id("ses"),
            user_key,
            user_public_id: user_public_id.into(),
            issued_at: now,
            expires_at: now + self.common.settings.session_ttl,
            revoked_at: None,
        };
        let audit = self
            .common
            .publishing(&instance.name, audit::by_user(kind, instance, user_public_id, client, now));
        self.sessions.create_session(instance.id, &session, &audit).await?;
        let claims = Claims {
            iss: instance_url(&self.common.settings.public_url, &instance.name),
            sub: user_public_id.into(),
            aud: AUDIENCE.into(),
            inst: instance.name.clone(),
            sid: session.id.clone(),
            iat: now.unix_timestamp(),
            exp: session.expires_at.unix_timestamp(),
        };
        let token =
            self.common.directory.key_ring(instance).await?.sign(&claims).map_err(CoreError::Internal)?;
        Ok(LoggedIn { token, session })
    }

    /// The live session a bearer token stands for, or `SessionInvalid`.
    pub async fn authenticate(&self, instance: &Instance, token: &str) -> Result<SessionRecord, CoreError> {
        let now = self.common.now();
        let claims = self
            .common
            .directory
            .key_ring(instance)
            .await?
            .verify(token, now)
            .ok_or(CoreError::SessionInvalid)?;
        let session =
            self.sessions.session(instance.id, &claims.sid).await?.ok_or(CoreError::SessionInvalid)?;
        if session.revoked_at.is_some() || session.expires_at <= now || session.user_public_id != claims.sub {
            return Err(CoreError::SessionInvalid);
        }
        Ok(session)
    }

    /// The instance's signing keys (published as its JWKS).
    pub async fn key_ring(
        &self,
        instance: &Instance,
    ) -> Result<std::sync::Arc<crate::session::KeyRing>, CoreError> {
        self.common.directory.key_ring(instance).await
    }

    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn logout(&self, instance: &Instance, token: &str) -> Result<(), CoreError> {
        let session = self.authenticate(instance, token).await?;
        let now = self.common.now();
        let audit = audit::by_user(kinds::SESSION_REVOKED, instance, &session.user_public_id, None, now);
        if self.sessions.revoke_session(instance.id, &session.id, now, &audit).await? {
            Ok(())
        } else {
            Err(CoreError::SessionInvalid)
        }
    }
}

/// An instance's URL: `public_url` with `{instance}.` before the host; the `default` instance
/// lives at `public_url` itself.
pub fn instance_url(public_url: &str, instance: &str) -> String {
    if instance == DEFAULT_INSTANCE {
        return public_url.trim_end_matches('/').to_owned();
    }
    match url::Url::parse(public_url) {
        Ok(mut url) => {
            let host = url.host_str().unwrap_or("localhost").to_owned();
            if url.set_host(Some(&format!("{instance}.{host}"))).is_err() {
                return public_url.trim_end_matches('/').to_owned();
            }
            url.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => public_url.trim_end_matches('/').to_owned(),
    }
}
