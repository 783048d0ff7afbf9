//! The invitation page: `GET /invitation?token=…` (the mailed link) shows the form with the
//! invited address filled in; `POST /invitation` creates the user, active at once, and says
//! where to sign in. Errors are shown on the form in the reader's language; a used, revoked or
//! expired link gets its own page.

use super::Look;
use super::account::{field, field_text, posted_form};
use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use onramp_core::CoreError;
use onramp_core::invitations::AcceptInput;
use onramp_core::model::Instance;

/// The page of a link that works no more (or never did).
fn link_page(state: &AppState, look: &Look, e: &CoreError) -> Response {
    match e {
        CoreError::TokenUsed => {
            state.pages.message(look, StatusCode::CONFLICT, "invitation_used_title", "invitation_used_text")
        }
        CoreError::EmailTaken => {
            state.pages.message(look, StatusCode::CONFLICT, "invitation_used_title", "invitation_taken_text")
        }
        other => state.pages.error(look, other),
    }
}

/// The form for a live invitation, with `errors` (by field) and a general `error`.
fn form_page(
    state: &AppState,
    look: &Look,
    (token, name, email): (&str, &str, &str),
    status: StatusCode,
    (error, field_errors): (Option<String>, std::collections::BTreeMap<String, String>),
) -> Response {
    state.pages.render(look, status, "invitation.html", context! { token, email, name, error, field_errors })
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let name = crate::http::instance_name(&headers, &state.config.base_domain);
    let look = Look::of(&state, &headers, &name, None);
    let instance = match state.onramp.instance(&name).await {
        Ok(i) => i,
        Err(e) => return state.pages.error(&look, &e),
    };
    let token = super::query_value(query.as_deref(), "token").unwrap_or_default();
    match state.onramp.invites().look(&instance, &token).await {
        Ok(invitation) => {
            let look = app_look(&state, &headers, &instance, &invitation.app_id).await;
            let at = (token.as_str(), "", invitation.email.as_str());
            form_page(&state, &look, at, StatusCode::OK, (None, Default::default()))
        }
        Err(e) => link_page(&state, &look, &e),
    }
}

/// How the page of an invitation to `app_id` looks (the app's branding).
async fn app_look(state: &AppState, headers: &HeaderMap, instance: &Instance, app_id: &str) -> Look {
    match state.onramp.catalog().app(instance, app_id).await {
        Ok(Some(app)) => Look::of(state, headers, &instance.name, Some((&app.id, &app.name))),
        _ => Look::of(state, headers, &instance.name, None),
    }
}

pub async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: crate::http::extract::ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (instance, look, fields) = match posted_form(&state, &headers, body).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let token = field(&fields, "token");
    let invitation = match state.onramp.invites().look(&instance, &token).await {
        Ok(i) => i,
        Err(e) => return link_page(&state, &look, &e),
    };
    let look = app_look(&state, &headers, &instance, &invitation.app_id).await;
    let name = field(&fields, "name");
    let input = AcceptInput {
        token: token.clone(),
        name: name.clone(),
        password: field(&fields, "password"),
        client: client.key(),
    };
    match state.onramp.invites().accept(&instance, input).await {
        Ok(_) => {
            state.metrics.signups.inc();
            state.pages.message(&look, StatusCode::OK, "invitation_done_title", "invitation_done_text")
        }
        Err(CoreError::Validation(problems)) => {
            let mut by_field = std::collections::BTreeMap::new();
            for p in &problems {
                by_field.insert(p.field.clone(), field_text(&state, &look, &format!("field_{}", p.code), p));
            }
            let at = (token.as_str(), name.as_str(), invitation.email.as_str());
            form_page(&state, &look, at, StatusCode::BAD_REQUEST, (None, by_field))
        }
        Err(e @ (CoreError::RateLimited { .. } | CoreError::Busy { .. } | CoreError::Unavailable(_))) => {
            state.pages.error(&look, &e)
        }
        Err(e) => link_page(&state, &look, &e),
    }
}
