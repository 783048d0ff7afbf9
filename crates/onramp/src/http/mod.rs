//! The HTTP surfaces. Each surface module parses its own wire format into core calls and renders
//! outcomes and errors in its own format; what they share (instance resolution, client address,
//! body limit, metrics, the ops endpoints) lives here.

pub mod admin;
pub mod browser;
pub mod console;
pub mod dialogportal;
pub mod dreamfactory;
pub mod extract;
pub mod fast_track;
pub mod fasteditor;
pub mod input;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod state;
pub mod v1;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
pub use state::AppState;
use std::net::{IpAddr, SocketAddr};

/// Bodies over this are refused with 413 before any parsing or hashing (SECURITY.md 9).
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let mut partner = Router::new();
    for path in state.partner_paths.iter() {
        partner =
            partner.route(path, axum::routing::post(fasteditor::signup).fallback(fasteditor::wrong_method));
    }
    Router::new()
        .merge(partner)
        .merge(dialogportal::routes())
        .merge(v1::routes())
        .merge(ops::routes())
        .merge(admin::routes())
        .merge(console::routes())
        .merge(fast_track::routes())
        .merge(dreamfactory::routes())
        .merge(pages::routes())
        .fallback(pages::instance::not_found)
        .method_not_allowed_fallback(v1::error::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), input::refuse_unstorable))
        .layer(middleware::from_fn_with_state(state.clone(), browser::require_json))
        .layer(browser::cors_layer())
        .layer(middleware::from_fn_with_state(state.clone(), browser::check_origin))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&crate::metrics::RequestLabels { method, route, status: response.status().as_u16() })
        .inc();
    response
}

/// Why a request has no body to read: over `BODY_LIMIT`, or unreadable. Each surface answers
/// it in its own format.
#[derive(Debug)]
pub enum BodyProblem {
    TooLarge,
    Unreadable(String),
}

impl BodyProblem {
    pub fn status(&self) -> axum::http::StatusCode {
        match self {
            Self::TooLarge => axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable(_) => axum::http::StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::TooLarge => format!("The body must be at most {BODY_LIMIT} bytes."),
            Self::Unreadable(why) => why.clone(),
        }
    }
}

/// A request body, or why there is none.
pub fn body_bytes(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, BodyProblem> {
    body.map_err(|r| {
        if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            BodyProblem::TooLarge
        } else {
            BodyProblem::Unreadable(r.body_text())
        }
    })
}

/// `Retry-After: secs` on `response`, when there is a time to say.
pub fn with_retry_after(mut response: Response, secs: Option<u64>) -> Response {
    if let Some(secs) = secs
        && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    response
}

/// The instance a request addresses: `{instance}.{base_domain}` names one; any other host
/// means `default`. Links never come from this header; only the choice of directory does.
/// `Cache-Control: no-store` on every answer of the routes it wraps (tokens, sessions, codes).
pub fn no_store() -> tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue> {
    tower_http::set_header::SetResponseHeaderLayer::overriding(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    )
}

pub fn instance_name(headers: &HeaderMap, base_domain: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host = match host.rsplit_once(':') {
        Some((h, port))
            if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']')
                || host.starts_with('[') && host.ends_with(']') =>
        {
            if host.starts_with('[') {
                host.as_str()
            } else {
                h
            }
        }
        _ => host.as_str(),
    };
    let suffix = format!(".{}", base_domain.to_ascii_lowercase());
    match host.strip_suffix(&suffix) {
        Some(label) if crate::config::is_instance_name(label) => label.to_owned(),
        _ => onramp_core::model::DEFAULT_INSTANCE.to_owned(),
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest
/// untrusted address in `X-Forwarded-For`.
pub fn client_addr(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("host", HeaderValue::from_str(h).unwrap());
        m
    }

    #[test]
    fn instances_are_named_by_the_first_label_under_the_base_domain() {
        assert_eq!(instance_name(&host("acme.localhost:8080"), "localhost"), "acme");
        assert_eq!(instance_name(&host("ACME.example.com"), "example.com"), "acme");
        assert_eq!(instance_name(&host("localhost:8080"), "localhost"), "default");
        assert_eq!(instance_name(&host("127.0.0.1:8080"), "localhost"), "default");
        assert_eq!(instance_name(&host("a.b.localhost"), "localhost"), "default");
        assert_eq!(instance_name(&host("evil.com"), "localhost"), "default");
        assert_eq!(instance_name(&host("[::1]:8080"), "localhost"), "default");
        assert_eq!(instance_name(&HeaderMap::new(), "localhost"), "default");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut ext = axum::http::Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, 5.6.7.8"));
        assert_eq!(client_addr(&ext, &headers, &[]), Some("10.0.0.1".parse().unwrap()));
        let trusted = ["10.0.0.1".parse().unwrap()];
        assert_eq!(client_addr(&ext, &headers, &trusted), Some("5.6.7.8".parse().unwrap()));
    }
}
