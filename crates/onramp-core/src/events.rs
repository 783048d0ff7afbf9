//! Lifecycle events: what the operator's systems are told after the fact (a user was created,
//! activated, disabled, …), delivered to their webhook endpoints through the outbox.
//!
//! The audit log is the journal. An entry whose event some endpoint of its instance wants is
//! written marked "to publish", in the transaction of the change it records, so an event exists
//! exactly when its change committed. The worker (`Events::publish_pending`) turns each marked
//! entry into one outbox message per endpoint and clears the mark in one transaction, which
//! only one node can do for an entry: every event is handed to the outbox once, under one
//! `webhook-id`, and the outbox retries it with that id until it is delivered or dead.

use crate::common::Common;
use crate::error::CoreError;
use crate::model::*;
use crate::ports::AuditLog;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The event types (stable), as the README's catalogue lists them.
pub mod types {
    pub const ACCOUNT_CREATED: &str = "account.created";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_ACTIVATED: &str = "user.activated";
    pub const USER_CONFIRMED: &str = "user.confirmed";
    pub const USER_PASSWORD_RESET: &str = "user.password_reset";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_DELETED: &str = "user.deleted";
    pub const INSTANCE_PROVISIONED: &str = "instance.provisioned";
    pub const SESSION_CREATED: &str = "session.created";

    pub const ALL: [&str; 9] = [
        ACCOUNT_CREATED,
        USER_CREATED,
        USER_ACTIVATED,
        USER_CONFIRMED,
        USER_PASSWORD_RESET,
        USER_DISABLED,
        USER_DELETED,
        INSTANCE_PROVISIONED,
        SESSION_CREATED,
    ];
}

/// The event types an audit entry of `kind` is published as (most one, a `/v1` signup two:
/// its account and its user).
pub fn types_of(kind: &str, detail: &Value) -> Vec<&'static str> {
    use crate::audit::kinds;
    match kind {
        kinds::USER_SIGNED_UP if detail.get("account_id").is_some() => {
            vec![types::ACCOUNT_CREATED, types::USER_CREATED]
        }
        kinds::USER_SIGNED_UP => vec![types::USER_CREATED],
        kinds::USER_ACTIVATED => vec![types::USER_ACTIVATED],
        kinds::USER_CONFIRMED => vec![types::USER_CONFIRMED],
        kinds::USER_PASSWORD_RESET => vec![types::USER_PASSWORD_RESET],
        kinds::USER_DISABLED => vec![types::USER_DISABLED],
        kinds::USER_DELETED => vec![types::USER_DELETED],
        kinds::INSTANCE_PROVISIONED => vec![types::INSTANCE_PROVISIONED],
        kinds::SESSION_CREATED | kinds::LOGIN_SUCCEEDED => vec![types::SESSION_CREATED],
        _ => Vec::new(),
    }
}

/// One webhook endpoint: where, and which event types (none listed: every type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub url: String,
    pub events: Vec<String>,
}

impl Subscription {
    fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }
}

/// Every endpoint: those of all instances, and each instance's own.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    pub global: Vec<Subscription>,
    pub instances: HashMap<String, Vec<Subscription>>,
}

impl Subscriptions {
    fn of<'a>(&'a self, instance: &str) -> impl Iterator<Item = &'a Subscription> {
        self.global.iter().chain(self.instances.get(instance).into_iter().flatten())
    }

    /// Whether an endpoint of `instance` wants an entry of `kind` with `detail`.
    pub fn wanted(&self, instance: &str, kind: &str, detail: &Value) -> bool {
        let types = types_of(kind, detail);
        !types.is_empty() && self.of(instance).any(|s| types.iter().any(|t| s.wants(t)))
    }
}

/// The lifecycle events use case: marks what to publish, and publishes it.
#[derive(Clone)]
pub struct Events {
    pub(crate) common: Common,
    pub(crate) journal: Arc<dyn AuditLog>,
}

/// Entries taken per pass.
const BATCH: u32 = 100;

impl Events {
    /// Hand every marked audit entry to the outbox, one message per endpoint that wants it;
    /// returns how many entries were published. Safe to run on every node at once.
    pub async fn publish_pending(&self) -> Result<usize, CoreError> {
        let pending = self.journal.unpublished_events(BATCH).await?;
        let mut published = 0;
        for entry in &pending {
            let messages = self.messages(entry)?;
            if self.journal.publish_event(entry.id, &messages).await? {
                published += 1;
            }
        }
        if published > 0 {
            self.common.wake_outbox();
        }
        Ok(published)
    }

    fn messages(&self, entry: &UnpublishedEvent) -> Result<Vec<(InstanceId, NewOutboxMessage)>, CoreError> {
        let Some((instance_id, instance)) = &entry.instance else { return Ok(Vec::new()) };
        let subscriptions = &self.common.settings.events;
        let at = entry.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let mut messages = Vec::new();
        for event_type in types_of(&entry.kind, &entry.detail) {
            let data = event_data(entry, instance, event_type);
            let body = json!({ "type": event_type, "timestamp": at, "data": data });
            // One id per event, the same on every retry and at every endpoint.
            let id = format!("msg_{}_{}", entry.id, event_type.replace('.', "_"));
            for subscription in subscriptions.of(instance).filter(|s| s.wants(event_type)) {
                let message = self.common.letters.event(event_type, &subscription.url, &id, body.clone())?;
                messages.push((*instance_id, message));
            }
        }
        Ok(messages)
    }
}

/// What an event says: ids, the instance, the app, the address and names of the user it is
/// about, and what its audit entry recorded (never a secret: audit details hold none).
fn event_data(entry: &UnpublishedEvent, instance: &str, event_type: &str) -> Value {
    let mut data = json!({ "instance": instance });
    if let Some(user) = &entry.user {
        data["user"] = json!({
            "id": user.public_id,
            "uuid": user.uuid,
            "email": (!user.email.is_empty()).then_some(&user.email),
            "username": user.username,
            "name": user.name,
            "status": user.status,
            "app_id": user.app_id,
            "language": user.language,
        });
    } else if let Some(id) = &entry.user_id {
        data["user"] = json!({ "id": id });
    }
    if let Some(detail) = entry.detail.as_object() {
        for (key, value) in detail {
            if key == "account_id"
                && event_type != types::ACCOUNT_CREATED
                && event_type != types::USER_CREATED
            {
                continue;
            }
            data[key] = value.clone();
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_signup_is_an_account_and_a_user_and_a_login_a_session() {
        use crate::audit::kinds;
        let v1 = json!({"account_id": "act_1", "surface": "v1"});
        assert_eq!(types_of(kinds::USER_SIGNED_UP, &v1), [types::ACCOUNT_CREATED, types::USER_CREATED]);
        assert_eq!(types_of(kinds::USER_SIGNED_UP, &json!({"surface": "fasteditor"})), [types::USER_CREATED]);
        assert_eq!(types_of(kinds::LOGIN_SUCCEEDED, &json!({})), [types::SESSION_CREATED]);
        assert!(types_of(kinds::LOGIN_FAILED, &json!({})).is_empty());
    }

    #[test]
    fn an_endpoint_gets_what_it_lists_or_everything() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.instances.insert(
            "acme".into(),
            vec![Subscription { url: "http://h/1".into(), events: vec!["user.disabled".into()] }],
        );
        let kinds = crate::audit::kinds::USER_DISABLED;
        assert!(subscriptions.wanted("acme", kinds, &json!({})));
        assert!(!subscriptions.wanted("acme", crate::audit::kinds::USER_ACTIVATED, &json!({})));
        assert!(!subscriptions.wanted("other", kinds, &json!({})));
        subscriptions.global.push(Subscription { url: "http://h/2".into(), events: vec![] });
        assert!(subscriptions.wanted("other", crate::audit::kinds::USER_ACTIVATED, &json!({})));
    }
}
