//! FastEditor's partner signup (seed 002): an active user, in the caller's language, welcomed
//! by mail. Called by an app that proves itself with an API key; the surface resolves the app.

use crate::common::Common;
use crate::contract_account::codes;
use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::language::Language;
use crate::model::*;
use crate::ports::InstanceSettings;
use crate::ports::{StoreError, UniqueKey};
use crate::screening::Applicant;
use serde_json::json;
use std::sync::Arc;

pub const WELCOME_TEMPLATE: &str = crate::outbox::Template::Welcome.name();

/// FastEditor's signup body, as received.
#[derive(Debug, Clone, Default)]
pub struct PartnerSignupInput {
    pub user_name: Option<String>,
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub language: Option<String>,
    pub client: Option<String>,
    /// The CAPTCHA provider's token (`X-Captcha-Token`), when the app asks for one.
    pub captcha_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSignedUp {
    pub id: uuid::Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub user_name: String,
}

fn name_part(field: &str, value: &Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
    if v.chars().count() > 100 || crate::text::has_forbidden(v) {
        errors.push(FieldError::new(
            field,
            "invalid",
            "must be at most 100 characters, without control characters",
        ));
    }
    Some(v.to_owned())
}

/// FastEditor's partner signup.
#[derive(Clone)]
pub struct PartnerSignup {
    pub(crate) common: Common,
    pub(crate) signups: Arc<dyn crate::ports::Signups>,
    pub(crate) instance_settings: Arc<dyn InstanceSettings>,
    pub(crate) users: Arc<dyn crate::ports::Users>,
}

impl PartnerSignup {
    /// FastEditor partner signup: an active user, in the caller's language, welcomed by mail.
    #[tracing::instrument(skip_all, fields(instance = %instance.name, app = %app.id))]
    pub async fn sign_up(
        &self,
        instance: &Instance,
        app: &App,
        input: PartnerSignupInput,
    ) -> Result<PartnerSignedUp, CoreError> {
        self.common.admit_signup()?;
        let mut errors = Vec::new();
        let email = match input.user_name.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => {
                errors.push(FieldError::new("userName", "required", "is required"));
                None
            }
            Some(u) => EmailAddress::parse(u)
                .map_err(|_| {
                    errors.push(FieldError::new(
                        "userName",
                        codes::INVALID_USERNAME,
                        "must be an email address",
                    ))
                })
                .ok(),
        };
        let first_name = name_part("firstName", &input.first_name, &mut errors);
        let last_name = name_part("lastName", &input.last_name, &mut errors);
        let language = match input.language.as_deref().filter(|l| !l.trim().is_empty()) {
            None => {
                errors.push(FieldError::new("language", "required", "is required"));
                None
            }
            Some(l) => {
                Language::parse("language", l).map(Language::into_string).map_err(|e| errors.push(e)).ok()
            }
        };
        let password = match input.password.as_deref().filter(|p| !p.is_empty()) {
            None => {
                errors.push(FieldError::new("password", "required", "is required"));
                None
            }
            Some(raw) => {
                let mut context: Vec<&str> =
                    [first_name.as_deref(), last_name.as_deref()].into_iter().flatten().collect();
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
        let (Some(email), Some(language), Some(password), true) =
            (email, language, password, errors.is_empty())
        else {
            return Err(CoreError::Validation(errors));
        };
        self.common
            .budget
            .spend_on_signup(instance, input.client.as_deref(), Some(email.canonical()))
            .await?;
        let applicant = Applicant {
            surface: "fasteditor",
            app_id: Some(&app.id),
            email: Some(&email),
            email_field: "userName",
            password: Some(&password),
            password_field: "password",
            name: None,
            first_name: first_name.as_deref(),
            last_name: last_name.as_deref(),
            language: Some(&language),
            client: input.client.as_deref(),
            fields: json!({}),
            captcha_token: input.captcha_token.as_deref(),
        };
        let admitted = self.common.screening.screen(instance, &applicant).await?;
        let password_hash = self.common.hasher.hash(&password).await?;
        let uuid = self.common.uuid();
        let name =
            [first_name.as_deref(), last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let vars = json!({
            "first_name": first_name.clone().unwrap_or_default(),
            "name": name,
            "email": email.as_entered(),
            "instance": instance.name,
            "app_id": app.id,
            "app_name": app.name,
        });
        let settings = self.instance_settings.instance_settings(instance.id).await?;
        let message = self.common.letters.mail_in(
            WELCOME_TEMPLATE,
            email.as_entered(),
            &language,
            &settings,
            vars,
            None,
        )?;
        let now = self.common.now();
        let public_id = self.common.tokens.public_id("usr");
        let surface = ("fasteditor", Some(app.id.as_str()), None);
        let audit = crate::audit::signed_up(instance, input.client.as_deref(), now, surface);
        let audit = self.common.publishing(&instance.name, audit);
        let registration = NewRegistration {
            audit,
            user: NewUser {
                public_id,
                uuid,
                email: email.as_entered().into(),
                email_canonical: email.canonical().into(),
                username: None,
                username_canonical: None,
                name,
                language,
                status: UserStatus::Active,
                password_hash,
                metadata: admitted.metadata,
            },
            profile: UserProfile {
                first_name: first_name.clone(),
                last_name: last_name.clone(),
                ..Default::default()
            },
            role: None,
            verification: None,
            message: Some(message),
            replace_pending_issued_before: now,
            created_at: now,
        };
        match self.signups.register_user(instance.id, &registration).await {
            Ok(RegistrationOutcome::Created { .. }) => {
                self.common.wake_outbox();
                Ok(PartnerSignedUp { id: uuid, first_name, last_name, user_name: email.as_entered().into() })
            }
            Ok(_) | Err(StoreError::Unique(UniqueKey::Email)) => {
                Err(crate::common::address_in_use(self.users.as_ref(), instance.id, email.canonical()).await)
            }
            Err(e) => Err(e.into()),
        }
    }
}
