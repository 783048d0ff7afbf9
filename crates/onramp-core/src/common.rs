//! What the use cases share, each piece holding only what it needs: `Letters` seals outbox
//! messages, `Budget` counts rate limits, `Directory` resolves instances, signup domains and
//! signing keys (cached on the request path). `Common` bundles them with the clock, the token
//! generator, the hash pool and the settings. None of it is a use case, and none of it hands
//! out storage.

use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::error::CoreError;
use crate::hasher::PasswordHasher;
use crate::model::*;
use crate::outbox::OutboxPayload;
use crate::outbox::Template;
use crate::ports::{Apps, Instances, RateLimits};
use crate::seal::SealKey;
use crate::session::{KeyRing, generate_key};
use crate::settings::{Limit, Settings};
use crate::token::TokenGenerator;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// What every use case may use.
#[derive(Clone)]
pub(crate) struct Common {
    pub clock: Arc<dyn Clock>,
    pub tokens: Arc<dyn TokenGenerator>,
    pub hasher: PasswordHasher,
    pub settings: Arc<Settings>,
    pub letters: Letters,
    pub budget: Budget,
    pub directory: Arc<Directory>,
    /// Signalled after every commit that wrote an outbox message.
    pub outbox_wake: Arc<Notify>,
    /// Writes requests do not wait for.
    pub background: crate::background::Background,
    /// What every signup surface asks before it writes.
    pub screening: Arc<crate::screening::Screening>,
}

impl Common {
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// A random UUID from the injected generator.
    pub fn uuid(&self) -> uuid::Uuid {
        uuid_from(self.tokens.as_ref())
    }

    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// `event`, marked to be published when an endpoint of `instance` wants it.
    pub fn publishing(&self, instance: &str, mut event: NewAuditEvent) -> NewAuditEvent {
        event.publish = self.settings.events.wanted(instance, event.kind, &event.detail);
        event
    }

    /// A request that creates a password is refused at once, before any database work, when
    /// its hash would be refused anyway: a shed request costs nothing and waits for nothing.
    pub fn admit_signup(&self) -> Result<(), CoreError> {
        if self.hasher.is_saturated() { Err(CoreError::Busy { retry_after_secs: 1 }) } else { Ok(()) }
    }
}

fn uuid_from(tokens: &dyn TokenGenerator) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    tokens.bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Outbox messages, sealed: what the worker opens and renders.
#[derive(Clone)]
pub(crate) struct Letters {
    pub seal: SealKey,
    pub tokens: Arc<dyn TokenGenerator>,
    pub clock: Arc<dyn Clock>,
    /// Right-hand side of generated Message-IDs.
    pub message_id_domain: String,
}

impl Letters {
    /// A mail sent through the global transport.
    pub fn mail(
        &self,
        template: &str,
        to: &str,
        language: &str,
        vars: serde_json::Value,
    ) -> Result<NewOutboxMessage, CoreError> {
        self.mail_via(template, to, language, vars, None)
    }

    /// A mail sent through `service` (none: the global transport).
    pub fn mail_via(
        &self,
        template: &str,
        to: &str,
        language: &str,
        vars: serde_json::Value,
        service: Option<String>,
    ) -> Result<NewOutboxMessage, CoreError> {
        self.message("mail", template, to, (language, None), vars, service)
    }

    /// As `mail_via`, with the instance's default language as the fallback.
    pub fn mail_in(
        &self,
        template: &str,
        to: &str,
        language: &str,
        settings: &UserServiceSettings,
        vars: serde_json::Value,
        service: Option<String>,
    ) -> Result<NewOutboxMessage, CoreError> {
        let fallback = settings.default_language.clone();
        self.message("mail", template, to, (language, fallback), vars, service)
    }

    /// A text message (`sms:` outbox kind) for the SMS transport.
    pub fn sms(
        &self,
        to: &str,
        language: &str,
        vars: serde_json::Value,
    ) -> Result<NewOutboxMessage, CoreError> {
        self.message("sms", Template::SmsVerification.name(), to, (language, None), vars, None)
    }

    /// A lifecycle event for the webhook endpoint at `url` (`webhook:` outbox kind): `body`
    /// is what it is sent, `id` its `webhook-id`.
    pub fn event(
        &self,
        event_type: &str,
        url: &str,
        id: &str,
        body: serde_json::Value,
    ) -> Result<NewOutboxMessage, CoreError> {
        let payload = OutboxPayload {
            template: event_type.into(),
            to: url.into(),
            language: String::new(),
            message_id: id.into(),
            vars: body,
            fallback_language: None,
            service: None,
        };
        self.sealed(format!("webhook:{event_type}"), payload)
    }

    /// The stored form of a short code: a keyed hash, so a stolen table reveals nothing.
    pub fn keyed_hash(&self, purpose: &str, value: &str) -> String {
        self.seal.keyed_hash(purpose, value)
    }

    fn message(
        &self,
        channel: &str,
        template: &str,
        to: &str,
        (language, fallback_language): (&str, Option<String>),
        vars: serde_json::Value,
        service: Option<String>,
    ) -> Result<NewOutboxMessage, CoreError> {
        let message_id = format!("<{}@{}>", uuid_from(self.tokens.as_ref()).simple(), self.message_id_domain);
        let payload = OutboxPayload {
            template: template.into(),
            to: to.into(),
            language: language.into(),
            message_id,
            vars,
            fallback_language,
            service,
        };
        self.sealed(format!("{channel}:{template}"), payload)
    }

    fn sealed(&self, kind: String, payload: OutboxPayload) -> Result<NewOutboxMessage, CoreError> {
        let plain = serde_json::to_vec(&payload).map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut nonce = [0u8; 24];
        self.tokens.bytes(&mut nonce);
        let sealed = self.seal.seal(nonce, &plain).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(NewOutboxMessage {
            kind,
            recipient: payload.to,
            message_id: payload.message_id,
            sealed_payload: sealed,
            created_at: self.clock.now(),
        })
    }
}

/// Fixed-window rate limits, counted in the store so every node shares them.
#[derive(Clone)]
pub(crate) struct Budget {
    pub store: Arc<dyn RateLimits>,
    pub clock: Arc<dyn Clock>,
    pub limits: crate::settings::RateLimits,
}

impl Budget {
    /// Count a hit against `limit` under `key`; `RateLimited` once over.
    pub async fn limit(&self, key: &str, limit: Limit) -> Result<(), CoreError> {
        match self.count(key, limit).await? {
            None => Ok(()),
            Some((retry_after_secs, _)) => Err(CoreError::RateLimited { retry_after_secs }),
        }
    }

    /// Count a hit against `limit` under `key`: `None` while within it, else when to try again
    /// and whether this is the window's first refusal (so it is recorded once, not per hit).
    pub async fn count(&self, key: &str, limit: Limit) -> Result<Option<(u64, bool)>, CoreError> {
        if !self.limits.enabled {
            return Ok(None);
        }
        let now = self.clock.now();
        let window = limit.window.whole_seconds().max(1);
        let start_secs = now.unix_timestamp() - now.unix_timestamp().rem_euclid(window);
        let start = OffsetDateTime::from_unix_timestamp(start_secs)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let hits = self.store.rate_limit_hit(key, start, now).await?;
        if hits > limit.max {
            let retry_after_secs =
                u64::try_from(start_secs + window - now.unix_timestamp()).unwrap_or(1).max(1);
            return Ok(Some((retry_after_secs, hits == limit.max + 1)));
        }
        Ok(None)
    }

    /// Count a hit under `key`; `false` once over `limit` (for sends that are skipped, not refused).
    pub async fn within(&self, key: &str, limit: Limit) -> Result<bool, CoreError> {
        match self.limit(key, limit).await {
            Ok(()) => Ok(true),
            Err(CoreError::RateLimited { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One budget for every surface that creates an account (`/v1`, DreamFactory, FastEditor,
    /// dialogportal): per client address across all surfaces and instances, per instance, and
    /// per address within the instance. Spent only by requests that passed validation.
    pub async fn spend_on_signup(
        &self,
        instance: &Instance,
        client: Option<&str>,
        email_canonical: Option<&str>,
    ) -> Result<(), CoreError> {
        let limits = &self.limits;
        if let Some(client) = client {
            let client = client_bucket(client);
            self.limit(&format!("create:client:{client}"), limits.signup_per_client).await?;
        }
        self.limit(&format!("create:instance:{}", instance.id.0), limits.signup_per_instance).await?;
        if let Some(email) = email_canonical {
            self.limit(&format!("create:email:{}:{email}", instance.id.0), limits.signup_per_email).await?;
        }
        Ok(())
    }
}

/// Who a client is for rate limits: an IPv4 address itself, an IPv6 address its /64 (one
/// subscriber's network: a client that rotates its address inside it is still one client),
/// an IPv4-mapped IPv6 address its IPv4 address. Anything else (no address) as given.
pub fn client_bucket(client: &str) -> String {
    match client.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{network}/64")
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => client.to_owned(),
    }
}

/// Instances, signup domains and signing keys, as the request path reads them: cached for a
/// few seconds (keys for good), so a request costs no lookup for them.
pub(crate) struct Directory {
    pub instances: Arc<dyn Instances>,
    pub apps: Arc<dyn Apps>,
    pub tokens: Arc<dyn TokenGenerator>,
    pub clock: Arc<dyn Clock>,
    /// Instances by name (shared with the use cases that disable one).
    pub instance_cache: Arc<TtlCache<String, Instance>>,
    /// Signup domains with their apps, by (instance, domain id).
    domains: TtlCache<(InstanceId, String), (App, Domain)>,
    keys: RwLock<HashMap<InstanceId, Arc<KeyRing>>>,
}

impl Directory {
    pub fn new(
        instances: Arc<dyn Instances>,
        apps: Arc<dyn Apps>,
        tokens: Arc<dyn TokenGenerator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            instances,
            apps,
            tokens,
            clock,
            instance_cache: Arc::new(TtlCache::new()),
            domains: TtlCache::new(),
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// The active instance `name` (cached for a few seconds; unknown names are not cached).
    pub async fn instance(&self, name: &str) -> Result<Instance, CoreError> {
        if let Some(instance) = self.instance_cache.get(&name.to_owned()) {
            return Ok(instance);
        }
        let instance = self.instances.instance_by_name(name).await?.ok_or(CoreError::InstanceNotFound)?;
        self.instance_cache.put(name.to_owned(), instance.clone());
        Ok(instance)
    }

    /// Find or create an instance (with a signing key on creation).
    pub async fn ensure_instance(&self, name: &str) -> Result<Instance, CoreError> {
        let key =
            generate_key(self.tokens.public_id("key"), self.clock.now()).map_err(CoreError::Internal)?;
        Ok(self.instances.ensure_instance(name, key).await?)
    }

    /// A signup domain and its app (cached like instances).
    pub async fn signup_domain(
        &self,
        instance: &Instance,
        domain_id: &str,
    ) -> Result<Option<(App, Domain)>, CoreError> {
        let key = (instance.id, domain_id.to_owned());
        if let Some(found) = self.domains.get(&key) {
            return Ok(Some(found));
        }
        let found = self.apps.signup_domain(instance.id, domain_id).await?;
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
        let records = self.instances.signing_keys(instance.id).await?;
        let ring = Arc::new(KeyRing::new(instance.clone(), records).map_err(CoreError::Internal)?);
        self.keys.write().unwrap_or_else(|e| e.into_inner()).insert(instance.id, ring.clone());
        Ok(ring)
    }
}

/// Why an address that is in use cannot sign up again: its user is disabled (each surface says
/// so in its own words), or it is simply taken.
pub(crate) async fn address_in_use(
    users: &dyn crate::ports::Users,
    instance: InstanceId,
    email_canonical: &str,
) -> CoreError {
    match users.user_by_email(instance, email_canonical).await {
        Ok(Some(user)) if user.status == UserStatus::Inactive => CoreError::AccountDisabled,
        Ok(_) => CoreError::EmailTaken,
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::client_bucket;

    #[test]
    fn an_ipv6_client_is_its_64_and_an_ipv4_client_its_address() {
        assert_eq!(client_bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_bucket("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(client_bucket("2001:db8:1:3::1"), client_bucket("2001:db8:1:2::1"));
        assert_eq!(client_bucket("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(client_bucket("192.0.2.7"), "192.0.2.7");
        assert_eq!(client_bucket("not an address"), "not an address");
    }
}
