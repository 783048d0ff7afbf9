//! Provisioning webhooks: the operator's own steps for a new instance (a DNS record, a
//! billing customer, ...). Each is a `POST` of a JSON event, signed like Stripe's:
//!
//! ```text
//! Onramp-Event: instance.provisioned
//! Onramp-Signature: t=1700000000,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>
//! ```
//!
//! A hook is tried `attempts` times with a `timeout_secs` bound each and a doubling pause in
//! between; 4xx answers other than 408 and 429 are final. When one fails, the hooks before it
//! get `instance.deprovisioned` (once, best effort) and provisioning is undone.

use crate::config::WebhookConfig;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use onramp_core::clock::Clock;
use onramp_core::provision::{InstanceEvent, ProvisioningHooks};
use sha2::Sha256;
use std::sync::Arc;

pub const PROVISIONED: &str = "instance.provisioned";
pub const DEPROVISIONED: &str = "instance.deprovisioned";

pub struct Webhooks {
    client: reqwest::Client,
    hooks: Vec<WebhookConfig>,
    clock: Arc<dyn Clock>,
}

/// `t=…,v1=…` for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is never reached.
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

impl Webhooks {
    pub fn new(hooks: Vec<WebhookConfig>, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { client, hooks, clock })
    }

    async fn send(
        &self,
        hook: &WebhookConfig,
        event_type: &str,
        event: &InstanceEvent,
    ) -> Result<(), String> {
        let now = self.clock.now().unix_timestamp();
        let body =
            serde_json::to_vec(&serde_json::json!({ "type": event_type, "created_at": now, "data": event }))
                .map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(&hook.url)
            .timeout(std::time::Duration::from_secs(hook.timeout_secs))
            .header("content-type", "application/json")
            .header("onramp-event", event_type)
            .header("onramp-signature", signature(&hook.secret.0, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{e}"))?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("answered {status}")) }
    }

    async fn deliver(
        &self,
        hook: &WebhookConfig,
        event_type: &str,
        event: &InstanceEvent,
    ) -> Result<(), String> {
        let mut pause = std::time::Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=hook.attempts {
            match self.send(hook, event_type, event).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(url = %hook.url, attempt, error = %e, "provisioning webhook failed");
                    let final_answer =
                        e.starts_with("answered 4") && !e.contains("408") && !e.contains("429");
                    last = e;
                    if final_answer {
                        break;
                    }
                }
            }
            if attempt < hook.attempts {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
            }
        }
        Err(format!("{}: {last}", hook.url))
    }
}

#[async_trait]
impl ProvisioningHooks for Webhooks {
    async fn provisioned(&self, event: &InstanceEvent) -> Result<(), String> {
        for (i, hook) in self.hooks.iter().enumerate() {
            if let Err(e) = self.deliver(hook, PROVISIONED, event).await {
                for done in &self.hooks[..i] {
                    let _ = self.send(done, DEPROVISIONED, event).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn undone(&self, event: &InstanceEvent) {
        for hook in &self.hooks {
            let _ = self.send(hook, DEPROVISIONED, event).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_time_and_body() {
        let a = signature("s3cret-s3cret-s3cret", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("s3cret-s3cret-s3cret", 1_700_000_001, b"{}"));
        assert_ne!(a, signature("s3cret-s3cret-s3cret", 1_700_000_000, b"{ }"));
        assert_ne!(a, signature("other-secret-other", 1_700_000_000, b"{}"));
    }
}
