//! Self-registration with an instance's user-service settings (DreamFactory open registration,
//! seed 001), confirmation by an emailed code, and password reset.
//!
//! Open registration off: refused. No email service: the password is required and the user is
//! active at once (an existing address is a conflict, as the seed's contract needs). An email
//! service: the user is pending until they prove the address with the emailed code and choose
//! a password; an existing address answers like a new one and its owner is mailed instead.
//! Confirming or resetting voids every password, secret and session set before, so whoever
//! registered someone else's address first gains nothing.

use crate::common::Common;
use crate::common::client_bucket;
use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::login::Logins;
use crate::login::{LoggedIn, instance_url};
use crate::model::*;
use crate::outbox::Template;
use crate::password::Password;
use crate::ports::{Outbox, Signups, Users};
use crate::ports::{StoreError, UniqueKey};
use crate::screening::Applicant;
use crate::settings::Limit;
use crate::token::secret_hash;
use crate::username::Username;
use serde_json::json;
use std::sync::Arc;

/// Wrong codes a user's live codes survive: all of them. A code is a long random secret, so
/// guessing is hopeless; voiding it after a few wrong tries only let anyone destroy the owner's
/// code. Guesses are limited per client and per address instead.
pub const CODE_MAX_ATTEMPTS: u32 = u32::MAX;

/// The built-in confirmation mail (`open_reg_email_template` unset).
pub const CONFIRMATION_TEMPLATE: &str = Template::UserConfirmation.name();
pub const RESET_TEMPLATE: &str = Template::PasswordReset.name();

/// The hosted page the confirmation and reset mails link to.
pub const CONFIRM_PAGE_PATH: &str = "/user/confirm";

/// The mail service named `default` is the global `[mail]` transport.
pub const DEFAULT_MAIL_SERVICE: &str = "default";

const MAX_TEXT: usize = 100;
/// "Someone tried to register your address" mails per address.
const ACCOUNT_EXISTS_MAILS: Limit = Limit::per_minutes(1, 10);
const RESET_MAILS: Limit = Limit::per_minutes(3, 60);

/// The fields of `POST /api/v2/user/register`, as received.
#[derive(Debug, Clone, Default)]
pub struct RegisterInput {
    pub email: Option<String>,
    pub password: Option<String>,
    pub password_confirmation: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
    /// Log the user in when they are active at once.
    pub login: bool,
    /// The calling app's name, for the mail (`app_name`).
    pub app_name: String,
    /// The calling app (none: a keyless registration), for its signup rules.
    pub app_id: Option<String>,
    pub client: Option<String>,
    /// The CAPTCHA provider's token, when the app asks for one.
    pub captcha_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Active now; with a session when login was asked for.
    Active(Option<LoggedIn>),
    /// A confirmation mail went out (or, for an existing address, its owner was told).
    ConfirmationRequired,
}

/// `POST /api/v2/user/password` with `{email, code, new_password}`.
#[derive(Debug, Clone, Default)]
pub struct CodeInput {
    pub email: String,
    pub code: String,
    pub new_password: String,
    pub password_confirmation: Option<String>,
    pub login: bool,
    pub client: Option<String>,
}

fn optional_text(field: &str, value: &Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
    if v.chars().count() > MAX_TEXT {
        errors.push(FieldError::new(field, "too_long", &format!("must be at most {MAX_TEXT} characters")));
    } else if crate::text::has_forbidden(v) {
        errors.push(FieldError::new(field, "invalid_characters", crate::text::FORBIDDEN_MESSAGE));
    }
    Some(v.to_owned())
}

fn check_confirmation(password: &str, confirmation: &Option<String>, errors: &mut Vec<FieldError>) {
    if confirmation.as_deref().is_some_and(|c| c != password) {
        errors.push(FieldError::new(
            "password_confirmation",
            "password_mismatch",
            "does not match the password",
        ));
    }
}

/// Who an emailed code goes to, as its mail names them.
struct CodeReader<'a> {
    first_name: &'a str,
    last_name: &'a str,
    name: &'a str,
    email: &'a str,
    phone: &'a str,
}

/// DreamFactory's open registration: register, confirm or reset with an emailed code.
#[derive(Clone)]
pub struct OpenRegistration {
    pub(crate) common: Common,
    pub(crate) signups: Arc<dyn Signups>,
    pub(crate) users: Arc<dyn Users>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) logins: Logins,
}

impl OpenRegistration {
    /// The link to the hosted page that asks for the code and a new password.
    fn confirm_link(&self, instance: &Instance, email: &str, code: &str) -> String {
        let base = instance_url(&self.common.settings.public_url, &instance.name);
        let mut url = match url::Url::parse(&format!("{base}{CONFIRM_PAGE_PATH}")) {
            Ok(u) => u,
            Err(_) => return format!("{base}{CONFIRM_PAGE_PATH}"),
        };
        url.query_pairs_mut().append_pair("email", email).append_pair("code", code);
        url.to_string()
    }

    /// A mail carrying an emailed code (confirmation or reset) and the link to the page that
    /// takes it, through the instance's mail service, in its default language.
    fn code_message(
        &self,
        instance: &Instance,
        settings: &UserServiceSettings,
        template: &str,
        reader: &CodeReader<'_>,
        code: &str,
        app_name: &str,
    ) -> Result<NewOutboxMessage, CoreError> {
        let vars = json!({
            "first_name": reader.first_name,
            "last_name": reader.last_name,
            "name": reader.name,
            "email": reader.email,
            "phone": reader.phone,
            "confirm_code": code,
            "link": self.confirm_link(instance, reader.email, code),
            "instance": instance.name,
            "app_name": app_name,
            "expires_hours": self.common.settings.code_ttl.whole_hours(),
        });
        let service = Self::mail_service(instance, settings.open_reg_email_service.as_deref());
        let language = settings.default_language.as_deref().unwrap_or("en");
        self.common.letters.mail_in(template, reader.email, language, settings, vars, service)
    }

    /// A fresh code for `user` and its mail (an operator's resend or required reset).
    pub(crate) fn code_mail(
        &self,
        instance: &Instance,
        settings: &UserServiceSettings,
        which: crate::admin::CodeMail,
        user: &UserRecord,
    ) -> Result<(NewVerification, NewOutboxMessage), CoreError> {
        use crate::admin::CodeMail;
        let (purpose, template) = match which {
            CodeMail::Confirmation => (
                Purpose::EmailConfirm,
                settings.open_reg_email_template.as_deref().unwrap_or(CONFIRMATION_TEMPLATE),
            ),
            CodeMail::Reset => (Purpose::PasswordReset, RESET_TEMPLATE),
        };
        let first_name = user.profile.first_name.clone().unwrap_or_else(|| user.name.clone());
        let reader = CodeReader {
            first_name: &first_name,
            last_name: user.profile.last_name.as_deref().unwrap_or_default(),
            name: &user.name,
            email: &user.email,
            phone: user.profile.phone.as_deref().unwrap_or_default(),
        };
        let code = self.common.tokens.secret_token();
        let app_name = user.app_id.as_deref().unwrap_or(&instance.name);
        let message = self.code_message(instance, settings, template, &reader, &code, app_name)?;
        let verification = NewVerification {
            purpose,
            secret_hash: secret_hash(&code),
            expires_at: self.common.now() + self.common.settings.code_ttl,
        };
        Ok((verification, message))
    }

    /// `default` (or none) is the global transport; others are qualified by the instance.
    fn mail_service(instance: &Instance, name: Option<&str>) -> Option<String> {
        name.filter(|n| *n != DEFAULT_MAIL_SERVICE).map(|n| format!("{}/{n}", instance.name))
    }

    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn register(
        &self,
        instance: &Instance,
        settings: &UserServiceSettings,
        input: RegisterInput,
    ) -> Result<Registered, CoreError> {
        self.common.admit_signup()?;
        if !settings.open_registration {
            return Err(CoreError::OpenRegistrationDisabled);
        }
        let confirm = settings.open_reg_email_service.is_some();
        let mut errors = Vec::new();
        let email = match input.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            None => {
                errors.push(FieldError::new("email", "required", "is required"));
                None
            }
            Some(e) => EmailAddress::parse(e).map_err(|e| errors.push(e.renamed("email"))).ok(),
        };
        let first_name = optional_text("first_name", &input.first_name, &mut errors);
        let last_name = optional_text("last_name", &input.last_name, &mut errors);
        let name = optional_text("name", &input.name, &mut errors);
        let display_name = optional_text("display_name", &input.display_name, &mut errors);
        let phone = optional_text("phone", &input.phone, &mut errors);
        if let Some(p) = &phone
            && !p.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            errors.push(FieldError::new("phone", "invalid_phone", "must be a phone number"));
        }
        let username = input
            .username
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(Username::parse)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let raw_password = input.password.as_deref().filter(|p| !p.is_empty());
        let password = match (confirm, raw_password) {
            // With confirmation the password is chosen on confirming.
            (true, _) => None,
            (false, None) => {
                errors.push(FieldError::new("password", "required", "is required"));
                None
            }
            (false, Some(raw)) => {
                check_confirmation(raw, &input.password_confirmation, &mut errors);
                let mut context: Vec<&str> = [first_name.as_deref(), last_name.as_deref(), name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if let Some(e) = &email {
                    context.extend(e.identifying_words());
                }
                self.common
                    .settings
                    .password
                    .check("password", raw, &context)
                    .map_err(|e| errors.push(e))
                    .ok()
            }
        };
        let Some(email) = email.filter(|_| errors.is_empty()) else {
            return Err(CoreError::Validation(errors));
        };

        self.common
            .budget
            .spend_on_signup(instance, input.client.as_deref(), Some(email.canonical()))
            .await?;

        let applicant = Applicant {
            surface: "dreamfactory",
            app_id: input.app_id.as_deref(),
            email: Some(&email),
            email_field: "email",
            password: password.as_ref(),
            password_field: "password",
            name: name.as_deref(),
            first_name: first_name.as_deref(),
            last_name: last_name.as_deref(),
            language: None,
            client: input.client.as_deref(),
            fields: json!({
                "display_name": display_name,
                "username": username.as_ref().map(Username::as_str),
                "phone": phone,
            }),
            captcha_token: input.captcha_token.as_deref(),
        };
        let admitted = self.common.screening.screen(instance, &applicant).await?;

        // Missing names come from the email's local part, as DreamFactory does.
        let local = email.local_part().to_owned();
        let first_name = first_name.unwrap_or_else(|| local.clone());
        let last_name = last_name.unwrap_or_else(|| local.clone());
        let name = name.unwrap_or_else(|| {
            if input.first_name.is_some() || input.last_name.is_some() {
                format!("{first_name} {last_name}").trim().to_owned()
            } else {
                local.clone()
            }
        });
        let display_name = display_name.unwrap_or_else(|| name.clone());

        // One hash on every path, so an existing address takes as long as a new one.
        let password = password.unwrap_or_else(|| Password::for_verification(&self.common.tokens.password()));
        let password_hash = self.common.hasher.hash(&password).await?;
        let now = self.common.now();
        let code = self.common.tokens.secret_token();
        let confirmation = if confirm {
            let reader = CodeReader {
                first_name: &first_name,
                last_name: &last_name,
                name: &name,
                email: email.as_entered(),
                phone: phone.as_deref().unwrap_or_default(),
            };
            let template = settings.open_reg_email_template.as_deref().unwrap_or(CONFIRMATION_TEMPLATE);
            let message = self.code_message(instance, settings, template, &reader, &code, &input.app_name)?;
            let verification = NewVerification {
                purpose: Purpose::EmailConfirm,
                secret_hash: secret_hash(&code),
                expires_at: now + self.common.settings.code_ttl,
            };
            Some((verification, message))
        } else {
            None
        };
        let public_id = self.common.tokens.public_id("usr");
        let surface = ("dreamfactory", input.app_id.as_deref(), None);
        let audit = crate::audit::signed_up(instance, input.client.as_deref(), now, surface);
        let audit = self.common.publishing(&instance.name, audit);
        let registration = NewRegistration {
            audit,
            user: NewUser {
                public_id,
                uuid: self.common.uuid(),
                email: email.as_entered().into(),
                email_canonical: email.canonical().into(),
                username: username.as_ref().map(|u| u.as_str().to_owned()),
                username_canonical: username.as_ref().map(|u| u.canonical().to_owned()),
                name,
                language: "en".into(),
                status: if confirm { UserStatus::Pending } else { UserStatus::Active },
                password_hash,
                metadata: admitted.metadata,
            },
            profile: UserProfile {
                first_name: Some(first_name),
                last_name: Some(last_name),
                display_name: Some(display_name),
                company: None,
                phone,
            },
            role: settings.open_reg_role.clone(),
            verification: confirmation.as_ref().map(|(v, _)| v.clone()),
            message: confirmation.map(|(_, m)| m),
            replace_pending_issued_before: now - self.common.settings.resend_interval,
            created_at: now,
        };
        let outcome = match self.signups.register_user(instance.id, &registration).await {
            Ok(o) => o,
            Err(StoreError::Unique(UniqueKey::Username)) => return Err(CoreError::UsernameTaken),
            Err(StoreError::Unique(UniqueKey::Email)) if !confirm => return Err(CoreError::EmailTaken),
            // A concurrent registration of the same new address won the insert.
            Err(StoreError::Unique(UniqueKey::Email)) => return Ok(Registered::ConfirmationRequired),
            Err(e) => return Err(e.into()),
        };
        match outcome {
            RegistrationOutcome::Created { user_key } | RegistrationOutcome::ReplacedPending { user_key } => {
                if confirm {
                    self.common.wake_outbox();
                    return Ok(Registered::ConfirmationRequired);
                }
                let session = if input.login {
                    let kind = crate::audit::kinds::LOGIN_SUCCEEDED;
                    let client = input.client.as_deref();
                    Some(
                        self.logins
                            .start_session(instance, user_key, &registration.user.public_id, kind, client)
                            .await?,
                    )
                } else {
                    None
                };
                Ok(Registered::Active(session))
            }
            RegistrationOutcome::PendingRecently => Ok(Registered::ConfirmationRequired),
            RegistrationOutcome::Exists { .. } if !confirm => Err(CoreError::EmailTaken),
            RegistrationOutcome::Exists { email: owner_email, name } => {
                let key = format!("mail:account_exists:{}:{}", instance.id.0, email.canonical());
                if self.common.budget.within(&key, ACCOUNT_EXISTS_MAILS).await? {
                    let login_url = instance_url(&self.common.settings.public_url, &instance.name);
                    let vars = json!({
                        "name": name,
                        "instance": instance.name,
                        "app_name": input.app_name,
                        "login_url": login_url,
                    });
                    let service = Self::mail_service(instance, settings.open_reg_email_service.as_deref());
                    let message = self.common.letters.mail_via(
                        Template::AccountExists.name(),
                        &owner_email,
                        "en",
                        vars,
                        service,
                    )?;
                    self.outbox.enqueue(instance.id, &message).await?;
                    self.common.wake_outbox();
                }
                Ok(Registered::ConfirmationRequired)
            }
        }
    }

    /// The audit entry of a redeemed code, its type the store's to set from the code's purpose
    /// (`audit::redeemed`): marked to be published when an endpoint wants either kind.
    fn redemption_audit(&self, instance: &Instance, client: Option<&str>) -> NewAuditEvent {
        use crate::audit::kinds;
        let mut audit =
            crate::audit::pending_user(kinds::USER_CONFIRMED, instance, client, self.common.now());
        let events = &self.common.settings.events;
        audit.publish = [kinds::USER_CONFIRMED, kinds::USER_PASSWORD_RESET]
            .iter()
            .any(|kind| events.wanted(&instance.name, kind, &audit.detail));
        audit
    }

    /// Confirm a registration or complete a reset with the emailed code and a new password.
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn redeem_code(
        &self,
        instance: &Instance,
        input: CodeInput,
    ) -> Result<Option<LoggedIn>, CoreError> {
        let mut errors = Vec::new();
        let email = EmailAddress::parse(input.email.trim()).map_err(|e| errors.push(e.renamed("email"))).ok();
        let code = input.code.trim();
        if code.is_empty() {
            errors.push(FieldError::new("code", "required", "is required"));
        }
        check_confirmation(&input.new_password, &input.password_confirmation, &mut errors);
        let context: Vec<&str> = email.iter().map(EmailAddress::local_part).collect();
        let password = self
            .common
            .settings
            .password
            .check("new_password", &input.new_password, &context)
            .map_err(|e| errors.push(e))
            .ok();
        let (Some(email), Some(password), true) = (email, password, errors.is_empty()) else {
            return Err(CoreError::Validation(errors));
        };
        if code.len() > 128 {
            return Err(CoreError::TokenNotFound);
        }
        let limits = &self.common.settings.rate_limits;
        if let Some(client) = &input.client {
            self.common
                .budget
                .limit(&format!("code:client:{}", client_bucket(client)), limits.login_per_client)
                .await?;
        }
        // Wrong guesses at one address are counted once they are known to be wrong, so a
        // stranger's guesses never stop the owner's right code.
        let wrong_guess = || async {
            let key = format!("code:email:{}:{}", instance.id.0, email.canonical());
            self.common.budget.limit(&key, limits.login_per_identifier).await
        };
        let new_password_hash = self.common.hasher.hash(&password).await?;
        let redemption = CodeRedemption {
            email_canonical: email.canonical().into(),
            purposes: vec![Purpose::EmailConfirm, Purpose::PasswordReset],
            secret_hash: secret_hash(code),
            new_password_hash,
            now: self.common.now(),
            max_attempts: CODE_MAX_ATTEMPTS,
            audit: self.redemption_audit(instance, input.client.as_deref()),
        };
        match self.signups.redeem_code(instance.id, &redemption).await? {
            Ok((user_key, public_id)) if input.login => {
                let kind = crate::audit::kinds::SESSION_CREATED;
                Ok(Some(
                    self.logins
                        .start_session(instance, user_key, &public_id, kind, input.client.as_deref())
                        .await?,
                ))
            }
            Ok(_) => Ok(None),
            Err(RedeemError::NotFound) => {
                wrong_guess().await?;
                Err(CoreError::TokenNotFound)
            }
            Err(RedeemError::AlreadyUsed) => Err(CoreError::TokenUsed),
            Err(RedeemError::Expired) => Err(CoreError::TokenExpired),
        }
    }

    /// Mail a reset code to a known address; the answer is the same either way. `app_name` is
    /// the name the mail gives the product (the calling app's).
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn request_reset(
        &self,
        instance: &Instance,
        settings: &UserServiceSettings,
        (email, app_name): (&str, &str),
        client: Option<String>,
    ) -> Result<(), CoreError> {
        let email =
            EmailAddress::parse(email.trim()).map_err(|e| CoreError::Validation(vec![e.renamed("email")]))?;
        if let Some(client) = &client {
            self.common
                .budget
                .limit(
                    &format!("reset:client:{}:{}", instance.id.0, client_bucket(client)),
                    self.common.settings.rate_limits.signup_per_client,
                )
                .await?;
        }
        // Known and unknown addresses take the same steps before the answer, so its time does
        // not tell them apart: the lookup, the per-address window (counted for unknown
        // addresses too), a code, and a sealed message (dropped when unknown). The one write
        // only a known address needs happens after the answer, in the background.
        let user = self.users.user_by_email(instance.id, email.canonical()).await?;
        let within = self
            .common
            .budget
            .within(&format!("mail:reset:{}:{}", instance.id.0, email.canonical()), RESET_MAILS)
            .await?;
        let code = self.common.tokens.secret_token();
        let (first_name, name, to) = match &user {
            Some(u) => (
                u.profile.first_name.clone().unwrap_or_else(|| u.name.clone()),
                u.name.clone(),
                u.email.clone(),
            ),
            None => (String::new(), String::new(), email.as_entered().to_owned()),
        };
        let reader =
            CodeReader { first_name: &first_name, last_name: "", name: &name, email: &to, phone: "" };
        let message = self.code_message(instance, settings, RESET_TEMPLATE, &reader, &code, app_name)?;
        // A FastTrack owner whose address is unproven gets no reset: the mail that proves it
        // (or releases it) is its way in.
        let resettable = |u: &UserView| !matches!(u.status, UserStatus::Inactive | UserStatus::Unconfirmed);
        let Some(user) = user.filter(|u| resettable(u) && within) else {
            return Ok(());
        };
        let verification = NewVerification {
            purpose: Purpose::PasswordReset,
            secret_hash: secret_hash(&code),
            expires_at: self.common.now() + self.common.settings.code_ttl,
        };
        let (store, wake, instance_id) = (self.users.clone(), self.common.outbox_wake.clone(), instance.id);
        self.common.background.spawn(async move {
            match store.issue_secret(instance_id, user.key, &verification, &message).await {
                Ok(()) => wake.notify_one(),
                Err(e) => tracing::error!(error = %e, "could not write a reset code and its mail"),
            }
        });
        Ok(())
    }

    /// The user behind a login, for session responses.
    pub async fn user(&self, instance: &Instance, user_key: i64) -> Result<UserView, CoreError> {
        self.users.user_view(instance.id, user_key).await?.ok_or(CoreError::SessionInvalid)
    }
}
