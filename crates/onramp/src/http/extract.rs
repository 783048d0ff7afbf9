//! What several surfaces read from a request the same way, each answering a problem in its
//! own format.

use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use onramp_core::CoreError;
use onramp_core::model::{App, Instance};
use std::marker::PhantomData;
use std::net::IpAddr;

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

/// The client's address (the peer, or behind a trusted proxy the nearest untrusted address in
/// `X-Forwarded-For`), for rate limits. Every surface reads it this way.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// The CAPTCHA token a caller sent in `X-Captcha-Token` (every signup surface reads it).
pub fn captcha_header(headers: &HeaderMap) -> Option<String> {
    headers.get("x-captcha-token").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The CAPTCHA token of a form: `captcha_token`, or the field a provider's widget fills in.
pub fn captcha_in_form(field: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["captcha_token", "cf-turnstile-response", "h-captcha-response", "g-recaptcha-response"]
        .into_iter()
        .find_map(|name| field(name).filter(|v| !v.is_empty()))
}

impl ClientAddr {
    /// The address as the rate-limit keys take it.
    pub fn key(&self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(super::client_addr(&parts.extensions, &parts.headers, &state.config.trusted_proxies)))
    }
}

/// The active instance the `Host` header names. A request for none (or a store that does not
/// answer) is refused in the surface's own error format `E`.
pub struct HostInstance<E> {
    pub instance: Instance,
    surface: PhantomData<E>,
}

impl<E: From<CoreError> + IntoResponse> FromRequestParts<AppState> for HostInstance<E> {
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let name = super::instance_name(&parts.headers, &state.config.base_domain);
        let instance = state.onramp.instance(&name).await?;
        Ok(Self { instance, surface: PhantomData })
    }
}
