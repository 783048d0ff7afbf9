//! Application API keys: how FastEditor, dialogportal and DreamFactory callers prove which app
//! they are. Only a key's hash is stored.

use crate::common::Common;
use crate::error::CoreError;
use crate::model::*;
use crate::ports::Apps;
use crate::token::secret_hash;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// An instance's API keys.
#[derive(Clone)]
pub struct ApiKeys {
    pub(crate) common: Common,
    pub(crate) apps: Arc<dyn Apps>,
}

impl ApiKeys {
    /// What is stored of an API key: its id, hash and a recognisable prefix.
    pub fn record(&self, app_id: &str, key: &str, label: &str, source: &'static str) -> NewApiKey {
        NewApiKey {
            id: self.common.tokens.public_id("key"),
            app_id: app_id.into(),
            secret_hash: secret_hash(key),
            prefix: key.chars().take(8).collect(),
            label: label.into(),
            source,
            created_at: self.common.now(),
        }
    }

    /// A new key for an app; the key itself is returned once and never stored.
    pub async fn create(
        &self,
        by: &crate::admin::AdminPrincipal,
        instance: &Instance,
        app_id: &str,
        label: &str,
    ) -> Result<(NewApiKey, String), CoreError> {
        by.may_write(Some(instance.id))?;
        let label = label.trim();
        if label.chars().count() > 100 || crate::text::has_forbidden(label) {
            return Err(CoreError::field("label", "invalid_label", "must be at most 100 plain characters"));
        }
        self.apps.app(instance.id, app_id).await?.ok_or(CoreError::AppNotFound)?;
        let key = format!("ork_{}", self.common.tokens.secret_token());
        let record = self.record(app_id, &key, label, api_key_source::CLI);
        let detail = serde_json::json!({ "app_id": app_id, "label": label });
        let audit = by.event(
            crate::audit::kinds::API_KEY_CREATED,
            Some(instance.id),
            Some(record.id.clone()),
            None,
            detail,
            self.common.now(),
        );
        self.apps.create_api_key(instance.id, &record, Some(&audit)).await?;
        Ok((record, key))
    }

    /// The app a live API key of this instance belongs to.
    pub async fn app_for_key(&self, instance: &Instance, key: &str) -> Result<Option<App>, CoreError> {
        if key.is_empty() || key.len() > 256 {
            return Ok(None);
        }
        let hash = secret_hash(key);
        let Some(record) = self.apps.api_key_by_hash(instance.id, &hash).await? else {
            return Ok(None);
        };
        // The index found it by hash; compare again in constant time before trusting it.
        if !bool::from(record.secret_hash.as_bytes().ct_eq(hash.as_bytes())) || record.revoked_at.is_some() {
            return Ok(None);
        }
        Ok(self.apps.app(instance.id, &record.app_id).await?)
    }
}
