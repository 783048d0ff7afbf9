//! What every HTTP handler shares. It lives with the handlers, so `http/*` needs nothing from
//! the wiring in `app.rs` (which builds it).

use crate::config::Config;
use crate::metrics::Metrics;
use onramp_core::Onramp;
use std::sync::Arc;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    pub onramp: Arc<Onramp>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub pages: Arc<super::pages::Pages>,
    /// Which web origins may call each instance (CORS).
    pub origins: Arc<onramp_core::origin::OriginPolicy>,
    /// `[fast_track] allowed_origins`, parsed.
    pub fast_track_origins: Arc<Vec<onramp_core::origin::OriginPattern>>,
    /// Every path FastEditor partner signup answers at.
    pub partner_paths: Arc<Vec<String>>,
}
