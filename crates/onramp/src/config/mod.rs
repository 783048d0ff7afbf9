//! Configuration: defaults, then a TOML file (`--config` / `ONRAMP_CONFIG`), then `ONRAMP_*`
//! environment variables (`__` for nesting). Unknown keys are an error at start. Secrets are
//! `Secret` values whose `Debug` hides them.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

mod instances;
mod screening;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

pub use instances::*;
pub use screening::*;
pub use sections::*;
pub use validate::contract_problems;

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
    pub audit: AuditConfig,
    pub database: DatabaseConfig,
    pub fast_track: FastTrackConfig,
    pub provisioning: ProvisioningConfig,
    /// Operator mail templates, named for `open_reg_email_template`.
    pub mail_templates: Vec<MailTemplateConfig>,
    /// How hosted pages and mails look, unless an instance or app says otherwise.
    pub branding: Branding,
    /// What every signup must pass, unless an instance or app says otherwise.
    pub signup: SignupRulesConfig,
    /// The operator's synchronous hooks (`before_signup`).
    pub hooks: HooksConfig,
    /// Endpoints told about every instance's lifecycle events.
    pub webhooks: Vec<EventWebhookConfig>,
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
            audit: AuditConfig::default(),
            database: DatabaseConfig::default(),
            fast_track: FastTrackConfig::default(),
            provisioning: ProvisioningConfig::default(),
            mail_templates: Vec::new(),
            branding: Branding::default(),
            signup: SignupRulesConfig::default(),
            hooks: HooksConfig::default(),
            webhooks: Vec::new(),
            instances: vec![InstanceConfig::named("default")],
        }
    }
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
}

/// Instance names are DNS labels: they become `{name}.{base_domain}`.
pub fn is_instance_name(name: &str) -> bool {
    onramp_core::instance_name::is_valid(name)
}

fn describe(e: figment::Error) -> String {
    e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}
