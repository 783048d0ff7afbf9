//! `register`: validate, hash once, write account + pending user + activation secret + mail in
//! one transaction. An email that exists already gets an "account exists" mail and an answer
//! that looks exactly like a new signup.

use crate::country::CountryCode;
use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::model::*;
use crate::password::Password;
use crate::ports::{StoreError, UniqueKey};
use crate::screening::Applicant;
use crate::signup::Signup;
use crate::token::secret_hash;
use crate::username::Username;
use serde_json::json;

/// The fields of `POST /v1/auth/signup`, as received.
#[derive(Debug, Clone, Default)]
pub struct SignupInput {
    pub domain_id: String,
    pub account_title: String,
    pub name: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: String,
    pub country_id: String,
    /// Who is asking, for rate limits.
    pub client: Option<String>,
    /// The CAPTCHA provider's token, when the app asks for one.
    pub captcha_token: Option<String>,
}

#[derive(Debug)]
struct SignupCommand {
    domain_id: String,
    account_title: String,
    name: String,
    username: Option<Username>,
    password: Option<Password>,
    email: EmailAddress,
    country: CountryCode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupAccepted {
    /// What the response carries: the emailed token, or an opaque reference when the app keeps
    /// tokens out of responses. Looks the same whether or not the email was new.
    pub token: String,
}

const MAX_TEXT: usize = 200;
const GENERATED_USERNAME_TRIES: usize = 5;
/// "Someone tried to sign up with your address" mails per address.
const ACCOUNT_EXISTS_MAILS: crate::settings::Limit = crate::settings::Limit::per_minutes(1, 10);

fn required_text(field: &str, value: &str, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError::new(field, "required", "is required"));
    } else if v.chars().count() > MAX_TEXT {
        errors.push(FieldError::new(field, "too_long", &format!("must be at most {MAX_TEXT} characters")));
    } else if crate::text::has_forbidden(v) {
        errors.push(FieldError::new(field, "invalid_characters", crate::text::FORBIDDEN_MESSAGE));
    }
    v.to_owned()
}

fn blank_to_none(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

impl Signup {
    fn validate_signup(&self, input: &SignupInput) -> Result<SignupCommand, CoreError> {
        let mut errors = Vec::new();
        let domain_id = required_text("domain_id", &input.domain_id, &mut errors);
        let account_title = required_text("account_title", &input.account_title, &mut errors);
        let name = required_text("name", &input.name, &mut errors);
        let email = EmailAddress::parse(&input.email).map_err(|e| errors.push(e)).ok();
        let country = CountryCode::parse("country_id", &input.country_id).map_err(|e| errors.push(e)).ok();
        let username = blank_to_none(&input.username)
            .map(Username::parse)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let password = match blank_to_none(&input.password) {
            None => None,
            Some(raw) => {
                let mut context = vec![name.as_str()];
                if let Some(u) = blank_to_none(&input.username) {
                    context.push(u);
                }
                if let Some(e) = &email {
                    context.extend(e.identifying_words());
                }
                if blank_to_none(&input.username).is_some_and(|u| u.trim() == raw.trim()) {
                    errors.push(FieldError::new(
                        "password",
                        "password_equals_username",
                        "must not be the username",
                    ));
                    None
                } else {
                    self.common
                        .settings
                        .password
                        .check("password", raw, &context)
                        .map_err(|e| errors.push(e))
                        .ok()
                }
            }
        };
        match (email, country) {
            (Some(email), Some(country)) if errors.is_empty() => {
                Ok(SignupCommand { domain_id, account_title, name, username, password, email, country })
            }
            _ => Err(CoreError::Validation(errors)),
        }
    }

    fn generated_username(&self, name: &str, attempt: usize) -> Result<Username, CoreError> {
        let base = Username::base_from_name(name);
        let candidate = if attempt == 0 && base.len() >= crate::username::MIN_USERNAME_CHARS {
            base
        } else {
            let digits = if attempt == 0 {
                2.max(crate::username::MIN_USERNAME_CHARS.saturating_sub(base.len()))
            } else {
                4
            };
            format!("{base}{}", self.common.tokens.numeric_code(digits))
        };
        Username::parse(&candidate)
            .map_err(|e| CoreError::Internal(format!("generated username invalid: {}", e.code)))
    }

    #[tracing::instrument(skip_all, fields(instance = %instance.name, domain_id = %input.domain_id))]
    pub async fn register(
        &self,
        instance: &Instance,
        input: SignupInput,
    ) -> Result<SignupAccepted, CoreError> {
        self.common.admit_signup()?;
        let cmd = self.validate_signup(&input)?;
        self.common
            .budget
            .spend_on_signup(instance, input.client.as_deref(), Some(cmd.email.canonical()))
            .await?;

        let (app, domain) =
            self.common.directory.signup_domain(instance, &cmd.domain_id).await?.ok_or_else(|| {
                CoreError::field("domain_id", "unknown_domain", "is not a signup domain of this instance")
            })?;
        if !domain.allow_signup {
            return Err(CoreError::field("domain_id", "signup_not_allowed", "does not allow signup"));
        }
        let applicant = Applicant {
            surface: "v1",
            app_id: Some(&app.id),
            email: Some(&cmd.email),
            email_field: "email",
            password: cmd.password.as_ref(),
            password_field: "password",
            name: Some(&cmd.name),
            first_name: None,
            last_name: None,
            language: None,
            client: input.client.as_deref(),
            fields: json!({
                "domain_id": cmd.domain_id,
                "account_title": cmd.account_title,
                "username": cmd.username.as_ref().map(Username::as_str),
                "country_id": cmd.country.as_str(),
            }),
            captcha_token: input.captcha_token.as_deref(),
        };
        let admitted = self.common.screening.screen(instance, &applicant).await?;

        // One hash per request, on every path (the "exists" path included, for equal timing).
        let password_generated = cmd.password.is_none();
        let password = cmd
            .password
            .clone()
            .unwrap_or_else(|| Password::for_verification(&self.common.tokens.password()));
        let password_hash = self.common.hasher.hash(&password).await?;

        let token = self.common.tokens.secret_token();
        let now = self.common.now();
        let account_id = self.common.tokens.public_id("act");
        let user_id = self.common.tokens.public_id("usr");
        let link = activation_link(&app.signup_url, &token);

        for attempt in 0..GENERATED_USERNAME_TRIES {
            let username = match &cmd.username {
                Some(u) => u.clone(),
                None => self.generated_username(&cmd.name, attempt)?,
            };
            let mut vars = json!({
                "name": cmd.name,
                "instance": instance.name,
                "app_id": app.id,
                "app_name": app.name,
                "account_title": cmd.account_title,
                "link": link,
                "token": token,
                "username": username.as_str(),
                "username_generated": cmd.username.is_none(),
                "password_generated": password_generated,
                "expires_hours": self.common.settings.activation_ttl.whole_hours(),
            });
            if password_generated {
                vars["password"] = json!(password.expose());
            }
            let signup = NewSignup {
                audit: self.common.publishing(
                    &instance.name,
                    crate::audit::signed_up(
                        instance,
                        input.client.as_deref(),
                        now,
                        ("v1", Some(&app.id), Some(&account_id)),
                    ),
                ),
                account: NewAccount {
                    public_id: account_id.clone(),
                    title: cmd.account_title.clone(),
                    country: cmd.country.as_str().into(),
                    app_id: app.id.clone(),
                    domain_id: domain.id.clone(),
                    version_id: app.schema_version.clone(),
                },
                user: NewUser {
                    public_id: user_id.clone(),
                    uuid: self.common.uuid(),
                    email: cmd.email.as_entered().into(),
                    email_canonical: cmd.email.canonical().into(),
                    username: Some(username.as_str().into()),
                    username_canonical: Some(username.canonical().into()),
                    name: cmd.name.clone(),
                    language: "en".into(),
                    status: UserStatus::Pending,
                    password_hash: password_hash.clone(),
                    metadata: admitted.metadata.clone(),
                },
                verification: NewVerification {
                    purpose: Purpose::Activation,
                    secret_hash: secret_hash(&token),
                    expires_at: now + self.common.settings.activation_ttl,
                },
                message: self.common.letters.mail(
                    crate::outbox::Template::SignupActivation.name(),
                    cmd.email.as_entered(),
                    "en",
                    vars,
                )?,
                replace_pending_issued_before: now - self.common.settings.resend_interval,
            };
            match self.signups.create_signup(instance.id, &signup).await {
                Ok(SignupOutcome::Created | SignupOutcome::ReplacedPending) => {
                    self.common.wake_outbox();
                    let token = if app.activation_token_in_response {
                        token
                    } else {
                        self.common.tokens.secret_token()
                    };
                    return Ok(SignupAccepted { token });
                }
                Ok(SignupOutcome::PendingRecently) => {
                    // A token of the same shape that activates nothing.
                    return Ok(SignupAccepted { token: self.common.tokens.secret_token() });
                }
                Ok(SignupOutcome::EmailExists { email, name }) => {
                    // The owner hears of it, at most once per window (SECURITY.md 23).
                    let key = format!("mail:account_exists:{}:{}", instance.id.0, cmd.email.canonical());
                    if self.common.budget.within(&key, ACCOUNT_EXISTS_MAILS).await? {
                        let vars = json!({
                            "name": name,
                            "instance": instance.name,
                            "app_id": app.id,
                            "app_name": app.name,
                            "login_url": app.signup_url,
                        });
                        let message = self.common.letters.mail(
                            crate::outbox::Template::AccountExists.name(),
                            &email,
                            "en",
                            vars,
                        )?;
                        self.outbox.enqueue(instance.id, &message).await?;
                        self.common.wake_outbox();
                    }
                    return Ok(SignupAccepted { token: self.common.tokens.secret_token() });
                }
                Err(StoreError::Unique(UniqueKey::Username)) if cmd.username.is_none() => continue,
                Err(StoreError::Unique(UniqueKey::Username)) => return Err(CoreError::UsernameTaken),
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Internal("could not find a free generated username".into()))
    }
}

impl Signup {
    /// A fresh activation secret for a pending `/v1` user and its mail (an operator's resend).
    /// A generated password is not sent again: only its hash is kept.
    pub(crate) async fn activation_mail(
        &self,
        instance: &Instance,
        user: &UserRecord,
    ) -> Result<(NewVerification, NewOutboxMessage), CoreError> {
        let app_id = user.app_id.as_deref().unwrap_or_default();
        let app = self.common.directory.apps.app(instance.id, app_id).await?.ok_or(CoreError::AppNotFound)?;
        let token = self.common.tokens.secret_token();
        let vars = json!({
            "name": user.name,
            "instance": instance.name,
            "app_id": app.id,
            "app_name": app.name,
            "account_title": "",
            "link": activation_link(&app.signup_url, &token),
            "token": token,
            "username": user.username.clone().unwrap_or_default(),
            "username_generated": false,
            "password_generated": false,
            "expires_hours": self.common.settings.activation_ttl.whole_hours(),
        });
        let template = crate::outbox::Template::SignupActivation.name();
        let message = self.common.letters.mail(template, &user.email, &user.language, vars)?;
        let verification = NewVerification {
            purpose: Purpose::Activation,
            secret_hash: secret_hash(&token),
            expires_at: self.common.now() + self.common.settings.activation_ttl,
        };
        Ok((verification, message))
    }
}

/// The activation link: the app's sign-up URL with the token as a query parameter (for
/// server-side pages) and in a fragment of the form `#&token=…`, which the seed's own snippet
/// `new URLSearchParams(window.location.hash).get('token')` reads verbatim (`URLSearchParams`
/// does not strip the leading `#`, so `#token=…` would give it the key `#token`).
pub fn activation_link(signup_url: &str, token: &str) -> String {
    match url::Url::parse(signup_url) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("token", token);
            url.set_fragment(Some(&format!("&token={token}")));
            url.to_string()
        }
        // Configuration validates sign-up URLs; this is a fallback that still works.
        Err(_) => format!("{signup_url}?token={token}#&token={token}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_carries_the_token_in_query_and_fragment() {
        let link = activation_link("http://localhost:3000/activate?lang=en", "abc123");
        assert_eq!(link, "http://localhost:3000/activate?lang=en&token=abc123#&token=abc123");
    }
}
