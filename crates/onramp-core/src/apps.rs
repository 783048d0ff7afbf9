//! Reading an instance's apps and settings, for the hosted pages and the surfaces.

use crate::error::CoreError;
use crate::model::*;
use crate::ports::{Apps, InstanceSettings};
use std::sync::Arc;

/// What the hosted pages and the app-schema endpoint read of an instance's apps and settings.
#[derive(Clone)]
pub struct Catalog {
    pub(crate) apps: Arc<dyn Apps>,
    pub(crate) instance_settings: Arc<dyn InstanceSettings>,
}

impl Catalog {
    /// The app `id` of an instance.
    pub async fn app(&self, instance: &Instance, id: &str) -> Result<Option<App>, CoreError> {
        Ok(self.apps.app(instance.id, id).await?)
    }

    /// The instance's apps that take signups (one of their domains allows it): `(id, name)`.
    pub async fn signup_apps(&self, instance: &Instance) -> Result<Vec<(String, String)>, CoreError> {
        let mut apps = Vec::new();
        for a in self.apps.app_origins(instance.id).await? {
            let open = self.apps.app_domains(instance.id, &a.app_id).await?.iter().any(|d| d.allow_signup);
            if let (true, Some(app)) = (open, self.apps.app(instance.id, &a.app_id).await?) {
                apps.push((app.id, app.name));
            }
        }
        Ok(apps)
    }

    /// The app schema of seed 004: the app, its domains and the schema version.
    pub async fn app_schema(
        &self,
        instance: &Instance,
        app_id: &str,
    ) -> Result<(App, Vec<Domain>), CoreError> {
        let app = self.apps.app(instance.id, app_id).await?.ok_or(CoreError::AppNotFound)?;
        let domains = self.apps.app_domains(instance.id, app_id).await?;
        Ok((app, domains))
    }

    /// An instance's user-service settings (the surfaces read them on every call).
    pub async fn instance_settings(&self, instance: InstanceId) -> Result<UserServiceSettings, CoreError> {
        Ok(self.instance_settings.instance_settings(instance).await?)
    }
}
