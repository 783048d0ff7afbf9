//! What browsers need in front of every surface: CORS by allow-list and strict content types.
//!
//! A request's surface is known from its path. Three layers, outermost first:
//! - [`check_origin`] decides whether the request's `Origin` may call this surface of the
//!   addressed instance (an app's `allowed_origins` and its `signup_url`'s origin; the partner
//!   surfaces only for apps that opt in; FastTrack by `[fast_track] allowed_origins`), and
//!   refuses the preflight of an origin that may not with 403;
//! - tower-http's CORS layer writes the headers for allowed origins (the origin echoed, never
//!   `*`; `Vary: Origin`) and answers their preflights;
//! - [`require_json`] refuses a body that is not JSON on a JSON endpoint with 415: a page on any
//!   site can post `text/plain` or a form without a preflight, and this takes that away.

use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The surfaces, each with its own error format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    V1,
    DreamFactory,
    FastTrack,
    Partner,
    Contract,
    /// The admin API: never for cross-origin calls.
    Admin,
    /// Pages and operations endpoints: not for cross-origin calls.
    Other,
}

impl Surface {
    pub fn of(path: &str, state: &AppState) -> Self {
        if path.starts_with("/v1/") {
            Self::V1
        } else if path.starts_with("/admin/v1/") {
            Self::Admin
        } else if path.starts_with("/api/v2/") {
            Self::DreamFactory
        } else if path == "/fast-track" {
            Self::FastTrack
        } else if (path == "/user" || path.starts_with("/user/"))
            && path != onramp_core::open_registration::CONFIRM_PAGE_PATH
            && path != super::pages::account::RESET_PAGE_PATH
        {
            Self::Contract
        } else if state.partner_paths.iter().any(|p| p == path) {
            Self::Partner
        } else {
            Self::Other
        }
    }

    /// Takes a JSON body (FastTrack also takes an HTML form).
    fn wants_json(self) -> bool {
        !matches!(self, Self::Other)
    }

    /// A refusal in this surface's own error format.
    pub fn refuse(
        self,
        state: &AppState,
        parts: &Parts,
        status: StatusCode,
        code: &str,
        message: &str,
    ) -> Response {
        use axum::response::IntoResponse;
        match self {
            Self::V1 | Self::Other => super::v1::error::V1Error::new(status, code, message).into_response(),
            Self::DreamFactory => super::dreamfactory::DfError::new(status, message).into_response(),
            Self::FastTrack => super::fast_track::refused(state, parts, status, message),
            Self::Partner => {
                use super::fasteditor::Code;
                let code = match status {
                    StatusCode::FORBIDDEN => Code::OriginNotAllowed,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
                    StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
                    _ => Code::InvalidRequest,
                };
                super::fasteditor::error(code, "en", None)
            }
            Self::Contract => super::dialogportal::DpError::new(status, message).into_response(),
            Self::Admin => super::admin::AdminError::new(status, code, message).into_response(),
        }
    }
}

/// Marks a request whose `Origin` may call it; the CORS layer answers only these.
#[derive(Debug, Clone, Copy)]
struct OriginAllowed;

/// The request headers a page may send.
const ALLOWED_HEADERS: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::AUTHORIZATION,
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    HeaderName::from_static("x-dreamfactory-api-key"),
    HeaderName::from_static("x-dreamfactory-session-token"),
    HeaderName::from_static("x-api-key"),
];

/// How long a browser may cache a preflight's answer.
pub const PREFLIGHT_MAX_AGE_SECS: u64 = 600;

pub fn cors_layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(|_: &HeaderValue, parts: &Parts| {
            parts.extensions.get::<OriginAllowed>().is_some()
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers(ALLOWED_HEADERS)
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(PREFLIGHT_MAX_AGE_SECS))
}

/// Outermost: decides whether the request's origin may call it (for the CORS layer inside) and
/// refuses the preflight of one that may not.
pub async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let mut allowed = false;
    if let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let surface = Surface::of(parts.uri.path(), &state);
        allowed = origin_allowed(&state, surface, &parts, origin).await;
        if allowed {
            parts.extensions.insert(OriginAllowed);
        } else if parts.method == Method::OPTIONS
            && parts.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let message = "Pages of this origin may not call this API.";
            return surface.refuse(&state, &parts, StatusCode::FORBIDDEN, "origin_not_allowed", message);
        }
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if !allowed {
        // The CORS layer adds some headers whatever the origin (`-Expose-Headers`); a caller
        // that may not read the answer gets none of them.
        let names: Vec<HeaderName> = response
            .headers()
            .keys()
            .filter(|n| n.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in names {
            response.headers_mut().remove(name);
        }
    }
    response
}

/// Inside the CORS layer (so an allowed page can read the refusal): a body on a JSON endpoint
/// must be JSON.
pub async fn require_json(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let surface = Surface::of(parts.uri.path(), &state);
    if surface.wants_json() && has_body(&parts) && !acceptable_type(surface, &parts) {
        let message = "Send the body as JSON with Content-Type: application/json.";
        return surface.refuse(
            &state,
            &parts,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        );
    }
    next.run(Request::from_parts(parts, body)).await
}

async fn origin_allowed(state: &AppState, surface: Surface, parts: &Parts, origin: &str) -> bool {
    let instance_access = || async {
        let name = super::instance_name(&parts.headers, &state.config.base_domain);
        let instance = state.onramp.instance(&name).await.ok()?;
        state.origins.for_instance(instance.id).await.ok()
    };
    match surface {
        // Invitations are sent with an app's key: server to server, like partner signup.
        Surface::V1 if parts.uri.path().starts_with("/v1/invitations") => {
            instance_access().await.is_some_and(|a| a.allows_partner(origin))
        }
        Surface::V1 | Surface::DreamFactory => instance_access().await.is_some_and(|a| a.allows(origin)),
        Surface::Partner | Surface::Contract => {
            instance_access().await.is_some_and(|a| a.allows_partner(origin))
        }
        Surface::FastTrack => state.fast_track_origins.iter().any(|p| p.matches(origin)),
        Surface::Admin | Surface::Other => false,
    }
}

/// Does the request carry a body? (A `Content-Length` above zero, or a chunked one.)
fn has_body(parts: &Parts) -> bool {
    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// `application/json` or `application/*+json` (any parameters); FastTrack also takes a form.
fn acceptable_type(surface: Surface, parts: &Parts) -> bool {
    let Some(essence) = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
    else {
        return false;
    };
    let json = essence == "application/json"
        || essence.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"));
    json || (surface == Surface::FastTrack && essence == "application/x-www-form-urlencoded")
        || (surface == Surface::Admin && super::admin::users::is_json_lines(&essence))
}
