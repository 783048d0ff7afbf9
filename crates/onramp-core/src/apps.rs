//! Reading an instance's apps, for the hosted pages.

use crate::error::CoreError;
use crate::model::*;
use crate::service::Onramp;

impl Onramp {
    /// The app `id` of an instance.
    pub async fn app(&self, instance: &Instance, id: &str) -> Result<Option<App>, CoreError> {
        Ok(self.store.app(instance.id, id).await?)
    }

    /// The instance's apps that take signups (one of their domains allows it): `(id, name)`.
    pub async fn signup_apps(&self, instance: &Instance) -> Result<Vec<(String, String)>, CoreError> {
        let mut apps = Vec::new();
        for a in self.store.app_origins(instance.id).await? {
            let open = self.store.app_domains(instance.id, &a.app_id).await?.iter().any(|d| d.allow_signup);
            if let (true, Some(app)) = (open, self.store.app(instance.id, &a.app_id).await?) {
                apps.push((app.id, app.name));
            }
        }
        Ok(apps)
    }
}
