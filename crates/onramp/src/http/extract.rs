//! What several surfaces read from a request the same way, each answering a problem in its
//! own format.

use super::AppState;
use axum::http::HeaderMap;
use onramp_core::CoreError;
use onramp_core::model::{App, Instance};

/// Why a request names no calling app.
#[derive(Debug)]
pub enum CallerProblem {
    /// The host names no active instance.
    NoInstance,
    /// No `X-API-Key`, or not a live key of the instance.
    BadKey,
    Core(CoreError),
}

/// The instance the host names, and the app whose `X-API-Key` the request carries (FastEditor
/// and dialogportal).
pub async fn keyed_app(state: &AppState, headers: &HeaderMap) -> Result<(Instance, App), CallerProblem> {
    let name = super::instance_name(headers, &state.config.base_domain);
    let instance = match state.onramp.instance(&name).await {
        Ok(instance) => instance,
        Err(CoreError::InstanceNotFound) => return Err(CallerProblem::NoInstance),
        Err(e) => return Err(CallerProblem::Core(e)),
    };
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    match state.onramp.api_keys().app_for_key(&instance, key).await {
        Ok(Some(app)) => Ok((instance, app)),
        Ok(None) => Err(CallerProblem::BadKey),
        Err(e) => Err(CallerProblem::Core(e)),
    }
}
