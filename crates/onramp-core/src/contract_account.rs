//! dialogportal's contract accounts (seed 003): an account whose fields an app's contract
//! defines, verified by a texted code when the contract asks for a phone. Called by an app that
//! proves itself with an API key; the surface resolves the app.

use crate::common::Common;
use crate::email::EmailAddress;
use crate::error::{CoreError, FieldError};
use crate::model::*;
use crate::password::Password;
use crate::phone::Phone;
use crate::ports::StoreError;
use crate::ports::{Apps, Contracts};
use crate::screening::Applicant;
use crate::settings::Limit;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Texted codes: six digits, ten minutes, five tries across resends.
pub const SMS_CODE_DIGITS: usize = 6;
pub const SMS_CODE_TTL: time::Duration = time::Duration::minutes(10);
pub const SMS_MAX_ATTEMPTS: u32 = 5;
/// Texted codes are six digits: stored as a keyed hash, never a plain one.
const SMS_HASH_PURPOSE: &str = "sms-code";
/// Resends per number.
const SMS_RESEND_BURST: Limit = Limit::per_minutes(1, 1);
const SMS_RESEND_HOURLY: Limit = Limit::per_minutes(5, 60);

pub const SMS_TEMPLATE: &str = crate::outbox::Template::SmsVerification.name();

/// Field error codes that the contract surface turns into dialogportal's sub-codes.
pub mod codes {
    /// 400.3
    pub const INVALID_PHONE: &str = crate::phone::INVALID_PHONE;
    /// 400.4
    pub const PHONE_IN_USE: &str = "phone_in_use";
    /// 400.5
    pub const PHONE_IN_USE_INACTIVE: &str = "phone_in_use_inactive";
    pub const INVALID_LANGUAGE: &str = crate::language::INVALID_LANGUAGE;
    pub const INVALID_USERNAME: &str = "invalid_username";
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

/// dialogportal's contract accounts.
#[derive(Clone)]
pub struct ContractAccounts {
    pub(crate) common: Common,
    pub(crate) apps: Arc<dyn Apps>,
    pub(crate) contracts: Arc<dyn Contracts>,
}

impl ContractAccounts {
    /// The stored form of a texted code: keyed, and bound to its account (by uuid), so two
    /// accounts texted the same six digits hold different hashes.
    fn sms_code_hash(&self, account_uuid: &str, code: &str) -> String {
        self.common.letters.keyed_hash(SMS_HASH_PURPOSE, &format!("{account_uuid}:{code}"))
    }

    /// A new texted code for an account and its message.
    pub(crate) fn sms_code(
        &self,
        account_uuid: &str,
        number: &str,
        language: &str,
        app_name: &str,
    ) -> Result<(NewVerification, NewOutboxMessage), CoreError> {
        let code = self.common.tokens.numeric_code(SMS_CODE_DIGITS);
        let message =
            self.common.letters.sms(number, language, json!({ "code": code, "app_name": app_name }))?;
        let verification = NewVerification {
            purpose: Purpose::Sms,
            secret_hash: self.sms_code_hash(account_uuid, &code),
            expires_at: self.common.now() + SMS_CODE_TTL,
        };
        Ok((verification, message))
    }

    /// The contract an app's request names (or its default contract).
    pub async fn contract(
        &self,
        instance: &Instance,
        app: &App,
        id: Option<&str>,
    ) -> Result<Contract, CoreError> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => self
                .apps
                .app_settings(instance.id, &app.id)
                .await?
                .default_contract
                .ok_or(CoreError::ContractNotFound)?,
        };
        self.contracts.contract(instance.id, &app.id, &id).await?.ok_or(CoreError::ContractNotFound)
    }

    /// dialogportal "Create account": validate the body against the contract, then create the
    /// account (pending with a texted code when a phone must be verified).
    #[tracing::instrument(skip_all, fields(instance = %instance.name, app = %app.id, contract = %contract.id))]
    pub async fn create(
        &self,
        instance: &Instance,
        app: &App,
        contract: &Contract,
        body: &Map<String, Value>,
        client: Option<&str>,
        captcha_token: Option<&str>,
    ) -> Result<ContractResult, CoreError> {
        self.common.admit_signup()?;
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
            match self.common.settings.password.check("password", &raw, &context) {
                Ok(p) => password = Some(p),
                Err(e) => errors.push(e.renamed(&field)),
            }
        }
        if !errors.is_empty() {
            return Err(CoreError::Validation(errors));
        }
        let canonical = email.as_ref().map(|e| e.canonical().to_owned());
        self.common.budget.spend_on_signup(instance, client, canonical.as_deref()).await?;
        let applicant = Applicant {
            surface: "dialogportal",
            app_id: Some(&app.id),
            email: email.as_ref(),
            email_field: contract
                .fields
                .iter()
                .find(|f| f.kind == FieldType::Email)
                .map_or("email", |f| f.name.as_str()),
            password: password.as_ref(),
            password_field: contract
                .fields
                .iter()
                .find(|f| f.kind == FieldType::Password)
                .map_or("password", |f| f.name.as_str()),
            name: name.as_deref(),
            first_name: None,
            last_name: None,
            language: None,
            client,
            fields: json!({ "contract": contract.id, "profile": profile }),
            captcha_token,
        };
        let admitted = self.common.screening.screen(instance, &applicant).await?;

        let password = password.unwrap_or_else(|| Password::for_verification(&self.common.tokens.password()));
        let password_hash = self.common.hasher.hash(&password).await?;
        let uuid = self.common.uuid();
        let ext_key = self
            .apps
            .app_settings(instance.id, &app.id)
            .await?
            .ext_key_type
            .map(|t| (t, self.common.tokens.public_id("ext")));
        let now = self.common.now();
        let sms = match &sms_phone {
            Some((_, number)) => Some(self.sms_code(&uuid.to_string(), number, "en", &app.name)?),
            None => None,
        };
        let public_id = self.common.tokens.public_id("usr");
        let audit = crate::audit::signed_up(instance, client, now, ("dialogportal", Some(&app.id), None));
        let audit = self.common.publishing(&instance.name, audit);
        let account = NewContractAccount {
            audit,
            app_id: app.id.clone(),
            user: NewUser {
                public_id,
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
                metadata: admitted.metadata,
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
        let mut outcome = self.contracts.create_contract_account(instance.id, &account).await;
        if let Err(StoreError::Unique(_)) = outcome {
            outcome = self.contracts.create_contract_account(instance.id, &account).await;
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
                    self.common.wake_outbox();
                }
                let created = self.contracts.contract_account(instance.id, dp_key).await?;
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
                match self.account(instance, app, dp_key).await {
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
    pub async fn account(
        &self,
        instance: &Instance,
        app: &App,
        dp_key: i64,
    ) -> Result<ContractAccount, CoreError> {
        let account = self
            .contracts
            .contract_account(instance.id, dp_key)
            .await?
            .filter(|a| a.status != UserStatus::Deleted)
            .ok_or(CoreError::AccountNotFound)?;
        let Some(owner) = account.app_id.as_deref() else { return Err(CoreError::AccountNotFound) };
        if owner == app.id {
            return Ok(account);
        }
        let settings = self.apps.app_settings(instance.id, &app.id).await?;
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
        let account = enabled(self.account(instance, app, dp_key).await?)?;
        match self
            .contracts
            .verify_sms(
                instance.id,
                dp_key,
                &self.sms_code_hash(&account.uuid, code),
                self.common.now(),
                SMS_MAX_ATTEMPTS,
                &self.common.publishing(
                    &instance.name,
                    crate::audit::pending_user(
                        crate::audit::kinds::USER_ACTIVATED,
                        instance,
                        None,
                        self.common.now(),
                    ),
                ),
            )
            .await?
        {
            Ok(()) => self.account(instance, app, dp_key).await,
            Err(SmsCodeError::Wrong) => {
                Err(CoreError::field("code", "wrong_code", "is not the code we sent"))
            }
            Err(SmsCodeError::Expired) => Err(CoreError::TokenExpired),
            Err(SmsCodeError::NoCode) => Err(CoreError::TokenUsed),
        }
    }

    /// Text a new code (throttled per number; the failed tries so far stay counted).
    pub async fn resend_sms(&self, instance: &Instance, app: &App, dp_key: i64) -> Result<(), CoreError> {
        let account = enabled(self.account(instance, app, dp_key).await?)?;
        let number = account
            .phone
            .clone()
            .filter(|_| account.status == UserStatus::Pending)
            .ok_or(CoreError::TokenUsed)?;
        self.common.budget.limit(&format!("sms:burst:{number}"), SMS_RESEND_BURST).await?;
        self.common.budget.limit(&format!("sms:hour:{number}"), SMS_RESEND_HOURLY).await?;
        let (verification, message) = self.sms_code(&account.uuid, &number, &account.language, &app.name)?;
        if !self.contracts.resend_sms(instance.id, dp_key, &verification, &message, SMS_MAX_ATTEMPTS).await? {
            return Err(CoreError::TokenUsed);
        }
        self.common.wake_outbox();
        Ok(())
    }
}

/// An account its holder may still act on: a disabled one is refused as such.
fn enabled(account: ContractAccount) -> Result<ContractAccount, CoreError> {
    if account.status == UserStatus::Inactive { Err(CoreError::AccountDisabled) } else { Ok(account) }
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
            let number = Phone::parse(name, value.as_str().unwrap_or_default())?.into_string();
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
