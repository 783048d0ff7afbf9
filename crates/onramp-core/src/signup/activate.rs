//! `activate`: redeem the emailed activation token once.

use crate::error::CoreError;
use crate::model::*;
use crate::signup::Signup;
use crate::token::secret_hash;

const MAX_TOKEN_LEN: usize = 256;

impl Signup {
    #[tracing::instrument(skip_all, fields(instance = %instance.name))]
    pub async fn activate(&self, instance: &Instance, token: &str) -> Result<ActivatedSignup, CoreError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(CoreError::field("token", "required", "is required"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(CoreError::TokenNotFound);
        }
        let now = self.common.now();
        let audit = crate::audit::pending_user(crate::audit::kinds::USER_ACTIVATED, instance, None, now);
        let audit = self.common.publishing(&instance.name, audit);
        Ok(self.signups.activate_signup(instance.id, &secret_hash(token), now, &audit).await??)
    }
}
