//! Instance provisioning: DreamFactory FastTrack (seed 000) and the operator's
//! `onramp instance create|retry`.
//!
//! FastTrack's six steps map onto two phases. The rows (dashboard user, instance, its key,
//! roles and default app, its admin with the same password hash, the one-time login secret)
//! commit in one transaction, with the instance in state `provisioning`, where no request can
//! reach it. Then come the parts outside that database: the instance's own database (with the
//! operator's init SQL) and the provisioning webhooks. Only when all of them succeed does the
//! instance become `active`. When one fails, what was done is undone and the rows are deleted
//! (or, with `keep_failed`, the instance stays visibly `provisioning_failed` for
//! `onramp instance retry`): never a success with half an instance, never an orphaned
//! dashboard user.

use crate::claims::Claims;
use crate::common::Common;
use crate::common::client_bucket;
use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::instance_name;
use crate::login::Logins;
use crate::login::{LoggedIn, instance_url};
use crate::model::*;
use crate::phone::Phone;
use crate::ports::{Instances, Users};
use crate::ports::{StoreError, UniqueKey};
pub use crate::provisioning::{InstanceEvent, NoHooks, Provisioning, ProvisioningHooks};
use crate::screening::Applicant;
use crate::session::generate_key;
use crate::token::secret_hash;
use serde_json::json;
use std::sync::Arc;

/// FastTrack, and the operator's instance creation: everything that provisions an instance.
#[derive(Clone)]
pub struct Provisioner {
    pub(crate) common: Common,
    pub(crate) instances: Arc<dyn Instances>,
    pub(crate) users: Arc<dyn Users>,
    pub(crate) logins: Logins,
    pub(crate) claims: Claims,
    pub(crate) provisioning: Provisioning,
}

/// The fields of `POST /fast-track`, as received.
#[derive(Debug, Clone, Default)]
pub struct FastTrackInput {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: String,
    pub nickname: Option<String>,
    pub company: Option<String>,
    pub phone: Option<String>,
    /// Who is asking, for rate limits.
    pub client: Option<String>,
    /// The language of the confirmation mail (the browser's, when onramp has it).
    pub language: Option<String>,
    /// The CAPTCHA provider's token, when the platform asks for one.
    pub captcha_token: Option<String>,
}

/// A provisioned, active instance whose admin may log in once with `guid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastTracked {
    /// The dashboard user's key (`user.id`).
    pub owner_key: i64,
    pub instance: Instance,
    /// The one-time login secret (`fastTrackGuid`).
    pub guid: String,
    /// The instance's page that exchanges the guid for a session.
    pub login_url: String,
}

/// Roles every new instance starts with.
pub const ADMIN_ROLE: &str = "admin";
pub const MEMBER_ROLE: &str = "member";

/// The path on an instance's host that exchanges a `fastTrackGuid` for a session and shows the
/// instance's landing page.
pub const WELCOME_PATH: &str = "/welcome";

/// The confirmation mail's pages (on the public URL's host): each shows the FastTrack the link
/// is about and one button, a POST, because mail scanners follow links but press no buttons.
pub const CONFIRM_CLAIM_PATH: &str = "/fast-track/confirm";
pub const RELEASE_CLAIM_PATH: &str = "/fast-track/release";

/// The confirmation mail FastTrack sends to the address it was given.
pub const CONFIRM_TEMPLATE: &str = crate::outbox::Template::FastTrackConfirm.name();

const MAX_NAME: usize = 100;

fn text(field: &str, value: &str, required: bool, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        if required {
            errors.push(FieldError::new(field, "required", "is required"));
        }
        return None;
    }
    if v.chars().count() > MAX_NAME {
        errors.push(FieldError::new(field, "too_long", &format!("must be at most {MAX_NAME} characters")));
    } else if crate::text::has_forbidden(v) {
        errors.push(FieldError::new(field, "invalid_characters", crate::text::FORBIDDEN_MESSAGE));
    }
    Some(v.to_owned())
}

impl Provisioner {
    /// Everything a new instance starts with; `{instance}` in the default app's URL becomes the
    /// name the store picks.
    fn new_instance(&self, naming: InstanceNaming) -> Result<NewInstance, CoreError> {
        let now = self.common.now();
        const PLACEHOLDER: &str = "onramp-instance-placeholder";
        let url =
            instance_url(&self.common.settings.public_url, PLACEHOLDER).replace(PLACEHOLDER, "{instance}");
        Ok(NewInstance {
            naming,
            key: generate_key(self.common.tokens.public_id("key"), now).map_err(CoreError::Internal)?,
            roles: vec![
                RoleSpec { name: ADMIN_ROLE.into(), description: "Administers the instance".into() },
                RoleSpec { name: MEMBER_ROLE.into(), description: "Registered users".into() },
            ],
            app: App {
                id: "app_default".into(),
                name: "Default".into(),
                signup_url: url,
                activation_token_in_response: false,
                schema_version: "ver_default".into(),
            },
            created_at: now,
        })
    }

    /// FastTrack (seed 000): validate, then create the dashboard user, the instance, its
    /// database and its admin, and a one-time login for that admin.
    #[tracing::instrument(skip_all)]
    pub async fn fast_track(&self, input: FastTrackInput) -> Result<FastTracked, CoreError> {
        self.common.admit_signup()?;
        // 1. Validate.
        let mut errors = Vec::new();
        let email = EmailAddress::parse(&input.email).map_err(|e| errors.push(e.renamed("email"))).ok();
        let first = text("first-name", &input.first_name, true, &mut errors);
        let last = text("last-name", &input.last_name, true, &mut errors);
        let nickname = text("nickname", input.nickname.as_deref().unwrap_or_default(), false, &mut errors);
        let company = text("company", input.company.as_deref().unwrap_or_default(), false, &mut errors);
        // A phone, when given, is a real number, stored in E.164 (as dialogportal's are).
        let phone = text("phone", input.phone.as_deref().unwrap_or_default(), false, &mut errors)
            .and_then(|p| Phone::parse("phone", &p).map(Phone::into_string).map_err(|e| errors.push(e)).ok());
        let base = email
            .as_ref()
            .map(|e| instance_name::base_from_local_part(e.local_part()))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let mut context: Vec<&str> =
            [first.as_deref(), last.as_deref(), nickname.as_deref()].into_iter().flatten().collect();
        if let Some(e) = &email {
            context.extend(e.identifying_words());
        }
        let password = self
            .common
            .settings
            .password
            .check("password", &input.password, &context)
            .map_err(|e| errors.push(e))
            .ok();
        let (Some(email), Some(first), Some(last), Some(base), Some(password), true) =
            (email, first, last, base, password, errors.is_empty())
        else {
            return Err(CoreError::Validation(errors));
        };

        let limits = &self.common.settings.rate_limits;
        if let Some(client) = &input.client {
            self.common
                .budget
                .limit(&format!("fast_track:client:{}", client_bucket(client)), limits.fast_track_per_client)
                .await?;
        }
        let domain = email.canonical().rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
        self.common
            .budget
            .limit(&format!("fast_track:domain:{domain}"), limits.fast_track_per_email_domain)
            .await?;

        let platform = self.common.directory.instance(PLATFORM_INSTANCE).await?;
        let applicant = Applicant {
            surface: "fast_track",
            app_id: None,
            email: Some(&email),
            email_field: "email",
            password: Some(&password),
            password_field: "password",
            name: None,
            first_name: Some(&first),
            last_name: Some(&last),
            language: input.language.as_deref(),
            client: input.client.as_deref(),
            fields: serde_json::json!({ "nickname": nickname, "company": company, "phone": phone }),
            captcha_token: input.captcha_token.as_deref(),
        };
        let admitted = self.common.screening.screen(&platform, &applicant).await?;
        // Hashed once, stored twice (dashboard user and instance admin).
        let password_hash = self.common.hasher.hash(&password).await?;
        let now = self.common.now();
        let user = |public_id: String, uuid: uuid::Uuid, status: UserStatus| NewUser {
            public_id,
            uuid,
            email: email.as_entered().into(),
            email_canonical: email.canonical().into(),
            username: None,
            username_canonical: None,
            name: format!("{first} {last}"),
            language: "en".into(),
            status,
            password_hash: password_hash.clone(),
            metadata: admitted.metadata.clone(),
        };
        let guid = self.common.tokens.secret_token();
        let claim = self.common.tokens.secret_token();
        let owner_id = self.common.tokens.public_id("usr");
        let kind = crate::audit::kinds::FAST_TRACK_PROVISIONED;
        let audit = crate::audit::pending_user(kind, &platform, input.client.as_deref(), now);
        let new = NewFastTrack {
            audit,
            instance: self.new_instance(InstanceNaming::FirstFree {
                base,
                avoid: self.common.settings.fast_track_reserved_names.clone(),
            })?,
            // The dashboard user is unconfirmed until the mail to its address is answered; the
            // instance's admin signs in at once, as in the seed.
            owner: user(owner_id, self.common.uuid(), UserStatus::Unconfirmed),
            admin: user(self.common.tokens.public_id("usr"), self.common.uuid(), UserStatus::Active),
            profile: UserProfile {
                first_name: Some(first),
                last_name: Some(last),
                display_name: nickname,
                company,
                phone,
            },
            admin_role: ADMIN_ROLE.into(),
            login: NewVerification {
                purpose: Purpose::FastTrackLogin,
                secret_hash: secret_hash(&guid),
                expires_at: now + self.common.settings.fast_track_login_ttl,
            },
            claim: NewVerification {
                purpose: Purpose::FastTrackClaim,
                secret_hash: secret_hash(&claim),
                expires_at: now + self.common.settings.fast_track_confirm_within,
            },
        };
        // 2, 3 and 5, and 6's secret: one transaction. An address whose earlier FastTrack was
        // never confirmed in time is released first, even before housekeeping comes by.
        let mut provisioned = self.instances.provision_fast_track(&new).await;
        if matches!(provisioned, Err(StoreError::Unique(UniqueKey::Email)))
            && !self.claims.release_unconfirmed(Some(email.canonical())).await?.is_empty()
        {
            provisioned = self.instances.provision_fast_track(&new).await;
        }
        let provisioned = match provisioned {
            Ok(p) => p,
            Err(StoreError::Unique(UniqueKey::Email)) => {
                let platform = self.common.directory.instance(PLATFORM_INSTANCE).await?;
                return Err(crate::common::address_in_use(
                    self.users.as_ref(),
                    platform.id,
                    email.canonical(),
                )
                .await);
            }
            Err(StoreError::Unique(UniqueKey::InstanceName)) => {
                return Err(CoreError::InstanceNameUnavailable);
            }
            Err(e) => return Err(e.into()),
        };
        // 4. Its own database and the operator's webhooks; then it goes live, and the address
        // is asked whether this was its owner.
        let base_url = instance_url(&self.common.settings.public_url, &provisioned.instance.name);
        let link = |path: &str| {
            format!("{}{path}?token={claim}", self.common.settings.public_url.trim_end_matches('/'))
        };
        let vars = json!({
            "first_name": new.profile.first_name,
            "name": new.owner.name,
            "email": email.as_entered(),
            // The sender (for the mail's branding) is the platform; the new instance is named.
            "instance": PLATFORM_INSTANCE,
            "new_instance": provisioned.instance.name,
            "instance_url": base_url,
            "link": link(CONFIRM_CLAIM_PATH),
            "release_link": link(RELEASE_CLAIM_PATH),
            "expires_hours": self.common.settings.fast_track_confirm_within.whole_hours(),
        });
        let language = input.language.as_deref().unwrap_or("en");
        let mail = self.common.letters.mail(CONFIRM_TEMPLATE, email.as_entered(), language, vars)?;
        let platform = self.common.directory.instance(PLATFORM_INSTANCE).await?;
        self.complete_provisioning(
            &provisioned.instance,
            Some(email.as_entered()),
            self.provisioning.keep_failed,
            Some((platform.id, &mail)),
        )
        .await?;
        self.common.wake_outbox();
        Ok(FastTracked {
            owner_key: provisioned.owner_key,
            login_url: format!("{base_url}{WELCOME_PATH}?fastTrackGuid={guid}"),
            instance: provisioned.instance,
            guid,
        })
    }

    /// `onramp instance create`: a new, empty instance with its key, roles, default app and
    /// own database.
    pub async fn create_instance(&self, name: &str) -> Result<Instance, CoreError> {
        if !instance_name::is_valid(name) {
            return Err(CoreError::field(
                "name",
                "invalid_instance_name",
                "must be lower-case letters, digits and inner '-', at most 63",
            ));
        }
        if instance_name::is_reserved(name) {
            return Err(CoreError::field("name", "reserved_instance_name", "is reserved"));
        }
        let new = self.new_instance(InstanceNaming::Exact(name.into()))?;
        let instance = match self.instances.create_instance(&new).await {
            Ok(i) => i,
            Err(StoreError::Unique(UniqueKey::InstanceName)) => {
                return Err(CoreError::InstanceNameUnavailable);
            }
            Err(e) => return Err(e.into()),
        };
        self.complete_provisioning(&instance, None, self.provisioning.keep_failed, None).await?;
        Ok(instance)
    }

    /// `onramp instance retry`: complete an instance left `provisioning_failed` (or stuck in
    /// `provisioning` by a node that died mid-way). On failure it stays as it was.
    pub async fn retry(&self, name: &str) -> Result<Instance, CoreError> {
        let summary = self.instances.instance_summary(name).await?.ok_or(CoreError::InstanceNotFound)?;
        if !matches!(summary.status, InstanceStatus::Provisioning | InstanceStatus::ProvisioningFailed) {
            return Err(CoreError::field("name", "not_provisioning", "is not waiting to be provisioned"));
        }
        let instance = Instance { id: summary.id, name: summary.name };
        self.complete_provisioning(&instance, summary.owner_email.as_deref(), true, None).await?;
        Ok(instance)
    }

    async fn complete_provisioning(
        &self,
        instance: &Instance,
        owner_email: Option<&str>,
        keep_failed: bool,
        message: Option<(InstanceId, &NewOutboxMessage)>,
    ) -> Result<(), CoreError> {
        let init_sql = self.provisioning.init_sql.as_deref();
        let database = match self.instances.create_instance_database(instance, init_sql).await {
            Ok(d) => d,
            Err(e) => {
                return Err(self
                    .abandon(instance, &format!("creating its database: {e}"), keep_failed)
                    .await);
            }
        };
        let event = InstanceEvent {
            instance_id: instance.id.0,
            instance: instance.name.clone(),
            url: instance_url(&self.common.settings.public_url, &instance.name),
            database: database.clone(),
            owner_email: owner_email.map(str::to_owned),
        };
        let hooks = &self.provisioning.hooks;
        let failure = match hooks.provisioned(&event).await {
            Err(e) => Some(format!("provisioning webhook: {e}")),
            Ok(()) => match self
                .instances
                .finish_provisioning(instance.id, &database, message, &self.provisioned(&event))
                .await
            {
                Ok(()) => None,
                Err(e) => {
                    hooks.undone(&event).await;
                    Some(format!("activating: {e}"))
                }
            },
        };
        let Some(failure) = failure else {
            tracing::info!(instance = %instance.name, "instance provisioned");
            return Ok(());
        };
        if !keep_failed && let Err(e) = self.instances.drop_instance_database(instance).await {
            tracing::warn!(instance = %instance.name, error = %e, "could not drop the instance's database");
        }
        Err(self.abandon(instance, &failure, keep_failed).await)
    }

    /// The audit entry of an instance going live (published as `instance.provisioned`).
    fn provisioned(&self, event: &InstanceEvent) -> NewAuditEvent {
        let kind = crate::audit::kinds::INSTANCE_PROVISIONED;
        let detail = json!({ "url": event.url, "owner_email": event.owner_email });
        let instance = InstanceId(event.instance_id);
        let audit = crate::audit::event(kind, instance, Actor::System, None, None, detail, self.common.now());
        self.common.publishing(&event.instance, audit)
    }

    /// Undo the rows of a failed provisioning (or keep them, marked failed); the error to answer.
    async fn abandon(&self, instance: &Instance, why: &str, keep_failed: bool) -> CoreError {
        tracing::error!(instance = %instance.name, error = why, keep_failed, "provisioning failed");
        let undone = !keep_failed && self.instances.discard_instance(instance.id).await.is_ok();
        if !undone && let Err(e) = self.instances.fail_provisioning(instance.id, why).await {
            tracing::error!(instance = %instance.name, error = %e, "could not mark the instance failed");
        }
        CoreError::ProvisioningFailed
    }

    /// Exchange a `fastTrackGuid` for a session in the instance it was issued for.
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn fast_track_login(&self, instance: &Instance, guid: &str) -> Result<LoggedIn, CoreError> {
        if guid.is_empty() || guid.len() > 128 {
            return Err(CoreError::TokenNotFound);
        }
        let redeemed = self
            .users
            .redeem_secret(instance.id, Purpose::FastTrackLogin, &secret_hash(guid), self.common.now())
            .await?;
        let (user_key, public_id) = redeemed?;
        let kind = crate::audit::kinds::SESSION_CREATED;
        self.logins.start_session(instance, user_key, &public_id, kind, None).await
    }

    /// The user behind a live session token.
    pub async fn session_user(&self, instance: &Instance, token: &str) -> Result<UserView, CoreError> {
        let session = self.logins.authenticate(instance, token).await?;
        self.users.user_view(instance.id, session.user_key).await?.ok_or(CoreError::SessionInvalid)
    }
}
