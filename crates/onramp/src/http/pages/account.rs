//! Account pages: the `/v1` signup page and activation page (seed 004, both run the seed's own
//! snippets), and DreamFactory's confirm page (code + new password) and reset page (ask for a
//! code). Forms post to the same host only.

// The helpers here end a handler early with the page to show; a page is a `Response`.
#![allow(clippy::result_large_err)]

use super::{Look, query_value, same_origin_post};
use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use onramp_core::CoreError;
use onramp_core::model::Instance;
use onramp_core::open_registration::CodeInput;

pub const RESET_PAGE_PATH: &str = "/user/reset";

/// The addressed instance and how its pages look, or the page that says there is none.
async fn instance_page(state: &AppState, headers: &HeaderMap) -> Result<(Instance, Look), Response> {
    let name = crate::http::instance_name(headers, &state.config.base_domain);
    let look = Look::of(state, headers, &name, None);
    match state.onramp.instance(&name).await {
        Ok(instance) => Ok((instance, look)),
        Err(e) => Err(state.pages.error(&look, &e)),
    }
}

/// A form's fields, or the 413 page (bodies over the limit are refused before parsing).
pub(super) fn form(
    state: &AppState,
    look: &Look,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<(String, String)>, Response> {
    match crate::http::body_bytes(body) {
        Ok(b) => Ok(url::form_urlencoded::parse(&b).into_owned().collect()),
        Err(crate::http::BodyProblem::TooLarge) => {
            Err(state.pages.message(look, StatusCode::PAYLOAD_TOO_LARGE, "e413_title", "e413_text"))
        }
        Err(_) => Err(state.pages.message(look, StatusCode::BAD_REQUEST, "e500_title", "generic_error")),
    }
}

/// A field error as the page shows it: the reader's string for `key`, else the core's words.
pub(super) fn field_text(state: &AppState, look: &Look, key: &str, p: &onramp_core::FieldError) -> String {
    let text = state.pages.text(look.lang, key);
    if text == key { format!("{} {}", p.field.replace('_', " "), p.message) } else { text }
}

pub(super) fn field(fields: &[(String, String)], name: &str) -> String {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// What every form post starts with: the instance, its look, and the fields of a form posted
/// from this host (one posted from another site is refused: SECURITY 31).
pub(super) async fn posted_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Instance, Look, Vec<(String, String)>), Response> {
    let (instance, look) = instance_page(state, headers).await?;
    if !same_origin_post(headers) {
        return Err(state.pages.message(
            &look,
            StatusCode::FORBIDDEN,
            "form_refused_title",
            "form_refused_text",
        ));
    }
    let fields = form(state, &look, body)?;
    Ok((instance, look, fields))
}

/// `GET /signup?app={app_id}`: the hosted signup form of one app (its first app with an open
/// signup domain when none is named).
pub async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (instance, look) = match instance_page(&state, &headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let app_id = match query_value(query.as_deref(), "app") {
        Some(id) => Some(id),
        None => first_signup_app(&state, &instance).await,
    };
    let app = match app_id {
        Some(id) => state.onramp.catalog().app(&instance, &id).await,
        None => Ok(None),
    };
    match app {
        Ok(Some(app)) => {
            let mut look = Look::of(&state, &headers, &instance.name, Some((&app.id, &app.name)));
            let country = super::region(&headers).unwrap_or_default();
            // The app's CAPTCHA widget, when it has one and a site key to show it with.
            let rules = state.onramp.settings().screening.rules(&instance.name, Some(&app.id));
            let captcha = rules.captcha.as_ref().and_then(|c| Some((c.provider, c.site_key.clone()?)));
            look.captcha = captcha.as_ref().map(|(provider, _)| *provider);
            let captcha = captcha.map(|(provider, site_key)| {
                let (script, class) = provider.widget();
                context! { script, class, site_key }
            });
            state.pages.render(
                &look,
                StatusCode::OK,
                "signup.html",
                context! { app_id => app.id, country, captcha },
            )
        }
        Ok(None) => state.pages.message(&look, StatusCode::NOT_FOUND, "e404_title", "e404_text"),
        Err(e) => state.pages.error(&look, &e),
    }
}

/// The instance's apps that take signups, with their names (for the home page too).
pub async fn signup_apps(state: &AppState, instance: &Instance) -> Result<Vec<(String, String)>, CoreError> {
    state.onramp.catalog().signup_apps(instance).await
}

async fn first_signup_app(state: &AppState, instance: &Instance) -> Option<String> {
    signup_apps(state, instance).await.ok()?.into_iter().next().map(|(id, _)| id)
}

/// `GET /activate`: the page an activation link may open (an app's `signup_url` may point here).
pub async fn activate(State(state): State<AppState>, headers: HeaderMap) -> Response {
    static_page(&state, &headers, "activate.html").await
}

/// A page of the addressed instance that needs nothing but its look.
async fn static_page(state: &AppState, headers: &HeaderMap, template: &str) -> Response {
    match instance_page(state, headers).await {
        Ok((_, look)) => state.pages.render(&look, StatusCode::OK, template, context! {}),
        Err(page) => page,
    }
}

/// `GET /user/confirm`: asks for the code (filled in from the link) and a new password.
pub async fn confirm_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (_, look) = match instance_page(&state, &headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let (email, code) = (query_value(query.as_deref(), "email"), query_value(query.as_deref(), "code"));
    state.pages.render(&look, StatusCode::OK, "confirm.html", context! { email, code })
}

/// `POST /user/confirm`: redeems the code; errors are shown on the form, in the reader's language.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: crate::http::extract::ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (instance, look, fields) = match posted_form(&state, &headers, body).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let input = CodeInput {
        email: field(&fields, "email"),
        code: field(&fields, "code"),
        new_password: field(&fields, "new_password"),
        password_confirmation: Some(field(&fields, "password_confirmation")),
        login: false,
        client: client.key(),
    };
    let (email, code) = (input.email.clone(), input.code.clone());
    let t = |key: &str| state.pages.text(look.lang, key);
    let (status, error, field_errors) =
        match state.onramp.open_registration().redeem_code(&instance, input).await {
            Ok(_) => {
                return state.pages.message(&look, StatusCode::OK, "confirm_done_title", "confirm_done_text");
            }
            Err(CoreError::Validation(problems)) => {
                let mut by_field = std::collections::BTreeMap::new();
                for p in &problems {
                    let key = if p.code == "password_mismatch" {
                        "field_passwords_differ".to_owned()
                    } else {
                        format!("field_{}", p.code)
                    };
                    by_field.insert(p.field.clone(), field_text(&state, &look, &key, p));
                }
                let general = by_field
                    .iter()
                    .filter(|(f, _)| !matches!(f.as_str(), "new_password" | "password_confirmation"));
                let general: Vec<String> = general.map(|(_, m)| m.clone()).collect();
                (StatusCode::BAD_REQUEST, (!general.is_empty()).then(|| general.join(" ")), by_field)
            }
            Err(CoreError::TokenNotFound) => {
                (StatusCode::NOT_FOUND, Some(t("code_mismatch")), Default::default())
            }
            Err(CoreError::TokenUsed) => (StatusCode::BAD_REQUEST, Some(t("code_used")), Default::default()),
            Err(CoreError::TokenExpired) => {
                (StatusCode::BAD_REQUEST, Some(t("code_expired")), Default::default())
            }
            Err(e) => return state.pages.error(&look, &e),
        };
    state.pages.render(&look, status, "confirm.html", context! { email, code, error, field_errors })
}

/// `GET /user/reset`: asks for the address to send a reset code to.
pub async fn reset_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    static_page(&state, &headers, "reset.html").await
}

/// `POST /user/reset`: the same answer whether or not the address is known.
pub async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: crate::http::extract::ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (instance, look, fields) = match posted_form(&state, &headers, body).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let email = field(&fields, "email");
    let settings = match state.onramp.catalog().instance_settings(instance.id).await {
        Ok(s) => s,
        Err(e) => return state.pages.error(&look, &e),
    };
    let client = client.key();
    match state
        .onramp
        .open_registration()
        .request_reset(&instance, &settings, (&email, &look.brand.name), client)
        .await
    {
        Ok(()) => {
            let text = state.pages.text(look.lang, "reset_done_text").replace("{email}", &email);
            let title = state.pages.text(look.lang, "reset_done_title");
            state.pages.render(
                &look,
                StatusCode::OK,
                "message.html",
                context! { title, message => text, state => "ok" },
            )
        }
        Err(CoreError::Validation(_)) => {
            let error = state.pages.text(look.lang, "field_invalid_email");
            state.pages.render(&look, StatusCode::BAD_REQUEST, "reset.html", context! { email, error })
        }
        Err(e) => state.pages.error(&look, &e),
    }
}
