//! Configuration: defaults, then a TOML file (`--config` / `ONRAMP_CONFIG`), then `ONRAMP_*`
//! environment variables (`__` for nesting). Unknown keys are an error at start. Secrets are
//! `Secret` values whose `Debug` hides them.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A configuration value that must not be printed.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Defaults to `sqlite://{data_dir}/onramp.sqlite3`; `postgres://user:pass@host/db` (with
    /// `?sslmode=require` or `verify-full` for TLS) for scale-out.
    pub database_url: Option<Secret>,
    pub base_domain: String,
    pub public_url: String,
    /// 64 hex characters; seals outbox payloads. Defaults to a key generated into
    /// `{data_dir}/secret.key` on first start. Nodes sharing a database must share it.
    pub secret_key: Option<Secret>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Connection bounds of the HTTP server.
    pub server: ServerConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    pub mail: MailConfig,
    pub sms: SmsConfig,
    pub passwords: PasswordConfig,
    pub hashing: HashingConfig,
    pub tokens: TokenConfig,
    pub rate_limits: RateLimitConfig,
    pub outbox: OutboxConfig,
    pub database: DatabaseConfig,
    pub fast_track: FastTrackConfig,
    pub provisioning: ProvisioningConfig,
    /// Operator mail templates, named for `open_reg_email_template`.
    pub mail_templates: Vec<MailTemplateConfig>,
    /// How hosted pages and mails look, unless an instance or app says otherwise.
    pub branding: Branding,
    pub instances: Vec<InstanceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./onramp-data"),
            database_url: None,
            base_domain: "localhost".into(),
            public_url: "http://localhost:8080".into(),
            secret_key: None,
            trusted_proxies: Vec::new(),
            server: ServerConfig::default(),
            metrics: MetricsConfig::default(),
            mail: MailConfig::default(),
            sms: SmsConfig::default(),
            passwords: PasswordConfig::default(),
            hashing: HashingConfig::default(),
            tokens: TokenConfig::default(),
            rate_limits: RateLimitConfig::default(),
            outbox: OutboxConfig::default(),
            database: DatabaseConfig::default(),
            fast_track: FastTrackConfig::default(),
            provisioning: ProvisioningConfig::default(),
            mail_templates: Vec::new(),
            branding: Branding::default(),
            instances: vec![InstanceConfig::named("default")],
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    /// One `.eml` per message under `{data_dir}/mail/`.
    File,
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransportKind,
    pub from: String,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://…` (TLS), `smtp://host:25` (plain).
    pub smtp_url: Option<Secret>,
    /// Seconds before an SMTP conversation is abandoned (and retried later).
    pub timeout_secs: u64,
    /// PEM file of the CA (or CAs) that signed the SMTP server's certificate, trusted besides
    /// the system's roots and the public ones (a private CA).
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::File,
            from: "onramp <no-reply@localhost>".into(),
            smtp_url: None,
            timeout_secs: 15,
            tls_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransportKind {
    /// One JSON document per message under `{data_dir}/sms/`.
    File,
    /// `POST` the same JSON to `http_url`.
    Http,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub transport: SmsTransportKind,
    /// The sender name or number.
    pub from: String,
    pub http_url: Option<String>,
    /// Sent as the `Authorization` header to the provider.
    pub http_authorization: Option<Secret>,
    pub timeout_secs: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            transport: SmsTransportKind::File,
            from: "onramp".into(),
            http_url: None,
            http_authorization: None,
            timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self { min_length: 8, max_length: 1024 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HashingConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// 0: one per core.
    pub threads: usize,
    /// Jobs that may wait before requests get 503.
    pub queue: usize,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1, threads: 0, queue: 64 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub activation_ttl_hours: i64,
    /// The least time between two activation mails to one pending address.
    pub resend_interval_secs: i64,
    pub session_ttl_minutes: i64,
    /// Emailed confirmation and password-reset codes.
    pub code_ttl_hours: i64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            activation_ttl_hours: 24,
            resend_interval_secs: 60,
            session_ttl_minutes: 60,
            code_ttl_hours: 24,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub signup_per_client_per_10min: u32,
    pub signup_per_email_per_hour: u32,
    pub signup_per_instance_per_minute: u32,
    pub login_per_client_per_10min: u32,
    pub login_per_identifier_per_10min: u32,
    pub fast_track_per_client_per_hour: u32,
    pub fast_track_per_email_domain_per_hour: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            signup_per_client_per_10min: 30,
            signup_per_email_per_hour: 5,
            signup_per_instance_per_minute: 6000,
            login_per_client_per_10min: 60,
            login_per_identifier_per_10min: 10,
            fast_track_per_client_per_hour: 10,
            fast_track_per_email_domain_per_hour: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// A client must send a request's complete headers within this long, counted from the
    /// connection's start or the end of the previous response: slow and idle connections close.
    pub header_timeout_secs: u64,
    /// Open connections at most; one more is closed at once.
    pub max_connections: usize,
    /// On SIGTERM: how long requests in flight may take to finish.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { header_timeout_secs: 10, max_connections: 1024, shutdown_grace_secs: 20 }
    }
}

/// `/metrics` is public unless one of these says otherwise.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Scrapers must send `Authorization: Bearer {token}`.
    pub token: Option<Secret>,
    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9100`), not on `listen`.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, capped at an hour.
    pub retry_base_secs: i64,
    /// How often the worker looks for due messages when nothing wakes it.
    pub poll_interval_ms: u64,
    /// How long a claimed message stays with its worker; a crashed worker's messages are
    /// retried after this. Batches are sized to finish within it at the mail timeout.
    pub lease_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self { max_attempts: 10, retry_base_secs: 5, poll_interval_ms: 1000, lease_secs: 60 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// PostgreSQL: statements running longer are cancelled (and the request gets 503).
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { max_connections: 8, acquire_timeout_secs: 5, statement_timeout_ms: 10_000 }
    }
}

/// DreamFactory FastTrack (seed 000): `POST /fast-track`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FastTrackConfig {
    /// Off by default: `/fast-track` answers 404.
    pub enabled: bool,
    /// How long the `fastTrackGuid` of a new instance may be exchanged for a session.
    pub login_ttl_secs: i64,
    /// Web origins whose pages may start a FastTrack: an HTML form posted from them (checked
    /// against `Origin`, or `Referer` when a browser sends no `Origin`), or `fetch` with CORS.
    pub allowed_origins: Vec<String>,
    /// Where a failed form post is sent back to (`303`, with `?error={code}`); unset: an HTML
    /// error page.
    pub form_url: Option<String>,
    /// A FastTrack's dashboard user stays `unconfirmed` until the link of the mail sent to its
    /// address is used; after this many hours unconfirmed, the address is released (the
    /// instance disabled, the dashboard user deleted) so its owner may FastTrack.
    pub confirm_within_hours: i64,
    /// Instance names FastTrack never gives, besides the built-in reserved ones (`admin`,
    /// `billing`, `paypal`, `security`, …): a FastTrack from `acme@…` gets `acme-2`.
    pub reserved_names: Vec<String>,
}

impl Default for FastTrackConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            login_ttl_secs: 300,
            allowed_origins: Vec::new(),
            form_url: None,
            confirm_within_hours: 72,
            reserved_names: Vec::new(),
        }
    }
}

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

    fn problems(&self, at: &str) -> Vec<String> {
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

impl Config {
    /// Load defaults <- `file` (if given; it must exist) <- `ONRAMP_*` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // ONRAMP_* variables that are not configuration keys: the config file's path, the log
        // format, and the tests' PostgreSQL server.
        figment = figment.merge(Env::prefixed("ONRAMP_").split("__").ignore(&[
            "config",
            "log_format",
            "test_database_url",
        ]));
        let mut config: Config = figment.extract().map_err(|e| anyhow::anyhow!(describe(e)))?;
        config.expand_references(&|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parse a TOML document on top of the defaults (no environment); for tests and tools.
    pub fn from_toml(doc: &str) -> anyhow::Result<Self> {
        Self::from_toml_with_env(doc, &|name| std::env::var(name).ok())
    }

    /// As `from_toml`, resolving `${NAME}` references with `env`.
    pub fn from_toml_with_env(doc: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(doc))
            .extract()
            .map_err(|e| anyhow::anyhow!(describe(e)))?;
        config.expand_references(env)?;
        config.validate()?;
        Ok(config)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.0.clone(),
            None => format!("sqlite://{}", self.data_dir.join("onramp.sqlite3").display()),
        }
    }

    /// Replace `${NAME}` API keys with the environment variable's value.
    fn expand_references(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        for inst in &mut self.instances {
            for app in &mut inst.apps {
                for key in &mut app.api_keys {
                    if let Some(name) = key.0.strip_prefix("${").and_then(|k| k.strip_suffix('}')) {
                        let value = env(name).ok_or_else(|| {
                            anyhow::anyhow!(
                                "instances.apps[{}].api_keys: environment variable {name} is not set",
                                app.id
                            )
                        })?;
                        key.0 = value;
                    }
                }
            }
        }
        Ok(())
    }

    /// Is `name` a mail service of `instance` (`default` is everyone's)?
    pub fn has_mail_service(&self, instance: &str, name: &str) -> bool {
        name == "default"
            || self
                .instances
                .iter()
                .filter(|i| i.name == instance)
                .flat_map(|i| i.mail_services.iter())
                .any(|m| m.name == name)
    }

    /// Is `name` a built-in mail template or one of `mail_templates`?
    pub fn has_mail_template(&self, name: &str) -> bool {
        onramp_core::outbox::Template::is_mail(name) || self.mail_templates.iter().any(|t| t.name == name)
    }

    /// Checks serde cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!("listen: {:?} is not an address like 127.0.0.1:8080", self.listen));
        }
        let ca_files = std::iter::once(("mail", &self.mail.tls_ca_file)).chain(
            self.instances
                .iter()
                .flat_map(|i| i.mail_services.iter().map(|m| (m.name.as_str(), &m.tls_ca_file))),
        );
        for (what, file) in ca_files {
            if let Some(f) = file
                && !f.is_file()
            {
                problems.push(format!("{what}: tls_ca_file {} is not a readable file", f.display()));
            }
        }
        if self.server.header_timeout_secs == 0 || self.server.max_connections == 0 {
            problems.push("server: header_timeout_secs and max_connections must be at least 1".into());
        }
        if let Some(listen) = &self.metrics.listen
            && (listen.parse::<std::net::SocketAddr>().is_err() || *listen == self.listen)
        {
            problems.push(format!("metrics.listen: {listen:?} must be an address other than listen"));
        }
        if self.metrics.token.as_ref().is_some_and(|t| t.0.len() < 16) {
            problems.push("metrics.token: must be at least 16 characters".into());
        }
        if url::Url::parse(&self.public_url).map(|u| u.host().is_none()).unwrap_or(true) {
            problems.push(format!("public_url: {:?} is not an absolute URL", self.public_url));
        }
        if let Some(key) = &self.secret_key
            && (key.0.len() != 64 || !key.0.chars().all(|c| c.is_ascii_hexdigit()))
        {
            problems.push("secret_key: must be 64 hex characters (32 bytes)".into());
        }
        if self.mail.transport == MailTransportKind::Smtp && self.mail.smtp_url.is_none() {
            problems.push("mail.smtp_url: required when mail.transport = \"smtp\"".into());
        }
        if self.outbox.lease_secs <= self.mail.timeout_secs {
            problems.push("outbox.lease_secs: must be longer than mail.timeout_secs".into());
        }
        if self.passwords.min_length < 8 {
            problems.push("passwords.min_length: must be at least 8".into());
        }
        if self.passwords.max_length < 64 || self.passwords.max_length < self.passwords.min_length {
            problems.push("passwords.max_length: must be at least 64 and at least min_length".into());
        }
        if self.hashing.memory_kib < 19_456 || self.hashing.iterations < 2 {
            // Allowed (tests and small devices), but said out loud.
            tracing::warn!("hashing parameters are below OWASP's Argon2id minimum (m=19456 KiB, t=2)");
        }
        for hook in &self.provisioning.webhooks {
            if !url::Url::parse(&hook.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                problems.push(format!("provisioning.webhooks: {:?} is not an http(s) URL", hook.url));
            }
            if hook.secret.0.len() < 16 {
                problems.push("provisioning.webhooks: secret must be at least 16 characters".into());
            }
            if hook.attempts == 0 || hook.timeout_secs == 0 {
                problems.push("provisioning.webhooks: attempts and timeout_secs must be at least 1".into());
            }
        }
        if let Some(path) = &self.provisioning.init_sql_file
            && !path.is_file()
        {
            problems.push(format!("provisioning.init_sql_file: {} does not exist", path.display()));
        }
        if self.sms.transport == SmsTransportKind::Http
            && self.sms.http_url.as_deref().is_none_or(|u| url::Url::parse(u).is_err())
        {
            problems.push("sms.http_url: required (an absolute URL) when sms.transport = \"http\"".into());
        }
        for inst in &self.instances {
            for app in &inst.apps {
                if !app.partner_signup_path.starts_with('/')
                    || app.partner_signup_path.contains(['{', '}', '*'])
                {
                    problems.push(format!(
                        "instances.apps[{}].partner_signup_path: must be a plain path",
                        app.id
                    ));
                }
                for c in &app.contracts {
                    problems.extend(contract_problems(&app.id, &c.id, &c.fields));
                }
                if let Some(d) = &app.default_contract
                    && !app.contracts.iter().any(|c| &c.id == d)
                {
                    problems.push(format!("instances.apps[{}].default_contract: no contract {d:?}", app.id));
                }
            }
        }
        if !(1..=24 * 365).contains(&self.fast_track.confirm_within_hours) {
            problems.push("fast_track.confirm_within_hours: must be between 1 and 8760".into());
        }
        for name in &self.fast_track.reserved_names {
            if !is_instance_name(name) {
                problems.push(format!(
                    "fast_track.reserved_names: {name:?} is not an instance name (lower-case letters, digits and inner '-')"
                ));
            }
        }
        if self.fast_track.login_ttl_secs < 10 {
            problems.push("fast_track.login_ttl_secs: must be at least 10".into());
        }
        for o in &self.fast_track.allowed_origins {
            if let Err(e) = onramp_core::origin::OriginPattern::parse(o) {
                problems.push(format!("fast_track.allowed_origins: {e}"));
            }
        }
        if let Some(u) = &self.fast_track.form_url
            && url::Url::parse(u).map(|u| u.host().is_none()).unwrap_or(true)
        {
            problems.push(format!("fast_track.form_url: {u:?} is not an absolute URL"));
        }
        problems.extend(self.branding.problems(""));
        let mut names = std::collections::HashSet::new();
        for inst in &self.instances {
            if !is_instance_name(&inst.name) {
                problems
                    .push(format!("instances: {:?} is not a valid instance name (a-z, 0-9, '-')", inst.name));
            }
            if !names.insert(&inst.name) {
                problems.push(format!("instances: {:?} is declared twice", inst.name));
            }
            if let Some(l) = &inst.default_language
                && onramp_core::language::language_tag(l).is_none()
            {
                problems
                    .push(format!("instance {:?}: default_language {l:?} is not a language tag", inst.name));
            }
            if let Some(service) = &inst.open_reg_email_service
                && !self.has_mail_service(&inst.name, service)
            {
                problems.push(format!(
                    "instance {:?}: open_reg_email_service {service:?} is neither \"default\" nor one of its mail_services",
                    inst.name
                ));
            }
            for m in &inst.mail_services {
                if m.name == "default" {
                    problems.push(format!(
                        "instance {:?}: a mail service may not be named \"default\"",
                        inst.name
                    ));
                }
                if m.transport == MailTransportKind::Smtp && m.smtp_url.is_none() {
                    problems
                        .push(format!("instance {:?}: mail service {:?} needs smtp_url", inst.name, m.name));
                }
            }
            if let Some(template) = &inst.open_reg_email_template
                && !self.has_mail_template(template)
            {
                problems.push(format!(
                    "instance {:?}: open_reg_email_template {template:?} is neither built in nor in mail_templates",
                    inst.name
                ));
            }
            problems.extend(inst.branding.problems(&format!("instance {:?}: ", inst.name)));
            let mut domain_ids = std::collections::HashSet::new();
            for app in &inst.apps {
                problems.extend(app.branding.problems(&format!("instances.apps[{}].", app.id)));
                for o in app.allowed_origins.iter().flatten() {
                    if let Err(e) = onramp_core::origin::OriginPattern::parse(o) {
                        problems.push(format!("instances.apps[{}].allowed_origins: {e}", app.id));
                    }
                }
                for other in app.reads_accounts_of.iter().flatten() {
                    if !inst.apps.iter().any(|a| &a.id == other) {
                        problems.push(format!(
                            "instances.apps[{}].reads_accounts_of: {other:?} is not an app of instance {:?}",
                            app.id, inst.name
                        ));
                    }
                }
                if app.api_keys.iter().any(|k| k.0.len() < 16) {
                    problems.push(format!(
                        "instances.apps[{}].api_keys: each key must be at least 16 characters",
                        app.id
                    ));
                }
                if url::Url::parse(&app.signup_url).map(|u| u.host().is_none()).unwrap_or(true) {
                    problems.push(format!(
                        "instances.apps[{}].signup_url: {:?} is not an absolute URL",
                        app.id, app.signup_url
                    ));
                }
                for d in &app.domains {
                    if !domain_ids.insert(&d.id) {
                        problems
                            .push(format!("instance {:?}: domain id {:?} is used twice", inst.name, d.id));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "))
        }
    }
}

/// Instance names are DNS labels: they become `{name}.{base_domain}`.
pub fn is_instance_name(name: &str) -> bool {
    onramp_core::instance_name::is_valid(name)
}

fn describe(e: figment::Error) -> String {
    e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

/// What is wrong with a contract's fields (names, patterns, SMS verification on non-phones).
pub fn contract_problems(
    app: &str,
    contract: &str,
    fields: &[onramp_core::model::ContractField],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    let at = format!("app {app:?} contract {contract:?}");
    if contract.is_empty() || !contract.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems.push(format!("{at}: the id must be letters, digits, '-' and '_'"));
    }
    if contract == "confirm" || contract == "reset" || contract.parse::<i64>().is_ok() {
        problems.push(format!(
            "{at}: the id may not be \"confirm\", \"reset\" or a number (those paths are taken)"
        ));
    }
    for f in fields {
        if !names.insert(&f.name) {
            problems.push(format!("{at}: field {:?} is declared twice", f.name));
        }
        if let Some(p) = &f.pattern
            && regex::Regex::new(p).is_err()
        {
            problems.push(format!("{at}: field {:?} has an invalid pattern", f.name));
        }
        if f.verify.is_some()
            && (f.verify.as_deref() != Some("sms") || f.kind != onramp_core::model::FieldType::Phone)
        {
            problems.push(format!("{at}: field {:?}: verify = \"sms\" is for phone fields only", f.name));
        }
        if f.kind == onramp_core::model::FieldType::Password && f.unique {
            problems.push(format!("{at}: field {:?}: a password cannot be unique", f.name));
        }
    }
    if fields.iter().filter(|f| f.verify.is_some()).count() > 1 {
        problems.push(format!("{at}: at most one field may be verified by SMS"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.database_url(), "sqlite://./onramp-data/onramp.sqlite3");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Config::from_toml("listne = \"127.0.0.1:1\"").unwrap_err().to_string();
        assert!(err.contains("listne"), "{err}");
        let err = Config::from_toml("[mail]\ntransprt = \"file\"").unwrap_err().to_string();
        assert!(err.contains("transprt"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = Config::from_toml("database_url = \"sqlite://x?password=hunter2\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn the_architecture_example_parses_whole() {
        // ARCHITECTURE.md §5, verbatim apart from the environment reference's value.
        let doc = r#"
            listen        = "127.0.0.1:8080"
            data_dir      = "./onramp-data"
            database_url  = "sqlite://./onramp-data/onramp.sqlite3"
            base_domain   = "localhost"
            public_url    = "http://localhost:8080"
            [mail]
            transport = "file"
            from      = "onramp <no-reply@localhost>"
            [sms]
            transport = "file"
            [fast_track]
            enabled = true
            [[instances]]
            name = "default"
            open_registration = true
            open_reg_role = "member"
            open_reg_email_service = "default"
            [[instances.apps]]
            id          = "app_demo"
            name        = "Demo"
            signup_url  = "http://localhost:3000/activate"
            api_keys    = ["${ONRAMP_ARCHITECTURE_TEST_KEY}"]
            default_contract = "basic"
            ext_key_type = 12
            [[instances.apps.domains]]
            id = "dom_1234567890"
            title = "Acme"
            description = "Acme customers"
            help = "Pick the domain of your company"
            allow_signup = true
            [[instances.apps.contracts]]
            id = "basic"
            fields = [
              { name = "name",     type = "string",   required = true },
              { name = "email",    type = "email",    required = true, unique = true },
              { name = "password", type = "password", required = true },
              { name = "mobile",   type = "phone",    required = false, unique = true, verify = "sms" },
            ]
        "#;
        let env = |name: &str| {
            (name == "ONRAMP_ARCHITECTURE_TEST_KEY").then(|| "an-architecture-test-key".to_owned())
        };
        let c = Config::from_toml_with_env(doc, &env).unwrap();
        let app = &c.instances[0].apps[0];
        assert_eq!(app.domains[0].id, "dom_1234567890");
        assert!(app.activation_token_in_response);
        assert_eq!(app.api_keys[0].0, "an-architecture-test-key");
        assert_eq!((app.default_contract.as_deref(), app.ext_key_type), (Some("basic"), Some(12)));
        assert_eq!(app.contracts[0].fields[3].verify.as_deref(), Some("sms"));
        assert!(c.fast_track.enabled && c.instances[0].open_registration == Some(true));
    }

    #[test]
    fn the_example_file_parses() {
        let c = Config::from_toml(include_str!("../../../onramp.example.toml")).unwrap();
        assert!(c.fast_track.enabled);
    }

    #[test]
    fn fast_track_claim_settings_are_checked() {
        let c = Config::from_toml("[fast_track]\nreserved_names = [\"acme\", \"payroll\"]").unwrap();
        assert_eq!((c.fast_track.confirm_within_hours, c.fast_track.reserved_names.len()), (72, 2));
        let err =
            Config::from_toml("[fast_track]\nconfirm_within_hours = 0\nreserved_names = [\"Acme Inc\"]")
                .unwrap_err()
                .to_string();
        assert!(err.contains("confirm_within_hours") && err.contains("\"Acme Inc\""), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let err =
            Config::from_toml("listen = \"nowhere\"\n[mail]\ntransport = \"smtp\"").unwrap_err().to_string();
        assert!(err.contains("listen") && err.contains("smtp_url"), "{err}");
    }
}
