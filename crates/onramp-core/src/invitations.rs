//! Invitations: an operator (admin API, console, CLI) or an app (its API key, `/v1/invitations`)
//! invites an address to one of the instance's apps. The invitee gets a mail with a single-use
//! link (a random secret of about 165 bits, stored hashed, expiring); it opens the hosted page
//! that asks for a name and password and creates the user, active at once (the click proved the
//! address), with the invitation's role. An app or instance with `invite_only` signup refuses
//! every other signup of an address that holds no live invitation (`screening.rs`).

use crate::common::Common;
use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::login::instance_url;
use crate::model::*;
use crate::ports::Invitations;
use crate::token::secret_hash;
use serde_json::json;
use std::sync::Arc;
use time::Duration;

/// The mail template of an invitation.
pub const INVITATION_TEMPLATE: &str = crate::outbox::Template::Invitation.name();
/// Where the link points, on the instance's host.
pub const INVITATION_PATH: &str = "/invitation";
pub const DEFAULT_EXPIRY: Duration = Duration::days(7);
const MIN_EXPIRY: Duration = Duration::hours(1);
const MAX_EXPIRY: Duration = Duration::days(30);
const MAX_ROLE_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 200;

/// `POST /v1/invitations` and the admin API's, as received.
#[derive(Debug, Clone, Default)]
pub struct InviteInput {
    pub email: String,
    pub app_id: String,
    pub role: Option<String>,
    /// Seconds; the default is 7 days.
    pub expires_in: Option<i64>,
}

/// The hosted page's answer to an invitation, as received.
#[derive(Debug, Clone, Default)]
pub struct AcceptInput {
    pub token: String,
    pub name: String,
    pub password: String,
    pub client: Option<String>,
}

/// A listing's query, as received.
#[derive(Debug, Clone, Default)]
pub struct InvitationQuery {
    /// An exact address.
    pub email: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// Invitations of one instance: create, list, resend, revoke, look, accept.
#[derive(Clone)]
pub struct Invites {
    pub(crate) common: Common,
    pub(crate) invitations: Arc<dyn Invitations>,
}

fn not_found() -> CoreError {
    CoreError::NotFound { code: "invitation_not_found", message: "No such invitation." }
}

impl Invites {
    /// Invite `input.email` to `input.app_id` of `instance`, by `by` (`admin:…`, `cli`, `app:…`).
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn create(
        &self,
        instance: &Instance,
        by: &str,
        input: InviteInput,
    ) -> Result<InvitationRecord, CoreError> {
        let mut errors = Vec::new();
        let email = EmailAddress::parse(input.email.trim()).map_err(|e| errors.push(e.renamed("email"))).ok();
        let role = match input.role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(r)
                if r.chars().count() > MAX_ROLE_CHARS
                    || !r.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) =>
            {
                errors.push(FieldError::new(
                    "role",
                    "invalid_role",
                    "must be letters, digits, '_', '-' or '.', at most 64",
                ));
                None
            }
            other => other.map(str::to_owned),
        };
        let expires_in = match input.expires_in.map(Duration::seconds) {
            None => DEFAULT_EXPIRY,
            Some(d) if (MIN_EXPIRY..=MAX_EXPIRY).contains(&d) => d,
            Some(_) => {
                errors.push(FieldError::new(
                    "expires_in",
                    "invalid_expiry",
                    "must be between 3600 and 2592000 seconds",
                ));
                DEFAULT_EXPIRY
            }
        };
        let app = self.common.directory.apps.app(instance.id, input.app_id.trim()).await?;
        if app.is_none() {
            errors.push(FieldError::new("app_id", "unknown_app", "is not an app of this instance"));
        }
        let (Some(email), Some(app), true) = (email, app, errors.is_empty()) else {
            return Err(CoreError::Validation(errors));
        };
        let now = self.common.now();
        let public_id = self.common.tokens.public_id("inv");
        let token = self.common.tokens.secret_token();
        let expires_at = now + expires_in;
        let message = self.mail(instance, &app, &email, &token, expires_in)?;
        let audit = crate::audit::event(
            crate::audit::kinds::INVITATION_CREATED,
            instance.id,
            actor_of(by),
            None,
            None,
            json!({ "invitation_id": public_id, "app_id": app.id, "role": role }),
            now,
        );
        let audit = NewAuditEvent { target: Some(public_id.clone()), ..audit };
        let new = NewInvitation {
            public_id,
            app_id: app.id.clone(),
            email: email.as_entered().into(),
            email_canonical: email.canonical().into(),
            role,
            secret_hash: secret_hash(&token),
            invited_by: by.into(),
            created_at: now,
            expires_at,
            message,
            audit,
        };
        let created = self.invitations.create_invitation(instance.id, &new).await?;
        self.common.wake_outbox();
        Ok(created)
    }

    fn mail(
        &self,
        instance: &Instance,
        app: &App,
        email: &EmailAddress,
        token: &str,
        expires_in: Duration,
    ) -> Result<NewOutboxMessage, CoreError> {
        let link = format!(
            "{}{INVITATION_PATH}?token={token}",
            instance_url(&self.common.settings.public_url, &instance.name)
        );
        let vars = json!({
            "instance": instance.name,
            "app_id": app.id,
            "app_name": app.name,
            "email": email.as_entered(),
            "link": link,
            "expires_days": expires_in.whole_days().max(1),
            "expires_hours": expires_in.whole_hours(),
        });
        self.common.letters.mail(INVITATION_TEMPLATE, email.as_entered(), "en", vars)
    }

    /// The invitations of `instance` (to `app` only, when named), newest first.
    pub async fn list(
        &self,
        instance: &Instance,
        app: Option<&str>,
        query: &InvitationQuery,
    ) -> Result<Page<InvitationRecord>, CoreError> {
        let email = match query.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => {
                Some(EmailAddress::parse(e).map_err(|e| CoreError::Validation(vec![e.renamed("email")]))?)
            }
            None => None,
        };
        let filter = InvitationFilter {
            app_id: app.map(str::to_owned),
            email_canonical: email.map(|e| e.canonical().to_owned()),
            before: crate::admin::cursor_key(query.cursor.as_deref())?,
            limit: crate::admin::page_limit(query.limit)?,
        };
        Ok(self.invitations.invitations(instance.id, &filter).await?)
    }

    /// One invitation (of `app` only, when named: another app's is not found).
    pub async fn get(
        &self,
        instance: &Instance,
        app: Option<&str>,
        id: &str,
    ) -> Result<InvitationRecord, CoreError> {
        let found = self.invitations.invitation(instance.id, id).await?;
        found.filter(|i| app.is_none_or(|a| a == i.app_id)).ok_or_else(not_found)
    }

    /// A fresh link (the old one is void) and mail, valid for the default time again.
    pub async fn resend(
        &self,
        instance: &Instance,
        app: Option<&str>,
        id: &str,
        by: &str,
    ) -> Result<InvitationRecord, CoreError> {
        let invitation = self.get(instance, app, id).await?;
        if invitation.accepted_at.is_some() || invitation.revoked_at.is_some() {
            return Err(CoreError::WrongState("The invitation was accepted or revoked; make a new one."));
        }
        let invited_to = self
            .common
            .directory
            .apps
            .app(instance.id, &invitation.app_id)
            .await?
            .ok_or(CoreError::AppNotFound)?;
        let email = EmailAddress::parse(&invitation.email)
            .map_err(|_| CoreError::Internal("stored address invalid".into()))?;
        let token = self.common.tokens.secret_token();
        let now = self.common.now();
        let message = self.mail(instance, &invited_to, &email, &token, DEFAULT_EXPIRY)?;
        let audit = self.event(instance, crate::audit::kinds::INVITATION_RESENT, by, id);
        let renewed = self
            .invitations
            .renew_invitation(instance.id, id, &secret_hash(&token), now + DEFAULT_EXPIRY, &message, &audit)
            .await?;
        if !renewed {
            return Err(CoreError::WrongState("The invitation was accepted or revoked; make a new one."));
        }
        self.common.wake_outbox();
        self.get(instance, app, id).await
    }

    pub async fn revoke(
        &self,
        instance: &Instance,
        app: Option<&str>,
        id: &str,
        by: &str,
    ) -> Result<InvitationRecord, CoreError> {
        let invitation = self.get(instance, app, id).await?;
        let audit = self.event(instance, crate::audit::kinds::INVITATION_REVOKED, by, id);
        if invitation.accepted_at.is_some()
            || !self.invitations.revoke_invitation(instance.id, id, self.common.now(), &audit).await?
        {
            return Err(CoreError::WrongState("The invitation was accepted or revoked already."));
        }
        self.get(instance, app, id).await
    }

    fn event(&self, instance: &Instance, kind: &'static str, by: &str, id: &str) -> NewAuditEvent {
        let audit =
            crate::audit::event(kind, instance.id, actor_of(by), None, None, json!({}), self.common.now());
        NewAuditEvent { target: Some(id.to_owned()), ..audit }
    }

    /// The live invitation a link's secret names (for the hosted page).
    pub async fn look(&self, instance: &Instance, token: &str) -> Result<InvitationRecord, CoreError> {
        if token.is_empty() || token.len() > 128 {
            return Err(CoreError::TokenNotFound);
        }
        let invitation = self
            .invitations
            .invitation_by_secret(instance.id, &secret_hash(token))
            .await?
            .ok_or(CoreError::TokenNotFound)?;
        match invitation.status(self.common.now()) {
            InvitationStatus::Pending => Ok(invitation),
            InvitationStatus::Accepted => Err(CoreError::TokenUsed),
            InvitationStatus::Revoked => Err(CoreError::TokenNotFound),
            InvitationStatus::Expired => Err(CoreError::TokenExpired),
        }
    }

    /// Accept: the user is created active with the invitation's address, app and role.
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn accept(
        &self,
        instance: &Instance,
        input: AcceptInput,
    ) -> Result<InvitationRecord, CoreError> {
        self.common.admit_signup()?;
        let invitation = self.look(instance, input.token.trim()).await?;
        let email = EmailAddress::parse(&invitation.email)
            .map_err(|_| CoreError::Internal("stored address invalid".into()))?;
        let mut errors = Vec::new();
        let name = input.name.trim();
        if name.is_empty() {
            errors.push(FieldError::new("name", "required", "is required"));
        } else if name.chars().count() > MAX_NAME_CHARS || crate::text::has_forbidden(name) {
            errors.push(FieldError::new(
                "name",
                "invalid_name",
                "is too long or has characters that are not allowed",
            ));
        }
        let mut context = vec![name];
        context.extend(email.identifying_words());
        let password = self
            .common
            .settings
            .password
            .check("password", &input.password, &context)
            .map_err(|e| errors.push(e))
            .ok();
        let (Some(password), true) = (password, errors.is_empty()) else {
            return Err(CoreError::Validation(errors));
        };
        self.common
            .budget
            .spend_on_signup(instance, input.client.as_deref(), Some(email.canonical()))
            .await?;
        self.common.screening.check_password(&password, "password").await?;
        let password_hash = self.common.hasher.hash(&password).await?;
        let now = self.common.now();
        let surface = ("invitation", Some(invitation.app_id.as_str()), None);
        let mut audit = crate::audit::signed_up(instance, input.client.as_deref(), now, surface);
        audit.detail["invitation_id"] = json!(invitation.public_id);
        let acceptance = Acceptance {
            secret_hash: secret_hash(input.token.trim()),
            user: NewUser {
                public_id: self.common.tokens.public_id("usr"),
                uuid: self.common.uuid(),
                email: email.as_entered().into(),
                email_canonical: email.canonical().into(),
                username: None,
                username_canonical: None,
                name: name.into(),
                language: "en".into(),
                status: UserStatus::Active,
                password_hash,
                metadata: None,
            },
            now,
            audit: self.common.publishing(&instance.name, audit),
        };
        match self.invitations.accept_invitation(instance.id, &acceptance).await? {
            Ok((_, accepted)) => Ok(accepted),
            Err(AcceptError::NotFound) => Err(CoreError::TokenNotFound),
            Err(AcceptError::Expired) => Err(CoreError::TokenExpired),
            Err(AcceptError::AlreadyUsed) => Err(CoreError::TokenUsed),
            Err(AcceptError::EmailTaken) => Err(CoreError::EmailTaken),
        }
    }
}

/// The audit log's actor for an inviter: `admin:…` and `cli` as they are, an app as itself.
fn actor_of(by: &str) -> Actor {
    match by {
        "cli" => Actor::Cli,
        other => match other.strip_prefix("admin:") {
            Some(id) => Actor::Admin(id.to_owned()),
            None => Actor::App(other.strip_prefix("app:").unwrap_or(other).to_owned()),
        },
    }
}
