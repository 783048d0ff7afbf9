//! The per-instance configuration: apps, domains, contracts, mail services, branding, and how
//! instances are provisioned.

use super::*;

/// How hosted pages and mails look: every key is optional and falls back to the enclosing
/// level (app -> instance -> `[branding]` -> onramp's own).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Branding {
    /// Shown in page titles, headers and mail footers; defaults to the app's or instance's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// An absolute http(s) URL of the logo (its origin is added to the pages' CSP `img-src`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// `#rrggbb`: buttons, links and focus rings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
}

impl Branding {
    /// `self`, with what it leaves unset taken from `outer`.
    pub fn over(&self, outer: &Branding) -> Branding {
        Branding {
            product_name: self.product_name.clone().or_else(|| outer.product_name.clone()),
            logo_url: self.logo_url.clone().or_else(|| outer.logo_url.clone()),
            accent_color: self.accent_color.clone().or_else(|| outer.accent_color.clone()),
        }
    }

    pub(super) fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = &self.accent_color
            && !(c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|h| h.is_ascii_hexdigit()))
        {
            problems.push(format!("{at}branding.accent_color: {c:?} is not a colour like #0b5fff"));
        }
        if let Some(u) = &self.logo_url
            && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        {
            problems.push(format!("{at}branding.logo_url: {u:?} is not an absolute http(s) URL"));
        }
        if let Some(n) = &self.product_name
            && (n.trim().is_empty() || n.chars().count() > 60 || n.chars().any(char::is_control))
        {
            problems.push(format!("{at}branding.product_name: must be 1 to 60 printable characters"));
        }
        problems
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Undo every step: no instance, no dashboard user, no database.
    Undo,
    /// Keep the instance as `provisioning_failed`; `onramp instance retry` completes it.
    Keep,
}

/// How every new instance (FastTrack or `onramp instance create`) is set up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// SQL run inside each new instance's own database (its SQLite file, or its PostgreSQL
    /// schema as the `search_path`).
    pub init_sql_file: Option<PathBuf>,
    pub on_failure: OnFailure,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        Self { init_sql_file: None, on_failure: OnFailure::Undo, webhooks: Vec::new() }
    }
}

/// An operator endpoint told about each new instance before it goes live (`POST`, JSON, signed
/// with HMAC-SHA256 in `Onramp-Signature`). A non-2xx answer after every attempt fails the
/// provisioning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The HMAC key.
    pub secret: Secret,
    #[serde(default = "webhook_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "webhook_attempts")]
    pub attempts: u32,
}

fn webhook_timeout() -> u64 {
    10
}

fn webhook_attempts() -> u32 {
    3
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    pub name: String,
    /// DreamFactory's user-service settings. Each one set here is applied at every start;
    /// one left out keeps what `onramp instance set` stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_registration: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_reg_role: Option<String>,
    /// `"default"` (the `[mail]` transport) or one of `mail_services`; unset: no confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_reg_email_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_reg_email_template: Option<String>,
    /// Accept registrations that carry no application API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_keyless_registration: Option<bool>,
    /// Mail goes out in this language when the reader's own is not shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_language: Option<String>,
    /// Roles to create (the open-registration role is created in any case).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Mail services of this instance besides `default`.
    #[serde(default)]
    pub mail_services: Vec<MailServiceConfig>,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    #[serde(default)]
    pub branding: Branding,
    /// This instance's signup rules (its apps' defaults).
    #[serde(default)]
    pub signup: SignupRulesConfig,
    /// This instance's own hooks, instead of `[hooks]`.
    #[serde(default)]
    pub hooks: HooksConfig,
    /// Endpoints told about this instance's lifecycle events (besides `[[webhooks]]`).
    #[serde(default)]
    pub webhooks: Vec<EventWebhookConfig>,
}

impl InstanceConfig {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            open_registration: None,
            open_reg_role: None,
            open_reg_email_service: None,
            open_reg_email_template: None,
            allow_keyless_registration: None,
            default_language: None,
            roles: Vec::new(),
            mail_services: Vec::new(),
            apps: Vec::new(),
            branding: Branding::default(),
            signup: SignupRulesConfig::default(),
            hooks: HooksConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

/// A named mail transport of an instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MailServiceConfig {
    pub name: String,
    pub transport: MailTransportKind,
    /// Defaults to `mail.from`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub smtp_url: Option<Secret>,
    #[serde(default = "mail_timeout")]
    pub timeout_secs: u64,
    /// As `mail.tls_ca_file`, for this service.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

fn mail_timeout() -> u64 {
    15
}

/// An operator mail template (minijinja; the HTML part is auto-escaped).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MailTemplateConfig {
    pub name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub id: String,
    pub name: String,
    /// Base of activation links.
    pub signup_url: String,
    /// Seed 004 returns the emailed token from signup (default `true`, for compatibility);
    /// `false` returns an opaque reference so only the mailbox owner can activate.
    #[serde(default = "yes")]
    pub activation_token_in_response: bool,
    /// API keys the app's callers present; values or `${ENV_VAR}` references. Stored hashed;
    /// keys removed here are revoked at the next start.
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// FastEditor partner signup answers at this path for this app.
    #[serde(default = "partner_signup_path")]
    pub partner_signup_path: String,
    /// dialogportal: the contract of `POST /user`.
    #[serde(default)]
    pub default_contract: Option<String>,
    /// dialogportal: give each account an external key of this type.
    #[serde(default)]
    pub ext_key_type: Option<i64>,
    #[serde(default)]
    pub contracts: Vec<ContractConfig>,
    #[serde(default)]
    pub domains: Vec<DomainConfig>,
    /// Web origins whose pages may call this instance from a browser (CORS): exact
    /// `https://app.example.com`, or `https://*.example.com` for subdomains. The origin of
    /// `signup_url` is always allowed. Set here: applied at every start; left out: what
    /// `onramp app origins set` stored stays.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// Let those origins call the server-to-server surfaces too (partner signup, contract
    /// accounts). Off by default: those surfaces hold an API key a page cannot keep secret.
    #[serde(default)]
    pub browser_partner_calls: Option<bool>,
    /// dialogportal: ids of other apps of the instance whose contract accounts this app may
    /// read (`GET /user/{dpKey}`, SMS verification, the 303 of a duplicate). Its own it always
    /// may; set here: applied at every start.
    #[serde(default)]
    pub reads_accounts_of: Option<Vec<String>>,
    #[serde(default)]
    pub branding: Branding,
    /// This app's signup rules (CAPTCHA, domains).
    #[serde(default)]
    pub signup: SignupRulesConfig,
}

fn partner_signup_path() -> String {
    "/partner/fasteditor/signup".into()
}

/// A dialogportal contract: its ordered fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    pub id: String,
    pub fields: Vec<onramp_core::model::ContractField>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub help: String,
    #[serde(default = "yes")]
    pub allow_signup: bool,
}
