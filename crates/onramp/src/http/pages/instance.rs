//! The instance's own pages: its home `/` (HTML for browsers; JSON clients keep their JSON 404),
//! FastTrack's welcome page, where the one-time `fastTrackGuid` is exchanged for a host-only
//! session cookie (and dropped from the address bar by a `303`), sign-out, the design system's
//! assets, and HTML error pages for browsers.

use super::{Look, SESSION_COOKIE, cookie, query_value, same_origin_post};
use crate::http::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use onramp_core::CoreError;
use onramp_core::login::instance_url;
use onramp_core::provision::WELCOME_PATH;

/// Does the client want a page (a browser navigating) rather than JSON?
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// `GET /`: who is signed in, or where to sign up and reset a password.
pub async fn home(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers();
    if !wants_html(headers) {
        return crate::http::v1::error::not_found().await.into_response();
    }
    let name = crate::http::instance_name(headers, &state.config.base_domain);
    let look = Look::of(&state, headers, &name, None);
    let instance = match state.onramp.instance(&name).await {
        Ok(i) => i,
        Err(e) => return state.pages.error(&look, &e),
    };
    let signed_in = match cookie(headers, SESSION_COOKIE) {
        Some(token) => state.onramp.provisioner().session_user(&instance, token).await.ok().map(|u| u.email),
        None => None,
    };
    let apps: Vec<minijinja::Value> = match super::account::signup_apps(&state, &instance).await {
        Ok(apps) => apps.into_iter().map(|(id, name)| context! { id, name }).collect(),
        Err(e) => return state.pages.error(&look, &e),
    };
    state.pages.render(&look, StatusCode::OK, "home.html", context! { apps, signed_in })
}

/// `GET /welcome[?fastTrackGuid=…]`
pub async fn welcome(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pages = &state.pages;
    let name = crate::http::instance_name(&headers, &state.config.base_domain);
    let look = Look::of(&state, &headers, &name, None);
    let instance = match state.onramp.instance(&name).await {
        Ok(i) => i,
        Err(e) => return pages.error(&look, &e),
    };
    if let Some(guid) = query_value(query.as_deref(), "fastTrackGuid") {
        let logged_in = match state.onramp.provisioner().fast_track_login(&instance, &guid).await {
            Ok(l) => l,
            Err(e) => return pages.error(&look, &e),
        };
        let max_age = (logged_in.session.expires_at - logged_in.session.issued_at).whole_seconds();
        let cookie = session_cookie(&state, &logged_in.token, max_age);
        let mut response = (StatusCode::SEE_OTHER, no_store()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::LOCATION, HeaderValue::from_static(WELCOME_PATH));
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, v);
        }
        return response;
    }
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return pages.error(&look, &CoreError::SessionInvalid);
    };
    match state.onramp.provisioner().session_user(&instance, token).await {
        Ok(user) => pages.render(
            &look,
            StatusCode::OK,
            "welcome.html",
            context! {
                instance => instance.name,
                url => instance_url(&state.onramp.settings().public_url, &instance.name),
                first_name => user.profile.first_name,
                name => user.name,
                email => user.email,
                roles => user.roles,
                user_id => user.public_id,
            },
        ),
        Err(e) => pages.error(&look, &e),
    }
}

/// The session cookie: host-only (no `Domain`), so no other instance ever sees it.
fn session_cookie(state: &AppState, token: &str, max_age: i64) -> String {
    let secure = if state.config.public_url.starts_with("https:") { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// `POST /signout`: ends the session (from this host's own pages only) and drops the cookie.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let name = crate::http::instance_name(&headers, &state.config.base_domain);
    let look = Look::of(&state, &headers, &name, None);
    if !same_origin_post(&headers) {
        return state.pages.message(&look, StatusCode::FORBIDDEN, "form_refused_title", "form_refused_text");
    }
    if let (Ok(instance), Some(token)) =
        (state.onramp.instance(&name).await, cookie(&headers, SESSION_COOKIE))
    {
        // A session that is already over is signed out all the same.
        match state.onramp.logins().logout(&instance, token).await {
            Ok(()) | Err(CoreError::SessionInvalid) => {}
            Err(e) => return state.pages.error(&look, &e),
        }
    }
    let mut response = state.pages.message(&look, StatusCode::OK, "signed_out_title", "signed_out_text");
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&state, "", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `GET /assets/{file}`: the design system, embedded.
pub async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, content_type): (&'static str, &'static str) = match file.as_str() {
        "onramp.css" => (include_str!("../../../assets/onramp.css"), "text/css; charset=utf-8"),
        "signup.js" => (include_str!("../../../assets/signup.js"), "text/javascript; charset=utf-8"),
        "activate.js" => (include_str!("../../../assets/activate.js"), "text/javascript; charset=utf-8"),
        _ => return crate::http::v1::error::not_found().await.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// Unknown paths: an HTML 404 page for a browser outside the APIs, `/v1`'s JSON 404 otherwise.
pub async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers();
    let api = crate::http::browser::Surface::of(request.uri().path(), &state)
        != crate::http::browser::Surface::Other;
    if api || !wants_html(headers) {
        return crate::http::v1::error::not_found().await.into_response();
    }
    let name = crate::http::instance_name(headers, &state.config.base_domain);
    let look = Look::of(&state, headers, &name, None);
    state.pages.message(&look, StatusCode::NOT_FOUND, "e404_title", "e404_text")
}
