//! Wiring: configuration in, a running service out. Builds the store, the core, the outbox
//! worker and the HTTP router, and applies the configured instances and apps (idempotently).

use crate::config::{Config, MailConfig, OnFailure};
use crate::delivery::templates::{CustomTemplate, Templates};
use crate::delivery::webhooks::Webhooks;
use crate::delivery::{Worker, WorkerConfig, mail};
use crate::http;
use crate::metrics::Metrics;
use anyhow::Context;
use onramp_core::clock::{Clock, SystemClock};
use onramp_core::hasher::{HashParams, HasherConfig, PasswordHasher};
use onramp_core::model::{
    App, Contract, DEFAULT_INSTANCE, Domain, PLATFORM_INSTANCE, RoleSpec, api_key_source,
};
use onramp_core::password::PasswordPolicy;
use onramp_core::ports::AppSpec;
use onramp_core::provision::Provisioning;
use onramp_core::seal::SealKey;
use onramp_core::settings::{Limit, RateLimits};
use onramp_core::token::{OsTokenGenerator, TokenGenerator};
use onramp_core::{Onramp, Settings};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub use crate::http::AppState;

/// Time and randomness, injectable for tests.
pub struct Ports {
    pub clock: Arc<dyn Clock>,
    pub tokens: Arc<dyn TokenGenerator>,
}

impl Default for Ports {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), tokens: Arc::new(OsTokenGenerator) }
    }
}

pub struct Service {
    pub state: AppState,
    pub worker: Worker,
}

impl Service {
    pub async fn build(config: Config, ports: Ports) -> anyhow::Result<Self> {
        let store = onramp_store::connect(&config.database_url(), &store_options(&config))
            .await
            .context("opening the database")?;
        store.migrate().await.context("migrating the database")?;
        let seal = seal_key(&config, ports.tokens.as_ref())?;
        // Nodes sharing a database must share the key that seals its outbox: the first node
        // records its key's check value, and a node with another key does not start (it could
        // not open the others' mail, nor they its own).
        let check = store.claim_setting(KEY_CHECK_SETTING, &seal.check_value()).await?;
        if check != seal.check_value() {
            anyhow::bail!(
                "this node's secret key is not the one the database was set up with: every node \
                 sharing a database must use the same secret_key (or the same {}/secret.key)",
                config.data_dir.display()
            );
        }
        let hasher = PasswordHasher::new(HasherConfig {
            params: HashParams {
                m_cost: config.hashing.memory_kib,
                t_cost: config.hashing.iterations,
                p_cost: config.hashing.parallelism,
            },
            threads: config.hashing.threads,
            queue: config.hashing.queue,
        })?;
        let provisioning = provisioning(&config, ports.clock.clone())?;
        let remote = Arc::new(crate::remote::HttpRemote::new(ports.clock.clone(), ports.tokens.clone())?);
        let onramp = Arc::new(
            Onramp::new(store, ports.clock, ports.tokens, hasher, seal, settings(&config), remote)
                .with_provisioning(provisioning),
        );
        apply_config(&onramp, &config).await?;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let templates = Templates::with_custom(
            &config
                .mail_templates
                .iter()
                .map(|t| CustomTemplate {
                    name: t.name.clone(),
                    subject: t.subject.clone(),
                    text: t.text.clone(),
                    html: t.html.clone(),
                })
                .collect::<Vec<_>>(),
        )?;
        let mut services = std::collections::HashMap::new();
        for inst in &config.instances {
            for m in &inst.mail_services {
                let mail_config = MailConfig {
                    transport: m.transport,
                    from: m.from.clone().unwrap_or_else(|| config.mail.from.clone()),
                    smtp_url: m.smtp_url.clone(),
                    timeout_secs: m.timeout_secs,
                    tls_ca_file: m.tls_ca_file.clone(),
                };
                let transport = mail::transport(&mail_config, &config.data_dir)?;
                services.insert(format!("{}/{}", inst.name, m.name), (mail_config.from, transport));
            }
        }
        let worker = Worker::new(
            onramp.clone(),
            mail::transport(&config.mail, &config.data_dir)?,
            metrics.clone(),
            WorkerConfig {
                from: config.mail.from.clone(),
                max_attempts: config.outbox.max_attempts,
                retry_base: time::Duration::seconds(config.outbox.retry_base_secs),
                poll_interval: std::time::Duration::from_millis(config.outbox.poll_interval_ms),
                lease: time::Duration::seconds(i64::try_from(config.outbox.lease_secs).unwrap_or(60)),
                // Sent one after another, a batch must end inside its lease even when every
                // send runs into the timeout (a whole SMTP conversation: 3 x mail.timeout_secs).
                batch: u32::try_from(config.outbox.lease_secs / (3 * config.mail.timeout_secs + 1))
                    .unwrap_or(1)
                    .clamp(1, 32),
            },
        )?
        .with_templates(templates)
        .with_services(services)
        .with_branding(config.clone())
        .with_sms(config.sms.from.clone(), sms_transport(&config)?)
        .with_webhooks(crate::delivery::events::EventWebhooks::new(
            &config.webhooks,
            config.instances.iter().map(|i| (i.name.as_str(), i.webhooks.as_slice())),
            onramp.clock().clone(),
        )?);
        let pages = Arc::new(crate::http::pages::Pages::new()?);
        let origins =
            Arc::new(onramp_core::origin::OriginPolicy::new(onramp.store().clone(), onramp.clock().clone()));
        let fast_track_origins = Arc::new(
            config
                .fast_track
                .allowed_origins
                .iter()
                .map(|o| onramp_core::origin::OriginPattern::parse(o))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let partner_paths = Arc::new(partner_paths(&config));
        let state = AppState { onramp, config, metrics, pages, origins, fast_track_origins, partner_paths };
        Ok(Self { state, worker })
    }

    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }
}

/// FastEditor partner signup answers at each app's configured path (and the default one).
fn partner_paths(config: &Config) -> Vec<String> {
    let mut paths: Vec<String> = config
        .instances
        .iter()
        .flat_map(|i| i.apps.iter().map(|a| a.partner_signup_path.clone()))
        .chain([crate::http::fasteditor::DEFAULT_PATH.to_owned()])
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

pub fn store_options(config: &Config) -> onramp_store::StoreOptions {
    onramp_store::StoreOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: std::time::Duration::from_secs(config.database.acquire_timeout_secs),
        statement_timeout_ms: config.database.statement_timeout_ms,
        instances_dir: Some(config.data_dir.join("instances")),
    }
}

fn provisioning(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Provisioning> {
    let p = &config.provisioning;
    let init_sql = match &p.init_sql_file {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    Ok(Provisioning {
        init_sql,
        hooks: Arc::new(Webhooks::new(p.webhooks.clone(), clock)?),
        keep_failed: p.on_failure == OnFailure::Keep,
    })
}

fn settings(config: &Config) -> Settings {
    let r = &config.rate_limits;
    Settings {
        password: PasswordPolicy {
            min_chars: config.passwords.min_length,
            max_chars: config.passwords.max_length,
        },
        activation_ttl: time::Duration::hours(config.tokens.activation_ttl_hours),
        resend_interval: time::Duration::seconds(config.tokens.resend_interval_secs),
        session_ttl: time::Duration::minutes(config.tokens.session_ttl_minutes),
        fast_track_login_ttl: time::Duration::seconds(config.fast_track.login_ttl_secs),
        fast_track_confirm_within: time::Duration::hours(config.fast_track.confirm_within_hours),
        fast_track_reserved_names: config.fast_track.reserved_names.clone(),
        code_ttl: time::Duration::hours(config.tokens.code_ttl_hours),
        public_url: config.public_url.clone(),
        message_id_domain: message_id_domain(&config.mail.from),
        rate_limits: RateLimits {
            enabled: r.enabled,
            signup_per_client: Limit::per_minutes(r.signup_per_client_per_10min, 10),
            signup_per_email: Limit::per_minutes(r.signup_per_email_per_hour, 60),
            signup_per_instance: Limit::per_minutes(r.signup_per_instance_per_minute, 1),
            login_per_client: Limit::per_minutes(r.login_per_client_per_10min, 10),
            login_per_identifier: Limit::per_minutes(r.login_per_identifier_per_10min, 10),
            fast_track_per_client: Limit::per_minutes(r.fast_track_per_client_per_hour, 60),
            fast_track_per_email_domain: Limit::per_minutes(r.fast_track_per_email_domain_per_hour, 60),
        },
        screening: config.screening_rules(),
        events: config.event_subscriptions(),
    }
}

/// The domain of the From address, for Message-IDs.
fn message_id_domain(from: &str) -> String {
    from.rsplit('@')
        .next()
        .map(|d| d.trim_end_matches('>').trim().to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The `cluster_settings` name of the secret key's check value.
const KEY_CHECK_SETTING: &str = "secret_key_check";

/// The configured key, or the one in `{data_dir}/secret.key` (created on first start, 0600).
fn seal_key(config: &Config, tokens: &dyn TokenGenerator) -> anyhow::Result<SealKey> {
    let hex = match &config.secret_key {
        Some(k) => k.0.clone(),
        None => {
            let path = config.data_dir.join("secret.key");
            if !path.exists() {
                onramp_store::private_fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("creating {}", config.data_dir.display()))?;
                let mut bytes = [0u8; 32];
                tokens.bytes(&mut bytes);
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                onramp_store::private_fs::write_new(&path, hex.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_owned()
        }
    };
    let mut key = [0u8; 32];
    if hex.len() != 64 {
        anyhow::bail!("secret key must be 64 hex characters");
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).context("secret key must be hex")?;
    }
    Ok(SealKey::from_bytes(key))
}

/// Create the configured instances and apps; running it twice changes nothing.
pub async fn apply_config(onramp: &Onramp, config: &Config) -> anyhow::Result<()> {
    onramp.ensure_instance(DEFAULT_INSTANCE).await?;
    onramp.ensure_instance(PLATFORM_INSTANCE).await?;
    for inst in &config.instances {
        let instance = onramp.ensure_instance(&inst.name).await?;
        let store = onramp.store();
        let mut settings = store.instance_settings(instance.id).await?;
        if let Some(v) = inst.open_registration {
            settings.open_registration = v;
        }
        if let Some(v) = &inst.open_reg_role {
            settings.open_reg_role = Some(v.clone());
        }
        if let Some(v) = &inst.open_reg_email_service {
            settings.open_reg_email_service = Some(v.clone());
        }
        if let Some(v) = &inst.open_reg_email_template {
            settings.open_reg_email_template = Some(v.clone());
        }
        if let Some(v) = inst.allow_keyless_registration {
            settings.allow_keyless = v;
        }
        if let Some(v) = &inst.default_language {
            settings.default_language =
                onramp_core::language::Language::parse("default_language", v).ok().map(|l| l.into_string());
        }
        let roles: Vec<RoleSpec> = inst
            .roles
            .iter()
            .chain(settings.open_reg_role.iter())
            .map(|r| RoleSpec { name: r.clone(), description: String::new() })
            .collect();
        store.ensure_roles(instance.id, &roles, onramp.now()).await?;
        store.set_instance_settings(instance.id, &settings, None).await?;
        for app in &inst.apps {
            let domains: Vec<Domain> = app
                .domains
                .iter()
                .map(|d| Domain {
                    id: d.id.clone(),
                    title: d.title.clone(),
                    description: d.description.clone(),
                    help: d.help.clone(),
                    allow_signup: d.allow_signup,
                })
                .collect();
            let spec = AppSpec {
                app: App {
                    id: app.id.clone(),
                    name: app.name.clone(),
                    signup_url: app.signup_url.clone(),
                    activation_token_in_response: app.activation_token_in_response,
                    schema_version: schema_version(&app.id, &domains),
                },
                domains,
            };
            onramp.store().apply_app(instance.id, &spec).await?;
            let keys: Vec<_> = app
                .api_keys
                .iter()
                .map(|k| {
                    onramp.api_keys().record(&app.id, &k.0, "configuration file", api_key_source::CONFIG)
                })
                .collect();
            store.sync_config_api_keys(instance.id, &app.id, &keys, onramp.now()).await?;
            // Set in the file: applied; left out: what the CLI stored stays.
            let mut settings = store.app_settings(instance.id, &app.id).await?;
            if app.default_contract.is_some() {
                settings.default_contract = app.default_contract.clone();
            }
            if app.ext_key_type.is_some() {
                settings.ext_key_type = app.ext_key_type;
            }
            if let Some(origins) = &app.allowed_origins {
                settings.allowed_origins = origins.clone();
            }
            if let Some(partner) = app.browser_partner_calls {
                settings.browser_partner_calls = partner;
            }
            if let Some(readers) = &app.reads_accounts_of {
                settings.reads_accounts_of = readers.clone();
            }
            store.set_app_settings(instance.id, &app.id, &settings, None).await?;
            for c in &app.contracts {
                store
                    .put_contract(
                        instance.id,
                        &app.id,
                        &Contract { id: c.id.clone(), fields: c.fields.clone() },
                        None,
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

fn sms_transport(config: &Config) -> anyhow::Result<Box<dyn crate::delivery::sms::SmsTransport>> {
    use crate::config::SmsTransportKind;
    use crate::delivery::sms::{FileSms, HttpSms};
    Ok(match config.sms.transport {
        SmsTransportKind::File => Box::new(FileSms::new(config.data_dir.join("sms"))),
        SmsTransportKind::Http => Box::new(HttpSms::new(
            config.sms.http_url.clone().unwrap_or_default(),
            config.sms.http_authorization.as_ref().map(|s| s.0.clone()),
            std::time::Duration::from_secs(config.sms.timeout_secs),
        )?),
    })
}

/// `ver_…`: a digest of the app's schema, so it changes exactly when the schema does.
fn schema_version(app_id: &str, domains: &[Domain]) -> String {
    let doc = serde_json::json!({ "app": app_id, "domains": domains });
    let digest = Sha256::digest(doc.to_string().as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("ver_{hex}")
}
