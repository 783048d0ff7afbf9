//! How instances are set up beyond their rows: the operator's init SQL, provisioning webhooks
//! (a port: the binary implements it over HTTP) and what to do when a step fails. Used by
//! `provision` (the use cases) and held by `Onramp`.

use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;

/// What an operator's provisioning webhook is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceEvent {
    pub instance_id: i64,
    pub instance: String,
    pub url: String,
    /// Where the instance's own database is.
    pub database: String,
    pub owner_email: Option<String>,
}

/// The operator's own provisioning steps (webhooks), run after the instance's database exists
/// and before the instance becomes active.
#[async_trait]
pub trait ProvisioningHooks: Send + Sync {
    /// Run every hook; an error fails the provisioning. A hook implementation that fails
    /// part-way tells the hooks that had succeeded (`undone`) itself.
    async fn provisioned(&self, event: &InstanceEvent) -> Result<(), String>;
    /// Best effort: the instance the hooks were told about is gone again.
    async fn undone(&self, event: &InstanceEvent);
}

/// No webhooks configured.
pub struct NoHooks;

#[async_trait]
impl ProvisioningHooks for NoHooks {
    async fn provisioned(&self, _: &InstanceEvent) -> Result<(), String> {
        Ok(())
    }

    async fn undone(&self, _: &InstanceEvent) {}
}

/// How instances are set up.
#[derive(Clone)]
pub struct Provisioning {
    /// Run inside every new instance's own database.
    pub init_sql: Option<String>,
    pub hooks: Arc<dyn ProvisioningHooks>,
    /// On failure keep the instance as `provisioning_failed` (for `onramp instance retry`)
    /// instead of undoing it.
    pub keep_failed: bool,
}

impl Default for Provisioning {
    fn default() -> Self {
        Self { init_sql: None, hooks: Arc::new(NoHooks), keep_failed: false }
    }
}
