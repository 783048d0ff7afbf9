//! The operator's use cases: what `onramp instance|app|outbox …` does today, and what the admin
//! API will call (issue 13). Adapters call these, never the store. `Operator` holds only the
//! ports they need (the shape every use case is moving to: issue 12).

use crate::audit::kinds;
use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::common::Common;
use crate::error::CoreError;
use crate::model::*;
use crate::ports::{Apps, Contracts, Database, InstanceSettings, Instances, Outbox};
use serde_json::json;
use std::sync::Arc;

/// The operator's use cases.
#[derive(Clone)]
pub struct Operator {
    database: Arc<dyn Database>,
    instances: Arc<dyn Instances>,
    settings: Arc<dyn InstanceSettings>,
    apps: Arc<dyn Apps>,
    contracts: Arc<dyn Contracts>,
    outbox: Arc<dyn Outbox>,
    clock: Arc<dyn Clock>,
    /// The request path's instance cache, told when an instance is disabled.
    instance_cache: Arc<TtlCache<String, Instance>>,
}

/// What the operator sees of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxStatus {
    pub counts: OutboxCounts,
    /// The newest last errors of pending and dead messages.
    pub failures: Vec<OutboxFailure>,
}

impl Operator {
    pub(crate) fn new(store: Arc<dyn crate::ports::Store>, common: &Common) -> Self {
        Operator {
            database: store.clone(),
            instances: store.clone(),
            settings: store.clone(),
            apps: store.clone(),
            contracts: store.clone(),
            outbox: store,
            clock: common.clock.clone(),
            instance_cache: common.directory.instance_cache.clone(),
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Bring a database to this build's schema (`onramp migrate`): the one operator action
    /// that runs before a service, which needs the schema, can be built.
    pub async fn migrate(database: &dyn Database) -> Result<(), CoreError> {
        Ok(database.migrate().await?)
    }

    /// Does the database answer? (readiness)
    pub async fn ping(&self) -> Result<(), CoreError> {
        Ok(self.database.ping().await?)
    }

    /// Any instance by name, in whatever state (an operator sees disabled and failed ones too).
    pub async fn instance_summary(&self, name: &str) -> Result<InstanceSummary, CoreError> {
        self.instances.instance_summary(name).await?.ok_or(CoreError::InstanceNotFound)
    }

    pub async fn list_instances(&self) -> Result<Vec<InstanceSummary>, CoreError> {
        Ok(self.instances.list_instances().await?)
    }

    /// Enable or disable an instance; `false` when there is none that is active or disabled
    /// (one being provisioned is neither). A disabled instance answers no request at once on
    /// this node, and within the instance cache's few seconds on others.
    pub async fn set_instance_active(
        &self,
        by: &crate::admin::AdminPrincipal,
        name: &str,
        active: bool,
    ) -> Result<bool, CoreError> {
        let Some(summary) = self.instances.instance_summary(name).await? else { return Ok(false) };
        by.may_write(Some(summary.id))?;
        let kind = if active { kinds::INSTANCE_ENABLED } else { kinds::INSTANCE_DISABLED };
        let audit = by.event(kind, Some(summary.id), Some(name.to_owned()), None, json!({}), self.now());
        let changed = self.instances.set_instance_active(name, active, Some(&audit)).await?;
        self.instance_cache.remove(&name.to_owned());
        Ok(changed)
    }

    /// Change an instance's user-service settings; the open-registration role is created when
    /// it does not exist yet.
    pub async fn update_instance_settings(
        &self,
        by: &crate::admin::AdminPrincipal,
        instance: InstanceId,
        change: impl FnOnce(&mut UserServiceSettings) -> Result<(), CoreError>,
    ) -> Result<UserServiceSettings, CoreError> {
        by.may_write(Some(instance))?;
        let mut settings = self.settings.instance_settings(instance).await?;
        change(&mut settings)?;
        if let Some(role) = &settings.open_reg_role {
            let spec = RoleSpec { name: role.clone(), description: String::new() };
            self.settings.ensure_roles(instance, &[spec], self.now()).await?;
        }
        let detail = json!({
            "open_registration": settings.open_registration,
            "open_reg_role": settings.open_reg_role,
            "open_reg_email_service": settings.open_reg_email_service,
            "open_reg_email_template": settings.open_reg_email_template,
            "allow_keyless_registration": settings.allow_keyless,
            "default_language": settings.default_language,
        });
        let audit =
            by.event(kinds::INSTANCE_SETTINGS_CHANGED, Some(instance), None, None, detail, self.now());
        self.settings.set_instance_settings(instance, &settings, Some(&audit)).await?;
        Ok(settings)
    }

    /// How many messages are pending, delivered and dead.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, CoreError> {
        Ok(self.outbox.outbox_counts().await?)
    }

    /// Counts, and the newest `last_errors` errors (a TLS or credentials error says it is a
    /// configuration error).
    pub async fn outbox_status(&self, last_errors: u32) -> Result<OutboxStatus, CoreError> {
        Ok(OutboxStatus {
            counts: self.outbox.outbox_counts().await?,
            failures: self.outbox.outbox_failures(last_errors).await?,
        })
    }

    pub async fn api_keys(&self, instance: InstanceId) -> Result<Vec<ApiKeyRecord>, CoreError> {
        Ok(self.apps.list_api_keys(instance).await?)
    }

    /// Revoke a live key; `false` when there is none by that id.
    pub async fn revoke_api_key(
        &self,
        by: &crate::admin::AdminPrincipal,
        instance: InstanceId,
        id: &str,
    ) -> Result<bool, CoreError> {
        by.may_write(Some(instance))?;
        let kind = crate::audit::kinds::API_KEY_REVOKED;
        let audit =
            by.event(kind, Some(instance), Some(id.to_owned()), None, serde_json::json!({}), self.now());
        Ok(self.apps.revoke_api_key(instance, id, self.now(), &audit).await?)
    }

    /// Revoke a live key of app `app_id`; `key_not_found` when that app has none by that id.
    pub async fn revoke_app_key(
        &self,
        by: &crate::admin::AdminPrincipal,
        instance: InstanceId,
        app_id: &str,
        key_id: &str,
    ) -> Result<(), CoreError> {
        let keys = self.apps.list_api_keys(instance).await?;
        let live = keys.iter().any(|k| k.id == key_id && k.app_id == app_id && k.revoked_at.is_none());
        if live && self.revoke_api_key(by, instance, key_id).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound { code: "key_not_found", message: "No live key with that id." })
        }
    }

    /// An app's contracts and which is its default.
    pub async fn contracts(
        &self,
        instance: InstanceId,
        app: &str,
    ) -> Result<(Vec<Contract>, Option<String>), CoreError> {
        self.apps.app(instance, app).await?.ok_or(CoreError::AppNotFound)?;
        let default = self.apps.app_settings(instance, app).await?.default_contract;
        Ok((self.contracts.contracts(instance, app).await?, default))
    }

    /// Save a contract (checked by the caller against the configuration's rules), and make it
    /// the app's default when asked.
    pub async fn put_contract(
        &self,
        by: &crate::admin::AdminPrincipal,
        instance: InstanceId,
        app: &str,
        contract: &Contract,
        make_default: bool,
    ) -> Result<(), CoreError> {
        by.may_write(Some(instance))?;
        self.apps.app(instance, app).await?.ok_or(CoreError::AppNotFound)?;
        let detail = json!({ "app_id": app, "default": make_default, "fields": contract.fields.len() });
        let audit = by.event(
            kinds::CONTRACT_SAVED,
            Some(instance),
            Some(contract.id.clone()),
            None,
            detail,
            self.now(),
        );
        self.contracts.put_contract(instance, app, contract, Some(&audit)).await?;
        if make_default {
            let mut settings = self.apps.app_settings(instance, app).await?;
            settings.default_contract = Some(contract.id.clone());
            self.apps.set_app_settings(instance, app, &settings, None).await?;
        }
        Ok(())
    }
}
