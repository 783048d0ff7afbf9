//! Lifecycle events to the operator's webhook endpoints (`webhook:` outbox kinds): a `POST` of
//! the event's JSON, signed per Standard Webhooks (`crate::standard_webhooks`). The body and the
//! `webhook-id` are the sealed message's, so every retry sends the same bytes under the same
//! id; the timestamp and signature are the attempt's. Any answer but a 2xx is retried with the
//! outbox's backoff and dead-lettered after `outbox.max_attempts`.

use super::mail::SendError;
use crate::config::EventWebhookConfig;
use onramp_core::OutboxPayload;
use onramp_core::clock::Clock;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// One endpoint's keys and bounds.
#[derive(Debug, Clone)]
struct Endpoint {
    secret: String,
    /// The secret being rotated out, and until when it signs too.
    previous: Option<(String, OffsetDateTime)>,
    timeout: std::time::Duration,
}

impl Endpoint {
    fn of(config: &EventWebhookConfig) -> Self {
        let previous = config.previous_secret.as_ref().and_then(|s| {
            let until = config.previous_secret_expires_at.as_deref()?;
            let until = OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339).ok()?;
            Some((s.0.clone(), until))
        });
        Self {
            secret: config.secret.0.clone(),
            previous,
            timeout: std::time::Duration::from_secs(config.timeout_secs),
        }
    }
}

/// Every endpoint, by instance (`None`: every instance's) and URL.
pub struct EventWebhooks {
    client: reqwest::Client,
    endpoints: HashMap<(Option<String>, String), Endpoint>,
    clock: Arc<dyn Clock>,
}

impl EventWebhooks {
    /// The endpoints of `global` (every instance) and of each instance in `instances`.
    pub fn new<'a>(
        global: &[EventWebhookConfig],
        instances: impl IntoIterator<Item = (&'a str, &'a [EventWebhookConfig])>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let mut endpoints = HashMap::new();
        for w in global {
            endpoints.insert((None, w.url.clone()), Endpoint::of(w));
        }
        for (instance, hooks) in instances {
            for w in hooks {
                endpoints.insert((Some(instance.to_owned()), w.url.clone()), Endpoint::of(w));
            }
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("onramp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, endpoints, clock })
    }

    pub async fn send(&self, payload: &OutboxPayload) -> Result<(), SendError> {
        let instance = payload.vars["data"]["instance"].as_str().map(str::to_owned);
        let endpoint = self
            .endpoints
            .get(&(instance, payload.to.clone()))
            .or_else(|| self.endpoints.get(&(None, payload.to.clone())))
            .ok_or_else(|| {
                SendError::Permanent(format!("no webhook endpoint {} is configured", payload.to))
            })?;
        let body = serde_json::to_vec(&payload.vars).map_err(|e| SendError::Permanent(e.to_string()))?;
        let now = self.clock.now();
        let mut secrets = vec![endpoint.secret.as_str()];
        if let Some((previous, until)) = &endpoint.previous
            && now < *until
        {
            secrets.push(previous);
        }
        let mut request = self
            .client
            .post(&payload.to)
            .timeout(endpoint.timeout)
            .header("content-type", "application/json");
        for (name, value) in
            crate::standard_webhooks::headers(&secrets, &payload.message_id, now.unix_timestamp(), &body)
        {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| SendError::Transient(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Transient(format!("the endpoint answered {status}")))
        }
    }
}
