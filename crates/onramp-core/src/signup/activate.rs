//! `activate`: redeem the emailed activation token once.

use crate::error::CoreError;
use crate::model::*;
use crate::service::Onramp;
use crate::token::secret_hash;

const MAX_TOKEN_LEN: usize = 256;

impl Onramp {
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn activate_signup(
        &self,
        instance: &Instance,
        token: &str,
    ) -> Result<ActivatedSignup, CoreError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(CoreError::field("token", "required", "is required"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(CoreError::TokenNotFound);
        }
        Ok(self.store.activate_signup(instance.id, &secret_hash(token), self.now()).await??)
    }
}
