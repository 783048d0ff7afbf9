//! Delivery: the outbox worker claims due messages, opens their sealed payload, renders the
//! template, hands the mail to the transport, and records the outcome. Retries back off
//! exponentially; after `max_attempts` a message is dead-lettered. Requests never send.

pub mod events;
pub mod mail;
pub mod sms;
pub mod templates;
pub mod webhooks;

use crate::branding::Brand;
use crate::config::Config;
use crate::metrics::Metrics;
use mail::{MailTransport, SendError, build_message};
use onramp_core::model::OutboxMessage;
use onramp_core::{Onramp, OutboxPayload};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use templates::Templates;
use time::Duration;

/// How often the worker does its housekeeping.
const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

pub struct WorkerConfig {
    pub from: String,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub poll_interval: std::time::Duration,
    pub lease: Duration,
    pub batch: u32,
}

/// Named mail services of instances (`{instance}/{name}`): sender and transport.
pub type MailServices = std::collections::HashMap<String, (String, Box<dyn MailTransport>)>;

pub struct Worker {
    /// The clock, the seal key, background writes and housekeeping.
    onramp: Arc<Onramp>,
    /// The only storage the worker touches.
    outbox: Arc<dyn onramp_core::ports::Outbox>,
    transport: Box<dyn MailTransport>,
    sms: Option<(String, Box<dyn sms::SmsTransport>)>,
    services: MailServices,
    /// Where lifecycle events go (`webhook:` kinds).
    webhooks: Option<events::EventWebhooks>,
    templates: Templates,
    /// Where mails find their branding.
    branding: Arc<Config>,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
}

const MAX_RETRY_DELAY: Duration = Duration::hours(1);
/// How long a message this node cannot open waits before any node claims it again.
const UNOPENABLE_RETRY: Duration = Duration::minutes(5);

impl Worker {
    pub fn new(
        onramp: Arc<Onramp>,
        transport: Box<dyn MailTransport>,
        metrics: Arc<Metrics>,
        config: WorkerConfig,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            outbox: onramp.store().clone(),
            onramp,
            transport,
            sms: None,
            services: MailServices::new(),
            webhooks: None,
            templates: Templates::new()?,
            branding: Arc::new(Config::default()),
            metrics,
            config,
        })
    }

    /// Use these templates (the built-in ones plus the operator's).
    pub fn with_templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
        self
    }

    /// Brand mails as `config` brands the instance (and app) that sent them.
    pub fn with_branding(mut self, config: Arc<Config>) -> Self {
        self.branding = config;
        self
    }

    /// Send text messages (`sms:` outbox kinds) from `from` through `transport`.
    pub fn with_sms(mut self, from: String, transport: Box<dyn sms::SmsTransport>) -> Self {
        self.sms = Some((from, transport));
        self
    }

    /// Send lifecycle events to these endpoints.
    pub fn with_webhooks(mut self, webhooks: events::EventWebhooks) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// Send mail that names a service through that service.
    pub fn with_services(mut self, services: MailServices) -> Self {
        self.services = services;
        self
    }

    /// Claim one batch of due messages and deliver it; returns how many were claimed.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        self.run_batch(&AtomicBool::new(false)).await
    }

    /// One batch; once `stopping` is set, the messages not yet sent are let go at once (for
    /// another node or the next start) instead of waiting out their lease.
    async fn run_batch(&self, stopping: &AtomicBool) -> anyhow::Result<usize> {
        // A message whose write a request did not wait for is about to land: take it too.
        self.onramp.background().settled(std::time::Duration::from_secs(5)).await;
        // Lifecycle events the audit log marked become messages first, so this batch takes them.
        if let Err(e) = self.onramp.events().publish_pending().await {
            tracing::error!(error = %e, "publishing lifecycle events failed");
        }
        let store = &self.outbox;
        let batch = store.claim_outbox(self.onramp.now(), self.config.lease, self.config.batch).await?;
        let claimed = batch.len();
        for message in batch {
            if stopping.load(Ordering::SeqCst) {
                let now = Some(self.onramp.now());
                store.outbox_failed(message.id, message.attempts, now, "released at shutdown").await?;
                continue;
            }
            let attempts = message.attempts + 1;
            match self.deliver(&message).await {
                Ok(()) => {
                    store.outbox_delivered(message.id, self.onramp.now()).await?;
                    self.metrics.outbox_delivered.inc();
                }
                Err(SendError::Unopenable(e)) => {
                    // Not an attempt: the message waits, whole, for a node with the right key.
                    tracing::error!(id = message.id, kind = %message.kind, error = %e, "outbox message cannot be opened by this node; left for another");
                    self.metrics.outbox_unopenable.inc();
                    let later = Some(self.onramp.now() + UNOPENABLE_RETRY);
                    store
                        .outbox_failed(message.id, message.attempts, later, &format!("unopenable: {e}"))
                        .await?;
                }
                Err(e) => {
                    self.metrics.outbox_failures.inc();
                    if matches!(e, SendError::Tls(_)) {
                        self.metrics.outbox_tls_failures.inc();
                    }
                    let retry_at = match &e {
                        SendError::Transient(_) | SendError::Tls(_)
                            if attempts < self.config.max_attempts =>
                        {
                            let factor =
                                1i32.checked_shl(attempts.saturating_sub(1).min(20)).unwrap_or(i32::MAX);
                            let delay = (self.config.retry_base * factor).min(MAX_RETRY_DELAY);
                            Some(self.onramp.now() + delay)
                        }
                        _ => None,
                    };
                    if retry_at.is_none() {
                        tracing::error!(id = message.id, kind = %message.kind, error = %e, "outbox message dead-lettered");
                    } else {
                        tracing::warn!(id = message.id, kind = %message.kind, attempts, error = %e, "outbox delivery failed; will retry");
                    }
                    store.outbox_failed(message.id, attempts, retry_at, &e.to_string()).await?;
                }
            }
        }
        Ok(claimed)
    }

    /// Deliver until nothing is due (for tests and `onramp outbox drain`-like use).
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        for _ in 0..1000 {
            let n = self.run_once().await?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    async fn deliver(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let plain = self
            .onramp
            .open_sealed(&message.sealed_payload)
            .map_err(|e| SendError::Unopenable(e.to_string()))?;
        let payload: OutboxPayload = serde_json::from_slice(&plain)
            .map_err(|e| SendError::Permanent(format!("payload unreadable: {e}")))?;
        if message.kind.starts_with("webhook:") {
            let webhooks = self
                .webhooks
                .as_ref()
                .ok_or_else(|| SendError::Permanent("no webhook endpoint is configured".into()))?;
            return webhooks.send(&payload).await;
        }
        if message.kind.starts_with("sms:") {
            let (from, transport) = self
                .sms
                .as_ref()
                .ok_or_else(|| SendError::Permanent("no SMS transport is configured".into()))?;
            let text = self
                .templates
                .render_sms(&payload.template, &payload.language, &payload.vars)
                .map_err(|e| SendError::Permanent(format!("sms template {}: {e}", payload.template)))?;
            let id = payload.message_id.trim_matches(['<', '>']).to_owned();
            return transport.send(&sms::Sms { id, to: payload.to, from: from.clone(), text }).await;
        }
        let rendered = self
            .templates
            .render(&payload.template, &self.language(&payload), &self.mail_vars(&payload))
            .map_err(|e| SendError::Permanent(format!("template {}: {e}", payload.template)))?;
        let (from, transport) = match &payload.service {
            None => (&self.config.from, &self.transport),
            Some(name) => match self.services.get(name) {
                Some((from, transport)) => (from, transport),
                None => return Err(SendError::Permanent(format!("no mail service {name}"))),
            },
        };
        let mail = build_message(from, &payload.to, &payload.message_id, &rendered)?;
        transport.send(&mail).await
    }

    /// The payload's variables plus what the layout shows: the brand of the instance and app
    /// that sent the mail (named by `instance`, `app_id` and `app_name`) and the recipient.
    fn mail_vars(&self, payload: &OutboxPayload) -> serde_json::Value {
        let text = |key: &str| payload.vars.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let instance =
            Some(text("instance")).filter(|i| !i.is_empty()).unwrap_or(onramp_core::model::DEFAULT_INSTANCE);
        let brand = Brand::resolve(&self.branding, instance, Some((text("app_id"), text("app_name"))));
        let mut vars = payload.vars.clone();
        if let Some(map) = vars.as_object_mut() {
            map.insert(
                "brand".into(),
                serde_json::json!({
                    "name": brand.name,
                    "logo_url": brand.logo_url,
                    "accent": brand.accent,
                    "ink": brand.ink(),
                    "initial": brand.initial(),
                }),
            );
            map.entry("recipient").or_insert_with(|| payload.to.clone().into());
        }
        vars
    }

    /// The reader's language when we ship it, else the instance's default (then English).
    fn language(&self, payload: &OutboxPayload) -> String {
        match &payload.fallback_language {
            Some(fallback)
                if self.templates.language_match(&payload.template, &payload.language).is_none() =>
            {
                fallback.clone()
            }
            _ => payload.language.clone(),
        }
    }

    /// The work that falls due with time rather than with a request: FastTracks whose address
    /// was not confirmed in time are released, audit entries past their retention deleted.
    /// Returns the instances disabled.
    pub async fn housekeeping(&self) -> anyhow::Result<Vec<String>> {
        let released = self.onramp.claims().release_unconfirmed(None).await?;
        self.metrics.fast_tracks_released.inc_by(released.len() as u64);
        let days = self.branding.audit.retention_days;
        if days > 0 {
            let pruned = self.onramp.admin().prune_audit(Duration::days(i64::from(days))).await?;
            if pruned > 0 {
                tracing::info!(pruned, "audit entries past their retention deleted");
            }
        }
        Ok(released)
    }

    /// Run until `shutdown` resolves: wake on every enqueue, and poll for retries. On
    /// shutdown the message being sent is finished and the rest of its batch released.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        self.run_until(shutdown).await;
    }

    /// As [`Worker::run`], borrowing the worker.
    pub async fn run_until(&self, shutdown: impl std::future::Future<Output = ()>) {
        let wake = self.onramp.outbox_wake();
        let stopping = AtomicBool::new(false);
        let stop = tokio::sync::Notify::new();
        let watch = async {
            shutdown.await;
            stopping.store(true, Ordering::SeqCst);
            stop.notify_one();
        };
        let work = async {
            let mut housekept: Option<std::time::Instant> = None;
            while !stopping.load(Ordering::SeqCst) {
                if housekept.is_none_or(|at| at.elapsed() >= HOUSEKEEPING_INTERVAL) {
                    housekept = Some(std::time::Instant::now());
                    if let Err(e) = self.housekeeping().await {
                        tracing::error!(error = %e, "housekeeping failed");
                    }
                }
                match self.run_batch(&stopping).await {
                    Ok(n) if n as u32 == self.config.batch => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "outbox worker pass failed"),
                }
                tokio::select! {
                    _ = stop.notified() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        };
        tokio::join!(watch, work);
    }
}
