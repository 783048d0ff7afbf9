//! FastTrack's account claim (seed 000, hardened): the owner of the address a FastTrack named
//! answers the confirmation mail, or the address is released when nobody does. `Claims` holds
//! only what these use cases need: the `Instances` port, the clock, how long an address may
//! stay unconfirmed, and the instance cache to tell when an instance is disabled.

use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::common::Common;
use crate::error::CoreError;
use crate::model::*;
use crate::ports::Instances;
use crate::token::secret_hash;
use std::sync::Arc;
use time::Duration;

/// How many unconfirmed owners one housekeeping pass releases.
const RELEASE_BATCH: u32 = 100;

/// The account claim's use cases.
#[derive(Clone)]
pub struct Claims {
    instances: Arc<dyn Instances>,
    clock: Arc<dyn Clock>,
    confirm_within: Duration,
    instance_cache: Arc<TtlCache<String, Instance>>,
}

impl Claims {
    pub(crate) fn new(common: &Common, instances: Arc<dyn Instances>) -> Self {
        Self {
            instances,
            clock: common.clock.clone(),
            confirm_within: common.settings.fast_track_confirm_within,
            instance_cache: common.directory.instance_cache.clone(),
        }
    }

    /// What the confirmation mail's link `token` is about, without using it (its page shows
    /// this with the button that answers).
    pub async fn look(&self, token: &str) -> Result<FastTrackClaim, CoreError> {
        self.settle(token, None).await
    }

    /// The owner of the address answers the confirmation mail: `Confirm` proves the address
    /// (the dashboard user becomes `active` and may reset its password from then on);
    /// `Release` says it was not them: the instance is disabled, every session in it is
    /// revoked, the dashboard user is deleted, and the address may FastTrack again.
    #[tracing::instrument(skip_all, fields(answer = ?answer))]
    pub async fn answer(&self, token: &str, answer: ClaimAnswer) -> Result<FastTrackClaim, CoreError> {
        let claim = self.settle(token, Some(answer)).await?;
        if answer == ClaimAnswer::Release
            && let Some(name) = &claim.instance
        {
            self.instance_cache.remove(name);
            tracing::warn!(instance = %name, "FastTrack released by the owner of its address");
        }
        Ok(claim)
    }

    async fn settle(&self, token: &str, answer: Option<ClaimAnswer>) -> Result<FastTrackClaim, CoreError> {
        if token.is_empty() || token.len() > 128 {
            return Err(CoreError::TokenNotFound);
        }
        Ok(self.instances.fast_track_claim(&secret_hash(token), answer, self.clock.now()).await??)
    }

    /// Release the FastTracks whose address was not confirmed within
    /// `fast_track.confirm_within_hours` (only `email_canonical`'s when given); the names of the
    /// instances disabled. Run by the worker's housekeeping, and by FastTrack for its address.
    pub async fn release_unconfirmed(&self, email_canonical: Option<&str>) -> Result<Vec<String>, CoreError> {
        let now = self.clock.now();
        let cutoff = now - self.confirm_within;
        let released =
            self.instances.release_unconfirmed_owners(cutoff, email_canonical, now, RELEASE_BATCH).await?;
        for name in &released {
            self.instance_cache.remove(name);
            tracing::warn!(instance = %name, "FastTrack released: its address was not confirmed in time");
        }
        Ok(released)
    }
}
