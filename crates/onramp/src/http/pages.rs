//! Pages onramp serves to browsers. So far the instance's welcome page: FastTrack's redirect
//! lands here with a one-time `fastTrackGuid`, which is exchanged for a session cookie (and
//! dropped from the address bar by a `303`); with that cookie the page greets the admin.
//! The cookie is host-only (no `Domain`), so it never reaches another instance.

use crate::app::AppState;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::{AutoEscape, Environment, context};
use onramp_core::CoreError;
use onramp_core::login::instance_url;
use onramp_core::provision::WELCOME_PATH;
use onramp_core::registration::{CONFIRM_PAGE_PATH, CodeInput};

pub const SESSION_COOKIE: &str = "onramp_session";

pub fn routes() -> Router<AppState> {
    Router::new().route(WELCOME_PATH, get(welcome)).route(CONFIRM_PAGE_PATH, get(confirm_form).post(confirm))
}

/// The page templates, embedded and HTML-escaped.
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_template("layout.html", include_str!("../../templates/pages/layout.html"))?;
        env.add_template("welcome.html", include_str!("../../templates/pages/welcome.html"))?;
        env.add_template("message.html", include_str!("../../templates/pages/message.html"))?;
        env.add_template("confirm.html", include_str!("../../templates/pages/confirm.html"))?;
        Ok(Self { env })
    }

    fn render(&self, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, page_headers(), Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template = name, "page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    fn message(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.render(status, "message.html", context! { title, message })
    }

    fn error(&self, e: &CoreError) -> Response {
        let (status, title, message) = match e {
            CoreError::InstanceNotFound => {
                (StatusCode::NOT_FOUND, "No such instance", "There is no instance at this address.")
            }
            CoreError::TokenNotFound | CoreError::TokenUsed => (
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid",
                "It may have been used already. Sign in with your email address and password.",
            ),
            CoreError::TokenExpired => (
                StatusCode::GONE,
                "This sign-in link has expired",
                "Sign in with your email address and password.",
            ),
            CoreError::SessionInvalid => (
                StatusCode::UNAUTHORIZED,
                "You are not signed in",
                "Sign in to this instance with your email address and password.",
            ),
            CoreError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "Too many requests", "Try again in a little while.")
            }
            CoreError::Busy { .. } | CoreError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "Busy", "The service is busy; try again shortly.")
            }
            other => {
                tracing::error!(error = %other, "page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try again later.")
            }
        };
        self.message(status, title, message)
    }
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// Pages carry secrets in forms and links: not cached, not framed, no referrer.
fn page_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        ),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ]
}

/// The value of cookie `name`, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn welcome(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let pages = &state.pages;
    let name = super::instance_name(&headers, &state.config.base_domain);
    let instance = match state.onramp.instance(&name).await {
        Ok(i) => i,
        Err(e) => return pages.error(&e),
    };
    if let Some(guid) = query_value(query.as_deref(), "fastTrackGuid") {
        let logged_in = match state.onramp.fast_track_login(&instance, &guid).await {
            Ok(l) => l,
            Err(e) => return pages.error(&e),
        };
        let secure = if state.config.public_url.starts_with("https:") { "; Secure" } else { "" };
        let max_age = (logged_in.session.expires_at - logged_in.session.issued_at).whole_seconds();
        let cookie = format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            logged_in.token
        );
        let mut response = (StatusCode::SEE_OTHER, no_store()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::LOCATION, HeaderValue::from_static(WELCOME_PATH));
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, v);
        }
        return response;
    }
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return pages.error(&CoreError::SessionInvalid);
    };
    match state.onramp.session_user(&instance, token).await {
        Ok(user) => pages.render(
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
        Err(e) => pages.error(&e),
    }
}

/// The page the confirmation and reset mails link to: it asks for the code (filled in from the
/// link) and a new password, and posts them to itself.
async fn confirm_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let name = super::instance_name(&headers, &state.config.base_domain);
    let instance = match state.onramp.instance(&name).await {
        Ok(i) => i,
        Err(e) => return state.pages.error(&e),
    };
    let (email, code) = (query_value(query.as_deref(), "email"), query_value(query.as_deref(), "code"));
    state.pages.render(
        StatusCode::OK,
        "confirm.html",
        context! { instance => instance.name, email => email, code => code, error => None::<String> },
    )
}

async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Response {
    let name = super::instance_name(&headers, &state.config.base_domain);
    let instance = match state.onramp.instance(&name).await {
        Ok(i) => i,
        Err(e) => return state.pages.error(&e),
    };
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let input = CodeInput {
        email: field("email"),
        code: field("code"),
        new_password: field("new_password"),
        password_confirmation: Some(field("password_confirmation")),
        login: false,
        client: super::client_addr(&extensions, &headers, &state.config.trusted_proxies)
            .map(|c| c.to_string()),
    };
    let (email, code) = (input.email.clone(), input.code.clone());
    let problem = match state.onramp.redeem_email_code(&instance, input).await {
        Ok(_) => {
            return state.pages.message(
                StatusCode::OK,
                "Your password is set",
                "You can now sign in with your email address and your new password.",
            );
        }
        Err(CoreError::Validation(fields)) => {
            let each: Vec<String> =
                fields.iter().map(|f| format!("{} {}", f.field.replace('_', " "), f.message)).collect();
            (StatusCode::BAD_REQUEST, format!("Please check: {}.", each.join("; ")))
        }
        Err(CoreError::TokenNotFound) => {
            (StatusCode::NOT_FOUND, "The email address and code do not match.".into())
        }
        Err(CoreError::TokenUsed) => (StatusCode::BAD_REQUEST, "This code was already used.".into()),
        Err(CoreError::TokenExpired) => (StatusCode::BAD_REQUEST, "This code has expired.".into()),
        Err(e) => return state.pages.error(&e),
    };
    state.pages.render(
        problem.0,
        "confirm.html",
        context! { instance => instance.name, email, code, error => problem.1 },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; onramp_session_x=2; onramp_session=abc.def"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn every_page_renders_and_escapes() {
        let pages = Pages::new().unwrap();
        let html = pages.env.get_template("message.html").unwrap();
        let out = html.render(context! { title => "<b>x</b>", message => "m" }).unwrap();
        assert!(out.contains("&lt;b&gt;x") && !out.contains("<b>x"), "{out}");
        let welcome = pages.env.get_template("welcome.html").unwrap();
        let out = welcome
            .render(context! { instance => "joe", first_name => "Joe", email => "joe@example.com", roles => vec!["admin"] })
            .unwrap();
        assert!(out.contains("Welcome to joe, Joe!") && out.contains("(admin)"));
    }
}
