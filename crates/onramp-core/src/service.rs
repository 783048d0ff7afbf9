//! `Onramp`: the core's entry point. It holds the ports (store, clock, token generator, hashing
//! pool, seal key) and the settings; the use cases are its methods, one module each.

use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::error::CoreError;
use crate::hasher::{HashError, PasswordHasher};
use crate::model::*;
use crate::password::PasswordPolicy;
use crate::ports::Store;
use crate::seal::SealKey;
use crate::session::{KeyRing, generate_key};
use crate::token::TokenGenerator;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

/// A fixed-window limit: at most `max` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub const fn per_minutes(max: u32, minutes: i64) -> Self {
        Self { max, window: Duration::minutes(minutes) }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub enabled: bool,
    pub signup_per_client: Limit,
    pub signup_per_email: Limit,
    pub signup_per_instance: Limit,
    pub login_per_client: Limit,
    pub login_per_identifier: Limit,
    pub fast_track_per_client: Limit,
    pub fast_track_per_email_domain: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            signup_per_client: Limit::per_minutes(30, 10),
            signup_per_email: Limit::per_minutes(5, 60),
            signup_per_instance: Limit::per_minutes(6000, 1),
            login_per_client: Limit::per_minutes(60, 10),
            login_per_identifier: Limit::per_minutes(10, 10),
            fast_track_per_client: Limit::per_minutes(10, 60),
            fast_track_per_email_domain: Limit::per_minutes(100, 60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub password: PasswordPolicy,
    pub activation_ttl: Duration,
    /// The least time between two activation mails to one pending address.
    pub resend_interval: Duration,
    pub session_ttl: Duration,
    /// How long an emailed confirmation or reset code lives.
    pub code_ttl: Duration,
    /// How long a `fastTrackGuid` may be exchanged for a session.
    pub fast_track_login_ttl: Duration,
    /// How long a FastTrack's address may stay unconfirmed before it is released.
    pub fast_track_confirm_within: Duration,
    /// Names FastTrack never gives an instance, besides `instance_name::RESERVED`.
    pub fast_track_reserved_names: Vec<String>,
    /// Origin of links that point at onramp itself, e.g. `http://localhost:8080`.
    pub public_url: String,
    /// Right-hand side of generated Message-IDs.
    pub message_id_domain: String,
    pub rate_limits: RateLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            password: PasswordPolicy::default(),
            activation_ttl: Duration::hours(24),
            resend_interval: Duration::seconds(60),
            session_ttl: Duration::hours(1),
            fast_track_login_ttl: Duration::minutes(5),
            fast_track_confirm_within: Duration::hours(72),
            fast_track_reserved_names: Vec::new(),
            code_ttl: Duration::hours(24),
            public_url: "http://localhost:8080".into(),
            message_id_domain: "localhost".into(),
            rate_limits: RateLimits::default(),
        }
    }
}

/// What an outbox mail carries; sealed in the store, rendered by the delivery worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MailPayload {
    /// Template folder name, e.g. `signup_activation`.
    pub template: String,
    pub to: String,
    pub language: String,
    pub message_id: String,
    pub vars: serde_json::Value,
    /// The language to use when `language` is not shipped (the instance's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_language: Option<String>,
    /// The mail service to send through (`{instance}/{name}`); none: the global transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

pub struct Onramp {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tokens: Arc<dyn TokenGenerator>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) seal: SealKey,
    pub(crate) settings: Settings,
    pub(crate) provisioning: crate::provisioning::Provisioning,
    keys: RwLock<HashMap<InstanceId, Arc<KeyRing>>>,
    /// Instances by name: every request resolves one.
    instances: Arc<TtlCache<String, Instance>>,
    /// Signup domains with their apps, by (instance, domain id).
    domains: TtlCache<(InstanceId, String), (App, Domain)>,
    outbox_wake: Arc<Notify>,
    /// Writes that requests do not wait for (see `background`).
    background: crate::background::Background,
}

impl Onramp {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        tokens: Arc<dyn TokenGenerator>,
        hasher: PasswordHasher,
        seal: SealKey,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            clock,
            tokens,
            hasher,
            seal,
            settings,
            provisioning: crate::provisioning::Provisioning::default(),
            keys: RwLock::new(HashMap::new()),
            instances: Arc::new(TtlCache::new()),
            domains: TtlCache::new(),
            outbox_wake: Arc::new(Notify::new()),
            background: Default::default(),
        }
    }

    /// How new instances are set up (init SQL, webhooks, failure policy).
    pub fn with_provisioning(mut self, provisioning: crate::provisioning::Provisioning) -> Self {
        self.provisioning = provisioning;
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub fn seal_key(&self) -> &SealKey {
        &self.seal
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Signalled after every commit that wrote an outbox message.
    /// Writes requests did not wait for; the outbox worker waits for them before it looks.
    pub fn background(&self) -> &crate::background::Background {
        &self.background
    }

    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.outbox_wake.clone()
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Find or create an instance (with a signing key on creation).
    pub async fn ensure_instance(&self, name: &str) -> Result<Instance, CoreError> {
        let key = generate_key(self.tokens.public_id("key"), self.now()).map_err(CoreError::Internal)?;
        Ok(self.store.ensure_instance(name, key).await?)
    }

    /// The active instance `name` (cached for a few seconds; unknown names are not cached).
    pub async fn instance(&self, name: &str) -> Result<Instance, CoreError> {
        if let Some(instance) = self.instances.get(&name.to_owned()) {
            return Ok(instance);
        }
        let instance = self.store.instance_by_name(name).await?.ok_or(CoreError::InstanceNotFound)?;
        self.instances.put(name.to_owned(), instance.clone());
        Ok(instance)
    }

    /// The instance cache, for use cases held apart from `Onramp`.
    pub(crate) fn instance_cache(&self) -> Arc<TtlCache<String, Instance>> {
        self.instances.clone()
    }

    /// A signup domain and its app (cached like instances).
    pub(crate) async fn signup_domain(
        &self,
        instance: &Instance,
        domain_id: &str,
    ) -> Result<Option<(App, Domain)>, CoreError> {
        let key = (instance.id, domain_id.to_owned());
        if let Some(found) = self.domains.get(&key) {
            return Ok(Some(found));
        }
        let found = self.store.signup_domain(instance.id, domain_id).await?;
        if let Some(found) = &found {
            self.domains.put(key, found.clone());
        }
        Ok(found)
    }

    /// The instance's signing keys, loaded once and cached.
    pub async fn key_ring(&self, instance: &Instance) -> Result<Arc<KeyRing>, CoreError> {
        if let Some(ring) = self.keys.read().unwrap_or_else(|e| e.into_inner()).get(&instance.id) {
            return Ok(ring.clone());
        }
        let records = self.store.signing_keys(instance.id).await?;
        let ring = Arc::new(KeyRing::new(instance.clone(), records).map_err(CoreError::Internal)?);
        self.keys.write().unwrap_or_else(|e| e.into_inner()).insert(instance.id, ring.clone());
        Ok(ring)
    }

    /// The app schema of seed 004: the app, its domains and the schema version.
    pub async fn app_schema(
        &self,
        instance: &Instance,
        app_id: &str,
    ) -> Result<(App, Vec<Domain>), CoreError> {
        let app = self.store.app(instance.id, app_id).await?.ok_or(CoreError::AppNotFound)?;
        let domains = self.store.app_domains(instance.id, app_id).await?;
        Ok((app, domains))
    }

    /// Seal a mail for the outbox, sent through the global transport.
    pub(crate) fn outbox_mail(
        &self,
        template: &str,
        to: &str,
        language: &str,
        vars: serde_json::Value,
    ) -> Result<NewOutboxMessage, CoreError> {
        self.outbox_mail_via(template, to, language, vars, None)
    }

    /// Seal a mail for the outbox, sent through `service` (none: the global transport).
    pub(crate) fn outbox_mail_via(
        &self,
        template: &str,
        to: &str,
        language: &str,
        vars: serde_json::Value,
        service: Option<String>,
    ) -> Result<NewOutboxMessage, CoreError> {
        self.outbox_message("mail", template, to, (language, None), vars, service)
    }

    /// As `outbox_mail_via`, with the instance's default language as the fallback.
    pub(crate) fn outbox_mail_in(
        &self,
        template: &str,
        to: &str,
        language: &str,
        settings: &UserServiceSettings,
        vars: serde_json::Value,
        service: Option<String>,
    ) -> Result<NewOutboxMessage, CoreError> {
        let fallback = settings.default_language.clone();
        self.outbox_message("mail", template, to, (language, fallback), vars, service)
    }

    /// Seal a text message (`sms:` outbox kind) for the SMS transport.
    pub(crate) fn outbox_sms(
        &self,
        to: &str,
        language: &str,
        vars: serde_json::Value,
    ) -> Result<NewOutboxMessage, CoreError> {
        self.outbox_message(
            "sms",
            crate::outbox::Template::SmsVerification.name(),
            to,
            (language, None),
            vars,
            None,
        )
    }

    fn outbox_message(
        &self,
        channel: &str,
        template: &str,
        to: &str,
        (language, fallback_language): (&str, Option<String>),
        vars: serde_json::Value,
        service: Option<String>,
    ) -> Result<NewOutboxMessage, CoreError> {
        let message_id = format!("<{}@{}>", self.uuid().simple(), self.settings.message_id_domain);
        let payload = MailPayload {
            template: template.into(),
            to: to.into(),
            language: language.into(),
            message_id: message_id.clone(),
            vars,
            fallback_language,
            service,
        };
        let plain = serde_json::to_vec(&payload).map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut nonce = [0u8; 24];
        self.tokens.bytes(&mut nonce);
        let sealed = self.seal.seal(nonce, &plain).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(NewOutboxMessage {
            kind: format!("{channel}:{template}"),
            recipient: to.into(),
            message_id,
            sealed_payload: sealed,
            created_at: self.now(),
        })
    }

    /// One budget for every surface that creates an account (`/v1`, DreamFactory, FastEditor,
    /// dialogportal): per client address across all surfaces and instances, per instance, and
    /// per address within the instance. Spent only by requests that passed validation.
    pub(crate) async fn spend_signup_budget(
        &self,
        instance: &crate::model::Instance,
        client: Option<&str>,
        email_canonical: Option<&str>,
    ) -> Result<(), CoreError> {
        let limits = &self.settings.rate_limits;
        if let Some(client) = client {
            self.limit(&format!("create:client:{client}"), limits.signup_per_client).await?;
        }
        self.limit(&format!("create:instance:{}", instance.id.0), limits.signup_per_instance).await?;
        if let Some(email) = email_canonical {
            self.limit(&format!("create:email:{}:{email}", instance.id.0), limits.signup_per_email).await?;
        }
        Ok(())
    }

    /// A request that creates a password is refused at once, before any database work, when
    /// its hash would be refused anyway: a shed request costs nothing and waits for nothing.
    pub(crate) fn admit_signup(&self) -> Result<(), CoreError> {
        if self.hasher.is_saturated() { Err(CoreError::Busy { retry_after_secs: 1 }) } else { Ok(()) }
    }

    /// A random UUID from the injected generator (request ids and the like).
    pub fn uuid(&self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        self.tokens.bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    pub(crate) fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// Count a hit under `key`; `false` once over `limit` (for sends that are skipped, not refused).
    pub(crate) async fn within(&self, key: &str, limit: Limit) -> Result<bool, CoreError> {
        match self.limit(key, limit).await {
            Ok(()) => Ok(true),
            Err(CoreError::RateLimited { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Count a hit against `limit` under `key`; `RateLimited` once over.
    pub(crate) async fn limit(&self, key: &str, limit: Limit) -> Result<(), CoreError> {
        if !self.settings.rate_limits.enabled {
            return Ok(());
        }
        let now = self.now();
        let window = limit.window.whole_seconds().max(1);
        let start_secs = now.unix_timestamp() - now.unix_timestamp().rem_euclid(window);
        let start = OffsetDateTime::from_unix_timestamp(start_secs)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let hits = self.store.rate_limit_hit(key, start, now).await?;
        if hits > limit.max {
            let retry_after_secs =
                u64::try_from(start_secs + window - now.unix_timestamp()).unwrap_or(1).max(1);
            return Err(CoreError::RateLimited { retry_after_secs });
        }
        Ok(())
    }
}

impl From<HashError> for CoreError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => CoreError::Busy { retry_after_secs: 1 },
            HashError::Failed(m) => CoreError::Internal(m),
        }
    }
}
