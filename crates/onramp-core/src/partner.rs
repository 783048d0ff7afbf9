//! Partner and contract signups: FastEditor's partner signup (seed 002) and dialogportal's
//! contract accounts with SMS verification (seed 003). Both are called by an app that proves
//! itself with an API key; the surface resolves the app, these use cases do the rest.

use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::model::*;
use crate::password::Password;
use crate::ports::{StoreError, UniqueKey};
use crate::service::{Limit, Onramp};
use serde_json::{Map, Value, json};

/// Texted codes: six digits, ten minutes, five tries across resends.
pub const SMS_CODE_DIGITS: usize = 6;
pub const SMS_CODE_TTL: time::Duration = time::Duration::minutes(10);
pub const SMS_MAX_ATTEMPTS: u32 = 5;
/// Texted codes are six digits: stored as a keyed hash, never a plain one.
const SMS_HASH_PURPOSE: &str = "sms-code";

impl Onramp {
    /// The stored form of a texted code: keyed, and bound to its account (by uuid), so two
    /// accounts texted the same six digits hold different hashes.
    fn sms_code_hash(&self, account_uuid: &str, code: &str) -> String {
        self.seal.keyed_hash(SMS_HASH_PURPOSE, &format!("{account_uuid}:{code}"))
    }
}
/// Resends per number.
const SMS_RESEND_BURST: Limit = Limit::per_minutes(1, 1);
const SMS_RESEND_HOURLY: Limit = Limit::per_minutes(5, 60);

pub const WELCOME_TEMPLATE: &str = crate::outbox::Template::Welcome.name();
pub const SMS_TEMPLATE: &str = crate::outbox::Template::SmsVerification.name();

/// Field error codes that the contract surface turns into dialogportal's sub-codes.
pub mod codes {
    /// 400.3
    pub const INVALID_PHONE: &str = "invalid_phone";
    /// 400.4
    pub const PHONE_IN_USE: &str = "phone_in_use";
    /// 400.5
    pub const PHONE_IN_USE_INACTIVE: &str = "phone_in_use_inactive";
    pub const INVALID_LANGUAGE: &str = "invalid_language";
    pub const INVALID_USERNAME: &str = "invalid_username";
}

/// A BCP 47 language tag, lower-cased (`nl`, `en-gb`, `zh-hant-tw`).
pub fn language_tag(input: &str) -> Option<String> {
    let tag = input.trim().to_ascii_lowercase().replace('_', "-");
    let mut parts = tag.split('-');
    let primary = parts.next()?;
    let primary_ok = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let rest_ok = parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    (primary_ok && rest_ok && tag.len() <= 35).then_some(tag)
}

/// A phone number in E.164 (`+16502530000`), from any common international spelling.
pub fn e164(input: &str) -> Option<String> {
    let number = phonenumber::parse(None, input.trim()).ok()?;
    phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

/// FastEditor's signup body, as received.
#[derive(Debug, Clone, Default)]
pub struct PartnerSignupInput {
    pub user_name: Option<String>,
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub language: Option<String>,
    pub client: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSignedUp {
    pub id: uuid::Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub user_name: String,
}

/// What a contract account creation came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ContractResult {
    Created(ContractAccount),
    /// An account holds one of the unique values: "Get Account Data" for it.
    Exists {
        dp_key: i64,
    },
    /// An account holds one of the unique values, but it is another app's.
    ExistsElsewhere,
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

impl Onramp {
    /// FastEditor partner signup: an active user, in the caller's language, welcomed by mail.
    #[tracing::instrument(skip_all, fields(instance = %instance.name, app = %app.id))]
    pub async fn partner_signup(
        &self,
        instance: &Instance,
        app: &App,
        input: PartnerSignupInput,
    ) -> Result<PartnerSignedUp, CoreError> {
        self.admit_signup()?;
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
            Some(l) => language_tag(l).or_else(|| {
                errors.push(FieldError::new(
                    "language",
                    codes::INVALID_LANGUAGE,
                    "must be a language tag like nl or en-gb",
                ));
                None
            }),
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
                self.settings.password.check("password", raw, &context).map_err(|e| errors.push(e)).ok()
            }
        };
        let (Some(email), Some(language), Some(password), true) =
            (email, language, password, errors.is_empty())
        else {
            return Err(CoreError::Validation(errors));
        };
        self.spend_signup_budget(instance, input.client.as_deref(), Some(email.canonical())).await?;
        let password_hash = self.hasher.hash(&password).await?;
        let uuid = self.uuid();
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
        let settings = self.store.instance_settings(instance.id).await?;
        let message =
            self.outbox_mail_in(WELCOME_TEMPLATE, email.as_entered(), &language, &settings, vars, None)?;
        let now = self.now();
        let registration = NewRegistration {
            user: NewUser {
                public_id: self.tokens.public_id("usr"),
                uuid,
                email: email.as_entered().into(),
                email_canonical: email.canonical().into(),
                username: None,
                username_canonical: None,
                name,
                language,
                status: UserStatus::Active,
                password_hash,
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
        match self.store.register_user(instance.id, &registration).await {
            Ok(RegistrationOutcome::Created { .. }) => {
                self.wake_outbox();
                Ok(PartnerSignedUp { id: uuid, first_name, last_name, user_name: email.as_entered().into() })
            }
            Ok(_) | Err(StoreError::Unique(UniqueKey::Email)) => Err(CoreError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// The contract an app's request names (or its default contract).
    pub async fn app_contract(
        &self,
        instance: &Instance,
        app: &App,
        id: Option<&str>,
    ) -> Result<Contract, CoreError> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => self
                .store
                .app_settings(instance.id, &app.id)
                .await?
                .default_contract
                .ok_or(CoreError::ContractNotFound)?,
        };
        self.store.contract(instance.id, &app.id, &id).await?.ok_or(CoreError::ContractNotFound)
    }

    /// dialogportal "Create account": validate the body against the contract, then create the
    /// account (pending with a texted code when a phone must be verified).
    #[tracing::instrument(skip_all, fields(instance = %instance.name, app = %app.id, contract = %contract.id))]
    pub async fn create_contract_account(
        &self,
        instance: &Instance,
        app: &App,
        contract: &Contract,
        body: &Map<String, Value>,
        client: Option<&str>,
    ) -> Result<ContractResult, CoreError> {
        self.admit_signup()?;
        let mut errors = Vec::new();
        for key in body.keys() {
            if !contract.fields.iter().any(|f| &f.name == key) {
                errors.push(FieldError::new(key, "unknown_field", "is not a field of this contract"));
            }
        }
        let mut profile = Map::new();
        let mut unique = Vec::new();
        let (mut email, mut raw_password, mut phone, mut sms_phone, mut name) =
            (None, None, None, None, None);
        for field in &contract.fields {
            let value = body.get(&field.name).filter(|v| !v.is_null() && *v != &json!(""));
            let Some(value) = value else {
                if field.required {
                    errors.push(FieldError::new(&field.name, "required", "is required"));
                }
                continue;
            };
            match check_field(field, value) {
                Err(e) => errors.push(e),
                Ok(Checked { stored, unique_key, kind }) => {
                    match kind {
                        FieldType::Email => {
                            email = EmailAddress::parse(stored.as_str().unwrap_or_default()).ok()
                        }
                        FieldType::Password => {
                            // Checked once every other field is known: it must not be one of them.
                            raw_password =
                                Some((field.name.clone(), stored.as_str().unwrap_or_default().to_owned()));
                            continue;
                        }
                        FieldType::Phone => {
                            let number = stored.as_str().unwrap_or_default().to_owned();
                            if field.verify.as_deref() == Some("sms") {
                                sms_phone = Some((field.name.clone(), number.clone()));
                            }
                            phone.get_or_insert(number);
                        }
                        FieldType::String if field.name == "name" => {
                            name = stored.as_str().map(str::to_owned)
                        }
                        _ => {}
                    }
                    if field.unique {
                        unique.push((field.name.clone(), unique_key));
                    }
                    profile.insert(field.name.clone(), stored);
                }
            }
        }
        let mut password = None;
        if let Some((field, raw)) = raw_password {
            let mut context: Vec<&str> = profile.values().filter_map(Value::as_str).collect();
            if let Some(e) = &email {
                context.extend(e.identifying_words());
            }
            match self.settings.password.check("password", &raw, &context) {
                Ok(p) => password = Some(p),
                Err(e) => errors.push(e.renamed(&field)),
            }
        }
        if !errors.is_empty() {
            return Err(CoreError::Validation(errors));
        }
        let canonical = email.as_ref().map(|e| e.canonical().to_owned());
        self.spend_signup_budget(instance, client, canonical.as_deref()).await?;

        let password = password.unwrap_or_else(|| Password::for_verification(&self.tokens.password()));
        let password_hash = self.hasher.hash(&password).await?;
        let uuid = self.uuid();
        let ext_key = self
            .store
            .app_settings(instance.id, &app.id)
            .await?
            .ext_key_type
            .map(|t| (t, self.tokens.public_id("ext")));
        let now = self.now();
        let sms = match &sms_phone {
            Some((_, number)) => {
                let code = self.tokens.numeric_code(SMS_CODE_DIGITS);
                let message = self.outbox_sms(number, "en", json!({ "code": code, "app_name": app.name }))?;
                let verification = NewVerification {
                    purpose: Purpose::Sms,
                    secret_hash: self.sms_code_hash(&uuid.to_string(), &code),
                    expires_at: now + SMS_CODE_TTL,
                };
                Some((verification, message))
            }
            None => None,
        };
        let account = NewContractAccount {
            app_id: app.id.clone(),
            user: NewUser {
                public_id: self.tokens.public_id("usr"),
                uuid,
                email: email.as_ref().map(|e| e.as_entered().to_owned()).unwrap_or_default(),
                // Without an email field the account still needs a key no address can take.
                email_canonical: email
                    .as_ref()
                    .map(|e| e.canonical().to_owned())
                    .unwrap_or_else(|| format!("@dp:{uuid}")),
                username: None,
                username_canonical: None,
                name: name.unwrap_or_default(),
                language: "en".into(),
                status: if sms.is_some() { UserStatus::Pending } else { UserStatus::Active },
                password_hash,
            },
            profile: Value::Object(profile).to_string(),
            phone,
            unique,
            ext_key,
            sms,
            created_at: now,
        };
        // A concurrent create of the same unique value loses the insert; looking again finds
        // the winner.
        let mut outcome = self.store.create_contract_account(instance.id, &account).await;
        if let Err(StoreError::Unique(_)) = outcome {
            outcome = self.store.create_contract_account(instance.id, &account).await;
        }
        let outcome = match outcome {
            // Still taken, by no contract account: a user of another surface holds the address
            // (a `/v1` or DreamFactory user). A conflict that names no account.
            Err(StoreError::Unique(_)) => return Ok(ContractResult::ExistsElsewhere),
            other => other?,
        };
        match outcome {
            ContractOutcome::Created { dp_key } => {
                if account.sms.is_some() {
                    self.wake_outbox();
                }
                let created = self.store.contract_account(instance.id, dp_key).await?;
                created
                    .map(ContractResult::Created)
                    .ok_or_else(|| CoreError::Internal("created account vanished".into()))
            }
            ContractOutcome::Exists { dp_key, field, status } => {
                // A phone under SMS verification answers with dialogportal's sub-codes.
                if sms_phone.as_ref().is_some_and(|(name, _)| *name == field) {
                    let code = if status == UserStatus::Inactive {
                        codes::PHONE_IN_USE_INACTIVE
                    } else {
                        codes::PHONE_IN_USE
                    };
                    return Err(CoreError::field(&field, code, "belongs to another account"));
                }
                // Pointed at only when the caller may read it; otherwise a conflict that names
                // no account.
                match self.contract_account(instance, app, dp_key).await {
                    Ok(_) => Ok(ContractResult::Exists { dp_key }),
                    Err(CoreError::AccountNotFound) => Ok(ContractResult::ExistsElsewhere),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// "Get Account Data".
    /// An account is the app's that created it, and readable by the apps the operator lets
    /// read that app's accounts; to any other caller it does not exist.
    pub async fn contract_account(
        &self,
        instance: &Instance,
        app: &App,
        dp_key: i64,
    ) -> Result<ContractAccount, CoreError> {
        let account =
            self.store.contract_account(instance.id, dp_key).await?.ok_or(CoreError::AccountNotFound)?;
        let Some(owner) = account.app_id.as_deref() else { return Err(CoreError::AccountNotFound) };
        if owner == app.id {
            return Ok(account);
        }
        let settings = self.store.app_settings(instance.id, &app.id).await?;
        if settings.reads_accounts_of.iter().any(|a| a == owner) {
            Ok(account)
        } else {
            Err(CoreError::AccountNotFound)
        }
    }

    /// Check a texted code; the right one activates the account.
    pub async fn verify_sms(
        &self,
        instance: &Instance,
        app: &App,
        dp_key: i64,
        code: &str,
    ) -> Result<ContractAccount, CoreError> {
        let code = code.trim();
        if code.is_empty() || code.len() > 16 {
            return Err(CoreError::field("code", "required", "is required"));
        }
        let account = self.contract_account(instance, app, dp_key).await?;
        match self
            .store
            .verify_sms(
                instance.id,
                dp_key,
                &self.sms_code_hash(&account.uuid, code),
                self.now(),
                SMS_MAX_ATTEMPTS,
            )
            .await?
        {
            Ok(()) => self.contract_account(instance, app, dp_key).await,
            Err(SmsCodeError::Wrong) => {
                Err(CoreError::field("code", "wrong_code", "is not the code we sent"))
            }
            Err(SmsCodeError::Expired) => Err(CoreError::TokenExpired),
            Err(SmsCodeError::NoCode) => Err(CoreError::TokenUsed),
        }
    }

    /// Text a new code (throttled per number; the failed tries so far stay counted).
    pub async fn resend_sms(&self, instance: &Instance, app: &App, dp_key: i64) -> Result<(), CoreError> {
        let account = self.contract_account(instance, app, dp_key).await?;
        let number = account
            .phone
            .clone()
            .filter(|_| account.status == UserStatus::Pending)
            .ok_or(CoreError::TokenUsed)?;
        self.limit(&format!("sms:burst:{number}"), SMS_RESEND_BURST).await?;
        self.limit(&format!("sms:hour:{number}"), SMS_RESEND_HOURLY).await?;
        let code = self.tokens.numeric_code(SMS_CODE_DIGITS);
        let message =
            self.outbox_sms(&number, &account.language, json!({ "code": code, "app_name": app.name }))?;
        let verification = NewVerification {
            purpose: Purpose::Sms,
            secret_hash: self.sms_code_hash(&account.uuid, &code),
            expires_at: self.now() + SMS_CODE_TTL,
        };
        if !self.store.resend_sms(instance.id, dp_key, &verification, &message, SMS_MAX_ATTEMPTS).await? {
            return Err(CoreError::TokenUsed);
        }
        self.wake_outbox();
        Ok(())
    }
}

struct Checked {
    /// The value as stored and shown (phones in E.164).
    stored: Value,
    /// The value that decides uniqueness (canonical email, E.164 phone).
    unique_key: String,
    kind: FieldType,
}

fn check_field(field: &ContractField, value: &Value) -> Result<Checked, FieldError> {
    let name = field.name.as_str();
    let text = |v: &Value| {
        v.as_str().map(str::to_owned).ok_or_else(|| FieldError::new(name, "invalid_type", "must be a string"))
    };
    let checked = match field.kind {
        FieldType::String | FieldType::Password => {
            let s = text(value)?;
            let chars = s.chars().count();
            if field.min_length.is_some_and(|m| chars < m) || field.max_length.is_some_and(|m| chars > m) {
                return Err(FieldError::new(name, "invalid_length", "has the wrong length"));
            }
            if field.kind == FieldType::String {
                if crate::text::has_forbidden(&s) {
                    return Err(FieldError::new(name, "invalid_characters", crate::text::FORBIDDEN_MESSAGE));
                }
                if let Some(pattern) = &field.pattern
                    && !regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|r| r.is_match(&s))
                {
                    return Err(FieldError::new(name, "pattern_mismatch", "does not have the required form"));
                }
            }
            Checked { unique_key: s.clone(), stored: Value::String(s), kind: field.kind }
        }
        FieldType::Email => {
            let e = EmailAddress::parse(&text(value)?).map_err(|e| e.renamed(name))?;
            Checked {
                unique_key: e.canonical().into(),
                stored: Value::String(e.as_entered().into()),
                kind: field.kind,
            }
        }
        FieldType::Phone => {
            let number = value.as_str().and_then(e164).ok_or_else(|| {
                FieldError::new(
                    name,
                    codes::INVALID_PHONE,
                    "must be a phone number in international form, like +31 20 123 4567",
                )
            })?;
            Checked { unique_key: number.clone(), stored: Value::String(number), kind: field.kind }
        }
        FieldType::Date => {
            let s = text(value)?;
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(&s, format)
                .map_err(|_| FieldError::new(name, "invalid_date", "must be a date like 2026-03-01"))?;
            Checked { unique_key: s.clone(), stored: Value::String(s), kind: field.kind }
        }
        FieldType::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| FieldError::new(name, "invalid_type", "must be true or false"))?;
            Checked { unique_key: b.to_string(), stored: Value::Bool(b), kind: field.kind }
        }
        FieldType::Int => {
            let n = value
                .as_i64()
                .ok_or_else(|| FieldError::new(name, "invalid_type", "must be a whole number"))?;
            Checked { unique_key: n.to_string(), stored: json!(n), kind: field.kind }
        }
    };
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_of_one_number_are_one_e164() {
        assert_eq!(e164("+1 (650) 253-0000").as_deref(), Some("+16502530000"));
        assert_eq!(e164("+16502530000").as_deref(), Some("+16502530000"));
        assert_eq!(e164("+31 20 123 4567").as_deref(), Some("+31201234567"));
        assert_eq!(e164("650 253 0000"), None, "national numbers need a country");
        assert_eq!(e164("+1 555"), None);
        assert_eq!(e164("call me"), None);
    }

    #[test]
    fn language_tags_follow_bcp47_shape() {
        assert_eq!(language_tag("nl").as_deref(), Some("nl"));
        assert_eq!(language_tag("en-GB").as_deref(), Some("en-gb"));
        assert_eq!(language_tag("en_gb").as_deref(), Some("en-gb"));
        assert_eq!(language_tag("zh-Hant-TW").as_deref(), Some("zh-hant-tw"));
        for bad in ["", "e", "english", "en-", "nl!", "12"] {
            assert_eq!(language_tag(bad), None, "{bad}");
        }
    }
}
