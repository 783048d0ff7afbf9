//! FastTrack from an HTML form: "one click" from the operator's own site. The form posts the
//! seed's fields as `application/x-www-form-urlencoded`; the request must come from one of
//! `[fast_track] allowed_origins` (its `Origin`, or its `Referer` when a browser sends no
//! `Origin`), so no other site can start a FastTrack in its visitors' browsers. Success ends on
//! the new instance's welcome page, signed in (a `303` to the one-time login link); an error is
//! an HTML page, or a `303` back to `[fast_track] form_url` with `?error={code}`.

use crate::http::AppState;
use crate::http::pages::Look;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onramp_core::CoreError;
use onramp_core::provision::FastTrackInput;

pub async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let look = Look::of(state, headers, onramp_core::model::PLATFORM_INSTANCE, None);
    let refuse = |status: StatusCode, code: &str, title: &str, text: &str| {
        refused(state, &look, status, code, title, text)
    };
    if !state.config.fast_track.enabled {
        return refuse(StatusCode::NOT_FOUND, "not_found", "e404_title", "e404_text");
    }
    if !from_allowed_origin(state, headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "form_refused_title",
            "form_refused_text",
        );
    }
    let fields: Vec<(String, String)> = match crate::http::body_bytes(body) {
        Ok(b) => url::form_urlencoded::parse(&b).into_owned().collect(),
        Err(crate::http::BodyProblem::TooLarge) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "e413_title", "e413_text");
        }
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "invalid_request", "e500_title", "generic_error"),
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let optional = |name: &str| field(name).filter(|v| !v.trim().is_empty());
    let input = FastTrackInput {
        email: field("email").unwrap_or_default(),
        first_name: field("first-name").unwrap_or_default(),
        last_name: field("last-name").unwrap_or_default(),
        password: field("password").unwrap_or_default(),
        nickname: optional("nickname"),
        company: optional("company"),
        phone: optional("phone"),
        client,
        language: Some(look.lang.to_owned()),
        captcha_token: crate::http::extract::captcha_in_form(optional),
    };
    match state.onramp.provisioner().fast_track(input).await {
        Ok(done) => {
            state.metrics.fast_tracks.inc();
            // A form always lands in the browser: on the new instance, signed in.
            let mut response = (StatusCode::SEE_OTHER, [(header::CACHE_CONTROL, "no-store")]).into_response();
            if let Ok(location) = HeaderValue::from_str(&done.login_url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(e) => {
            let (status, code, title, text) = match &e {
                CoreError::Validation(_) => {
                    (StatusCode::BAD_REQUEST, e.code(), "form_invalid_title", "form_invalid_text")
                }
                CoreError::EmailTaken => {
                    (StatusCode::CONFLICT, e.code(), "form_taken_title", "form_taken_text")
                }
                CoreError::RateLimited { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, e.code(), "e429_title", "e429_text")
                }
                CoreError::SignupDenied { .. } => {
                    (StatusCode::FORBIDDEN, e.code(), "signup_denied_title", "signup_denied_text")
                }
                CoreError::InvitationRequired => {
                    (StatusCode::FORBIDDEN, e.code(), "invitation_required_title", "invitation_required_text")
                }
                CoreError::Busy { .. } | CoreError::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, e.code(), "e503_title", "e503_text")
                }
                other => {
                    tracing::error!(error = %other, "fast-track form failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, other.code(), "e500_title", "e500_text")
                }
            };
            refuse(status, code, title, text)
        }
    }
}

/// Was the form posted from a page of an allowed origin?
fn from_allowed_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let origin = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) => Some(o.to_owned()),
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| u.origin().ascii_serialization()),
    };
    origin.is_some_and(|o| state.fast_track_origins.iter().any(|p| p.matches(&o)))
}

/// The error as a page, or a `303` back to the operator's form with the code.
fn refused(
    state: &AppState,
    look: &Look,
    status: StatusCode,
    code: &str,
    title: &str,
    text: &str,
) -> Response {
    if let Some(form_url) = &state.config.fast_track.form_url
        && let Ok(mut url) = url::Url::parse(form_url)
    {
        url.query_pairs_mut().append_pair("error", code);
        if let Ok(location) = HeaderValue::from_str(url.as_str()) {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
        }
    }
    state.pages.message(look, status, title, text)
}
